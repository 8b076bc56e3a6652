/** Shared fixtures for the xDS tests: a real ADS server on 127.0.0.1, an echo service, waiting helpers. */
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdsServer } from '../src/controlplane/server/index.js';
import type { AdsServer, AdsServerOptions } from '../src/controlplane/server/index.js';
import { adsServiceDefinition } from '../src/xds/index.js';
import type { DiscoveryRequest, DiscoveryResponse } from '../src/xds/index.js';

export interface RunningAds {
  ads: AdsServer;
  server: grpc.Server;
  port: number;
  address: string;
  /** Ends streams and shuts the gRPC server down at once. */
  stop(): void;
}

/** Starts an ADS server on 127.0.0.1 (port 0 unless given). */
export async function startAds(options: AdsServerOptions, port = 0): Promise<RunningAds> {
  const ads = createAdsServer(options);
  const server = new grpc.Server();
  ads.register(server);
  const bound = await bindServer(server, port);
  return {
    ads,
    server,
    port: bound,
    address: `127.0.0.1:${bound}`,
    stop() {
      ads.close();
      server.forceShutdown();
    },
  };
}

export function bindServer(server: grpc.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
}

/** Resolves when `check` returns a value other than undefined, polling on I/O turns; rejects after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString('utf8')),
};

/** A one-method unary service with JSON messages, so the tests need no .proto of their own. */
export const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: '/crossmesh.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

export interface EchoBackend {
  name: string;
  port: number;
  server: grpc.Server;
}

/** A backend answering every Echo with its own name. */
export async function startEchoBackend(name: string): Promise<EchoBackend> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Echo: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { server: name }),
  });
  const port = await bindServer(server);
  return { name, port, server };
}

export function echo(client: grpc.Client, deadlineMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (req: unknown, opts: grpc.CallOptions, cb: grpc.requestCallback<{ server: string }>) => void>).Echo!(
      { hello: 'world' },
      { deadline: Date.now() + deadlineMs },
      (err, res) => (err ? reject(err) : resolve(res!.server)),
    );
  });
}

export { createFakeClock } from './helpers/fake-clock.js';
export type { FakeClock } from './helpers/fake-clock.js';

/** A raw ADS stream for protocol tests: send requests exactly as written, read responses one by one. */
export interface RawAdsStream {
  send(req: DiscoveryRequest): void;
  /** The next response, waiting up to `timeoutMs`. */
  next(timeoutMs?: number): Promise<DiscoveryResponse>;
  /** Resolves with the status the stream ended with. */
  status(): Promise<grpc.StatusObject>;
  close(): void;
}

export function openRawStream(address: string): RawAdsStream {
  const Ctor = grpc.makeGenericClientConstructor(adsServiceDefinition() as unknown as grpc.ServiceDefinition, 'ADS');
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  };
  const call = client.StreamAggregatedResources();
  const queue: DiscoveryResponse[] = [];
  const waiters: Array<(r: DiscoveryResponse) => void> = [];
  call.on('data', (r: DiscoveryResponse) => {
    const w = waiters.shift();
    if (w) w(r);
    else queue.push(r);
  });
  call.on('error', () => {});
  const statusP = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return {
    send: (req) => call.write(req),
    next(timeoutMs = 3000) {
      const r = queue.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error('no response within ' + timeoutMs + ' ms'));
        }, timeoutMs);
        const w = (resp: DiscoveryResponse): void => {
          clearTimeout(t);
          resolve(resp);
        };
        waiters.push(w);
      });
    },
    status: () => statusP,
    close() {
      call.cancel();
      client.close();
    },
  };
}

/** A throwaway self-signed certificate for 127.0.0.1, made at test time with openssl (nothing pasted). */
export function selfSignedCert(cn: string): { certPem: string; keyPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'crossmesh-xds-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'pipe' });
    return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
