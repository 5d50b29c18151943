/**
 * Where afsteer's programs go for a pod interface, decided by what the interface is (netlink in
 * the pod's namespace), never by the name of the plugin before afsteer:
 *   - a veth whose peer is in this host's namespace: on that host-side veth (bridge, ptp);
 *   - anything else — macvlan, ipvlan (l2, l3), a device moved in (host-device, an SR-IOV VF, a
 *     veth whose peer lives in another namespace) — inside the pod's namespace on the pod's own
 *     interface, with its parent (the link a macvlan or ipvlan sits on, when that is in this
 *     host's namespace) bounding the MTU.
 */
import { closeSync, openSync } from 'node:fs';
import type { LinkInfo, Rtnl } from '../net/rtnl';
import { CniCode, CniError } from './cni-error';
import type { CniEnv } from './env';

/** Where the programs of one attachment run. */
export type Placement =
  | { kind: 'host-veth'; podLink: LinkInfo; hostLink: LinkInfo }
  | { kind: 'pod'; podLink: LinkInfo; parent?: LinkInfo; why: string };

/** The id the pod's namespace gives this thread's (the host's) namespace, or undefined when it gives none. */
async function hostNsidSeenFromPod(pod: Rtnl): Promise<number | undefined> {
  const fd = openSync('/proc/thread-self/ns/net', 'r');
  try {
    return await pod.nsidOf(fd);
  } finally {
    closeSync(fd);
  }
}

/** Finds the pod interface and decides where afsteer's programs go; a missing interface or a half-visible veth is a clear error. */
export async function findPlacement(pod: Rtnl, host: Rtnl, env: CniEnv): Promise<Placement> {
  const podLink = await pod.linkByName(env.ifname);
  if (!podLink)
    throw new CniError(CniCode.Internal, `interface ${env.ifname} not found in ${env.netns}: the plugin before afsteer did not create it`);
  // IFLA_LINK with IFLA_LINK_NETNSID: the veth's peer (a macvlan's, an ipvlan's parent) is in another namespace.
  const hostNsid = podLink.linkNetnsid === undefined ? undefined : await hostNsidSeenFromPod(pod);
  const linkedToHost = hostNsid !== undefined && podLink.linkNetnsid === hostNsid && podLink.peerIndex !== undefined;
  if (podLink.kind === 'veth' && linkedToHost) {
    const hostLink = await host.linkByIndex(podLink.peerIndex!);
    if (hostLink?.kind !== 'veth' || hostLink.peerIndex !== podLink.index) {
      throw new CniError(
        CniCode.InvalidConfig,
        `the veth peer of ${env.ifname} (ifindex ${podLink.peerIndex}) is not in the host network namespace`,
      );
    }
    return { kind: 'host-veth', podLink, hostLink };
  }
  const what = podLink.kind ? `a ${podLink.kind} link` : 'a device without a link kind (a physical or virtual function)';
  if (podLink.kind === 'veth')
    return { kind: 'pod', podLink, why: `${what} whose peer is not in this host's namespace (moved in: host-device)` };
  if (linkedToHost) {
    const parent = await host.linkByIndex(podLink.peerIndex!);
    if (parent) return { kind: 'pod', podLink, parent, why: `${what} on ${parent.name}` };
  }
  return { kind: 'pod', podLink, why: `${what} with no parent in this host's namespace` };
}
