/**
 * The sidecar's DNS proxy (Istio's, on 15053): answers A/AAAA for mesh names from an injected lookup,
 * including the names a stub resolver makes by appending its search domains, and forwards everything else,
 * byte for byte, to the upstream resolvers. UDP and TCP on the same port.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { ValidationError } from '../../shared/errors.js';
import type { Problem } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { silentLogger } from '../../shared/log.js';
import { decodeMessage, encodeMessage, RCode, RRClass, RRType } from './codec.js';
import type { DnsHeader, DnsMessage, DnsQuestion, DnsRecord } from './codec.js';
import { candidateNames } from './name-table.js';
import type { MeshLookup } from './name-table.js';
import { forwardQuery } from './upstream.js';
import type { UpstreamServer } from './upstream.js';

export interface DnsProxyOptions {
  /** default 15053; 0 picks a free port (the same one for UDP and TCP). */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /**
   * Mesh names; undefined for a name the mesh does not know. Called per query and candidate name, so keep
   * it cheap; it is read on every query, so a lookup over a swapped-in name table follows NDS updates.
   */
  lookup: MeshLookup;
  /** The client's search list, e.g. `ns.svc.cluster.local`, `svc.cluster.local`, `cluster.local`. */
  searchDomains?: readonly string[];
  /** Where non-mesh queries go, tried in order. */
  upstreams: readonly UpstreamServer[];
  /** Per-upstream timeout before trying the next, and SERVFAIL after the last; default 2000 ms. */
  upstreamTimeoutMs?: number;
  /** TTL of mesh answers; default 30 s (Istio's). */
  ttlSeconds?: number;
  /** Forwarded queries in flight at once; more are answered SERVFAIL. Default 1024. */
  maxInflight?: number;
  logger?: Logger;
  clock?: Clock;
}

/** A running DNS proxy; listen() binds UDP and TCP, close() unbinds both and drops TCP clients. */
export interface DnsProxy {
  listen(): Promise<AddressInfo>;
  address(): AddressInfo | undefined;
  close(): Promise<void>;
}

export const DEFAULT_DNS_PROXY_PORT = 15053;
const CLASSIC_UDP_LIMIT = 512;
const OUR_EDNS_SIZE = 1232;

function validate(o: DnsProxyOptions): void {
  const problems: Problem[] = [];
  if (typeof o.lookup !== 'function') problems.push({ path: 'lookup', message: 'must be a function' });
  if (!Array.isArray(o.upstreams)) problems.push({ path: 'upstreams', message: 'must be a list of servers' });
  else
    o.upstreams.forEach((u, i) => {
      if (!net.isIP(u.address)) problems.push({ path: `upstreams[${i}].address`, message: `must be an IP address (got "${u.address}")` });
      if (u.port !== undefined && (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535)) problems.push({ path: `upstreams[${i}].port`, message: 'must be 1..65535' });
    });
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)) problems.push({ path: 'port', message: 'must be 0..65535' });
  for (const k of ['upstreamTimeoutMs', 'ttlSeconds', 'maxInflight'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) problems.push({ path: k, message: 'must be a positive number' });
  }
  if (problems.length > 0) throw new ValidationError(problems.map((p) => ({ resource: 'DnsProxy', ...p })));
}

/** The answer for a mesh name, or undefined when the question is not ours to answer. */
export function answerLocally(
  question: DnsQuestion,
  lookup: MeshLookup,
  searchDomains: readonly string[],
  ttl: number,
): { records: DnsRecord[]; matched: string } | undefined {
  if (question.class !== RRClass.IN || (question.type !== RRType.A && question.type !== RRType.AAAA)) return undefined;
  for (const candidate of candidateNames(question.name, searchDomains)) {
    const hit = lookup(candidate, question.type);
    if (hit === undefined) continue;
    const want = question.type === RRType.A ? 4 : 6;
    // A mesh name without addresses of the asked family is NOERROR with no answers, never NXDOMAIN:
    // NXDOMAIN would tell the client the name does not exist at all and stop it asking for A.
    const records = hit.ips
      .filter((ip) => net.isIP(ip) === want)
      .map((ip) => ({ name: question.name, type: question.type, class: RRClass.IN, ttl, data: ip }));
    return { records, matched: candidate };
  }
  return undefined;
}

function responseHeader(q: DnsHeader, rcode: number, aa: boolean): DnsHeader {
  return { id: q.id, qr: true, opcode: q.opcode, aa, tc: false, rd: q.rd, ra: true, rcode };
}

export function createDnsProxy(options: DnsProxyOptions): DnsProxy {
  validate(options);
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const searchDomains = options.searchDomains ?? [];
  const ttl = options.ttlSeconds ?? 30;
  const timeoutMs = options.upstreamTimeoutMs ?? 2000;
  const maxInflight = options.maxInflight ?? 1024;
  let inflight = 0;
  let udp: dgram.Socket | undefined;
  let tcp: net.Server | undefined;
  const tcpClients = new Set<net.Socket>();

  /** Handles one query; resolves with the response bytes, or undefined to stay silent. */
  async function handle(packet: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const decoded = decodeMessage(packet);
    if (!decoded.ok) {
      logger.debug('dns: dropped malformed packet', { error: decoded.error, transport });
      return undefined;
    }
    const query = decoded.message;
    const h = query.header;
    if (h.qr) return undefined; // a response sent to us: never answer, that is how reflection loops start
    const reply = (rcode: number, answers: DnsRecord[] = [], aa = false): Buffer => {
      const msg: DnsMessage = { header: responseHeader(h, rcode, aa), questions: query.questions, answers, authorities: [], additionals: [] };
      const opt = query.additionals.find((r) => r.type === RRType.OPT);
      if (opt !== undefined) msg.additionals.push({ name: '', type: RRType.OPT, class: OUR_EDNS_SIZE, ttl: 0, data: Buffer.alloc(0) });
      let bytes = encodeMessage(msg);
      const limit = transport === 'tcp' ? 65535 : opt !== undefined ? Math.max(CLASSIC_UDP_LIMIT, Math.min(opt.class, OUR_EDNS_SIZE)) : CLASSIC_UDP_LIMIT;
      if (bytes.length > limit) {
        msg.header.tc = true;
        msg.answers = [];
        bytes = encodeMessage(msg);
      }
      return bytes;
    };
    if (h.opcode !== 0) return reply(RCode.NOTIMP);
    const question = query.questions[0];
    if (query.questions.length !== 1 || question === undefined) return reply(RCode.FORMERR);

    const local = answerLocally(question, options.lookup, searchDomains, ttl);
    if (local !== undefined) {
      logger.debug('dns: mesh answer', { name: question.name, type: question.type, matched: local.matched, answers: local.records.length });
      return reply(RCode.NOERROR, local.records, true);
    }
    if (inflight >= maxInflight) {
      logger.warn('dns: too many forwarded queries in flight', { inflight });
      return reply(RCode.SERVFAIL);
    }
    inflight++;
    try {
      const r = await forwardQuery(packet, { servers: options.upstreams, timeoutMs, clock, transport });
      if (r.ok) return r.response;
      logger.info('dns: upstream failed', { name: question.name, error: r.error });
      return reply(RCode.SERVFAIL);
    } finally {
      inflight--;
    }
  }

  const report = (err: unknown): void => logger.error('dns: handler failed', { error: String(err) });

  function onTcpConnection(socket: net.Socket): void {
    tcpClients.add(socket);
    socket.on('close', () => tcpClients.delete(socket));
    socket.on('error', () => {});
    socket.setTimeout(10_000, () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const packet = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        handle(Buffer.from(packet), 'tcp').then((res) => {
          if (res === undefined) {
            socket.destroy(); // framing can no longer be trusted
            return;
          }
          if (socket.destroyed) return;
          const frame = Buffer.alloc(2 + res.length);
          frame.writeUInt16BE(res.length, 0);
          res.copy(frame, 2);
          socket.write(frame);
        }, report);
      }
    });
  }

  async function bind(port: number, host: string): Promise<AddressInfo> {
    const u = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      u.once('error', reject);
      u.bind(port, host, () => {
        u.off('error', reject);
        resolve();
      });
    });
    const bound = u.address();
    const t = net.createServer(onTcpConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        t.once('error', reject);
        t.listen(bound.port, host, () => {
          t.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      u.close();
      throw err;
    }
    u.on('error', (err) => logger.error('dns: udp socket error', { error: err.message }));
    u.on('message', (msg, rinfo) => {
      handle(msg, 'udp').then((res) => {
        if (res !== undefined && udp === u) u.send(res, rinfo.port, rinfo.address);
      }, report);
    });
    udp = u;
    tcp = t;
    return bound;
  }

  return {
    async listen() {
      const host = options.host ?? '127.0.0.1';
      const port = options.port ?? DEFAULT_DNS_PROXY_PORT;
      // With port 0 the kernel picks the UDP port, which may be taken for TCP: try a few.
      for (let attempt = 0; ; attempt++) {
        try {
          return await bind(port, host);
        } catch (err) {
          if (port !== 0 || attempt >= 4 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        }
      }
    },
    address: () => (udp === undefined ? undefined : udp.address()),
    async close() {
      const u = udp;
      const t = tcp;
      udp = undefined;
      tcp = undefined;
      for (const s of tcpClients) s.destroy();
      await Promise.all([
        u === undefined ? undefined : new Promise<void>((r) => u.close(() => r())),
        t === undefined ? undefined : new Promise<void>((r) => t.close(() => r())),
      ]);
    },
  };
}
