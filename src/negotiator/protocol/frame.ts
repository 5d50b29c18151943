/**
 * The authenticated envelope every afsteerd datagram travels in (announcements, negotiation,
 * probes): a fixed header, the sender's node name, a payload, and an HMAC-SHA-256 over all of it
 * under the cluster key. Pure: bytes in, typed frame or a rejection reason out.
 *
 *   0  'A' 'F'            magic
 *   2  version (1)
 *   3  type               FrameType
 *   4  epoch  u64 BE      sender's boot epoch (ms since 1970 at start-up)
 *   12 seq    u64 BE      sender's message counter (per boot)
 *   20 nodeLen u8, node name (1..63 bytes, [A-Za-z0-9._-])
 *   .. payload            JSON (announce, negotiate) or binary (probe, probe reply)
 *   -32 mac               HMAC-SHA-256(key, every byte before it)
 */
import { MAC_LEN, mac, macVerifies } from './mac';

/** Protocol version carried in byte 2. */
export const PROTOCOL_VERSION = 1;
/** Largest datagram afsteerd sends or accepts: fits one IPv6 minimum-MTU packet (1280 − 40 − 8). */
export const MAX_DATAGRAM = 1232;
/** HMAC-SHA-256 length. */
export { MAC_LEN };

const HEADER_LEN = 21;

/** Message types. */
export const FrameType = { announce: 1, negotiate: 2, probe: 3, probeReply: 4 } as const;
/** A message type name. */
export type FrameTypeName = keyof typeof FrameType;
const typeNames = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));

/** A decoded, authenticated frame. */
export interface Frame {
  type: FrameTypeName;
  epoch: bigint;
  seq: bigint;
  node: string;
  payload: Buffer;
}

/** Why a datagram was dropped (counted by the daemon). */
export type RejectReason = 'short' | 'oversized' | 'magic' | 'version' | 'type' | 'node' | 'mac' | 'replay' | 'payload';

/** A node name as the protocol allows it. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Encodes and MACs one frame; throws when it would exceed MAX_DATAGRAM. */
export function encodeFrame(key: Buffer, f: Frame): Buffer {
  if (!NODE_NAME.test(f.node)) throw new Error(`invalid node name ${JSON.stringify(f.node)}`);
  const node = Buffer.from(f.node, 'ascii');
  const len = HEADER_LEN + node.length + f.payload.length + MAC_LEN;
  if (len > MAX_DATAGRAM) throw new Error(`frame of ${len} bytes exceeds ${MAX_DATAGRAM}`);
  const b = Buffer.alloc(len);
  b.write('AF', 0, 'ascii');
  b[2] = PROTOCOL_VERSION;
  b[3] = FrameType[f.type];
  b.writeBigUInt64BE(f.epoch, 4);
  b.writeBigUInt64BE(f.seq, 12);
  b[20] = node.length;
  node.copy(b, HEADER_LEN);
  f.payload.copy(b, HEADER_LEN + node.length);
  const macAt = len - MAC_LEN;
  mac(key, b.subarray(0, macAt)).copy(b, macAt);
  return b;
}

/** Decodes and authenticates a datagram; the MAC is checked before anything is trusted. */
export function decodeFrame(key: Buffer, b: Buffer): Frame | RejectReason {
  if (b.length > MAX_DATAGRAM) return 'oversized';
  if (b.length < HEADER_LEN + 1 + MAC_LEN) return 'short';
  if (b[0] !== 0x41 || b[1] !== 0x46) return 'magic';
  const macAt = b.length - MAC_LEN;
  if (!macVerifies(key, b)) return 'mac';
  if (b[2] !== PROTOCOL_VERSION) return 'version';
  const type = typeNames.get(b[3]!);
  if (!type) return 'type';
  const nodeLen = b[20]!;
  if (nodeLen < 1 || HEADER_LEN + nodeLen > macAt) return 'node';
  // Judged on the raw bytes: Node's 'ascii' decoding drops the high bit, so 0xC1 would read as 'A'.
  const raw = b.subarray(HEADER_LEN, HEADER_LEN + nodeLen);
  if (raw.some((c) => c > 0x7e)) return 'node';
  const node = raw.toString('latin1');
  if (!NODE_NAME.test(node)) return 'node';
  return { type, epoch: b.readBigUInt64BE(4), seq: b.readBigUInt64BE(12), node, payload: b.subarray(HEADER_LEN + nodeLen, macAt) };
}

/** Payload bytes left for a sender with this node name. */
export function payloadRoom(node: string): number {
  return MAX_DATAGRAM - HEADER_LEN - Buffer.byteLength(node) - MAC_LEN;
}
