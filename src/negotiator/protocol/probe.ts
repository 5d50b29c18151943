/**
 * The binary probe payload (STAMP-like, RFC 8762 in spirit: a sequence number and the sender's
 * timestamp, echoed by the reflector), carried in an authenticated frame. Pure.
 *
 *   0 family u8 (4|6: the family the probe was sent over)
 *   1 flags  u8 (bit 0: the sender has active pairs toward the receiver)
 *   2 reserved u16
 *   4 probe id u32 BE
 *   8 t1 u64 BE (sender's monotonic clock, µs)
 *   16 nonce u32 BE: random per path (prober, peer, family); the reply echoes it, so a reply
 *      captured on its way to another prober is not taken for one of ours
 */

/** Probe payload length. */
export const PROBE_LEN = 20;

/** A probe or its reply (a reply echoes the probe's fields). */
export interface Probe {
  family: 4 | 6;
  active: boolean;
  id: number;
  t1: bigint;
  nonce: number;
}

/** Encodes a probe payload. */
export function encodeProbe(p: Probe): Buffer {
  const b = Buffer.alloc(PROBE_LEN);
  b[0] = p.family;
  b[1] = p.active ? 1 : 0;
  b.writeUInt32BE(p.id >>> 0, 4);
  b.writeBigUInt64BE(p.t1, 8);
  b.writeUInt32BE(p.nonce >>> 0, 16);
  return b;
}

/** Decodes a probe payload; undefined when malformed. */
export function decodeProbe(b: Buffer): Probe | undefined {
  if (b.length !== PROBE_LEN || (b[0] !== 4 && b[0] !== 6) || (b[1]! & ~1) !== 0) return undefined;
  return { family: b[0] as 4 | 6, active: (b[1]! & 1) === 1, id: b.readUInt32BE(4), t1: b.readBigUInt64BE(8), nonce: b.readUInt32BE(16) };
}
