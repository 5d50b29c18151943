/** Starts the daemon on a node: pins, maps, sockets, control socket; runs until SIGTERM/SIGINT. */
import { rmSync, type Stats, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { EchoAllowList, echoCounts } from '../bpf/echo-maps';
import { prepareEchoReflector } from '../bpf/echo-reflector';
import { closeFds } from '../bpf/libbpf';
import { PairSeen } from '../bpf/pair-seen';
import { readStats } from '../bpf/steering';
import { SteeringWriter } from '../bpf/steering-writer';
import { nodeLockPath } from '../defaults';
import type { NodeIdentity } from '../identity/identity-files';
import { loadRevocationFile, readIdentityFile } from '../identity/identity-files';
import type { RevocationList } from '../identity/revocation';
import { addressOf, FAMILIES, familyName } from '../net/family';
import { Rtnl } from '../net/rtnl';
import { preparePins } from '../node/prepare-pins';
import { describeError } from '../util/describe-error';
import { withLock } from '../util/lock';
import { log } from '../util/log';
import { ensurePrivateDir } from '../util/safe-fs';
import { systemClock } from './clock';
import { type CniAddRunner, withCniHandoff } from './control/handoff-server';
import { serveControl } from './control/socket-server';
import type { DaemonConfig } from './daemon-config';
import type { EtcdDiscovery } from './discovery/etcd';
import { interfaceAddresses, resolveAddresses } from './local/control-addresses';
import { readLocalAttachments } from './local/pods';
import { NetworkSet } from './networks/network-set';
import { startOps } from './ops/start-ops';
import type { PairSeenReader } from './probing/pair-traffic';
import { echoPortOf } from './protocol/echo';
import { BatchedUdpTransport } from './transport/batched-udp';
import { UdpTransport } from './transport/udp';

/** How long afsteerd's start waits for the node lock (an ADD in progress holds it). */
const START_LOCK_TIMEOUT_MS = 60_000;

/** After a quarter of a peer timeout, how much longer afsteerd waits before its echo reflector takes over from another build's. */
const ECHO_TAKEOVER_MARGIN_MS = 1000;

/** What a node authenticates with: the cluster key, its identity, or both (auth both). */
export interface Credentials {
  key?: Buffer;
  identity?: NodeIdentity;
}

/** A reader of the revocation list file: the list when the file changed since the last call (re-read on a new mtime or size), else undefined. */
export function revocationFileReader(path: string, identity: NodeIdentity): () => RevocationList | undefined {
  let seen = '';
  return () => {
    let st: Stats;
    try {
      st = statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // none issued yet
      throw err;
    }
    const stamp = `${st.mtimeMs}|${st.size}|${st.ino}`;
    if (stamp === seen) return undefined;
    const list = loadRevocationFile(path, identity.authority);
    seen = stamp;
    log.info('revocation list read', { file: path, revoked: list.revoked.size });
    return list;
  };
}

/** Runs afsteerd until a termination signal; resolves with the exit code. The steering stays in the maps. cniAdd runs handed-over ADDs. */
export async function startDaemon(cfg: DaemonConfig, creds: Credentials, cniAdd?: CniAddRunner): Promise<number> {
  const { key, identity } = creds;
  // Before the daemon's heap grows: V8 then keeps it compact (a smaller young generation, GC sooner, less code).
  if (cfg.optimizeForMemory) setFlagsFromString('--optimize-for-size');
  // The pins file and the plugin's state files are read from here, and pins written: only from a
  // directory no one but root (or this user) can plant files in.
  try {
    ensurePrivateDir(cfg.stateDir);
  } catch (err) {
    throw new Error(`stateDir ${cfg.stateDir} refused: ${(err as Error).message}`, { cause: err });
  }
  const addresses = resolveAddresses(cfg.addresses);
  // A network given by its interface: this node's addresses there, now.
  cfg = {
    ...cfg,
    networks: cfg.networks.map((n) => (n.interface && !n.addresses ? { ...n, addresses: interfaceAddresses(n.interface) } : n)),
  };
  // The plugin pins the object on its first ADD; a daemon started first pins it itself. Under the
  // node lock: pins of an older layout are migrated, and every pod is moved onto this build's
  // programs (an upgrade's data plane; src/node/prepare-pins.ts).
  const fds = await withLock(nodeLockPath(cfg.stateDir), START_LOCK_TIMEOUT_MS, () =>
    preparePins(cfg.pinDir, cfg.stateDir, { swap: true }),
  );
  closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
  if (fds.migrated.length || fds.swap?.replaced || fds.swap?.removedDirs.length)
    log.info('pins ready for this build', {
      migrated: fds.migrated,
      replaced: fds.swap?.replaced ?? 0,
      removedDirs: fds.swap?.removedDirs ?? [],
    });
  let etcd: EtcdDiscovery | undefined;
  const kernelEcho = await attachKernelReflector(cfg.pinDir, echoPortOf(cfg.port), addresses);
  // One negotiator per network (networks/network-set.ts): just the one without `networks`.
  const daemon = new NetworkSet({
    pairSeen: openPairSeen(cfg.pinDir),
    cfg,
    discoverySource: () => etcd,
    key,
    identity,
    ...(cfg.revocations && identity ? { readRevocationsFor: () => revocationFileReader(cfg.revocations!, identity) } : {}),
    addresses,
    writer: SteeringWriter.open(cfg.pinDir),
    // Batched sockets (one sendmmsg per turn, replies taken at each probe tick with kernel
    // timestamps); Node's dgram where multicast discovery must join groups.
    transportFor: (plan) => (plan.cfg.discovery.multicast ? new UdpTransport(plan.cfg.port) : new BatchedUdpTransport(plan.cfg.port)),
    echoTransportFor: (plan) => new UdpTransport(echoPortOf(plan.cfg.port)),
    ...(kernelEcho ? { echoKernel: { list: EchoAllowList.open(cfg.pinDir), counts: () => echoCounts(cfg.pinDir) } } : {}),
    clock: systemClock(),
    pinsDir: cfg.stateDir,
    readAttachments: () =>
      readLocalAttachments(cfg.stateDir, (file, err) =>
        log.warn('unreadable state file', { file, error: String((err as Error).message ?? err) }),
      ),
  });
  await daemon.start();
  // Taking over from another build's reflector: once every live peer has announced itself (they
  // refresh every quarter of a peer timeout) and been put on the allow-list.
  const takeOver = kernelEcho?.takeOver && setTimeout(kernelEcho.takeOver, cfg.timers.peerTimeoutMs / 4 + ECHO_TAKEOVER_MARGIN_MS);
  // etcd discovery, when configured: this node's record under a lease, the others' as announcement targets.
  if (cfg.discovery.etcd) {
    const { EtcdDiscovery } = await import('./discovery/etcd');
    const families = FAMILIES.filter((f) => addressOf(addresses, f)).map(familyName);
    const ec = cfg.discovery.etcd;
    // Least privilege in etcd: this node's own user (its role may write only its own key).
    const login = ec.passwordFile
      ? { username: ec.user ?? cfg.nodeName, password: readIdentityFile(ec.passwordFile, true).replace(/\r?\n$/, '') }
      : undefined;
    const e = new EtcdDiscovery({
      config: ec,
      codec: daemon.primary.trust.recordCodec(),
      ...(login ? { login } : {}),
      onRevocations: (v) => daemon.offerRevocations(v),
      self: { node: cfg.nodeName, addresses, port: cfg.port, families },
    });
    await e.start();
    etcd = e;
  }
  const ops = await startOps(daemon.parts(), () => readStats(cfg.pinDir), process.env.AFSTEER_BUILD_VERSION ?? 'dev');
  const server = await serveControl(
    cfg.controlSocket,
    withCniHandoff(cniAdd, (req) => daemon.control(req)),
    daemon.counters.refused,
  );
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log.info('afsteerd stopping; steering left in place', { signal: sig });
      if (takeOver) clearTimeout(takeOver);
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

/**
 * The kernel echo reflector for the links holding the control addresses: loaded (its allow-list
 * pinned, for the daemon to fill) and attached — at once, or, where another build's reflector runs
 * on a link (an upgrade from one that answered anyone), later, through `takeOver`: this build's
 * answers only the allow-list, so it takes over once the peers have authenticated, never refusing
 * a known peer's probe meanwhile. Undefined (logged) when echo probes are answered in userspace.
 */
async function attachKernelReflector(
  pinDir: string,
  echoPort: number,
  addresses: { ipv4?: string; ipv6?: string },
): Promise<{ takeOver?: () => void } | undefined> {
  const rtnl = Rtnl.host();
  try {
    const links = new Set<number>();
    for (const a of [addresses.ipv4, addresses.ipv6]) {
      const i = a ? await rtnl.linkOfAddress(a) : undefined;
      if (i !== undefined) links.add(i);
    }
    if (links.size === 0) {
      log.warn('no link holds the control addresses: echo probes answered in userspace', { addresses });
      return undefined;
    }
    const reflector = prepareEchoReflector(pinDir, echoPort);
    const others = reflector.othersOn([...links]);
    if (others.length) {
      log.info("another build's echo reflector answers on these links until the peers are on the allow-list", { links: others, echoPort });
      return {
        takeOver: () => {
          try {
            reflector.attach([...links]);
            log.info('echo reflector attached', { links: [...links], echoPort });
          } catch (err) {
            log.warn('kernel echo reflector not attached: the previous one keeps answering', { error: describeError(err) });
          }
        },
      };
    }
    reflector.attach([...links]);
    log.info('echo reflector attached', { links: [...links], echoPort });
    return {};
  } catch (err) {
    log.warn('kernel echo reflector not attached: echo probes answered in userspace', { error: describeError(err) });
    return undefined;
  } finally {
    rtnl.close();
  }
}
