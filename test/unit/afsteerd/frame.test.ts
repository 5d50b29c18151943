// Unit tests of protocol/frame.ts: the authenticated envelope (encode/decode, MAC, size limits, header checks).
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameType,
  type FrameTypeName,
  MAC_LEN,
  MAX_DATAGRAM,
  PROTOCOL_VERSION,
  payloadRoom,
} from '../../../src/negotiator/protocol/frame';
import { encodeProbe } from '../../../src/negotiator/protocol/probe';

const KEY = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
const OTHER_KEY = Buffer.from('ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
const TYPES = Object.keys(FrameType) as FrameTypeName[];

function frame(type: FrameTypeName, payload: Buffer, over: Partial<Frame> = {}): Frame {
  return { type, epoch: 1_700_000_000_000n, seq: 42n, node: 'node-a', payload, ...over };
}

/** A frame built byte by byte (any version, type, node bytes), MACed with key. */
function handFrame(o: {
  version?: number;
  type?: number;
  node?: Buffer;
  nodeLen?: number;
  payload?: Buffer;
  key?: Buffer;
  magic?: string;
}): Buffer {
  const node = o.node ?? Buffer.from('node-a');
  const payload = o.payload ?? Buffer.from('{}');
  const body = Buffer.alloc(21 + node.length + payload.length);
  body.write(o.magic ?? 'AF', 0, 'latin1');
  body[2] = o.version ?? PROTOCOL_VERSION;
  body[3] = o.type ?? FrameType.announce;
  body.writeBigUInt64BE(7n, 4);
  body.writeBigUInt64BE(9n, 12);
  body[20] = o.nodeLen ?? node.length;
  node.copy(body, 21);
  payload.copy(body, 21 + node.length);
  return Buffer.concat([
    body,
    createHmac('sha256', o.key ?? KEY)
      .update(body)
      .digest(),
  ]);
}

const samplePayloads: Record<FrameTypeName, Buffer> = {
  announce: Buffer.from(JSON.stringify({ port: 4789, endpoints: [] })),
  negotiate: Buffer.from(JSON.stringify({ pairs: [], dropped: ['a|b'] })),
  probe: encodeProbe({ family: 4, active: true, id: 1, t1: 123n, nonce: 1 }),
  probeReply: encodeProbe({ family: 6, active: false, id: 0xffffffff, t1: 2n ** 64n - 1n, nonce: 0xffffffff }),
};

describe('frame encode/decode', () => {
  it.each(TYPES)('round-trips a %s frame', (type) => {
    const f = frame(type, samplePayloads[type]);
    const b = encodeFrame(KEY, f);
    expect(b.length).toBe(21 + f.node.length + f.payload.length + MAC_LEN);
    expect(b.subarray(0, 4)).toEqual(Buffer.from([0x41, 0x46, PROTOCOL_VERSION, FrameType[type]]));
    const d = decodeFrame(KEY, b);
    expect(d).toEqual(f);
  });

  it('round-trips extreme epoch/seq values, an empty payload and the longest node name', () => {
    for (const [epoch, seq] of [
      [0n, 0n],
      [2n ** 64n - 1n, 2n ** 64n - 1n],
      [1n, 2n ** 63n],
    ] as const) {
      const f = frame('negotiate', Buffer.alloc(0), { epoch, seq, node: 'n'.repeat(63) });
      expect(decodeFrame(KEY, encodeFrame(KEY, f))).toEqual(f);
    }
    const one = frame('announce', Buffer.alloc(0), { node: 'x' });
    const b = encodeFrame(KEY, one);
    expect(b.length).toBe(21 + 1 + MAC_LEN); // the smallest frame there is
    expect(decodeFrame(KEY, b)).toEqual(one);
  });

  it('accepts a frame of exactly MAX_DATAGRAM bytes and refuses to encode one byte more', () => {
    const node = 'node-with-a-longer-name.example';
    const room = payloadRoom(node);
    expect(room).toBe(MAX_DATAGRAM - 21 - node.length - MAC_LEN);
    const f = frame('announce', Buffer.alloc(room, 0x61), { node });
    const b = encodeFrame(KEY, f);
    expect(b.length).toBe(MAX_DATAGRAM);
    expect(decodeFrame(KEY, b)).toEqual(f);
    expect(() => encodeFrame(KEY, frame('announce', Buffer.alloc(room + 1), { node }))).toThrow(/exceeds/);
    expect(() => encodeFrame(KEY, frame('announce', Buffer.alloc(5000), { node }))).toThrow(/exceeds/);
  });

  it('refuses to encode invalid node names', () => {
    for (const node of ['', '-a', '.a', '_a', 'a b', 'a/b', 'n'.repeat(64), 'nœud', 'a\n', 'a\0']) {
      expect(() => encodeFrame(KEY, frame('announce', Buffer.alloc(0), { node })), node).toThrow(/invalid node name/);
    }
  });
});

describe('frame authentication', () => {
  it.each(TYPES)('rejects every single-bit flip of a %s frame (magic bytes: magic, elsewhere: mac)', (type) => {
    const b = encodeFrame(KEY, frame(type, samplePayloads[type]));
    for (let i = 0; i < b.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const m = Buffer.from(b);
        m[i]! ^= 1 << bit;
        const r = decodeFrame(KEY, m);
        expect(r, `byte ${i} bit ${bit}`).toBe(i < 2 ? 'magic' : 'mac');
      }
    }
  });

  it('rejects every single-bit flip of a MAX_DATAGRAM frame', () => {
    const node = 'n1';
    const b = encodeFrame(KEY, frame('announce', Buffer.alloc(payloadRoom(node), 0x20), { node }));
    let rejected = 0;
    for (let i = 0; i < b.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const m = Buffer.from(b);
        m[i]! ^= 1 << bit;
        if (typeof decodeFrame(KEY, m) === 'string') rejected++;
      }
    }
    expect(rejected).toBe(b.length * 8);
  });

  it('rejects a frame MACed under another key', () => {
    for (const type of TYPES) expect(decodeFrame(OTHER_KEY, encodeFrame(KEY, frame(type, samplePayloads[type])))).toBe('mac');
    expect(decodeFrame(KEY, handFrame({ key: OTHER_KEY }))).toBe('mac');
    expect(decodeFrame(Buffer.alloc(0), encodeFrame(KEY, frame('probe', samplePayloads.probe)))).toBe('mac');
  });

  it('rejects a frame whose MAC is replaced by zeros or by the MAC of another frame', () => {
    const a = encodeFrame(KEY, frame('negotiate', samplePayloads.negotiate));
    const z = Buffer.from(a);
    z.fill(0, z.length - MAC_LEN);
    expect(decodeFrame(KEY, z)).toBe('mac');
    const other = encodeFrame(KEY, frame('negotiate', samplePayloads.negotiate, { seq: 43n }));
    const spliced = Buffer.concat([a.subarray(0, a.length - MAC_LEN), other.subarray(other.length - MAC_LEN)]);
    expect(decodeFrame(KEY, spliced)).toBe('mac');
  });

  it('rejects truncated and extended frames', () => {
    const b = encodeFrame(KEY, frame('announce', samplePayloads.announce));
    for (let n = 0; n < b.length; n++) {
      const r = decodeFrame(KEY, b.subarray(0, n));
      expect(r, `length ${n}`).toBe(n < 21 + 1 + MAC_LEN ? 'short' : 'mac');
    }
    for (const tail of [Buffer.from([0]), Buffer.alloc(32), Buffer.from('x')])
      expect(decodeFrame(KEY, Buffer.concat([b, tail]))).toBe('mac');
    // Dropping bytes from the front breaks the magic.
    expect(decodeFrame(KEY, b.subarray(1))).toBe('magic');
  });

  it('size checks: empty and short → short, over MAX_DATAGRAM → oversized (before anything else)', () => {
    expect(decodeFrame(KEY, Buffer.alloc(0))).toBe('short');
    expect(decodeFrame(KEY, Buffer.from('AF'))).toBe('short');
    expect(decodeFrame(KEY, Buffer.alloc(21 + MAC_LEN, 0x41))).toBe('short');
    expect(decodeFrame(KEY, Buffer.alloc(MAX_DATAGRAM + 1))).toBe('oversized');
    expect(decodeFrame(KEY, Buffer.alloc(65_507))).toBe('oversized');
    // An oversized frame that is otherwise perfectly valid (MACed by hand) is still refused.
    expect(decodeFrame(KEY, handFrame({ payload: Buffer.alloc(MAX_DATAGRAM, 0x20) }))).toBe('oversized');
  });

  it('rejects a bad magic', () => {
    expect(decodeFrame(KEY, handFrame({ magic: 'FA' }))).toBe('magic');
    expect(decodeFrame(KEY, handFrame({ magic: 'af' }))).toBe('magic');
  });
});

describe('frame header checks behind a valid MAC', () => {
  it('a hand-built frame with the current version is accepted', () => {
    const r = decodeFrame(KEY, handFrame({}));
    expect(r).toEqual({ type: 'announce', epoch: 7n, seq: 9n, node: 'node-a', payload: Buffer.from('{}') });
  });

  it('unknown version → version', () => {
    for (const version of [0, 2, 0x7f, 0xff]) expect(decodeFrame(KEY, handFrame({ version }))).toBe('version');
  });

  it('unknown type → type', () => {
    for (const type of [0, 5, 6, 0x80, 0xff]) expect(decodeFrame(KEY, handFrame({ type }))).toBe('type');
    for (const type of Object.values(FrameType)) expect(typeof decodeFrame(KEY, handFrame({ type }))).toBe('object');
  });

  it('bad node names → node', () => {
    const bad: { node?: Buffer; nodeLen?: number; payload?: Buffer }[] = [
      { nodeLen: 0 }, // no name
      { node: Buffer.from('-lead') },
      { node: Buffer.from('.dot') },
      { node: Buffer.from('a b') },
      { node: Buffer.from('a\0') },
      { node: Buffer.from('n'.repeat(64)) }, // too long
      { node: Buffer.from([0xc1]) }, // 'A' with the high bit set
      { node: Buffer.from([0x61, 0xae]) }, // 'a.' with the high bit set on '.'
      { node: Buffer.from('nœud') },
      { node: Buffer.from('ab'), nodeLen: 200, payload: Buffer.alloc(0) }, // runs into the MAC
      { node: Buffer.from('ab'), nodeLen: 3, payload: Buffer.alloc(0) }, // one byte past the payload
    ];
    for (const o of bad) expect(decodeFrame(KEY, handFrame(o)), JSON.stringify(o)).toBe('node');
    // A name that ends exactly where the MAC starts is fine.
    expect(decodeFrame(KEY, handFrame({ node: Buffer.from('ab'), payload: Buffer.alloc(0) }))).toMatchObject({
      node: 'ab',
      payload: Buffer.alloc(0),
    });
  });

  it('the node length byte splits name and payload', () => {
    // nodeLen 1 over "node-a" + "{}": node "n", payload "ode-a{}".
    const r = decodeFrame(KEY, handFrame({ nodeLen: 1 }));
    expect(r).toMatchObject({ node: 'n', payload: Buffer.from('ode-a{}') });
  });
});
