// Child process for the API kill -9 test: a resource API over a file store. Prints `listening <url>`.
// Usage: node api-child.js DIR TOKEN
import { createApiServer } from '../../src/controlplane/api-server/index.js';
import { createFileStore } from '../../src/controlplane/store/index.js';

const [dir, token] = process.argv.slice(2);
const store = await createFileStore({ dir: dir!, compactBytes: 16 * 1024 });
const api = createApiServer({ store, validate: () => [], auth: { tokens: [{ token: token!, role: 'write' }] } });
const { url } = await api.listen(0);
process.stdout.write(`listening ${url}\n`);
