export { analyze, formatFinding } from './analyze.js';
export type { ClusterInput, Finding, Level } from './analyze.js';
