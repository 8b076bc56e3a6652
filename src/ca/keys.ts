// @peculiar/x509 resolves its internals through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, generateKeyPair as generateNodeKeyPair, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
import * as x509 from '@peculiar/x509';
import { CaMaterialError } from './errors.js';

// @peculiar/x509 signs and verifies through WebCrypto; node's implementation is the one we trust.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** Key algorithms the tooling can generate. */
export type KeyType = 'ec-p256' | 'rsa-2048' | 'rsa-4096';
export const keyTypes: readonly KeyType[] = ['ec-p256', 'rsa-2048', 'rsa-4096'];

/** A private key usable both by node:crypto (KeyObject) and by @peculiar/x509 (CryptoKey pair). */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  cryptoKeys: CryptoKeyPair;
  /** The signature algorithm this key signs certificates and CSRs with. */
  signingAlgorithm: Algorithm | EcdsaParams;
}

function webAlgorithm(key: KeyObject): { importAlg: RsaHashedImportParams | EcKeyImportParams; signing: Algorithm | EcdsaParams } {
  if (key.asymmetricKeyType === 'rsa') {
    return { importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signing: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { importAlg: { name: 'ECDSA', namedCurve: 'P-256' }, signing: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams };
    if (curve === 'secp384r1') return { importAlg: { name: 'ECDSA', namedCurve: 'P-384' }, signing: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams };
    throw new CaMaterialError(`unsupported EC curve ${curve ?? '(unknown)'}: use P-256 or P-384`);
  }
  throw new CaMaterialError(`unsupported key type ${key.asymmetricKeyType ?? '(unknown)'}: use EC (P-256/P-384) or RSA`);
}

/** Wraps a node private key so both node:crypto and @peculiar/x509 can use it. */
export async function keyPairFromPrivateKey(privateKey: KeyObject): Promise<KeyPair> {
  const publicKey = createPublicKey(privateKey);
  const { importAlg, signing } = webAlgorithm(privateKey);
  const subtle = webcrypto.subtle;
  const priv = await subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), importAlg, true, ['sign']);
  const pub = await subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), importAlg, true, ['verify']);
  return { privateKey, publicKey, cryptoKeys: { privateKey: priv as CryptoKey, publicKey: pub as CryptoKey }, signingAlgorithm: signing };
}

/** Parses a PEM private key (PKCS#8, SEC1 or PKCS#1); `source` names the file in errors. */
export async function keyPairFromPem(pem: string | Buffer, source = 'private key'): Promise<KeyPair> {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new CaMaterialError(`${source}: not a PEM private key (${(err as Error).message})`, { cause: err });
  }
  try {
    return await keyPairFromPrivateKey(key);
  } catch (err) {
    if (err instanceof CaMaterialError) throw new CaMaterialError(`${source}: ${err.message}`);
    throw err;
  }
}

/** Generates a fresh key of the given type. */
export async function generateKeyPair(type: KeyType = 'ec-p256'): Promise<KeyPair> {
  const privateKey = await new Promise<KeyObject>((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject) => (err ? reject(err) : resolve(priv));
    if (type === 'ec-p256') generateNodeKeyPair('ec', { namedCurve: 'prime256v1' }, done);
    else generateNodeKeyPair('rsa', { modulusLength: type === 'rsa-2048' ? 2048 : 4096 }, done);
  });
  return keyPairFromPrivateKey(privateKey);
}

/** PKCS#8 PEM of a private key. */
export function privateKeyPem(key: KeyPair): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Parses a KeyType option value. */
export function isKeyType(value: string): value is KeyType {
  return (keyTypes as readonly string[]).includes(value);
}
