/**
 * Debounces bursts of config changes into one push: fires `quietMs` after the last trigger, but never
 * later than `maxDelayMs` after the first trigger of the burst. Runs of the action never overlap: triggers
 * that arrive while it runs start a new burst once it has finished.
 */
import { silentLogger, systemClock } from '../../shared/index.js';
import type { Clock, Logger } from '../../shared/index.js';

export interface DebouncerOptions {
  quietMs?: number;
  maxDelayMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** What one firing covers: how many triggers it merged and the reasons given with them. */
export interface DebouncedBatch<R> {
  triggers: number;
  reasons: R[];
  /** Time from the burst's first trigger to the firing, in ms of the injected clock. */
  delayMs: number;
}

/** Trigger with an optional reason; the action gets all reasons of the batch. */
export interface Debouncer<R = string> {
  trigger(reason?: R): void;
  /** Fires now if a burst is pending; resolves when that run (and any run in progress) is over. */
  flush(): Promise<void>;
  /** True while a burst is waiting or the action runs. */
  readonly pending: boolean;
  /** Drops the pending burst; a run in progress completes. */
  close(): void;
}

export function createDebouncer<R = string>(
  options: DebouncerOptions,
  action: (batch: DebouncedBatch<R>) => void | Promise<void>,
): Debouncer<R> {
  const quietMs = options.quietMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  if (!(quietMs >= 0) || !(maxDelayMs >= quietMs)) {
    throw new RangeError(`debouncer: quietMs must be >= 0 and maxDelayMs >= quietMs (got ${quietMs}, ${maxDelayMs})`);
  }

  let firstAt: number | undefined;
  let lastAt = 0;
  let triggers = 0;
  let reasons: R[] = [];
  let timer: { cancel(): void } | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  function schedule(): void {
    timer?.cancel();
    if (firstAt === undefined || running) return;
    const due = Math.min(lastAt + quietMs, firstAt + maxDelayMs);
    timer = clock.setTimeout(fire, Math.max(0, due - clock.now()));
  }

  function fire(): void {
    timer?.cancel();
    timer = undefined;
    if (firstAt === undefined || running || closed) return;
    const batch: DebouncedBatch<R> = { triggers, reasons, delayMs: clock.now() - firstAt };
    firstAt = undefined;
    triggers = 0;
    reasons = [];
    let result: void | Promise<void>;
    try {
      result = action(batch);
    } catch (err) {
      logger.error('debounced action failed', { error: (err as Error).message });
      result = undefined;
    }
    if (result && typeof result.then === 'function') {
      running = result
        .catch((err: unknown) => logger.error('debounced action failed', { error: (err as Error).message }))
        .finally(() => {
          running = undefined;
          // Triggers that came in meanwhile form the next burst, timed from their own first trigger.
          schedule();
        });
    }
  }

  return {
    trigger(reason) {
      if (closed) return;
      const now = clock.now();
      if (firstAt === undefined) firstAt = now;
      lastAt = now;
      triggers++;
      if (reason !== undefined) reasons.push(reason);
      schedule();
    },
    async flush() {
      if (running) await running;
      fire();
      if (running) await running;
    },
    get pending() {
      return firstAt !== undefined || running !== undefined;
    },
    close() {
      closed = true;
      timer?.cancel();
      timer = undefined;
      firstAt = undefined;
    },
  };
}
