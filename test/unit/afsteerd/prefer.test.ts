/** The pin rule (prefer.ts), pure: which family a pinned pair uses, as a table; a pin's round and reason; the store's persistence and refusals. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newPair } from '../../../src/negotiator/pairs/pair';
import { applyPin, PINS_FILE, PinStore, pinnedFamily, stepPinned } from '../../../src/negotiator/pairs/pins';
import { DEFAULT_POLICY_PARAMS } from '../../../src/negotiator/pairs/selection';
import type { FamilyMetrics } from '../../../src/negotiator/protocol/messages';
import { PairMessageSchema } from '../../../src/negotiator/protocol/messages';

const up: FamilyMetrics = { latency_ms: 5, jitter_ms: 1, packet_loss: 0, blackhole: false, samples: 200 };
const dead: FamilyMetrics = { ...up, packet_loss: 0.1, blackhole: true };

describe('pinnedFamily', () => {
  it.each([
    ['IPv4', { IPv4: up, IPv6: up }, 'IPv4', true],
    ['IPv4', { IPv4: dead, IPv6: up }, 'IPv6', false],
    ['IPv6', { IPv4: up, IPv6: dead }, 'IPv4', false],
    // Both dead, or nothing known about the other: stay on the pin (leaving helps nothing).
    ['IPv4', { IPv4: dead, IPv6: dead }, 'IPv4', true],
    ['IPv4', { IPv4: dead }, 'IPv4', true],
    ['IPv6', {}, 'IPv6', true],
  ] as const)('pin %s with %j → %s (honoured %s)', (pin, metrics, family, honoured) => {
    expect(pinnedFamily(pin, metrics)).toEqual({ family, honoured });
  });
});

const base = {
  localCnf: 'a/x',
  remoteCnf: 'b/y',
  peerNode: 'node-b',
  ifindex: 3,
  remote: { ipv4: '10.0.0.2', ipv6: 'fd00::2' },
  policy: { criterion: 'lowest-latency' as const },
  leader: true,
};

describe('applyPin / stepPinned', () => {
  it('a leader moves to the pin in a new round with a pinned reason; nothing changes when already there', () => {
    const p = newPair(base, 0);
    const q = applyPin(p, { family: 'IPv4', source: 'node' }, { IPv4: up, IPv6: up }, 100);
    expect(q.selection.current).toBe('IPv4');
    expect(q.round).toBe(1);
    expect(q.selection.lastChange!.reason).toMatch(/^pinned IPv4/);
    expect(q.pin).toEqual({ family: 'IPv4', source: 'node', honoured: true });
    const r = applyPin(q, { family: 'IPv4', source: 'node' }, { IPv4: up, IPv6: up }, 200);
    expect(r.round).toBe(1);
  });

  it('a blackholed pin is left with a blackhole reason, and the pin is marked not honoured', () => {
    const q = applyPin(newPair(base, 0, 'ipv4'), { family: 'IPv4', source: 'cnf' }, { IPv4: dead, IPv6: up }, 100);
    expect(q.selection.current).toBe('IPv6');
    expect(q.selection.lastChange!.reason).toMatch(/blackhole on pinned IPv4/);
    expect(q.pin!.honoured).toBe(false);
  });

  it('a follower records the pin without deciding; no pin clears the record and the policy decides again', () => {
    const f = newPair({ ...base, leader: false }, 0);
    const q = stepPinned(f, { family: 'IPv6', source: 'node' }, { IPv4: up, IPv6: up }, 0, 5000, DEFAULT_POLICY_PARAMS);
    expect(q.selection.current).toBeNull();
    expect(q.pin).toMatchObject({ family: 'IPv6', honoured: false });
    const r = stepPinned(q, undefined, { IPv4: up, IPv6: up }, 0, 5000, DEFAULT_POLICY_PARAMS);
    expect(r.pin).toBeUndefined();
  });

  it('the message field is optional: a pair message without it still parses, one with a bad family does not', () => {
    const m = {
      source_CNF_ID: 'a/x',
      destination_CNF_ID: 'b/y',
      supported_families: ['IPv4', 'IPv6'],
      performance_metrics: {},
      preferred_family: null,
      policy: { criterion: 'lowest-latency' },
      decap: true,
      round: 0,
      active: true,
    };
    expect(PairMessageSchema.safeParse(m).success).toBe(true);
    expect(PairMessageSchema.safeParse({ ...m, pinned: 'IPv6' }).success).toBe(true);
    expect(PairMessageSchema.safeParse({ ...m, pinned: 'IPv5' }).success).toBe(false);
  });
});

describe('PinStore', () => {
  it('persists pins in the stateDir and reads them back; auto removes; a bad entry is reported and dropped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'afsteer-pinstore-'));
    try {
      const s = new PinStore(dir);
      s.set('node', 'node-b', 'IPv4');
      s.set('cnf', 'ns/pod', 'IPv6');
      expect(new PinStore(dir).list()).toEqual({ nodes: { 'node-b': 'IPv4' }, cnfs: { 'ns/pod': 'IPv6' } });
      expect(new PinStore(dir).ownPin({ localCnf: 'ns/pod', remoteCnf: 'x', peerNode: 'node-b' })).toEqual({
        family: 'IPv6',
        source: 'cnf',
      });
      s.set('cnf', 'ns/pod', 'auto');
      expect(new PinStore(dir).ownPin({ localCnf: 'ns/pod', remoteCnf: 'x', peerNode: 'node-b' })).toEqual({
        family: 'IPv4',
        source: 'node',
      });
      expect(JSON.parse(readFileSync(join(dir, PINS_FILE), 'utf8')).version).toBe(1);
      writeFileSync(join(dir, PINS_FILE), '{"version":1,"nodes":{"x":"IPv9"},"cnfs":{}}');
      const errors: Error[] = [];
      expect(new PinStore(dir, (e) => errors.push(e)).list()).toEqual({ nodes: {}, cnfs: {} });
      expect(errors[0]!.message).toMatch(/dropping the node pin "x" .*family must be/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
