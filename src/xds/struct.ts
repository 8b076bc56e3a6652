/** google.protobuf.Struct <-> plain JSON, for node metadata and endpoint metadata. */
import type { ProtoValue, StructValue } from './types.js';

/** Converts plain JSON into a Struct; undefined members are dropped, other non-JSON values stringified. */
export function toStruct(obj: Record<string, unknown>): StructValue {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined) fields[k] = toValue(v);
  }
  return { fields };
}

function toValue(v: unknown): ProtoValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

/**
 * Converts a Struct back to plain JSON. Accepts both protobufjs objects and proto-loader objects with
 * `oneofs: true` (which add a `kind` member naming the set field).
 */
export function fromStruct(struct: StructValue | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = fromValue(v);
  return out;
}

function fromValue(v: ProtoValue & { kind?: string }): unknown {
  const kind = v.kind ?? Object.keys(v).find((k) => (v as Record<string, unknown>)[k] !== undefined && (v as Record<string, unknown>)[k] !== null);
  switch (kind) {
    case 'stringValue':
      return v.stringValue;
    case 'numberValue':
      return v.numberValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return fromStruct(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(fromValue);
    default:
      return null;
  }
}
