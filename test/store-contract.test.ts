import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { createFileStore, createMemoryStore } from '../src/controlplane/store/index.js';
import { storeContract, storeContractExtras } from './helpers/store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'crossmesh-store-contract-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

storeContract('memory', async (o) => createMemoryStore(o));
storeContract('file', async (o) => createFileStore({ dir: join(root, `s${n++}`), ...o }));
// A tiny compaction threshold runs the same contract with compaction after nearly every write.
storeContract('file, compacting', async (o) => createFileStore({ dir: join(root, `c${n++}`), compactBytes: 600, ...o }));
storeContractExtras('memory', async () => createMemoryStore());
storeContractExtras('file', async () => createFileStore({ dir: join(root, `x${n++}`) }));
