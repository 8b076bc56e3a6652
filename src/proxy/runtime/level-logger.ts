/** A logger whose minimum level can change at run time (the admin `/logging` endpoint). */
import { silentLogger } from '../../shared/index.js';
import type { Logger } from '../../shared/index.js';

const ORDER = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof ORDER;

/** Filters `base` (which should itself pass everything through) at `level()`, read per call. */
export function createLevelLogger(base: Logger | undefined, level: () => Level): Logger {
  const inner = base ?? silentLogger;
  const on = (l: Level): boolean => ORDER[l] >= ORDER[level()];
  return {
    debug: (m, f) => on('debug') && inner.debug(m, f),
    info: (m, f) => on('info') && inner.info(m, f),
    warn: (m, f) => on('warn') && inner.warn(m, f),
    error: (m, f) => on('error') && inner.error(m, f),
    child: (fields) => createLevelLogger(inner.child(fields), level),
  } as Logger;
}
