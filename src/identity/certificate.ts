/**
 * Node certificates: what the cluster authority says about one node — its name, its pod CIDRs,
 * its control addresses, its own public keys (Ed25519 to sign, X25519 for pairwise keys) and a
 * validity period — in a compact, versioned, length-checked binary form signed by the authority.
 * Pure (no files, no clock: `now` is an argument).
 *
 *   0  'A' 'C'             magic
 *   2  version (1)
 *   3  0                   reserved
 *   4  authority id (8)    first bytes of SHA-256 of the authority's raw public key
 *   12 issuedAt u64 BE     ms since 1970; the certificate is valid from then (revocation compares it)
 *   20 notAfter u64 BE     ms since 1970; valid until then
 *   28 nodeLen u8, node name (1..63 bytes, [A-Za-z0-9._-])
 *   .. signing key (32)    the node's Ed25519 public key
 *   .. dh key (32)         the node's X25519 public key
 *   .. cidrCount u8 (1..8), each: family u8 (4|6), prefix u8, address (4|16), host bits zero
 *   .. addrCount u8 (1..8), each: family u8 (4|6), address (4|16)
 *   -64 signature          Ed25519(authority, every byte before it)
 *
 * Nothing follows the signature: a certificate of any other length is refused.
 */
import { createHash, type KeyObject, sign, verify } from 'node:crypto';
import { addressBytes, bytesToAddress, canonical, familyOf, parseCidr } from '../net/ip';
import { AUTHORITY_ID_LEN, authorityId, RAW_KEY_LEN, SIGNATURE_LEN } from './keys';

/** Certificate format version carried in byte 2. */
export const CERT_VERSION = 1;
/** Largest encoded certificate. */
export const MAX_CERT_LEN = 512;
/** Most pod CIDRs, and most control addresses, in one certificate. */
export const MAX_CERT_ITEMS = 8;
/** A node name as certificates (and frames) allow it. */
export const CERT_NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** How far a node's clock may lag the issuer's: a certificate is taken this long before its issuedAt. */
export const CLOCK_SKEW_MS = 5 * 60_000;
const HEADER_LEN = 29;

/** A pod CIDR a certificate covers. */
export interface CertCidr {
  family: 4 | 6;
  /** Network address, canonical text. */
  address: string;
  prefix: number;
}

/** What a certificate says. */
export interface CertificateBody {
  node: string;
  issuedAt: number;
  notAfter: number;
  /** Raw Ed25519 public key of the node. */
  signKey: Buffer;
  /** Raw X25519 public key of the node. */
  dhKey: Buffer;
  podCidrs: CertCidr[];
  /** Control addresses, canonical text. */
  addresses: string[];
}

/** A decoded certificate with its bytes (signature not yet checked: see verifyCertificate). */
export interface Certificate extends CertificateBody {
  authorityId: Buffer;
  /** The whole encoded certificate. */
  bytes: Buffer;
  /** SHA-256 of bytes, hex: names this exact certificate. */
  fingerprint: string;
}

/** Why a certificate was refused. */
export type CertRejectReason =
  | 'short'
  | 'oversized'
  | 'magic'
  | 'version'
  | 'malformed'
  | 'authority'
  | 'signature'
  | 'not-yet-valid'
  | 'expired'
  | 'revoked';

/** A pod CIDR from its text form ("10.1.0.0/24"); throws when it is not a network address with its prefix. */
export function certCidr(text: string): CertCidr {
  const c = parseCidr(text);
  const net = maskAddress(c.address, c.prefix);
  if (net !== c.address) throw new Error(`${text} has host bits set (the network is ${net}/${c.prefix})`);
  return { family: c.family, address: net, prefix: c.prefix };
}

/** Text form of a pod CIDR. */
export function cidrText(c: CertCidr): string {
  return `${c.address}/${c.prefix}`;
}

/** address with every bit past prefix cleared (canonical text). */
function maskAddress(address: string, prefix: number): string {
  const b = addressBytes(address);
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    b[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return bytesToAddress(b);
}

/** True when address lies in cidr (same family, same leading prefix bits). */
export function cidrContains(cidr: CertCidr, address: string): boolean {
  if (familyOf(address) !== cidr.family) return false;
  return maskAddress(address, cidr.prefix) === cidr.address;
}

/** Encodes and signs a certificate with the authority's private key; throws on anything a decoder would refuse. */
export function issueCertificate(authority: KeyObject, body: CertificateBody): Buffer {
  if (!CERT_NODE_NAME.test(body.node)) throw new Error(`invalid node name ${JSON.stringify(body.node)}`);
  if (body.signKey.length !== RAW_KEY_LEN || body.dhKey.length !== RAW_KEY_LEN) throw new Error('node public keys must be 32 bytes');
  if (body.podCidrs.length < 1 || body.podCidrs.length > MAX_CERT_ITEMS) throw new Error(`needs 1–${MAX_CERT_ITEMS} pod CIDRs`);
  if (body.addresses.length < 1 || body.addresses.length > MAX_CERT_ITEMS) throw new Error(`needs 1–${MAX_CERT_ITEMS} control addresses`);
  if (!(body.notAfter > body.issuedAt) || body.issuedAt < 0 || !Number.isSafeInteger(body.notAfter))
    throw new Error('notAfter must be after issuedAt');
  const parts: Buffer[] = [];
  const head = Buffer.alloc(HEADER_LEN);
  head.write('AC', 0, 'ascii');
  head[2] = CERT_VERSION;
  authorityId(authority).copy(head, 4);
  head.writeBigUInt64BE(BigInt(body.issuedAt), 12);
  head.writeBigUInt64BE(BigInt(body.notAfter), 20);
  head[28] = body.node.length;
  parts.push(head, Buffer.from(body.node, 'ascii'), body.signKey, body.dhKey, Buffer.from([body.podCidrs.length]));
  for (const c of body.podCidrs) {
    const checked = certCidr(cidrText(c));
    parts.push(Buffer.from([checked.family, checked.prefix]), addressBytes(checked.address));
  }
  parts.push(Buffer.from([body.addresses.length]));
  for (const a of body.addresses) {
    const f = familyOf(a);
    if (!f) throw new Error(`not an IP address: ${JSON.stringify(a)}`);
    parts.push(Buffer.from([f]), addressBytes(a));
  }
  const unsigned = Buffer.concat(parts);
  const cert = Buffer.concat([unsigned, sign(null, unsigned, authority)]);
  if (cert.length > MAX_CERT_LEN) throw new Error(`certificate of ${cert.length} bytes exceeds ${MAX_CERT_LEN}`);
  return cert;
}

/** Decodes a certificate's bytes, checking every length and field (not the signature: verifyCertificate does). */
export function decodeCertificate(b: Buffer): Certificate | CertRejectReason {
  if (b.length > MAX_CERT_LEN) return 'oversized';
  if (b.length < HEADER_LEN + 1 + 2 * RAW_KEY_LEN + 2 + SIGNATURE_LEN) return 'short';
  if (b[0] !== 0x41 || b[1] !== 0x43) return 'magic';
  if (b[2] !== CERT_VERSION || b[3] !== 0) return 'version';
  const end = b.length - SIGNATURE_LEN;
  const nodeLen = b[28]!;
  let at = HEADER_LEN;
  const take = (n: number): Buffer | undefined => {
    if (at + n > end) return undefined;
    const s = b.subarray(at, at + n);
    at += n;
    return s;
  };
  const rawName = take(nodeLen);
  if (!rawName || rawName.some((c) => c > 0x7e)) return 'malformed';
  const node = rawName.toString('latin1');
  if (!CERT_NODE_NAME.test(node)) return 'malformed';
  const signKey = take(RAW_KEY_LEN);
  const dhKey = take(RAW_KEY_LEN);
  if (!signKey || !dhKey) return 'malformed';
  const count = (): number | undefined => {
    const c = take(1)?.[0];
    return c !== undefined && c >= 1 && c <= MAX_CERT_ITEMS ? c : undefined;
  };
  const nCidrs = count();
  if (nCidrs === undefined) return 'malformed';
  const podCidrs: CertCidr[] = [];
  for (let i = 0; i < nCidrs; i++) {
    const h = take(2);
    if (!h || (h[0] !== 4 && h[0] !== 6)) return 'malformed';
    const family = h[0] as 4 | 6;
    const raw = take(family === 4 ? 4 : 16);
    if (!raw || h[1]! > (family === 4 ? 32 : 128)) return 'malformed';
    const address = bytesToAddress(raw);
    if (maskAddress(address, h[1]!) !== address) return 'malformed';
    podCidrs.push({ family, address, prefix: h[1]! });
  }
  const nAddrs = count();
  if (nAddrs === undefined) return 'malformed';
  const addresses: string[] = [];
  for (let i = 0; i < nAddrs; i++) {
    const f = take(1)?.[0];
    if (f !== 4 && f !== 6) return 'malformed';
    const raw = take(f === 4 ? 4 : 16);
    if (!raw) return 'malformed';
    addresses.push(bytesToAddress(raw));
  }
  if (at !== end) return 'malformed';
  const issuedAt = b.readBigUInt64BE(12);
  const notAfter = b.readBigUInt64BE(20);
  if (issuedAt > BigInt(Number.MAX_SAFE_INTEGER) || notAfter > BigInt(Number.MAX_SAFE_INTEGER) || notAfter <= issuedAt) return 'malformed';
  const bytes = Buffer.from(b);
  return {
    node,
    issuedAt: Number(issuedAt),
    notAfter: Number(notAfter),
    signKey: Buffer.from(signKey),
    dhKey: Buffer.from(dhKey),
    podCidrs,
    addresses,
    authorityId: Buffer.from(b.subarray(4, 4 + AUTHORITY_ID_LEN)),
    bytes,
    fingerprint: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** Checks a decoded certificate against the authority and the clock: undefined when it is valid, else why not. */
export function verifyCertificate(c: Certificate, authority: KeyObject, now: number): CertRejectReason | undefined {
  // The id first: another authority's certificate is refused without a signature check.
  if (!c.authorityId.equals(authorityId(authority))) return 'authority';
  const end = c.bytes.length - SIGNATURE_LEN;
  if (!verify(null, c.bytes.subarray(0, end), authority, c.bytes.subarray(end))) return 'signature';
  if (now < c.issuedAt - CLOCK_SKEW_MS) return 'not-yet-valid';
  if (now >= c.notAfter) return 'expired';
  return undefined;
}

/** Decodes and verifies in one step. */
export function checkCertificate(b: Buffer, authority: KeyObject, now: number): Certificate | CertRejectReason {
  const c = decodeCertificate(b);
  if (typeof c === 'string') return c;
  return verifyCertificate(c, authority, now) ?? c;
}

/** The certified pod CIDR of c holding address, if any. */
export function certifiedCidrOf(c: CertificateBody, address: string): CertCidr | undefined {
  const a = canonical(address);
  return c.podCidrs.find((cidr) => cidrContains(cidr, a));
}
