// Unit tests of protocol/probe.ts: the 20-byte binary probe payload codec.
import { describe, expect, it } from 'vitest';
import { decodeProbe, encodeProbe, PROBE_LEN, type Probe } from '../../../src/negotiator/protocol/probe';

describe('probe codec', () => {
  it('round-trips probes, including extreme values', () => {
    const probes: Probe[] = [
      { family: 4, active: true, id: 1, t1: 0n, nonce: 0xdeadbeef },
      { family: 6, active: false, id: 0xffffffff, t1: 2n ** 64n - 1n, nonce: 0xdeadbeef },
      { family: 4, active: false, id: 0, t1: 1_234_567_890_123n, nonce: 0xdeadbeef },
      { family: 6, active: true, id: 0x80000000, t1: 2n ** 63n, nonce: 0xdeadbeef },
    ];
    for (const p of probes) {
      const b = encodeProbe(p);
      expect(b.length).toBe(PROBE_LEN);
      expect(decodeProbe(b)).toEqual(p);
    }
  });

  it('has the documented layout', () => {
    const b = encodeProbe({ family: 6, active: true, id: 0x01020304, t1: 0x05060708090a0b0cn, nonce: 0xdeadbeef });
    expect(b.toString('hex')).toBe('06010000' + '01020304' + '05060708090a0b0c' + 'deadbeef');
  });

  it('rejects a bad family byte', () => {
    const b = encodeProbe({ family: 4, active: true, id: 7, t1: 9n, nonce: 0xdeadbeef });
    for (let f = 0; f < 256; f++) {
      const m = Buffer.from(b);
      m[0] = f;
      expect(decodeProbe(m) !== undefined, `family ${f}`).toBe(f === 4 || f === 6);
    }
  });

  it('rejects unknown flags', () => {
    const b = encodeProbe({ family: 6, active: false, id: 7, t1: 9n, nonce: 0xdeadbeef });
    for (let fl = 0; fl < 256; fl++) {
      const m = Buffer.from(b);
      m[1] = fl;
      const d = decodeProbe(m);
      expect(d !== undefined, `flags ${fl}`).toBe(fl === 0 || fl === 1);
      if (d) expect(d.active).toBe(fl === 1);
    }
  });

  it('rejects any other length', () => {
    const b = encodeProbe({ family: 4, active: false, id: 7, t1: 9n, nonce: 0xdeadbeef });
    for (let n = 0; n < 40; n++) {
      const m = n <= PROBE_LEN ? b.subarray(0, n) : Buffer.concat([b, Buffer.alloc(n - PROBE_LEN)]);
      expect(decodeProbe(m) !== undefined, `length ${n}`).toBe(n === PROBE_LEN);
    }
  });

  it('ignores the reserved bytes (echoed as they are)', () => {
    const b = encodeProbe({ family: 4, active: false, id: 7, t1: 9n, nonce: 0xdeadbeef });
    b[2] = 0xab;
    b[3] = 0xcd;
    expect(decodeProbe(b)).toEqual({ family: 4, active: false, id: 7, t1: 9n, nonce: 0xdeadbeef });
  });

  it('encodes ids modulo 2^32', () => {
    expect(decodeProbe(encodeProbe({ family: 4, active: false, id: 2 ** 32 + 5, t1: 1n, nonce: 0xdeadbeef }))?.id).toBe(5);
    expect(decodeProbe(encodeProbe({ family: 4, active: false, id: -1, t1: 1n, nonce: 0xdeadbeef }))?.id).toBe(0xffffffff);
  });
});
