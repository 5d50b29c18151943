/**
 * afsteerd's side of the control socket: a unix stream socket (mode 0600) speaking one JSON
 * object per line, each request answered by one line, in order. The messages (status request, the
 * plugin's endpoint notification, the plugin's ADD hand-off, replies) are src/control/requests.ts.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { decodeControlObject, encodeControlLine, MAX_CONTROL_REQUEST } from '../../control/requests';
import { describeError } from '../../util/describe-error';

/** One connection as a handler sees it: state kept between the lines of a conversation (the plugin's ADD hand-off), and whether the peer is gone. */
export interface ControlConnection {
  state?: unknown;
  readonly closed: boolean;
}
/** A request handler: request object → response object (or its promise; a connection's lines are answered in order). */
export type ControlHandler = (
  req: Record<string, unknown>,
  conn: ControlConnection,
) => Record<string, unknown> | Promise<Record<string, unknown>>;

/** A connection idle this long is closed; not while a request is being answered (a handed-over ADD may wait for the node lock). */
const IDLE_TIMEOUT_MS = 5000;

/** Listens on path (replacing a stale socket, never another kind of file). */
export async function serveControl(path: string, handle: ControlHandler): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    if (lstatSync(path).isSocket()) rmSync(path);
    else throw new Error(`controlSocket ${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const server = createServer((c) => {
    let buf = '';
    let queue = Promise.resolve();
    const conn = { state: undefined as unknown, closed: false };
    c.setTimeout(IDLE_TIMEOUT_MS, () => c.destroy());
    c.on('error', () => {});
    c.on('close', () => {
      conn.closed = true;
    });
    const answer = async (line: string): Promise<void> => {
      let res: Record<string, unknown>;
      c.setTimeout(0);
      try {
        res = await handle(decodeControlObject(line), conn);
      } catch (err) {
        res = { ok: false, error: describeError(err) };
      }
      if (!conn.closed) {
        c.setTimeout(IDLE_TIMEOUT_MS);
        c.write(encodeControlLine(res));
      }
    };
    c.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_CONTROL_REQUEST) {
        c.end(encodeControlLine({ ok: false, error: 'request too large' }));
        c.removeAllListeners('data');
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        queue = queue.then(() => answer(line));
      }
    });
  });
  // Created 0600 from the start (umask), not only after a chmod: no window where others can connect.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`listening on ${path} timed out`)), 5000);
      server.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      server.listen(path, () => {
        clearTimeout(timer);
        server.removeAllListeners('error');
        server.on('error', () => {});
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return server;
}
