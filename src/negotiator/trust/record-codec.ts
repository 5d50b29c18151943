/**
 * How this node writes and judges etcd records, by its auth mode: cluster-key (and both) write
 * cluster-key records; identity writes records signed by the node's key with its certificate.
 * Identity records are read in both and identity (the certificate checked as a frame's is, so
 * the record of node N is only N's); cluster-key records in cluster-key and both. A target from an
 * identity record is marked identity-v1, so a node in "both" announces to it with its
 * certificate.
 */
import type { NodeIdentity } from '../../identity/identity-files';
import type { RecordCodec } from '../discovery/book';
import { decodeIdentityRecord, encodeIdentityRecord, isIdentityRecord } from '../protocol/identity-record';
import { decodeRecord, encodeRecord } from '../protocol/record';
import type { CertBook } from './cert-book';
import { type AuthMode, IDENTITY_CAPABILITY } from './frame-auth';

/** The record codec of a node with this mode and these credentials. */
export function recordCodec(
  mode: AuthMode,
  key: Buffer | undefined,
  identity: NodeIdentity | undefined,
  book: CertBook | undefined,
): RecordCodec {
  return {
    encode: (r) => (mode === 'identity' ? encodeIdentityRecord(identity!.signKey, identity!.cert.bytes, r) : encodeRecord(key!, r)),
    decode: (value) => {
      const text = typeof value === 'string' ? value : value.toString('latin1');
      if (isIdentityRecord(Buffer.from(text.slice(0, 8), 'base64'))) {
        if (mode === 'cluster-key' || !book) return 'version';
        const r = decodeIdentityRecord(text, (node, cert) => book.check(node, cert));
        if (typeof r === 'string') return r;
        const { cert: _cert, ...rec } = r;
        return { ...rec, capabilities: [IDENTITY_CAPABILITY] };
      }
      if (mode === 'identity') return 'cluster-key';
      return decodeRecord(key!, text);
    },
  };
}
