import { z } from 'zod';
import { nonEmptyStr, str, strList, workloadSelector } from './common.js';
import { envelope } from './meta.js';
import { SECURITY_VERSIONS } from './versions.js';

// security.istio.io PeerAuthentication and AuthorizationPolicy.

const mtlsMode = z.strictObject({ mode: z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']).default('UNSET') });

export const peerAuthenticationSpecSchema = z
  .strictObject({
    selector: workloadSelector.optional(),
    mtls: mtlsMode.optional(),
    portLevelMtls: z
      .record(
        str.refine((k) => /^[0-9]+$/.test(k) && Number(k) >= 1 && Number(k) <= 65535, { error: 'must be a port number 1..65535' }),
        mtlsMode,
      )
      .optional(),
  })
  .superRefine((pa, ctx) => {
    // Istio: port-level settings only make sense for a selected workload.
    if (pa.portLevelMtls && !pa.selector) {
      ctx.addIssue({ code: 'custom', path: ['portLevelMtls'], message: 'needs a selector' });
    }
  });
export const peerAuthenticationSchema = envelope('PeerAuthentication', SECURITY_VERSIONS, {
  spec: peerAuthenticationSpecSchema.default({}),
});

export const sourceSchema = z.strictObject({
  principals: strList.optional(),
  notPrincipals: strList.optional(),
  requestPrincipals: strList.optional(),
  notRequestPrincipals: strList.optional(),
  namespaces: strList.optional(),
  notNamespaces: strList.optional(),
  ipBlocks: strList.optional(),
  notIpBlocks: strList.optional(),
  remoteIpBlocks: strList.optional(),
  notRemoteIpBlocks: strList.optional(),
});

export const operationSchema = z.strictObject({
  hosts: strList.optional(),
  notHosts: strList.optional(),
  ports: strList.optional(),
  notPorts: strList.optional(),
  methods: strList.optional(),
  notMethods: strList.optional(),
  paths: strList.optional(),
  notPaths: strList.optional(),
});

export const authorizationRuleSchema = z.strictObject({
  from: z.array(z.strictObject({ source: sourceSchema })).optional(),
  to: z.array(z.strictObject({ operation: operationSchema })).optional(),
  when: z.array(z.strictObject({ key: nonEmptyStr, values: strList.optional(), notValues: strList.optional() })).optional(),
});

export const authorizationPolicySpecSchema = z
  .strictObject({
    selector: workloadSelector.optional(),
    action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).default('ALLOW'),
    provider: z.strictObject({ name: nonEmptyStr }).optional(),
    rules: z.array(authorizationRuleSchema).optional(),
  })
  .superRefine((ap, ctx) => {
    if (ap.action === 'CUSTOM' && !ap.provider) ctx.addIssue({ code: 'custom', path: ['provider'], message: 'required for action CUSTOM' });
    if (ap.action !== 'CUSTOM' && ap.provider) ctx.addIssue({ code: 'custom', path: ['provider'], message: 'only allowed with action CUSTOM' });
  });
export const authorizationPolicySchema = envelope('AuthorizationPolicy', SECURITY_VERSIONS, {
  spec: authorizationPolicySpecSchema.default({ action: 'ALLOW' }),
});

export type PeerAuthenticationSpec = z.output<typeof peerAuthenticationSpecSchema>;
export type AuthorizationRule = z.output<typeof authorizationRuleSchema>;
export type AuthorizationPolicySpec = z.output<typeof authorizationPolicySpecSchema>;
