/**
 * The metrics address: GET /metrics (Prometheus text), / (the live page: a summary of every peer,
 * the worst first, and charts of the peers opened), /summary.json (the page's summary; ?q=name,
 * ?state=, ?limit=N rows), /history.json (the charts' data; ?since=ms for newer samples only,
 * ?peers=a,b or ?limit=N peers), /healthz.
 * Plain node:http; request and header timeouts so a slow client cannot hold it.
 */
import { createServer, type Server } from 'node:http';
import type { History } from './history';
import type { DaemonMetrics } from './metrics';
import { PAGE_HTML } from './page';
import { MAX_SUMMARY_ROWS, type PeerState, type Summary, type SummaryQuery } from './summary';

const PEER_STATES: readonly PeerState[] = ['up', 'degraded', 'blackhole', 'probing', 'silent'];

/** What the server serves from. */
export interface WebSources {
  metrics: DaemonMetrics;
  history: History;
  node: string;
  /** Peers to list first on the page (those with pairs). */
  activePeers: () => Set<string>;
  /** The page's summary of every peer (summary.ts), filtered and bounded. */
  summary?: (q: SummaryQuery) => Summary;
}

/** Most peers /history.json returns by default (the page's charts). */
export const DEFAULT_PEER_LIMIT = 50;

/** Listens on host:port; rejects when the address cannot be bound (within timeoutMs). */
export async function serveWeb(host: string, port: number, src: WebSources, timeoutMs = 5000): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    switch (url.pathname) {
      case '/metrics':
        src.metrics.text().then(
          (t) => send(200, src.metrics.contentType, t),
          (err: Error) => send(500, 'text/plain', `metrics failed: ${err.message}\n`),
        );
        return;
      case '/':
        send(200, 'text/html; charset=utf-8', PAGE_HTML.replaceAll('__NODE__', escapeHtml(src.node)));
        return;
      case '/summary.json': {
        if (!src.summary) {
          send(404, 'text/plain', 'not found\n');
          return;
        }
        const state = url.searchParams.get('state') ?? '';
        const q: SummaryQuery = {
          limit: Math.max(1, Math.min(MAX_SUMMARY_ROWS, Number(url.searchParams.get('limit') ?? DEFAULT_PEER_LIMIT) || DEFAULT_PEER_LIMIT)),
          ...(url.searchParams.get('q') ? { q: url.searchParams.get('q')!.slice(0, 253) } : {}),
          ...(PEER_STATES.includes(state as PeerState) ? { state: state as PeerState } : {}),
        };
        send(200, 'application/json', JSON.stringify(src.summary(q)));
        return;
      }
      case '/history.json': {
        const since = Number(url.searchParams.get('since') ?? '-Infinity');
        const limit = Math.max(1, Math.min(10_000, Number(url.searchParams.get('limit') ?? DEFAULT_PEER_LIMIT) || DEFAULT_PEER_LIMIT));
        const active = src.activePeers();
        // ?peers=a,b: those peers' charts (the page asks for the ones opened); else the first `limit`, those with pairs first.
        const asked = url.searchParams.get('peers')?.split(',').filter(Boolean).slice(0, DEFAULT_PEER_LIMIT);
        const peers = asked
          ? src.history.peers().filter((p) => asked.includes(p))
          : src.history
              .peers()
              .sort((a, b) => Number(active.has(b)) - Number(active.has(a)) || (a < b ? -1 : a > b ? 1 : 0))
              .slice(0, limit);
        const now = src.history.latest();
        send(
          200,
          'application/json',
          JSON.stringify({
            node: src.node,
            now,
            peers: peers.map((p) => ({ ...src.history.of(p, Number.isNaN(since) ? -Infinity : since), active: active.has(p) })),
          }),
        );
        return;
      }
      case '/healthz':
        send(200, 'text/plain', 'ok\n');
        return;
      default:
        send(404, 'text/plain', 'not found\n');
    }
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`listening on ${host}:${port} timed out`)), timeoutMs);
    server.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    });
    server.listen(port, host, () => {
      clearTimeout(timer);
      server.removeAllListeners('error');
      server.on('error', () => {});
      resolve();
    });
  });
  return server;
}

/** Text safe inside HTML. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
