export { createSniPassthroughGateway, DEFAULT_GATEWAY_PORT } from './sni-passthrough.js';
export type { GatewayTcpEvent, SniPassthroughGateway, SniPassthroughGatewayOptions } from './sni-passthrough.js';
export { pickOrder, spliceSockets } from './splice.js';
export type { Endpoint, SpliceOutcome } from './splice.js';
