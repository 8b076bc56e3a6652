/**
 * Packing resources into google.protobuf.Any and back.
 *
 * Plain objects use the proto field names (snake_case). A nested Any (typed_config, transport_socket…)
 * is written and read as `{'@type': typeUrl, ...fields}`, as in Envoy's YAML/JSON. Integers come back as
 * numbers, enums as their names, bytes as Buffers; fields left at their default are absent.
 */
import protobufjs from 'protobufjs';
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
  const normalized = normalize(type, obj, [], problems) as object;
  if (problems.length) throw new XdsCodecError(`invalid ${messageNameOf(typeUrl)}`, problems);
  let value: Uint8Array;
  try {
    value = type.encode(type.fromObject(normalized)).finish();
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

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String };

function toPlain(type: protobuf.Type, message: protobuf.Message): Record<string, unknown> {
  const obj = type.toObject(message, TO_OBJECT);
  expandAnys(type, obj);
  return obj;
}

let anyType: protobuf.Type | undefined;
/** Identity check: protobufjs computes `fullName` by walking parents on every access. */
function isAny(type: protobuf.Type): boolean {
  anyType ??= resourceRoot().lookupType('google.protobuf.Any');
  return type === anyType;
}
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
  if (isAny(type)) return true;
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
      if (isAny(child)) return unpackAny(x as Any);
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

type Path = Array<string | number>;

function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (seg.startsWith('[')) out += seg;
    else out += out ? `.${seg}` : seg;
  }
  return out || '(root)';
}

/**
 * Checks `obj` against `type` and returns what protobufjs should encode: `obj` itself, or a copy where
 * map fields have their keys sorted (protobufjs writes map entries in insertion order, so without this
 * equal resources could encode to different bytes and get different content versions). Copies only what
 * changes; paths are formatted only for problems, keeping the common case cheap.
 */
function normalize(type: protobuf.Type, obj: unknown, path: Path, problems: string[]): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || obj instanceof Uint8Array) {
    problems.push(`${formatPath(path)}: expected an object for ${type.fullName.slice(1)}`);
    return obj;
  }
  const o = obj as Record<string, unknown>;
  let target = type;
  const atType = o['@type'];
  if (typeof atType === 'string' && isAny(type)) {
    const inner = messageType(atType);
    if (!inner) {
      path.push('@type');
      problems.push(`${formatPath(path)}: unknown type ${atType}`);
      path.pop();
      return obj;
    }
    target = inner;
  }
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(o)) {
    const value = o[key];
    const field = target.fields[key];
    if (!field) {
      if (key !== '@type' || target === type) {
        path.push(key);
        problems.push(`${formatPath(path)}: no such field in ${target.fullName.slice(1)}`);
        path.pop();
      }
      continue;
    }
    if (value === undefined || value === null) continue;
    path.push(key);
    let next: unknown = value;
    if (field.map) {
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${formatPath(path)}: expected a map`);
      } else {
        const m = value as Record<string, unknown>;
        const keys = Object.keys(m);
        const sorted = [...keys].sort();
        let changed = sorted.some((k, i) => k !== keys[i]);
        const copy: Record<string, unknown> = {};
        for (const k of sorted) {
          path.push(`[${JSON.stringify(k)}]`);
          copy[k] = normalizeValue(field, m[k], path, problems);
          path.pop();
          if (copy[k] !== m[k]) changed = true;
        }
        if (changed) next = copy;
      }
    } else if (field.repeated) {
      if (!Array.isArray(value)) {
        problems.push(`${formatPath(path)}: expected a list`);
      } else {
        let copy: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          const n = normalizeValue(field, value[i], path, problems);
          path.pop();
          if (n !== value[i]) (copy ??= value.slice())[i] = n;
        }
        if (copy) next = copy;
      }
    } else {
      next = normalizeValue(field, value, path, problems);
    }
    path.pop();
    if (next !== value) (out ??= { ...o })[key] = next;
  }
  return out ?? obj;
}

function normalizeValue(field: protobuf.Field, value: unknown, path: Path, problems: string[]): unknown {
  const rt = field.resolvedType;
  if (rt && 'fields' in rt) return normalize(rt as protobuf.Type, value, path, problems);
  if (rt && 'values' in rt) {
    const e = rt as protobuf.Enum;
    if (typeof value === 'string' ? !(value in e.values) : typeof value !== 'number') {
      problems.push(`${formatPath(path)}: ${JSON.stringify(value)} is not a ${e.name} value`);
    }
  }
  return value;
}

/** The name a resource is known by in xDS: `cluster_name` for endpoints, `name` otherwise. */
export function resourceNameOf(typeUrl: string, value: Record<string, unknown>): string {
  const n = typeUrl === TYPE_URLS.endpoint ? value.cluster_name : value.name;
  return typeof n === 'string' ? n : '';
}

/** Reads only the name field of an Any (a snapshot of thousands of resources needs every name). */
export function resourceName(any: Any): string {
  const type = messageType(any.type_url);
  if (!type) throw new XdsCodecError(`unknown resource type ${any.type_url}`);
  const id = type.fields[any.type_url === TYPE_URLS.endpoint ? 'cluster_name' : 'name']?.id;
  if (id === undefined) return '';
  try {
    const reader = protobufjs.Reader.create(any.value);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === id && (tag & 7) === 2) return reader.string();
      reader.skipType(tag & 7);
    }
  } catch (err) {
    throw new XdsCodecError(`cannot decode ${messageNameOf(any.type_url)}: ${(err as Error).message}`, [], { cause: err });
  }
  return '';
}

/**
 * A decoded resource made JSON-safe for config dumps: bytes become base64 strings, as in proto3 JSON.
 * Field names stay snake_case (protojson readers such as istioctl accept both spellings).
 */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
  return out;
}
