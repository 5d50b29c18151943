/**
 * The envelope of a node with an identity (protocol version 2): the version-1 header, how the
 * frame is authenticated, optionally the sender's certificate, the payload and the tag. A frame
 * to a peer whose certificate the sender holds is MACed with their pairwise key (HMAC-SHA-256,
 * as version 1, under a key only the two can derive); an announcement to a target whose
 * certificate it does not hold yet (a static or etcd target, the multicast group, a peer that
 * just announced identity-v1) is signed with the sender's Ed25519 key. Announcements always carry
 * the certificate, so a receiver learns the sender from the frame itself. Pure: the tag is
 * computed and checked by the caller (transport/frame-auth.ts); this file only lays out bytes.
 *
 *   0  'A' 'F'            magic
 *   2  version (2)
 *   3  type               FrameType
 *   4  epoch  u64 BE      sender's boot epoch
 *   12 seq    u64 BE      sender's message counter (per boot)
 *   20 auth   u8          1: pairwise MAC (32-byte tag), 2: Ed25519 signature (64-byte tag)
 *   21 certLen u16 BE     0, or the length of the certificate that follows the node name
 *   23 nodeLen u8, node name (1..63 bytes, [A-Za-z0-9._-])
 *   .. certificate        certLen bytes (identity/certificate.ts)
 *   .. payload
 *   -32|-64 tag           over every byte before it
 */
import { MAX_CERT_LEN } from '../../identity/certificate';
import { SIGNATURE_LEN } from '../../identity/keys';
import { FrameType, type FrameTypeName, MAC_LEN, MAX_DATAGRAM, NODE_NAME } from './frame';

/** Protocol version of identity frames. */
export const IDENTITY_VERSION = 2;
/** Header bytes before the node name. */
export const IDENTITY_HEADER_LEN = 24;

/** How a frame is authenticated. */
export const FrameAuthKind = { pairwise: 1, signed: 2 } as const;
/** An authentication kind name. */
export type FrameAuthName = keyof typeof FrameAuthKind;

/** Tag length of each kind. */
export const TAG_LEN: Record<FrameAuthName, number> = { pairwise: MAC_LEN, signed: SIGNATURE_LEN };

/** An identity frame taken apart (its tag not yet checked). */
export interface IdentityFrameParts {
  type: FrameTypeName;
  epoch: bigint;
  seq: bigint;
  auth: FrameAuthName;
  node: string;
  /** The sender's certificate bytes, when carried. */
  cert?: Buffer;
  payload: Buffer;
  /** Every byte the tag covers. */
  signed: Buffer;
  tag: Buffer;
}

/** Why an identity frame's layout was refused. */
export type IdentityFrameReject = 'short' | 'oversized' | 'magic' | 'version' | 'type' | 'auth' | 'node' | 'cert';

const typeNames = new Map<number, FrameTypeName>(Object.entries(FrameType).map(([k, v]) => [v, k as FrameTypeName]));
const authNames = new Map<number, FrameAuthName>(Object.entries(FrameAuthKind).map(([k, v]) => [v, k as FrameAuthName]));

/** True when b claims to be an identity frame ('AF', version 2): the receiver routes it here. */
export function isIdentityFrame(b: Buffer): boolean {
  return b.length > 3 && b[0] === 0x41 && b[1] === 0x46 && b[2] === IDENTITY_VERSION;
}

/** Lays out a frame and appends tag(bytes so far); throws when it would exceed MAX_DATAGRAM. */
export function encodeIdentityFrame(
  f: { type: FrameTypeName; epoch: bigint; seq: bigint; node: string; payload: Buffer; auth: FrameAuthName; cert?: Buffer },
  tag: (signed: Buffer) => Buffer,
): Buffer {
  if (!NODE_NAME.test(f.node)) throw new Error(`invalid node name ${JSON.stringify(f.node)}`);
  const cert = f.cert ?? Buffer.alloc(0);
  if (cert.length > MAX_CERT_LEN) throw new Error(`certificate of ${cert.length} bytes exceeds ${MAX_CERT_LEN}`);
  const node = Buffer.from(f.node, 'ascii');
  const len = IDENTITY_HEADER_LEN + node.length + cert.length + f.payload.length + TAG_LEN[f.auth];
  if (len > MAX_DATAGRAM) throw new Error(`frame of ${len} bytes exceeds ${MAX_DATAGRAM}`);
  const b = Buffer.allocUnsafe(len);
  b.write('AF', 0, 'ascii');
  b[2] = IDENTITY_VERSION;
  b[3] = FrameType[f.type];
  b.writeBigUInt64BE(f.epoch, 4);
  b.writeBigUInt64BE(f.seq, 12);
  b[20] = FrameAuthKind[f.auth];
  b.writeUInt16BE(cert.length, 21);
  b[23] = node.length;
  let at = IDENTITY_HEADER_LEN;
  at += node.copy(b, at);
  at += cert.copy(b, at);
  at += f.payload.copy(b, at);
  const t = tag(b.subarray(0, at));
  if (t.length !== TAG_LEN[f.auth]) throw new Error(`a ${f.auth} tag is ${TAG_LEN[f.auth]} bytes, got ${t.length}`);
  t.copy(b, at);
  return b;
}

/** Takes an identity frame apart, checking every length (no crypto: the caller checks the tag before trusting anything). */
export function parseIdentityFrame(b: Buffer): IdentityFrameParts | IdentityFrameReject {
  if (b.length > MAX_DATAGRAM) return 'oversized';
  if (b.length < IDENTITY_HEADER_LEN + 1 + MAC_LEN) return 'short';
  if (b[0] !== 0x41 || b[1] !== 0x46) return 'magic';
  if (b[2] !== IDENTITY_VERSION) return 'version';
  const type = typeNames.get(b[3]!);
  if (!type) return 'type';
  const auth = authNames.get(b[20]!);
  if (!auth) return 'auth';
  const certLen = b.readUInt16BE(21);
  const nodeLen = b[23]!;
  const tagAt = b.length - TAG_LEN[auth];
  if (certLen > MAX_CERT_LEN) return 'cert';
  if (nodeLen < 1 || IDENTITY_HEADER_LEN + nodeLen > tagAt) return 'node';
  const raw = b.subarray(IDENTITY_HEADER_LEN, IDENTITY_HEADER_LEN + nodeLen);
  if (raw.some((c) => c > 0x7e)) return 'node';
  const node = raw.toString('latin1');
  if (!NODE_NAME.test(node)) return 'node';
  const certAt = IDENTITY_HEADER_LEN + nodeLen;
  if (certAt + certLen > tagAt) return 'cert';
  return {
    type,
    epoch: b.readBigUInt64BE(4),
    seq: b.readBigUInt64BE(12),
    auth,
    node,
    ...(certLen ? { cert: b.subarray(certAt, certAt + certLen) } : {}),
    payload: b.subarray(certAt + certLen, tagAt),
    signed: b.subarray(0, tagAt),
    tag: b.subarray(tagAt),
  };
}

/** Payload bytes left in an identity frame for this node name, certificate length and kind. */
export function identityPayloadRoom(node: string, certLen: number, auth: FrameAuthName): number {
  return MAX_DATAGRAM - IDENTITY_HEADER_LEN - Buffer.byteLength(node) - certLen - TAG_LEN[auth];
}
