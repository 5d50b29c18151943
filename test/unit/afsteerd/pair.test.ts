// Unit tests of pair.ts: leader election, combined metrics, the leader's step, the agreed preference and the sending wire.
import { describe, expect, it } from 'vitest';
import {
  agreedPreference,
  combinedMetrics,
  isLeader,
  newPair,
  type PairState,
  type PeerView,
  pairKey,
  preferenceOf,
  sendingWire,
  stepSelection,
  wireOf,
} from '../../../src/negotiator/pairs/pair';
import {
  DEFAULT_POLICY_PARAMS,
  evaluate,
  initialSelection,
  type PairMetrics,
  type Preference,
} from '../../../src/negotiator/pairs/selection';
import type { FamilyMetrics } from '../../../src/negotiator/protocol/messages';
import type { Policy } from '../../../src/policy/schema';
import { type Rng, rng, seedFrom } from '../../support/prng';

const PRM = DEFAULT_POLICY_PARAMS;
const LAT: Policy = { criterion: 'lowest-latency' };
const FRESH = 5000;
const m = (latency_ms: number, packet_loss = 0, jitter_ms = 0, blackhole = false, samples = 1_000_000): FamilyMetrics => ({
  latency_ms,
  jitter_ms,
  packet_loss,
  blackhole,
  samples,
});
const BH = m(0, 1, 0, true);

function pair(o: {
  leader: boolean;
  local?: string;
  remote?: string;
  policy?: Policy;
  peer?: Partial<PeerView>;
  current?: Preference;
}): PairState {
  const p = newPair(
    {
      localCnf: o.local ?? 'ns/a',
      remoteCnf: o.remote ?? 'ns/b',
      peerNode: 'node-b',
      ifindex: 7,
      remote: { ipv4: '10.0.1.2', ipv6: 'fd00::1:2' },
      policy: o.policy ?? LAT,
      leader: o.leader,
    },
    0,
  );
  if (o.current !== undefined) p.selection = initialSelection(o.current);
  if (o.peer) p.peer = { preferred: null, round: 0, epoch: 1n, decap: true, active: true, metrics: {}, policy: LAT, at: 0, ...o.peer };
  return p;
}

function randomId(r: Rng): string {
  const chars = 'abAB09._/-';
  let s = r.pick(['a', 'B', '0', 'z']);
  for (let i = r.int(0, 6); i > 0; i--) s += r.pick([...chars]);
  return s;
}

describe('isLeader', () => {
  it('the CNF id that sorts first (byte order) leads; equal ids: the node name decides', () => {
    expect(isLeader('ns/a', 'ns/b', 'n2', 'n1')).toBe(true);
    expect(isLeader('ns/b', 'ns/a', 'n1', 'n2')).toBe(false);
    expect(isLeader('B', 'a', 'x', 'y')).toBe(true); // 0x42 < 0x61, not locale order
    expect(isLeader('ns-a', 'ns/a', 'x', 'y')).toBe(true); // '-' 0x2d < '/' 0x2f
    expect(isLeader('ns/a', 'ns/a0', 'z', 'a')).toBe(true); // a prefix sorts first
    expect(isLeader('same', 'same', 'node-a', 'node-b')).toBe(true);
    expect(isLeader('same', 'same', 'node-b', 'node-a')).toBe(false);
  });

  it('is antisymmetric and deterministic (random ids and node names)', () => {
    const seed = seedFrom(0x1ead_0001);
    const r = rng(seed);
    for (let i = 0; i < 20_000; i++) {
      const a = randomId(r),
        b = r.next() < 0.2 ? a : randomId(r);
      const n1 = randomId(r),
        n2 = r.next() < 0.1 ? n1 : randomId(r);
      const x = isLeader(a, b, n1, n2),
        y = isLeader(b, a, n2, n1);
      expect(isLeader(a, b, n1, n2)).toBe(x);
      if (a === b && n1 === n2)
        expect([x, y], `seed ${seed}`).toEqual([false, false]); // the same end twice: nobody
      else expect(x !== y, `seed ${seed}: ${a} ${b} ${n1} ${n2}`).toBe(true);
    }
  });
});

describe('combinedMetrics', () => {
  it('worst of both per family and field; blackhole if either end sees one', () => {
    const mine: PairMetrics = { IPv4: m(10, 0.01, 3, false, 200), IPv6: m(5, 0.2, 1, false, 120) };
    const peer: PairMetrics = { IPv4: m(12, 0, 2, false, 150), IPv6: m(4, 0.1, 9, true, 200) };
    // Samples: the fewer of the two (the weaker evidence).
    expect(combinedMetrics(mine, peer)).toEqual({ IPv4: m(12, 0.01, 3, false, 150), IPv6: m(5, 0.2, 9, true, 120) });
    expect(combinedMetrics(peer, mine)).toEqual(combinedMetrics(mine, peer));
  });

  it("uses the peer only when given; a family measured by one end only takes that end's values", () => {
    const mine: PairMetrics = { IPv4: m(10) };
    expect(combinedMetrics(mine, undefined)).toEqual({ IPv4: m(10) });
    expect(combinedMetrics(mine, {})).toEqual({ IPv4: m(10) });
    expect(combinedMetrics(mine, { IPv6: m(3) })).toEqual({ IPv4: m(10), IPv6: m(3) });
    expect(combinedMetrics({}, undefined)).toEqual({});
    expect(Object.keys(combinedMetrics({}, {}))).toEqual([]);
  });

  it('does not modify its inputs', () => {
    const mine: PairMetrics = { IPv4: m(10) },
      peer: PairMetrics = { IPv4: m(20, 0.5, 1, true) };
    const copy = JSON.stringify([mine, peer]);
    combinedMetrics(mine, peer);
    expect(JSON.stringify([mine, peer])).toBe(copy);
  });
});

describe('stepSelection', () => {
  it('a follower keeps its selection (the same state back)', () => {
    const p = pair({ leader: false });
    expect(stepSelection(p, { IPv4: m(50), IPv6: m(1) }, 100, FRESH, PRM)).toBe(p);
  });

  it('the leader decides on the worst of both ends while the peer is fresh, and counts its decisions', () => {
    // Mine: IPv6 far better. Peer: IPv6 dark → combined IPv6 dark → native moves to IPv4 at once.
    let p = pair({ leader: true, peer: { metrics: { IPv4: m(30), IPv6: BH }, at: 0 } });
    p = stepSelection(p, { IPv4: m(30), IPv6: m(1) }, 100, FRESH, PRM);
    expect(p.selection.current).toBe('IPv4');
    expect(p.round).toBe(1);
    expect(agreedPreference(p)).toBe('IPv4');
    // No change: no new round.
    const q = stepSelection(p, { IPv4: m(30), IPv6: m(1) }, 200, FRESH, PRM);
    expect(q.round).toBe(1);
  });

  it("a stale peer view is ignored (only this end's metrics)", () => {
    let p = pair({ leader: true, peer: { metrics: { IPv4: m(30), IPv6: BH }, at: 0 } });
    for (const t of [FRESH + 1, FRESH + 101, FRESH + 201]) p = stepSelection(p, { IPv4: m(30), IPv6: m(1) }, t, FRESH, PRM);
    expect(p.selection.current).toBe('IPv6'); // three wins on this end's metrics alone
    expect(p.round).toBe(1);
    // Exactly at freshMs the peer still counts.
    const f = stepSelection(
      pair({ leader: true, peer: { metrics: { IPv4: m(30), IPv6: BH }, at: 0 } }),
      { IPv4: m(30), IPv6: m(1) },
      FRESH,
      FRESH,
      PRM,
    );
    expect(f.selection.current).toBe('IPv4');
  });
});

describe('agreedPreference', () => {
  it('leader: its selection; follower: what the leader last said, native before that', () => {
    expect(agreedPreference(pair({ leader: true, current: 'IPv6', peer: { preferred: 'IPv4' } }))).toBe('IPv6');
    expect(agreedPreference(pair({ leader: false, current: 'IPv6', peer: { preferred: 'IPv4' } }))).toBe('IPv4');
    expect(agreedPreference(pair({ leader: false, current: 'IPv6' }))).toBeNull();
    expect(agreedPreference(pair({ leader: false, peer: { preferred: null } }))).toBeNull();
  });
});

describe('sendingWire', () => {
  const fine: PairMetrics = { IPv4: m(10), IPv6: m(10) };

  it('native while the peer is silent or has not confirmed decapsulation', () => {
    for (const leader of [true, false]) {
      const base = { leader, current: 'IPv6' as Preference };
      expect(sendingWire(pair({ ...base, peer: { preferred: 'IPv6', decap: true } }), fine, false)).toEqual({
        wire: 'native',
        reason: 'peer silent',
      });
      expect(sendingWire(pair({ ...base, peer: { preferred: 'IPv6', decap: false } }), fine, true).wire).toBe('native');
      expect(sendingWire(pair(base), fine, true)).toEqual({ wire: 'native', reason: 'peer has not confirmed decapsulation' });
      // Even with a blackhole, nothing is encapsulated toward a peer that would not decapsulate.
      expect(sendingWire(pair({ ...base, peer: { preferred: 'IPv6', decap: false } }), { IPv4: m(10), IPv6: BH }, true).wire).toBe(
        'native',
      );
    }
  });

  it("leader: its own selection; follower: the peer's preferred family", () => {
    expect(sendingWire(pair({ leader: true, current: 'IPv6', peer: { preferred: 'IPv4' } }), fine, true).wire).toBe('ipv6');
    expect(sendingWire(pair({ leader: true, current: null, peer: { preferred: 'IPv4' } }), fine, true).wire).toBe('native');
    const f = sendingWire(pair({ leader: false, current: 'IPv6', peer: { preferred: 'IPv4' } }), fine, true);
    expect(f).toEqual({ wire: 'ipv4', reason: 'peer node-b chose IPv4' });
    expect(sendingWire(pair({ leader: false, current: 'IPv6', peer: { preferred: null } }), fine, true).wire).toBe('native');
  });

  it('an own blackhole moves the sending direction off the family at once when the other is alive', () => {
    for (const leader of [true, false]) {
      // Agreed IPv4, this end sees IPv4 dark → ipv6.
      const a = sendingWire(pair({ leader, current: 'IPv4', peer: { preferred: 'IPv4' } }), { IPv4: BH, IPv6: m(10) }, true);
      expect(a).toEqual({ wire: 'ipv6', reason: 'blackhole on IPv4 (own sending direction)' });
      // Agreed native (uses both): either family dark → the other.
      expect(sendingWire(pair({ leader, current: null, peer: { preferred: null } }), { IPv4: BH, IPv6: m(10) }, true).wire).toBe('ipv6');
      expect(sendingWire(pair({ leader, current: null, peer: { preferred: null } }), { IPv4: m(10), IPv6: BH }, true).wire).toBe('ipv4');
      // The unused family dark: no change.
      expect(sendingWire(pair({ leader, current: 'IPv6', peer: { preferred: 'IPv6' } }), { IPv4: BH, IPv6: m(10) }, true).wire).toBe(
        'ipv6',
      );
      // The other family dark too, or unmeasured: stay.
      expect(sendingWire(pair({ leader, current: 'IPv4', peer: { preferred: 'IPv4' } }), { IPv4: BH, IPv6: BH }, true).wire).toBe('ipv4');
      expect(sendingWire(pair({ leader, current: 'IPv4', peer: { preferred: 'IPv4' } }), { IPv4: BH }, true).wire).toBe('ipv4');
      expect(sendingWire(pair({ leader, current: null, peer: { preferred: null } }), { IPv4: BH, IPv6: BH }, true).wire).toBe('native');
    }
  });
});

describe('both ends agree', () => {
  it('wire/preference helpers are inverse', () => {
    for (const p of [null, 'IPv4', 'IPv6'] as Preference[]) expect(preferenceOf(wireOf(p))).toBe(p);
    expect(pairKey('ns/a', 'ns/b')).toBe('ns/a|ns/b');
  });

  it('whichever end leads, the same inputs give the same preference (combined metrics are symmetric)', () => {
    const seed = seedFrom(0xa9ee_0001);
    const r = rng(seed);
    const rm = (): FamilyMetrics | undefined =>
      r.next() < 0.05 ? undefined : r.next() < 0.05 ? BH : m(r.int(1, 60), r.int(0, 10) / 100, r.int(0, 20));
    for (const policy of [LAT, { criterion: 'lowest-loss' }, { criterion: 'weighted' }] as Policy[]) {
      let sa = initialSelection(),
        sb = initialSelection();
      for (let t = 0; t < 200_000; t += 100) {
        const mA: PairMetrics = { IPv4: rm(), IPv6: rm() },
          mB: PairMetrics = { IPv4: rm(), IPv6: rm() };
        for (const x of [mA, mB]) for (const k of ['IPv4', 'IPv6'] as const) if (!x[k]) delete x[k];
        sa = evaluate(sa, combinedMetrics(mA, mB), policy, t, PRM);
        sb = evaluate(sb, combinedMetrics(mB, mA), policy, t, PRM);
        expect(sb, `seed ${seed} t ${t}`).toEqual(sa);
      }
    }
  });

  it("two simulated ends: the follower adopts the leader's preference and both send on the same wire", () => {
    const seed = seedFrom(0xa9ee_0002);
    const r = rng(seed);
    // A (ns/a) leads the pair with B (ns/b).
    let a = pair({ leader: isLeader('ns/a', 'ns/b', 'node-a', 'node-b'), local: 'ns/a', remote: 'ns/b' });
    let b = pair({ leader: isLeader('ns/b', 'ns/a', 'node-b', 'node-a'), local: 'ns/b', remote: 'ns/a' });
    expect([a.leader, b.leader]).toEqual([true, false]);
    let changes = 0;
    let v4 = 10,
      v6 = 10;
    for (let t = 0; t < 120_000; t += 100) {
      // A slowly drifting path: both ends measure the same, without blackholes.
      if (r.next() < 0.02) [v4, v6] = [r.int(1, 40), r.int(1, 40)];
      const mt: PairMetrics = { IPv4: m(v4), IPv6: m(v6) };
      const before = a.round;
      a = stepSelection(
        {
          ...a,
          peer: {
            preferred: agreedPreference(b),
            round: b.round,
            epoch: 1n,
            decap: true,
            active: true,
            metrics: mt,
            policy: b.policy,
            at: t,
          },
        },
        mt,
        t,
        FRESH,
        PRM,
      );
      if (a.round !== before) changes++;
      b = stepSelection(
        {
          ...b,
          peer: {
            preferred: agreedPreference(a),
            round: a.round,
            epoch: 1n,
            decap: true,
            active: true,
            metrics: mt,
            policy: a.policy,
            at: t,
          },
        },
        mt,
        t,
        FRESH,
        PRM,
      );
      expect(agreedPreference(b)).toBe(agreedPreference(a));
      expect(sendingWire(b, mt, true).wire).toBe(sendingWire(a, mt, true).wire);
    }
    expect(changes).toBeGreaterThan(2); // the simulation did exercise decisions
  });
});
