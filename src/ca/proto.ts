import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** protos/ at the package root, seen from dist/src/ca/ where this module runs. */
const protoPath = fileURLToPath(new URL('../../../protos/istio/security/v1alpha1/ca.proto', import.meta.url));

/** IstioCertificateRequest as grpc-js hands it over (field names as in the proto). */
export interface IstioCertificateRequest {
  csr: string;
  validity_duration: number;
  metadata?: unknown;
}

/** IstioCertificateResponse. */
export interface IstioCertificateResponse {
  cert_chain: string[];
}

/** Full gRPC method path, as Istio defines it. */
export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

let cached: grpc.ServiceDefinition | undefined;

/** The IstioCertificateService definition loaded from protos/istio/security/v1alpha1/ca.proto. */
export function istioCertificateService(): grpc.ServiceDefinition {
  if (!cached) {
    const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    cached = def['istio.v1.auth.IstioCertificateService'] as unknown as grpc.ServiceDefinition;
  }
  return cached;
}

/** A client constructor for the service. */
export function certificateServiceClient(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(istioCertificateService(), 'IstioCertificateService');
}
