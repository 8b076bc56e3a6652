import type { Clock } from '../src/shared/clock.js';

/** A manual clock for the proxy tests: timers fire only when the test advances time. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  /** Timers currently armed. */
  pending(): number;
}

export function manualClock(): ManualClock {
  let now = 0;
  let timers: { at: number; fn: () => void }[] = [];
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const t = { at: now + ms, fn };
      timers.push(t);
      return { cancel: () => (timers = timers.filter((x) => x !== t)) };
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.at <= now).sort((a, b) => a.at - b.at);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) t.fn();
    },
    pending: () => timers.length,
  };
}
