/**
 * The metrics address: GET /metrics (Prometheus text), / (the live page: a summary of every peer,
 * the worst first, and charts of the peers opened), /summary.json (the page's summary; ?q=name,
 * ?state=, ?limit=N rows), /history.json (the charts' data; ?since=ms for newer samples only,
 * ?peers=a,b or ?limit=N peers), /healthz.
 * Plain node:http, never killed by its input: a request-target it cannot parse is a 400, a
 * foreign Host on a loopback listener a 403 (http-guard.ts); connections are capped
 * (connection-cap.ts), and header, request and idle timeouts enforced to the second. Each refusal
 * is counted (afsteer_daemon_refusals_total).
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Tally } from '../counters';
import { DEFAULT_METRICS_MAX_CONNECTIONS, isLoopback } from '../daemon-config';
import { capConnections } from './connection-cap';
import type { History } from './history';
import { isLoopbackHost, parseRequestTarget, type RequestTarget } from './http-guard';
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
  /** Where refusals are counted, by reason (http-bad-target, http-host, http-method, http-malformed, http-timeout, http-too-large, http-connection-cap). */
  refused?: Tally;
  /** The page's summary of every peer (summary.ts), filtered and bounded. */
  summary?: (q: SummaryQuery) => Summary;
}

/** Limits of the listener. */
export interface WebLimits {
  /** Most open connections; beyond, the longest idle is closed (default DEFAULT_METRICS_MAX_CONNECTIONS). */
  maxConnections?: number;
}

/** A request's headers must be complete this long after its connection opened (or the last request ended). */
export const HEADERS_TIMEOUT_MS = 5000;
/** A whole request must be received this long after it began. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A connection without a request in flight is closed after this long (Node adds its 1 s keep-alive grace to the 4 s it advertises). */
export const IDLE_TIMEOUT_MS = 5000;
/** How often Node checks the header and request timeouts (its default, 30 s, let a silent connection live 35 s). */
const TIMEOUT_CHECK_MS = 1000;

/** Most peers /history.json returns by default (the page's charts). */
export const DEFAULT_PEER_LIMIT = 50;

/** ?limit=N as a count in [1, max]; absent or not a number: DEFAULT_PEER_LIMIT. */
function limitParam(url: RequestTarget, max: number): number {
  return Math.max(1, Math.min(max, Number(url.searchParams.get('limit') ?? DEFAULT_PEER_LIMIT) || DEFAULT_PEER_LIMIT));
}

/** Listens on host:port; rejects when the address cannot be bound (within timeoutMs). */
export async function serveWeb(host: string, port: number, src: WebSources, limits: WebLimits = {}, timeoutMs = 5000): Promise<Server> {
  const refuse = (reason: string) => {
    if (src.refused) src.refused[reason] = (src.refused[reason] ?? 0) + 1;
  };
  const loopback = isLoopback(host);
  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      keepAliveTimeout: IDLE_TIMEOUT_MS - 1000,
    },
    (req, res) => {
      const send = (code: number, type: string, body: string) => {
        res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      try {
        serve(req.method, req.url ?? '', req.headers.host, send, (code, allow) => res.writeHead(code, allow ? { allow } : {}).end());
      } catch (err) {
        // A bug here answers 500 and the daemon runs on: a request never takes it down.
        if (!res.headersSent) send(500, 'text/plain', `internal error: ${(err as Error).message}\n`);
        else res.destroy();
      }
    },
  );
  const serve = (
    method: string | undefined,
    rawTarget: string,
    hostHeader: string | undefined,
    send: (code: number, type: string, body: string) => void,
    bare: (code: number, allow?: string) => void,
  ): void => {
    if (method !== 'GET' && method !== 'HEAD') {
      refuse('http-method');
      bare(405, 'GET, HEAD');
      return;
    }
    const url = parseRequestTarget(rawTarget);
    if (!url) {
      refuse('http-bad-target');
      send(400, 'text/plain', 'bad request-target\n');
      return;
    }
    if (loopback && ((hostHeader !== undefined && !isLoopbackHost(hostHeader)) || (url.host !== undefined && !isLoopbackHost(url.host)))) {
      refuse('http-host');
      send(403, 'text/plain', 'Host is not a loopback name or address (see docs: DNS rebinding)\n');
      return;
    }
    switch (url.pathname) {
      case '/metrics':
        src.metrics
          .text()
          .then(
            (t) => send(200, src.metrics.contentType, t),
            (err: Error) => send(500, 'text/plain', `metrics failed: ${err.message}\n`),
          )
          .catch(() => {});
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
          limit: limitParam(url, MAX_SUMMARY_ROWS),
          ...(url.searchParams.get('q') ? { q: url.searchParams.get('q')!.slice(0, 253) } : {}),
          ...(PEER_STATES.includes(state as PeerState) ? { state: state as PeerState } : {}),
        };
        send(200, 'application/json', JSON.stringify(src.summary(q)));
        return;
      }
      case '/history.json': {
        const since = Number(url.searchParams.get('since') ?? '-Infinity');
        const limit = limitParam(url, 10_000);
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
  };
  // Node's own refusals (a request it cannot parse, headers too large, a timeout), answered as it would, and counted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [code, text, reason] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'http-timeout']
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'http-too-large']
          : [400, 'Bad Request', 'http-malformed'];
    refuse(reason);
    socket.end(`HTTP/1.1 ${code} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroySoon();
  });
  capConnections(server, limits.maxConnections ?? DEFAULT_METRICS_MAX_CONNECTIONS, () => refuse('http-connection-cap'));
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
