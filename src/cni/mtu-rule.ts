/**
 * The pod's MTU (pure): what the wire allows, less the outer header of a steered packet. The wire
 * is the host veth (programs on it: the packet grows after leaving the pod), else the parent of
 * the pod's interface (macvlan, ipvlan: the packet grows on the pod's own egress and leaves by the
 * parent), else the interface itself (host-device: it is the wire, so it keeps its MTU and the
 * pod's routes through it carry the smaller one).
 */

/** Bytes the outer header of a steered packet takes (IPv6 40 ≥ IPv4 20). */
export const OUTER_HEADER_ROOM = 40;
/** The IPv6 minimum link MTU. */
const IPV6_MIN_MTU = 1280;

/** What bounds the pod's MTU. */
export interface MtuInputs {
  placement: 'host-veth' | 'pod';
  /** The pod interface's MTU as the plugin before afsteer left it. */
  found: number;
  /** placement host-veth: the host veth. */
  hostLink?: { name: string; mtu: number };
  /** placement pod: the interface's parent in the host's namespace, if any. */
  parent?: { name: string; mtu: number };
  /** The config's `mtu`, when given. */
  configured?: number;
}

/** Where the MTU goes: the pod interface itself, or (a device that is the wire) the pod's routes through it. */
export interface MtuPlan {
  on: 'link' | 'routes';
  mtu: number;
}

/** The pod's MTU and where it goes; a config that leaves no room, or an MTU below 1280, is a message (the caller's code 7). */
export function mtuRule(i: MtuInputs): MtuPlan | { error: string } {
  let limit: number;
  let bound: string;
  let on: MtuPlan['on'] = 'link';
  if (i.placement === 'host-veth') {
    if (!i.hostLink) return { error: 'a host-veth attachment needs its host veth' };
    limit = i.hostLink.mtu - OUTER_HEADER_ROOM;
    bound = `host veth ${i.hostLink.name} has mtu ${i.hostLink.mtu}`;
  } else if (i.parent) {
    const wire = Math.min(i.parent.mtu, i.found);
    limit = wire - OUTER_HEADER_ROOM;
    bound =
      wire === i.parent.mtu
        ? `its parent ${i.parent.name} has mtu ${i.parent.mtu}`
        : `the interface was given mtu ${i.found} (parent ${i.parent.mtu})`;
  } else {
    limit = i.found - OUTER_HEADER_ROOM;
    bound = `the interface is the wire, with mtu ${i.found}`;
    on = 'routes';
  }
  if (i.configured !== undefined && i.configured > limit)
    return { error: `mtu ${i.configured} leaves no room for the ${OUTER_HEADER_ROOM}-byte outer header: ${bound}, so at most ${limit}` };
  const mtu = i.configured ?? limit;
  if (mtu < IPV6_MIN_MTU) return { error: `pod mtu would be ${mtu}, below the IPv6 minimum ${IPV6_MIN_MTU} (${bound})` };
  return { on, mtu };
}
