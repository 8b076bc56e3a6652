import { z } from 'zod';

// Building blocks shared by every kind's schema. Messages are written for people: they end up verbatim
// after `FILE: Kind/ns/name: field.path: `.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** Go's time.ParseDuration syntax, which Istio's CRD validation accepts: "1s", "100ms", "1h30m", "1.5s". */
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** The JSON type of a value as users think of it, for "expected string, got number". */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function typeError(expected: string) {
  return (iss: { input?: unknown }) =>
    iss.input === undefined ? 'required' : `expected ${expected}, got ${typeName(iss.input)}`;
}

/** A DNS-1123 label (RFC 1123): namespaces, port names, container names, cluster ids. */
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** A DNS-1123 subdomain: most object names. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export const dns1123Label = z
  .string({ error: typeError('string') })
  .refine(isDns1123Label, {
    error: 'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit',
  });

export const dns1123Subdomain = z
  .string({ error: typeError('string') })
  .refine(isDns1123Subdomain, {
    error: 'must be a DNS-1123 subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit',
  });

/** Service names are DNS-1035 labels: like DNS-1123 labels but starting with a letter. */
export const dns1035Label = z
  .string({ error: typeError('string') })
  .refine((s) => s.length <= 63 && DNS1035_LABEL.test(s), {
    error: 'must be a DNS-1035 label: at most 63 lower-case letters, digits or "-", starting with a letter',
  });

export const str = z.string({ error: typeError('string') });
export const nonEmptyStr = str.min(1, { error: 'must not be empty' });
export const bool = z.boolean({ error: typeError('boolean') });
export const strList = z.array(str, { error: typeError('array') });

/** An integer in [min, max]; wrong types say so, wrong values name the range. */
export function intRange(min: number, max: number) {
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined
      ? 'required'
      : typeof iss.input === 'number'
        ? `must be an integer ${min}..${max}`
        : `expected integer, got ${typeName(iss.input)}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

/** A number (not necessarily integral) in [min, max]. */
export function numRange(min: number, max: number) {
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined
      ? 'required'
      : typeof iss.input === 'number'
        ? `must be a number ${min}..${max}`
        : `expected number, got ${typeName(iss.input)}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
}

export const nonNegativeInt = intRange(0, 2 ** 31 - 1);
export const port = intRange(1, 65535);

/** Istio durations: "1s", "100ms", "1h", "1m30s"; at least 1ms where Istio requires it is checked per field. */
export const duration = z
  .string({ error: typeError('duration string such as "1s"') })
  .regex(DURATION, { error: 'must be a duration such as "1s", "100ms" or "1h"' });

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Converts a validated duration string to milliseconds ("1m30s" → 90000). Throws on a malformed string. */
export function parseDuration(text: string): number {
  if (!DURATION.test(text)) throw new RangeError(`not a duration: "${text}"`);
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total;
}

function isLabelKey(k: string): boolean {
  const slash = k.indexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

export const labelKey = str.refine(isLabelKey, {
  error: 'must be a label key: an optional DNS subdomain prefix and "/", then at most 63 letters, digits, "-", "_" or "."',
});

export const labelValue = z
  .string({ error: typeError('string (quote numbers and booleans in YAML)') })
  .refine((v) => v.length <= 63 && LABEL_VALUE.test(v), {
    error: 'must be a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
  });

/** Kubernetes labels: qualified-name keys, short values. */
export const labels = z.record(labelKey, labelValue, { error: typeError('map of strings') });

/** Annotations: qualified-name keys, any string value. */
export const annotations = z.record(labelKey, z.string({ error: typeError('string') }), {
  error: typeError('map of strings'),
});

export const stringMap = z.record(str, str, { error: typeError('map of strings') });

/** Istio's Percent message: `{ value: 0..100 }`, fractional values allowed. */
export const percent = z.strictObject({ value: numRange(0, 100) }, { error: typeError('object') });

/** Istio's PortSelector. */
export const portSelector = z.strictObject({ number: port }, { error: typeError('object') });

/** Istio's StringMatch: exactly one of exact, prefix or regex. */
export const stringMatch = z
  .strictObject(
    { exact: str.optional(), prefix: str.optional(), regex: str.optional() },
    { error: typeError('object with exact, prefix or regex') },
  )
  .superRefine((m, ctx) => {
    const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `must set exactly one of exact, prefix, regex (got ${set.length})` });
      return;
    }
    if (m.regex !== undefined) {
      try {
        new RegExp(m.regex);
      } catch {
        ctx.addIssue({ code: 'custom', path: ['regex'], message: 'is not a valid regular expression' });
      }
    }
  });

/** Kubernetes label selector as Deployments use it. */
export const labelSelector = z.strictObject(
  {
    matchLabels: labels.optional(),
    matchExpressions: z
      .array(
        z.strictObject({
          key: labelKey,
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: strList.optional(),
        }),
      )
      .optional(),
  },
  { error: typeError('object') },
);

/** Istio's WorkloadSelector: `{ matchLabels }`. */
export const workloadSelector = z.strictObject({ matchLabels: labels.optional() }, { error: typeError('object') });

/** Helper for "exactly one of" / "at most one of" rules on a parsed object. */
export function countSet(obj: Record<string, unknown>, keys: readonly string[]): string[] {
  return keys.filter((k) => obj[k] !== undefined);
}

export { typeError };

const HOST = /^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?)*)$/;

/** A service host as Istio matches it: a short name, an FQDN, or a wildcard such as `*.local` or `*`. */
export const wildcardHost = str.refine((h) => h.length <= 255 && HOST.test(h), {
  error: 'must be a host name, optionally starting with "*." (or "*" alone)',
});

/** A host without wildcards: where traffic is sent. */
export const exactHost = str.refine((h) => h.length <= 255 && !h.includes('*') && HOST.test(h), {
  error: 'must be a host name without wildcards',
});

/** Istio's exportTo: "." (this namespace), "*" (everywhere), "~" (nowhere) or a namespace name. */
export const exportTo = z.array(
  str.refine((v) => v === '.' || v === '*' || v === '~' || isDns1123Label(v), {
    error: 'must be ".", "*", "~" or a namespace name',
  }),
);
