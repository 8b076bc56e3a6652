/** Shared fixtures for the xDS tests: a real ADS server on 127.0.0.1, an echo service, waiting helpers. */
import * as grpc from '@grpc/grpc-js';
import { createAdsServer } from '../src/controlplane/server/index.js';
import type { AdsServer, AdsServerOptions } from '../src/controlplane/server/index.js';

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
