/**
 * The scale benchmark's run of one size (scale.ts prints the table; the load generator's self-test
 * in test/integration/afsteerd/loadgen.test.ts runs a small one). Root; part of `npm run bench`.
 *
 * The daemon under test is node A's afsteerd in the two-node topology (test/support/two-nodes.ts):
 * 10 real pods on node A through the CNI chain, the real data plane, node B with its own afsteerd
 * and one pod. N simulated peer nodes (test/bench/loadgen.ts, spread over processes of at most
 * PER_PROCESS peers: 4 sockets each would pass the 20,000 open files a process may hold) live on
 * the middle namespace's loopback, one IPv4 and one IPv6 address each, so everything between them
 * and node A crosses A's uplink as it would in a cluster: the simulated peers' echo probes are
 * answered by A's kernel reflector, A's echo probes by the real kernel reflector attached in the
 * middle namespace (the simulated peers' kernel). Each peer announces 10 pods; every tenth holds
 * an active pair between its first pod and one of A's pods, negotiated over the real protocol, so
 * A creates the pair (a native route in its maps) and probes that peer at its active rate.
 *
 * Per size, over measureS seconds after a warm-up: A's afsteerd CPU (share of one core, user and
 * system) and RSS (/proc), the load generators' CPU, the whole machine's busy share, control
 * bytes/s in and out and probes/s out (A's own /metrics counters, read before and after), the
 * /metrics scrape time (median, p95 of 20), and the load average. Optionally: the failover of
 * the real pod pair a0–b0 under that load (a paced TCP stream, its family blackholed in the
 * middle, both nodes' maps polled every 5 ms), and churn (peers restarting, pods replaced)
 * with RSS and map entries at start and end.
 * Environment: BENCH_SCALE_S (measured seconds), BENCH_SCALE_PER_PROCESS.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { EchoAllowList } from '../../src/bpf/echo-maps';
import { attachEchoReflector } from '../../src/bpf/echo-reflector';
import type { WireName } from '../../src/bpf/maps-layout';
import { listRemotes, readWires } from '../../src/bpf/steering';
import { inNetns } from '../../src/net/netns';
import { nsExec, type SimDaemon, type SimPod, TwoNodes, waitFor } from '../support/two-nodes';
import type { LoadgenConfig } from './loadgen';
import { CLK_TCK, cpuSplit, rssMb } from './proc-stat';
import { simAddressOf, simIsActive, simPairIndex, simPodAddressOf } from './scale-addresses';

const ROOT = process.env.AFSTEER_REPO_ROOT ?? process.cwd();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Simulated peers per load generator process (4 sockets each at most: 4,000 files of the 20,000 allowed). */
const PER_PROCESS = Number(process.env.BENCH_SCALE_PER_PROCESS ?? 1000);
/** A's pods the active peers pair with. */
const LOCAL_PODS = 10;
/** Every tenth simulated peer holds an active pair with A. */
const ACTIVE_EVERY = 10;
/**
 * The large-cluster timers (docs: a 30 s peer timeout, so unchanged announcements are refreshed
 * every 7.5 s) and the failover bench's selection (a 1 s hold-down, so each trial starts native);
 * everything else at its default.
 */
export const SCALE_DAEMON_CONFIG = {
  selection: { holdDownMs: 1000, intervals: 3 },
  timers: { peerTimeoutMs: 30_000 },
};
const PEER_TIMEOUT_MS = SCALE_DAEMON_CONFIG.timers.peerTimeoutMs;

/** What one run is asked to do. */
export interface ScaleOptions {
  peers: number;
  measureS?: number;
  warmupMs?: number;
  /** Failover trials of the pod pair a0–b0 after the measurement (0: none). */
  failoverTrials?: number;
  /** Churn for this many minutes after the measurement (1% of the peers restarting a minute, 10 pod changes a second). */
  churnMinutes?: number;
  /** More afsteerd config for node A and B (merged over SCALE_DAEMON_CONFIG's top-level keys). */
  daemonConfig?: Record<string, unknown>;
  /**
   * The simulated peers' own probe interval toward A for peers with a pair: as an afsteerd probes
   * them — its demand interval (250 ms) when the pair's traffic proves the path, else 20 ms.
   */
  peerProbeActiveMs?: number;
  /**
   * Traffic on the active pairs (default true): each of A's pods pings its pairs' remote pods
   * (their addresses on the middle's loopback, answered by its kernel) 5 times a second, over
   * IPv4 for half the pairs and IPv6 for the other half — answered traffic, as a pair carries.
   */
  pairTraffic?: boolean;
  /** Every activeEvery-th peer holds an active pair with A (default 10; 0: none). */
  activeEvery?: number;
  /** Run after the warm-up, before the measurement, with the topology and node A's daemon (a test's checks under the load). */
  during?: (ctx: { t: TwoNodes; da: SimDaemon }) => Promise<void>;
}

/** Figures of the failover trials. */
export interface FailoverFigures {
  switchedMs: number[];
  stallMs: number[];
  intact: number;
  cpu: number;
  rss: number;
}

/** Node A at one moment of a churn run. */
export interface ChurnSnapshot {
  rss: number;
  pairs: number;
  peers: number;
  remotes: number;
  routes: number;
}

/** Figures of a churn run. */
export interface ChurnFigures {
  minutes: number;
  restarts: number;
  podChanges: number;
  start: ChurnSnapshot;
  /** Half-way: the growth from here to the end tells a plateau from unbounded growth (removed pods stay registered for the retention). */
  half: ChurnSnapshot;
  end: ChurnSnapshot;
  pairsDropped: number;
}

/** One size's figures. */
export interface ScaleRow {
  peers: number;
  known: number;
  pairs: number;
  processes: number;
  cpu: number;
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  genCpu: number;
  machineBusy: number;
  inBps: number;
  outBps: number;
  probesOut: number;
  probesIn: number;
  /** A's probed paths by mode at the end of the measurement (afsteer_probe_paths). */
  paths: { fast: number; demand: number; idle: number };
  scrapeMedianMs: number;
  scrapeP95Ms: number;
  load: [number, number];
  metrics: string;
  failover?: FailoverFigures;
  churn?: ChurnFigures;
}

/** A quantile of xs (nearest rank). */
export const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};

/** The 1-minute load average. */
export const loadAvg = (): number => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/** Busy and total jiffies of the whole machine (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Sum of one metric's samples whose labels match (all samples without a filter). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'gm'))) {
    const l = m[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[2]);
  }
  return sum;
}

/** Bundles a TypeScript entry once (as scripts/run-ts.mjs does) so its processes can be measured directly. */
async function bundle(entry: string, format: 'esm' | 'cjs' = 'esm'): Promise<string> {
  const out = join(ROOT, 'build', 'run', `scale-${entry.replace(/.*\//, '').replace(/\.ts$/, '')}.${format === 'esm' ? 'mjs' : 'cjs'}`);
  await build({
    entryPoints: [join(ROOT, entry)],
    outfile: out,
    bundle: true,
    platform: 'node',
    format,
    target: 'node24',
    packages: 'external',
    logLevel: 'warning',
    ...(format === 'esm'
      ? { banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } }
      : {}),
  });
  return out;
}

/** Scrapes node A's /metrics: the text and the time it took (ms; Infinity on failure). */
async function scrape(t: TwoNodes, file: string): Promise<{ ms: number; text: string }> {
  try {
    const out = await nsExec(t.a.nsPath, [
      'curl',
      '-s',
      '-o',
      file,
      '-w',
      '%{time_total}',
      '--max-time',
      '10',
      'http://127.0.0.1:9617/metrics',
    ]);
    return { ms: Number(out) * 1000, text: readFileSync(file, 'utf8') };
  } catch {
    return { ms: Infinity, text: '' };
  }
}

/** One real afsteerd (node A) against opts.peers simulated peers, 10% of them with active pairs. */
export async function runScale(opts: ScaleOptions): Promise<ScaleRow> {
  const n = opts.peers;
  const activeEvery = opts.activeEvery ?? ACTIVE_EVERY;
  const measureS = opts.measureS ?? Number(process.env.BENCH_SCALE_S ?? 15);
  const warmupMs = opts.warmupMs ?? 8000;
  const t = new TwoNodes();
  const midPin = `/sys/fs/bpf/afscale-${t.id}-mid`;
  const gens: ChildProcess[] = [];
  let da: SimDaemon | undefined;
  try {
    await t.up();
    const local: SimPod[] = [];
    for (let k = 0; k < LOCAL_PODS; k++) local.push(await t.addPod(t.a, `a${k}`));
    const pb = await t.addPod(t.b, 'b0');
    // The simulated peers on the middle namespace's loopback (and the remote pods of the active pairs, for pair traffic).
    const batch: string[] = [];
    for (let i = 1; i <= n; i++) {
      const a = simAddressOf(i);
      batch.push(`addr add ${a.ipv4}/32 dev lo`, `addr add ${a.ipv6}/128 dev lo nodad`);
      if (simIsActive(i, activeEvery)) {
        const p = simPodAddressOf(i, 2);
        batch.push(`addr add ${p.ipv4}/32 dev lo`, `addr add ${p.ipv6}/128 dev lo nodad`);
      }
    }
    writeFileSync(join(t.dir, 'sim-addrs'), `${batch.join('\n')}\n`);
    if (n > 0) await nsExec(t.midPath, ['ip', '-b', join(t.dir, 'sim-addrs')]);
    // The simulated peers' kernel reflector: on the middle's link toward A, answering A's echo probes
    // (A is the one peer on its allow-list, with no rate limit: every simulated peer shares it).
    const midLinkA = JSON.parse(await nsExec(t.midPath, ['ip', '-j', 'link', 'show', 'dev', t.midLink(t.a)]))[0].ifindex as number;
    execFileSync('mkdir', ['-p', midPin]);
    inNetns(t.midPath, () => attachEchoReflector(midPin, 6181, [midLinkA], { perSec: 0, burst: 0 }));
    const allow = EchoAllowList.open(midPin);
    for (const a of Object.values(t.nodeAddresses(t.a))) allow.add(a);

    const cfg = { ...SCALE_DAEMON_CONFIG, ...opts.daemonConfig };
    // BENCH_SCALE_PROFILE=DIR: node A's afsteerd from source, profiled over the measurement (test/bench/afsteerd-dev.ts).
    const profileDir = process.env.BENCH_SCALE_PROFILE;
    const command = profileDir
      ? ['env', `AFSTEERD_DEV_PROFILE_DIR=${profileDir}`, process.execPath, await bundle('test/bench/afsteerd-dev.ts', 'cjs')]
      : undefined;
    da = await t.startDaemon(t.a, cfg, t.keyFile, command);
    await t.startDaemon(t.b, cfg);
    const addrA = t.nodeAddresses(t.a);

    const lgScript = n > 0 ? await bundle('test/bench/loadgen.ts') : '';
    const processes = Math.ceil(n / PER_PROCESS);
    const churn = opts.churnMinutes ? { restartsPerMin: (n * 0.01) / processes, podChangesPerSec: 10 / processes } : undefined;
    const last: Record<string, number>[] = [];
    for (let p = 0; p < processes; p++) {
      const lc: LoadgenConfig = {
        keyFile: t.keyFile,
        first: p * PER_PROCESS + 1,
        last: Math.min(n, (p + 1) * PER_PROCESS),
        activeEvery,
        daemon: { node: 'node-a', ipv4: addrA.ipv4, ipv6: addrA.ipv6, port: 6170 },
        // Every local pod's CNF id is its container id here (no Kubernetes arguments): ctr-aK.
        localPods: local.map((l) => l.id),
        announceMs: PEER_TIMEOUT_MS / 4,
        probeActiveMs: opts.peerProbeActiveMs ?? ((opts.pairTraffic ?? true) ? 250 : 20),
        probeIdleMs: 1000,
        negotiateMs: 1000,
        userReflector: false,
        ...(churn ? { churn } : {}),
        lifetimeS: 600 + (opts.churnMinutes ?? 0) * 60 + measureS + 300,
      };
      const file = join(t.dir, `loadgen-${p}.json`);
      writeFileSync(file, JSON.stringify(lc));
      const lg = t.children.spawn('nsenter', [`--net=${t.midPath}`, process.execPath, lgScript, file], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, AFSTEER_REPO_ROOT: ROOT },
      });
      gens.push(lg);
      let err = '';
      lg.stderr!.on('data', (c) => (err = (err + c).slice(-3000)));
      lg.once('exit', (code) => {
        if (code) console.error(`  load generator ${p} exited ${code}: ${err}`);
      });
      lg.stdout!.on('data', (c: Buffer) => {
        const lines = c.toString().trim().split('\n');
        try {
          last[p] = JSON.parse(lines.at(-1)!);
        } catch {
          // a partial line
        }
      });
    }
    const mfile = join(t.dir, 'metrics.txt');
    const active = activeEvery ? Math.ceil(n / activeEvery) : 0;
    const state = async () => {
      const m = (await scrape(t, mfile)).text;
      return { peers: metricSum(m, 'afsteer_peers'), pairs: metricSum(m, 'afsteer_pairs') };
    };
    let seen = { peers: 0, pairs: 0 };
    await waitFor(
      async () => {
        seen = await state();
        return seen.peers >= n + 1 && seen.pairs >= active;
      },
      120_000 + n * 40,
      `node A knows ${n + 1} peers and holds ${active} pairs`,
    ).catch(async (err: Error) => {
      const m = (await scrape(t, mfile)).text;
      const drops = [...m.matchAll(/^afsteer_control_datagrams_dropped_total\{reason="([^"]+)"\} (\d+)/gm)].filter((x) => x[2] !== '0');
      throw new Error(
        `${err.message} (last seen: ${seen.peers} peers, ${seen.pairs} pairs; dropped: ${drops.map((x) => `${x[1]} ${x[2]}`).join(', ')}; generators: ${JSON.stringify(last)})`,
      );
    });
    if (opts.pairTraffic ?? true) {
      for (let i = 1; i <= n; i++) {
        if (!simIsActive(i, activeEvery)) continue;
        const k = simPairIndex(i, activeEvery);
        const to = simPodAddressOf(i, 2)[k % 2 ? 'ipv6' : 'ipv4'];
        t.children.spawn('nsenter', [`--net=${local[k % LOCAL_PODS]!.nsPath}`, 'ping', '-q', '-i', '0.2', '-W', '1', to], {
          stdio: 'ignore',
        });
      }
    }
    await sleep(warmupMs);
    if (opts.during) await opts.during({ t, da });

    // The measurement: A's counters before and after, CPU of A, of the generators and of the machine.
    const pid = da.child.pid!;
    const genPids = gens.map((g) => g.pid!);
    if (profileDir) process.kill(pid, 'SIGUSR2');
    const load0 = loadAvg();
    const m0 = (await scrape(t, mfile)).text;
    const c0 = cpuSplit(pid);
    const g0 = genPids.map((p) => cpuSplit(p));
    const k0 = machineTicks();
    const w0 = performance.now();
    await sleep(measureS * 1000);
    const c1 = cpuSplit(pid);
    const g1 = genPids.map((p) => cpuSplit(p));
    const k1 = machineTicks();
    const secs = (performance.now() - w0) / 1000;
    const m1 = (await scrape(t, mfile)).text;
    const load1 = loadAvg();
    const rss = rssMb(pid);
    const scrapes: number[] = [];
    for (let k = 0; k < 20; k++) {
      scrapes.push((await scrape(t, mfile)).ms);
      await sleep(200);
    }
    const delta = (name: string, labels: Record<string, string>) => (metricSum(m1, name, labels) - metricSum(m0, name, labels)) / secs;
    const pct = (ticks: number) => (ticks / CLK_TCK / secs) * 100;
    const row: ScaleRow = {
      peers: n,
      known: metricSum(m1, 'afsteer_peers'),
      pairs: metricSum(m1, 'afsteer_pairs'),
      processes,
      cpu: pct(c1.user + c1.system - c0.user - c0.system),
      cpuUser: pct(c1.user - c0.user),
      cpuSystem: pct(c1.system - c0.system),
      rss,
      genCpu: pct(g1.reduce((a, g) => a + g.user + g.system, 0) - g0.reduce((a, g) => a + g.user + g.system, 0)),
      machineBusy: (100 * (k1.busy - k0.busy)) / (k1.total - k0.total),
      inBps: delta('afsteer_control_bytes_total', { direction: 'received' }),
      outBps: delta('afsteer_control_bytes_total', { direction: 'sent' }),
      probesOut: delta('afsteer_probe_packets_total', { direction: 'sent' }),
      probesIn: delta('afsteer_probe_packets_total', { direction: 'received' }),
      paths: {
        fast: metricSum(m1, 'afsteer_probe_paths', { mode: 'fast' }),
        demand: metricSum(m1, 'afsteer_probe_paths', { mode: 'demand' }),
        idle: metricSum(m1, 'afsteer_probe_paths', { mode: 'idle' }),
      },
      scrapeMedianMs: quantile(scrapes, 0.5),
      scrapeP95Ms: quantile(scrapes, 0.95),
      load: [load0, load1],
      metrics: m1,
    };
    if (opts.failoverTrials) row.failover = await failoverTrials(t, da, local[0]!, pb, opts.failoverTrials);
    if (opts.churnMinutes) row.churn = await churnRun(t, da, mfile, opts.churnMinutes, last);
    return row;
  } finally {
    // Node A stopped first with SIGTERM, so that its profile (BENCH_SCALE_PROFILE) is written.
    if (da && da.child.exitCode === null) {
      da.child.kill('SIGTERM');
      await Promise.race([da.exited, sleep(10_000)]);
    }
    for (const g of gens) if (g.exitCode === null) g.kill('SIGTERM');
    await Promise.race([Promise.all(gens.map((g) => new Promise((r) => (g.exitCode !== null ? r(0) : g.once('exit', r))))), sleep(3000)]);
    t.cleanup();
    rmSync(midPin, { recursive: true, force: true });
  }
}

/** Blackholes of the pod pair a0–b0's family while node A carries the load; A's CPU and RSS over the trials. */
async function failoverTrials(t: TwoNodes, da: SimDaemon, pa: SimPod, pb: SimPod, trials: number): Promise<FailoverFigures> {
  const pid = da.child.pid!;
  const c0 = cpuSplit(pid);
  const w0 = performance.now();
  const switchedMs: number[] = [];
  const stallMs: number[] = [];
  let intact = 0;
  let port = 7600;
  for (let i = 0; i < trials; i++) {
    const fam = i % 2 ? 6 : 4;
    const to = fam === 4 ? pb.ipv4 : pb.ipv6;
    await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', to]);
    await waitFor(() => t.wireOf(pa, pb) === 'native' && t.wireOf(pb, pa) === 'native', 30_000, 'native before the trial');
    await sleep(600);
    const p = ++port;
    const { done } = await t.server(pb, to, p);
    const client = t.client(pa, to, p, ['--duration-ms', '3500', '--chunk', '16384', '--interval-ms', '5']);
    await sleep(1000);
    const t0 = performance.now();
    await t.impair(fam, 'blackhole');
    const want: WireName = fam === 4 ? 'ipv6' : 'ipv4';
    let switched = Infinity;
    while (performance.now() - t0 < 3000) {
      if (t.wireOf(pa, pb) === want && t.wireOf(pb, pa) === want) {
        switched = performance.now() - t0;
        break;
      }
      await sleep(5);
    }
    const [c, s] = await Promise.allSettled([client, done]);
    await t.impair(fam, null);
    switchedMs.push(switched);
    stallMs.push(s.status === 'fulfilled' ? Number(s.value.maxGapMs) : Infinity);
    if (c.status === 'fulfilled' && s.status === 'fulfilled' && s.value.sha256 === c.value.sha256) intact++;
  }
  const c1 = cpuSplit(pid);
  const cpu = ((c1.user + c1.system - c0.user - c0.system) / CLK_TCK / ((performance.now() - w0) / 1000)) * 100;
  return { switchedMs, stallMs, intact, cpu, rss: rssMb(pid) };
}

/** Churn for minutes (the generators were started with it): RSS, pairs, peers and map entries at start and end. */
async function churnRun(t: TwoNodes, da: SimDaemon, mfile: string, minutes: number, last: Record<string, number>[]): Promise<ChurnFigures> {
  const snap = async (): Promise<ChurnSnapshot> => {
    const m = (await scrape(t, mfile)).text;
    return {
      rss: rssMb(da.child.pid!),
      pairs: metricSum(m, 'afsteer_pairs'),
      peers: metricSum(m, 'afsteer_peers'),
      remotes: listRemotes(t.a.pinDir).length,
      routes: readWires(t.a.pinDir).length,
    };
  };
  const sum = (k: string) => last.reduce((a, s) => a + (s?.[k] ?? 0), 0);
  const dropped = () => da.logs.filter((l) => l.msg === 'pair dropped' && String(l.pair).includes('|sim-')).length;
  const start = await snap();
  const r0 = sum('restarts');
  const p0 = sum('podChanges');
  const d0 = dropped();
  await sleep(minutes * 30_000);
  const half = await snap();
  await sleep(minutes * 30_000);
  const end = await snap();
  return { minutes, restarts: sum('restarts') - r0, podChanges: sum('podChanges') - p0, start, half, end, pairsDropped: dropped() - d0 };
}
