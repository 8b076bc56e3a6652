/**
 * What changed between two states of a type, as data (add / change / remove), for consumers that apply
 * xDS updates incrementally. Relies on the ADS client handing back the same object for unchanged bytes.
 */
import type { ResourceUpdate } from './ads-client.js';

export interface ResourceDiff<T> {
  added: Array<[string, T]>;
  changed: Array<[string, T]>;
  removed: string[];
  /** Count of resources carried over untouched. */
  unchanged: number;
}

export function diffUpdate<T>(prev: ResourceUpdate<T> | undefined, next: ResourceUpdate<T>): ResourceDiff<T> {
  const diff: ResourceDiff<T> = { added: [], changed: [], removed: [], unchanged: 0 };
  const before = prev?.resources ?? new Map<string, T>();
  for (const [name, value] of next.resources) {
    const old = before.get(name);
    if (old === undefined) diff.added.push([name, value]);
    else if (old !== value) diff.changed.push([name, value]);
    else diff.unchanged++;
  }
  for (const name of before.keys()) if (!next.resources.has(name)) diff.removed.push(name);
  return diff;
}
