import type { Any } from '../xds/index.js';
import { encodeResource } from '../xds/index.js';

/**
 * Packs resources into Anys, reusing the bytes of a resource of the same type whose plain-object content
 * was already packed. Most of a full push is the same clusters and endpoint assignments encoded again for
 * every proxy group and every push; protobuf encoding costs several times what serializing the object to
 * JSON does, so the JSON text is the cache key. Keying by content rather than by what a resource was built
 * from means a changed resource can never be served stale bytes.
 *
 * Entries live in passes: `beginPass` starts one, `endPass(typeUrls)` drops the entries of those types that
 * were not used since it began, so the cache holds no more than what the current snapshots are made of
 * (plus what groups that came and went between passes used until the next pass ends).
 */
export interface ResourceEncoder {
  /** Same result as `encodeResource(typeUrl, obj)`, byte for byte; may return a shared Any (never mutate it). */
  encode(typeUrl: string, obj: object): Any;
  /** Starts a pass and returns its token for `endPass`. */
  beginPass(): number;
  /** Drops entries of `typeUrls` (every type when omitted) not used since the pass `token` began. */
  endPass(token: number, typeUrls?: readonly string[]): void;
  stats(): { entries: number; hits: number; misses: number };
}

interface Entry {
  any: Any;
  /** The last pass that used it. */
  pass: number;
}

export function createResourceEncoder(): ResourceEncoder {
  const byType = new Map<string, Map<string, Entry>>();
  let pass = 0;
  let hits = 0;
  let misses = 0;

  return {
    encode(typeUrl, obj) {
      const key = contentKey(obj);
      // No key: content JSON cannot represent faithfully; encode it every time.
      if (key === undefined) return encodeResource(typeUrl, obj);
      let entries = byType.get(typeUrl);
      if (!entries) byType.set(typeUrl, (entries = new Map()));
      const found = entries.get(key);
      if (found) {
        found.pass = pass;
        hits++;
        return found.any;
      }
      const any = encodeResource(typeUrl, obj);
      entries.set(key, { any, pass });
      misses++;
      return any;
    },
    beginPass: () => ++pass,
    endPass(token, typeUrls) {
      for (const typeUrl of typeUrls ?? [...byType.keys()]) {
        const entries = byType.get(typeUrl);
        if (!entries) continue;
        for (const [key, e] of entries) if (e.pass < token) entries.delete(key);
        if (entries.size === 0) byType.delete(typeUrl);
      }
    },
    stats: () => ({ entries: [...byType.values()].reduce((n, m) => n + m.size, 0), hits, misses }),
  };
}

/**
 * JSON text identifies a resource's content for encoding purposes: encodeResource skips undefined and null
 * fields and reads objects by their own keys, as JSON does. JSON turns NaN and ±Infinity into `null`, which
 * would encode differently, so any text containing `null` is not used as a key (nor is one that cannot be
 * made at all, such as with a BigInt).
 */
function contentKey(obj: object): string | undefined {
  let key: string;
  try {
    key = JSON.stringify(obj);
  } catch {
    return undefined;
  }
  return key.includes('null') ? undefined : key;
}
