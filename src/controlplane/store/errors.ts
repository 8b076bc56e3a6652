import { CrossmeshError } from '../../shared/errors.js';

/** Events after the requested revision are no longer retained: relist, then watch from the list's revision. */
export class RevisionGoneError extends CrossmeshError {
  constructor(
    readonly requested: number,
    readonly oldest: number,
  ) {
    super('E_STORE_GONE', `revision ${requested} is too old: events are kept only after revision ${oldest}`);
  }
}

/** A write named a resourceVersion that is not the stored one (optimistic concurrency). */
export class ConflictError extends CrossmeshError {
  constructor(
    readonly resource: string,
    message: string,
  ) {
    super('E_STORE_CONFLICT', `${resource}: ${message}`);
  }
}

export class AlreadyExistsError extends CrossmeshError {
  constructor(readonly resource: string) {
    super('E_STORE_EXISTS', `${resource}: already exists`);
  }
}

export class NotFoundError extends CrossmeshError {
  constructor(readonly resource: string) {
    super('E_STORE_NOT_FOUND', `${resource}: not found`);
  }
}

/** Another process (or another store in this process) holds the data directory. */
export class StoreLockedError extends CrossmeshError {
  constructor(dir: string, holder: string) {
    super(
      'E_STORE_LOCKED',
      `data directory ${dir} is in use by ${holder}; stop that control plane or use another --data directory`,
    );
  }
}

/** The snapshot is unreadable; the store refuses to start rather than silently lose state. */
export class StoreCorruptError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_STORE_CORRUPT', message, options);
  }
}

export class StoreClosedError extends CrossmeshError {
  constructor() {
    super('E_STORE_CLOSED', 'the store is closed');
  }
}
