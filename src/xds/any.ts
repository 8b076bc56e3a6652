/**
 * Packing resources into google.protobuf.Any and back.
 *
 * Plain objects use the proto field names (snake_case). A nested Any (typed_config, transport_socket…)
 * is written and read as `{'@type': typeUrl, ...fields}`, as in Envoy's YAML/JSON. Integers come back as
 * numbers, enums as their names, bytes as Buffers; fields left at their default are absent.
 */
import type protobuf from 'protobufjs';
import { CrossmeshError } from '../shared/index.js';
import { resourceRoot } from './protos.js';
import { TYPE_URLS, messageNameOf } from './type-urls.js';

/** google.protobuf.Any as it travels in DiscoveryResponse.resources. */
export interface Any {
  type_url: string;
  value: Uint8Array;
}

/** A resource unpacked from an Any. */
export interface DecodedResource<T = Record<string, unknown>> {
  typeUrl: string;
  value: T;
}

/** A resource could not be packed or unpacked; `problems` lists every field path found wrong. */
export class XdsCodecError extends CrossmeshError {
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[] = [], options?: { cause?: unknown }) {
    super('E_XDS_CODEC', problems.length ? `${message}: ${problems.join('; ')}` : message, options);
    this.problems = problems;
  }
}

const typeCache = new Map<string, protobuf.Type | null>();

/** The message type for a type URL, or undefined when the loaded protos do not define it. */
export function messageType(typeUrl: string): protobuf.Type | undefined {
  const name = messageNameOf(typeUrl);
  let t = typeCache.get(name);
  if (t === undefined) {
    try {
      t = resourceRoot().lookupType(name);
    } catch {
      t = null;
    }
    typeCache.set(name, t);
  }
  return t ?? undefined;
}

/**
 * Packs a plain object as an Any of `typeUrl`. Unknown field names, unknown enum values and unknown
 * nested `@type`s are errors (protobufjs would drop them silently), reported all at once.
 */
export function encodeResource(typeUrl: string, obj: object): Any {
  const type = messageType(typeUrl);
  if (!type) throw new XdsCodecError(`unknown resource type ${typeUrl}`);
  const problems: string[] = [];
  checkShape(type, obj, '', problems);
  if (problems.length) throw new XdsCodecError(`invalid ${messageNameOf(typeUrl)}`, problems);
  let value: Uint8Array;
  try {
    value = type.encode(type.fromObject(canonical(obj) as object)).finish();
  } catch (err) {
    throw new XdsCodecError(`cannot encode ${messageNameOf(typeUrl)}: ${(err as Error).message}`, [], { cause: err });
  }
  return { type_url: typeUrl, value };
}

/** Unpacks an Any into its type URL and plain object; nested Anys are unpacked too. */
export function decodeResource<T = Record<string, unknown>>(any: Any): DecodedResource<T> {
  const type = messageType(any.type_url);
  if (!type) throw new XdsCodecError(`unknown resource type ${any.type_url}`);
  let value: Record<string, unknown>;
  try {
    value = toPlain(type, type.decode(any.value));
  } catch (err) {
    if (err instanceof XdsCodecError) throw err;
    throw new XdsCodecError(`cannot decode ${messageNameOf(any.type_url)}: ${(err as Error).message}`, [], { cause: err });
  }
  return { typeUrl: any.type_url, value: value as T };
}

/**
 * A copy with every object's keys sorted. protobufjs writes map entries in key insertion order, so
 * without this, equal resources could encode to different bytes and get different content versions.
 */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
  return out;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String };

function toPlain(type: protobuf.Type, message: protobuf.Message): Record<string, unknown> {
  const obj = type.toObject(message, TO_OBJECT);
  expandAnys(type, obj);
  return obj;
}

const ANY = '.google.protobuf.Any';
const anyFieldsCache = new Map<protobuf.Type, readonly protobuf.Field[]>();

/** The fields of `type` through which an Any can be reached; decoding walks only those. */
function anyFields(type: protobuf.Type): readonly protobuf.Field[] {
  let fields = anyFieldsCache.get(type);
  if (!fields) {
    fields = type.fieldsArray.filter((f) => {
      f.resolve();
      return f.resolvedType instanceof Object && 'fields' in f.resolvedType && reachesAny(f.resolvedType as protobuf.Type, new Set());
    });
    anyFieldsCache.set(type, fields);
  }
  return fields;
}

function reachesAny(type: protobuf.Type, seen: Set<protobuf.Type>): boolean {
  if (type.fullName === ANY) return true;
  if (seen.has(type)) return false;
  seen.add(type);
  return type.fieldsArray.some((f) => {
    f.resolve();
    return f.resolvedType instanceof Object && 'fields' in f.resolvedType && reachesAny(f.resolvedType as protobuf.Type, seen);
  });
}

/** Replaces, in place, every packed Any under `obj` by its unpacked `{'@type', ...fields}` form. */
function expandAnys(type: protobuf.Type, obj: Record<string, unknown>): void {
  for (const field of anyFields(type)) {
    const v = obj[field.name];
    if (v === undefined || v === null) continue;
    const child = field.resolvedType as protobuf.Type;
    const one = (x: unknown): unknown => {
      if (child.fullName === ANY) return unpackAny(x as Any);
      expandAnys(child, x as Record<string, unknown>);
      return x;
    };
    if (field.map) {
      const m = v as Record<string, unknown>;
      for (const k of Object.keys(m)) m[k] = one(m[k]);
    } else if (field.repeated) {
      obj[field.name] = (v as unknown[]).map(one);
    } else {
      obj[field.name] = one(v);
    }
  }
}

function unpackAny(any: Any): unknown {
  const inner = typeof any.type_url === 'string' ? messageType(any.type_url) : undefined;
  // An Any of a type we do not know stays packed; the consumer decides whether that is an error.
  if (!inner) return any;
  return { '@type': any.type_url, ...toPlain(inner, inner.decode(any.value ?? new Uint8Array())) };
}

function checkShape(type: protobuf.Type, obj: unknown, path: string, problems: string[]): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    problems.push(`${path || '(root)'}: expected an object for ${type.fullName.slice(1)}`);
    return;
  }
  const o = obj as Record<string, unknown>;
  if (type.fullName === '.google.protobuf.Any' && typeof o['@type'] === 'string') {
    const inner = messageType(o['@type']);
    if (!inner) {
      problems.push(`${path}.@type: unknown type ${o['@type']}`);
      return;
    }
    const { '@type': _ignored, ...rest } = o;
    checkShape(inner, rest, path, problems);
    return;
  }
  for (const [key, value] of Object.entries(o)) {
    const at = path ? `${path}.${key}` : key;
    const field = type.fields[key];
    if (!field) {
      if (key === '@type') continue;
      problems.push(`${at}: no such field in ${type.fullName.slice(1)}`);
      continue;
    }
    if (value === undefined || value === null) continue;
    field.resolve();
    if (field.map) {
      if (typeof value !== 'object') problems.push(`${at}: expected a map`);
      else for (const [mk, mv] of Object.entries(value)) checkValue(field, mv, `${at}[${JSON.stringify(mk)}]`, problems);
    } else if (field.repeated) {
      if (!Array.isArray(value)) problems.push(`${at}: expected a list`);
      else value.forEach((item, i) => checkValue(field, item, `${at}[${i}]`, problems));
    } else {
      checkValue(field, value, at, problems);
    }
  }
}

function checkValue(field: protobuf.Field, value: unknown, at: string, problems: string[]): void {
  const rt = field.resolvedType;
  if (rt && 'fields' in rt) {
    // Wrappers like UInt32Value accept {value: n}; a bare scalar is a common slip worth naming.
    checkShape(rt as protobuf.Type, value, at, problems);
  } else if (rt && 'values' in rt) {
    const e = rt as protobuf.Enum;
    if (typeof value === 'string' ? !(value in e.values) : typeof value !== 'number') {
      problems.push(`${at}: ${JSON.stringify(value)} is not a ${e.name} value`);
    }
  }
}

/** The name a resource is known by in xDS: `cluster_name` for endpoints, `name` otherwise. */
export function resourceNameOf(typeUrl: string, value: Record<string, unknown>): string {
  const n = typeUrl === TYPE_URLS.endpoint ? value.cluster_name : value.name;
  return typeof n === 'string' ? n : '';
}

/** Decodes just enough of an Any to learn its resource name. */
export function resourceName(any: Any): string {
  return resourceNameOf(any.type_url, decodeResource(any).value);
}
