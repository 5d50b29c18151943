/** Undoing one attachment from its recorded state: shared by DEL and GC; every step tolerates "already gone". */
import { existsSync } from 'node:fs';
import { getEndpoint } from '../bpf/endpoint-map';
import { removeEndpoint } from '../bpf/steering';
import { destroyClsact, detach, TC_PARENT } from '../bpf/tc';
import { parseCidr } from '../net/ip';
import { Rtnl } from '../net/rtnl';
import { type AttachmentState, listStates, saveState } from '../node/attachments';
import { describeError } from '../util/errors';
import { log } from '../util/log';
import { openRecordedNetns } from './pod-netns';

/**
 * Removes filters, the endpoint map entry and, with podSide, the addresses afsteer added and
 * the MTU it set — only in the namespace recorded at ADD, and only while it is still that
 * namespace (never wherever CNI_NETNS points now).
 */
export async function teardownAttachment(pinDir: string, state: AttachmentState, podSide: boolean): Promise<void> {
  const host = Rtnl.host();
  try {
    const link = await host.linkByIndex(state.hostIfindex);
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

  if (existsSync(pinDir)) {
    const ep = getEndpoint(pinDir, state.hostIfindex);
    if (ep && ep.podIfindex === state.podIfindex && ep.ipv4 === state.ipv4 && ep.ipv6 === state.ipv6)
      removeEndpoint(pinDir, state.hostIfindex);
  }

  if (podSide && (state.addedAddresses.length || state.mtu.before !== state.mtu.after)) {
    const { ns, why } = openRecordedNetns(state.netns, state.netnsId);
    if (!ns) {
      log.info('leaving the pod side alone', { reason: why });
      return;
    }
    const netns = state.netns;
    let pod: Rtnl | undefined;
    try {
      pod = Rtnl.inNamespace(ns.path);
      const link = await pod.linkByName(state.ifname);
      if (link) {
        for (const a of state.addedAddresses) await pod.delAddress(link.index, parseCidr(a));
        if (link.mtu === state.mtu.after && state.mtu.before !== state.mtu.after) await pod.setMtu(link.index, state.mtu.before);
        log.info('restored the pod interface', {
          container: state.containerId,
          netns,
          ifname: state.ifname,
          mtu: state.mtu.before,
          removedAddresses: state.addedAddresses,
        });
      } else {
        log.debug('pod interface already gone', { container: state.containerId, netns, ifname: state.ifname });
      }
    } catch (err) {
      // The netns may be going away under us; DEL must still succeed.
      log.warn('could not clean the pod interface (netns going away?)', { netns, error: describeError(err) });
    } finally {
      pod?.close();
      ns.close();
    }
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
      if (s.bridge) continue;
      const port = await host.linkByIndex(s.hostIfindex);
      if (port?.name === s.hostIfname && port.master === link.index) return;
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
