/**
 * One request to afsteerd's control socket and its one-line answer (`afsteerd status`, `prefer`),
 * sent only to a socket that is afsteerd's: in a directory only root (or this user) may write,
 * owned by root (or this user) — not one another user put in its place.
 */
import { createConnection } from 'node:net';
import { checkDaemonSocket } from '../util/safe-fs';
import { type ControlRequest, encodeControlLine } from './requests';

/** Sends one request and waits at most timeoutMs for its one-line answer; refuses a socket checkDaemonSocket refuses. */
export function controlRequest(path: string, req: ControlRequest, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let target: string;
    try {
      target = checkDaemonSocket(path);
    } catch (err) {
      reject(new Error(`refusing to talk to ${path}: ${(err as Error).message}`, { cause: err }));
      return;
    }
    const c = createConnection(target);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach afsteerd at ${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }));
    });
    c.on('connect', () => c.write(encodeControlLine(req)));
    // Decoded as a stream: a character split across two chunks stays whole.
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch (err) {
        reject(new Error('malformed answer from afsteerd', { cause: err }));
      }
    });
  });
}
