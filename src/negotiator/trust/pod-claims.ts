/**
 * Whether a peer may claim a pod: with certificates in play, a pod is registered for a peer only
 * when both its addresses lie in that peer's certified pod CIDRs and no other certified node
 * (this one included) owns either of them. A peer without a certificate (a cluster-key peer
 * while the cluster migrates) may claim no address a certified node owns. Without identities
 * (auth cluster-key) nothing is judged, as before. Pure.
 */
import { certifiedCidrOf } from '../../identity/certificate';
import type { CertBook } from './cert-book';

/** Why a claim was refused. */
export type ClaimRefusal = 'outside-cidrs' | 'owned-by-other';

/** The refusal of node's claim on a pod with these addresses, or undefined when it may register it. */
export function judgeClaim(book: CertBook | undefined, node: string, pod: { ipv4: string; ipv6: string }): ClaimRefusal | undefined {
  if (!book) return undefined;
  const cert = book.get(node);
  for (const a of [pod.ipv4, pod.ipv6]) {
    if (cert && !certifiedCidrOf(cert, a)) return 'outside-cidrs';
    if (book.ownerOf(a, node) !== undefined) return 'owned-by-other';
  }
  return undefined;
}
