import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, dirname, isAbsolute } from 'node:path';
import type { Problem } from '../shared/errors.js';
import { ValidationError, errorMessage } from '../shared/errors.js';
import type { AnyResource, Topology } from './kinds.js';
import type { SourceDocument } from './parse.js';
import { parseDocuments } from './parse.js';
import type { ValidateOptions, ValidationResult } from './validate.js';
import { validateResources } from './validate.js';

/** Where inputs come from; the CLI passes its context, tests pass their own. */
export interface LoadOptions {
  /** Relative paths resolve against this directory. */
  readonly cwd: string;
  /** Reads all of standard input, for the path `-`. Without it, `-` is a problem. */
  readonly readStdin?: () => Promise<string>;
}

/** Documents read from every input, the files they came from, and the problems met while reading. */
export interface LoadedSources {
  readonly documents: SourceDocument[];
  /** Display names of the files read, in reading order (`<stdin>` for `-`). */
  readonly files: string[];
  readonly problems: Problem[];
}

/** Orders problems by the position of their file in the input, keeping each file's own order. */
export function sortProblems(problems: readonly Problem[], fileOrder: readonly string[]): Problem[] {
  const rank = (p: Problem) => {
    const i = p.file === undefined ? -1 : fileOrder.indexOf(p.file);
    return i < 0 ? fileOrder.length : i;
  };
  return problems
    .map((p, i) => ({ p, i, r: rank(p) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.p);
}

const EXTENSIONS = /\.(ya?ml|json)$/i;
export const STDIN_NAME = '<stdin>';

/**
 * Reads files, directories (recursively, `.yaml`, `.yml` and `.json`, sorted) and stdin (`-`) as
 * `kubectl apply -f` does. File names in results are shown as the user gave them. Never throws for bad input.
 */
export async function loadSources(paths: readonly string[], options: LoadOptions): Promise<LoadedSources> {
  const out: LoadedSources = { documents: [], files: [], problems: [] };
  let stdinRead = false;
  for (const given of paths) {
    if (given === '-') {
      if (stdinRead) continue; // stdin can be read once; a second "-" adds nothing
      stdinRead = true;
      if (!options.readStdin) {
        out.problems.push({ file: STDIN_NAME, message: 'standard input is not available' });
        continue;
      }
      let text: string;
      try {
        text = await options.readStdin();
      } catch (err) {
        out.problems.push({ file: STDIN_NAME, message: describeFsError(err) });
        continue;
      }
      addText(out, text, STDIN_NAME);
      continue;
    }
    const full = resolve(options.cwd, given);
    let info;
    try {
      info = await stat(full);
    } catch (err) {
      out.problems.push({ file: given, message: describeFsError(err) });
      continue;
    }
    if (info.isDirectory()) {
      const found = await listDirectory(full, out.problems, given);
      if (found.length === 0) {
        out.problems.push({ file: given, message: 'no .yaml, .yml or .json files in this directory' });
      }
      for (const f of found) await addFile(out, f, join(given, relative(full, f)));
    } else {
      await addFile(out, full, given);
    }
  }
  return out;
}

async function addFile(out: LoadedSources, full: string, shown: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (err) {
    out.problems.push({ file: shown, message: describeFsError(err) });
    return;
  }
  addText(out, text, shown);
}

function addText(out: LoadedSources, text: string, file: string): void {
  out.files.push(file);
  const parsed = parseDocuments(text, file);
  out.documents.push(...parsed.documents);
  out.problems.push(...parsed.problems);
}

async function listDirectory(dir: string, problems: Problem[], shown: string): Promise<string[]> {
  const found: string[] = [];
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch (err) {
      problems.push({ file: join(shown, relative(dir, current)), message: describeFsError(err) });
      continue;
    }
    for (const e of entries) {
      const path = join(current, e.name);
      if (e.isDirectory()) pending.push(path);
      else if (EXTENSIONS.test(e.name)) found.push(path);
    }
  }
  return found.sort();
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'not a directory';
    default:
      return `cannot read: ${code ?? errorMessage(err)}`;
  }
}

/** A whole input validated: sources read, documents validated, problems from both. */
export interface LoadResult extends ValidationResult {
  readonly files: readonly string[];
}

/**
 * Reads and validates inputs as one apply, including the files a Topology's clusters name in `manifests`
 * (resolved against the Topology's own file). Returns every problem; does not throw for bad input.
 */
export async function loadAndValidate(paths: readonly string[], options: LoadOptions & ValidateOptions): Promise<LoadResult> {
  const sources = await loadSources(paths, options);
  const result = validateResources(sources.documents, options);
  let problems = [...sources.problems, ...result.problems];
  const files = [...sources.files];
  for (const item of result.items) {
    if (item.resource.kind !== 'Topology') continue;
    const manifests = await loadTopologyManifests(item.resource, item.file, options);
    problems.push(...manifests.problems);
    for (const f of manifests.files) if (!files.includes(f)) files.push(f);
  }
  const order = [...paths, ...files];
  problems = sortProblems(problems, [...new Set(order)]);
  return { ...result, problems, files };
}

/** Loads and validates every file-path manifest of a Topology, per cluster. */
export async function loadTopologyManifests(
  topology: Topology,
  topologyFile: string,
  options: LoadOptions & ValidateOptions,
): Promise<{ clusters: Map<string, readonly AnyResource[]>; problems: Problem[]; files: string[] }> {
  const base = topologyFile === STDIN_NAME ? options.cwd : dirname(resolve(options.cwd, topologyFile));
  const clusters = new Map<string, readonly AnyResource[]>();
  const problems: Problem[] = [];
  const files: string[] = [];
  const topologyRef = `Topology/${topology.metadata.name}`;
  for (const [ci, cluster] of topology.spec.clusters.entries()) {
    const documents: SourceDocument[] = [];
    for (const [mi, entry] of cluster.manifests.entries()) {
      if (typeof entry !== 'string') continue;
      const shown = relative(options.cwd, isAbsolute(entry) ? entry : resolve(base, entry)) || '.';
      const sources = await loadSources([shown], { cwd: options.cwd });
      for (const p of sources.problems) {
        // A path that cannot be read is a mistake in the Topology: report it there.
        const unreadable = p.file === shown && p.resource === undefined && sources.files.length === 0;
        problems.push(
          unreadable
            ? { file: topologyFile, resource: topologyRef, path: `spec.clusters[${ci}].manifests[${mi}]`, message: `"${entry}": ${p.message}` }
            : p,
        );
      }
      files.push(...sources.files);
      documents.push(...sources.documents);
    }
    const result = validateResources(documents, options);
    problems.push(...result.problems);
    const inline = cluster.manifests.filter((m): m is AnyResource => typeof m !== 'string');
    clusters.set(cluster.name, [...inline, ...result.resources]);
  }
  return { clusters, problems, files };
}

/** Reads and validates inputs; throws ValidationError with every problem, else returns frozen resources. */
export async function loadResources(paths: readonly string[], options: LoadOptions & ValidateOptions): Promise<readonly AnyResource[]> {
  const result = await loadAndValidate(paths, options);
  if (result.problems.length > 0) throw new ValidationError(result.problems);
  return result.resources;
}
