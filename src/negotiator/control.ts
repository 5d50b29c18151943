/**
 * The control socket: a unix stream socket (mode 0600) speaking one JSON object per line.
 * Requests: {"op":"status"}, {"op":"endpoint","event":"add"|"del","containerId":…,"ifname":…}
 * (the plugin's notification; the daemon re-reads the state files, it does not trust the
 * message's contents). Each request gets one JSON line back.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';

/** A request handler: request object → response object. */
export type ControlHandler = (req: Record<string, unknown>) => Record<string, unknown>;

const MAX_REQUEST = 64 * 1024;

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
    c.setTimeout(5000, () => c.destroy());
    c.on('error', () => {});
    c.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_REQUEST) {
        c.end(JSON.stringify({ ok: false, error: 'request too large' }) + '\n');
        c.removeAllListeners('data');
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let res: Record<string, unknown>;
        try {
          const req = JSON.parse(line) as unknown;
          if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new Error('expected a JSON object');
          res = handle(req as Record<string, unknown>);
        } catch (err) {
          res = { ok: false, error: (err as Error).message };
        }
        c.write(JSON.stringify(res) + '\n');
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

/** Sends one request and waits at most timeoutMs for its one-line answer. */
export function controlRequest(path: string, req: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach afsteerd at ${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err }));
    });
    c.on('connect', () => c.write(JSON.stringify(req) + '\n'));
    c.on('data', (d) => {
      buf += d.toString('utf8');
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
