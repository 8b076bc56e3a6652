import { z } from 'zod';
import {
  bool,
  countSet,
  dns1035Label,
  dns1123Label,
  dns1123Subdomain,
  intRange,
  labelSelector,
  labels,
  annotations,
  nonEmptyStr,
  nonNegativeInt,
  port,
  str,
  stringMap,
  strList,
} from './common.js';
import { envelope } from './meta.js';

// Kubernetes core kinds, trimmed to what a mesh and the lab need. Unknown fields are reported, so what is
// not modelled here is rejected rather than silently ignored.

const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** A port by number or by IANA service name, as `targetPort` and probes accept. */
export const intOrPortName = z.union(
  [port, str.refine((s) => s.length <= 15 && IANA_SVC_NAME.test(s) && !s.includes('--'), { error: 'must be a port name (IANA_SVC_NAME)' })],
  { error: 'expected a port number 1..65535 or a port name' },
);

const protocol = z.enum(['TCP', 'UDP', 'SCTP']);

export const namespaceSpecSchema = z.strictObject({ finalizers: strList.optional() });
export const namespaceSchema = envelope('Namespace', ['v1'], { spec: namespaceSpecSchema.optional() }, dns1123Label);

/** A Service port; `targetPort` defaults to `port`, as Kubernetes does. */
export const servicePortSchema = z
  .strictObject({
    name: dns1123Label.optional(),
    protocol: protocol.default('TCP'),
    appProtocol: str.optional(),
    port,
    targetPort: intOrPortName.optional(),
    nodePort: port.optional(),
  })
  .transform((p) => ({ ...p, targetPort: p.targetPort ?? p.port }));

export const serviceSpecSchema = z
  .strictObject({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
    selector: labels.optional(),
    ports: z.array(servicePortSchema).optional(),
    clusterIP: str.optional(),
    clusterIPs: strList.optional(),
    externalName: str.optional(),
    externalIPs: strList.optional(),
    loadBalancerIP: str.optional(),
    sessionAffinity: z.enum(['None', 'ClientIP']).optional(),
    publishNotReadyAddresses: bool.optional(),
    ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).optional(),
    ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  })
  .superRefine((s, ctx) => {
    const headless = s.clusterIP === 'None';
    if (s.type === 'ExternalName') {
      if (!s.externalName) ctx.addIssue({ code: 'custom', path: ['externalName'], message: 'required for type ExternalName' });
    } else if (!headless && (!s.ports || s.ports.length === 0)) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'required: at least one port' });
    }
    const ports = s.ports ?? [];
    const names = new Map<string, number>();
    const numbers = new Map<string, number>();
    ports.forEach((p, i) => {
      if (p.name === undefined) {
        if (ports.length > 1) ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: 'required when a Service has more than one port' });
      } else if (names.has(p.name)) {
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: `duplicate port name "${p.name}" (also ports[${names.get(p.name)}])` });
      } else names.set(p.name, i);
      const key = `${p.port}/${p.protocol}`;
      if (numbers.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'port'], message: `duplicate port ${key} (also ports[${numbers.get(key)}])` });
      } else numbers.set(key, i);
    });
  });
export const serviceSchema = envelope('Service', ['v1'], { spec: serviceSpecSchema }, dns1035Label);

export const serviceAccountSchema = envelope('ServiceAccount', ['v1'], {
  secrets: z.array(z.strictObject({ name: str })).optional(),
  imagePullSecrets: z.array(z.strictObject({ name: str })).optional(),
  automountServiceAccountToken: bool.optional(),
});

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const secretKey = str.refine((k) => k.length <= 253 && SECRET_KEY.test(k), {
  error: 'must be a Secret key: letters, digits, "-", "_" or "."',
});

export const secretSchema = envelope('Secret', ['v1'], {
  type: str.default('Opaque'),
  immutable: bool.optional(),
  /** Base64-encoded values, as the Kubernetes API stores them. */
  data: z.record(secretKey, str.refine((v) => BASE64.test(v.replace(/\s+/g, '')), { error: 'must be base64-encoded' })).optional(),
  /** Plain-text values; merged over `data` when the secret is read with `secretData`. */
  stringData: z.record(secretKey, str).optional(),
});

const envVar = z.strictObject({
  name: nonEmptyStr,
  value: str.optional(),
  valueFrom: z.record(str, z.unknown()).optional(),
});

/** Probes are passed through to the lab's health checking; their inner shape follows Kubernetes. */
const probe = z.strictObject({
  httpGet: z.strictObject({ path: str.optional(), port: intOrPortName, host: str.optional(), scheme: z.enum(['HTTP', 'HTTPS']).optional() }).optional(),
  tcpSocket: z.strictObject({ port: intOrPortName, host: str.optional() }).optional(),
  exec: z.strictObject({ command: strList }).optional(),
  initialDelaySeconds: nonNegativeInt.optional(),
  periodSeconds: intRange(1, 2 ** 31 - 1).optional(),
  timeoutSeconds: intRange(1, 2 ** 31 - 1).optional(),
  successThreshold: intRange(1, 2 ** 31 - 1).optional(),
  failureThreshold: intRange(1, 2 ** 31 - 1).optional(),
});

export const containerSchema = z.strictObject({
  name: dns1123Label,
  image: nonEmptyStr,
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: strList.optional(),
  args: strList.optional(),
  workingDir: str.optional(),
  ports: z
    .array(
      z.strictObject({
        containerPort: port,
        name: dns1123Label.optional(),
        protocol: protocol.default('TCP'),
        hostPort: port.optional(),
      }),
    )
    .optional(),
  env: z.array(envVar).optional(),
  resources: z
    .strictObject({
      requests: z.record(str, z.union([str, z.number()])).optional(),
      limits: z.record(str, z.union([str, z.number()])).optional(),
    })
    .optional(),
  readinessProbe: probe.optional(),
  livenessProbe: probe.optional(),
  startupProbe: probe.optional(),
  volumeMounts: z
    .array(z.strictObject({ name: str, mountPath: nonEmptyStr, readOnly: bool.optional(), subPath: str.optional() }))
    .optional(),
  securityContext: z.record(str, z.unknown()).optional(),
});

export const podSpecSchema = z
  .strictObject({
    containers: z.array(containerSchema).min(1, { error: 'required: at least one container' }),
    initContainers: z.array(containerSchema).optional(),
    serviceAccountName: dns1123Subdomain.optional(),
    hostname: dns1123Label.optional(),
    nodeSelector: stringMap.optional(),
    terminationGracePeriodSeconds: nonNegativeInt.optional(),
    restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
    securityContext: z.record(str, z.unknown()).optional(),
    /** Volumes are modelled loosely: the lab only mounts `secret`, `configMap` and `emptyDir`. */
    volumes: z.array(z.looseObject({ name: dns1123Label })).optional(),
  })
  .superRefine((spec, ctx) => {
    const seen = new Map<string, number>();
    spec.containers.forEach((c, i) => {
      const first = seen.get(c.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['containers', i, 'name'], message: `duplicate container name "${c.name}" (also containers[${first}])` });
      } else seen.set(c.name, i);
    });
  });

export const deploymentSpecSchema = z
  .strictObject({
    replicas: nonNegativeInt.default(1),
    selector: labelSelector,
    template: z.strictObject({
      metadata: z
        .strictObject({ name: str.optional(), labels: labels.optional(), annotations: annotations.optional() })
        .optional(),
      spec: podSpecSchema,
    }),
    strategy: z.record(str, z.unknown()).optional(),
    minReadySeconds: nonNegativeInt.optional(),
    revisionHistoryLimit: nonNegativeInt.optional(),
    progressDeadlineSeconds: nonNegativeInt.optional(),
    paused: bool.optional(),
  })
  .superRefine((spec, ctx) => {
    // Kubernetes rejects a Deployment whose selector would not select its own pods.
    const podLabels = spec.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(spec.selector.matchLabels ?? {})) {
      if (podLabels[k] !== v) {
        ctx.addIssue({
          code: 'custom',
          path: ['template', 'metadata', 'labels'],
          message: `selector does not match template labels: missing ${k}=${v}`,
        });
      }
    }
    if (countSet(spec.selector, ['matchLabels', 'matchExpressions']).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['selector'], message: 'must set matchLabels or matchExpressions' });
    }
  });
export const deploymentSchema = envelope('Deployment', ['apps/v1'], { spec: deploymentSpecSchema });

export type NamespaceSpec = z.output<typeof namespaceSpecSchema>;
export type ServicePort = z.output<typeof servicePortSchema>;
export type ServiceSpec = z.output<typeof serviceSpecSchema>;
export type Container = z.output<typeof containerSchema>;
export type PodSpec = z.output<typeof podSpecSchema>;
export type DeploymentSpec = z.output<typeof deploymentSpecSchema>;
