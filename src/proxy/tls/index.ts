export { parseClientHello, announcedHandshakeLength } from './client-hello.js';
export type { ClientHello, ClientHelloParse } from './client-hello.js';
export { peekClientHello } from './peek.js';
export type { PeekOptions, PeekResult, PeekFailure } from './peek.js';
