import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resource } from '../../api/types.js';
import { RevisionGoneError, groupOf, parseLabelSelector } from '../store/index.js';
import type { StoreWatch, WatchEvent } from '../store/index.js';
import type { HandlerContext } from './context.js';
import type { Resolved } from './resources.js';
import { parseFieldSelector, present } from './resources.js';
import { HttpError } from './status.js';

/** A watcher whose client reads slower than this many buffered bytes is dropped; it resumes from its last version. */
const MAX_BUFFERED = 16 * 1024 * 1024;

/**
 * Streams newline-delimited `{type, object}` events. Without resourceVersion (or with "0") the current objects come
 * first as ADDED; with resourceVersion N, every change after N. Too old an N answers 410 Gone before streaming.
 * With allowWatchBookmarks, a BOOKMARK carrying the current revision is sent every bookmark interval.
 */
export function serveWatch(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, r: Resolved, query: URLSearchParams): void {
  const rvParam = query.get('resourceVersion');
  const fromSnapshot = rvParam === null || rvParam === '' || rvParam === '0';
  if (!fromSnapshot && !/^\d+$/.test(rvParam)) {
    throw new HttpError(400, 'BadRequest', `resourceVersion ${JSON.stringify(rvParam)} is not a revision number`);
  }
  const labels = parseLabelSelector(query.get('labelSelector') ?? undefined);
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const matches = (o: Resource): boolean =>
    o.kind === r.info.kind &&
    groupOf(o.apiVersion) === r.group &&
    (r.namespace === undefined || (o.metadata.namespace ?? '') === r.namespace) &&
    labels.matches(o.metadata.labels) &&
    fields(o);

  const pending: string[] = [];
  let started = false;
  const send = (type: string, object: unknown): void => {
    const line = JSON.stringify({ type, object }) + '\n';
    if (!started) {
      pending.push(line);
      return;
    }
    res.write(line);
    if (res.writableLength > MAX_BUFFERED) {
      ctx.logger.warn('api: dropping a watch whose client does not keep up', { kind: r.info.kind });
      stop();
    }
  };
  const onEvent = (e: WatchEvent): void => {
    const now = matches(e.object);
    const before = e.previous !== undefined && e.type === 'MODIFIED' ? matches(e.previous) : now;
    // An object that moves into or out of a selector appears as ADDED or DELETED to this watcher.
    let type: string = e.type;
    if (e.type === 'MODIFIED' && now !== before) type = now ? 'ADDED' : 'DELETED';
    else if (!now) return;
    send(type, present(e.object, r.apiVersion));
  };

  let watch: StoreWatch;
  let from: number;
  if (fromSnapshot) {
    const snap = ctx.store.list(`${r.info.kind}.${r.group}`, r.namespace);
    for (const o of snap.items) if (matches(o)) send('ADDED', present(o, r.apiVersion));
    from = snap.revision;
  } else {
    from = Number(rvParam);
    // A version from the future means this store is not the history the client saw (data dir wiped or restored):
    // make the client relist rather than silently miss changes.
    if (from > ctx.store.revision()) {
      throw new HttpError(410, 'Expired', `resourceVersion ${from} is newer than this server's ${ctx.store.revision()}; relist`);
    }
  }
  try {
    watch = ctx.store.watch(from, onEvent);
  } catch (err) {
    if (err instanceof RevisionGoneError) throw new HttpError(410, 'Expired', `too old resource version: ${err.message}`);
    throw err;
  }

  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-store' });
  res.flushHeaders();
  req.socket.setKeepAlive(true, 10_000);
  started = true;
  for (const line of pending.splice(0)) res.write(line);
  ctx.watches.add(res);

  const bookmarks = query.get('allowWatchBookmarks') === 'true';
  let bookmarkTimer: { cancel(): void } | undefined;
  const scheduleBookmark = (): void => {
    bookmarkTimer = ctx.clock.setTimeout(() => {
      send('BOOKMARK', { kind: r.info.kind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(ctx.store.revision()) } });
      scheduleBookmark();
    }, ctx.bookmarkIntervalMs);
  };
  if (bookmarks) scheduleBookmark();
  const timeout = Number(query.get('timeoutSeconds') ?? '0');
  const endTimer = timeout > 0 ? ctx.clock.setTimeout(() => stop(), timeout * 1000) : undefined;

  let stopped = false;
  function stop(): void {
    if (stopped) return;
    stopped = true;
    watch.cancel();
    bookmarkTimer?.cancel();
    endTimer?.cancel();
    ctx.watches.delete(res);
    if (!res.writableEnded) res.end();
  }
  // The response closes when the stream ends or the client goes away.
  res.on('close', stop);
}
