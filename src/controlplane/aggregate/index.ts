export * from './mesh-view.js';
export * from './split-horizon.js';
