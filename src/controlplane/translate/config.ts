import type { Resource } from '../../api/types.js';

/**
 * The Istio config translation reads, with Istio's field names. These mirror (a subset of) the
 * validated types in src/api; translation only ever sees validated, defaulted resources.
 */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface DestinationLike {
  host: string;
  subset?: string;
  port?: { number?: number };
}

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface HttpRouteLike {
  name?: string;
  match?: Array<{
    uri?: StringMatch;
    method?: StringMatch;
    authority?: StringMatch;
    headers?: Record<string, StringMatch>;
    withoutHeaders?: Record<string, StringMatch>;
    queryParams?: Record<string, StringMatch>;
    port?: number;
    sourceLabels?: Record<string, string>;
    sourceNamespace?: string;
    gateways?: string[];
    ignoreUriCase?: boolean;
  }>;
  route?: Array<{ destination: DestinationLike; weight?: number; headers?: { request?: HeaderOps; response?: HeaderOps } }>;
  redirect?: { uri?: string; authority?: string; redirectCode?: number };
  directResponse?: { status: number; body?: { string?: string } };
  rewrite?: { uri?: string; authority?: string };
  timeout?: string;
  retries?: { attempts: number; perTryTimeout?: string; retryOn?: string };
  fault?: {
    delay?: { fixedDelay: string; percentage?: { value: number } };
    abort?: { httpStatus?: number; percentage?: { value: number } };
  };
  mirror?: DestinationLike;
  mirrorPercentage?: { value: number };
  headers?: { request?: HeaderOps; response?: HeaderOps };
}

export interface TcpRouteLike {
  match?: Array<{ port?: number; sourceLabels?: Record<string, string>; destinationSubnets?: string[] }>;
  route: Array<{ destination: DestinationLike; weight?: number }>;
}

export interface VirtualServiceSpecLike {
  hosts: string[];
  gateways?: string[];
  http?: HttpRouteLike[];
  tcp?: TcpRouteLike[];
  exportTo?: string[];
}

export interface LocalityLbSettingLike {
  enabled?: boolean;
  distribute?: Array<{ from: string; to: Record<string, number> }>;
  failover?: Array<{ from: string; to: string }>;
  failoverPriority?: string[];
}

export interface TrafficPolicyLike {
  loadBalancer?: {
    simple?: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'LEAST_CONN' | 'UNSPECIFIED';
    consistentHash?: {
      httpHeaderName?: string;
      httpCookie?: { name: string; path?: string; ttl?: string };
      useSourceIp?: boolean;
      httpQueryParameterName?: string;
      minimumRingSize?: number;
    };
    localityLbSetting?: LocalityLbSettingLike;
  };
  connectionPool?: {
    tcp?: { maxConnections?: number; connectTimeout?: string };
    http?: {
      http1MaxPendingRequests?: number;
      http2MaxRequests?: number;
      maxRequestsPerConnection?: number;
      maxRetries?: number;
      idleTimeout?: string;
    };
  };
  outlierDetection?: {
    consecutive5xxErrors?: number;
    consecutiveGatewayErrors?: number;
    interval?: string;
    baseEjectionTime?: string;
    maxEjectionPercent?: number;
    minHealthPercent?: number;
  };
  tls?: { mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL' };
  portLevelSettings?: Array<TrafficPolicyLike & { port?: { number?: number } }>;
}

export interface DestinationRuleSpecLike {
  host: string;
  trafficPolicy?: TrafficPolicyLike;
  subsets?: Array<{ name: string; labels?: Record<string, string>; trafficPolicy?: TrafficPolicyLike }>;
  exportTo?: string[];
}

export interface GatewaySpecLike {
  selector?: Record<string, string>;
  servers: Array<{ port: { number: number; name?: string; protocol?: string }; hosts: string[]; tls?: { mode?: string } }>;
}

/** The mesh-wide settings translation depends on. */
export interface MeshSettings {
  trustDomain: string;
  domainSuffix: string;
  /** Locality load balancing settings applied where a DestinationRule gives none. */
  localityLbSetting?: LocalityLbSettingLike;
}

/** Validated Istio config as translation consumes it. */
export interface MeshConfigSnapshot {
  virtualServices: ReadonlyArray<Resource<VirtualServiceSpecLike>>;
  destinationRules: ReadonlyArray<Resource<DestinationRuleSpecLike>>;
  gateways: ReadonlyArray<Resource<GatewaySpecLike>>;
}

export const emptyConfig: MeshConfigSnapshot = { virtualServices: [], destinationRules: [], gateways: [] };
