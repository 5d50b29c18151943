/**
 * How this node authenticates its frames and judges others', by its auth mode:
 *   cluster-key  version-1 frames MACed with the cluster key, as before identities;
 *   identity     version-2 frames only (protocol/identity-frame.ts): pairwise-MACed to peers whose
 *                certificate it holds, signed announcements (with its certificate) to the others;
 *                version-1 frames refused;
 *   both         the migration step: identity frames to peers whose certificate it holds (and a
 *                signed announcement to a peer announcing identity-v1 it holds none for),
 *                cluster-key frames to the rest; both kinds accepted, except a cluster-key frame
 *                naming a node whose certificate it holds (no downgrade).
 * Before any crypto, an identity frame from a node whose certificate is neither held nor carried
 * is refused. Pairwise keys are derived once per peer certificate and sender epoch and cached.
 */
import { createHmac, type KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import type { Certificate } from '../../identity/certificate';
import type { NodeIdentity } from '../../identity/identity-files';
import { publicKeyFromRaw } from '../../identity/keys';
import { pairwiseKey, sharedSecret } from '../../identity/pairwise';
import { decodeFrame, encodeFrame, type Frame, type FrameTypeName, payloadRoom, type RejectReason } from '../protocol/frame';
import {
  encodeIdentityFrame,
  type FrameAuthName,
  type IdentityFrameReject,
  identityPayloadRoom,
  isIdentityFrame,
  parseIdentityFrame,
} from '../protocol/identity-frame';
import type { CertBook, CertRefusal } from './cert-book';

/** How a node authenticates (config `auth`). */
export type AuthMode = 'cluster-key' | 'identity' | 'both';

/** The capability a node with an identity announces (in every mode but cluster-key). */
export const IDENTITY_CAPABILITY = 'identity-v1';

/** Whom a frame goes to, as far as the sender knows. */
export interface AuthTarget {
  node?: string;
  capabilities?: readonly string[];
}

/** An authenticated frame, with the sender's certificate when it came as an identity frame. */
export interface OpenedFrame extends Frame {
  cert?: Certificate;
  auth: FrameAuthName | 'cluster-key';
}

/** Why a datagram was refused before its payload was looked at. */
export type AuthRefusal =
  | RejectReason
  | IdentityFrameReject
  | CertRefusal
  | 'self'
  | 'unknown-identity'
  | 'cluster-key'
  | 'downgrade'
  | 'signed-type';

/** What FrameAuth is built from. */
export interface FrameAuthOptions {
  mode: AuthMode;
  node: string;
  epoch: bigint;
  /** The cluster key (cluster-key and both). */
  key?: Buffer;
  /** This node's identity and the peer certificates (identity and both). */
  identity?: NodeIdentity;
  book?: CertBook;
  /** Told when a peer's certificate is installed for the first time or replaced (a new key under the same name). */
  onCertificate?: (c: Certificate, how: 'new' | 'rotated') => void;
}

interface Keyed {
  fingerprint: string;
  epoch: bigint;
  key: KeyObject;
}

/** Seals and opens frames for one daemon. */
export class FrameAuth {
  readonly mode: AuthMode;
  private readonly shared = new Map<string, { fingerprint: string; secret: Buffer; signKey: KeyObject }>();
  private readonly txKeys = new Map<string, Keyed>();
  private readonly rxKeys = new Map<string, Keyed>();

  constructor(private readonly o: FrameAuthOptions) {
    this.mode = o.mode;
    if (o.mode !== 'identity' && !o.key) throw new Error(`auth ${o.mode} needs the cluster key`);
    if (o.mode !== 'cluster-key' && !(o.identity && o.book)) throw new Error(`auth ${o.mode} needs an identity`);
  }

  /** The frame for type, counter seq and payload toward to (undefined for the multicast group); undefined when this mode cannot reach it. */
  seal(type: FrameTypeName, seq: bigint, payload: Buffer, to?: AuthTarget): Buffer | undefined {
    const f = { type, epoch: this.o.epoch, seq, node: this.o.node, payload };
    const cert = to?.node !== undefined ? this.o.book?.get(to.node) : undefined;
    const withCert = type === 'announce' ? this.o.identity?.cert.bytes : undefined;
    if (this.mode !== 'cluster-key' && cert) {
      const key = this.txKey(cert);
      return encodeIdentityFrame({ ...f, auth: 'pairwise', cert: withCert }, (b) => createHmac('sha256', key).update(b).digest());
    }
    const signedAnnounce =
      type === 'announce' && (this.mode === 'identity' || (this.mode === 'both' && to?.capabilities?.includes(IDENTITY_CAPABILITY)));
    if (signedAnnounce)
      return encodeIdentityFrame({ ...f, auth: 'signed', cert: withCert }, (b) => sign(null, b, this.o.identity!.signKey));
    if (this.mode === 'identity') return undefined;
    return encodeFrame(this.o.key!, f);
  }

  /** Payload bytes a frame of type can carry, whichever way it is sealed. */
  room(type: FrameTypeName): number {
    const v1 = payloadRoom(this.o.node);
    if (!this.o.identity) return v1;
    const v2 =
      type === 'announce'
        ? identityPayloadRoom(this.o.node, this.o.identity.cert.bytes.length, 'signed')
        : identityPayloadRoom(this.o.node, 0, 'pairwise');
    return Math.min(v1, v2);
  }

  /** Authenticates a datagram (not an echo probe): the frame and its sender's certificate, or why it was refused. */
  open(b: Buffer): OpenedFrame | AuthRefusal {
    if (!isIdentityFrame(b)) {
      if (this.mode === 'identity') return b.length > 3 && b[0] === 0x41 && b[1] === 0x46 && b[2] === 1 ? 'cluster-key' : 'magic';
      const f = decodeFrame(this.o.key!, b);
      if (typeof f === 'string') return f;
      // A node that has shown its certificate speaks with it: the cluster key no longer speaks for it.
      if (this.o.book?.get(f.node)) return 'downgrade';
      return { ...f, auth: 'cluster-key' };
    }
    if (this.mode === 'cluster-key') return 'version';
    const p = parseIdentityFrame(b);
    if (typeof p === 'string') return p;
    if (p.node === this.o.node) return 'self';
    if (p.auth === 'signed' && p.type !== 'announce') return 'signed-type';
    const book = this.o.book!;
    let cert: Certificate;
    if (p.cert) {
      const c = book.check(p.node, p.cert);
      if (typeof c === 'string') return c;
      cert = c;
    } else {
      const c = book.get(p.node);
      if (!c) return 'unknown-identity';
      cert = c;
    }
    const peer = this.peerKeys(cert);
    if (p.auth === 'signed') {
      if (!verify(null, p.signed, peer.signKey, p.tag)) return 'mac';
    } else {
      const key = this.rxKey(cert, p.epoch);
      if (!timingSafeEqual(createHmac('sha256', key).update(p.signed).digest(), p.tag)) return 'mac';
      // Cached only once a frame authenticated under it: made-up epochs cannot evict the real one.
      const k = this.rxKeys.get(cert.node);
      if (!k || k.fingerprint !== cert.fingerprint || p.epoch > k.epoch)
        this.rxKeys.set(cert.node, { fingerprint: cert.fingerprint, epoch: p.epoch, key });
    }
    const how = book.install(cert);
    if (how !== 'same') this.o.onCertificate?.(cert, how);
    return { type: p.type, epoch: p.epoch, seq: p.seq, node: p.node, payload: p.payload, cert, auth: p.auth };
  }

  /** Forgets a node's cached keys (its certificate was forgotten). */
  forget(node: string): void {
    this.shared.delete(node);
    this.txKeys.delete(node);
    this.rxKeys.delete(node);
  }

  private peerKeys(c: Certificate): { secret: Buffer; signKey: KeyObject } {
    let s = this.shared.get(c.node);
    if (s?.fingerprint !== c.fingerprint) {
      s = {
        fingerprint: c.fingerprint,
        secret: sharedSecret(this.o.identity!.dhKey, c.dhKey),
        signKey: publicKeyFromRaw(c.signKey, 'ed25519'),
      };
      this.shared.set(c.node, s);
    }
    return s;
  }

  private txKey(c: Certificate): KeyObject {
    const k = this.txKeys.get(c.node);
    if (k && k.fingerprint === c.fingerprint) return k.key;
    const own = this.o.identity!.cert.dhKey;
    const key = pairwiseKey(this.peerKeys(c).secret, own, c.dhKey, this.o.epoch);
    this.txKeys.set(c.node, { fingerprint: c.fingerprint, epoch: this.o.epoch, key });
    return key;
  }

  private rxKey(c: Certificate, epoch: bigint): KeyObject {
    const k = this.rxKeys.get(c.node);
    if (k && k.fingerprint === c.fingerprint && k.epoch === epoch) return k.key;
    return pairwiseKey(this.peerKeys(c).secret, c.dhKey, this.o.identity!.cert.dhKey, epoch);
  }
}
