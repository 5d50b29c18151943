/** The pod namespace an attachment's state recorded at ADD, reopened only while it is still that namespace (DEL, GC, an upgrade's program swap). */
import { type NetnsHandle, type NetnsId, NotANetnsError, openNetns, ownAndHostNetns, sameNetns } from '../net/netns';

/** True when id is one of the host's namespaces (pure). */
export function isHostNetns(id: NetnsId, host: readonly NetnsId[]): boolean {
  return host.some((h) => sameNetns(h, id));
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
