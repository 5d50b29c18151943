/**
 * afsteer's filters on a pod's own interface, inside the pod's network namespace (for an interface
 * with no host-side veth: macvlan, ipvlan, host-device). The clsact qdisc goes through libbpf with
 * the calling thread in the pod's namespace; the two filters through rtnetlink in that namespace,
 * because they carry the attachment id as their classid (cls_bpf hands its minor to the program
 * in skb->tc_classid: the endpoint key, AFSTEER_EP_KEY_POD | id), which bpf_tc_attach cannot set.
 * Directions are the host veth's swapped: from the pod = egress, to the pod = ingress.
 */
import { inNetns } from '../net/netns';
import type { BpfFilterInfo, Rtnl } from '../net/rtnl';
import { EP_POD_ID_MAX } from './maps-layout';
import { PROGRAMS } from './programs';
import { AFSTEER_TC_HANDLE, AFSTEER_TC_PRIORITY, destroyClsact, detach, ensureClsact, TC_PARENT, type TcPointName } from './tc';

/** The clsact point of each program on a pod's own interface. */
export const POD_POINTS: Record<'fromPod' | 'toPod', TcPointName> = { fromPod: 'egress', toPod: 'ingress' };

/** Major number of afsteer's classids (tc shows them as af:<id in hex>). */
const CLASSID_MAJOR = 0xaf;
/** Largest id handed out: clsact's own minors (ffe0 and up: ingress fff2, egress fff3) stay clear. */
export const POD_ID_LIMIT = 0xffdf;

/** The classid of attachment id's filters. */
export function classidOf(id: number): number {
  return ((CLASSID_MAJOR << 16) | id) >>> 0;
}

/** The attachment id a classid carries (its minor), or undefined for a classid that is not afsteer's. */
export function idOfClassid(classid: number): number | undefined {
  const id = classid & EP_POD_ID_MAX;
  return classid >>> 16 === CLASSID_MAJOR && id > 0 && id <= POD_ID_LIMIT ? id : undefined;
}

/** The lowest attachment id (1..POD_ID_LIMIT) not in used; throws when none is left. */
export function freePodId(used: ReadonlySet<number>): number {
  for (let id = 1; id <= POD_ID_LIMIT; id++) if (!used.has(id)) return id;
  throw new Error(`no free in-pod attachment id (${POD_ID_LIMIT} in use)`);
}

/** Creates the clsact qdisc on the pod's interface; false when one was there. */
export function ensurePodClsact(nsPath: string, ifindex: number): boolean {
  return inNetns(nsPath, () => ensureClsact(ifindex));
}

/** Attaches (or replaces) from-pod on egress and to-pod on ingress of the pod's interface, with id as their classid. */
export async function attachInPod(pod: Rtnl, ifindex: number, id: number, progs: { fromPod: number; toPod: number }): Promise<void> {
  for (const role of ['fromPod', 'toPod'] as const) {
    await pod.replaceBpfFilter(ifindex, TC_PARENT[POD_POINTS[role]], {
      handle: AFSTEER_TC_HANDLE,
      priority: AFSTEER_TC_PRIORITY,
      progFd: progs[role],
      name: PROGRAMS[role],
      classid: classidOf(id),
    });
  }
}

/** afsteer's filters on the pod's interface, by program role (absent: none there). */
export async function podFilters(pod: Rtnl, ifindex: number): Promise<Partial<Record<'fromPod' | 'toPod', BpfFilterInfo>>> {
  const out: Partial<Record<'fromPod' | 'toPod', BpfFilterInfo>> = {};
  for (const role of ['fromPod', 'toPod'] as const) {
    const f = await pod.bpfFilter(ifindex, TC_PARENT[POD_POINTS[role]], AFSTEER_TC_HANDLE);
    if (f) out[role] = f;
  }
  return out;
}

/** Detaches both filters (already gone is fine) and, when removeClsact, the clsact qdisc. */
export function detachInPod(nsPath: string, ifindex: number, removeClsact: boolean): void {
  inNetns(nsPath, () => {
    detach(ifindex, POD_POINTS.fromPod);
    detach(ifindex, POD_POINTS.toPod);
    if (removeClsact) destroyClsact(ifindex);
  });
}
