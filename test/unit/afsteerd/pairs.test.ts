/** The pair table (src/negotiator/pairs/pair-table.ts): its per-peer index stays equal to a scan of all pairs. */
import { describe, expect, it } from 'vitest';
import { newPair, type PairState, pairKey } from '../../../src/negotiator/pairs/pair';
import { PairTable } from '../../../src/negotiator/pairs/pair-table';

const mk = (l: string, r: string, peer: string): PairState =>
  newPair(
    {
      localCnf: l,
      remoteCnf: r,
      peerNode: peer,
      ifindex: 1,
      remote: { ipv4: '10.0.0.1', ipv6: 'fd00::1' },
      policy: { criterion: 'lowest-latency' },
      leader: l < r,
    },
    0,
  );

describe('PairTable', () => {
  it('per-peer index equals a full scan after random sets, replacements and deletes', () => {
    const t = new PairTable();
    const model = new Map<string, PairState>();
    let seed = 1;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    for (let i = 0; i < 5000; i++) {
      const k = pairKey(`l${rnd(8)}`, `r${rnd(8)}`);
      if (rnd(3) === 0) {
        t.delete(k);
        model.delete(k);
      } else {
        const [l, r] = k.split('|') as [string, string];
        const p = mk(l, r, `peer${rnd(4)}`);
        t.set(k, p);
        model.set(k, p);
      }
    }
    expect(t.size).toBe(model.size);
    for (let n = 0; n < 4; n++) {
      const node = `peer${n}`;
      const scan = [...model]
        .filter(([, p]) => p.peerNode === node)
        .map(([k]) => k)
        .sort();
      expect(
        t
          .ofPeer(node)
          .map(([k]) => k)
          .sort(),
      ).toEqual(scan);
      expect(t.peerHasPairs(node)).toBe(scan.length > 0);
    }
  });
});
