/** Undoing one attachment from its recorded state: shared by DEL and GC; every step tolerates "already gone". */
import { existsSync } from 'node:fs';
import { getEndpoint } from '../bpf/endpoint-map';
import { podAttachmentId } from '../bpf/maps-layout';
import { detachInPod, idOfClassid, podFilters } from '../bpf/pod-filters';
import { removeEndpoint } from '../bpf/steering';
import { destroyClsact, detach, TC_PARENT } from '../bpf/tc';
import { parseCidr } from '../net/ip';
import { type LinkInfo, Rtnl } from '../net/rtnl';
import { type AttachmentState, listStates, saveState } from '../node/attachments';
import { openRecordedNetns } from '../node/recorded-netns';
import { describeError } from '../util/describe-error';
import { log } from '../util/log';
import { clearRouteMtus } from './in-pod';

/**
 * Removes filters, the endpoint map entry and, with podSide, the addresses afsteer added and
 * the MTU it set — only in the namespace recorded at ADD, and only while it is still that
 * namespace (never wherever CNI_NETNS points now). An attachment inside the pod has its filters
 * there: they are removed whenever that namespace is still the recorded one (GC too: nothing of
 * afsteer's stays in a pod it no longer steers).
 */
export async function teardownAttachment(pinDir: string, state: AttachmentState, podSide: boolean): Promise<void> {
  if (state.placement === 'pod') await teardownInPod(state, podSide);
  else await teardownHostVeth(state);

  if (existsSync(pinDir)) {
    const ep = getEndpoint(pinDir, state.endpoint);
    if (ep && ep.podIfindex === state.podIfindex && ep.ipv4 === state.ipv4 && ep.ipv6 === state.ipv6)
      removeEndpoint(pinDir, state.endpoint);
  }

  if (state.placement !== 'pod' && podSide && (state.addedAddresses.length || state.mtu.before !== state.mtu.after)) {
    const { ns, why } = openRecordedNetns(state.netns, state.netnsId);
    if (!ns) {
      log.info('leaving the pod side alone', { reason: why });
      return;
    }
    try {
      await withPodLink(ns.path, state, (pod, link) => restorePodSide(pod, link, state));
    } finally {
      ns.close();
    }
  }
}

/** Runs fn with a netlink socket in the pod's namespace and the attachment's interface (skipped when it is gone); failures are logged, never thrown: the namespace may be going away. */
async function withPodLink(nsPath: string, state: AttachmentState, fn: (pod: Rtnl, link: LinkInfo) => Promise<void>): Promise<void> {
  let pod: Rtnl | undefined;
  try {
    pod = Rtnl.inNamespace(nsPath);
    const link = await pod.linkByName(state.ifname);
    if (link) await fn(pod, link);
    else log.debug('pod interface already gone', { ifname: state.ifname, netns: state.netns });
  } catch (err) {
    log.warn('could not clean the pod interface (netns going away?)', { netns: state.netns, error: describeError(err) });
  } finally {
    pod?.close();
  }
}

/** The addresses afsteer added and the MTU it set, undone on the pod's interface. */
async function restorePodSide(pod: Rtnl, link: LinkInfo, state: AttachmentState): Promise<void> {
  for (const a of state.addedAddresses) await pod.delAddress(link.index, parseCidr(a));
  if (link.mtu === state.mtu.after && state.mtu.before !== state.mtu.after) await pod.setMtu(link.index, state.mtu.before);
  if (state.routeMtu) await clearRouteMtus(pod, link.index, state.routeMtu);
  // An operator (and the CRI test) can tell a DEL that found the pod's netns from one after it was gone.
  log.info('restored the pod interface', {
    container: state.containerId,
    netns: state.netns,
    ifname: state.ifname,
    mtu: state.mtu.before,
    removedAddresses: state.addedAddresses,
  });
}

/**
 * An in-pod attachment: its filters (and the clsact qdisc when afsteer made it and nothing else
 * uses it) removed in the recorded namespace, and with podSide what ADD changed there. A
 * namespace that is gone took all of it along.
 */
async function teardownInPod(state: AttachmentState, podSide: boolean): Promise<void> {
  const { ns, why } = openRecordedNetns(state.netns, state.netnsId);
  if (!ns) {
    log.info('in-pod attachment: its namespace is gone or not the recorded one; nothing to detach there', { reason: why });
    return;
  }
  try {
    await withPodLink(ns.path, state, async (pod, link) => {
      const ours = await podFilters(pod, link.index);
      const id = podAttachmentId(state.endpoint);
      // Only this attachment's filters: another attachment's (an interface re-added under another id) stay.
      const mine = [ours.fromPod, ours.toPod].some((f) => f && id !== undefined && idOfClassid(f.classid) === id);
      if (mine) {
        detachInPod(ns.path, link.index, false);
        if (state.createdClsact) {
          const left = (await pod.tcFilterCount(link.index, TC_PARENT.ingress)) + (await pod.tcFilterCount(link.index, TC_PARENT.egress));
          if (left === 0) detachInPod(ns.path, link.index, true);
          else log.info('leaving clsact in place: other filters use it', { ifname: state.ifname, filters: left });
        }
      }
      if (podSide) await restorePodSide(pod, link, state);
    });
  } finally {
    ns.close();
  }
}

/** A host-veth attachment: its filters off the host veth (and the clsact qdisc when afsteer made it and nothing else uses it). */
async function teardownHostVeth(state: AttachmentState): Promise<void> {
  const host = Rtnl.host();
  try {
    const link = state.hostIfindex === undefined ? undefined : await host.linkByIndex(state.hostIfindex);
    if (link && link.name === state.hostIfname) {
      detach(link.index, 'ingress');
      detach(link.index, 'egress');
      if (state.createdClsact) {
        const left = (await host.tcFilterCount(link.index, TC_PARENT.ingress)) + (await host.tcFilterCount(link.index, TC_PARENT.egress));
        if (left === 0) destroyClsact(link.index);
        else log.info('leaving clsact in place: other filters use it', { link: link.name, filters: left });
      }
    } else {
      log.debug('host veth already gone', { ifindex: state.hostIfindex, name: state.hostIfname });
    }
  } finally {
    host.close();
  }
}

/**
 * After `gone`'s state file is removed (DEL, GC): when no other recorded attachment is a port of
 * its bridge (recorded, or — state from before bridges were recorded — its host veth is still a
 * port there), removes afsteer_bridge_out from the bridge, and the clsact qdisc when afsteer
 * created it and no other filter uses it. Otherwise hands the "afsteer created the qdisc" record
 * on to a remaining pod of that bridge, so the last one removes it.
 */
export async function releaseBridgeOut(stateDir: string, gone: AttachmentState): Promise<void> {
  const b = gone.bridge;
  if (!b) return;
  const host = Rtnl.host();
  try {
    const others = listStates(stateDir).filter((s) => s.bridge?.ifindex === b.ifindex && s.bridge.name === b.name);
    if (others.length) {
      if (b.createdClsact && !others.some((s) => s.bridge!.createdClsact))
        saveState(stateDir, { ...others[0]!, bridge: { ...b, createdClsact: true } });
      return;
    }
    const link = await host.linkByIndex(b.ifindex);
    if (!link || link.name !== b.name || link.kind !== 'bridge') return; // the bridge is gone (or its ifindex reused)
    for (const s of listStates(stateDir)) {
      if (s.bridge || s.hostIfindex === undefined) continue;
      const port = await host.linkByIndex(s.hostIfindex);
      if (port && port.name === s.hostIfname && port.master === link.index) return;
    }
    detach(link.index, 'egress');
    log.info('removed afsteer_bridge_out: the last afsteer pod left the bridge', { bridge: link.name });
    if (b.createdClsact) {
      const left = (await host.tcFilterCount(link.index, TC_PARENT.ingress)) + (await host.tcFilterCount(link.index, TC_PARENT.egress));
      if (left === 0) destroyClsact(link.index);
      else log.info('leaving the bridge clsact in place: other filters use it', { bridge: link.name, filters: left });
    }
  } finally {
    host.close();
  }
}
