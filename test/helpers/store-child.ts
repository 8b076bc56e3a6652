// Child process for the kill -9 test: applies the crash sequence forever, printing `ack <revision>` after each
// acknowledged transaction. Usage: node store-child.js DIR COMPACT_BYTES
import { createFileStore } from '../../src/controlplane/store/index.js';
import { runCrashOp } from './store-crash-ops.js';

const [dir, compactBytes] = process.argv.slice(2);
const store = await createFileStore({ dir: dir!, compactBytes: Number(compactBytes) });
process.stdout.write(`ready ${store.revision()}\n`);
for (let n = store.revision() + 1; ; n++) {
  const rev = await runCrashOp(store, n);
  if (rev !== n) throw new Error(`expected revision ${n}, got ${rev}`);
  process.stdout.write(`ack ${rev}\n`);
}
