/**
 * npm run bench, part 4: afsteerd at scale (test/bench/scale-run.ts), printed as a table with its
 * baselines from the same run and PASS/FAIL per target.
 *
 * Per size (BENCH_SCALE_SIZES, default 100, 1,000, 5,000 simulated peers of 10 pods, every tenth
 * with an active pair with node A's pods): A's CPU, RSS, control bytes/s, probes/s, /metrics scrape
 * and the failover of a real pod pair under that load (BENCH_SCALE_FAILOVER_TRIALS, default 10).
 * Baselines: the daemon with no simulated peer (N = 0) and Node's bare UDP path at the probe rate
 * A measured (udp-floor.ts). Then the churn run at 1,000 peers (BENCH_SCALE_CHURN_MIN minutes,
 * default 10; 0 skips it). Targets: at 1,000 peers ≤ 10% of a core, ≤ 150 MB RSS, scrape p95
 * ≤ 100 ms, failover p95 ≤ 200 ms; at 5,000 not saturated and failover ≤ 200 ms; under churn no
 * pair lost and no unbounded growth.
 */
import { quantile, runScale, type ScaleRow } from './scale-run';
import { udpFloor } from './udp-floor';

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '100,1000,5000').split(',').map(Number);
const TRIALS = Number(process.env.BENCH_SCALE_FAILOVER_TRIALS ?? 10);
const CHURN_MIN = Number(process.env.BENCH_SCALE_CHURN_MIN ?? 10);
const REPEAT = Number(process.env.BENCH_SCALE_REPEAT ?? 1);

let fail = false;
const target = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (!ok) fail = true;
};
const f1 = (x: number) => x.toFixed(1);
const kib = (x: number) => (x / 1024).toFixed(1);

/** One line of the table. */
function line(r: ScaleRow): string {
  const fo = r.failover;
  const fov = fo
    ? `; failover maps switched median ${quantile(fo.switchedMs, 0.5).toFixed(0)} ms, p95 ${quantile(fo.switchedMs, 0.95).toFixed(0)} ms, TCP stall p95 ${quantile(fo.stallMs, 0.95).toFixed(0)} ms, intact ${fo.intact}/${fo.switchedMs.length}, A at ${f1(fo.cpu)}% during the trials`
    : '';
  return (
    `  ${String(r.peers).padStart(5)} peers (${r.known} known, ${r.pairs} pairs): daemon ${f1(r.cpu)}% of a core (user ${f1(r.cpuUser)}, system ${f1(r.cpuSystem)}), RSS ${r.rss.toFixed(0)} MB; ` +
    `load generator ${f1(r.genCpu)}% (${r.processes} processes), machine ${f1(r.machineBusy)}% busy of 2 cores, load ${r.load[0].toFixed(2)}→${r.load[1].toFixed(2)}; ` +
    `control in ${kib(r.inBps)} KiB/s, out ${kib(r.outBps)} KiB/s; probes out ${r.probesOut.toFixed(0)}/s, returns in ${r.probesIn.toFixed(0)}/s (paths: ${r.paths.demand} demand, ${r.paths.fast} fast, ${r.paths.idle} idle); ` +
    `/metrics median ${f1(r.scrapeMedianMs)} ms, p95 ${f1(r.scrapeP95Ms)} ms${fov}`
  );
}

console.log('afsteerd scale: node A against simulated peers of 10 pods, every tenth with an active pair with A (test/bench/scale-run.ts)');
const base = await runScale({ peers: 0, failoverTrials: 0 });
console.log(`  baseline, no simulated peer:\n${line(base)}`);
const rows: ScaleRow[] = [];
for (const n of SIZES) {
  for (let k = 0; k < REPEAT; k++) {
    const r = await runScale({ peers: n, failoverTrials: TRIALS });
    rows.push(r);
    console.log(line(r));
  }
}
// The floor beside the CPU figures: Node's bare UDP path at the probe rate A measured.
const floorRates = [...new Set(rows.map((r) => Math.round(r.probesOut / 100) * 100).filter((x) => x > 0))];
for (const rate of floorRates) {
  const f = await udpFloor(rate);
  const at = rows.filter((r) => Math.round(r.probesOut / 100) * 100 === rate);
  console.log(
    `  floor (bare Node UDP, no daemon logic) at ${rate} probes/s sent and returned: ${f1(f.cpuPct)}% of a core (${f1(f.perProbeUs)} µs a probe); the daemon at ${at.map((r) => `${r.peers} peers: ${f1(r.cpu / Math.max(0.1, f.cpuPct))}×`).join(', ')} the floor, ${at.map((r) => f1(r.cpu / Math.max(0.1, base.cpu))).join(', ')}× the daemon alone`,
  );
}
const at = (n: number) => rows.filter((r) => r.peers === n);
for (const r of at(1000)) {
  target(r.known >= 1001 && r.pairs >= 100, `1,000 peers known (${r.known - 1}) and 100 pairs held (${r.pairs})`);
  target(r.cpu <= 10, `CPU at 1,000 peers with 100 active ≤ 10% of a core (${f1(r.cpu)}%, load ${r.load[0].toFixed(2)})`);
  target(r.rss <= 150, `RSS at 1,000 peers ≤ 150 MB (${r.rss.toFixed(0)} MB)`);
  target(r.scrapeP95Ms <= 100, `/metrics scrape p95 at 1,000 peers ≤ 100 ms (${f1(r.scrapeP95Ms)} ms)`);
  if (r.failover)
    target(
      quantile(r.failover.switchedMs, 0.95) <= 200 && r.failover.intact === r.failover.switchedMs.length,
      `failover at 1,000 peers: maps switched p95 ≤ 200 ms (${quantile(r.failover.switchedMs, 0.95).toFixed(0)} ms), streams intact`,
    );
}
for (const r of at(5000)) {
  target(r.known >= 5001 && r.cpu < 90, `5,000 peers known (${r.known - 1}) and the daemon not saturated (${f1(r.cpu)}% of a core)`);
  if (r.failover)
    target(
      quantile(r.failover.switchedMs, 0.95) <= 200 && r.failover.intact === r.failover.switchedMs.length,
      `failover at 5,000 peers: maps switched p95 ≤ 200 ms (${quantile(r.failover.switchedMs, 0.95).toFixed(0)} ms), streams intact`,
    );
}
if (CHURN_MIN > 0) {
  const r = await runScale({ peers: 1000, failoverTrials: 0, churnMinutes: CHURN_MIN });
  console.log(`  churn at 1,000 peers (1% restarting a minute, 10 pod changes a second), measured at its start:\n${line(r)}`);
  const c = r.churn!;
  console.log(
    `  churn over ${c.minutes} min: ${c.restarts} restarts, ${c.podChanges} pod changes; start → half-way → end: RSS ${c.start.rss.toFixed(0)} → ${c.half.rss.toFixed(0)} → ${c.end.rss.toFixed(0)} MB, pairs ${c.start.pairs} → ${c.half.pairs} → ${c.end.pairs}, peers ${c.start.peers} → ${c.end.peers}, remotes in the maps ${c.start.remotes} → ${c.half.remotes} → ${c.end.remotes}, routes ${c.start.routes} → ${c.half.routes} → ${c.end.routes}; pairs with simulated peers dropped: ${c.pairsDropped}`,
  );
  target(
    c.pairsDropped === 0 && c.end.pairs >= c.start.pairs,
    `churn: no pair lost (${c.pairsDropped} dropped, ${c.start.pairs} → ${c.end.pairs})`,
  );
  // Removed pods stay registered for the retention (remoteRetentionMs): the maps grow to a plateau in the first half, not after it.
  target(
    c.end.rss <= c.half.rss * 1.15 && c.end.remotes <= c.half.remotes * 1.05 && c.end.routes <= c.half.routes * 1.05,
    `churn: no unbounded growth in the second half (RSS ${c.half.rss.toFixed(0)} → ${c.end.rss.toFixed(0)} MB, remotes ${c.half.remotes} → ${c.end.remotes}, routes ${c.half.routes} → ${c.end.routes})`,
  );
}
process.exitCode = fail ? 1 : 0;
