/** google.protobuf.Duration as protobufjs takes it. */
export interface ProtoDuration {
  seconds: number;
  nanos: number;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Parses Go/Istio duration strings ("1.5s", "100ms", "1h30m") into nanoseconds; undefined if malformed. */
export function parseDurationNs(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? Math.round(total) : undefined;
}

export function durationFromNs(ns: number): ProtoDuration {
  return { seconds: Math.floor(ns / 1e9), nanos: ns % 1e9 };
}

export function durationFromMs(ms: number): ProtoDuration {
  return durationFromNs(Math.round(ms * 1e6));
}

/** Istio duration string → proto Duration; undefined input or malformed text gives undefined. */
export function protoDuration(text: string | undefined): ProtoDuration | undefined {
  if (text === undefined) return undefined;
  const ns = parseDurationNs(text);
  return ns === undefined ? undefined : durationFromNs(ns);
}
