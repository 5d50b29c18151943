/**
 * The steering writer's rules over in-memory maps (no root): two writers interleaved — afsteerd's
 * held-open one and one per operation as `afsteer steer` opens — never reuse each other's
 * counter index, clear each other's bloom bits or lose each other's pairs; and without the
 * generation check they would (the check can fail).
 */
import { describe, expect, it } from 'vitest';
import { lowestFree, SteeringWriter } from '../../../src/bpf/steering-writer';
import type { WriterLock } from '../../../src/bpf/writer-lock';
import { PairConntrack } from '../../../src/net/conntrack';
import type { ConntrackSocket } from '../../../src/net/ctnetlink';
import { addMemoryEndpoint, MemoryLock, memoryMaps } from '../../support/memory-maps';
import { interleaveWriters } from '../../support/steering-interleave';

function setup(lock: () => WriterLock) {
  const maps = memoryMaps();
  const ifindexes = [11, 12, 13];
  for (const [n, i] of ifindexes.entries()) addMemoryEndpoint(maps, i, { ipv4: `10.244.0.${i}`, ipv6: `fd00:244::${i}` }, n);
  return {
    held: new SteeringWriter(maps, lock()),
    openOneShot: () => new SteeringWriter(maps, lock()),
    openMaps: () => ({ maps, close: () => {} }),
    ifindexes,
  };
}

describe('SteeringWriter, two writers on one node', () => {
  it("4,000 interleaved operations keep both writers' pairs, counter indexes and bloom bits", { timeout: 60_000 }, () => {
    const state = { gen: 0n, held: false };
    const r = interleaveWriters(
      setup(() => new MemoryLock(state)),
      4000,
      5,
    );
    expect(r.maxPairs).toBeGreaterThan(20);
    // The held writer re-read its index after the other's changes (and only then).
    expect(r.resyncsForOthers).toBeGreaterThan(100);
  });

  it('without the generation (a lock that never says another wrote), the run fails: the check has teeth', () => {
    const blind: WriterLock = { hold: (fn) => fn(false), close: () => {} };
    expect(() =>
      interleaveWriters(
        setup(() => blind),
        4000,
      ),
    ).toThrow(/counter index|gone|bloom|routes/);
  });

  it('a reader beside the held writer (a listing, afsteer show) does not make it re-read its index; a writer still does', () => {
    const state = { gen: 0n, held: false };
    const s = setup(() => new MemoryLock(state));
    s.held.registerRemote({ ipv4: '10.77.0.1', ipv6: 'fd00:77::1' });
    s.held.setWire(11, '10.77.0.1', 'ipv6', 0);
    for (let i = 0; i < 5; i++) {
      const reader = s.openOneShot();
      expect(reader.listPairs().map((p) => p.wire)).toEqual(['ipv6']);
      reader.close();
    }
    s.held.setWire(11, '10.77.0.1', 'ipv4', 1);
    expect(s.held.resyncsForOthers).toBe(0);
    expect(s.held.refresh()).toBe(false);
    const other = s.openOneShot();
    other.setWire(12, '10.77.0.1', 'ipv6', 0);
    other.close();
    expect(s.held.refresh()).toBe(true);
    expect(s.held.getPair(12, '10.77.0.1')).toMatchObject({ wire: 'ipv6' });
  });

  it('refuses what the rules refuse, with codes', () => {
    const s = setup(() => new MemoryLock());
    const w = s.held;
    expect(() => w.registerRemote({ ipv4: '10.244.0.11', ipv6: 'fd00:77::1' })).toThrow(expect.objectContaining({ code: 'not-remote' }));
    w.registerRemote({ ipv4: '10.77.0.1', ipv6: 'fd00:77::1' });
    expect(() => w.registerRemote({ ipv4: '10.77.0.1', ipv6: 'fd00:77::2' })).toThrow(expect.objectContaining({ code: 'address-taken' }));
    expect(() => w.registerRemote({ ipv4: 'fd00::1', ipv6: '10.0.0.1' })).toThrow(expect.objectContaining({ code: 'bad-remote' }));
    expect(() => w.setWire(99, '10.77.0.1', 'ipv6', 0)).toThrow(expect.objectContaining({ code: 'no-endpoint' }));
    expect(() => w.setWire(11, '10.77.0.9', 'ipv6', 0)).toThrow(expect.objectContaining({ code: 'not-remote' }));
    w.setWire(11, '10.77.0.1', 'ipv6', 0);
    expect(w.getPair(11, '10.77.0.1')).toMatchObject({ wire: 'ipv6', pair: 0 });
    expect(w.clear(11, '10.77.0.1')).toBe(true);
    expect(w.clear(11, '10.77.0.1')).toBe(false);
    expect(lowestFree(new Set([0, 1, 3]))).toBe(2);
  });

  it('marks the conntrack entries of every pair written in one turn of the event loop together, after the turn (close() at once); a write that changes nothing marks nothing', async () => {
    const dumps: { family: number; tuples: string[] }[] = [];
    const socket = {
      dump: (family: number, _proto: number, tuples?: { src: string; dst: string }[]) => {
        dumps.push({ family, tuples: (tuples ?? []).map((t) => `${t.src}>${t.dst}`).sort() });
        return [];
      },
      setTcpFlags: () => 'set',
      close: () => {},
    } as unknown as ConntrackSocket;
    const ct = new PairConntrack(socket);
    const maps = memoryMaps();
    for (const [n, i] of [11, 12].entries()) addMemoryEndpoint(maps, i, { ipv4: `10.244.0.${i}`, ipv6: `fd00:244::${i}` }, n);
    const w = new SteeringWriter(maps, new MemoryLock(), ct);
    w.registerRemote({ ipv4: '10.77.0.1', ipv6: 'fd00:77::1' });
    w.setWire(11, '10.77.0.1', 'ipv6', 0);
    w.setWire(12, '10.77.0.1', 'ipv6', 0);
    // Both routes are written; no conntrack walk yet in this turn.
    expect(w.getPair(12, '10.77.0.1')).toMatchObject({ wire: 'ipv6' });
    expect(dumps).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(ct.stats.markings).toBe(1);
    expect(dumps).toEqual([
      { family: 4, tuples: ['10.244.0.11>10.77.0.1', '10.244.0.12>10.77.0.1', '10.77.0.1>10.244.0.11', '10.77.0.1>10.244.0.12'] },
      { family: 6, tuples: ['fd00:244::11>fd00:77::1', 'fd00:244::12>fd00:77::1', 'fd00:77::1>fd00:244::11', 'fd00:77::1>fd00:244::12'] },
    ]);
    w.setWire(11, '10.77.0.1', 'ipv6', 0);
    await new Promise((r) => setImmediate(r));
    expect(ct.stats.markings).toBe(1);
    w.setWire(11, '10.77.0.1', 'native', 1);
    w.close();
    expect(ct.stats.markings).toBe(2);
    expect(dumps).toHaveLength(4);
  });
});
