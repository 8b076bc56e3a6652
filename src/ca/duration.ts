import { UsageError } from '../shared/errors.js';

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `90s`, `30m`, `24h`, `7d`, `1h30m` or a bare number of seconds into whole seconds (> 0). */
export function parseDurationSeconds(text: string, option = 'duration'): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const n = Number(trimmed);
    if (n > 0) return n;
  } else if (/^(\d+[smhd])+$/.test(trimmed)) {
    let total = 0;
    for (const m of trimmed.matchAll(/(\d+)([smhd])/g)) total += Number(m[1]) * units[m[2]!]!;
    if (total > 0) return total;
  }
  throw new UsageError(`${option}: must be a positive duration like 90s, 30m, 24h or 7d (got "${text}")`);
}

/** Renders seconds the way people write them back: 86400 → 24h, 90 → 1m30s. */
export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0 && seconds >= 86400 * 2) return `${seconds / 86400}d`;
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [unit, size] of [['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('') || '0s';
}
