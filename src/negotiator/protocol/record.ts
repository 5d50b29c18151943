/**
 * A node's discovery record as stored in etcd (discovery.etcd): who it is, its control
 * addresses, port and families, authenticated with the cluster key like datagrams, so a writer
 * to etcd without the key cannot add a peer. Stored as base64 text of:
 *
 *   0  'A' 'R'            magic ('AF' is a datagram: the MAC covers it, so neither passes for the other)
 *   2  version (1)
 *   3  0                  reserved
 *   4  epoch  u64 BE      writer's boot epoch (ms since 1970 at start-up)
 *   12 seq    u64 BE      writer's record counter (per boot; every put takes the next)
 *   20 writtenAt u64 BE   writer's wall clock at the put (ms since 1970)
 *   28 nodeLen u8, node name (1..63 bytes, [A-Za-z0-9._-])
 *   .. payload            JSON: { addresses, port, families }
 *   -32 mac               HMAC-SHA-256(key, every byte before it)
 *
 * (epoch, seq) orders one writer's records, so a reader recognises an older record put back;
 * writtenAt bounds how long a copy of a record can be replayed at all. Pure.
 */

import * as z from 'zod/mini';
import { NodeAddressesSchema } from '../daemon-config';
import { MAC_LEN, NODE_NAME } from './frame';
import { mac, macVerifies } from './mac';
import { type FamilyName, FamilySchema } from './messages';

/** Record format version carried in byte 2. */
export const RECORD_VERSION = 1;
/** Largest encoded record (bytes before base64). */
export const MAX_RECORD = 1024;
const HEADER_LEN = 29;

/** What a record says about its node. */
export interface NodeRecord {
  node: string;
  addresses: { ipv4?: string; ipv6?: string };
  port: number;
  families: FamilyName[];
}

/** A decoded, authenticated record with its ordering and age fields. */
export interface SignedRecord extends NodeRecord {
  epoch: bigint;
  seq: bigint;
  writtenAt: number;
}

/** Why a record was refused by decodeRecord (counted by discovery, beside 'name', 'replay', 'stale', 'future'). */
export type RecordRejectReason = 'encoding' | 'short' | 'oversized' | 'magic' | 'mac' | 'version' | 'node' | 'payload';

/** The JSON payload of a record (shared with identity records, protocol/identity-record.ts). */
export const RecordPayloadSchema = z
  .strictObject({
    addresses: NodeAddressesSchema,
    port: z.number().check(z.int(), z.gte(1), z.lte(65535)),
    families: z.array(FamilySchema).check(z.minLength(1), z.maxLength(2)),
  })
  .check(
    z.refine(
      (p) =>
        new Set(p.families).size === p.families.length && p.families.every((f) => (f === 'IPv4' ? p.addresses.ipv4 : p.addresses.ipv6)),
      'families need their address',
    ),
  );

/** Encodes and MACs a record; returns the base64 text to store. Throws on an invalid record. */
export function encodeRecord(key: Buffer, r: SignedRecord): string {
  if (!NODE_NAME.test(r.node)) throw new Error(`invalid node name ${JSON.stringify(r.node)}`);
  const payloadObj = { addresses: r.addresses, port: r.port, families: r.families };
  const check = RecordPayloadSchema.safeParse(payloadObj);
  if (!check.success) throw new Error(`invalid record for ${r.node}: ${check.error.issues[0]!.message}`, { cause: check.error });
  const node = Buffer.from(r.node, 'ascii');
  const payload = Buffer.from(JSON.stringify(payloadObj));
  const len = HEADER_LEN + node.length + payload.length + MAC_LEN;
  if (len > MAX_RECORD) throw new Error(`record of ${len} bytes exceeds ${MAX_RECORD}`);
  const b = Buffer.alloc(len);
  b.write('AR', 0, 'ascii');
  b[2] = RECORD_VERSION;
  b.writeBigUInt64BE(r.epoch, 4);
  b.writeBigUInt64BE(r.seq, 12);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(r.writtenAt))), 20);
  b[28] = node.length;
  node.copy(b, HEADER_LEN);
  payload.copy(b, HEADER_LEN + node.length);
  const macAt = len - MAC_LEN;
  mac(key, b.subarray(0, macAt)).copy(b, macAt);
  return b.toString('base64');
}

/** Decodes and authenticates a stored value (base64 text); the MAC is checked before anything is trusted. */
export function decodeRecord(key: Buffer, value: Buffer | string): SignedRecord | RecordRejectReason {
  const text = typeof value === 'string' ? value : value.toString('latin1');
  if (text.length > Math.ceil(MAX_RECORD / 3) * 4) return 'oversized';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return 'encoding';
  const b = Buffer.from(text, 'base64');
  if (b.length < HEADER_LEN + 1 + MAC_LEN) return 'short';
  if (b[0] !== 0x41 || b[1] !== 0x52) return 'magic';
  const macAt = b.length - MAC_LEN;
  if (!macVerifies(key, b)) return 'mac';
  if (b[2] !== RECORD_VERSION || b[3] !== 0) return 'version';
  const nodeLen = b[28]!;
  if (nodeLen < 1 || HEADER_LEN + nodeLen > macAt) return 'node';
  const raw = b.subarray(HEADER_LEN, HEADER_LEN + nodeLen);
  if (raw.some((c) => c > 0x7e)) return 'node';
  const node = raw.toString('latin1');
  if (!NODE_NAME.test(node)) return 'node';
  const rest = recordBody(b, b.subarray(HEADER_LEN + nodeLen, macAt));
  return typeof rest === 'string' ? rest : { node, ...rest };
}

/**
 * A record's JSON payload and its header's epoch, seq and writtenAt (bytes 4, 12, 20), checked
 * (shared with identity records, protocol/identity-record.ts); 'payload' when either is not valid.
 */
export function recordBody(b: Buffer, payload: Buffer): Omit<SignedRecord, 'node'> | 'payload' {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'payload';
  }
  const p = RecordPayloadSchema.safeParse(json);
  if (!p.success) return 'payload';
  const writtenAt = b.readBigUInt64BE(20);
  if (writtenAt > BigInt(Number.MAX_SAFE_INTEGER)) return 'payload';
  return { ...p.data, epoch: b.readBigUInt64BE(4), seq: b.readBigUInt64BE(12), writtenAt: Number(writtenAt) };
}
