/** apiVersions Istio serves for networking.istio.io kinds. */
export const NETWORKING_VERSIONS = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'] as const;
/** apiVersions Istio serves for security.istio.io kinds. */
export const SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'] as const;
export const CROSSMESH_VERSIONS = ['crossmesh.io/v1alpha1'] as const;
