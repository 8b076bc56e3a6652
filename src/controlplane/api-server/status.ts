import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseAllDocuments } from 'yaml';
import type { Problem } from '../../shared/errors.js';
import { formatProblem } from '../../shared/errors.js';

/** A Kubernetes `Status` object, the body of every error response (and of successful deletes). */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message: string;
  reason: string;
  code: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    /** One per problem; `resource` is ours (Kubernetes has no multi-object requests). */
    causes?: Array<{ field?: string; message: string; reason?: string; resource?: string }>;
  };
}

/** An error that maps to one HTTP response. */
export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Status['details'],
  ) {
    super(message);
  }
}

export function statusOf(code: number, reason: string, message: string, details?: Status['details']): Status {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: code < 400 ? 'Success' : 'Failure',
    message,
    reason,
    code,
    ...(details ? { details } : {}),
  };
}

export function invalid(problems: readonly Problem[], name?: string, kind?: string): HttpError {
  const message =
    problems.length === 1
      ? formatProblem(problems[0]!)
      : `${problems.length} problems:\n${problems.map(formatProblem).join('\n')}`;
  return new HttpError(422, 'Invalid', message, {
    ...(name ? { name } : {}),
    ...(kind ? { kind } : {}),
    causes: problems.map((p) => ({
      reason: 'FieldValueInvalid',
      ...(p.path ? { field: p.path } : {}),
      ...(p.resource ? { resource: p.resource } : {}),
      message: p.file ? `${p.file}: ${p.message}` : p.message,
    })),
  });
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

export function sendStatus(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.code, statusOf(err.code, err.reason, err.message, err.details));
}

/** Reads the body, refusing more than `limit` bytes with 413 rather than buffering without bound. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, 'RequestEntityTooLarge', `request body exceeds ${limit} bytes`));
        chunks.length = 0;
        // Keep reading (and discarding) so the client sees the 413 rather than a reset; cut off abusive senders.
        if (size > limit * 16) req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses a JSON or YAML body into documents (YAML may hold several); never throws anything but HttpError 400. */
export function parseBody(body: Buffer, contentType: string | undefined): unknown[] {
  const text = body.toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'BadRequest', 'request body is empty');
  const yamlType = /yaml/i.test(contentType ?? '');
  if (!yamlType) {
    try {
      return [checkDepth(JSON.parse(text))];
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (/json/i.test(contentType ?? '')) {
        throw new HttpError(400, 'BadRequest', `request body is not valid JSON: ${(err as Error).message}`);
      }
    }
  }
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const [i, d] of list.entries()) {
    const e = d.errors[0];
    if (e) {
      const where = e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new HttpError(400, 'BadRequest', `request body is not valid YAML (document ${i + 1})${where}: ${e.message.split('\n')[0]}`);
    }
    const v: unknown = d.toJSON();
    if (v !== null && v !== undefined) out.push(checkDepth(v));
  }
  if (out.length === 0) throw new HttpError(400, 'BadRequest', 'request body holds no document');
  return out;
}

/** Real resources nest a few dozen levels; refusing deeper input keeps recursive code downstream safe. */
const MAX_DEPTH = 100;

function checkDepth(v: unknown): unknown {
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    if (d > MAX_DEPTH) throw new HttpError(400, 'BadRequest', `request body nests deeper than ${MAX_DEPTH} levels`);
    for (const c of Object.values(x)) stack.push([c, d + 1]);
  }
  return v;
}
