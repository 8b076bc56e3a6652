import { z } from 'zod';
import { annotations, dns1123Label, dns1123Subdomain, labels, nonNegativeInt, str } from './common.js';

/** ObjectMeta as users write it; `name` is checked with the kind's own naming rule. */
export function objectMeta(name: z.ZodType<string> = dns1123Subdomain) {
  return z.strictObject({
    name,
    namespace: dns1123Label.optional(),
    labels: labels.optional(),
    annotations: annotations.optional(),
    resourceVersion: str.optional(),
    uid: str.optional(),
    creationTimestamp: str.optional(),
    generation: nonNegativeInt.optional(),
  });
}

/**
 * The envelope every resource shares. `status` is accepted and ignored, as `kubectl apply` does, so that
 * `kubectl get -o yaml` output validates.
 */
export function envelope<K extends string, const V extends readonly [string, ...string[]], S extends z.ZodRawShape>(
  kind: K,
  apiVersions: V,
  body: S,
  name?: z.ZodType<string>,
) {
  return z.strictObject({
    apiVersion: z.enum(apiVersions),
    kind: z.literal(kind),
    metadata: objectMeta(name),
    ...body,
    status: z.unknown().optional(),
  });
}
