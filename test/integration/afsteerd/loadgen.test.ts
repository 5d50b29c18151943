/**
 * The scale benchmark's load generator against a real afsteerd (test/bench/scale-run.ts with 10
 * simulated peers for a few seconds): the daemon (node A, with its pods) accepts the peers'
 * announcements and negotiation (every peer known, the active peer's pair created, no datagram
 * dropped), its echo probes come back from the peers' kernel reflector, and the peers' echoes are
 * answered by its own kernel reflector, never by its receive path — so the benchmark's figures
 * measure the real paths. No speed target here (those are in the benchmark).
 */
import { describe, expect, it } from 'vitest';
import { metricSum, runScale } from '../../bench/scale-run';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('scale load generator against a real afsteerd');

describe.skipIf(!IS_ROOT)('scale load generator against a real afsteerd', () => {
  it('a real afsteerd accepts every message of 10 simulated peers, negotiates the active one’s pair and probes it', async () => {
    // Demand-style probing off (demand-probing.test.ts covers it): A probes the peer with a pair at its active rate.
    const r = await runScale({
      peers: 10,
      measureS: 2,
      warmupMs: 2000,
      pairTraffic: false,
      daemonConfig: { probe: { demandIntervalMs: 0 } },
    });
    // The 10 simulated peers and node B.
    expect(r.known).toBe(11);
    // sim-1 holds an active pair with one of A's pods, negotiated over the protocol: A created it.
    expect(r.pairs).toBeGreaterThanOrEqual(1);
    expect(metricSum(r.metrics, 'afsteer_pairs', { peer: 'sim-1' })).toBe(1);
    const rx = (type: string) => metricSum(r.metrics, 'afsteer_control_datagrams_received_total', { type });
    // Each simulated peer's first announcement over both families (they refresh every 7.5 s).
    expect(rx('announce')).toBeGreaterThanOrEqual(20);
    expect(rx('negotiate')).toBeGreaterThan(0);
    // A's echo probes come back from the peers' kernel reflector; theirs never reach A's receive path.
    expect(rx('echo')).toBeGreaterThan(10);
    expect(rx('probe')).toBe(0);
    // A probes the peer with a pair at its active rate (50/s per family), the others at 1/s.
    expect(r.probesOut).toBeGreaterThan(60);
    expect(r.paths).toMatchObject({ fast: 2, demand: 0 });
    const drops = [...r.metrics.matchAll(/^afsteer_control_datagrams_dropped_total\{reason="([^"]+)"\} (\d+)/gm)].filter(
      (m) => m[2] !== '0',
    );
    expect(drops).toEqual([]);
  }, 120_000);
});
