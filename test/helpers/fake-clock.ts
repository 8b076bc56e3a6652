import type { Clock } from '../../src/shared/clock.js';

/** A clock that moves only when told; timers fire in due order inside advance(), each at its own time. */
export interface FakeClock extends Clock {
  advance(ms: number): void;
  /** Timers currently armed. */
  pending(): number;
}

export function createFakeClock(start = 0): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return { cancel: () => timers.delete(id) };
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    pending: () => timers.size,
  };
}

/** The same clock, starting at 2026-01-01 (tests that print dates). */
export const fakeClock = (start = Date.UTC(2026, 0, 1)): FakeClock => createFakeClock(start);
