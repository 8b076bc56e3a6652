/**
 * Every error crossmesh raises on purpose is a CrossmeshError with a stable `code`
 * that scripts and tests can match on; messages name the resource and field involved.
 */
export class CrossmeshError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The user asked for something the command line cannot express: exit code 2. */
export class UsageError extends CrossmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_USAGE', message, options);
  }
}

/** One problem found in user input, located by file, resource and field path. */
export interface Problem {
  file?: string;
  /** `Kind/namespace/name`, or `Kind/name` for cluster-scoped resources. */
  resource?: string;
  /** Dotted path with [index] for arrays, e.g. `spec.http[0].route[1].weight`. */
  path?: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return [p.file, p.resource, p.path, p.message].filter((s) => s !== undefined && s !== '').join(': ');
}

/** User input was rejected; carries every problem found, not only the first. */
export class ValidationError extends CrossmeshError {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[], options?: { cause?: unknown }) {
    super('E_INVALID', problems.map(formatProblem).join('\n'), options);
    this.problems = problems;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
