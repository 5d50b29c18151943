/**
 * afsteerd benchmark (root; run through scripts/run-ts.mjs, part of `npm run bench`):
 *
 * 1. Failover: a paced TCP stream between two pods on two simulated nodes, daemons running; the
 *    family the stream is on is blackholed in the middle namespace. Reports (a) blackhole → both
 *    nodes' maps switched (polled every 5 ms), (b) the stream's longest receive stall, medians and
 *    p95 over TRIALS, next to the same stream with afsteerd off and a 1 s blackhole (a permanent
 *    one kills it). Targets: (a) p95 ≤ 200 ms, (b) p95 ≤ 400 ms.
 * 2. False switches, real: both families equally impaired (1% loss, 10 ± 10 ms delay) for
 *    FALSE_MIN minutes with every pod pair active: target 0 switches.
 * 3. False switches, simulated peers: the daemon's own probe window and policy code (probe/path.ts,
 *    policy.ts, default parameters) fed with outcomes drawn from the same impairment, many peers at
 *    once, ≥ 30 peer-minutes: target 0.
 * 4. Probe overhead per peer, bytes/s and packets/s on the wire, active and idle.
 * Environment: BENCH_TRIALS (20), BENCH_FALSE_MIN (3), BENCH_SIM_PEER_MIN (60), BENCH_FAILOVER_PARTS.
 */
import type { WireName } from '../../src/bpf/maps-layout';
import { DEFAULT_POLICY_PARAMS, evaluate, initialSelection } from '../../src/negotiator/pairs/selection';
import {
  DEFAULT_MIN_SAMPLES,
  DEFAULT_PROBE,
  expireProbes,
  newPath,
  pathMetrics,
  probeDue,
  probeSent,
  replyReceived,
} from '../../src/negotiator/probing/probe-path';
import { rng } from '../support/prng';
import { nsExec, type SimDaemon, type SimPod, TwoNodes, waitFor } from '../support/two-nodes';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const FALSE_MIN = Number(process.env.BENCH_FALSE_MIN ?? 3);
const SIM_PEER_MIN = Number(process.env.BENCH_SIM_PEER_MIN ?? 60);
const PARTS = (process.env.BENCH_FAILOVER_PARTS ?? 'failover,false,sim,overhead').split(',');

const misses: string[] = [];
const target = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (!ok) misses.push(what);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};

async function failover(): Promise<void> {
  const t = new TwoNodes();
  try {
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    let port = 7000;
    /** One trial: stream on app family fam; blackhole it after 1 s for holdMs (null: for good). */
    const trial = async (fam: 4 | 6, watch: boolean, holdMs: number | null) => {
      const to = fam === 4 ? pb.ipv4 : pb.ipv6;
      const p = ++port;
      const { done } = await t.server(pb, to, p);
      const client = t.client(pa, to, p, ['--duration-ms', '3500', '--chunk', '16384', '--interval-ms', '5']);
      await sleep(1000);
      const t0 = performance.now();
      await t.impair(fam, 'blackhole');
      let switchedMs: number | undefined;
      if (watch) {
        const want: WireName = fam === 4 ? 'ipv6' : 'ipv4';
        for (;;) {
          if (t.wireOf(pa) === want && t.wireOf(pb) === want) {
            switchedMs = performance.now() - t0;
            break;
          }
          if (performance.now() - t0 > 3000) break;
          await sleep(5);
        }
      }
      if (holdMs !== null) {
        await sleep(Math.max(0, holdMs - (performance.now() - t0)));
        await t.impair(fam, null);
      }
      const [c, s] = await Promise.allSettled([client, done]);
      if (holdMs === null) await t.impair(fam, null);
      const ok = c.status === 'fulfilled' && s.status === 'fulfilled' && s.value.sha256 === c.value.sha256;
      return { switchedMs, stallMs: s.status === 'fulfilled' ? (s.value.maxGapMs as number) : Infinity, ok };
    };

    // Baseline: no daemons, a 1 s blackhole.
    const base: number[] = [];
    for (let i = 0; i < Math.min(TRIALS, 5); i++) base.push((await trial(i % 2 ? 6 : 4, false, 1000)).stallMs);

    const override = {
      selection: { holdDownMs: 1000, intervals: 3 },
      timers: { announceIntervalMs: 300, peerTimeoutMs: 3000, evalIntervalMs: 100, negotiateIntervalMs: 500 },
    };
    const da: SimDaemon = await t.startDaemon(t.a, override);
    const db: SimDaemon = await t.startDaemon(t.b, override);
    const switched: number[] = [],
      stalls: number[] = [];
    let broken = 0;
    for (let i = 0; i < TRIALS; i++) {
      const fam = i % 2 ? 6 : 4;
      await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', fam === 4 ? pb.ipv4 : pb.ipv6]);
      // Start every trial native, with fresh windows on both families.
      await waitFor(() => t.wireOf(pa) === 'native' && t.wireOf(pb) === 'native', 20_000, 'native before the trial');
      await sleep(600);
      const r = await trial(fam, true, null);
      switched.push(r.switchedMs ?? Infinity);
      stalls.push(r.stallMs);
      if (!r.ok) broken++;
    }
    da.child.kill('SIGTERM');
    db.child.kill('SIGTERM');
    console.log(
      `\nfailover: paced TCP stream (16 KB every 5 ms), its family blackholed, ${TRIALS} trials alternating IPv4/IPv6 app families (ms)`,
    );
    console.log(
      `  (a) blackhole → both maps switched   median ${quantile(switched, 0.5).toFixed(0)}  p95 ${quantile(switched, 0.95).toFixed(0)}  max ${Math.max(...switched).toFixed(0)}`,
    );
    console.log(
      `  (b) longest receive stall            median ${quantile(stalls, 0.5).toFixed(0)}  p95 ${quantile(stalls, 0.95).toFixed(0)}  max ${Math.max(...stalls).toFixed(0)}`,
    );
    console.log(
      `  baseline, afsteerd off, 1 s blackhole: longest stall median ${quantile(base, 0.5).toFixed(0)}  p95 ${quantile(base, 0.95).toFixed(0)} (a permanent blackhole kills the stream)`,
    );
    console.log(`  streams intact: ${TRIALS - broken}/${TRIALS}`);
    target(quantile(switched, 0.95) <= 200, `failover (a) p95 ≤ 200 ms (${quantile(switched, 0.95).toFixed(0)} ms)`);
    target(
      quantile(stalls, 0.95) <= 400,
      `failover (b) p95 ≤ 400 ms (${quantile(stalls, 0.95).toFixed(0)} ms; afsteerd off with a 1 s blackhole: ${quantile(base, 0.95).toFixed(0)} ms)`,
    );
    target(broken === 0, `every stream intact (${TRIALS - broken}/${TRIALS})`);
  } finally {
    t.cleanup();
  }
}

async function falseSwitchesReal(): Promise<void> {
  const t = new TwoNodes();
  try {
    await t.up();
    const pods: [SimPod, SimPod][] = [];
    for (let i = 0; i < 3; i++) pods.push([await t.addPod(t.a, `a${i}`), await t.addPod(t.b, `b${i}`)]);
    const da = await t.startDaemon(t.a, { timers: { announceIntervalMs: 1000, peerTimeoutMs: 5000 } });
    const db = await t.startDaemon(t.b, { timers: { announceIntervalMs: 1000, peerTimeoutMs: 5000 } });
    await t.delay(4, 10, 10);
    await t.delay(6, 10, 10);
    await t.impair(4, 1);
    await t.impair(6, 1);
    // Counted from when both impairments are in place and the windows hold only impaired samples
    // (bringing a delay line in can itself look like a short outage of that family).
    await sleep(6000);
    const base = ((await t.status(da)).switchesTotal as number) + ((await t.status(db)).switchesTotal as number);
    const ms = FALSE_MIN * 60_000;
    // Every pair active for the whole run, both app families.
    const talk = pods.flatMap(([a, b]) => [
      t.inPod(a, ['ping', '-q', '-c', String(ms / 200), '-i', '0.2', '-W', '1', b.ipv4]).catch(() => ''),
      t.inPod(a, ['ping', '-q', '-c', String(ms / 200), '-i', '0.2', '-W', '1', b.ipv6]).catch(() => ''),
    ]);
    await Promise.all(talk);
    const [sa, sb] = [await t.status(da), await t.status(db)];
    const n = sa.switchesTotal + sb.switchesTotal - base;
    console.log(
      `\nfalse switches, real: 2 daemons, ${pods.length} pod pairs, both families 1% loss and 10 ± 10 ms each way, ${FALSE_MIN} min (${2 * FALSE_MIN} peer-minutes)`,
    );
    console.log(`  IPv4 seen by node-a: ${JSON.stringify(sa.peers[0]?.families?.IPv4)}`);
    console.log(`  IPv6 seen by node-a: ${JSON.stringify(sa.peers[0]?.families?.IPv6)}`);
    console.log(`  switches: ${n}${n ? ' ' + JSON.stringify([...sa.switches, ...sb.switches]) : ''}`);
    target(n === 0, `no switch under equal impairment, real daemons (${n})`);
  } finally {
    await t.delay(4, null).catch(() => {});
    await t.delay(6, null).catch(() => {});
    t.cleanup();
  }
}

function falseSwitchesSimulated(): void {
  const peers = 30;
  const minutes = SIM_PEER_MIN / peers;
  const rnd = rng(1).next;
  const criteria = [{ criterion: 'lowest-latency' as const }, { criterion: 'lowest-loss' as const }, { criterion: 'weighted' as const }];
  let switches = 0,
    evaluations = 0;
  const byCriterion: Record<string, number> = {};
  const t1 = performance.now();
  for (let p = 0; p < peers; p++) {
    const paths = { IPv4: newPath(0), IPv6: newPath(0) };
    const sel = criteria.map(() => initialSelection());
    const pending: { fam: 'IPv4' | 'IPv6'; id: number; at: number }[] = [];
    for (let now = 0; now < minutes * 60_000; now += 5) {
      for (const fam of ['IPv4', 'IPv6'] as const) {
        const path = paths[fam];
        expireProbes(path, now, DEFAULT_PROBE);
        if (probeDue(path, now)) {
          const id = probeSent(path, now, true, DEFAULT_PROBE);
          // 1% loss each way, 10 ± 10 ms each way.
          if (rnd() >= 0.01 && rnd() >= 0.01) pending.push({ fam, id, at: now + 20 + (rnd() * 20 - 10) + (rnd() * 20 - 10) });
        }
      }
      for (let i = pending.length - 1; i >= 0; i--) {
        if (pending[i]!.at <= now) {
          replyReceived(paths[pending[i]!.fam], pending[i]!.id, now, DEFAULT_PROBE);
          pending.splice(i, 1);
        }
      }
      if (now % 250 === 0 && paths.IPv4.outcomes.length >= DEFAULT_MIN_SAMPLES && paths.IPv6.outcomes.length >= DEFAULT_MIN_SAMPLES) {
        const m = { IPv4: pathMetrics(paths.IPv4)!, IPv6: pathMetrics(paths.IPv6)! };
        criteria.forEach((c, k) => {
          const next = evaluate(sel[k]!, m, c, now, DEFAULT_POLICY_PARAMS);
          if (next.current !== sel[k]!.current) {
            switches++;
            byCriterion[c.criterion] = (byCriterion[c.criterion] ?? 0) + 1;
          }
          sel[k] = next;
          evaluations++;
        });
      }
    }
  }
  console.log(
    `\nfalse switches, simulated peers: ${peers} peers × ${minutes.toFixed(1)} min = ${SIM_PEER_MIN} peer-minutes, each under all three criteria (probe window and policy code of the daemon, default parameters; 1% loss and 10 ± 10 ms each way on both families; ${evaluations} evaluations in ${((performance.now() - t1) / 1000).toFixed(1)} s)`,
  );
  target(
    switches === 0,
    `no switch under equal impairment, simulated peers (${switches}${switches ? ' ' + JSON.stringify(byCriterion) : ''})`,
  );
}

async function overhead(): Promise<void> {
  const t = new TwoNodes();
  try {
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    const cfg = { timers: { announceIntervalMs: 1000, peerTimeoutMs: 5000, pairIdleMs: 60_000 } };
    const da = await t.startDaemon(t.a, cfg);
    await t.startDaemon(t.b, cfg);
    const mid = `/run/netns/${t.mid}`;
    await nsExec(mid, ['nft', 'add', 'table', 'inet', 'afsteer_ctl']);
    await nsExec(mid, ['nft', 'add', 'chain', 'inet', 'afsteer_ctl', 'ctlcount', '{ type filter hook forward priority 10; }']);
    await nsExec(mid, [
      'nft',
      'add',
      'rule',
      'inet',
      'afsteer_ctl',
      'ctlcount',
      'iifname',
      `af${t.id}ma`,
      'udp',
      'dport',
      '6170',
      'counter',
    ]);
    const measure = async (seconds: number) => {
      const read = async () => {
        const out = await nsExec(mid, ['nft', 'list', 'chain', 'inet', 'afsteer_ctl', 'ctlcount']);
        const m = /packets (\d+) bytes (\d+)/.exec(out)!;
        return { packets: Number(m[1]), bytes: Number(m[2]) };
      };
      const a = await read();
      await sleep(seconds * 1000);
      const b = await read();
      return { pps: (b.packets - a.packets) / seconds, bps: (b.bytes - a.bytes) / seconds };
    };
    await sleep(3000);
    const probes = async () => ((await t.status(da)).counters.tx.probe ?? 0) as number;
    let p0 = await probes();
    const idle = await measure(10);
    const idleProbes = ((await probes()) - p0) / 10 / 2;
    const bg = t.inPod(pa, ['ping', '-q', '-c', '120', '-i', '0.1', pb.ipv4]).catch(() => '');
    await waitFor(async () => ((await t.status(da)).pairs as unknown[]).length > 0, 5000, 'pair');
    await sleep(1000);
    p0 = await probes();
    const active = await measure(10);
    const activeProbes = ((await probes()) - p0) / 10 / 2;
    await bg;
    console.log(
      `\nprobe and control overhead, node-a → node-b, one peer (IP packets on the wire: A's probes, replies to B's probes, announcements, negotiation)`,
    );
    console.log(
      `  idle peer:   ${idle.pps.toFixed(1)} packets/s  ${idle.bps.toFixed(0)} bytes/s   (probes sent: ${idleProbes.toFixed(2)}/s per family)`,
    );
    console.log(
      `  active peer: ${active.pps.toFixed(1)} packets/s  ${active.bps.toFixed(0)} bytes/s   (probes sent: ${activeProbes.toFixed(1)}/s per family)`,
    );
    target(idleProbes <= 1.05, `idle peer: ≤ 1 probe/s per family (${idleProbes.toFixed(2)})`);
  } finally {
    t.cleanup();
  }
}

if (process.getuid?.() !== 0) {
  console.log('failover bench: SKIPPED (needs root)');
  process.exit(0);
}
if (PARTS.includes('failover')) await failover();
if (PARTS.includes('sim')) falseSwitchesSimulated();
if (PARTS.includes('overhead')) await overhead();
if (PARTS.includes('false')) await falseSwitchesReal();
console.log(`\n${misses.length} target(s) missed`);
process.exit(misses.length ? 1 : 0);
