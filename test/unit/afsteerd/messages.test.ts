// Unit tests of protocol/messages.ts: strict zod/mini schemas of announcements and negotiation, parsePayload.
import { describe, expect, it } from 'vitest';
import {
  type Announce,
  AnnounceSchema,
  CnfIdSchema,
  type Negotiate,
  NegotiateSchema,
  type PairMessage,
  PairMessageSchema,
  parsePayload,
} from '../../../src/negotiator/protocol/messages';

const j = (x: unknown): Buffer => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x));

const announce = (): Announce => ({
  addresses: { ipv4: '192.0.2.1', ipv6: '2001:db8::1' },
  port: 4790,
  supported_families: ['IPv4', 'IPv6'],
  capabilities: ['encap-4in6', 'encap-6in4', 'probe-v1', 'negotiate-v1'],
  gen: 3,
  part: 0,
  parts: 1,
  endpoints: [{ cnf: 'ns-a/pod-1', ipv4: '10.0.0.5', ipv6: 'fd00::5' }],
});

const pair = (): PairMessage => ({
  source_CNF_ID: 'ns-a/pod-1',
  destination_CNF_ID: 'ns-b/pod-2',
  supported_families: ['IPv4', 'IPv6'],
  performance_metrics: {
    IPv4: { latency_ms: 1.5, jitter_ms: 0.2, packet_loss: 0, blackhole: false, samples: 200 },
    IPv6: { latency_ms: 2, jitter_ms: 0.1, packet_loss: 0.01, blackhole: false, samples: 0 },
  },
  preferred_family: 'IPv6',
  policy: { criterion: 'weighted', weights: { latency: 1, jitter: 2, loss: 3 } },
  decap: true,
  round: 4,
  active: true,
});

const negotiate = (): Negotiate => ({ to: 'node-b', pairs: [pair()] });

/** A deep copy of base with the value at path set (undefined: key removed). */
function withPath<T>(base: T, path: (string | number)[], value: unknown): unknown {
  const c = JSON.parse(JSON.stringify(base)) as Record<string | number, unknown>;
  let o = c;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return c;
}

describe('messages: valid payloads', () => {
  it('parses a valid announcement', () => {
    expect(parsePayload(AnnounceSchema, j(announce()))).toEqual(announce());
  });
  it('parses announcements with one address family, no endpoints, the last part', () => {
    const a = { ...announce(), addresses: { ipv6: '::1' }, supported_families: ['IPv6'], endpoints: [], part: 1023, parts: 1024 };
    expect(parsePayload(AnnounceSchema, j(a))).toEqual(a);
    expect(parsePayload(AnnounceSchema, j({ ...a, addresses: {} }))).toEqual({ ...a, addresses: {} });
  });
  it('parses a valid negotiation, with and without dropped, with native preference and no metrics', () => {
    expect(parsePayload(NegotiateSchema, j(negotiate()))).toEqual(negotiate());
    const m = {
      to: 'node-b',
      pairs: [{ ...pair(), preferred_family: null, performance_metrics: {}, policy: { criterion: 'lowest-loss' } }],
      dropped: ['a|b'],
    };
    expect(parsePayload(NegotiateSchema, j(m))).toEqual(m);
    expect(parsePayload(NegotiateSchema, j({ to: 'node-b', pairs: [], dropped: ['x|y'] }))).toEqual({
      to: 'node-b',
      pairs: [],
      dropped: ['x|y'],
    });
    // Without its receiver, or with a malformed one, it is refused.
    expect(parsePayload(NegotiateSchema, j({ pairs: [pair()] }))).toBeUndefined();
    expect(parsePayload(NegotiateSchema, j({ to: 'a b', pairs: [pair()] }))).toBeUndefined();
  });
  it('accepts exactly 32 pairs and 32 dropped entries', () => {
    const m = { to: 'node-b', pairs: Array.from({ length: 32 }, pair), dropped: Array.from({ length: 32 }, (_, i) => `a|b${i}`) };
    expect(parsePayload(NegotiateSchema, j(m))).toEqual(m);
  });
});

describe('messages: rejected payloads', () => {
  it('strict objects reject extra keys at every level', () => {
    const paths: (string | number)[][] = [['extra'], ['addresses', 'extra'], ['endpoints', 0, 'extra']];
    for (const p of paths) expect(parsePayload(AnnounceSchema, j(withPath(announce(), p, 1))), p.join('.')).toBeUndefined();
    const npaths: (string | number)[][] = [
      ['extra'],
      ['pairs', 0, 'extra'],
      ['pairs', 0, 'performance_metrics', 'IPv5'],
      ['pairs', 0, 'performance_metrics', 'IPv4', 'extra'],
      ['pairs', 0, 'policy', 'extra'],
      ['pairs', 0, 'policy', 'weights', 'extra'],
    ];
    for (const p of npaths) expect(parsePayload(NegotiateSchema, j(withPath(negotiate(), p, 1))), p.join('.')).toBeUndefined();
  });

  it('rejects missing required keys', () => {
    for (const k of ['addresses', 'port', 'supported_families', 'capabilities', 'gen', 'part', 'parts', 'endpoints']) {
      expect(parsePayload(AnnounceSchema, j(withPath(announce(), [k], undefined))), k).toBeUndefined();
    }
    for (const k of Object.keys(pair())) {
      expect(parsePayload(NegotiateSchema, j(withPath(negotiate(), ['pairs', 0, k], undefined))), k).toBeUndefined();
    }
  });

  it('rejects wrong types and out-of-range values', () => {
    const bad: [(string | number)[], unknown][] = [
      [['port'], '4790'],
      [['port'], 0],
      [['port'], 65536],
      [['port'], 1.5],
      [['port'], null],
      [['gen'], -1],
      [['gen'], 0.5],
      [['part'], 1024],
      [['parts'], 0],
      [['parts'], 1025],
      [['supported_families'], []],
      [['supported_families'], ['IPv4', 'IPv6', 'IPv4']],
      [['supported_families'], ['ipv4']],
      [['capabilities'], 'probe-v1'],
      [['capabilities'], ['x'.repeat(33)]],
      [['capabilities'], Array(17).fill('c')],
      [['endpoints'], Array(65).fill(announce().endpoints[0])],
      [['endpoints'], {}],
      [['addresses', 'ipv4'], '2001:db8::1'],
      [['addresses', 'ipv6'], '192.0.2.1'],
      [['addresses', 'ipv4'], '192.0.2.256'],
      [['addresses', 'ipv4'], '192.0.2.1 '],
      [['addresses', 'ipv6'], 7],
      [['addresses', 'ipv4'], '01.2.3.4'],
      [['endpoints', 0, 'ipv4'], 'fd00::5'],
      [['endpoints', 0, 'ipv6'], '10.0.0.5'],
      [['endpoints', 0, 'cnf'], ''],
    ];
    for (const [p, v] of bad)
      expect(parsePayload(AnnounceSchema, j(withPath(announce(), p, v))), `${p.join('.')}=${JSON.stringify(v)}`).toBeUndefined();
    const nbad: [(string | number)[], unknown][] = [
      [['pairs'], {}],
      [['pairs', 0], 'pair'],
      [['pairs', 0, 'round'], -1],
      [['pairs', 0, 'round'], 1.5],
      [['pairs', 0, 'round'], '4'],
      [['pairs', 0, 'decap'], 'true'],
      [['pairs', 0, 'active'], 1],
      [['pairs', 0, 'preferred_family'], 'IPv5'],
      [['pairs', 0, 'preferred_family'], 'native'],
      [['pairs', 0, 'policy', 'criterion'], 'fastest'],
      [['pairs', 0, 'policy', 'weights', 'loss'], -1],
      [['pairs', 0, 'policy', 'weights', 'latency'], 1001],
      [['pairs', 0, 'policy', 'weights'], { latency: 1 }],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'packet_loss'], 1.01],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'packet_loss'], -0.1],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'latency_ms'], -1],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'latency_ms'], 60001],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'jitter_ms'], '1'],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'blackhole'], 0],
      [['pairs', 0, 'performance_metrics', 'IPv6'], null],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'samples'], undefined],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'samples'], -1],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'samples'], 1.5],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'samples'], 1_000_001],
      [['pairs', 0, 'performance_metrics', 'IPv6', 'samples'], '200'],
      [['pairs', 0, 'supported_families'], []],
      [['dropped'], 'a|b'],
      [['dropped'], ['x'.repeat(521)]],
      [['dropped'], Array(33).fill('a|b')],
      [['dropped'], [1]],
    ];
    for (const [p, v] of nbad)
      expect(parsePayload(NegotiateSchema, j(withPath(negotiate(), p, v))), `${p.join('.')}=${JSON.stringify(v)}`).toBeUndefined();
  });

  it('rejects zone-scoped IPv6 addresses', () => {
    for (const v6 of ['fe80::1%eth0', 'fe80::1%1', 'fe80::1%25eth0']) {
      expect(parsePayload(AnnounceSchema, j(withPath(announce(), ['addresses', 'ipv6'], v6))), v6).toBeUndefined();
      expect(parsePayload(AnnounceSchema, j(withPath(announce(), ['endpoints', 0, 'ipv6'], v6))), v6).toBeUndefined();
    }
    // Without the zone it is fine.
    expect(parsePayload(AnnounceSchema, j(withPath(announce(), ['addresses', 'ipv6'], 'fe80::1')))).toBeDefined();
  });

  it('CNF ids: 1..253 characters, alphanumeric first, then [A-Za-z0-9._/-]', () => {
    for (const ok of ['a', 'ns/pod', 'kube-system/coredns-5d78c9869d-abcde', '0123abcdef', 'a.b_c-d/e', 'x'.repeat(253)]) {
      expect(CnfIdSchema.safeParse(ok).success, ok).toBe(true);
    }
    for (const bad of ['', '/ns/pod', '-a', '.a', '_a', 'a b', 'a|b', 'a\n', 'ns/pöd', 'x'.repeat(254), 'a:b', 'a\\b']) {
      expect(CnfIdSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(CnfIdSchema.safeParse(5).success).toBe(false);
    expect(parsePayload(NegotiateSchema, j(withPath(negotiate(), ['pairs', 0, 'source_CNF_ID'], 'a|b')))).toBeUndefined();
    expect(parsePayload(NegotiateSchema, j(withPath(negotiate(), ['pairs', 0, 'destination_CNF_ID'], '')))).toBeUndefined();
  });

  it('a negotiation must carry a pair or a dropped entry', () => {
    expect(parsePayload(NegotiateSchema, j({ pairs: [] }))).toBeUndefined();
    expect(parsePayload(NegotiateSchema, j({ pairs: [], dropped: [] }))).toBeUndefined();
    expect(parsePayload(NegotiateSchema, j({}))).toBeUndefined();
    expect(parsePayload(NegotiateSchema, j({ dropped: ['a|b'] }))).toBeUndefined(); // pairs is required
  });

  it('rejects more than 32 pairs', () => {
    expect(parsePayload(NegotiateSchema, j({ pairs: Array.from({ length: 33 }, pair) }))).toBeUndefined();
    expect(PairMessageSchema.safeParse(pair()).success).toBe(true);
  });

  it('non-JSON, non-objects, arrays and empty payloads → undefined', () => {
    const inputs: Buffer[] = [
      Buffer.alloc(0),
      j(''),
      j(' '),
      j('{'),
      j('{"pairs":[]'),
      j('nul'),
      j('undefined'),
      j("{'pairs':[]}"),
      j('null'),
      j('true'),
      j('42'),
      j('"str"'),
      j('[]'),
      j(`[${JSON.stringify(announce())}]`),
      j(`[${JSON.stringify(negotiate())}]`),
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.from([0xef, 0xbb, 0xbf, ...j(negotiate())]), // a BOM is not JSON
    ];
    for (const b of inputs) {
      expect(parsePayload(AnnounceSchema, b), b.toString('hex')).toBeUndefined();
      expect(parsePayload(NegotiateSchema, b), b.toString('hex')).toBeUndefined();
    }
  });

  it('__proto__ / constructor keys → undefined, and nothing is polluted', () => {
    const a = JSON.stringify(announce());
    const n = JSON.stringify(negotiate());
    const cases: [typeof AnnounceSchema | typeof NegotiateSchema, string][] = [
      [AnnounceSchema, `{"__proto__":{"polluted":1},${a.slice(1)}`],
      [AnnounceSchema, a.replace('"addresses":{', '"addresses":{"__proto__":{"ipv4":"1.2.3.4"},')],
      [AnnounceSchema, a.replace('{"cnf"', '{"__proto__":{"x":1},"cnf"')],
      [AnnounceSchema, `{"constructor":{"prototype":{"polluted":1}},${a.slice(1)}`],
      [NegotiateSchema, `{"__proto__":{"polluted":1},${n.slice(1)}`],
      [NegotiateSchema, n.replace('"performance_metrics":{', '"performance_metrics":{"__proto__":{"IPv4":{}},')],
      [NegotiateSchema, n.replace('"policy":{', '"policy":{"__proto__":{"weights":{}},')],
      [NegotiateSchema, n.replace('{"source_CNF_ID"', '{"__proto__":null,"source_CNF_ID"')],
    ];
    for (const [schema, text] of cases) {
      expect(() => JSON.parse(text), text).not.toThrow();
      expect(parsePayload(schema as typeof NegotiateSchema, j(text)), text).toBeUndefined();
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('huge, infinite and unsafe numbers → undefined', () => {
    const a: [(string | number)[], string][] = [
      [['port'], '1e400'],
      [['gen'], '1e400'],
      [['gen'], '9007199254740993'],
      [['gen'], '1e300'],
      [['part'], '-1e400'],
      [['parts'], '1e21'],
    ];
    for (const [p, lit] of a) {
      const text = JSON.stringify(withPath(announce(), p, '@@')).replace('"@@"', lit);
      expect(parsePayload(AnnounceSchema, j(text)), text).toBeUndefined();
    }
    const n: [(string | number)[], string][] = [
      [['pairs', 0, 'round'], '1e400'],
      [['pairs', 0, 'round'], '9007199254740993'],
      [['pairs', 0, 'round'], '1e300'],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'latency_ms'], '1e400'],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'jitter_ms'], '1e400'],
      [['pairs', 0, 'performance_metrics', 'IPv4', 'packet_loss'], '-1e400'],
      [['pairs', 0, 'policy', 'weights', 'jitter'], '1e400'],
    ];
    for (const [p, lit] of n) {
      const text = JSON.stringify(withPath(negotiate(), p, '@@')).replace('"@@"', lit);
      expect(parsePayload(NegotiateSchema, j(text)), text).toBeUndefined();
    }
  });

  it('the largest safe integer is still a valid counter', () => {
    const text = JSON.stringify(withPath(negotiate(), ['pairs', 0, 'round'], Number.MAX_SAFE_INTEGER));
    expect(parsePayload(NegotiateSchema, j(text))?.pairs[0]?.round).toBe(Number.MAX_SAFE_INTEGER);
  });
});
