/**
 * The scale benchmark's load generator against a real afsteerd (test/bench/scale-run.ts, 5
 * simulated peers for a few seconds): the daemon accepts its announcements and probes (every peer
 * known, no datagram dropped) and reflects its probes, so the benchmark's figures measure the
 * real receive path. No speed target here (those are in the benchmark).
 */
import { describe, expect, it } from 'vitest';
import { IS_ROOT, announceSkip } from '../support/world';
import { runScale } from '../bench/scale-run';

announceSkip('scale load generator against a real afsteerd');

describe.skipIf(!IS_ROOT)('scale load generator against a real afsteerd', () => {
  it('a real afsteerd accepts every message of 5 simulated peers and answers their probes', async () => {
    const r = await runScale(5, 2, 2000);
    expect(r.known).toBe(5);
    const rx = (type: string) => Number(new RegExp(`^afsteer_control_datagrams_received_total\\{type="${type}"\\} (\\d+)`, 'm').exec(r.metrics)?.[1] ?? 0);
    expect(rx('announce')).toBeGreaterThan(10);
    expect(rx('probe')).toBeGreaterThan(10);
    expect(rx('probeReply')).toBeGreaterThan(5);
    const drops = [...r.metrics.matchAll(/^afsteer_control_datagrams_dropped_total\{reason="([^"]+)"\} (\d+)/gm)].filter((m) => m[2] !== '0');
    expect(drops).toEqual([]);
    expect(r.lossPct).toBeLessThan(5);
  }, 90_000);
});
