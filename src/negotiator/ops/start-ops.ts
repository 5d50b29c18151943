/**
 * The operator side of a daemon, started beside it: the observer (history, state-change logs,
 * drop summaries), the Prometheus metrics, and the web server on the `metrics` address. A
 * listener that cannot bind is logged and the daemon runs on without it: metrics must never
 * take the data path's negotiator down.
 */
import type { Server } from 'node:http';
import { log } from '../../util/log';
import { parseListen } from '../daemon-config';
import type { DaemonParts } from './daemon-view';
import type { DaemonMetrics, StatsReader } from './metrics';
import { Observer } from './observer';
import { takeSnapshot } from './snapshot';
import { buildSummary } from './summary';

/** The running operator side. */
export interface Ops {
  observer: Observer;
  metrics?: DaemonMetrics;
  server?: Server;
  /** Where it listens ("host:port"), when it does. */
  address?: string;
  stop(): Promise<void>;
}

/** Starts the observer and, unless `metrics` is "", the metrics and the page. */
export async function startOps(parts: DaemonParts, readStats: StatsReader | undefined, version: string): Promise<Ops> {
  const observer = new Observer(parts);
  observer.start();
  const ops: Ops = {
    observer,
    stop: async () => {
      observer.stop();
      const s = ops.server;
      if (s)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          s.close(() => {
            clearTimeout(timer);
            resolve();
          });
          s.closeAllConnections();
        });
    },
  };
  const at = parts.cfg.metrics ? parseListen(parts.cfg.metrics) : undefined;
  if (!at) return ops;
  const { createMetrics } = await import('./metrics');
  const { serveWeb } = await import('./http-server');
  ops.metrics = await createMetrics(parts, readStats, version);
  try {
    ops.server = await serveWeb(
      at.host,
      at.port,
      {
        metrics: ops.metrics,
        history: observer.history,
        node: parts.cfg.nodeName,
        activePeers: () => new Set([...parts.peers.values()].filter((p) => parts.pairs.peerHasPairs(p.node)).map((p) => p.node)),
        refused: parts.counters.refused,
        summary: (q) => buildSummary(parts, takeSnapshot(parts), observer.history, Date.now(), q),
      },
      { maxConnections: parts.cfg.metricsMaxConnections },
    );
    const a = ops.server.address();
    ops.address =
      a && typeof a === 'object' ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : parts.cfg.metrics;
    log.info('metrics and page listening', { address: ops.address });
  } catch (err) {
    log.error('metrics and page not served', {
      error: (err as Error).message,
      cause: String(((err as Error).cause as Error)?.message ?? ''),
    });
  }
  return ops;
}
