/** Starts the daemon on a node: pins, maps, sockets, control socket; runs until SIGTERM/SIGINT. */
import { rmSync } from 'node:fs';
import { closeFds, ensurePrograms } from '../bpf/programs';
import { SteeringMaps } from '../bpf/steering-maps';
import { log } from '../util/log';
import { resolveAddresses } from './addresses';
import type { DaemonConfig } from './config';
import { serveControl } from './control';
import { Daemon } from './daemon';

/** Runs afsteerd until a termination signal; resolves with the exit code. The steering stays in the maps. */
export async function startDaemon(cfg: DaemonConfig, key: Buffer): Promise<number> {
  const addresses = resolveAddresses(cfg.addresses);
  // The plugin pins the object on its first ADD; a daemon started first pins it itself.
  const fds = ensurePrograms(cfg.pinDir);
  closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
  const maps = new SteeringMaps(cfg.pinDir);
  const daemon = new Daemon(cfg, key, addresses, maps);
  await daemon.start();
  const server = await serveControl(cfg.controlSocket, (req) => daemon.control(req));
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log.info('afsteerd stopping; steering left in place', { signal: sig });
      server.close();
      rmSync(cfg.controlSocket, { force: true });
      // etcd discovery revokes its lease (bounded wait), so the others drop this node at once.
      void daemon.stop().finally(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
