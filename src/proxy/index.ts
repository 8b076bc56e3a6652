/** The crossmesh proxy: the process core (runtime), its admin API, and the mechanism modules it wires. */
export * from './runtime/index.js';
export * from './admin/index.js';
