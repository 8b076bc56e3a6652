import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What a running lab looks like; `crossmesh lab status --output json` prints it. Scripts rely on these
 * field names (issue contract): keep them.
 */
export interface LabStatus {
  clusters: Array<{ name: string; network: string; locality: string; controlPlane: { xds: string; api: string; admin: string } }>;
  gateways: Array<{ name: string; cluster: string; network: string; address: string; admin: string }>;
  pods: Array<{ name: string; cluster: string; namespace: string; app: string; version: string; ip: string; netns: string | null; admin: string; appAddress: string }>;
}

/** Everything `down`, `lab exec|logs|kill|start` need, kept in the lab directory. */
export interface LabState extends LabStatus {
  isolation: 'loopback' | 'netns';
  dir: string;
  pid: number;
  netnsPrefix?: string;
  rootCert: string;
  tokens: Record<string, string>;
}

const FILE = 'lab.json';

export function writeLabState(dir: string, state: LabState): void {
  const tmp = join(dir, `${FILE}.tmp`);
  writeFileSync(tmp, JSON.stringify(state, null, 2));
  renameSync(tmp, join(dir, FILE));
}

export function readLabState(dir: string): LabState | undefined {
  const file = join(dir, FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function publicStatus(s: LabState): LabStatus {
  return { clusters: s.clusters, gateways: s.gateways, pods: s.pods };
}
