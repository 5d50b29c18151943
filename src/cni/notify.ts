/**
 * Tells afsteerd about an ADD or DEL, best effort: one JSON line on its control socket, never
 * waiting more than NOTIFY_TIMEOUT_MS, never failing the CNI operation (pod networking works with
 * afsteerd down; afsteerd rescans the state files periodically, so a missed notification heals).
 * Only to a socket that is afsteerd's (safe-fs checkDaemonSocket); another is not told anything.
 */
import { createConnection } from 'node:net';
import { encodeControlLine, endpointNotification } from '../control/requests';
import { log } from '../util/log';
import { checkDaemonSocket } from '../util/safe-fs';

/** The longest the plugin waits for the daemon's socket. */
export const NOTIFY_TIMEOUT_MS = 20;

/** Sends the endpoint notification ({op:"endpoint", event, containerId, ifname}) to socketPath; resolves when sent, failed or timed out. */
export function notifyDaemon(socketPath: string, event: 'add' | 'del', containerId: string, ifname: string): Promise<void> {
  let target: string;
  try {
    target = checkDaemonSocket(socketPath);
  } catch (err) {
    log.debug('afsteerd not notified', { outcome: 'refused', event, socket: socketPath, error: (err as Error).message });
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = createConnection(target);
    const done = (outcome: string, extra: Record<string, unknown> = {}) => {
      clearTimeout(timer);
      c.destroy();
      log.debug('afsteerd notified', { outcome, event, socket: socketPath, ms: Math.round((performance.now() - t0) * 10) / 10, ...extra });
      resolve();
    };
    const timer = setTimeout(() => done('timeout'), NOTIFY_TIMEOUT_MS);
    c.on('error', (err: NodeJS.ErrnoException) => done('unreachable', { error: err.code ?? err.message }));
    c.on('connect', () => c.end(encodeControlLine(endpointNotification(event, containerId, ifname)), () => done('sent')));
  });
}
