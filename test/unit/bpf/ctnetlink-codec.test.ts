/**
 * The ctnetlink messages afsteer sends and reads (src/net/ctnetlink.ts), byte for byte: the dump
 * request (IPv4 addresses in the kernel filter, IPv6 never: the kernel's filter drops equal IPv6
 * addresses), the flags update (both directions, with the mask; no NLM_F_CREATE), and an entry
 * decoded back, its original tuple kept verbatim to name it in the update.
 */
import { describe, expect, it } from 'vitest';
import { decodeEntry, encodeDumpRequest, encodeTcpFlagsUpdate, splitMessages, TCP_FLAG_BE_LIBERAL } from '../../../src/net/ctnetlink';

describe('ctnetlink codec', () => {
  it('an IPv4 dump request: CT_GET | DUMP, AF_INET, original tuple with both addresses and TCP, filter flags IP_SRC|IP_DST|PROTO_NUM', () => {
    const m = encodeDumpRequest(7, 4, 6, { src: '10.1.0.2', dst: '10.2.0.3' });
    expect(m.readUInt32LE(0)).toBe(m.length);
    expect(m.readUInt16LE(4)).toBe((1 << 8) | 1);
    expect(m.readUInt16LE(6)).toBe(0x301);
    expect(m.readUInt32LE(8)).toBe(7);
    expect(m[16]).toBe(2);
    expect(m.includes(Buffer.from([10, 1, 0, 2]))).toBe(true);
    expect(m.includes(Buffer.from([10, 2, 0, 3]))).toBe(true);
    // CTA_FILTER (25, nested) → CTA_FILTER_ORIG_FLAGS u32 = 0b1011.
    expect(m.includes(Buffer.from([8, 0, 1, 0, 0b1011, 0, 0, 0]))).toBe(true);
  });

  it('an IPv6 dump request filters by protocol only', () => {
    const m = encodeDumpRequest(8, 6, 6, { src: 'fd00:1::2', dst: 'fd00:2::3' });
    expect(m[16]).toBe(10);
    expect(m.includes(Buffer.from([8, 0, 1, 0, 0b1000, 0, 0, 0]))).toBe(true);
    expect(m.includes(Buffer.from([0xfd, 0, 0, 1]))).toBe(false);
  });

  it('refuses a tuple of the wrong family', () => {
    expect(() => encodeDumpRequest(1, 4, 6, { src: 'fd00::1', dst: '10.0.0.1' })).toThrow(/IPv4/);
  });

  it('an entry as the kernel sends it decodes; the update names it by its own tuple and sets the flag in both directions with the mask, without NLM_F_CREATE', () => {
    const attr = (type: number, payload: Buffer) => {
      const b = Buffer.alloc((4 + payload.length + 3) & ~3);
      b.writeUInt16LE(4 + payload.length, 0);
      b.writeUInt16LE(type, 2);
      payload.copy(b, 4);
      return b;
    };
    const port = (p: number) => Buffer.from([p >> 8, p & 255]);
    const tuple = attr(
      0x8001,
      Buffer.concat([
        attr(0x8001, Buffer.concat([attr(1, Buffer.from([10, 1, 0, 2])), attr(2, Buffer.from([10, 2, 0, 3]))])),
        attr(0x8002, Buffer.concat([attr(1, Buffer.from([6])), attr(2, port(40000)), attr(3, port(80))])),
      ]),
    );
    const info = attr(0x8004, attr(0x8001, Buffer.concat([attr(4, Buffer.from([0x23, 0xff])), attr(5, Buffer.from([0x2b, 0xff]))])));
    const payload = Buffer.concat([Buffer.from([2, 0, 0, 0]), tuple, info]);
    const hdr = Buffer.alloc(16);
    hdr.writeUInt32LE(16 + payload.length, 0);
    hdr.writeUInt16LE((1 << 8) | 0, 4);
    hdr.writeUInt16LE(2, 6);
    hdr.writeUInt32LE(9, 8);
    const [msg] = splitMessages(Buffer.concat([hdr, payload]));
    expect(msg).toMatchObject({ seq: 9, flags: 2 });
    const e = decodeEntry(msg!.payload)!;
    expect(e).toMatchObject({
      family: 4,
      proto: 6,
      src: '10.1.0.2',
      dst: '10.2.0.3',
      sport: 40000,
      dport: 80,
      tcpFlags: { original: 0x23, reply: 0x2b },
    });
    expect(e.tupleAttr.equals(tuple)).toBe(true);
    const u = encodeTcpFlagsUpdate(10, e, TCP_FLAG_BE_LIBERAL, TCP_FLAG_BE_LIBERAL);
    expect(u.readUInt16LE(4)).toBe(1 << 8); // IPCTNL_MSG_CT_NEW
    expect(u.readUInt16LE(6)).toBe(0x5); // REQUEST | ACK: no CREATE, so a vanished entry is ENOENT, never re-made
    expect(u.includes(tuple)).toBe(true);
    expect(u.includes(Buffer.from([6, 0, 4, 0, 8, 8]))).toBe(true);
    expect(u.includes(Buffer.from([6, 0, 5, 0, 8, 8]))).toBe(true);
  });

  it('a truncated datagram or attribute yields nothing rather than a wrong entry', () => {
    expect(splitMessages(Buffer.from([200, 0, 0, 0, 1, 1]))).toEqual([]);
    expect(decodeEntry(Buffer.from([2, 0, 0, 0, 40, 0, 1, 0]))).toBeUndefined();
    expect(decodeEntry(Buffer.from([7, 0, 0, 0]))).toBeUndefined();
  });
});
