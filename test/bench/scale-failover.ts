/**
 * The scale benchmark's failover part (scale.ts prints it with the table): an active pod pair
 * between two simulated nodes with real daemons and the real data plane (test/support/two-nodes.ts),
 * node A's afsteerd also holding `others` simulated peers (test/bench/loadgen.ts in node A's
 * namespace, on its loopback, each announcing 10 pods and reflecting A's echo probes). A paced TCP
 * stream's family is blackholed between the nodes; per trial, the time until both nodes' maps
 * switched (polled every 5 ms) and the stream's longest stall; A's CPU share and RSS over the
 * trials. Target: maps switched p95 ≤ 200 ms, as without the other peers.
 * The simulated peers do not probe A here: their fast probes would arrive over A's loopback,
 * where its kernel reflector is not attached (it sits on the uplink), and be answered in
 * userspace — in a cluster they come over the uplink and cost A nothing (the scale table's case).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WireName } from '../../src/bpf/maps-layout';
import { nsExec, TwoNodes, waitFor } from '../support/two-nodes';
import { CLK_TCK, cpuTicks, rssMb } from './proc-stat';
import { simAddressOf } from './scale-addresses';

const ROOT = process.env.AFSTEER_REPO_ROOT ?? process.cwd();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the failover part measured. */
export interface FailoverAtScale {
  others: number;
  known: number;
  switchedMs: number[];
  stallMs: number[];
  intact: number;
  cpu: number;
  rss: number;
}

/** trials blackholes of an active pair's family while node A's afsteerd holds `others` more peers. */
export async function failoverAtScale(others: number, trials: number): Promise<FailoverAtScale> {
  const t = new TwoNodes();
  let lg: ChildProcess | undefined;
  try {
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    const batch: string[] = [];
    for (let i = 1; i <= others; i++)
      batch.push(`addr add ${simAddressOf(i).ipv4}/32 dev lo`, `addr add ${simAddressOf(i).ipv6}/128 dev lo nodad`);
    writeFileSync(join(t.dir, 'sim-addrs'), batch.join('\n') + '\n');
    await nsExec(t.a.nsPath, ['ip', '-b', join(t.dir, 'sim-addrs')]);
    // The large-cluster timers (docs/benchmarks.md, Scale) and the failover bench's selection.
    const cfg = { selection: { holdDownMs: 1000, intervals: 3 }, timers: { peerTimeoutMs: 30_000, evalIntervalMs: 100 } };
    const da = await t.startDaemon(t.a, cfg);
    const db = await t.startDaemon(t.b, cfg);
    const a = t.nodeAddresses(t.a);
    lg = spawn(
      'nsenter',
      [
        `--net=${t.a.nsPath}`,
        process.execPath,
        join(ROOT, 'scripts', 'run-ts.mjs'),
        join(ROOT, 'test', 'bench', 'loadgen.ts'),
        t.keyFile,
        String(others),
        '0',
        a.ipv4,
        a.ipv6,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, LOADGEN_ANNOUNCE_MS: '7500' },
      },
    );
    let lgErr = '';
    lg.stderr!.on('data', (c) => (lgErr = (lgErr + c).slice(-3000)));
    const peersOf = async () => ((await t.status(da)).peers as unknown[]).length;
    await waitFor(async () => (await peersOf()) >= others + 1, 90_000, `node A knows ${others + 1} peers (load generator: ${lgErr})`);
    await sleep(3000);
    const pid = da.child.pid!;
    const c0 = cpuTicks(pid),
      w0 = performance.now();
    const switchedMs: number[] = [],
      stallMs: number[] = [];
    let intact = 0,
      port = 7600;
    for (let i = 0; i < trials; i++) {
      const fam = i % 2 ? 6 : 4;
      const to = fam === 4 ? pb.ipv4 : pb.ipv6;
      await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', to]);
      await waitFor(() => t.wireOf(pa) === 'native' && t.wireOf(pb) === 'native', 30_000, 'native before the trial');
      await sleep(600);
      const p = ++port;
      const { done } = await t.server(pb, to, p);
      const client = t.client(pa, to, p, ['--duration-ms', '3500', '--chunk', '16384', '--interval-ms', '5']);
      await sleep(1000);
      const t0 = performance.now(),
        wall0 = Date.now();
      await t.impair(fam, 'blackhole');
      const want: WireName = fam === 4 ? 'ipv6' : 'ipv4';
      let switched = Infinity;
      while (performance.now() - t0 < 3000) {
        if (t.wireOf(pa) === want && t.wireOf(pb) === want) {
          switched = performance.now() - t0;
          break;
        }
        await sleep(5);
      }
      const [c, s] = await Promise.allSettled([client, done]);
      await t.impair(fam, null);
      switchedMs.push(switched);
      if (process.env.BENCH_SCALE_FAILOVER_DEBUG) {
        for (const [who, d] of [
          ['A', da],
          ['B', db],
        ] as const) {
          const lines = d.logs.filter(
            (l) => Date.parse(String(l.ts)) >= wall0 && Date.parse(String(l.ts)) < wall0 + 3000 && l.msg !== 'peer discovered',
          );
          console.log(
            `  trial ${i + 1} ${who}: ${lines.map((l) => `+${Date.parse(String(l.ts)) - wall0} ${l.msg}${l.reason ? ` (${l.reason})` : ''}`).join('; ')}`,
          );
        }
      }
      stallMs.push(s.status === 'fulfilled' ? Number(s.value.maxGapMs) : Infinity);
      if (c.status === 'fulfilled' && s.status === 'fulfilled' && s.value.sha256 === c.value.sha256) intact++;
    }
    if (process.env.BENCH_SCALE_FAILOVER_DEBUG) console.log(`  node A events: ${JSON.stringify((await t.status(da)).counters.events)}`);
    const cpu = ((cpuTicks(pid) - c0) / CLK_TCK / ((performance.now() - w0) / 1000)) * 100;
    const rss = rssMb(pid);
    return { others, known: await peersOf(), switchedMs, stallMs, intact, cpu, rss };
  } finally {
    if (lg && lg.exitCode === null) {
      lg.kill('SIGTERM');
      await Promise.race([new Promise((r) => lg!.once('exit', r)), sleep(3000)]);
      lg.kill('SIGKILL');
    }
    t.cleanup();
  }
}
