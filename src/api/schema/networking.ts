import { z } from 'zod';
import {
  bool,
  dns1123Label,
  intRange,
  labels,
  annotations,
  nonEmptyStr,
  nonNegativeInt,
  port,
  str,
  strList,
  wildcardHost,
  exportTo,
} from './common.js';
import { envelope } from './meta.js';
import { NETWORKING_VERSIONS } from './versions.js';

// networking.istio.io Gateway, ServiceEntry, WorkloadEntry, WorkloadGroup.

const protocolName = z.enum(['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'REDIS', 'MYSQL', 'TCP', 'TLS', 'UDP']);

/** A Gateway host: `host`, `namespace/host`, `./host` or `*` forms, as Istio accepts. */
const gatewayHost = str.refine(
  (h) => {
    const slash = h.indexOf('/');
    const host = slash >= 0 ? h.slice(slash + 1) : h;
    const ns = slash >= 0 ? h.slice(0, slash) : undefined;
    if (ns !== undefined && ns !== '.' && ns !== '*' && !(ns.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns))) return false;
    return wildcardHost.safeParse(host).success;
  },
  { error: 'must be a host, optionally prefixed by "namespace/" ("*" and "*.domain" wildcards allowed)' },
);

export const serverTlsSettingsSchema = z.strictObject({
  httpsRedirect: bool.optional(),
  mode: z.enum(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']).optional(),
  serverCertificate: str.optional(),
  privateKey: str.optional(),
  caCertificates: str.optional(),
  caCrl: str.optional(),
  credentialName: str.optional(),
  credentialNames: strList.optional(),
  subjectAltNames: strList.optional(),
  verifyCertificateSpki: strList.optional(),
  verifyCertificateHash: strList.optional(),
  minProtocolVersion: z.enum(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']).optional(),
  maxProtocolVersion: z.enum(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']).optional(),
  cipherSuites: strList.optional(),
});

export const gatewayServerSchema = z
  .strictObject({
    port: z.strictObject({ number: port, name: nonEmptyStr.optional(), protocol: protocolName, targetPort: port.optional() }),
    bind: str.optional(),
    hosts: z.array(gatewayHost).min(1, { error: 'required: at least one host' }),
    tls: serverTlsSettingsSchema.optional(),
    defaultEndpoint: str.optional(),
    name: str.optional(),
  })
  .superRefine((s, ctx) => {
    const p = s.port.protocol;
    if ((p === 'HTTPS' || p === 'TLS') && !s.tls) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `required for protocol ${p}` });
    }
    if (s.tls?.mode === 'AUTO_PASSTHROUGH' && p !== 'TLS') {
      ctx.addIssue({ code: 'custom', path: ['tls', 'mode'], message: `AUTO_PASSTHROUGH needs port protocol TLS (got ${p})` });
    }
  });

export const gatewaySpecSchema = z.strictObject({
  selector: labels.optional(),
  servers: z.array(gatewayServerSchema).min(1, { error: 'required: at least one server' }),
});
export const gatewaySchema = envelope('Gateway', NETWORKING_VERSIONS, { spec: gatewaySpecSchema });

/** The spec of a WorkloadEntry, also used inline in ServiceEntry.endpoints and WorkloadGroup.template. */
export const workloadEntrySpecSchema = z.strictObject({
  address: str.optional(),
  ports: z.record(str, port).optional(),
  labels: labels.optional(),
  network: str.optional(),
  locality: str
    .refine((s) => /^[^/]*(\/[^/]*){0,2}$/.test(s), { error: 'must be a locality "region/zone/subzone"' })
    .optional(),
  weight: nonNegativeInt.optional(),
  serviceAccount: str.optional(),
});
export const workloadEntrySchema = envelope('WorkloadEntry', NETWORKING_VERSIONS, { spec: workloadEntrySpecSchema });

export const serviceEntryPortSchema = z.strictObject({
  number: port,
  protocol: protocolName.optional(),
  name: dns1123Label.optional(),
  targetPort: port.optional(),
});

export const serviceEntrySpecSchema = z
  .strictObject({
    hosts: z.array(wildcardHost).min(1, { error: 'required: at least one host' }),
    addresses: strList.optional(),
    ports: z.array(serviceEntryPortSchema).optional(),
    location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
    resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']).optional(),
    endpoints: z.array(workloadEntrySpecSchema).optional(),
    workloadSelector: z.strictObject({ labels: labels.optional() }).optional(),
    exportTo: exportTo.optional(),
    subjectAltNames: strList.optional(),
  })
  .superRefine((se, ctx) => {
    if (se.resolution === 'STATIC' && se.workloadSelector === undefined) {
      se.endpoints?.forEach((e, i) => {
        if (!e.address) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'address'], message: 'required for resolution STATIC' });
      });
    }
    if (se.endpoints && se.workloadSelector) {
      ctx.addIssue({ code: 'custom', path: ['workloadSelector'], message: 'must not be set together with endpoints' });
    }
  });
export const serviceEntrySchema = envelope('ServiceEntry', NETWORKING_VERSIONS, { spec: serviceEntrySpecSchema });

const probePort = port;
export const readinessProbeSchema = z.strictObject({
  initialDelaySeconds: nonNegativeInt.optional(),
  timeoutSeconds: intRange(1, 2 ** 31 - 1).optional(),
  periodSeconds: intRange(1, 2 ** 31 - 1).optional(),
  successThreshold: intRange(1, 2 ** 31 - 1).optional(),
  failureThreshold: intRange(1, 2 ** 31 - 1).optional(),
  httpGet: z
    .strictObject({
      path: str.optional(),
      port: probePort,
      host: str.optional(),
      scheme: z.enum(['HTTP', 'HTTPS']).optional(),
      httpHeaders: z.array(z.strictObject({ name: nonEmptyStr, value: str })).optional(),
    })
    .optional(),
  tcpSocket: z.strictObject({ host: str.optional(), port: probePort }).optional(),
  exec: z.strictObject({ command: z.array(str).min(1) }).optional(),
});

export const workloadGroupSpecSchema = z.strictObject({
  metadata: z.strictObject({ labels: labels.optional(), annotations: annotations.optional() }).optional(),
  template: workloadEntrySpecSchema,
  probe: readinessProbeSchema.optional(),
});
export const workloadGroupSchema = envelope('WorkloadGroup', NETWORKING_VERSIONS, { spec: workloadGroupSpecSchema });

export type ServerTLSSettings = z.output<typeof serverTlsSettingsSchema>;
export type GatewayServer = z.output<typeof gatewayServerSchema>;
export type GatewaySpec = z.output<typeof gatewaySpecSchema>;
export type WorkloadEntrySpec = z.output<typeof workloadEntrySpecSchema>;
export type ServiceEntryPort = z.output<typeof serviceEntryPortSchema>;
export type ServiceEntrySpec = z.output<typeof serviceEntrySpecSchema>;
export type WorkloadGroupSpec = z.output<typeof workloadGroupSpecSchema>;
