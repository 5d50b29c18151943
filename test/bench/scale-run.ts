/**
 * The scale benchmark's run of one size (scale.ts prints the table; the load generator's self-test
 * in test/integration/afsteerd/loadgen.test.ts runs a small one). afsteerd at scale (root; part of `npm run bench`, under the machine-wide test lock): one real
 * afsteerd (dist/afsteerd from a config file) in a namespace of its own, against 10, 100 and 1,000
 * simulated peer nodes (test/bench/loadgen.ts: the real authenticated protocol over real UDP on
 * loopback addresses of that namespace; 10 pods announced per peer every second; the daemon's
 * probes reflected; 10% of the peers probing the daemon every 20 ms per family, as peers with
 * active pairs do). Per size, over MEASURE_S seconds after a warm-up: the daemon's CPU share of
 * one core and RSS (/proc), control bytes/s in and out (counted by the load generator), and the
 * median /metrics scrape time. Targets at 1,000 peers: ≤ 10% of a core, ≤ 150 MB RSS, scrape ≤ 100 ms.
 * The simulated peers hold no pairs with the daemon: failover of an active pair while 999 others
 * are probed is scale-failover.ts. Environment: BENCH_SCALE_SIZES, BENCH_SCALE_S.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLK_TCK, cpuSplit, cpuTicks, rssMb } from './proc-stat';
import { simAddressOf } from './scale-addresses';

const ROOT = process.env.AFSTEER_REPO_ROOT ?? process.cwd();
const MEASURE_S = Number(process.env.BENCH_SCALE_S ?? 15);
/** The large-cluster setting (docs/benchmarks.md, Scale): a 30 s peer timeout, so unchanged announcements are refreshed every 7.5 s. */
const PEER_TIMEOUT_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One size's figures. */
export interface Row {
  peers: number;
  known: number;
  cpu: number;
  cpuSystem: number;
  rss: number;
  inBps: number;
  outBps: number;
  scrapeMs: number;
  lossPct: number;
  metrics: string;
}

/** One real afsteerd against n simulated peers (10% active), measured over measureS seconds after an 8 s warm-up. */
export async function runScale(n: number, measureS = MEASURE_S, warmupMs = 8000): Promise<Row> {
  const id = randomBytes(2).toString('hex');
  const ns = `afscale${id}`;
  const nsPath = `/run/netns/${ns}`;
  const dir = mkdtempSync(join(tmpdir(), `afsteer-scale-${id}-`));
  const pinDir = `/sys/fs/bpf/afscale${id}`;
  const children: ChildProcess[] = [];
  try {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const batch = ['addr add fd77::1/128 dev lo nodad'];
    for (let i = 1; i <= n; i++) batch.push(`addr add ${simAddressOf(i).ipv6}/128 dev lo nodad`);
    writeFileSync(join(dir, 'addrs'), batch.join('\n') + '\n');
    execFileSync('ip', ['-n', ns, '-b', join(dir, 'addrs')]);
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const cfg = join(dir, 'afsteerd.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        nodeName: 'bench-daemon',
        keyFile,
        pinDir,
        stateDir: join(dir, 'state'),
        controlSocket: join(dir, 'd.sock'),
        addresses: { ipv4: '127.0.0.1', ipv6: 'fd77::1' },
        logLevel: 'warn',
        timers: { peerTimeoutMs: PEER_TIMEOUT_MS },
      }),
    );
    const d = spawn('nsenter', [`--net=${nsPath}`, join(ROOT, 'dist', 'afsteerd'), 'run', '--config', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(d);
    let dlog = '';
    d.stderr!.on('data', (c) => (dlog = (dlog + c).slice(-3000)));
    await sleep(1500);
    if (d.exitCode !== null) throw new Error(`afsteerd exited: ${dlog}`);
    const lg = spawn(
      'nsenter',
      [
        `--net=${nsPath}`,
        process.execPath,
        join(ROOT, 'scripts', 'run-ts.mjs'),
        join(ROOT, 'test', 'bench', 'loadgen.ts'),
        keyFile,
        String(n),
        String(Math.round(n / 10)),
        '127.0.0.1',
        'fd77::1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOADGEN_ANNOUNCE_MS: String(PEER_TIMEOUT_MS / 4) } },
    );
    children.push(lg);
    let last: Record<string, number> | undefined;
    let lgErr = '';
    lg.stderr!.on('data', (c) => (lgErr = (lgErr + c).slice(-3000)));
    lg.stdout!.on('data', (c: Buffer) => {
      const lines = c.toString().trim().split('\n');
      try {
        last = JSON.parse(lines.at(-1)!);
      } catch {
        // partial line
      }
    });
    const t0 = Date.now();
    while (!last && Date.now() - t0 < 60_000) await sleep(200);
    if (!last) throw new Error(`load generator did not start: ${lgErr}`);
    await sleep(warmupMs);
    const s0 = { ...last };
    const c0 = cpuTicks(d.pid!);
    const u0 = cpuSplit(d.pid!);
    const w0 = Date.now();
    await sleep(measureS * 1000);
    const c1 = cpuTicks(d.pid!);
    const u1 = cpuSplit(d.pid!);
    const w1 = Date.now();
    const s1 = { ...last! };
    const secs = (w1 - w0) / 1000;
    const scrape: number[] = [];
    let known = 0;
    for (let k = 0; k < 7; k++) {
      let out: string;
      try {
        out = execFileSync(
          'nsenter',
          [
            `--net=${nsPath}`,
            'curl',
            '-s',
            '-o',
            join(dir, 'm.txt'),
            '-w',
            '%{time_total}',
            '--max-time',
            '10',
            'http://127.0.0.1:9617/metrics',
          ],
          { encoding: 'utf8', timeout: 15_000 },
        );
      } catch {
        out = 'Infinity';
      }
      scrape.push(Number(out) * 1000);
      if (existsSync(join(dir, 'm.txt')))
        known = Math.max(known, Number(/^afsteer_peers (\d+)/m.exec(readFileSync(join(dir, 'm.txt'), 'utf8'))?.[1] ?? 0));
    }
    scrape.sort((a, b) => a - b);
    const sentProbes = Math.round(n / 10) * 2 * 50 + (n - Math.round(n / 10)) * 2;
    const replies = (s1.probeReplies! - s0.probeReplies!) / secs;
    return {
      peers: n,
      known,
      cpu: ((c1 - c0) / CLK_TCK / secs) * 100,
      cpuSystem: ((u1.system - u0.system) / CLK_TCK / secs) * 100,
      rss: rssMb(d.pid!),
      inBps: (s1.txBytes! - s0.txBytes!) / secs,
      outBps: (s1.rxBytes! - s0.rxBytes!) / secs,
      scrapeMs: scrape[3]!,
      lossPct: Math.max(0, 100 * (1 - replies / sentProbes)),
      metrics: existsSync(join(dir, 'm.txt')) ? readFileSync(join(dir, 'm.txt'), 'utf8') : '',
    };
  } finally {
    for (const c of children.reverse()) {
      c.kill('SIGTERM');
      await Promise.race([new Promise((r) => c.once('exit', r)), sleep(3000)]);
      c.kill('SIGKILL');
    }
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } catch {
      // already gone
    }
    rmSync(pinDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
