/** Reading decoded xDS values: wrappers, durations, fractions and Structs, as protobufjs hands them over. */
import { fromStruct } from '../../xds/index.js';
import type { StructValue } from '../../xds/index.js';

/**
 * A decoded protobuf message as protobufjs hands it over: JSON-shaped, every field optional. Compilers
 * read it field by field, defensively, and report what they cannot use.
 */
export type Decoded = Record<string, ReturnType<typeof JSON.parse>>;

/** A problem found while compiling one resource; `path` names the field. */
export interface CompileProblem {
  path: string;
  message: string;
}

/** Collects problems for one resource while compiling it. */
export class Problems {
  readonly list: CompileProblem[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
}

/**
 * A google.protobuf wrapper: absent → `dflt`; present without `value` → the type's zero (protobufjs drops
 * default scalars, so `{value: 0}` and `{value: false}` decode as `{}`).
 */
export function wrapped<T extends number | boolean>(w: unknown, dflt: T): T {
  if (w === undefined || w === null) return dflt;
  const v = (w as { value?: T }).value;
  if (v === undefined) return (typeof dflt === 'boolean' ? false : 0) as T;
  return v;
}

/** A google.protobuf.Duration in milliseconds; absent → `dflt`. */
export function durationMs(d: unknown, dflt: number): number {
  if (d === undefined || d === null) return dflt;
  const o = d as { seconds?: number | string; nanos?: number };
  return Number(o.seconds ?? 0) * 1000 + Math.round((o.nanos ?? 0) / 1e6);
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** An envoy.type.v3.FractionalPercent as a probability 0..1; absent → `dflt`. */
export function fraction(f: unknown, dflt: number): number {
  if (f === undefined || f === null) return dflt;
  const o = f as { numerator?: number; denominator?: string };
  const den = DENOMINATORS[o.denominator ?? 'HUNDRED'] ?? 100;
  return Math.min(1, (o.numerator ?? 0) / den);
}

/** Struct → plain JSON (empty object when absent). */
export function structJson(s: unknown): Record<string, unknown> {
  return s ? fromStruct(s as StructValue) : {};
}

/** Compiles an RE2-style pattern for a full match; undefined when JavaScript cannot take it. */
export function fullMatchRegex(pattern: string, flags = ''): RegExp | undefined {
  try {
    return new RegExp(`^(?:${pattern})$`, flags);
  } catch {
    return undefined;
  }
}
