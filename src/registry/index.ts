export * from './model.js';
export * from './from-resources.js';
