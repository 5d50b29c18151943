/** npm run bench, part 4: the scale table (test/bench/scale-run.ts) with PASS/FAIL. */
import { failoverAtScale } from './scale-failover';
import { type Row, runScale } from './scale-run';
import { udpFloor } from './udp-floor';

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10,100,1000').split(',').map(Number);
const FAILOVER_TRIALS = Number(process.env.BENCH_SCALE_FAILOVER_TRIALS ?? 10);
console.log('afsteerd scale: one daemon against simulated peers (10% probing it every 20 ms per family)');
const rows: Row[] = [];
for (const n of SIZES) {
  const r = await runScale(n);
  rows.push(r);
  console.log(
    `  ${String(n).padStart(5)} peers (${r.known} known): CPU ${r.cpu.toFixed(1)}% of a core (${r.cpuSystem.toFixed(1)}% in the kernel), RSS ${r.rss.toFixed(0)} MB, control in ${(r.inBps / 1024).toFixed(1)} KiB/s, out ${(r.outBps / 1024).toFixed(1)} KiB/s, /metrics median ${r.scrapeMs.toFixed(1)} ms, daemon's replies to the generator's probes lost ${r.lossPct.toFixed(1)}%`,
  );
}
const big = rows.find((r) => r.peers === 1000);
let fail = false;
const target = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (!ok) fail = true;
};
if (big) {
  target(big.known === 1000, `all 1,000 simulated peers known to the daemon (${big.known})`);
  target(big.cpu <= 10, `CPU at 1,000 peers ≤ 10% of a core (${big.cpu.toFixed(1)}%)`);
  target(big.rss <= 150, `RSS at 1,000 peers ≤ 150 MB (${big.rss.toFixed(0)} MB)`);
  target(big.scrapeMs <= 100, `/metrics scrape at 1,000 peers ≤ 100 ms (median ${big.scrapeMs.toFixed(1)} ms)`);
}
// The failover target with 999 other peers: an active pair with the real data plane (scale-failover.ts).
if (SIZES.includes(1000)) {
  const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;
  const f = await failoverAtScale(999, FAILOVER_TRIALS);
  console.log(
    `  failover with 999 other peers (${f.known} known to node A): maps switched median ${quantile(f.switchedMs, 0.5).toFixed(0)} ms, p95 ${quantile(f.switchedMs, 0.95).toFixed(0)} ms; TCP longest stall median ${quantile(f.stallMs, 0.5).toFixed(0)} ms, p95 ${quantile(f.stallMs, 0.95).toFixed(0)} ms; streams intact ${f.intact}/${f.switchedMs.length}; node A's afsteerd ${f.cpu.toFixed(1)}% of a core, RSS ${f.rss.toFixed(0)} MB over the trials`,
  );
  target(
    quantile(f.switchedMs, 0.95) <= 200 && f.intact === f.switchedMs.length,
    `failover with 999 other peers: maps switched p95 ≤ 200 ms (${quantile(f.switchedMs, 0.95).toFixed(0)} ms over ${f.switchedMs.length} trials), streams intact`,
  );
}
// The floor beside the CPU target: Node's UDP path alone at the probe rates of 1,000 idle peers and of 100 active ones.
for (const rate of [2000, 20000]) {
  const f = await udpFloor(rate);
  console.log(
    `  floor (bare Node UDP, no daemon logic): ${rate} probes/s sent and returned → ${f.cpuPct.toFixed(1)}% of a core (${f.perProbeUs.toFixed(1)} µs a probe)`,
  );
}
process.exitCode = fail ? 1 : 0;
