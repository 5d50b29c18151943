/**
 * A load generator of simulated afsteerd peers speaking the real protocol (authenticated frames
 * with the cluster key, a boot epoch and a counter per peer; echo probes): each peer of its range
 * binds its own IPv4 and IPv6 address on port 6180, announces 10 pods to the daemon over both
 * families (at once, then every announceMs, as an afsteerd does when nothing changes), echo-probes
 * the daemon (every probeActiveMs per family for peers with an active pair, probeIdleMs otherwise;
 * the daemon's kernel reflector answers), and — for every activeEvery-th peer — holds an active
 * pair between its first pod and one of the daemon's pods: it negotiates the pair (active, decap
 * confirmed) once the daemon has spoken to it and every negotiateMs after, follows the daemon's
 * preferred family (the daemon's pods lead: their CNF ids sort first), and answers at once when it
 * changes. The daemon's echo probes are reflected by the kernel reflector the benchmark attaches
 * in the peers' namespace (or, with userReflector, by this process on port 6181). Churn (optional):
 * peers restart (a new epoch, same name, announced and negotiated at once) and pods are replaced
 * (a new generation announced at once) at the rates asked.
 * Run inside the peers' namespace: `loadgen.ts CONFIG.json`; prints one JSON line of counters each
 * second on stdout; exits on SIGTERM or after lifetimeS.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { announcementPayloads } from '../../src/negotiator/protocol/announce';
import { decodeEcho, encodeEcho, isEcho } from '../../src/negotiator/protocol/echo';
import { decodeFrame, encodeFrame, payloadRoom } from '../../src/negotiator/protocol/frame';
import { simAddressOf, simIsActive, simNameOf, simPairIndex, simPodAddressOf } from './scale-addresses';

/** What one load generator process simulates. */
export interface LoadgenConfig {
  keyFile: string;
  /** The simulated peers of this process: indices first..last (1-based, inclusive). */
  first: number;
  last: number;
  /** Every activeEvery-th peer holds an active pair with the daemon's node (0: none). */
  activeEvery: number;
  daemon: { node: string; ipv4: string; ipv6: string; port: number };
  /** The daemon's pods the active peers pair with (round robin). */
  localPods: string[];
  announceMs: number;
  probeActiveMs: number;
  probeIdleMs: number;
  negotiateMs: number;
  /** Reflect the daemon's echo probes in this process (the benchmark otherwise attaches the kernel reflector). */
  userReflector: boolean;
  /** This process's share of the churn: peer restarts per minute, pod replacements per second. */
  churn?: { restartsPerMin: number; podChangesPerSec: number };
  lifetimeS: number;
}

/** The simulated peers' port (announced; the daemon listens on its port and port + 1, its echo port). */
export const SIM_PORT = 6180;
const SIM_ECHO_PORT = SIM_PORT + 1;
const PODS_PER_PEER = 10;

const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadgenConfig;
const key = readFileSync(cfg.keyFile);
const DAEMON_ECHO_PORT = cfg.daemon.port + 1;
const stats = {
  peers: 0,
  txPackets: 0,
  txBytes: 0,
  rxPackets: 0,
  rxBytes: 0,
  rxBad: 0,
  probesSent: 0,
  probeReplies: 0,
  probesReflected: 0,
  echoesReflected: 0,
  negotiateTx: 0,
  negotiateRx: 0,
  restarts: 0,
  podChanges: 0,
};

interface Sim {
  i: number;
  name: string;
  epoch: bigint;
  seq: bigint;
  socks: { 4: Socket; 6: Socket };
  nonce: number;
  nextId: number;
  gen: number;
  /** Pod slots (address last byte) in announcement order; slot 2 is the first pod. */
  slots: number[];
  nextSlot: number;
  /** The active pair: the daemon's pod, the preference it last said, whether the daemon has spoken to this peer. */
  pair?: { local: string; preferred: 'IPv4' | 'IPv6' | null; heard: boolean };
}

const podCnf = (s: Sim, slot: number) => `${s.name}/pod-${slot}`;
let lastEpoch = 0n;
/** A boot epoch later than any this process gave out (a restarted peer's must be newer). */
const freshEpoch = () => (lastEpoch = BigInt(Math.max(Date.now(), Number(lastEpoch) + 1)));

function send(
  s: Sim,
  fam: 4 | 6,
  type: 'announce' | 'negotiate' | 'probeReply',
  payload: Buffer,
  to: string,
  port = cfg.daemon.port,
): void {
  s.seq += 1n;
  const b = encodeFrame(key, { type, epoch: s.epoch, seq: s.seq, node: s.name, payload });
  stats.txPackets++;
  stats.txBytes += b.length;
  s.socks[fam].send(b, port, to);
}

async function bind(type: 'udp4' | 'udp6', addr: string, port: number): Promise<Socket> {
  const sock = createSocket({ type, ...(type === 'udp6' ? { ipv6Only: true } : {}) });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`bind ${addr} timed out`)), 5000);
    sock.once('error', reject);
    sock.bind(port, addr, () => {
      clearTimeout(t);
      sock.removeAllListeners('error');
      sock.on('error', () => {});
      resolve();
    });
  });
  return sock;
}

function announce(s: Sim): void {
  const a = simAddressOf(s.i);
  const pods = s.slots.map((h) => ({ cnf: podCnf(s, h), ...simPodAddressOf(s.i, h) }));
  const base = {
    addresses: a,
    port: SIM_PORT,
    supported_families: ['IPv4', 'IPv6'] as ('IPv4' | 'IPv6')[],
    capabilities: ['probe-v1', 'negotiate-v1', 'echo-v1'],
  };
  for (const p of announcementPayloads(base, pods, s.gen, payloadRoom(s.name))) {
    send(s, 4, 'announce', p, cfg.daemon.ipv4);
    send(s, 6, 'announce', p, cfg.daemon.ipv6);
  }
}

function negotiate(s: Sim): void {
  if (!s.pair?.heard) return;
  const m = {
    to: cfg.daemon.node,
    pairs: [
      {
        source_CNF_ID: podCnf(s, 2),
        destination_CNF_ID: s.pair.local,
        supported_families: ['IPv4', 'IPv6'],
        performance_metrics: {},
        preferred_family: s.pair.preferred,
        policy: { criterion: 'lowest-latency' },
        decap: true,
        round: 0,
        active: true,
      },
    ],
  };
  const payload = Buffer.from(JSON.stringify(m));
  // Over both families, as an afsteerd sends to a peer (each copy with its own counter).
  send(s, 4, 'negotiate', payload, cfg.daemon.ipv4);
  send(s, 6, 'negotiate', payload, cfg.daemon.ipv6);
  stats.negotiateTx += 2;
}

function probe(s: Sim): void {
  for (const fam of [4, 6] as const) {
    const b = encodeEcho({
      family: fam,
      active: s.pair !== undefined,
      id: s.nextId++,
      t1: BigInt(Math.round(performance.now() * 1000)),
      nonce: s.nonce,
    });
    stats.txPackets++;
    stats.txBytes += b.length;
    stats.probesSent++;
    s.socks[fam].send(b, DAEMON_ECHO_PORT, fam === 4 ? cfg.daemon.ipv4 : cfg.daemon.ipv6);
  }
}

function onMessage(s: Sim, fam: 4 | 6, m: Buffer, rport: number, raddr: string): void {
  stats.rxPackets++;
  stats.rxBytes += m.length;
  if (isEcho(m)) {
    if (decodeEcho(m)?.nonce === s.nonce) stats.probeReplies++;
    else stats.rxBad++;
    return;
  }
  const f = decodeFrame(key, m);
  if (typeof f === 'string') {
    stats.rxBad++;
    return;
  }
  if (f.type === 'probe') {
    stats.probesReflected++;
    send(s, fam, 'probeReply', f.payload, raddr, rport);
    return;
  }
  if (f.type !== 'negotiate' || !s.pair) {
    // The daemon's announcements: it knows this peer now (a pair can be negotiated).
    if (s.pair && !s.pair.heard) {
      s.pair.heard = true;
      negotiate(s);
    }
    return;
  }
  stats.negotiateRx++;
  let msg: { pairs?: { source_CNF_ID: string; destination_CNF_ID: string; preferred_family: 'IPv4' | 'IPv6' | null }[] };
  try {
    msg = JSON.parse(f.payload.toString('utf8'));
  } catch {
    stats.rxBad++;
    return;
  }
  const e = msg.pairs?.find((p) => p.destination_CNF_ID === podCnf(s, 2) && p.source_CNF_ID === s.pair!.local);
  const first = !s.pair.heard;
  s.pair.heard = true;
  // The daemon's pod leads: a new preference is followed and confirmed at once.
  if (first || (e && e.preferred_family !== s.pair.preferred)) {
    if (e) s.pair.preferred = e.preferred_family;
    negotiate(s);
  }
}

const sims: Sim[] = [];
for (let i = cfg.first; i <= cfg.last; i++) {
  const a = simAddressOf(i);
  const name = simNameOf(i);
  const s: Sim = {
    i,
    name,
    epoch: freshEpoch(),
    seq: 0n,
    socks: { 4: await bind('udp4', a.ipv4, SIM_PORT), 6: await bind('udp6', a.ipv6, SIM_PORT) },
    nonce: (i * 7919) >>> 0,
    nextId: 1,
    gen: 1,
    slots: Array.from({ length: PODS_PER_PEER }, (_, k) => k + 2),
    nextSlot: PODS_PER_PEER + 2,
  };
  if (simIsActive(i, cfg.activeEvery) && cfg.localPods.length)
    s.pair = { local: cfg.localPods[simPairIndex(i, cfg.activeEvery) % cfg.localPods.length]!, preferred: null, heard: false };
  for (const fam of [4, 6] as const) {
    s.socks[fam].on('message', (m, r) => onMessage(s, fam, m, r.port, r.address));
    if (!cfg.userReflector) continue;
    const echo = await bind(fam === 4 ? 'udp4' : 'udp6', fam === 4 ? a.ipv4 : a.ipv6, SIM_ECHO_PORT);
    echo.on('message', (m, r) => {
      if (!isEcho(m) || r.port === SIM_ECHO_PORT) return;
      stats.echoesReflected++;
      echo.send(m, r.port, r.address);
    });
  }
  sims.push(s);
  stats.peers++;
}

// Every peer announces at once (as a node coming up does), then spreads its periodic work over
// the refresh and the second, as independent nodes would.
sims.forEach((s, k) => {
  announce(s);
  setTimeout(() => setInterval(() => announce(s), cfg.announceMs), (k * 997) % cfg.announceMs);
  setTimeout(() => setInterval(() => probe(s), s.pair ? cfg.probeActiveMs : cfg.probeIdleMs), (k * 997) % 1000);
  if (s.pair) setTimeout(() => setInterval(() => negotiate(s), cfg.negotiateMs), (k * 613) % cfg.negotiateMs);
});

// Churn: peers restart round robin (a new boot: epoch, counter, announcement and pair at once);
// pods are replaced round robin over the peers (never an active pair's pod): a new generation at once.
if (cfg.churn && cfg.churn.restartsPerMin > 0) {
  let next = 0;
  setInterval(() => {
    const s = sims[next++ % sims.length]!;
    s.epoch = freshEpoch();
    s.seq = 0n;
    stats.restarts++;
    announce(s);
    negotiate(s);
  }, 60_000 / cfg.churn.restartsPerMin);
}
if (cfg.churn && cfg.churn.podChangesPerSec > 0) {
  let next = 0;
  setInterval(() => {
    const s = sims[(next++ * 7) % sims.length]!;
    // Remove the oldest pod that is not the pair's, add one in a fresh slot (slots 2–253, reused after a full turn).
    const k = s.pair ? 1 : 0;
    s.slots.splice(k, 1);
    s.slots.push(s.nextSlot);
    s.nextSlot = s.nextSlot >= 253 ? 3 : s.nextSlot + 1;
    s.gen++;
    stats.podChanges++;
    announce(s);
  }, 1000 / cfg.churn.podChangesPerSec);
}

setInterval(() => process.stdout.write(`${JSON.stringify(stats)}\n`), 1000);
setTimeout(() => process.exit(0), cfg.lifetimeS * 1000);
process.on('SIGTERM', () => process.exit(0));
