export * from './model.js';
export * from './from-resources.js';
export * from './vip.js';
