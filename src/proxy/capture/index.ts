export { originalDestination, originalDstSupport } from './original-dst.js';
export type { OriginalDstResult, OriginalDstFailure } from './original-dst.js';
