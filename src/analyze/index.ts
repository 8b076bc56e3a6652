export { analyze, formatFinding, servicePortConflicts } from './analyze.js';
export type { ClusterInput, Finding, Level } from './analyze.js';
