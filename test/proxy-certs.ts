/**
 * Test PKI for the proxy tests: a root CA and leaf certificates with SPIFFE URI SANs, made on the fly by
 * the openssl command line in a temporary directory (removed before returning), so no key is checked in.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Leaf {
  cert: string;
  key: string;
}

export interface TestPki {
  rootPem: string;
  issue(opts: { spiffe: string; dns?: string[] }): Promise<Leaf>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function createTestPki(name = 'crossmesh test root'): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'crossmesh-pki-'));
  try {
    const key = join(dir, 'ca.key');
    const crt = join(dir, 'ca.crt');
    await run('openssl', ['req', '-x509', ...EC, '-keyout', key, '-out', crt, '-days', '1', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const caKey = await readFile(key, 'utf8');
    const rootPem = await readFile(crt, 'utf8');
    let serial = 1;
    return {
      rootPem,
      async issue({ spiffe, dns = [] }) {
        const d = await mkdtemp(join(tmpdir(), 'crossmesh-leaf-'));
        try {
          const p = (f: string): string => join(d, f);
          await writeFile(p('ca.key'), caKey);
          await writeFile(p('ca.crt'), rootPem);
          const san = [`URI:${spiffe}`, ...dns.map((n) => `DNS:${n}`)].join(',');
          await writeFile(p('ext.cnf'), [
            'basicConstraints=critical,CA:FALSE',
            'keyUsage=critical,digitalSignature,keyEncipherment',
            'extendedKeyUsage=serverAuth,clientAuth',
            `subjectAltName=${san}`,
          ].join('\n') + '\n');
          await run('openssl', ['req', '-new', ...EC, '-keyout', p('leaf.key'), '-out', p('leaf.csr'), '-subj', '/O=crossmesh test']);
          await run('openssl', ['x509', '-req', '-in', p('leaf.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-set_serial', String(serial++),
            '-days', '1', '-extfile', p('ext.cnf'), '-out', p('leaf.crt')]);
          return { cert: await readFile(p('leaf.crt'), 'utf8'), key: await readFile(p('leaf.key'), 'utf8') };
        } finally {
          await rm(d, { recursive: true, force: true });
        }
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
