/**
 * A load generator of simulated afsteerd peers speaking the real protocol (authenticated frames
 * with the cluster key, this boot's epoch and a counter per peer; echo probes): each peer binds
 * its own IPv4 and IPv6 address on port 6180 (and its echo port 6181), announces 10 pods to the
 * daemon over both families every LOADGEN_ANNOUNCE_MS (default 1000; as an afsteerd with that
 * refresh does when nothing changes), reflects the daemon's echo probes (its own userspace
 * reflector) and MACed probes, and echo-probes the daemon (every 20 ms per family for "active"
 * peers, 1/s otherwise), counting what comes back — from the daemon's kernel reflector, or its
 * userspace one. Run inside the benchmark's namespace:
 * `loadgen.ts KEYFILE N ACTIVE DAEMON_V4 DAEMON_V6`; prints one JSON line of counters each second
 * on stdout; exits on SIGTERM or after 10 minutes.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { announcementPayloads } from '../../src/negotiator/protocol/announce';
import { decodeEcho, encodeEcho, isEcho } from '../../src/negotiator/protocol/echo';
import { decodeFrame, encodeFrame, payloadRoom } from '../../src/negotiator/protocol/frame';
import { decodeProbe } from '../../src/negotiator/protocol/probe';

import { simAddressOf as simAddress } from './scale-addresses';

const [keyFile, nArg, activeArg, d4, d6] = process.argv.slice(2);
const key = readFileSync(keyFile!);
const N = Number(nArg);
const ACTIVE = Number(activeArg);
/** The simulated peers' port (announced; the daemon listens on 6170 and 6171, its echo port, with wildcard binds). */
const PORT = 6180;
const ECHO_PORT = PORT + 1;
const DAEMON_PORT = 6170;
const DAEMON_ECHO_PORT = DAEMON_PORT + 1;
const ANNOUNCE_MS = Number(process.env.LOADGEN_ANNOUNCE_MS ?? 1000);
const epoch = BigInt(Date.now());
/** The announcement generation of every simulated peer (discovery.ts: a new one only for new content). */
const GEN = 1;
const stats = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, rxBad: 0, probeReplies: 0, probesReflected: 0, echoesReflected: 0 };

interface Sim {
  name: string;
  seq: bigint;
  socks: { 4: Socket; 6: Socket };
  nonce: number;
  nextId: number;
}

function send(s: Sim, fam: 4 | 6, type: 'announce' | 'probe' | 'probeReply', payload: Buffer, to: string, port = DAEMON_PORT): void {
  s.seq += 1n;
  const b = encodeFrame(key, { type, epoch, seq: s.seq, node: s.name, payload });
  stats.txPackets++;
  stats.txBytes += b.length;
  s.socks[fam].send(b, port, to);
}

async function bind(type: 'udp4' | 'udp6', addr: string, port = PORT): Promise<Socket> {
  const sock = createSocket({ type, ...(type === 'udp6' ? { ipv6Only: true } : {}) });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`bind ${addr} timed out`)), 5000);
    sock.once('error', reject);
    sock.bind(port, addr, () => {
      clearTimeout(t);
      resolve();
    });
  });
  return sock;
}

const sims: Sim[] = [];
for (let i = 1; i <= N; i++) {
  const a = simAddress(i);
  const s: Sim = {
    name: `sim-${i}`,
    seq: 0n,
    socks: { 4: await bind('udp4', a.ipv4), 6: await bind('udp6', a.ipv6) },
    nonce: i * 7919,
    nextId: 1,
  };
  for (const fam of [4, 6] as const) {
    // The sim's echo reflector: the daemon's echo probes go back unchanged.
    const echo = await bind(fam === 4 ? 'udp4' : 'udp6', fam === 4 ? a.ipv4 : a.ipv6, ECHO_PORT);
    echo.on('message', (m, r) => {
      if (!isEcho(m) || r.port === ECHO_PORT) return;
      stats.echoesReflected++;
      echo.send(m, r.port, r.address);
    });
    s.socks[fam].on('message', (m, r) => {
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
        send(s, fam, 'probeReply', f.payload, r.address, r.port);
      } else if (f.type === 'probeReply') {
        if (decodeProbe(f.payload)) stats.probeReplies++;
      }
    });
  }
  sims.push(s);
}

const announce = (s: Sim, i: number) => {
  const a = simAddress(i);
  const pods = Array.from({ length: 10 }, (_, k) => ({
    cnf: `${s.name}/pod-${k}`,
    ipv4: `10.${100 + (i >> 8)}.${i & 255}.${k + 2}`,
    ipv6: `fd88::${i.toString(16)}:${k + 2}`,
  }));
  const base = {
    addresses: a,
    port: PORT,
    supported_families: ['IPv4', 'IPv6'] as ('IPv4' | 'IPv6')[],
    capabilities: ['probe-v1', 'negotiate-v1', 'echo-v1'],
  };
  // One generation for the generator's life: its pods never change, so (as an afsteerd does) every refresh is the same bytes.
  for (const p of announcementPayloads(base, pods, GEN, payloadRoom(s.name))) {
    send(s, 4, 'announce', p, d4!);
    send(s, 6, 'announce', p, d6!);
  }
};
const probe = (s: Sim) => {
  for (const fam of [4, 6] as const) {
    const b = encodeEcho({ family: fam, active: true, id: s.nextId++, t1: BigInt(Math.round(performance.now() * 1000)), nonce: s.nonce });
    stats.txPackets++;
    stats.txBytes += b.length;
    s.socks[fam].send(b, DAEMON_ECHO_PORT, fam === 4 ? d4! : d6!);
  }
};

// Every peer announces at once (as a node coming up does), then spreads its periodic work over
// the refresh and the second, as independent nodes would.
sims.forEach((s, i) => {
  announce(s, i + 1);
  setTimeout(() => setInterval(() => announce(s, i + 1), ANNOUNCE_MS), (i * 997) % ANNOUNCE_MS);
  setTimeout(() => setInterval(() => probe(s), i < ACTIVE ? 20 : 1000), (i * 997) % 1000);
});
setInterval(() => process.stdout.write(JSON.stringify(stats) + '\n'), 1000);
setTimeout(() => process.exit(0), 600_000);
process.on('SIGTERM', () => process.exit(0));
