import { z } from 'zod';
import {
  bool,
  countSet,
  duration,
  exactHost,
  intRange,
  labels,
  nonEmptyStr,
  nonNegativeInt,
  portSelector,
  str,
  strList,
  workloadSelector,
  exportTo,
} from './common.js';
import { envelope } from './meta.js';
import { NETWORKING_VERSIONS } from './versions.js';

// networking.istio.io DestinationRule: traffic policy applied after routing.

const LOCALITY_PATTERN = /^[^/]+(\/[^/]+){0,2}$/;
const localityOrWildcard = str.refine((s) => s === '*' || LOCALITY_PATTERN.test(s), {
  error: 'must be a locality "region", "region/zone" or "region/zone/subzone" (a trailing "*" matches all)',
});

/** Istio's LocalityLoadBalancerSetting; `distribute` and `failover` exclude each other. */
export const localityLbSettingSchema = z
  .strictObject({
    enabled: bool.optional(),
    distribute: z
      .array(
        z.strictObject({
          from: localityOrWildcard,
          to: z.record(localityOrWildcard, intRange(0, 100)),
        }),
      )
      .optional(),
    failover: z.array(z.strictObject({ from: nonEmptyStr, to: nonEmptyStr })).optional(),
    failoverPriority: strList.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.distribute && s.failover) {
      ctx.addIssue({ code: 'custom', message: 'must not set both distribute and failover' });
    }
    s.distribute?.forEach((d, i) => {
      const sum = Object.values(d.to).reduce((a, b) => a + b, 0);
      if (sum !== 100) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'to'], message: `weights must sum to 100 (got ${sum})` });
    });
    s.failover?.forEach((f, i) => {
      if (f.from === f.to) ctx.addIssue({ code: 'custom', path: ['failover', i, 'to'], message: 'must differ from "from"' });
    });
  });

export const loadBalancerSettingsSchema = z
  .strictObject({
    simple: z.enum(['UNSPECIFIED', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST', 'LEAST_CONN']).optional(),
    consistentHash: z
      .strictObject({
        httpHeaderName: nonEmptyStr.optional(),
        httpCookie: z.strictObject({ name: nonEmptyStr, path: str.optional(), ttl: duration.optional() }).optional(),
        useSourceIp: bool.optional(),
        httpQueryParameterName: nonEmptyStr.optional(),
        ringHash: z.strictObject({ minimumRingSize: nonNegativeInt.optional() }).optional(),
        maglev: z.strictObject({ tableSize: nonNegativeInt.optional() }).optional(),
        minimumRingSize: nonNegativeInt.optional(),
      })
      .superRefine((h, ctx) => {
        const keys = countSet(h, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']);
        if (keys.length !== 1) {
          ctx.addIssue({
            code: 'custom',
            message: 'must set exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName',
          });
        }
      })
      .optional(),
    localityLbSetting: localityLbSettingSchema.optional(),
    warmupDurationSecs: duration.optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.simple && lb.consistentHash) ctx.addIssue({ code: 'custom', message: 'must not set both simple and consistentHash' });
  });

export const connectionPoolSettingsSchema = z.strictObject({
  tcp: z
    .strictObject({
      maxConnections: nonNegativeInt.optional(),
      connectTimeout: duration.optional(),
      tcpKeepalive: z
        .strictObject({ probes: nonNegativeInt.optional(), time: duration.optional(), interval: duration.optional() })
        .optional(),
      maxConnectionDuration: duration.optional(),
      idleTimeout: duration.optional(),
    })
    .optional(),
  http: z
    .strictObject({
      http1MaxPendingRequests: nonNegativeInt.optional(),
      http2MaxRequests: nonNegativeInt.optional(),
      maxRequestsPerConnection: nonNegativeInt.optional(),
      maxRetries: nonNegativeInt.optional(),
      idleTimeout: duration.optional(),
      h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
      useClientProtocol: bool.optional(),
      maxConcurrentStreams: nonNegativeInt.optional(),
    })
    .optional(),
});

/** Istio's OutlierDetection; also the shape of MeshConfig's defaultOutlierDetection. */
export const outlierDetectionSchema = z.strictObject({
  consecutiveErrors: nonNegativeInt.optional(),
  splitExternalLocalOriginErrors: bool.optional(),
  consecutiveLocalOriginFailures: nonNegativeInt.optional(),
  consecutiveGatewayErrors: nonNegativeInt.optional(),
  consecutive5xxErrors: nonNegativeInt.optional(),
  interval: duration.optional(),
  baseEjectionTime: duration.optional(),
  maxEjectionPercent: intRange(0, 100).optional(),
  minHealthPercent: intRange(0, 100).optional(),
});

export const clientTlsSettingsSchema = z
  .strictObject({
    mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']),
    clientCertificate: str.optional(),
    privateKey: str.optional(),
    caCertificates: str.optional(),
    caCrl: str.optional(),
    credentialName: str.optional(),
    subjectAltNames: strList.optional(),
    sni: str.optional(),
    insecureSkipVerify: bool.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.mode === 'MUTUAL' && !t.credentialName && (!t.clientCertificate || !t.privateKey)) {
      ctx.addIssue({ code: 'custom', message: 'mode MUTUAL needs credentialName, or clientCertificate and privateKey' });
    }
  });

const policyFields = {
  loadBalancer: loadBalancerSettingsSchema.optional(),
  connectionPool: connectionPoolSettingsSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: clientTlsSettingsSchema.optional(),
};

export const portTrafficPolicySchema = z.strictObject({ port: portSelector.optional(), ...policyFields });

export const trafficPolicySchema = z.strictObject({
  ...policyFields,
  portLevelSettings: z.array(portTrafficPolicySchema).optional(),
});

export const subsetSchema = z.strictObject({
  name: nonEmptyStr,
  labels: labels.optional(),
  trafficPolicy: trafficPolicySchema.optional(),
});

export const destinationRuleSpecSchema = z
  .strictObject({
    host: exactHost,
    trafficPolicy: trafficPolicySchema.optional(),
    subsets: z.array(subsetSchema).optional(),
    exportTo: exportTo.optional(),
    workloadSelector: workloadSelector.optional(),
  })
  .superRefine((dr, ctx) => {
    const seen = new Map<string, number>();
    dr.subsets?.forEach((s, i) => {
      const first = seen.get(s.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['subsets', i, 'name'], message: `duplicate subset name "${s.name}" (also subsets[${first}])` });
      } else seen.set(s.name, i);
    });
  });

export const destinationRuleSchema = envelope('DestinationRule', NETWORKING_VERSIONS, { spec: destinationRuleSpecSchema });

export type LocalityLbSetting = z.output<typeof localityLbSettingSchema>;
export type LoadBalancerSettings = z.output<typeof loadBalancerSettingsSchema>;
export type ConnectionPoolSettings = z.output<typeof connectionPoolSettingsSchema>;
export type OutlierDetection = z.output<typeof outlierDetectionSchema>;
export type ClientTLSSettings = z.output<typeof clientTlsSettingsSchema>;
export type TrafficPolicy = z.output<typeof trafficPolicySchema>;
export type Subset = z.output<typeof subsetSchema>;
export type DestinationRuleSpec = z.output<typeof destinationRuleSpecSchema>;
