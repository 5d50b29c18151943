/**
 * afsteerd's side of the control socket: a unix stream socket (mode 0600, in a directory only
 * root may write) speaking one JSON object per line, each request answered by one line, in order.
 * One request per connection is answered at a time, and none while its answer is not drained:
 * the socket is not read meanwhile, so a client that pipelines requests and never reads the
 * answers holds one answer and one read's worth of lines, not all of them. The messages (status
 * request, the plugin's endpoint notification, the plugin's ADD hand-off, replies) are
 * src/control/requests.ts.
 */
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { decodeControlObject, encodeControlLine, MAX_CONTROL_REQUEST } from '../../control/requests';
import { describeError } from '../../util/describe-error';
import { ensurePrivateDir } from '../../util/safe-fs';
import type { Tally } from '../counters';

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

/**
 * Listens on path (replacing a stale socket, never another kind of file); its directory is made
 * or checked to be root's (ensurePrivateDir). refused: where refusals are counted (control-too-large).
 */
export async function serveControl(path: string, handle: ControlHandler, refused?: Tally): Promise<Server> {
  ensurePrivateDir(dirname(path), 0o755);
  try {
    if (lstatSync(path).isSocket()) rmSync(path);
    else throw new Error(`controlSocket ${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const server = createServer((c) => {
    let buf = '';
    let answering = false;
    const conn = { state: undefined as unknown, closed: false };
    c.setTimeout(IDLE_TIMEOUT_MS, () => c.destroy());
    c.on('error', () => {});
    c.on('close', () => {
      conn.closed = true;
    });
    const tooLarge = () => {
      if (refused) refused['control-too-large'] = (refused['control-too-large'] ?? 0) + 1;
      c.removeAllListeners('data');
      buf = '';
      c.end(encodeControlLine({ ok: false, error: 'request too large' }));
    };
    // Answers the next complete line, if any and none is being answered; reads on only when no line is left.
    const next = (): void => {
      if (answering || conn.closed) return;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        c.resume();
        return;
      }
      if (nl > MAX_CONTROL_REQUEST) {
        tooLarge();
        return;
      }
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      answering = true;
      c.pause();
      void answer(line);
    };
    const answer = async (line: string): Promise<void> => {
      let res: Record<string, unknown>;
      c.setTimeout(0);
      try {
        res = await handle(decodeControlObject(line), conn);
      } catch (err) {
        res = { ok: false, error: describeError(err) };
      }
      answering = false;
      if (conn.closed) return;
      c.setTimeout(IDLE_TIMEOUT_MS);
      // The next request only once this answer has left the process (or at least is below the high-water mark).
      if (c.write(encodeControlLine(res))) next();
      else c.once('drain', next);
    };
    // Decoded as a stream: a character split across two reads stays whole.
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.length - (buf.lastIndexOf('\n') + 1) > MAX_CONTROL_REQUEST) tooLarge();
      else next();
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
