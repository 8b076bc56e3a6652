/** Exponential backoff with jitter; randomness injected so tests can pin it. */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  multiplier?: number;
  /** Fraction of the delay randomised either way: 0.2 gives delay × [0.8, 1.2). */
  jitter?: number;
  random?: () => number;
}

/** Successive delays grow by `multiplier` up to `maxMs`; reset() starts again from `initialMs`. */
export interface Backoff {
  next(): number;
  reset(): void;
  readonly attempts: number;
}

export function createBackoff(options: BackoffOptions = {}): Backoff {
  const initial = options.initialMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const multiplier = options.multiplier ?? 2;
  const jitter = options.jitter ?? 0.2;
  const random = options.random ?? Math.random;
  if (!(initial > 0) || !(max >= initial) || !(multiplier >= 1) || !(jitter >= 0 && jitter < 1)) {
    throw new RangeError(`backoff: need initialMs > 0, maxMs >= initialMs, multiplier >= 1, 0 <= jitter < 1`);
  }
  let attempts = 0;
  return {
    next() {
      const base = Math.min(max, initial * multiplier ** attempts);
      attempts++;
      return Math.max(1, Math.round(base * (1 - jitter + 2 * jitter * random())));
    },
    reset() {
      attempts = 0;
    },
    get attempts() {
      return attempts;
    },
  };
}
