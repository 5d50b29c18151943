/**
 * The identity directories on disk. The authority's (`afsteer identity init --out DIR`):
 * authority.key (Ed25519 PKCS#8 PEM, 0600; kept off the nodes) and authority.pub (SPKI PEM). A
 * node's (`afsteer identity issue … --out DIR2`): node.key (its Ed25519 and X25519 private keys,
 * PEM, 0600), node.cert (armored certificate) and authority.pub. Files are opened without
 * following links (util/safe-fs) and written atomically (util/atomic-file); a private key readable
 * by group or others is refused.
 */
import type { KeyObject } from 'node:crypto';
import { closeSync, fstatSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file';
import { ensureTrustedDir, openOwnFile, READ_FLAGS } from '../util/safe-fs';
import { armor, dearmor } from './armor';
import { type Certificate, checkCertificate } from './certificate';
import { privateKeyFromPem, privateKeyPem, publicKeyFromPem, publicKeyPem, rawPublicKey } from './keys';
import { type RevocationList, verifyRevocations } from './revocation';

/** Armor label of a node certificate file. */
export const CERT_LABEL = 'AFSTEER NODE CERTIFICATE';
/** Armor label of a revocation list file. */
export const REVOCATION_LABEL = 'AFSTEER REVOCATION LIST';
/** File names in the directories. */
export const FILES = { authorityKey: 'authority.key', authorityPub: 'authority.pub', nodeKey: 'node.key', nodeCert: 'node.cert' } as const;

/** A node's identity as afsteerd uses it: its verified certificate, its private keys, the authority's public key. */
export interface NodeIdentity {
  cert: Certificate;
  signKey: KeyObject;
  dhKey: KeyObject;
  authority: KeyObject;
}

/** Reads one of the identity files (safe-fs rules); secret: refused when group or others may read it. */
export function readIdentityFile(path: string, secret: boolean): string {
  let fd: number;
  try {
    fd = openOwnFile(path, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === 'ENOENT' ? 'does not exist' : (err as Error).message}`, { cause: err });
  }
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (secret && mode & 0o077) throw new Error(`${path}: readable or writable by group/others (mode ${mode.toString(8)}); chmod 600 it`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Writes files into dir (made if missing, every directory on the way trusted), each atomically; secret ones 0600, the others 0644. */
export function writeIdentityFiles(dir: string, files: { name: string; text: string; secret: boolean }[]): void {
  const abs = resolve(dir);
  ensureTrustedDir(abs, 0o700);
  for (const f of files) writeFileAtomic(join(abs, f.name), f.text, f.secret ? 0o600 : 0o644);
}

/** The authority's private key from its directory. */
export function loadAuthorityKey(dir: string): KeyObject {
  const path = join(dir, FILES.authorityKey);
  return privateKeyFromPem(readIdentityFile(path, true), 'ed25519', path);
}

/** An authority public key file. */
export function loadAuthorityPub(path: string): KeyObject {
  return publicKeyFromPem(readIdentityFile(path, false), 'ed25519', path);
}

/** The text of node.key: the node's Ed25519 then X25519 private key. */
export function nodeKeyText(signKey: KeyObject, dhKey: KeyObject): string {
  return privateKeyPem(signKey) + privateKeyPem(dhKey);
}

/** A certificate file's bytes (armored). */
export function readCertFile(path: string): Buffer {
  return dearmor(readIdentityFile(path, false), CERT_LABEL, path);
}

/**
 * Loads a node identity directory and checks it hangs together: the certificate is the
 * authority's and valid at now, and node.key holds the private halves of the certificate's keys.
 */
export function loadNodeIdentity(dir: string, now: number): NodeIdentity {
  const authority = loadAuthorityPub(join(dir, FILES.authorityPub));
  const certPath = join(dir, FILES.nodeCert);
  const cert = checkCertificate(readCertFile(certPath), authority, now);
  if (typeof cert === 'string') throw new Error(`${certPath}: certificate refused: ${cert}`);
  const keyPath = join(dir, FILES.nodeKey);
  const blocks = readIdentityFile(keyPath, true).match(/-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n?/g) ?? [];
  if (blocks.length !== 2) throw new Error(`${keyPath}: expected two PEM private keys (Ed25519, X25519), found ${blocks.length}`);
  const signKey = privateKeyFromPem(blocks[0]!, 'ed25519', `${keyPath} (first key)`);
  const dhKey = privateKeyFromPem(blocks[1]!, 'x25519', `${keyPath} (second key)`);
  if (!rawPublicKey(signKey, 'ed25519').equals(cert.signKey) || !rawPublicKey(dhKey, 'x25519').equals(cert.dhKey))
    throw new Error(`${keyPath}: its keys are not the ones ${certPath} certifies`);
  return { cert, signKey, dhKey, authority };
}

/** A revocation list file, checked against the authority. */
export function loadRevocationFile(path: string, authority: KeyObject): RevocationList {
  const list = verifyRevocations(dearmor(readIdentityFile(path, false), REVOCATION_LABEL, path), authority);
  if (typeof list === 'string') throw new Error(`${path}: revocation list refused: ${list}`);
  return list;
}

/** Armored text of a public key and of a certificate, for writing. */
export const identityText = {
  authorityPub: (k: KeyObject) => publicKeyPem(k),
  cert: (b: Buffer) => armor(CERT_LABEL, b),
  revocations: (b: Buffer) => armor(REVOCATION_LABEL, b),
};
