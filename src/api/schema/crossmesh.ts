import { z } from 'zod';
import {
  dns1123Label,
  intRange,
  nonEmptyStr,
  numRange,
  str,
  stringMap,
  wildcardHost,
  bool,
} from './common.js';
import { localityLbSettingSchema, outlierDetectionSchema } from './destination-rule.js';
import { envelope } from './meta.js';
import { CROSSMESH_VERSIONS } from './versions.js';

// crossmesh.io kinds: mesh-wide settings (what Istio keeps in its MeshConfig) and the lab's Topology.

const LOCALITY = /^[^/\s]+\/[^/\s]+(\/[^/\s]+)?$|^[^/\s]+$/;
const locality = str.refine((s) => LOCALITY.test(s), { error: 'must be a locality "region/zone/subzone" (zone and subzone optional)' });

export const meshConfigSpecSchema = z.strictObject({
  /** SPIFFE trust domain of workload identities. */
  trustDomain: dns1123LikeDomain().default('cluster.local'),
  trustDomainAliases: z.array(dns1123LikeDomain()).optional(),
  meshId: str.optional(),
  /** Hosts never exported to other clusters (shorthand for serviceSettings with clusterLocal: true). */
  clusterLocalHosts: z.array(wildcardHost).optional(),
  /** Istio's MeshConfig.serviceSettings. */
  serviceSettings: z
    .array(
      z.strictObject({
        settings: z.strictObject({ clusterLocal: bool.default(false) }),
        hosts: z.array(wildcardHost).min(1, { error: 'required: at least one host' }),
      }),
    )
    .optional(),
  /** Mesh-wide default for DestinationRules that set none. */
  localityLbSetting: localityLbSettingSchema.optional(),
  /** Applied to services without an outlierDetection of their own, so that locality failover works. */
  defaultOutlierDetection: outlierDetectionSchema.optional(),
});
export const meshConfigSchema = envelope('MeshConfig', CROSSMESH_VERSIONS, { spec: meshConfigSpecSchema.default({ trustDomain: 'cluster.local' }) });

function dns1123LikeDomain() {
  return str.refine((s) => s.length <= 253 && /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/.test(s), {
    error: 'must be a domain name such as "cluster.local"',
  });
}

/** One entry of a cluster's manifests: a file path (relative to the Topology's file) or an inline resource. */
export const manifestEntrySchema = z.union([nonEmptyStr, z.record(str, z.unknown())], {
  error: 'expected a file path or an inline resource',
});

/**
 * The part of Istio's MeshConfig the lab acts on: `defaultConfig.proxyMetadata`, the environment of every
 * sidecar. Values are strings, as in Istio. `ISTIO_META_DNS_CAPTURE: "false"` turns the sidecars' DNS proxy off.
 */
export const topologyMeshConfigSchema = z.strictObject({
  defaultConfig: z
    .strictObject({
      proxyMetadata: z
        .strictObject({
          ISTIO_META_DNS_CAPTURE: z
            .enum(['true', 'false'], {
              error: (iss) => (typeof iss.input === 'boolean' ? `must be the string "${String(iss.input)}" (proxyMetadata values are strings: quote it)` : `must be "true" or "false" (got ${JSON.stringify(iss.input)})`),
            })
            .optional(),
        })
        .optional(),
    })
    .optional(),
});

export const topologyClusterSchema = z.strictObject({
  name: dns1123Label,
  network: dns1123Label,
  locality,
  /**
   * Name of the root CA that signs this cluster's intermediate; clusters with the same name share a root
   * (default "mesh": one root for all). A name of its own gives the cluster a root nobody else trusts.
   */
  trustRoot: dns1123Label.optional(),
  /** Overrides the Topology's meshConfig for this cluster's sidecars (each primary has its own istiod install). */
  meshConfig: topologyMeshConfigSchema.optional(),
  gateways: z
    .strictObject({
      eastWest: z.strictObject({ replicas: intRange(0, 16).default(1), port: intRange(1, 65535).default(15443) }).optional(),
    })
    .optional(),
  manifests: z.array(manifestEntrySchema).default([]),
});

/** A check the lab runs after bringing a topology up: requests from one workload, expectations on replies. */
export const topologyCheckSchema = z.strictObject({
  name: nonEmptyStr,
  from: z.strictObject({ cluster: dns1123Label, namespace: dns1123Label.default('default'), deployment: dns1123Label }),
  request: z.strictObject({ url: nonEmptyStr, method: str.default('GET'), headers: stringMap.optional() }),
  count: intRange(1, 100_000).default(1),
  expect: z
    .strictObject({
      status: intRange(100, 599).optional(),
      bodyContains: z.array(str).optional(),
      shares: z.array(z.strictObject({ bodyContains: str, minPercent: numRange(0, 100).optional(), maxPercent: numRange(0, 100).optional() })).optional(),
    })
    .default({}),
});

export const topologySpecSchema = z
  .strictObject({
    meshId: dns1123Label.default('mesh1'),
    trustDomain: dns1123LikeDomain().default('cluster.local'),
    isolation: z.enum(['loopback', 'netns']).default('loopback'),
    /** Mesh-wide proxy settings (Istio's meshConfig), for every cluster that does not override them. */
    meshConfig: topologyMeshConfigSchema.optional(),
    networks: z.array(z.strictObject({ name: dns1123Label })).min(1, { error: 'required: at least one network' }),
    clusters: z.array(topologyClusterSchema).min(1, { error: 'required: at least one cluster' }),
    checks: z.array(topologyCheckSchema).default([]),
  })
  .superRefine((t, ctx) => {
    const networks = new Set<string>();
    t.networks.forEach((n, i) => {
      if (networks.has(n.name)) ctx.addIssue({ code: 'custom', path: ['networks', i, 'name'], message: `duplicate network "${n.name}"` });
      networks.add(n.name);
    });
    const clusters = new Set<string>();
    t.clusters.forEach((c, i) => {
      if (clusters.has(c.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `duplicate cluster "${c.name}"` });
      clusters.add(c.name);
      if (!networks.has(c.network)) {
        ctx.addIssue({ code: 'custom', path: ['clusters', i, 'network'], message: `unknown network "${c.network}" (networks: ${[...networks].join(', ')})` });
      }
    });
    t.checks.forEach((c, i) => {
      if (!clusters.has(c.from.cluster)) {
        ctx.addIssue({ code: 'custom', path: ['checks', i, 'from', 'cluster'], message: `unknown cluster "${c.from.cluster}"` });
      }
    });
  });
export const topologySchema = envelope('Topology', CROSSMESH_VERSIONS, { spec: topologySpecSchema });

export type MeshConfigSpec = z.output<typeof meshConfigSpecSchema>;
export type TopologyCheck = z.output<typeof topologyCheckSchema>;
export type TopologyMeshConfig = z.output<typeof topologyMeshConfigSchema>;
