import { randomBytes } from 'node:crypto';
import { stringify as toYaml } from 'yaml';
import type { Resource } from '../api/types.js';
import type { KubeClient } from '../registry/kube-client/index.js';
import { buildKubeconfig } from '../registry/kube-client/index.js';
import { LABEL_API_TOKEN } from './control-plane.js';
import { ANNOTATION_CLUSTER, LABEL_MULTICLUSTER, SYSTEM_NAMESPACE } from './remote-clusters.js';

/**
 * A remote secret in Istio's format: label istio/multiCluster=true, annotation networking.istio.io/cluster,
 * one key (the cluster id) holding a kubeconfig.
 */
export function remoteSecret(cluster: string, kubeconfig: Record<string, unknown>): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: `istio-remote-secret-${cluster}`,
      namespace: SYSTEM_NAMESPACE,
      labels: { [LABEL_MULTICLUSTER]: 'true' },
      annotations: { [ANNOTATION_CLUSTER]: cluster },
    },
    stringData: { [cluster]: toYaml(kubeconfig) },
  } as Resource;
}

/**
 * Stores a new read-only API token in the cluster `client` talks to (so it can be revoked on its own), and
 * returns the remote secret other clusters apply to watch it through `server`.
 */
export async function createRemoteSecret(
  client: KubeClient,
  opts: { cluster: string; server: string; caPem?: string; insecureSkipTlsVerify?: boolean },
): Promise<Resource> {
  const token = randomBytes(24).toString('base64url');
  await client.apply([
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `remote-reader-${randomBytes(4).toString('hex')}`, namespace: SYSTEM_NAMESPACE, labels: { [LABEL_API_TOKEN]: 'true' } },
      stringData: { token, role: 'read' },
    } as Resource,
  ]);
  const kubeconfig = buildKubeconfig(
    { server: opts.server, token, ...(opts.caPem ? { ca: opts.caPem } : {}), ...(opts.insecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : {}) },
    opts.cluster,
  );
  return remoteSecret(opts.cluster, kubeconfig);
}
