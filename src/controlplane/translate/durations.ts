import { parseDuration } from '../../api/index.js';

/** google.protobuf.Duration as protobufjs takes it. */
export interface ProtoDuration {
  seconds: number;
  nanos: number;
}

function durationFromNs(ns: number): ProtoDuration {
  return { seconds: Math.floor(ns / 1e9), nanos: ns % 1e9 };
}

export function durationFromMs(ms: number): ProtoDuration {
  return durationFromNs(Math.round(ms * 1e6));
}

/**
 * Istio duration string → proto Duration. Translation reads validated config, so a malformed string
 * cannot reach here; it gives undefined rather than a throw all the same.
 */
export function protoDuration(text: string | undefined): ProtoDuration | undefined {
  if (text === undefined) return undefined;
  try {
    return durationFromMs(parseDuration(text));
  } catch {
    return undefined;
  }
}
