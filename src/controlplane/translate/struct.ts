import type { StructValue } from '../../xds/index.js';

/**
 * google.protobuf.Struct for resources packed with protobufjs, whose built-in well-known types name
 * Value's fields in camelCase (`stringValue`); proto-loader objects (node metadata) use snake_case and
 * go through xds/struct.ts instead.
 */
export function resourceStruct(obj: Record<string, unknown>): StructValue {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) fields[k] = value(v);
  // xds's StructValue type spells proto-loader's snake_case; the runtime shape here is protobufjs's.
  return { fields } as unknown as StructValue;
}

function value(v: unknown): unknown {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
  if (typeof v === 'object') return { structValue: resourceStruct(v as Record<string, unknown>) as unknown };
  return { stringValue: String(v) };
}
