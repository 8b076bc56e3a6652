import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { caMaterialFromPem, createCertificateAuthority, verifyJoinToken } from '../src/ca/index.js';
import type { InspectReport } from '../src/ca/index.js';

const run = promisify(execFile);
const bin = new URL('../../bin/crossmesh.js', import.meta.url).pathname;

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('crossmesh ca / token CLI', () => {
  let dir: string;
  const cli = (args: string[]) => runCli(args, { cwd: dir });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crossmesh-ca-cli-'));
    for (const args of [
      ['ca', 'root', '--out', 'root'],
      ['ca', 'intermediate', '--root', 'root', '--cluster', 'cluster-1', '--out', 'cluster-1'],
      ['ca', 'intermediate', '--root', 'root', '--cluster', 'cluster-2', '--out', 'cluster-2', '--days', '30'],
      ['ca', 'root', '--out', 'other-root', '--trust-domain', 'cluster.local'],
      ['ca', 'intermediate', '--root', 'other-root', '--cluster', 'cluster-3', '--out', 'cluster-3'],
      ['ca', 'workload', '--cacerts', 'cluster-1', '--spiffe', 'spiffe://cluster.local/ns/sample/sa/sleep', '--out', 'sleep', '--ttl', '2h'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('ca root writes the cert and a 0600 key, and refuses to overwrite without --force', async () => {
    assert.equal(statSync(join(dir, 'root', 'root-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'cluster-1', 'ca-key.pem')).mode & 0o777, 0o600);
    const again = await cli(['ca', 'root', '--out', 'root']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /root-cert\.pem already exists; pass --force to overwrite/);
    const before = readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8');
    const forced = await cli(['ca', 'root', '--out', 'root-copy', '--key-type', 'rsa-2048']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(openssl(['x509', '-in', 'root-copy/root-cert.pem', '-noout', '-text'], dir), /rsaEncryption/);
    writeFileSync(join(dir, 'root-copy', 'root-key.pem'), 'x', { mode: 0o644 });
    assert.equal((await cli(['ca', 'root', '--out', 'root-copy', '--force'])).code, 0);
    assert.equal(statSync(join(dir, 'root-copy', 'root-key.pem')).mode & 0o777, 0o600, 'mode fixed on overwrite');
    assert.equal(readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8'), before);
  });

  test('bad options are usage errors naming the option', async () => {
    const bad = await cli(['ca', 'root', '--out', 'x', '--key-type', 'dsa']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--key-type: must be one of ec-p256, rsa-2048, rsa-4096/);
    const ttl = await cli(['ca', 'workload', '--cacerts', 'cluster-1', '--spiffe', 'spiffe://cluster.local/ns/a/sa/b', '--out', 'w', '--ttl', 'soon']);
    assert.equal(ttl.code, 2);
    assert.match(ttl.stderr, /--ttl: must be a positive duration/);
    const cluster = await cli(['ca', 'intermediate', '--root', 'root', '--cluster', 'Bad_Name', '--out', 'bad']);
    assert.equal(cluster.code, 1);
    assert.match(cluster.stderr, /--cluster: "Bad_Name" must be a DNS label/);
  });

  test('the intermediate is CA:true pathlen:0 critical, keyCertSign+cRLSign, names the cluster; cert-chain is intermediate + root', () => {
    const text = openssl(['x509', '-in', 'cluster-1/ca-cert.pem', '-noout', '-text'], dir);
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(text, /Subject: O = crossmesh, L = cluster-1, CN = crossmesh intermediate CA cluster-1/);
    const chain = readFileSync(join(dir, 'cluster-1', 'cert-chain.pem'), 'utf8');
    assert.equal(chain, readFileSync(join(dir, 'cluster-1', 'ca-cert.pem'), 'utf8') + readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8'));
    assert.match(openssl(['verify', '-CAfile', 'root/root-cert.pem', 'cluster-2/ca-cert.pem'], dir), /OK/);
  });

  test('openssl verifies a tooling workload cert; x509 -text shows the SPIFFE SAN, usages and validity', () => {
    assert.match(openssl(['verify', '-CAfile', 'cluster-1/root-cert.pem', '-untrusted', 'cluster-1/ca-cert.pem', 'sleep/cert.pem'], dir), /sleep\/cert\.pem: OK/);
    assert.match(openssl(['verify', '-CAfile', 'sleep/root-cert.pem', '-untrusted', 'sleep/cert-chain.pem', 'sleep/cert.pem'], dir), /OK/);
    const text = openssl(['x509', '-in', 'sleep/cert.pem', '-noout', '-text'], dir);
    assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    const dates = openssl(['x509', '-in', 'sleep/cert.pem', '-noout', '-startdate', '-enddate'], dir);
    const start = Date.parse(/notBefore=(.*)/.exec(dates)![1]!);
    const end = Date.parse(/notAfter=(.*)/.exec(dates)![1]!);
    assert.equal(end - start, 2 * 3600_000);
    assert.equal(statSync(join(dir, 'sleep', 'key.pem')).mode & 0o777, 0o600);
    // A cluster-3 (other root) verifier must reject it.
    assert.throws(() => openssl(['verify', '-CAfile', 'cluster-3/root-cert.pem', '-untrusted', 'cluster-1/ca-cert.pem', 'sleep/cert.pem'], dir));
  });

  test('ca inspect shows subject, SANs, chain, validity and SPIFFE IDs (text and JSON)', async () => {
    const text = await cli(['ca', 'inspect', 'sleep/cert.pem']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /SPIFFE:\s+spiffe:\/\/cluster\.local\/ns\/sample\/sa\/sleep/);
    assert.match(text.stdout, /chain:\s+\(empty subject\) <- O=crossmesh, L=cluster-1, CN=crossmesh intermediate CA cluster-1 <- O=crossmesh, CN=crossmesh root CA cluster\.local\n/);
    const json = await cli(['ca', 'inspect', 'sleep', '--output', 'json']);
    const report = JSON.parse(json.stdout) as InspectReport;
    const leaf = report.files.find((f) => f.path.endsWith('cert.pem') && !f.path.endsWith('root-cert.pem') && !f.path.endsWith('cert-chain.pem'))!.certificates[0]!;
    assert.deepEqual(leaf.spiffeIds, ['spiffe://cluster.local/ns/sample/sa/sleep']);
    assert.deepEqual(leaf.sans, ['URI:spiffe://cluster.local/ns/sample/sa/sleep']);
    assert.deepEqual(leaf.keyUsages, ['digitalSignature', 'keyEncipherment']);
    assert.deepEqual(leaf.extKeyUsages, ['serverAuth', 'clientAuth']);
    assert.equal(leaf.isCa, false);
    assert.equal(leaf.chainComplete, true);
    assert.equal(leaf.validity, 'valid');
    assert.ok(report.files.some((f) => f.path.endsWith('key.pem') && f.note === 'private key (not shown)'));
  });

  test('ca inspect --check-shared-root: exit 0 for one root, non-zero naming clusters for two', async () => {
    const same = await cli(['ca', 'inspect', 'cluster-1', 'cluster-2', '--check-shared-root']);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /shared root: yes/);
    const differ = await cli(['ca', 'inspect', 'cluster-1', 'cluster-3', '--check-shared-root', '-o', 'json']);
    assert.equal(differ.code, 1);
    assert.equal((JSON.parse(differ.stdout) as InspectReport).sharedRoot, false);
    assert.match(differ.stderr, /do not share one root \(cluster-1: [0-9A-F:]+, cluster-3: [0-9A-F:]+\)/);
    const one = await cli(['ca', 'inspect', 'cluster-1', '--check-shared-root']);
    assert.equal(one.code, 2);
  });

  test('a broken cacerts dir is reported file by file', async () => {
    const r0 = await cli(['ca', 'intermediate', '--root', 'root', '--cluster', 'broken', '--out', 'broken']);
    assert.equal(r0.code, 0);
    writeFileSync(join(dir, 'broken', 'ca-key.pem'), readFileSync(join(dir, 'cluster-2', 'ca-key.pem')));
    writeFileSync(join(dir, 'broken', 'root-cert.pem'), readFileSync(join(dir, 'other-root', 'root-cert.pem')));
    const r = await cli(['ca', 'workload', '--cacerts', 'broken', '--spiffe', 'spiffe://cluster.local/ns/a/sa/b', '--out', 'w2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\/ca-key\.pem: private key does not match the certificate in .*broken\/ca-cert\.pem/);
    assert.match(r.stderr, /broken\/ca-cert\.pem: .*intermediate CA broken is not signed by the root in .*root-cert\.pem/);
    const inspect = await cli(['ca', 'inspect', 'broken', 'cluster-1', '--check-shared-root']);
    assert.equal(inspect.code, 1);
    assert.match(inspect.stdout, /problem: .*private key does not match/);
  });

  test('token create: a token the cluster CA accepts, bound to the identity and cluster; bin runs as a process', async () => {
    const { stdout } = await run(process.execPath, [bin, 'token', 'create', '--namespace', 'sample', '--service-account', 'sleep', '--ttl', '30m', '--cacerts', 'cluster-1'], { cwd: dir });
    const token = stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const material = await caMaterialFromPem({
      caCert: readFileSync(join(dir, 'cluster-1', 'ca-cert.pem'), 'utf8'),
      caKey: readFileSync(join(dir, 'cluster-1', 'ca-key.pem'), 'utf8'),
      rootCert: readFileSync(join(dir, 'cluster-1', 'root-cert.pem'), 'utf8'),
    });
    const ca1 = await createCertificateAuthority({ material });
    const v = ca1.verifyJoinToken(token);
    assert.ok(v.ok, v.ok ? '' : v.message);
    assert.equal(v.claims.sub, 'spiffe://cluster.local/ns/sample/sa/sleep');
    assert.equal(v.claims.cluster, 'cluster-1');
    assert.equal(v.claims.exp - v.claims.iat, 1800);
    const ca2 = await createCertificateAuthority({ cacertsDir: join(dir, 'cluster-2') });
    assert.equal(ca2.verifyJoinToken(token).ok, false, 'cluster-2 refuses a cluster-1 token');
    // --signing-key: any key, trusted by a CA told about it.
    const signed = await cli(['token', 'create', '--namespace', 'sample', '--service-account', 'sleep', '--signing-key', 'other-root/root-key.pem', '--cluster', 'cluster-1', '-o', 'json']);
    assert.equal(signed.code, 0, signed.stderr);
    const { token: t2 } = JSON.parse(signed.stdout) as { token: string };
    assert.equal(ca1.verifyJoinToken(t2).ok, false);
    const withKey = await createCertificateAuthority({ material, tokenKeys: [(await import('node:crypto')).createPublicKey(readFileSync(join(dir, 'other-root', 'root-key.pem')))] });
    assert.equal(withKey.verifyJoinToken(t2).ok, true);
    assert.equal(verifyJoinToken(t2, { keys: withKey.tokenKeys, trustDomain: 'cluster.local', cluster: 'cluster-2', nowMs: Date.now() }).ok, false);
    const neither = await cli(['token', 'create', '--namespace', 'a', '--service-account', 'b']);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /exactly one of --cacerts or --signing-key/);
  });
});
