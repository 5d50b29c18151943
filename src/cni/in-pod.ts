/**
 * The parts of ADD, CHECK and DEL particular to an attachment whose programs run inside the pod's
 * namespace (placement "pod": macvlan, ipvlan, host-device): its attachment id (the classid of its
 * filters, the endpoint key EP_KEY_POD | id), refusing an interface that already carries another
 * attachment's filters, and the route MTU of a device that is the wire.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { listEndpoints } from '../bpf/endpoint-map';
import { MAPS, podAttachmentId } from '../bpf/maps-layout';
import { freePodId, idOfClassid, podFilters } from '../bpf/pod-filters';
import type { LinkRoute, Rtnl } from '../net/rtnl';
import { type AttachmentState, listStates } from '../node/attachments';
import { CniCode, CniError } from './cni-error';
import type { CniEnv } from './env';

/**
 * The attachment id for this ADD: the earlier one of the same attachment (a repeated ADD), else the
 * lowest id no endpoint in the maps and no recorded attachment uses. An interface that already
 * carries afsteer's filters for another recorded attachment is refused (code 7); filters nobody
 * records (an ADD that died, a DEL that never ran) are taken over.
 */
export async function claimPodId(
  pinDir: string,
  stateDir: string,
  pod: Rtnl,
  podIfindex: number,
  env: CniEnv,
  earlier: AttachmentState | undefined,
): Promise<number> {
  const states = listStates(stateDir);
  const filters = await podFilters(pod, podIfindex);
  const mine = earlier?.placement === 'pod' ? podAttachmentId(earlier.endpoint) : undefined;
  for (const f of [filters.fromPod, filters.toPod]) {
    const id = f && idOfClassid(f.classid);
    if (id === undefined || id === mine) continue;
    const owner = states.find((s) => s.placement === 'pod' && podAttachmentId(s.endpoint) === id);
    if (owner && !(owner.containerId === env.containerId && owner.ifname === env.ifname)) {
      throw new CniError(
        CniCode.InvalidConfig,
        `${env.ifname} in ${env.netns} already carries afsteer (attachment ${id}, container ${owner.containerId} interface ${owner.ifname}): one interface is one attachment`,
      );
    }
  }
  if (mine !== undefined) return mine;
  const used = new Set<number>();
  // The first ADD on a node pins the maps after this: none yet, no key in use.
  const keys = existsSync(join(pinDir, MAPS.endpoints.name)) ? listEndpoints(pinDir).keys() : [];
  for (const k of keys) {
    const id = podAttachmentId(k);
    if (id !== undefined) used.add(id);
  }
  for (const s of states) {
    const id = podAttachmentId(s.endpoint);
    if (id !== undefined) used.add(id);
  }
  return freePodId(used);
}

/** The routes through the device a pod's own addresses can be steered on: all but link-local ones (fe80::/64 carries no pod pair). */
async function steerableRoutes(pod: Rtnl, ifindex: number): Promise<LinkRoute[]> {
  return (await pod.routesVia(ifindex)).filter((r) => !(r.family === 6 && /^fe[89ab]/i.test(r.dst.address)));
}

/** Text of a route's destination, as the state records it. */
export function routeDst(r: Pick<LinkRoute, 'dst'>): string {
  return `${r.dst.address}/${r.dst.prefix}`;
}

/**
 * Puts mtu on every main-table route through the device (a device that is the wire keeps its own
 * MTU; the pod's packets must leave room for the outer header). Returns the routes changed and
 * their MTU before (undefined: none), so a failure after this can put them back.
 */
export async function setRouteMtus(pod: Rtnl, ifindex: number, mtu: number): Promise<{ route: LinkRoute; before?: number }[]> {
  const changed: { route: LinkRoute; before?: number }[] = [];
  for (const r of await steerableRoutes(pod, ifindex)) {
    if (r.mtu === mtu) {
      changed.push({ route: r, before: mtu });
      continue;
    }
    await pod.setRouteMtu(r, mtu);
    changed.push({ route: r, ...(r.mtu !== undefined ? { before: r.mtu } : {}) });
  }
  return changed;
}

/** Takes afsteer's MTU off the recorded routes through the device that still carry it (DEL). */
export async function clearRouteMtus(pod: Rtnl, ifindex: number, rec: NonNullable<AttachmentState['routeMtu']>): Promise<void> {
  const want = new Set(rec.routes);
  for (const r of await steerableRoutes(pod, ifindex)) {
    if (want.has(routeDst(r)) && r.mtu === rec.mtu) await pod.setRouteMtu(r, undefined);
  }
}

/** The recorded routes through the device that lack afsteer's MTU (CHECK): their destinations. */
export async function routesMissingMtu(pod: Rtnl, ifindex: number, rec: NonNullable<AttachmentState['routeMtu']>): Promise<string[]> {
  const now = new Map((await steerableRoutes(pod, ifindex)).map((r) => [routeDst(r), r]));
  return rec.routes.filter((d) => now.has(d) && now.get(d)!.mtu !== rec.mtu);
}
