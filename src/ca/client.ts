import { isIP } from 'node:net';
import { CONTROL_PLANE_SERVER_NAME } from './authority.js';
import * as grpc from '@grpc/grpc-js';
import type { KeyPair } from './keys.js';
import { x509 } from './keys.js';
import type { IstioCertificateRequest, IstioCertificateResponse } from './proto.js';
import { certificateServiceClient } from './proto.js';

/** Makes a PEM CSR carrying only the SPIFFE URI SAN, signed by the key. */
export async function createCsr(key: KeyPair, spiffeId: string, extraExtensions: x509.Extension[] = []): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: key.cryptoKeys,
    signingAlgorithm: key.signingAlgorithm,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true), ...extraExtensions],
  });
  return csr.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n';
}

/** How to reach and authenticate to the CA. */
export interface CaConnection {
  /** host:port of the CA's gRPC endpoint. */
  address: string;
  /** PEM roots that verify the CA endpoint's certificate. */
  caTrustPem: string;
  /** Name to verify the CA certificate against when it differs from the address host. */
  serverName?: string;
  /** Join token, sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Current mesh certificate for renewal over mTLS. */
  clientCert?: { certChainPem: string; keyPem: string };
  /** Per-call deadline; default 10 s. */
  timeoutMs?: number;
}

/** A CreateCertificate answer: the chain (leaf first, root last) or the gRPC status and message. */
export type CertificateResult = { ok: true; certChain: string[] } | { ok: false; code: grpc.status; message: string };

/** Calls IstioCertificateService/CreateCertificate once on a fresh channel; failures are values. */
/** The host part of `host:port` or `[v6]:port`. */
export function hostOf(address: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  return m ? m[1]! : address.replace(/:\d+$/, '');
}

export async function requestCertificate(conn: CaConnection, csrPem: string, ttlSeconds: number): Promise<CertificateResult> {
  const creds = grpc.credentials.createSsl(
    Buffer.from(conn.caTrustPem),
    conn.clientCert ? Buffer.from(conn.clientCert.keyPem) : null,
    conn.clientCert ? Buffer.from(conn.clientCert.certChainPem) : null,
  );
  const Client = certificateServiceClient();
  const serverName = conn.serverName ?? (isIP(hostOf(conn.address)) ? CONTROL_PLANE_SERVER_NAME : undefined);
  const client = new Client(conn.address, creds, serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {});
  const metadata = new grpc.Metadata();
  if (conn.token !== undefined) metadata.set('authorization', `Bearer ${conn.token}`);
  const request: IstioCertificateRequest = { csr: csrPem, validity_duration: Math.round(ttlSeconds) };
  try {
    return await new Promise<CertificateResult>((resolve) => {
      client.makeUnaryRequest(
        '/istio.v1.auth.IstioCertificateService/CreateCertificate',
        (v: IstioCertificateRequest) => serialize(Client, v),
        (b: Buffer) => deserialize(Client, b),
        request,
        metadata,
        { deadline: Date.now() + (conn.timeoutMs ?? 10_000) },
        (err: grpc.ServiceError | null, res?: IstioCertificateResponse) => {
          if (err) resolve({ ok: false, code: err.code, message: err.details || err.message });
          else if (!res || res.cert_chain.length === 0) resolve({ ok: false, code: grpc.status.INTERNAL, message: 'CA answered with an empty certificate chain' });
          else resolve({ ok: true, certChain: res.cert_chain });
        },
      );
    });
  } finally {
    client.close();
  }
}

type MethodDef = { requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown };

function method(Client: grpc.ServiceClientConstructor): MethodDef {
  return (Client.service as unknown as Record<string, MethodDef>).CreateCertificate!;
}
function serialize(Client: grpc.ServiceClientConstructor, v: IstioCertificateRequest): Buffer {
  return method(Client).requestSerialize(v);
}
function deserialize(Client: grpc.ServiceClientConstructor, b: Buffer): IstioCertificateResponse {
  return method(Client).responseDeserialize(b) as IstioCertificateResponse;
}
