import type { Resource } from '../../api/types.js';
import type {
  DestinationRuleSpec,
  GatewaySpec,
  HTTPRoute,
  LocalityLbSetting,
  OutlierDetection,
  VirtualServiceSpec,
} from '../../api/index.js';

export type HeaderOps = NonNullable<NonNullable<HTTPRoute['headers']>['request']>;
export type StringMatch = { exact?: string; prefix?: string; regex?: string };

/** The mesh-wide settings translation depends on. */
export interface MeshSettings {
  trustDomain: string;
  domainSuffix: string;
  /** Locality load balancing settings applied where a DestinationRule gives none. */
  localityLbSetting?: LocalityLbSetting;
  /** Outlier detection for services whose DestinationRule sets none (so locality failover works). */
  defaultOutlierDetection?: OutlierDetection;
}

/** Validated Istio config as translation consumes it. */
export interface MeshConfigSnapshot {
  virtualServices: ReadonlyArray<Resource<VirtualServiceSpec>>;
  destinationRules: ReadonlyArray<Resource<DestinationRuleSpec>>;
  gateways: ReadonlyArray<Resource<GatewaySpec>>;
}

