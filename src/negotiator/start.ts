/** Starts the daemon on a node: pins, maps, sockets, control socket; runs until SIGTERM/SIGINT. */
import { rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { attachEchoReflector } from '../bpf/echo-reflector';
import { PairSeen } from '../bpf/pair-seen';
import { closeFds, ensurePrograms } from '../bpf/programs';
import { readStats } from '../bpf/steering';
import { SteeringWriter } from '../bpf/steering-writer';
import { addressOf, FAMILIES, familyName } from '../net/family';
import { Rtnl } from '../net/rtnl';
import { describeError } from '../util/describe-error';
import { log } from '../util/log';
import { systemClock } from './clock';
import { type CniAddRunner, withCniHandoff } from './control/handoff-server';
import { serveControl } from './control/socket-server';
import { Daemon } from './daemon';
import type { DaemonConfig } from './daemon-config';
import type { EtcdDiscovery } from './discovery/etcd';
import { resolveAddresses } from './local/control-addresses';
import { readLocalEndpoints } from './local/pods';
import { startOps } from './ops/start-ops';
import type { PairSeenReader } from './probing/pair-traffic';
import { echoPortOf } from './protocol/echo';
import { BatchedUdpTransport } from './transport/batched-udp';
import { UdpTransport } from './transport/udp';

/** Runs afsteerd until a termination signal; resolves with the exit code. The steering stays in the maps. cniAdd runs handed-over ADDs. */
export async function startDaemon(cfg: DaemonConfig, key: Buffer, cniAdd?: CniAddRunner): Promise<number> {
  // Before the daemon's heap grows: V8 then keeps it compact (a smaller young generation, GC sooner, less code).
  if (cfg.optimizeForMemory) setFlagsFromString('--optimize-for-size');
  const addresses = resolveAddresses(cfg.addresses);
  // The plugin pins the object on its first ADD; a daemon started first pins it itself.
  const fds = ensurePrograms(cfg.pinDir);
  closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
  let etcd: EtcdDiscovery | undefined;
  const daemon = new Daemon({
    pairSeen: openPairSeen(cfg.pinDir),
    cfg,
    discoverySource: () => etcd,
    key,
    addresses,
    writer: SteeringWriter.open(cfg.pinDir),
    // Batched sockets (one sendmmsg per turn, replies taken at each probe tick with kernel
    // timestamps); Node's dgram where multicast discovery must join groups.
    transport: cfg.discovery.multicast ? new UdpTransport(cfg.port) : new BatchedUdpTransport(cfg.port),
    echoTransport: new UdpTransport(echoPortOf(cfg.port)),
    clock: systemClock(),
    pinsDir: cfg.stateDir,
    readLocal: () =>
      readLocalEndpoints(cfg.stateDir, (file, err) =>
        log.warn('unreadable state file', { file, error: String((err as Error).message ?? err) }),
      ),
  });
  await attachKernelReflector(cfg.pinDir, echoPortOf(cfg.port), addresses);
  await daemon.start();
  // etcd discovery, when configured: this node's record under a lease, the others' as announcement targets.
  if (cfg.discovery.etcd) {
    const { EtcdDiscovery } = await import('./discovery/etcd');
    const families = FAMILIES.filter((f) => addressOf(addresses, f)).map(familyName);
    const e = new EtcdDiscovery({ config: cfg.discovery.etcd, key, self: { node: cfg.nodeName, addresses, port: cfg.port, families } });
    await e.start();
    etcd = e;
  }
  const ops = await startOps(daemon.parts(), () => readStats(cfg.pinDir), process.env.AFSTEER_BUILD_VERSION ?? 'dev');
  const server = await serveControl(
    cfg.controlSocket,
    withCniHandoff(cniAdd, (req) => daemon.control(req)),
  );
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log.info('afsteerd stopping; steering left in place', { signal: sig });
      server.close();
      rmSync(cfg.controlSocket, { force: true });
      // etcd discovery revokes its lease (bounded wait), so the others drop this node at once.
      daemon.stop();
      void Promise.allSettled([ops.stop(), etcd?.stop() ?? Promise.resolve()]).then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** The data plane's pair-seen map, mapped (demand-style probing); undefined, logged, when the pinned object predates it. */
function openPairSeen(pinDir: string): PairSeenReader | undefined {
  try {
    const seen = PairSeen.open(pinDir);
    return { at: (pair, received, family) => seen.at(pair, received, family), nowMs: () => PairSeen.nowMs() };
  } catch (err) {
    log.warn('pair-seen map not available: peers with pairs are probed fast (no demand-style probing)', { error: describeError(err) });
    return undefined;
  }
}

/** Puts the kernel echo reflector on the links holding the control addresses; on failure the userspace one answers (logged). */
async function attachKernelReflector(pinDir: string, echoPort: number, addresses: { ipv4?: string; ipv6?: string }): Promise<void> {
  const rtnl = Rtnl.host();
  try {
    const links = new Set<number>();
    for (const a of [addresses.ipv4, addresses.ipv6]) {
      const i = a ? await rtnl.linkOfAddress(a) : undefined;
      if (i !== undefined) links.add(i);
    }
    if (links.size === 0) {
      log.warn('no link holds the control addresses: echo probes answered in userspace', { addresses });
      return;
    }
    attachEchoReflector(pinDir, echoPort, [...links]);
    log.info('echo reflector attached', { links: [...links], echoPort });
  } catch (err) {
    log.warn('kernel echo reflector not attached: echo probes answered in userspace', { error: describeError(err) });
  } finally {
    rtnl.close();
  }
}
