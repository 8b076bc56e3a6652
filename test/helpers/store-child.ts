// Child process for the kill -9 test: applies the crash sequence forever, printing `ack <revision>` after each
// acknowledged transaction. Usage: node store-child.js DIR COMPACT_BYTES CONCURRENCY
// With CONCURRENCY > 1, that many transactions are in flight at once (exercising group commit).
import { createFileStore } from '../../src/controlplane/store/index.js';
import { runCrashOp } from './store-crash-ops.js';

const [dir, compactBytes, concurrency] = process.argv.slice(2);
const width = Number(concurrency ?? '1');
const store = await createFileStore({ dir: dir!, compactBytes: Number(compactBytes) });
process.stdout.write(`ready ${store.revision()}\n`);
for (let n = store.revision() + 1; ; n += width) {
  await Promise.all(
    Array.from({ length: width }, async (_, i) => {
      const rev = await runCrashOp(store, n + i);
      if (rev !== n + i) throw new Error(`expected revision ${n + i}, got ${rev}`);
      process.stdout.write(`ack ${rev}\n`);
    }),
  );
}
