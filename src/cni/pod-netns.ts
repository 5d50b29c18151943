/** CNI_NETNS as ADD and CHECK take it: a network namespace that is not the host's, held open; anything else is code 4 before any side effect. */
import { type NetnsHandle, NotANetnsError, openNetns, ownAndHostNetns } from '../net/netns';
import { isHostNetns } from '../node/recorded-netns';
import { CniCode, CniError } from './cni-error';

/** Opens the pod's namespace at CNI_NETNS; a path that is not a network namespace, or is the host's, is code 4 (invalid CNI_NETNS). */
export function openPodNetns(netns: string): NetnsHandle {
  let h: NetnsHandle;
  try {
    h = openNetns(netns);
  } catch (err) {
    if (err instanceof NotANetnsError)
      throw new CniError(CniCode.InvalidEnv, `invalid CNI_NETNS: ${err.message}`, undefined, { cause: err });
    throw err;
  }
  if (isHostNetns(h, ownAndHostNetns())) {
    h.close();
    throw new CniError(
      CniCode.InvalidEnv,
      `invalid CNI_NETNS: ${netns} is the host's network namespace; afsteer only configures pod namespaces`,
    );
  }
  return h;
}
