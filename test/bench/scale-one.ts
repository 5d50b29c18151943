/**
 * One size of the scale benchmark alone, for development and profiling (root):
 * `node scripts/run-ts.mjs test/bench/scale-one.ts PEERS [FAILOVER_TRIALS] [MEASURE_S]` prints the
 * row as JSON (BENCH_SCALE_PROFILE=DIR: node A's afsteerd runs under node --cpu-prof, see scale-run.ts).
 */
import { runScale } from './scale-run';

const [peers, trials, measureS] = process.argv.slice(2).map(Number);
const r = await runScale({ peers: peers ?? 1000, failoverTrials: trials ?? 0, measureS: measureS || undefined });
const { metrics: _, ...row } = r;
console.log(JSON.stringify(row));
