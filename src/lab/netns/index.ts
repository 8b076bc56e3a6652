export * from './ip.js';
export * from './lab-network.js';
