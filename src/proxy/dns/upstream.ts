/**
 * Forwarding a raw DNS query to upstream servers over UDP or TCP. The query bytes go out unchanged (EDNS
 * options and all), one fresh UDP socket per query so IDs from different clients never collide, and the
 * answer bytes come back unchanged. Failures are values: the caller turns them into SERVFAIL.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Clock } from '../../shared/clock.js';

/** One upstream resolver. */
export interface UpstreamServer {
  address: string;
  /** default 53 */
  port?: number;
}

export type ForwardResult = { ok: true; response: Buffer; server: string } | { ok: false; error: string };

export interface ForwardOptions {
  servers: readonly UpstreamServer[];
  timeoutMs: number;
  clock: Clock;
  transport: 'udp' | 'tcp';
}

/** Parses `host`, `host:port`, `[v6]:port` into an UpstreamServer (resolv.conf and CLI forms). */
export function parseUpstream(text: string): UpstreamServer {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) return { address: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : 53 };
  if (net.isIPv6(text)) return { address: text, port: 53 };
  const [address, port] = text.split(':');
  return { address: address!, port: port ? Number(port) : 53 };
}

/** Tries each server in turn, each with the full timeout; resolves with the first answer. */
export async function forwardQuery(query: Buffer, options: ForwardOptions): Promise<ForwardResult> {
  if (options.servers.length === 0) return { ok: false, error: 'no upstream servers configured' };
  const errors: string[] = [];
  for (const server of options.servers) {
    const r = options.transport === 'udp' ? await viaUdp(query, server, options) : await viaTcp(query, server, options);
    if (r.ok) return r;
    errors.push(r.error);
  }
  return { ok: false, error: errors.join('; ') };
}

function label(s: UpstreamServer): string {
  return `${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port ?? 53}`;
}

function viaUdp(query: Buffer, server: UpstreamServer, options: ForwardOptions): Promise<ForwardResult> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(server.address) ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    let settled = false;
    const finish = (r: ForwardResult): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.close();
      resolve(r);
    };
    const timer = options.clock.setTimeout(() => finish({ ok: false, error: `${label(server)}: timeout after ${options.timeoutMs} ms` }), options.timeoutMs);
    socket.on('error', (err) => finish({ ok: false, error: `${label(server)}: ${err.message}` }));
    socket.on('message', (msg) => {
      // A stray datagram (wrong ID, not a response) is ignored; the timer still bounds the wait.
      if (msg.length < 12 || msg.readUInt16BE(0) !== id || (msg[2]! & 0x80) === 0) return;
      finish({ ok: true, response: msg, server: label(server) });
    });
    socket.connect(server.port ?? 53, server.address, () => socket.send(query));
  });
}

function viaTcp(query: Buffer, server: UpstreamServer, options: ForwardOptions): Promise<ForwardResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: server.address, port: server.port ?? 53 });
    let settled = false;
    let got = Buffer.alloc(0);
    const finish = (r: ForwardResult): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.destroy();
      resolve(r);
    };
    const timer = options.clock.setTimeout(() => finish({ ok: false, error: `${label(server)}: timeout after ${options.timeoutMs} ms` }), options.timeoutMs);
    socket.on('error', (err) => finish({ ok: false, error: `${label(server)}: ${err.message}` }));
    socket.on('close', () => finish({ ok: false, error: `${label(server)}: closed before answering` }));
    socket.on('connect', () => {
      const frame = Buffer.alloc(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      query.copy(frame, 2);
      socket.write(frame);
    });
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        finish({ ok: true, response: got.subarray(2, 2 + got.readUInt16BE(0)), server: label(server) });
      }
    });
  });
}
