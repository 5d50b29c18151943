/** Conntrack settings the steering needs on a node (docs/architecture.md, the data plane). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const LIBERAL = '/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal';

/**
 * Makes TCP connection tracking liberal in the calling thread's netns: while a pair is steered,
 * its TCP segments cross the node inside the tunnel, so when it switches back to native the
 * node's old conntrack entry has a stale window and, strictly tracked, the next segments would be
 * INVALID — and dropped by `ct state invalid drop` (kube-proxy's rule). Liberal tracking only marks
 * out-of-window RSTs invalid. Returns true when it changed the setting; false when it was already
 * on or conntrack is not loaded (nothing can be INVALID then).
 */
export function ensureLiberalTcpTracking(): boolean {
  if (!existsSync(LIBERAL)) return false;
  if (readFileSync(LIBERAL, 'utf8').trim() === '1') return false;
  writeFileSync(LIBERAL, '1');
  return true;
}
