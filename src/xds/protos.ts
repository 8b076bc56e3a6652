/**
 * Loads the Envoy v3 API (shipped in @grpc/grpc-js-xds's deps/) and Istio's NDS proto, once and lazily.
 *
 * Two loaders on purpose: @grpc/proto-loader builds the gRPC service definition for ADS (plain-object
 * DiscoveryRequest/Response with Any left packed), protobufjs gives us the message types to pack and
 * unpack the resources themselves. Paths are resolved from the installed packages, not the working
 * directory, so this works from dist/ and from a fresh clone alike.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/proto-loader';
import { CrossmeshError } from '../shared/index.js';

/** The proto files whose messages we pack into Any; their imports come along. */
export const RESOURCE_PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'istio/networking/nds/v1/nds.proto',
];

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** Raised when the proto files cannot be found or parsed: an installation problem, not user input. */
export class ProtoLoadError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_XDS_PROTOS', message, options);
  }
}

let includeDirsCache: string[] | undefined;

/** Directories searched for imports, in order: Envoy, xds/udpa, googleapis, PGV, protobufjs's WKTs, ours. */
export function protoIncludeDirs(): string[] {
  if (includeDirsCache) return includeDirsCache;
  const require = createRequire(import.meta.url);
  let xdsPkg: string;
  let pbPkg: string;
  try {
    xdsPkg = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
    pbPkg = dirname(require.resolve('protobufjs/package.json'));
  } catch (err) {
    throw new ProtoLoadError('cannot locate @grpc/grpc-js-xds or protobufjs: is the package installed?', { cause: err });
  }
  const deps = join(xdsPkg, 'deps');
  includeDirsCache = [
    join(deps, 'envoy-api'),
    join(deps, 'xds'),
    join(deps, 'googleapis'),
    join(deps, 'protoc-gen-validate'),
    pbPkg,
    join(packageRoot(), 'protos'),
  ];
  return includeDirsCache;
}

/** The crossmesh package root: the nearest ancestor of this module holding protos/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'protos', 'istio')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new ProtoLoadError('cannot find the crossmesh protos/ directory above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

function resolveImport(dirs: readonly string[], origin: string, target: string): string {
  if (isAbsolute(target)) return target;
  for (const dir of dirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  // protobufjs serves google/protobuf/*.proto from its bundled definitions when the path ends so.
  return origin ? resolve(dirname(origin), target) : target;
}

let rootCache: protobuf.Root | undefined;

/** The protobufjs root holding every resource type; field names kept in snake_case as in the protos. */
export function resourceRoot(): protobuf.Root {
  if (rootCache) return rootCache;
  const dirs = protoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => resolveImport(dirs, origin, target);
  try {
    root.loadSync([...RESOURCE_PROTO_FILES], { keepCase: true });
    root.resolveAll();
  } catch (err) {
    throw new ProtoLoadError(`loading Envoy protos failed: ${(err as Error).message}`, { cause: err });
  }
  rootCache = root;
  return root;
}

let adsCache: ServiceDefinition | undefined;

/**
 * The ADS gRPC service definition. Messages are plain objects with snake_case fields, defaults filled,
 * enums as strings, and Any left as `{type_url, value}` for encodeResource/decodeResource to handle.
 */
export function adsServiceDefinition(): ServiceDefinition {
  if (adsCache) return adsCache;
  let pkg: protoLoader.PackageDefinition;
  try {
    pkg = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: protoIncludeDirs(),
    });
  } catch (err) {
    throw new ProtoLoadError(`loading the ADS service failed: ${(err as Error).message}`, { cause: err });
  }
  const service = pkg[ADS_SERVICE_NAME];
  if (!service || !('StreamAggregatedResources' in service)) {
    throw new ProtoLoadError(`${ADS_SERVICE_NAME} not found in ads.proto`);
  }
  adsCache = service as ServiceDefinition;
  return adsCache;
}
