import type { ClusterPlan, GatewayPlan, PodPlan } from './plan.js';

/**
 * Loopback isolation: every host gets its own 127.x.y.z, so every process can use the standard ports.
 * - control plane of cluster c: 127.1.c.1
 * - east-west gateway r of cluster c: 127.(50+c).0.(r+1) (its "public" address)
 * - pod p of cluster c: 127.(10+c).(p / 256).(p % 256), its app on 127.(110+c).same
 * Linux routes all of 127.0.0.0/8 to lo; other systems need aliases.
 */
export const loopbackAddresses = {
  controlPlane: (c: ClusterPlan) => `127.1.${c.index}.1`,
  gateway: (c: ClusterPlan, g: GatewayPlan) => `127.${50 + c.index}.0.${c.gateways.indexOf(g) + 1}`,
  pod: (c: ClusterPlan, p: PodPlan) => {
    const n = c.pods.indexOf(p) + 10;
    return `127.${10 + c.index}.${n >> 8}.${n & 255}`;
  },
  app: (c: ClusterPlan, p: PodPlan) => {
    const n = c.pods.indexOf(p) + 10;
    return `127.${110 + c.index}.${n >> 8}.${n & 255}`;
  },
};
