/**
 * A node's etcd record signed by its identity (version 2 of protocol/record.ts): the same fields,
 * the node's certificate, and an Ed25519 signature by the node's own key — so a reader accepts a
 * record for node N only from N's certified key, and a writer to etcd (even one with another
 * node's etcd credentials) cannot make one. Stored as base64 text of:
 *
 *   0  'A' 'R'            magic
 *   2  version (2)
 *   3  0                  reserved
 *   4  epoch  u64 BE, 12 seq u64 BE, 20 writtenAt u64 BE   (as version 1)
 *   28 nodeLen u8, node name
 *   .. certLen u16 BE, certificate (identity/certificate.ts)
 *   .. payload            JSON: { addresses, port, families }
 *   -64 signature         Ed25519(node key, every byte before it)
 *
 * Pure: the certificate is judged by the caller's check (authority, validity, revocation, name).
 */
import { type KeyObject, sign, verify } from 'node:crypto';
import { type Certificate, MAX_CERT_LEN } from '../../identity/certificate';
import { publicKeyFromRaw, SIGNATURE_LEN } from '../../identity/keys';
import { NODE_NAME } from './frame';
import { RecordPayloadSchema, type RecordRejectReason, recordBody, type SignedRecord } from './record';

/** Identity record version. */
export const IDENTITY_RECORD_VERSION = 2;
/** Largest encoded identity record (bytes before base64). */
export const MAX_IDENTITY_RECORD = 2048;
const HEADER_LEN = 29;

/** Encodes and signs a record with the node's key; returns the base64 text to store. */
export function encodeIdentityRecord(signKey: KeyObject, cert: Buffer, r: SignedRecord): string {
  if (!NODE_NAME.test(r.node)) throw new Error(`invalid node name ${JSON.stringify(r.node)}`);
  const payloadObj = { addresses: r.addresses, port: r.port, families: r.families };
  const check = RecordPayloadSchema.safeParse(payloadObj);
  if (!check.success) throw new Error(`invalid record for ${r.node}: ${check.error.issues[0]!.message}`, { cause: check.error });
  const head = Buffer.alloc(HEADER_LEN);
  head.write('AR', 0, 'ascii');
  head[2] = IDENTITY_RECORD_VERSION;
  head.writeBigUInt64BE(r.epoch, 4);
  head.writeBigUInt64BE(r.seq, 12);
  head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(r.writtenAt))), 20);
  head[28] = r.node.length;
  const certLen = Buffer.alloc(2);
  certLen.writeUInt16BE(cert.length);
  const unsigned = Buffer.concat([head, Buffer.from(r.node, 'ascii'), certLen, cert, Buffer.from(JSON.stringify(payloadObj))]);
  if (unsigned.length + SIGNATURE_LEN > MAX_IDENTITY_RECORD) throw new Error(`record exceeds ${MAX_IDENTITY_RECORD} bytes`);
  return Buffer.concat([unsigned, sign(null, unsigned, signKey)]).toString('base64');
}

/** True when a stored value is an identity record (its version byte), without checking anything else. */
export function isIdentityRecord(b: Buffer): boolean {
  return b.length > 3 && b[0] === 0x41 && b[1] === 0x52 && b[2] === IDENTITY_RECORD_VERSION;
}

/** Decodes a stored value (base64 text) and checks it: the certificate with checkCert, then the node's signature. */
export function decodeIdentityRecord(
  value: Buffer | string,
  checkCert: (node: string, cert: Buffer) => Certificate | string,
): (SignedRecord & { cert: Certificate }) | RecordRejectReason | `cert-${string}` {
  const text = typeof value === 'string' ? value : value.toString('latin1');
  if (text.length > Math.ceil(MAX_IDENTITY_RECORD / 3) * 4) return 'oversized';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return 'encoding';
  const b = Buffer.from(text, 'base64');
  if (b.length < HEADER_LEN + 1 + 2 + SIGNATURE_LEN) return 'short';
  if (b[0] !== 0x41 || b[1] !== 0x52) return 'magic';
  if (b[2] !== IDENTITY_RECORD_VERSION || b[3] !== 0) return 'version';
  const end = b.length - SIGNATURE_LEN;
  const nodeLen = b[28]!;
  if (nodeLen < 1 || HEADER_LEN + nodeLen + 2 > end) return 'node';
  const raw = b.subarray(HEADER_LEN, HEADER_LEN + nodeLen);
  if (raw.some((c) => c > 0x7e)) return 'node';
  const node = raw.toString('latin1');
  if (!NODE_NAME.test(node)) return 'node';
  const certLen = b.readUInt16BE(HEADER_LEN + nodeLen);
  const certAt = HEADER_LEN + nodeLen + 2;
  if (certLen < 1 || certLen > MAX_CERT_LEN || certAt + certLen > end) return 'payload';
  const cert = checkCert(node, b.subarray(certAt, certAt + certLen));
  if (typeof cert === 'string') return `cert-${cert}`;
  if (!verify(null, b.subarray(0, end), publicKeyFromRaw(cert.signKey, 'ed25519'), b.subarray(end))) return 'mac';
  const rest = recordBody(b, b.subarray(certAt + certLen, end));
  return typeof rest === 'string' ? rest : { node, ...rest, cert };
}
