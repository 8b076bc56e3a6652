/** A small client for Kubernetes-style resource APIs: kubeconfig, get/list/apply/delete, and informers. */
export { parseKubeconfig, buildKubeconfig } from './kubeconfig.js';
export type { KubeTarget, KubeconfigOptions } from './kubeconfig.js';
export { createKubeClient, resourcePath } from './client.js';
export type {
  ApplyResponse,
  DeleteResponse,
  KubeClient,
  KubeClientOptions,
  ListOptions,
  ListResponse,
  ObjectRef,
  RawWatchEvent,
  TypeRef,
  WatchOptions,
} from './client.js';
export { createInformer } from './informer.js';
export type { Informer, InformerEvent, InformerOptions, SyncState } from './informer.js';
export { KubeClientError, KubeconfigError } from './errors.js';
export { watchCluster, combineStates } from './cluster-watch.js';
export type { ClusterWatch, ClusterWatchOptions } from './cluster-watch.js';
