/**
 * What a prevResult may claim for the pod (pure): addresses the pod interface really has, that
 * no other live endpoint on the node owns. afsteer registers only what it can prove is the pod's.
 */
import { addressBytes, type Cidr } from '../net/ip';

/** The claimed addresses the pod interface does not actually carry. */
export function unprovenAddresses(claimed: Cidr[], present: Cidr[]): Cidr[] {
  return claimed.filter((c) => !present.some((p) => p.family === c.family && addressBytes(p.address).equals(addressBytes(c.address))));
}

/**
 * The claimed addresses another endpoint owns: owner maps an address to the endpoint key
 * afsteer_local_addrs points it at; an owner that is this endpoint (undefined: not keyed yet),
 * or no longer a registered endpoint (a DEL that never ran), does not count.
 */
export function ownedElsewhere(
  claimed: string[],
  owner: (address: string) => number | undefined,
  endpoint: number | undefined,
  live: ReadonlySet<number>,
): { address: string; ifindex: number }[] {
  const out: { address: string; ifindex: number }[] = [];
  for (const address of claimed) {
    const ifindex = owner(address);
    if (ifindex !== undefined && ifindex !== endpoint && live.has(ifindex)) out.push({ address, ifindex });
  }
  return out;
}
