/**
 * Pairwise keys between two certified nodes: X25519 between one node's private key and the other's
 * certified public key, then HKDF-SHA-256 with both public keys (sender's first, so each direction
 * has its own key) and the sender's boot epoch. Frames from A to B are MACed with
 * key(A→B, A's epoch): only A and B can make or check them, and a frame cannot be reflected or
 * passed on to a third node. Pure.
 */
import { createSecretKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { publicKeyFromRaw } from './keys';

const LABEL = Buffer.from('afsteer pairwise v1');

/** The X25519 shared secret of my private key and a peer's raw public key; throws for a low-order (all-zero) result. */
export function sharedSecret(myDh: KeyObject, peerDhRaw: Buffer): Buffer {
  const s = diffieHellman({ privateKey: myDh, publicKey: publicKeyFromRaw(peerDhRaw, 'x25519') });
  if (s.every((x) => x === 0)) throw new Error('X25519 gave an all-zero secret (a low-order public key)');
  return s;
}

/** The MAC key for frames from the sender (senderDh) to the receiver (receiverDh) in the sender's epoch, ready for createHmac. */
export function pairwiseKey(shared: Buffer, senderDh: Buffer, receiverDh: Buffer, senderEpoch: bigint): KeyObject {
  const epoch = Buffer.alloc(8);
  epoch.writeBigUInt64BE(senderEpoch);
  const info = Buffer.concat([LABEL, senderDh, receiverDh, epoch]);
  return createSecretKey(Buffer.from(hkdfSync('sha256', shared, Buffer.concat([senderDh, receiverDh]), info, 32)));
}
