/** Reads UDP payloads out of a classic pcap file (Ethernet link type), for replay tests. */
import { readFileSync } from 'node:fs';

/** One captured UDP datagram. */
export interface CapturedUdp {
  family: 4 | 6;
  dstPort: number;
  payload: Buffer;
}

/** Every UDP datagram in the capture (IPv4 or IPv6 without extension headers). */
export function readUdpPcap(path: string): CapturedUdp[] {
  const b = readFileSync(path);
  if (b.length < 24 || b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian pcap`);
  if (b.readUInt32LE(20) !== 1) throw new Error(`${path}: link type ${b.readUInt32LE(20)}, want Ethernet (1)`);
  const out: CapturedUdp[] = [];
  for (let off = 24; off + 16 <= b.length; ) {
    const incl = b.readUInt32LE(off + 8);
    const pkt = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const type = pkt.readUInt16BE(12);
    let l4: number, proto: number, family: 4 | 6;
    if (type === 0x0800) {
      family = 4;
      proto = pkt[14 + 9]!;
      l4 = 14 + (pkt[14]! & 0x0f) * 4;
    } else if (type === 0x86dd) {
      family = 6;
      proto = pkt[14 + 6]!;
      l4 = 14 + 40;
    } else continue;
    if (proto !== 17) continue;
    const len = pkt.readUInt16BE(l4 + 4);
    out.push({ family, dstPort: pkt.readUInt16BE(l4 + 2), payload: Buffer.from(pkt.subarray(l4 + 8, l4 + len)) });
  }
  return out;
}
