import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildKubeconfig } from '../src/registry/kube-client/index.js';
import { WRITE, startApi } from './helpers/api.js';
import type { TestApi } from './helpers/api.js';
import { selfSignedCert } from './helpers/tls.js';

const run = promisify(execFile);
const kubectlMissing = await run('kubectl', ['version', '--client']).then(
  () => false,
  () => true,
);

const manifests = `apiVersion: v1
kind: Namespace
metadata: {name: sample}
---
apiVersion: v1
kind: Service
metadata: {name: helloworld, namespace: sample, labels: {app: helloworld}}
spec: {ports: [{port: 5000, name: http}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld, namespace: sample}
spec: {hosts: [helloworld]}
`;

// The real kubectl, through a kubeconfig with CA data and a token, as users and remote secrets use it.
describe('kubectl against the resource API', { skip: kubectlMissing && 'kubectl is not installed' }, () => {
  let t: TestApi;
  let dir: string;
  let kubectl: (...args: string[]) => Promise<string>;
  before(async () => {
    const cert = selfSignedCert();
    t = await startApi({ tls: cert });
    dir = mkdtempSync(join(tmpdir(), 'crossmesh-kubectl-'));
    writeFileSync(join(dir, 'kubeconfig'), JSON.stringify(buildKubeconfig({ server: t.url, ca: cert.cert, token: WRITE }, 'crossmesh')));
    writeFileSync(join(dir, 'app.yaml'), manifests);
    kubectl = async (...args) =>
      (await run('kubectl', ['--kubeconfig', join(dir, 'kubeconfig'), '--cache-dir', join(dir, 'cache'), ...args], { timeout: 20_000 })).stdout;
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies, re-applies a change, gets by short name, and deletes a namespace with its contents', async () => {
    // No OpenAPI schemas are served (crossmesh validates on the server), hence --validate=false.
    const created = await kubectl('apply', '--validate=false', '-f', join(dir, 'app.yaml'));
    assert.match(created, /namespace\/sample created/);
    assert.match(created, /virtualservice\.networking\.istio\.io\/helloworld created/);
    writeFileSync(join(dir, 'app.yaml'), manifests.replace('port: 5000', 'port: 5001'));
    const changed = await kubectl('apply', '--validate=false', '-f', join(dir, 'app.yaml'));
    assert.match(changed, /service\/helloworld configured/);
    assert.match(changed, /namespace\/sample unchanged/);
    const svc = JSON.parse(await kubectl('get', 'svc', 'helloworld', '-n', 'sample', '-o', 'json'));
    assert.equal(svc.spec.ports[0].port, 5001);
    const vs = JSON.parse(await kubectl('get', 'vs', '-A', '-o', 'json'));
    assert.deepEqual(vs.items.map((o: { metadata: { name: string } }) => o.metadata.name), ['helloworld']);
    await kubectl('label', 'svc', 'helloworld', '-n', 'sample', 'tier=web');
    assert.equal(t.store.get({ group: '', kind: 'Service', namespace: 'sample', name: 'helloworld' })?.metadata.labels?.tier, 'web');
    await kubectl('delete', 'namespace', 'sample');
    assert.deepEqual(t.store.list(undefined, 'sample').items, []);
  });
});
