/**
 * Protected pairs benchmark (root; run through scripts/run-ts.mjs, part of `npm run bench`): three
 * pod pairs between two simulated nodes with daemons, one `always`, one `on-suspicion`, one
 * unprotected, in the same run. Each trial streams a paced TCP stream and 10,000 numbered UDP
 * datagrams/s over one pair and blackholes the family it uses; trials alternate families and
 * pairs. Reports p95 TCP stall, UDP lost and duplicated as the applications see them, and for
 * on-suspicion the datagrams sent before its first duplication (its loss bound). Then the
 * steered throughput of the `always` pair with both families healthy against the unprotected
 * (native) pair. Beside the stall target, its floor: the always and unprotected pairs' streams in
 * the same trials with no blackhole (the longest gap the paced stream shows anyway). Targets: always — stall p95 ≤ 30 ms, 0 lost, 0 duplicated; on-suspicion —
 * stall p95 ≤ 120 ms, lost ≤ datagrams sent before the first suspicion; 0 duplicated.
 * Environment: BENCH_PROTECT_TRIALS (20 per mode).
 */
import { listPairs } from '../../src/bpf/steering';
import type { Family } from '../../src/net/family';
import { type CrossingResult, crossBlackhole } from '../support/protect-streams';
import { type SimPod, TwoNodes, waitFor } from '../support/two-nodes';

const TRIALS = Number(process.env.BENCH_PROTECT_TRIALS ?? 20);
const RATE = 10_000;
const misses: string[] = [];
const target = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (!ok) misses.push(what);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
};

type Mode = 'always' | 'on-suspicion' | 'off';
/** A trial's row: a mode across a blackhole, or (floor) the same pair's streams with no blackhole at all. */
type Row = Mode | 'always-floor' | 'off-floor';

async function main(): Promise<void> {
  const t = new TwoNodes();
  try {
    await t.up();
    const pairs = {} as Record<Mode, [SimPod, SimPod]>;
    let i = 0;
    for (const m of ['always', 'on-suspicion', 'off'] as Mode[]) {
      pairs[m] = [
        await t.addPod(t.a, `a${i}`, m === 'off' ? undefined : `IgnoreUnknown=1;AFSTEER_PROTECT=${m}`),
        await t.addPod(t.b, `b${i}`),
      ];
      i++;
    }
    const cfg = { protection: { budgetBytesPerSecond: 200_000_000 }, selection: { holdDownMs: 1000, intervals: 3 } };
    const da = await t.startDaemon(t.a, cfg);
    const db = await t.startDaemon(t.b, cfg);
    for (const [a, b] of Object.values(pairs)) await t.inPod(a, ['ping', '-c', '2', '-i', '0.1', '-W', '1', b.ipv4]);
    const local = async (mode: Mode) => ((await t.status(da)).pairs as any[]).find((p) => p.local === pairs[mode][0].id);
    await waitFor(
      async () => (await local('always'))?.protection.duplicating === true && (await local('on-suspicion'))?.protection.written === 'dedup',
      10_000,
      'protection set up',
    );

    const results: Record<Row, CrossingResult[]> = { always: [], 'on-suspicion': [], off: [], 'always-floor': [], 'off-floor': [] };
    const suspicionBound: number[] = [],
      suspicionBoundEarly: number[] = [];
    let port = 7400;
    for (let n = 0; n < TRIALS; n++) {
      for (const rowName of ['always', 'on-suspicion', 'off', 'always-floor', 'off-floor'] as Row[]) {
        const mode = rowName.replace('-floor', '') as Mode,
          floor = rowName !== mode;
        const fam: Family = (n + (mode === 'on-suspicion' ? 1 : 0)) % 2 ? 6 : 4;
        const [a, b] = pairs[mode];
        await waitFor(
          async () => {
            const fs = (await t.status(da)).peers[0]?.families;
            return fs?.IPv4?.state === 'up' && fs?.IPv6?.state === 'up';
          },
          20_000,
          'both families up',
        );
        await sleep(1500);
        // on-suspicion starts each trial healthy: not still duplicating from the last one (a switch back after the hold-down extends it by settleMs).
        if (mode === 'on-suspicion')
          await waitFor(async () => (await local('on-suspicion'))?.protection.duplicating === false, 20_000, 'on-suspicion settled');
        // on-suspicion: from the blackhole on, watch A's route for the first duplication (every 5 ms).
        let firstDupMs: number | undefined,
          nftMs = 0,
          nftStart = 0,
          watching = false,
          watch = Promise.resolve();
        const onBlackholeStart = () => (nftStart = performance.now());
        const onBlackhole = () => {
          if (mode !== 'on-suspicion') return;
          const t0 = performance.now();
          nftMs = t0 - nftStart;
          watching = true;
          watch = (async () => {
            while (watching && firstDupMs === undefined) {
              if (listPairs(t.a.pinDir).find((p) => p.ifindex === a.hostIfindex)?.protect) firstDupMs = performance.now() - t0;
              await sleep(5);
            }
          })();
        };
        const r = await crossBlackhole(t, a, b, fam, {
          port: (port += 2),
          rate: RATE,
          durationMs: 2500,
          blackholeAtMs: 1000,
          blackhole: !floor,
          onBlackholeStart,
          onBlackhole,
        });
        watching = false;
        await watch;
        // The bound counts from when nft returned (the blackhole is in place by then, perhaps a little earlier: nftMs is when it may have begun).
        if (mode === 'on-suspicion') {
          suspicionBound.push(firstDupMs === undefined ? Infinity : Math.ceil((firstDupMs * RATE) / 1000));
          suspicionBoundEarly.push(firstDupMs === undefined ? Infinity : Math.ceil(((firstDupMs + nftMs) * RATE) / 1000));
        }
        results[rowName].push(r);
        console.log(
          `  trial ${n + 1} ${rowName}${floor ? ' (no blackhole)' : ''} IPv${fam}: TCP stall ${r.tcp.stallMs} ms${r.tcp.intact ? '' : ' (BROKEN)'}, UDP lost ${r.udp.lost} dup ${r.udp.duplicated} longest gap ${r.udp.stallMs} ms${mode === 'on-suspicion' ? `, first duplication ${firstDupMs?.toFixed(0) ?? 'never'} ms after the blackhole` : ''}`,
        );
      }
    }

    // Throughput with both families healthy: the always pair (both copies) against the unprotected pair (native).
    const tput = async (mode: Mode) => {
      const [a, b] = pairs[mode];
      const p = (port += 2);
      const { done } = await t.server(b, b.ipv4, p);
      const c = await t.client(a, b.ipv4, p, ['--bytes', String(400 << 20)]);
      await done;
      return Number(c.bytes) / (Number(c.ms) / 1000) / 1e6;
    };
    await sleep(2000);
    const tp: Record<string, number[]> = { always: [], off: [] };
    for (let k = 0; k < 3; k++) for (const m of ['off', 'always'] as Mode[]) tp[m]!.push(await tput(m));
    da.child.kill('SIGTERM');
    db.child.kill('SIGTERM');

    console.log(
      `\nprotected pairs: paced TCP (8 KB every 5 ms) + ${RATE} UDP datagrams/s, the family in use blackholed, ${TRIALS} trials per pair alternating IPv4/IPv6, same run`,
    );
    const row = (mode: Row) => {
      const rs = results[mode];
      const stall = quantile(
        rs.map((r) => r.tcp.stallMs),
        0.95,
      );
      const lost = quantile(
          rs.map((r) => r.udp.lost),
          0.95,
        ),
        dup = Math.max(...rs.map((r) => r.udp.duplicated));
      console.log(
        `  ${mode.padEnd(13)}${mode.endsWith('-floor') ? ' (no blackhole)' : ''} TCP stall p95 ${String(stall).padStart(4)} ms (median ${quantile(
          rs.map((r) => r.tcp.stallMs),
          0.5,
        )})  UDP lost p95 ${String(lost).padStart(5)}  duplicated max ${dup}  intact ${rs.filter((r) => r.tcp.intact).length}/${rs.length}`,
      );
      return { stall, lost, dup, intact: rs.every((r) => r.tcp.intact) };
    };
    const al = row('always'),
      os = row('on-suspicion'),
      off = row('off');
    // The floor beside the stall target: the longest gap the same streams show with no blackhole.
    const alFloor = row('always-floor'),
      offFloor = row('off-floor');
    const overBound = results['on-suspicion'].filter((r, k) => r.udp.lost > suspicionBound[k]!).length;
    const overEarly = results['on-suspicion'].filter((r, k) => r.udp.lost > suspicionBoundEarly[k]!).length;
    console.log(
      `  on-suspicion: datagrams sent before the first duplication, p95 ${quantile(suspicionBound, 0.95)} (median ${quantile(suspicionBound, 0.5)}), counted from nft's return; counted from its start (the earliest the blackhole can have begun) ${results['on-suspicion'].length - overEarly}/${results['on-suspicion'].length} trials lost no more`,
    );
    const med = (xs: number[]) => quantile(xs, 0.5);
    console.log(
      `  throughput, both families healthy, TCP 400 MiB: always ${med(tp.always!).toFixed(0)} MB/s vs unprotected native ${med(tp.off!).toFixed(0)} MB/s (${((med(tp.always!) / med(tp.off!)) * 100).toFixed(0)}%)`,
    );
    target(
      al.stall <= 30,
      `always: TCP stall p95 ≤ 30 ms (${al.stall} ms; unprotected ${off.stall} ms; floor with no blackhole: always ${alFloor.stall} ms, unprotected ${offFloor.stall} ms)`,
    );
    target(al.lost === 0 && al.dup === 0, `always: UDP 0 lost (p95 ${al.lost}) and 0 duplicated delivered (max ${al.dup})`);
    target(os.stall <= 120, `on-suspicion: TCP stall p95 ≤ 120 ms (${os.stall} ms)`);
    target(
      overBound === 0 && os.dup === 0,
      `on-suspicion: UDP lost ≤ datagrams sent before the first suspicion (${results['on-suspicion'].length - overBound}/${results['on-suspicion'].length} trials), 0 duplicated (max ${os.dup})`,
    );
    target(al.intact && os.intact && off.intact && alFloor.intact && offFloor.intact, 'every stream intact (sha256)');
  } finally {
    t.cleanup();
  }
}

if (process.getuid?.() !== 0) {
  console.log('protection bench: SKIPPED (needs root)');
  process.exit(0);
}
await main();
console.log(`\n${misses.length} target(s) missed`);
process.exit(misses.length ? 1 : 0);
