// Fuzz test of the receive path (decodeFrame → replay window → payload parsing, as Daemon.receive/dispatch): no exception, no forgery, no replay-state change on rejects.
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  type FrameTypeName,
  MAX_DATAGRAM,
  PROTOCOL_VERSION,
  type RejectReason,
} from '../../../src/negotiator/protocol/frame';
import { type Announce, AnnounceSchema, type Negotiate, NegotiateSchema, parsePayload } from '../../../src/negotiator/protocol/messages';
import { decodeProbe, encodeProbe } from '../../../src/negotiator/protocol/probe';
import { checkReplay, type ReplayState } from '../../../src/negotiator/protocol/replay';
import { type Rng, rng, seedFrom } from '../../support/prng';

const KEY = Buffer.from('6b65792d6f662d7468652d636c75737465722d666f722d66757a7a696e672121', 'hex');
const WRONG_KEY = Buffer.from('6b65792d6f662d7468652d636c75737465722d666f722d66757a7a696e672122', 'hex');
const SELF = 'node-a';
const SENDERS = ['node-b', 'node-c', 'n.d_e-1', 'x', 'N0'];
const DATAGRAMS = 120_000;

type Src = { family: 4 | 6 };
type Outcome = { accepted: true; node: string; type: FrameTypeName } | { accepted: false; reason: RejectReason | 'self' | 'unknown-peer' };

/** The daemon's receive path (Daemon.receive + dispatch), without the side effects beyond peers and the replay map. */
class Receiver {
  readonly replay = new Map<string, ReplayState>();
  readonly peers = new Set<string>();
  constructor(private readonly key: Buffer) {}

  receive(b: Buffer, src: Src): Outcome {
    const f = decodeFrame(this.key, b);
    if (typeof f === 'string') return { accepted: false, reason: f };
    if (f.node === SELF) return { accepted: false, reason: 'self' };
    const r = checkReplay(this.replay.get(f.node), f.epoch, f.seq);
    if (!r) return { accepted: false, reason: 'replay' };
    let ok: boolean | 'unknown-peer';
    switch (f.type) {
      case 'announce':
        ok = parsePayload(AnnounceSchema, f.payload) !== undefined;
        if (ok) this.peers.add(f.node);
        break;
      case 'negotiate':
        ok = parsePayload(NegotiateSchema, f.payload) === undefined ? false : this.peers.has(f.node) ? true : 'unknown-peer';
        break;
      case 'probe': {
        const p = decodeProbe(f.payload);
        ok = Boolean(p && p.family === src.family);
        break;
      }
      case 'probeReply': {
        const p = decodeProbe(f.payload);
        ok = !p || p.family !== src.family ? false : this.peers.has(f.node) ? true : 'unknown-peer';
        break;
      }
    }
    if (ok === false) return { accepted: false, reason: 'payload' };
    if (ok === 'unknown-peer') return { accepted: false, reason: 'unknown-peer' };
    this.replay.set(f.node, r);
    return { accepted: true, node: f.node, type: f.type };
  }

  snapshot(): string {
    return [...this.replay].map(([n, s]) => `${n}:${s.epoch}:${s.top}:${Buffer.from(s.seen).toString('base64')}`).join('|');
  }
}

interface Legit {
  bytes: Buffer;
  hex: string;
  family: 4 | 6;
  /** A well-formed payload (the frame is meant to be accepted once). */
  valid: boolean;
  type: FrameTypeName;
}

function announcePayload(r: Rng): Buffer {
  const a: Announce = {
    addresses: { ipv4: `192.0.2.${r.int(1, 254)}`, ipv6: `2001:db8::${r.int(1, 0xffff).toString(16)}` },
    port: r.int(1, 65535),
    supported_families: ['IPv4', 'IPv6'],
    capabilities: ['probe-v1'],
    gen: r.int(0, 1000),
    part: 0,
    parts: 1,
    endpoints: Array.from({ length: r.int(0, 5) }, (_, i) => ({ cnf: `ns/pod-${i}`, ipv4: `10.0.0.${i + 1}`, ipv6: `fd00::${i + 1}` })),
  };
  return Buffer.from(JSON.stringify(a));
}

function negotiatePayload(r: Rng): Buffer {
  const n: Negotiate = {
    to: 'node-a',
    pairs: Array.from({ length: r.int(1, 2) }, (_, i) => ({
      source_CNF_ID: `ns/src-${i}`,
      destination_CNF_ID: `ns/dst-${i}`,
      supported_families: ['IPv4', 'IPv6'],
      performance_metrics: {
        IPv4: {
          latency_ms: r.next() * 50,
          jitter_ms: r.next() * 5,
          packet_loss: r.next() / 10,
          blackhole: r.next() < 0.1,
          samples: r.int(0, 200),
        },
      },
      preferred_family: r.pick(['IPv4', 'IPv6', null] as const),
      policy: { criterion: 'lowest-latency' },
      decap: r.next() < 0.5,
      round: r.int(0, 100),
      active: r.next() < 0.5,
    })),
  };
  return Buffer.from(JSON.stringify(n));
}

/** A mutation of b (possibly the identity). */
function mutate(r: Rng, b: Buffer, other: Buffer): Buffer {
  const m = Buffer.from(b);
  switch (r.int(0, 8)) {
    case 0: {
      // bit flips
      for (let n = r.int(1, 8); n > 0 && m.length; n--) m[r.int(0, m.length - 1)]! ^= 1 << r.int(0, 7);
      return m;
    }
    case 1:
      return m.subarray(0, r.int(0, m.length)); // truncation
    case 2:
      return Buffer.concat([m, r.bytes(r.int(0, 64))]); // extension
    case 3: {
      // byte swaps
      for (let n = r.int(1, 4); n > 0 && m.length > 1; n--) {
        const i = r.int(0, m.length - 1),
          j = r.int(0, m.length - 1);
        [m[i], m[j]] = [m[j]!, m[i]!];
      }
      return m;
    }
    case 4: {
      // splice with another legit frame
      const i = r.int(0, m.length),
        j = r.int(0, other.length);
      return r.next() < 0.5 ? Buffer.concat([m.subarray(0, i), other.subarray(j)]) : Buffer.concat([other.subarray(0, j), m.subarray(i)]);
    }
    case 5: {
      // overwrite a run
      if (!m.length) return m;
      const i = r.int(0, m.length - 1);
      r.bytes(Math.min(r.int(1, 16), m.length - i)).copy(m, i);
      return m;
    }
    case 6: {
      // header field: a random byte in the first 21 bytes, MAC untouched
      if (m.length) m[r.int(0, Math.min(20, m.length - 1))] = r.int(0, 255);
      return m;
    }
    case 7: {
      // insert or delete bytes in the middle
      const i = r.int(0, m.length);
      return r.next() < 0.5
        ? Buffer.concat([m.subarray(0, i), r.bytes(r.int(1, 8)), m.subarray(i)])
        : Buffer.concat([m.subarray(0, i), m.subarray(Math.min(m.length, i + r.int(1, 8)))]);
    }
    default: {
      // the MAC or the payload of another frame with this header
      return Buffer.concat([m.subarray(0, Math.max(0, m.length - 32)), other.subarray(Math.max(0, other.length - 32))]);
    }
  }
}

describe('receive path fuzz', () => {
  it(`${DATAGRAMS} random and mutated datagrams: no exception, nothing forged accepted, replay state untouched by rejects`, () => {
    const seed = seedFrom(0xf022_0001);
    const r = rng(seed);
    const rx = new Receiver(KEY);
    const senders = SENDERS.map((node, i) => ({ node, epoch: 1_700_000_000_000n + BigInt(i), seq: 0n }));
    const legit = new Map<string, Legit>(); // hex → frame
    const pool: Legit[] = [];
    const acceptedOnce = new Set<string>();
    const stats = { accepted: 0, rejected: {} as Record<string, number>, legitDelivered: 0, mutationsIdentical: 0 };
    let delayed: Legit[] = [];

    const make = (valid = r.next() < 0.9, type?: FrameTypeName, sender = r.pick(senders)): Legit => {
      if (r.next() < 0.002) {
        // the sender rebooted
        sender.epoch += BigInt(r.int(1, 1_000_000));
        sender.seq = 0n;
      }
      sender.seq += BigInt(r.next() < 0.95 ? 1 : r.int(2, 6000));
      const t: FrameTypeName = type ?? r.pick(['announce', 'negotiate', 'probe', 'probeReply'] as const);
      const family: 4 | 6 = r.next() < 0.5 ? 4 : 6;
      let payload: Buffer;
      if (!valid) payload = r.next() < 0.5 ? r.bytes(r.int(0, 40)) : Buffer.from(JSON.stringify({ pairs: [], port: 'x' }));
      else if (t === 'announce') payload = announcePayload(r);
      else if (t === 'negotiate') payload = negotiatePayload(r);
      else
        payload = encodeProbe({
          family,
          active: r.next() < 0.5,
          id: r.int(0, 0xffffffff),
          t1: BigInt(r.int(0, 2 ** 40)),
          nonce: r.int(0, 0xffffffff),
        });
      const bytes = encodeFrame(KEY, { type: t, epoch: sender.epoch, seq: sender.seq, node: sender.node, payload });
      const l: Legit = { bytes, hex: bytes.toString('hex'), family, valid, type: t };
      legit.set(l.hex, l);
      if (pool.length < 512) pool.push(l);
      else pool[r.int(0, 511)] = l;
      return l;
    };

    let op = 0;
    let current: Buffer = Buffer.alloc(0);
    const deliver = (b: Buffer, src: Src): Outcome => {
      current = b;
      const before = rx.snapshot();
      const peersBefore = rx.peers.size;
      const out = rx.receive(b, src);
      if (out.accepted) {
        stats.accepted++;
        const hex = b.toString('hex');
        const l = legit.get(hex);
        if (!l) throw new Error(`forged datagram accepted: ${hex}`);
        if (acceptedOnce.has(hex)) throw new Error(`datagram accepted twice: ${hex}`);
        acceptedOnce.add(hex);
      } else {
        stats.rejected[out.reason] = (stats.rejected[out.reason] ?? 0) + 1;
        if (rx.snapshot() !== before) throw new Error(`replay state changed on a rejected datagram (${out.reason})`);
        if (rx.peers.size !== peersBefore) throw new Error('peer learnt from a rejected datagram');
      }
      return out;
    };

    try {
      // Every sender announces first (so negotiate / probe replies have a known peer).
      for (const s of senders) {
        const l = make(true, 'announce', s);
        expect(deliver(l.bytes, { family: l.family }).accepted).toBe(true);
      }
      for (op = 0; op < DATAGRAMS; op++) {
        const x = r.next();
        const src: Src = { family: r.next() < 0.5 ? 4 : 6 };
        if (x < 0.12) {
          deliver(r.bytes(r.int(0, 1500)), src); // random bytes
        } else if (x < 0.22) {
          // Random bytes behind a plausible header (reaches the MAC check).
          const b = r.bytes(r.int(54, MAX_DATAGRAM));
          b.write('AF', 0, 'ascii');
          b[2] = PROTOCOL_VERSION;
          b[3] = r.int(1, 4);
          b[20] = r.int(1, 12);
          b.write(r.pick(SENDERS).slice(0, b[20]), 21, 'ascii');
          deliver(b, src);
        } else if (x < 0.32) {
          // A fresh legit frame, delivered now (valid ones must be accepted) or later (reordered).
          const l = make();
          if (r.next() < 0.2) delayed.push(l);
          else {
            stats.legitDelivered++;
            const out = deliver(l.bytes, { family: l.family });
            expect(out.accepted, `legit ${l.type} valid=${l.valid}: ${JSON.stringify(out)}`).toBe(l.valid);
          }
        } else if (x < 0.36) {
          // Old legit frames again (replays) and reordered delayed ones.
          if (delayed.length && r.next() < 0.5) {
            const l = delayed.splice(r.int(0, delayed.length - 1), 1)[0]!;
            deliver(l.bytes, { family: l.family });
          } else if (pool.length) {
            const l = r.pick(pool);
            deliver(l.bytes, { family: r.next() < 0.9 ? l.family : src.family });
          }
          if (delayed.length > 64) delayed = delayed.slice(-32);
        } else {
          // Mutations of legit frames of every type.
          if (pool.length < 2) make();
          const a = r.pick(pool),
            b = r.pick(pool);
          const m = mutate(r, a.bytes, b.bytes);
          if (m.equals(a.bytes)) stats.mutationsIdentical++;
          deliver(m, { family: r.next() < 0.8 ? a.family : src.family });
        }
      }
    } catch (err) {
      console.error(
        `fuzz failed at op ${op} with seed ${seed} (AFSTEER_TEST_SEED=${seed} to reproduce); datagram ${current.toString('hex')}`,
      );
      throw err;
    }
    console.log(
      `fuzz (seed ${seed}): ${op} datagrams, ${stats.accepted} accepted (all legit, each once), ${stats.legitDelivered} fresh legit, ${stats.mutationsIdentical} identity mutations, rejected ${JSON.stringify(stats.rejected)}`,
    );
    expect(stats.rejected.mac).toBeGreaterThan(DATAGRAMS / 3);
    expect(stats.accepted).toBeGreaterThan(5000);
    expect(stats.rejected.replay).toBeGreaterThan(100);
    expect(stats.rejected.payload).toBeGreaterThan(100);
  }, 60_000);

  it('legit frames under a wrong key: none accepted, all rejected by the MAC', () => {
    const seed = seedFrom(0xf022_0002);
    const r = rng(seed);
    const rx = new Receiver(WRONG_KEY);
    let seq = 0n;
    for (let i = 0; i < 5000; i++) {
      const type = r.pick(['announce', 'negotiate', 'probe', 'probeReply'] as const);
      const family: 4 | 6 = r.next() < 0.5 ? 4 : 6;
      const payload =
        type === 'announce'
          ? announcePayload(r)
          : type === 'negotiate'
            ? negotiatePayload(r)
            : encodeProbe({ family, active: true, id: i, t1: 1n, nonce: 7 });
      const b = encodeFrame(KEY, { type, epoch: 1n, seq: ++seq, node: r.pick(SENDERS), payload });
      expect(rx.receive(b, { family }), `seed ${seed} #${i}`).toEqual({ accepted: false, reason: 'mac' });
    }
    expect(rx.replay.size).toBe(0);
    expect(rx.peers.size).toBe(0);
  });
});
