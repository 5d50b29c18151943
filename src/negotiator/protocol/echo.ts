/**
 * The echo probe (capability `echo-v1`): a probe that the peer's node loops back without any
 * process reading it — its kernel reflector (bpf/afsteer_echo.bpf.c) or, where that cannot be
 * attached, afsteerd's userspace reflector (src/negotiator/probing/echo-fallback.ts). It goes to the
 * peer's echo port (its afsteerd port + 1) and comes back to the prober's afsteerd port. Not
 * MACed: nothing is believed from it but what the prober put in — the reply must carry the
 * path's random nonce and an id in flight, from the peer's address over the family sent (as an
 * HMAC-authenticated reply proves no more: an on-path attacker can answer probes and drop data
 * either way). Pure.
 *
 *   0 'A' 'E'      magic (afsteerd frames start 'A' 'F')
 *   2 version (1)  (the kernel reflector checks these three bytes only)
 *   3 family u8    (4|6: the family it was sent over)
 *   4 flags u8     (bit 0: the prober has active pairs toward the peer)
 *   5 reserved u8 × 3
 *   8 probe id u32 BE
 *   12 nonce u32 BE
 *   16 t1 u64 BE   (prober's monotonic clock, µs)
 */
import type { Probe } from './probe';

/** Length of an echo datagram. */
export const ECHO_LEN = 24;
/** Version byte. */
export const ECHO_VERSION = 1;
/** The peer's echo port, from its afsteerd port. */
export const echoPortOf = (port: number): number => (port === 65535 ? 65534 : port + 1);

/** True when b starts like an echo datagram (magic and version). */
export function isEcho(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0x41 && b[1] === 0x45 && b[2] === ECHO_VERSION;
}

/** Encodes an echo probe. */
export function encodeEcho(p: Probe): Buffer {
  const b = Buffer.alloc(ECHO_LEN);
  b[0] = 0x41;
  b[1] = 0x45;
  b[2] = ECHO_VERSION;
  b[3] = p.family;
  b[4] = p.active ? 1 : 0;
  b.writeUInt32BE(p.id >>> 0, 8);
  b.writeUInt32BE(p.nonce >>> 0, 12);
  b.writeBigUInt64BE(p.t1, 16);
  return b;
}

/** Decodes an echo datagram; undefined when malformed. */
export function decodeEcho(b: Buffer): Probe | undefined {
  if (b.length !== ECHO_LEN || !isEcho(b) || (b[3] !== 4 && b[3] !== 6) || (b[4]! & ~1) !== 0) return undefined;
  return { family: b[3] as 4 | 6, active: (b[4]! & 1) === 1, id: b.readUInt32BE(8), nonce: b.readUInt32BE(12), t1: b.readBigUInt64BE(16) };
}
