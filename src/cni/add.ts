/** CNI ADD: make the pod interface dual-stack, attach the tc programs, register the endpoint. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deleteEndpoint, getEndpoint, listEndpoints, localEndpointByAddress, putEndpoint } from '../bpf/endpoint-map';
import { closeFds, objectId } from '../bpf/libbpf';
import { MAPS, podAttachmentId, podEndpointKey } from '../bpf/maps-layout';
import { attachInPod, detachInPod, ensurePodClsact } from '../bpf/pod-filters';
import { assertBpffs } from '../bpf/programs';
import { removeEndpoint } from '../bpf/steering';
import { attach, destroyClsact, detach, ensureClsact, query } from '../bpf/tc';
import { addressBytes, type Cidr, parseCidr } from '../net/ip';
import { inNetns, type NetnsHandle } from '../net/netns';
import { type LinkInfo, Rtnl } from '../net/rtnl';
import { setNetSysctl } from '../net/sysctl';
import { type AttachmentState, loadState, removeState, saveState } from '../node/attachments';
import { preparePins } from '../node/prepare-pins';
import { parsePolicyArg, parseProtectArg } from '../policy/cni-arg';
import type { PodPolicy } from '../policy/schema';
import { causeText } from '../util/describe-error';
import { log, tracePhase } from '../util/log';
import { ownedElsewhere, unprovenAddresses } from './claims';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { claimPodId, routeDst, setRouteMtus } from './in-pod';
import { ipamAdd, ipamDel } from './ipam';
import { mtuRule } from './mtu-rule';
import { withNodeLock } from './node-lock';
import { notifyDaemon } from './notify';
import { findPlacement } from './placement';
import { openPodNetns } from './pod-netns';
import { containerInterfaceIndex, familiesFor, formatResult, parseResult, podIps, type Result } from './result';
import { compareVersions } from './version';

type Undo = { what: string; run: () => unknown };

/** Parses and checks conf.prevResult; a missing or malformed one is code 7. */
export function requirePrevResult(conf: NetConf): Result {
  if (conf.prevResult === undefined) {
    throw new CniError(
      CniCode.InvalidConfig,
      'afsteer is a chained plugin and needs a prevResult: put it after a plugin that creates the pod interface (bridge, ptp, macvlan, ipvlan, host-device)',
    );
  }
  try {
    return parseResult(conf.prevResult, 'prevResult');
  } catch (err) {
    throw new CniError(CniCode.InvalidConfig, (err as Error).message, undefined, { cause: err });
  }
}

/** Opens a netlink socket inside the pod netns held open at ns, mapping a failure to a clear error. */
export function openPod(ns: NetnsHandle, shown: string): Rtnl {
  try {
    return Rtnl.inNamespace(ns.path);
  } catch (err) {
    throw new CniError(CniCode.IoFailure, `cannot enter network namespace ${shown}`, causeText(err), { cause: err });
  }
}

/** The bpffs check of pinDir, as a config error (code 7) before any side effect. */
export function requireBpffs(pinDir: string): void {
  try {
    assertBpffs(pinDir);
  } catch (err) {
    throw new CniError(CniCode.InvalidConfig, `pinDir is unusable: ${(err as Error).message}`, causeText((err as Error).cause), {
      cause: err,
    });
  }
}

/** Refuses (code 7) addresses another live endpoint on this node owns; nothing is registered yet on a node without pins. */
function refuseForeignAddresses(pinDir: string, addresses: string[], endpoint: number | undefined): void {
  if (!addresses.length || !existsSync(join(pinDir, MAPS.localAddrs.name))) return;
  const taken = ownedElsewhere(addresses, (a) => localEndpointByAddress(pinDir, a), endpoint, new Set(listEndpoints(pinDir).keys()));
  if (taken.length) {
    const owner = (k: number) => (podAttachmentId(k) === undefined ? `host ifindex ${k}` : `in-pod attachment ${podAttachmentId(k)}`);
    throw new CniError(
      CniCode.InvalidConfig,
      `prevResult claims ${taken.map((t) => `${t.address} (registered to ${owner(t.ifindex)})`).join(', ')}: another pod on this node owns it`,
    );
  }
}

/**
 * Proves the prevResult's claims for the pod before anything is changed: every address it
 * gives the pod interface is configured on it in the pod's namespace, and none belongs to
 * another endpoint. Anything else is code 7.
 */
async function proveClaims(
  pinDir: string,
  pod: Rtnl,
  podLink: LinkInfo,
  endpoint: number | undefined,
  claimed: Result['ips'],
  env: CniEnv,
): Promise<void> {
  const cidrs = (claimed ?? []).map((i) => parseCidr(i.address));
  const present = await pod.addresses(podLink.index);
  const missing = unprovenAddresses(cidrs, present);
  if (missing.length) {
    throw new CniError(
      CniCode.InvalidConfig,
      `prevResult gives ${env.ifname} ${missing.map((c) => `${c.address}/${c.prefix}`).join(', ')}, but ${env.ifname} in ${env.netns} does not have it`,
    );
  }
  refuseForeignAddresses(
    pinDir,
    cidrs.map((c) => c.address),
    endpoint,
  );
}

/** The recorded state of an attachment, or undefined when there is none or it is unreadable. */
function loadStateQuietly(stateDir: string, containerId: string, ifname: string): AttachmentState | undefined {
  try {
    return loadState(stateDir, containerId, ifname);
  } catch (err) {
    log.warn('ignoring unreadable earlier state', { error: causeText(err) });
    return undefined;
  }
}

/**
 * For a family afsteer delegated, the plugin before it (bridge) never configured the gateway:
 * when the host veth is enslaved to a bridge, put each delegated gateway on that bridge (as the
 * bridge plugin's isGateway does) and enable forwarding for the family. Shared by every pod on
 * the bridge, so DEL leaves it, like the bridge plugin does.
 */
async function ensureBridgeGateways(host: Rtnl, hostLink: LinkInfo, ips: Result['ips']): Promise<void> {
  if (!hostLink.master) return;
  const bridge = await host.linkByIndex(hostLink.master);
  if (bridge?.kind !== 'bridge') return;
  for (const ip of ips ?? []) {
    if (!ip.gateway) continue;
    const { family, prefix } = parseCidr(ip.address);
    const present = (await host.addresses(bridge.index, family)).some((a) => addressBytes(a.address).equals(addressBytes(ip.gateway!)));
    if (!present) {
      await host.addAddress(bridge.index, { family, address: ip.gateway, prefix }, true);
      log.info('added delegated gateway to bridge', { bridge: bridge.name, gateway: ip.gateway });
    }
    if (family === 6) setNetSysctl(['ipv6', 'conf', 'all', 'forwarding'], '1');
    else setNetSysctl(['ipv4', 'ip_forward'], '1');
  }
}

/**
 * When the host veth is a bridge port, makes sure the bridge's egress carries afsteer_bridge_out,
 * which hands tunnelled packets for local pods straight to their veth (keeping tunnel GSO packets
 * whole: the bridge device has no tunnel GSO offload). Shared by every pod on the bridge; returns
 * the bridge for the state file, so the DEL of the bridge's last afsteer pod removes the filter
 * (and the clsact qdisc when afsteer created it: see releaseBridgeOut).
 */
async function attachBridgeOut(host: Rtnl, hostLink: LinkInfo, progFd: number): Promise<AttachmentState['bridge']> {
  if (!hostLink.master) return undefined;
  const bridge = await host.linkByIndex(hostLink.master);
  if (bridge?.kind !== 'bridge') return undefined;
  if (query(bridge.index, 'egress') === objectId(progFd)) return { ifindex: bridge.index, name: bridge.name, createdClsact: false }; // usual case: already there
  const createdClsact = ensureClsact(bridge.index);
  attach(bridge.index, 'egress', progFd);
  log.info('attached afsteer_bridge_out to bridge egress', { bridge: bridge.name, createdClsact });
  return { ifindex: bridge.index, name: bridge.name, createdClsact };
}

/** Runs ADD and returns the result to print. */
export async function cmdAdd(conf: NetConf, env: CniEnv): Promise<Record<string, unknown>> {
  const prev = requirePrevResult(conf);
  const policy = podPolicy(conf, env);
  // The pod's namespace, proven and held open before anything else (code 4 for a file, FIFO, the host's).
  const ns = openPodNetns(env.netns);
  let out: Record<string, unknown>;
  try {
    out = await addLocked(conf, env, prev, ns, policy);
  } finally {
    ns.close();
  }
  // After the node lock is released; bounded to a few milliseconds, never fails the ADD.
  await notifyDaemon(conf.daemonSocket, 'add', env.containerId, env.ifname);
  tracePhase('add: afsteerd notified');
  return out;
}

/**
 * The pod's policy: CNI_ARGS AFSTEER_POLICY for its criterion and AFSTEER_PROTECT for its
 * protection, each else the config's `policy`, else none (afsteerd's default).
 */
function podPolicy(conf: NetConf, env: CniEnv): PodPolicy | undefined {
  const arg = env.args.get('AFSTEER_POLICY');
  const protectArg = env.args.get('AFSTEER_PROTECT');
  let sel: PodPolicy | undefined = conf.policy && { ...conf.policy };
  if (sel) delete sel.protect;
  if (arg !== undefined) {
    const p = parsePolicyArg(arg);
    if (typeof p === 'string') throw new CniError(CniCode.InvalidEnv, `invalid CNI_ARGS: ${p}`);
    sel = p;
  }
  let protect = conf.policy?.protect;
  if (protectArg !== undefined) {
    const m = parseProtectArg(protectArg);
    if (!(m === 'off' || m === 'on-suspicion' || m === 'always')) throw new CniError(CniCode.InvalidEnv, `invalid CNI_ARGS: ${m}`);
    protect = m;
  }
  if (!sel && !protect) return undefined;
  return { ...sel, ...(protect ? { protect } : {}) };
}

function addLocked(
  conf: NetConf,
  env: CniEnv,
  prev: Result,
  ns: NetnsHandle,
  policy: PodPolicy | undefined,
): Promise<Record<string, unknown>> {
  log.debug('add: start');
  tracePhase('add: start');
  return withNodeLock(conf, async () => {
    log.debug('add: locked');
    tracePhase('add: locked');
    requireBpffs(conf.pinDir);
    const undo: Undo[] = [];
    const host = Rtnl.host();
    let pod: Rtnl | undefined;
    try {
      pod = openPod(ns, env.netns);
      const placement = await findPlacement(pod, host, env);
      const { podLink } = placement;
      const hostLink = placement.kind === 'host-veth' ? placement.hostLink : undefined;
      log.debug('add: placement found', { placement: placement.kind, ...(placement.kind === 'pod' ? { why: placement.why } : {}) });
      tracePhase('add: placement found');
      const earlier = loadStateQuietly(conf.stateDir, env.containerId, env.ifname);
      const result: Result = structuredClone(prev);
      let ifIdx = containerInterfaceIndex(result, env.ifname);
      const have = familiesFor(result, ifIdx);
      if (have.size === 0)
        throw new CniError(
          CniCode.InvalidConfig,
          `prevResult assigns no address to ${env.ifname} (addresses on host-side interfaces are not the pod's)`,
        );
      // In the pod: its attachment id, refusing an interface another attachment's filters are on.
      const podId = placement.kind === 'pod' ? await claimPodId(conf.pinDir, conf.stateDir, pod, podLink.index, env, earlier) : undefined;
      // The endpoint key (host veth: its ifindex; in the pod: EP_KEY_POD | id).
      const endpointKey = hostLink ? hostLink.index : podEndpointKey(podId!);
      await proveClaims(conf.pinDir, pod, podLink, endpointKey, podIps(result, ifIdx), env);
      log.debug('add: claims proven');
      tracePhase('add: claims proven');
      const same = earlier?.endpoint === endpointKey && earlier.placement === placement.kind ? earlier : undefined;
      const missing = ([4, 6] as const).filter((f) => !have.has(f));

      // 1. The missing family, from the delegated IPAM plugin.
      let delegated: Result | undefined;
      if (missing.length && conf.ipam) {
        delegated = ipamAdd(conf, env);
        undo.push({ what: 'release delegated IPAM lease', run: () => ipamDel(conf, env) });
      } else if (missing.length && !conf.allowSingleStack) {
        throw new CniError(
          CniCode.InvalidConfig,
          `prevResult gives ${env.ifname} only IPv${have.has(4) ? 4 : 6}: add an "ipam" section for IPv${missing[0]} to the afsteer config, or set "allowSingleStack": true`,
        );
      }
      const newIps = (delegated?.ips ?? []).filter((i) => missing.includes(parseCidr(i.address).family));
      for (const f of missing) {
        if (delegated && !newIps.some((i) => parseCidr(i.address).family === f)) {
          throw new CniError(
            CniCode.InvalidConfig,
            `delegated IPAM plugin ${conf.ipam?.type} returned no IPv${f} address; configure an IPv${f} range for it`,
          );
        }
      }

      // 2. IPv6 on, no DAD delay, in the pod.
      const v6 = have.has(6) || newIps.some((i) => parseCidr(i.address).family === 6);
      if (v6) {
        inNetns(ns.path, () => {
          setNetSysctl(['ipv6', 'conf', 'all', 'disable_ipv6'], '0');
          setNetSysctl(['ipv6', 'conf', env.ifname, 'disable_ipv6'], '0');
          setNetSysctl(['ipv6', 'conf', env.ifname, 'accept_dad'], '0');
        });
      }

      log.debug('add: sysctls set');
      tracePhase('add: sysctls set');
      // 3. Addresses and routes for the delegated family.
      const added: Cidr[] = [];
      for (const ip of newIps) {
        const c = parseCidr(ip.address);
        await pod.addAddress(podLink.index, c, true);
        added.push(c);
        undo.push({ what: `remove address ${ip.address}`, run: () => pod?.delAddress(podLink.index, c) });
      }
      if (hostLink) await ensureBridgeGateways(host, hostLink, newIps);
      for (const r of delegated?.routes ?? []) {
        const dst = parseCidr(r.dst);
        if (!missing.includes(dst.family)) continue;
        const gw = r.gw ?? newIps.find((i) => parseCidr(i.address).family === dst.family)?.gateway;
        await pod.replaceRoute(podLink.index, dst, gw);
      }

      // 4. MTU with room for the outer header (mtu-rule.ts): on the pod interface, or — a device
      //    that is the wire — on the pod's routes through it.
      const found = same?.mtu.before ?? podLink.mtu;
      const plan = mtuRule({
        placement: placement.kind,
        found,
        ...(hostLink ? { hostLink } : {}),
        ...(placement.kind === 'pod' && placement.parent ? { parent: placement.parent } : {}),
        ...(conf.mtu !== undefined ? { configured: conf.mtu } : {}),
      });
      if ('error' in plan) throw new CniError(CniCode.InvalidConfig, plan.error);
      const mtu = plan.mtu;
      let routeMtu: AttachmentState['routeMtu'];
      if (plan.on === 'link' && podLink.mtu !== mtu) {
        await pod.setMtu(podLink.index, mtu);
        undo.push({ what: 'restore pod mtu', run: () => pod?.setMtu(podLink.index, podLink.mtu) });
      } else if (plan.on === 'routes') {
        const changed = await setRouteMtus(pod, podLink.index, mtu);
        undo.push({
          what: 'restore route mtus',
          run: async () => {
            for (const c of changed) if (c.before !== mtu) await pod?.setRouteMtu(c.route, c.before);
          },
        });
        routeMtu = { mtu, routes: [...new Set([...(same?.routeMtu?.routes ?? []), ...changed.map((c) => routeDst(c.route))])] };
      }

      // 5. Result with our changes merged in.
      if (newIps.length) {
        if (ifIdx === undefined) {
          result.interfaces = [
            ...(result.interfaces ?? []),
            { name: env.ifname, ...(podLink.mac ? { mac: podLink.mac } : {}), sandbox: env.netns },
          ];
          ifIdx = result.interfaces.length - 1;
        }
        result.ips = [...(result.ips ?? []), ...newIps.map((i) => ({ ...i, interface: ifIdx }))];
        const newRoutes = (delegated?.routes ?? []).filter((r) => missing.includes(parseCidr(r.dst).family));
        if (newRoutes.length) result.routes = [...(result.routes ?? []), ...newRoutes];
      }
      if (ifIdx !== undefined && compareVersions(conf.cniVersion, '1.1.0') >= 0 && plan.on === 'link') {
        const ifc = result.interfaces?.[ifIdx];
        if (ifc) ifc.mtu = mtu;
      }
      const own = familiesFor(result, ifIdx);
      const addrOf = (f: 4 | 6) =>
        podIps(result, ifIdx)
          .map((i) => parseCidr(i.address))
          .find((c) => c.family === f)?.address;
      const ipv4 = own.has(4) ? addrOf(4) : undefined;
      const ipv6 = own.has(6) ? addrOf(6) : undefined;

      log.debug('add: pod configured');
      tracePhase('add: pod configured');
      // 6. BPF: programs pinned once per node (pins of an older layout migrated: node/prepare-pins.ts),
      //    filters on the host veth (or, in the pod, on its own interface, tagged with the attachment
      //    id), endpoint registered under its key.
      const progs = await preparePins(conf.pinDir, conf.stateDir, { swap: false });
      tracePhase('add: bpf programs (pinned: opened, else loaded)');
      let createdClsact = false;
      let bridge: AttachmentState['bridge'];
      try {
        if (hostLink) {
          createdClsact = ensureClsact(hostLink.index);
          if (createdClsact) undo.push({ what: 'remove clsact', run: () => destroyClsact(hostLink.index) });
          attach(hostLink.index, 'ingress', progs.fromPod);
          undo.push({ what: 'detach ingress', run: () => detach(hostLink.index, 'ingress') });
          attach(hostLink.index, 'egress', progs.toPod);
          undo.push({ what: 'detach egress', run: () => detach(hostLink.index, 'egress') });
          bridge = await attachBridgeOut(host, hostLink, progs.bridgeOut);
        } else {
          createdClsact = ensurePodClsact(ns.path, podLink.index);
          undo.push({ what: 'detach in-pod filters', run: () => detachInPod(ns.path, podLink.index, createdClsact) });
          await attachInPod(pod, podLink.index, podId!, progs);
        }
      } finally {
        closeFds(progs.fromPod, progs.toPod, progs.bridgeOut);
      }
      log.debug('add: filters attached');
      tracePhase('add: filters attached');
      // An entry left under this key by another pod (a DEL that never ran) must not lend this
      // pod its steering: start clean.
      const stale = getEndpoint(conf.pinDir, endpointKey);
      if (stale && (stale.ipv4 !== ipv4 || stale.ipv6 !== ipv6 || stale.podIfindex !== podLink.index)) {
        log.warn('replacing a stale endpoint entry under this key', {
          endpoint: endpointKey,
          stale: `${stale.ipv4 ?? '-'} ${stale.ipv6 ?? '-'}`,
        });
        removeEndpoint(conf.pinDir, endpointKey);
      }
      refuseForeignAddresses(
        conf.pinDir,
        [ipv4, ipv6].filter((a) => a !== undefined),
        endpointKey,
      );
      putEndpoint(conf.pinDir, endpointKey, {
        ...(ipv4 ? { ipv4 } : {}),
        ...(ipv6 ? { ipv6 } : {}),
        podIfindex: podLink.index,
        ...(placement.kind === 'pod' ? { inPod: true } : {}),
      });
      undo.push({ what: 'remove endpoint', run: () => deleteEndpoint(conf.pinDir, endpointKey) });
      tracePhase('add: endpoint map written');

      // 7. State, written last: its presence means the attachment is complete. A repeated ADD
      //    for the same attachment keeps what the first one changed, so DEL still undoes it.
      const state: AttachmentState = {
        containerId: env.containerId,
        ifname: env.ifname,
        netns: env.netns,
        netnsId: { dev: ns.dev, ino: ns.ino },
        network: conf.name,
        placement: placement.kind,
        endpoint: endpointKey,
        ...(hostLink ? { hostIfindex: hostLink.index, hostIfname: hostLink.name } : {}),
        podIfindex: podLink.index,
        ...(placement.kind === 'pod' && placement.parent
          ? { parent: { ifindex: placement.parent.index, name: placement.parent.name, mtu: placement.parent.mtu } }
          : {}),
        ...(routeMtu ? { routeMtu } : {}),
        ...(ipv4 ? { ipv4 } : {}),
        ...(ipv6 ? { ipv6 } : {}),
        ...(env.args.get('K8S_POD_NAMESPACE') ? { podNamespace: env.args.get('K8S_POD_NAMESPACE') } : {}),
        ...(env.args.get('K8S_POD_NAME') ? { podName: env.args.get('K8S_POD_NAME') } : {}),
        ...(policy ? { policy } : {}),
        createdClsact: createdClsact || Boolean(same?.createdClsact),
        ...(bridge ? { bridge: { ...bridge, createdClsact: bridge.createdClsact || Boolean(same?.bridge?.createdClsact) } } : {}),
        progDir: progs.dir,
        addedAddresses: [...new Set([...(same?.addedAddresses ?? []), ...added.map((c) => `${c.address}/${c.prefix}`)])],
        delegatedIpam: Boolean(delegated) || Boolean(same?.delegatedIpam),
        mtu: { before: found, after: plan.on === 'link' ? mtu : found },
        createdAt: new Date().toISOString(),
      };
      saveState(conf.stateDir, state);
      undo.push({ what: 'remove state', run: () => removeState(conf.stateDir, env.containerId, env.ifname) });
      tracePhase('add: state saved');
      log.info('attached', {
        container: env.containerId,
        ifname: env.ifname,
        placement: placement.kind,
        ...(hostLink ? { host: hostLink.name } : { attachment: podId, why: (placement as { why: string }).why }),
        ipv4,
        ipv6,
        mtu,
      });
      return formatResult(result, conf.cniVersion);
    } catch (err) {
      for (const u of undo.reverse()) {
        try {
          await u.run();
        } catch (e) {
          log.warn(`rollback step failed: ${u.what}`, { error: causeText(e) });
        }
      }
      throw err;
    } finally {
      pod?.close();
      host.close();
    }
  });
}
