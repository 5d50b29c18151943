/** The page's summary at cluster size (src/negotiator/ops/summary.ts): worst peers first, the filter, and rows bounded while totals cover every peer. */
import { describe, expect, it } from 'vitest';
import type { DaemonParts } from '../../../src/negotiator/ops/daemon-view';
import { History } from '../../../src/negotiator/ops/history';
import type { Snapshot } from '../../../src/negotiator/ops/snapshot';
import { buildSummary, matches, peerState, type SummaryRow, summaryRows, worstFirst } from '../../../src/negotiator/ops/summary';

const row = (peer: string, over: Partial<SummaryRow> = {}): SummaryRow => ({
  peer,
  alive: true,
  active: false,
  pairs: { native: 0, ipv4: 0, ipv6: 0 },
  families: { IPv4: { state: 'up', rttMs: 0.3, loss: 0 }, IPv6: { state: 'up', rttMs: 0.3, loss: 0 } },
  switches: 0,
  ...over,
});

describe('worst peers first', () => {
  it('blackholed, then silent, then degraded; then by loss, recent switches, RTT; then by name', () => {
    const rows = [
      row('a-fine'),
      row('b-slow', { families: { IPv4: { state: 'up', rttMs: 9, loss: 0 } } }),
      row('c-switchy', { switches: 4 }),
      row('d-lossy', { families: { IPv4: { state: 'up', rttMs: 0.3, loss: 0.02 } } }),
      row('e-degraded', { families: { IPv4: { state: 'degraded', rttMs: 0.3, loss: 0.2 } } }),
      row('f-silent', { alive: false }),
      row('z-blackhole', { families: { IPv4: { state: 'up', loss: 0 }, IPv6: { state: 'blackhole', loss: 1 } } }),
    ];
    expect([...rows].sort(worstFirst).map((r) => r.peer)).toEqual([
      'z-blackhole',
      'f-silent',
      'e-degraded',
      'd-lossy',
      'c-switchy',
      'b-slow',
      'a-fine',
    ]);
    expect(peerState(rows[6]!)).toBe('blackhole');
    expect(peerState(rows[5]!)).toBe('silent');
  });

  it('the filter: a name substring (any case), a state', () => {
    expect(matches(row('sim-42'), { q: 'SIM-4', limit: 5 })).toBe(true);
    expect(matches(row('sim-42'), { q: 'sim-5', limit: 5 })).toBe(false);
    expect(matches(row('sim-42'), { state: 'up', limit: 5 })).toBe(true);
    expect(matches(row('sim-42'), { state: 'blackhole', limit: 5 })).toBe(false);
  });
});

describe('buildSummary over 1,000 peers', () => {
  const peers = Array.from({ length: 1000 }, (_, i) => `sim-${i + 1}`);
  const snap: Snapshot = {
    at: 0,
    peers: peers.map((node, i) => ({
      node,
      alive: i !== 10,
      active: i % 10 === 0,
      pairs: { native: i % 10 === 0 ? 1 : 0, ipv4: 0, ipv6: 0 },
      pinned: { honoured: 0, overridden: 0 },
      families: {
        IPv4: {
          state: i === 500 ? 'blackhole' : 'up',
          metrics: { latency_ms: 0.2, jitter_ms: 0, packet_loss: i === 500 ? 1 : 0, blackhole: i === 500, samples: 200 },
        },
        IPv6: { state: 'up', metrics: { latency_ms: 0.2, jitter_ms: 0, packet_loss: 0, blackhole: false, samples: 200 } },
      },
    })),
  };
  const parts = { cfg: { nodeName: 'node-a' }, peers: new Map(), pairs: { peerHasPairs: () => false } } as unknown as DaemonParts;
  const h = new History();
  h.addSwitch(Date.now() - 60_000, { at: '', pair: 'x|y', peer: 'sim-7', from: 'native', to: 'ipv6', reason: 'blackhole on IPv4' });
  h.addSwitch(Date.now() - 20 * 60_000, { at: '', pair: 'x|y', peer: 'sim-7', from: 'ipv6', to: 'native', reason: 'lowest-latency: …' });

  it('totals cover every peer, rows are bounded, the blackholed peer is first', () => {
    const s = buildSummary(parts, snap, h, Date.now(), { limit: 50 });
    expect(s.totals.peers).toBe(1000);
    expect(s.totals.byState).toEqual({ up: 998, degraded: 0, blackhole: 1, probing: 0, silent: 1 });
    expect(s.totals.pairs.native).toBe(100);
    // The switch of 20 minutes ago is out of the 15-minute window.
    expect(s.totals.switches.total).toBe(1);
    expect(s.totals.switches.byReason.blackhole).toBe(1);
    expect(s.peers).toHaveLength(50);
    expect(s.peers.map((r) => r.peer).slice(0, 3)).toEqual(['sim-501', 'sim-11', 'sim-7']);
    expect(JSON.stringify(s).length).toBeLessThan(20_000);
  });

  it('a filter by state or name: matched counts every match, rows the first of them', () => {
    expect(buildSummary(parts, snap, h, Date.now(), { limit: 50, state: 'silent' }).peers.map((r) => r.peer)).toEqual(['sim-11']);
    const byName = buildSummary(parts, snap, h, Date.now(), { limit: 5, q: 'sim-9' });
    expect(byName.matched).toBe(111);
    expect(byName.peers).toHaveLength(5);
  });

  it('rows carry the RTT only when the window holds one', () => {
    const rows = summaryRows(
      {
        at: 0,
        peers: [
          {
            ...snap.peers[0]!,
            families: {
              IPv4: { state: 'blackhole', metrics: { latency_ms: 0, jitter_ms: 0, packet_loss: 1, blackhole: true, samples: 3 } },
            },
          },
        ],
      },
      () => 0,
    );
    expect(rows[0]!.families.IPv4).toEqual({ state: 'blackhole', loss: 1 });
  });
});
