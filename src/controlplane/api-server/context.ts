import type { ServerResponse } from 'node:http';
import type { Resource } from '../../api/types.js';
import type { Clock } from '../../shared/clock.js';
import type { Problem } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Store } from '../store/index.js';

/** Checks resources exactly as `crossmesh validate` does; returns every problem (empty = valid). */
export type Validate = (resources: Resource[]) => Problem[];

/** What the request handlers share. */
export interface HandlerContext {
  store: Store;
  validate: Validate;
  logger: Logger;
  clock: Clock;
  bookmarkIntervalMs: number;
  maxBodyBytes: number;
  /** Open watch streams, ended when the server closes. */
  watches: Set<ServerResponse>;
}

/** A parsed resource URL. */
export interface ResourcePath {
  group: string;
  version: string;
  plural: string;
  /** Set when the URL has `/namespaces/{ns}/`. */
  namespace?: string;
  name?: string;
}
