/**
 * Batches log lines into one write per event-loop turn. A proxy logs one line per request; writing each on
 * its own costs a stream write (or a syscall, for a synchronous stdout) per request, which showed up as a
 * few percent of the proxy's CPU. Lines are joined and handed to the sink once the current turn's work is
 * done, or at once when `maxChars` are queued, so memory stays bounded under bursts.
 */

export interface LineBatcher {
  /** Queues one line (without its newline). It reaches the sink by the next turn of the event loop. */
  write(line: string): void;
  /** Hands everything queued to the sink now. Call it before closing the sink (shutdown, SIGTERM drain). */
  flush(): void;
  /** Characters queued and not yet handed to the sink. */
  readonly pending: number;
}

export interface LineBatcherOptions {
  /** Receives newline-terminated lines joined into one string; called only with a non-empty chunk. */
  sink(chunk: string): void;
  /** Flush synchronously once this many characters are queued; default 64 Ki. */
  maxChars?: number;
  /** Runs the end-of-turn flush; default setImmediate (after this turn's I/O callbacks). */
  schedule?: (flush: () => void) => void;
}

export function createLineBatcher(options: LineBatcherOptions): LineBatcher {
  const maxChars = options.maxChars ?? 64 * 1024;
  if (!(maxChars > 0)) throw new RangeError(`maxChars: must be positive (got ${maxChars})`);
  const schedule = options.schedule ?? ((fn: () => void) => void setImmediate(fn));
  let queued = '';
  let scheduled = false;

  function flush(): void {
    if (queued === '') return;
    const chunk = queued;
    queued = '';
    options.sink(chunk);
  }
  function onTurn(): void {
    scheduled = false;
    flush();
  }

  return {
    write(line) {
      queued += line + '\n';
      if (queued.length >= maxChars) flush();
      else if (!scheduled) {
        scheduled = true;
        schedule(onTurn);
      }
    },
    flush,
    get pending() {
      return queued.length;
    },
  };
}
