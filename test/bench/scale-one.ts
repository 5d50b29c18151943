/**
 * One size of the scale benchmark alone, for development and profiling (root):
 * `node scripts/run-ts.mjs test/bench/scale-one.ts PEERS [FAILOVER_TRIALS] [MEASURE_S]` prints the
 * row as JSON. BENCH_SCALE_PROFILE=DIR: node A's afsteerd profiled over the measurement (see
 * scale-run.ts); BENCH_SCALE_DAEMON='{"probe":{…}}': more afsteerd config (top-level keys replace
 * the benchmark's); BENCH_SCALE_NO_TRAFFIC=1: the active pairs carry no traffic;
 * BENCH_SCALE_ACTIVE_EVERY=N: every Nth peer has a pair (0: none).
 */
import { runScale } from './scale-run';

const [peers, trials, measureS] = process.argv.slice(2).map(Number);
const r = await runScale({
  peers: peers ?? 1000,
  failoverTrials: trials ?? 0,
  measureS: measureS || undefined,
  daemonConfig: JSON.parse(process.env.BENCH_SCALE_DAEMON ?? '{}'),
  pairTraffic: !process.env.BENCH_SCALE_NO_TRAFFIC,
  ...(process.env.BENCH_SCALE_ACTIVE_EVERY ? { activeEvery: Number(process.env.BENCH_SCALE_ACTIVE_EVERY) } : {}),
});
const { metrics: _, ...row } = r;
console.log(JSON.stringify(row));
