/** What an upstream connection carries besides the bytes: connection state and the verified peer. */
import type net from 'node:net';

/** Set on an upstream socket once TCP (and TLS, if any) is established. */
export const CONNECTED = Symbol('crossmesh.connected');
/** Why TLS failed, for upstream_transport_failure_reason. */
export const TRANSPORT_FAILURE = Symbol('crossmesh.transportFailure');
/** The peer's verified SPIFFE ID on an mTLS upstream socket. */
export const PEER_ID = Symbol('crossmesh.peerId');

export interface UpstreamSocket extends net.Socket {
  [CONNECTED]?: boolean;
  [TRANSPORT_FAILURE]?: string;
  [PEER_ID]?: string;
}
