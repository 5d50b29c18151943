/**
 * The keys of afsteer's identities (node:crypto only): Ed25519 for the authority and each node's
 * signatures, X25519 for each node's pairwise keys; raw 32-byte public keys as certificates carry
 * them, PKCS#8 / SPKI PEM as files keep them. Pure apart from key generation.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** Length of a raw Ed25519 or X25519 public key. */
export const RAW_KEY_LEN = 32;
/** Length of an Ed25519 signature. */
export const SIGNATURE_LEN = 64;
/** Length of an authority id (the first bytes of SHA-256 of its raw public key). */
export const AUTHORITY_ID_LEN = 8;

// SPKI DER prefixes of the two key types (RFC 8410): the raw key follows them.
const SPKI_PREFIX = {
  ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
  x25519: Buffer.from('302a300506032b656e032100', 'hex'),
} as const;

/** A key type afsteer's identities use. */
export type KeyType = keyof typeof SPKI_PREFIX;

/** A new key pair of type. */
export function newKeyPair(type: KeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  return type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519');
}

/** The raw 32 bytes of a public key of type (throws for another type). */
export function rawPublicKey(key: KeyObject, type: KeyType): Buffer {
  if (key.asymmetricKeyType !== type) throw new Error(`expected an ${type} key, got ${key.asymmetricKeyType ?? key.type}`);
  const der = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return Buffer.from(der.subarray(der.length - RAW_KEY_LEN));
}

/** A public key of type from its raw 32 bytes (throws when they are not one). */
export function publicKeyFromRaw(raw: Uint8Array, type: KeyType): KeyObject {
  if (raw.length !== RAW_KEY_LEN) throw new Error(`an ${type} public key is ${RAW_KEY_LEN} bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX[type], raw]), format: 'der', type: 'spki' });
}

/** A private key of type from PEM text (throws, naming what, when it is not one). */
export function privateKeyFromPem(pem: string, type: KeyType, what: string): KeyObject {
  let k: KeyObject;
  try {
    k = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`${what}: not a PEM private key`, { cause: err });
  }
  if (k.asymmetricKeyType !== type) throw new Error(`${what}: an ${k.asymmetricKeyType} key, expected ${type}`);
  return k;
}

/** A public key of type from PEM text (throws, naming what, when it is not one). */
export function publicKeyFromPem(pem: string, type: KeyType, what: string): KeyObject {
  let k: KeyObject;
  try {
    k = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`${what}: not a PEM public key`, { cause: err });
  }
  if (k.asymmetricKeyType !== type) throw new Error(`${what}: an ${k.asymmetricKeyType} key, expected ${type}`);
  return k;
}

/** PEM text of a private key (PKCS#8). */
export function privateKeyPem(key: KeyObject): string {
  return String(key.export({ type: 'pkcs8', format: 'pem' }));
}

/** PEM text of a public key (SPKI). */
export function publicKeyPem(key: KeyObject): string {
  return String(key.export({ type: 'spki', format: 'pem' }));
}

/** The id of an authority: the first AUTHORITY_ID_LEN bytes of SHA-256 over its raw public key. */
export function authorityId(pub: KeyObject): Buffer {
  return createHash('sha256').update(rawPublicKey(pub, 'ed25519')).digest().subarray(0, AUTHORITY_ID_LEN);
}
