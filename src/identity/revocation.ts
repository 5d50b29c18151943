/**
 * The authority's revocation list: node names, each with a time; a certificate of that node
 * issued at or before the time is revoked (so a node re-issued a new key under the same name
 * after the revocation is accepted again). Signed by the authority, versioned, length-checked.
 * Pure.
 *
 *   0  'A' 'V'             magic
 *   2  version (1)
 *   3  0                   reserved
 *   4  authority id (8)
 *   12 issuedAt u64 BE     ms since 1970: a newer list supersedes an older one
 *   20 count u16 BE (0..4096), each: nodeLen u8, node name, revokedAt u64 BE (ms since 1970)
 *   -64 signature          Ed25519(authority, every byte before it)
 */
import { type KeyObject, sign, verify } from 'node:crypto';
import { CERT_NODE_NAME, type CertificateBody } from './certificate';
import { AUTHORITY_ID_LEN, authorityId, SIGNATURE_LEN } from './keys';

/** Revocation list format version. */
export const REVOCATION_VERSION = 1;
/** Most entries in one list. */
export const MAX_REVOCATIONS = 4096;
const HEADER_LEN = 22;

/** A revocation list: when it was issued, and each revoked node with its time. */
export interface RevocationList {
  issuedAt: number;
  /** Node name → certificates issued at or before this time (ms since 1970) are revoked. */
  revoked: Map<string, number>;
}

/** Why a list was refused. */
export type RevocationRejectReason = 'short' | 'magic' | 'version' | 'malformed' | 'authority' | 'signature';

/** An empty list (nothing revoked). */
export function emptyRevocations(): RevocationList {
  return { issuedAt: 0, revoked: new Map() };
}

/** Encodes and signs a list with the authority's private key. */
export function signRevocations(authority: KeyObject, list: RevocationList): Buffer {
  if (list.revoked.size > MAX_REVOCATIONS) throw new Error(`more than ${MAX_REVOCATIONS} revocations`);
  const head = Buffer.alloc(HEADER_LEN);
  head.write('AV', 0, 'ascii');
  head[2] = REVOCATION_VERSION;
  authorityId(authority).copy(head, 4);
  head.writeBigUInt64BE(BigInt(list.issuedAt), 12);
  head.writeUInt16BE(list.revoked.size, 20);
  const parts = [head];
  for (const [node, at] of [...list.revoked].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!CERT_NODE_NAME.test(node)) throw new Error(`invalid node name ${JSON.stringify(node)}`);
    const e = Buffer.alloc(1 + node.length + 8);
    e[0] = node.length;
    e.write(node, 1, 'ascii');
    e.writeBigUInt64BE(BigInt(at), 1 + node.length);
    parts.push(e);
  }
  const unsigned = Buffer.concat(parts);
  return Buffer.concat([unsigned, sign(null, unsigned, authority)]);
}

/** Decodes a list and checks it is the authority's. */
export function verifyRevocations(b: Buffer, authority: KeyObject): RevocationList | RevocationRejectReason {
  if (b.length < HEADER_LEN + SIGNATURE_LEN) return 'short';
  if (b[0] !== 0x41 || b[1] !== 0x56) return 'magic';
  if (b[2] !== REVOCATION_VERSION || b[3] !== 0) return 'version';
  if (!b.subarray(4, 4 + AUTHORITY_ID_LEN).equals(authorityId(authority))) return 'authority';
  const end = b.length - SIGNATURE_LEN;
  if (!verify(null, b.subarray(0, end), authority, b.subarray(end))) return 'signature';
  const n = b.readUInt16BE(20);
  if (n > MAX_REVOCATIONS) return 'malformed';
  const revoked = new Map<string, number>();
  let at = HEADER_LEN;
  for (let i = 0; i < n; i++) {
    const len = b[at];
    if (len === undefined || at + 1 + len + 8 > end) return 'malformed';
    const node = b.subarray(at + 1, at + 1 + len).toString('latin1');
    if (!CERT_NODE_NAME.test(node)) return 'malformed';
    const when = b.readBigUInt64BE(at + 1 + len);
    if (when > BigInt(Number.MAX_SAFE_INTEGER)) return 'malformed';
    revoked.set(node, Number(when));
    at += 1 + len + 8;
  }
  if (at !== end) return 'malformed';
  const issuedAt = b.readBigUInt64BE(12);
  if (issuedAt > BigInt(Number.MAX_SAFE_INTEGER)) return 'malformed';
  return { issuedAt: Number(issuedAt), revoked };
}

/** True when the list revokes this certificate (its node's entry is at or after its issuedAt). */
export function isRevoked(list: RevocationList, c: Pick<CertificateBody, 'node' | 'issuedAt'>): boolean {
  const at = list.revoked.get(c.node);
  return at !== undefined && c.issuedAt <= at;
}
