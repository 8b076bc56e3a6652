import type { Socket } from 'node:net';
import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { announcedHandshakeLength, parseClientHello } from './client-hello.js';

export interface PeekOptions {
  /** Give up when the full ClientHello has not arrived this long after the call. */
  timeoutMs: number;
  /** Refuse a ClientHello (or a non-TLS prefix) larger than this many bytes. */
  maxBytes: number;
  /** Timer source; defaults to the system clock. */
  clock?: Clock;
}

/** Why a peek produced no ClientHello. `plaintext` is a stream whose first bytes are not a TLS record. */
export type PeekFailure = 'plaintext' | 'invalid' | 'too-large' | 'timeout' | 'closed';

/**
 * The outcome of a peek. In both cases `buffered` holds every byte read from the socket, in order; the
 * caller owns them and must replay them (write them upstream first, or `socket.unshift(buffered)`).
 */
export type PeekResult =
  | { ok: true; sni: string | undefined; alpn: string[]; buffered: Buffer }
  | { ok: false; error: PeekFailure; reason: string; buffered: Buffer };

/**
 * Reads from `socket` until a whole ClientHello is buffered, without answering the client, and resolves
 * with what it found. On return the socket is paused and the peek's listeners are gone, so the caller can
 * pipe it; the socket is never destroyed here, even on failure: what to do with a refused client is policy.
 * The peek's own 'error' listener is removed on return, so the caller must have attached one of its own.
 */
export function peekClientHello(socket: Socket, options: PeekOptions): Promise<PeekResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;

    const finish = (result: PeekResult): void => {
      if (done) return;
      done = true;
      timer.cancel();
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      resolve(result);
    };
    const buffered = (): Buffer => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const fail = (error: PeekFailure, reason: string): void => finish({ ok: false, error, reason, buffered: buffered() });

    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      const all = buffered();
      const parsed = parseClientHello(all);
      switch (parsed.kind) {
        case 'client-hello':
          if (parsed.consumed > options.maxBytes) {
            fail('too-large', `ClientHello of ${parsed.consumed} bytes exceeds ${options.maxBytes}`);
            return;
          }
          finish({ ok: true, sni: parsed.hello.sni, alpn: parsed.hello.alpn, buffered: all });
          return;
        case 'not-tls':
          fail('plaintext', parsed.reason);
          return;
        case 'invalid':
          fail('invalid', parsed.reason);
          return;
        case 'need-more': {
          const announced = announcedHandshakeLength(all);
          if (size > options.maxBytes || (announced !== undefined && announced > options.maxBytes)) {
            fail('too-large', `ClientHello exceeds ${options.maxBytes} bytes`);
          }
        }
      }
    };
    const onEnd = (): void => fail('closed', 'client closed before sending a complete ClientHello');
    const onError = (err: Error): void => fail('closed', `client socket error: ${err.message}`);
    const clock = options.clock ?? systemClock;
    const timer = clock.setTimeout(() => fail('timeout', `no complete ClientHello within ${options.timeoutMs} ms`), options.timeoutMs);

    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    socket.resume();
  });
}
