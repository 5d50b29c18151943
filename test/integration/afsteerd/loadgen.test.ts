/**
 * The scale benchmark's load generator against a real afsteerd (test/bench/scale-run.ts, 5
 * simulated peers for a few seconds): the daemon accepts its announcements and probes (every peer
 * known, no datagram dropped), its echo probes come back, and its kernel reflector answers the
 * peers' echoes, so the benchmark's figures measure the real receive path. No speed target here (those are in the benchmark).
 */
import { describe, expect, it } from 'vitest';
import { runScale } from '../../bench/scale-run';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('scale load generator against a real afsteerd');

describe.skipIf(!IS_ROOT)('scale load generator against a real afsteerd', () => {
  it('a real afsteerd accepts every message of 5 simulated peers and answers their probes', async () => {
    const r = await runScale(5, 2, 2000);
    expect(r.known).toBe(5);
    const rx = (type: string) =>
      Number(new RegExp(`^afsteer_control_datagrams_received_total\\{type="${type}"\\} (\\d+)`, 'm').exec(r.metrics)?.[1] ?? 0);
    // Each simulated peer's first announcement over both families (they refresh every 7.5 s).
    expect(rx('announce')).toBeGreaterThanOrEqual(10);
    // Echo probes both ways: the daemon's come back from the simulated peers' reflectors; theirs
    // are answered by the daemon's kernel reflector (lossPct below), never by its receive path.
    expect(rx('echo')).toBeGreaterThan(5);
    expect(rx('probe')).toBe(0);
    const drops = [...r.metrics.matchAll(/^afsteer_control_datagrams_dropped_total\{reason="([^"]+)"\} (\d+)/gm)].filter(
      (m) => m[2] !== '0',
    );
    expect(drops).toEqual([]);
    expect(r.lossPct).toBeLessThan(5);
  }, 90_000);
});
