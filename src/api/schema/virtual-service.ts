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
  percent,
  port,
  portSelector,
  str,
  stringMap,
  stringMatch,
  strList,
  wildcardHost,
  exportTo,
} from './common.js';
import { envelope } from './meta.js';
import { NETWORKING_VERSIONS } from './versions.js';

// networking.istio.io VirtualService, field for field as Istio documents it.

/** Where a route sends traffic: a service host, optionally one subset and one port. */
export const destinationSchema = z.strictObject({
  host: exactHost,
  subset: nonEmptyStr.optional(),
  port: portSelector.optional(),
});

const headerOperations = z.strictObject({
  set: stringMap.optional(),
  add: stringMap.optional(),
  remove: strList.optional(),
});

export const headersSchema = z.strictObject({
  request: headerOperations.optional(),
  response: headerOperations.optional(),
});

/** A weighted destination. Istio: with several destinations, the weights of one route sum to 100. */
export const httpRouteDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: intRange(0, 100).optional(),
  headers: headersSchema.optional(),
});

export const routeDestinationSchema = z.strictObject({
  destination: destinationSchema,
  weight: intRange(0, 100).optional(),
});

export const httpMatchRequestSchema = z.strictObject({
  name: str.optional(),
  uri: stringMatch.optional(),
  scheme: stringMatch.optional(),
  method: stringMatch.optional(),
  authority: stringMatch.optional(),
  headers: z.record(str, stringMatch).optional(),
  withoutHeaders: z.record(str, stringMatch).optional(),
  queryParams: z.record(str, stringMatch).optional(),
  port: port.optional(),
  sourceLabels: labels.optional(),
  gateways: strList.optional(),
  sourceNamespace: str.optional(),
  ignoreUriCase: bool.optional(),
});

export const httpRetrySchema = z.strictObject({
  attempts: nonNegativeInt,
  perTryTimeout: duration.optional(),
  retryOn: str.optional(),
  retryRemoteLocalities: bool.optional(),
});

export const httpFaultInjectionSchema = z
  .strictObject({
    delay: z
      .strictObject({ percentage: percent.optional(), fixedDelay: duration, percent: intRange(0, 100).optional() })
      .optional(),
    abort: z
      .strictObject({
        percentage: percent.optional(),
        httpStatus: intRange(200, 599).optional(),
        grpcStatus: str.optional(),
      })
      .superRefine((a, ctx) => {
        if (countSet(a, ['httpStatus', 'grpcStatus']).length !== 1) {
          ctx.addIssue({ code: 'custom', message: 'must set exactly one of httpStatus, grpcStatus' });
        }
      })
      .optional(),
  })
  .superRefine((f, ctx) => {
    if (!f.delay && !f.abort) ctx.addIssue({ code: 'custom', message: 'must set delay or abort' });
  });

export const httpRewriteSchema = z.strictObject({
  uri: str.optional(),
  authority: str.optional(),
  uriRegexRewrite: z.strictObject({ match: str, rewrite: str }).optional(),
});

export const httpRedirectSchema = z.strictObject({
  uri: str.optional(),
  authority: str.optional(),
  port: port.optional(),
  derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
  scheme: str.optional(),
  redirectCode: intRange(300, 399).optional(),
});

export const httpDirectResponseSchema = z.strictObject({
  status: intRange(200, 599),
  body: z.strictObject({ string: str.optional(), bytes: str.optional() }).optional(),
});

export const corsPolicySchema = z.strictObject({
  allowOrigins: z.array(stringMatch).optional(),
  allowMethods: strList.optional(),
  allowHeaders: strList.optional(),
  exposeHeaders: strList.optional(),
  maxAge: duration.optional(),
  allowCredentials: bool.optional(),
});

export const httpRouteSchema = z
  .strictObject({
    name: str.optional(),
    match: z.array(httpMatchRequestSchema).optional(),
    route: z.array(httpRouteDestinationSchema).optional(),
    redirect: httpRedirectSchema.optional(),
    directResponse: httpDirectResponseSchema.optional(),
    delegate: z.strictObject({ name: nonEmptyStr, namespace: str.optional() }).optional(),
    rewrite: httpRewriteSchema.optional(),
    timeout: duration.optional(),
    retries: httpRetrySchema.optional(),
    fault: httpFaultInjectionSchema.optional(),
    mirror: destinationSchema.optional(),
    mirrorPercentage: percent.optional(),
    mirrors: z.array(z.strictObject({ destination: destinationSchema, percentage: percent.optional() })).optional(),
    corsPolicy: corsPolicySchema.optional(),
    headers: headersSchema.optional(),
  })
  .superRefine((r, ctx) => {
    const actions = countSet(r, ['route', 'redirect', 'directResponse', 'delegate']);
    if (actions.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'must set one of route, redirect, directResponse, delegate' });
    } else if (actions.length > 1) {
      ctx.addIssue({ code: 'custom', message: `must set only one of ${actions.join(', ')}` });
    }
    if (r.route && r.route.length === 0) ctx.addIssue({ code: 'custom', path: ['route'], message: 'must have at least one destination' });
    checkWeights(r.route, ctx);
  });

/** Istio: a route with more than one destination has weights summing to 100 (missing weights count 0). */
function checkWeights(route: ReadonlyArray<{ weight?: number | undefined }> | undefined, ctx: z.RefinementCtx): void {
  if (!route || route.length < 2) return;
  const sum = route.reduce((a, d) => a + (d.weight ?? 0), 0);
  if (sum !== 100) ctx.addIssue({ code: 'custom', path: ['route'], message: `weights must sum to 100 (got ${sum})` });
}

const l4MatchBase = {
  destinationSubnets: strList.optional(),
  port: port.optional(),
  sourceLabels: labels.optional(),
  gateways: strList.optional(),
  sourceNamespace: str.optional(),
};

export const tlsRouteSchema = z
  .strictObject({
    match: z
      .array(z.strictObject({ sniHosts: z.array(wildcardHost).min(1, { error: 'required: at least one SNI host' }), ...l4MatchBase }))
      .min(1, { error: 'required: at least one match' }),
    route: z.array(routeDestinationSchema).min(1, { error: 'required: at least one destination' }),
  })
  .superRefine((r, ctx) => checkWeights(r.route, ctx));

export const tcpRouteSchema = z
  .strictObject({
    match: z.array(z.strictObject(l4MatchBase)).optional(),
    route: z.array(routeDestinationSchema).min(1, { error: 'required: at least one destination' }),
  })
  .superRefine((r, ctx) => checkWeights(r.route, ctx));

export const virtualServiceSpecSchema = z.strictObject({
  /** Delegate VirtualServices (without hosts) are not supported: hosts are required. */
  hosts: z.array(wildcardHost).min(1, { error: 'required: at least one host' }),
  gateways: strList.optional(),
  http: z.array(httpRouteSchema).optional(),
  tls: z.array(tlsRouteSchema).optional(),
  tcp: z.array(tcpRouteSchema).optional(),
  exportTo: exportTo.optional(),
});

export const virtualServiceSchema = envelope('VirtualService', NETWORKING_VERSIONS, { spec: virtualServiceSpecSchema });

export type Destination = z.output<typeof destinationSchema>;
export type Headers = z.output<typeof headersSchema>;
export type HTTPRouteDestination = z.output<typeof httpRouteDestinationSchema>;
export type RouteDestination = z.output<typeof routeDestinationSchema>;
export type HTTPMatchRequest = z.output<typeof httpMatchRequestSchema>;
export type HTTPRetry = z.output<typeof httpRetrySchema>;
export type HTTPFaultInjection = z.output<typeof httpFaultInjectionSchema>;
export type HTTPRoute = z.output<typeof httpRouteSchema>;
export type TLSRoute = z.output<typeof tlsRouteSchema>;
export type TCPRoute = z.output<typeof tcpRouteSchema>;
export type VirtualServiceSpec = z.output<typeof virtualServiceSpecSchema>;
