/** CNI_NETNS as ADD and CHECK take it: a network namespace that is not the host's, held open; anything else is code 4 before any side effect. */
import { type NetnsHandle, type NetnsId, NotANetnsError, openNetns, ownAndHostNetns, sameNetns } from '../net/netns';
import { CniCode, CniError } from './cni-error';

/** True when id is one of the host's namespaces (pure). */
export function isHostNetns(id: NetnsId, host: readonly NetnsId[]): boolean {
  return host.some((h) => sameNetns(h, id));
}

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

/**
 * The pod namespace recorded at ADD, when it is still there and still the same namespace
 * (st_dev/st_ino recorded at ADD; for older state without them, any namespace but the host's).
 * Undefined, with the reason, when the pod side must be left alone.
 */
export function openRecordedNetns(path: string, recorded: NetnsId | undefined): { ns?: NetnsHandle; why?: string } {
  let h: NetnsHandle;
  try {
    h = openNetns(path);
  } catch (err) {
    if (err instanceof NotANetnsError) return { why: err.message };
    throw err;
  }
  const why = recorded
    ? sameNetns(h, recorded)
      ? undefined
      : `${path} is no longer the namespace recorded at ADD`
    : isHostNetns(h, ownAndHostNetns())
      ? `${path} is the host's namespace`
      : undefined;
  if (why) {
    h.close();
    return { why };
  }
  return { ns: h };
}
