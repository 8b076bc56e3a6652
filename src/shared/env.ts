/**
 * The one place environment variables are read. Other modules take these values
 * as options so tests can pass their own.
 */
export interface Environment {
  /** Print stack traces for unexpected errors. */
  debug: boolean;
  /** Minimum log level: debug, info, warn, error. */
  logLevel: string;
  /** Log as JSON lines instead of text. */
  logJson: boolean;
  /** Where `crossmesh up -d` keeps the running lab's state. */
  labDir: string | undefined;
  /** Default resource API for apply/get/delete: URL, bearer token, CA bundle file. */
  server: string | undefined;
  token: string | undefined;
  caFile: string | undefined;
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  return {
    debug: env.CROSSMESH_DEBUG === '1' || env.CROSSMESH_DEBUG === 'true',
    logLevel: env.CROSSMESH_LOG_LEVEL ?? 'info',
    logJson: env.CROSSMESH_LOG_FORMAT === 'json',
    labDir: env.CROSSMESH_LAB_DIR,
    server: env.CROSSMESH_SERVER,
    token: env.CROSSMESH_TOKEN,
    caFile: env.CROSSMESH_CA_FILE,
  };
}
