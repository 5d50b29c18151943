/** CNI ADD: make the pod interface dual-stack, attach the tc programs, register the endpoint. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deleteEndpoint, getEndpoint, listEndpoints, localEndpointByAddress, putEndpoint } from '../bpf/endpoint-map';
import { objectId } from '../bpf/libbpf';
import { MAPS } from '../bpf/maps-layout';
import { assertBpffs, closeFds } from '../bpf/programs';
import { removeEndpoint } from '../bpf/steering';
import { attach, destroyClsact, detach, ensureClsact, query } from '../bpf/tc';
import { ensureLiberalTcpTracking } from '../net/conntrack';
import { addressBytes, type Cidr, parseCidr } from '../net/ip';
import { inNetns, type NetnsHandle } from '../net/netns';
import { type LinkInfo, Rtnl } from '../net/rtnl';
import { setNetSysctl } from '../net/sysctl';
import { type AttachmentState, loadState, removeState, saveState } from '../node/attachments';
import { preparePins } from '../node/prepare-pins';
import { parsePolicyArg, parseProtectArg } from '../policy/cni-arg';
import type { PodPolicy } from '../policy/schema';
import { causeText } from '../util/errors';
import { log, tracePhase } from '../util/log';
import { ownedElsewhere, unprovenAddresses } from './claims';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { CniCode, CniError } from './errors';
import { ipamAdd, ipamDel } from './ipam';
import { withNodeLock } from './node-lock';
import { notifyDaemon } from './notify';
import { openPodNetns } from './pod-netns';
import { containerInterfaceIndex, familiesFor, formatResult, parseResult, podIps, type Result } from './result';
import { compareVersions } from './version';

/** Bytes the outer header of a steered packet takes (IPv6 40 ≥ IPv4 20). */
export const OUTER_HEADER_ROOM = 40;

type Undo = { what: string; run: () => unknown };

/** Parses and checks conf.prevResult; a missing or malformed one is code 7. */
export function requirePrevResult(conf: NetConf): Result {
  if (conf.prevResult === undefined) {
    throw new CniError(
      CniCode.InvalidConfig,
      'afsteer is a chained plugin and needs a prevResult: put it after a plugin that creates the pod interface (bridge, ptp)',
    );
  }
  try {
    return parseResult(conf.prevResult, 'prevResult');
  } catch (err) {
    throw new CniError(CniCode.InvalidConfig, (err as Error).message, undefined, { cause: err });
  }
}

/** Finds the pod interface and its host-side veth peer; anything else is a clear error. */
export async function findVethPair(pod: Rtnl, host: Rtnl, env: CniEnv): Promise<{ podLink: LinkInfo; hostLink: LinkInfo }> {
  const podLink = await pod.linkByName(env.ifname);
  if (!podLink)
    throw new CniError(CniCode.Internal, `interface ${env.ifname} not found in ${env.netns}: the plugin before afsteer did not create it`);
  if (podLink.kind !== 'veth' || podLink.peerIndex === undefined) {
    throw new CniError(
      CniCode.InvalidConfig,
      `${env.ifname} in ${env.netns} is ${podLink.kind ? `a ${podLink.kind} link` : 'not a veth'}; afsteer chains after veth-based plugins (bridge, ptp)`,
    );
  }
  const hostLink = await host.linkByIndex(podLink.peerIndex);
  if (!hostLink || hostLink.kind !== 'veth' || hostLink.peerIndex !== podLink.index) {
    throw new CniError(
      CniCode.InvalidConfig,
      `the veth peer of ${env.ifname} (ifindex ${podLink.peerIndex}) is not in the host network namespace`,
    );
  }
  return { podLink, hostLink };
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
function refuseForeignAddresses(pinDir: string, addresses: string[], hostIfindex: number): void {
  if (!addresses.length || !existsSync(join(pinDir, MAPS.localAddrs.name))) return;
  const taken = ownedElsewhere(addresses, (a) => localEndpointByAddress(pinDir, a), hostIfindex, new Set(listEndpoints(pinDir).keys()));
  if (taken.length) {
    throw new CniError(
      CniCode.InvalidConfig,
      `prevResult claims ${taken.map((t) => `${t.address} (registered to host ifindex ${t.ifindex})`).join(', ')}: another pod on this node owns it`,
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
  hostLink: LinkInfo,
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
    hostLink.index,
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
  if (!bridge || bridge.kind !== 'bridge') return;
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
  if (!bridge || bridge.kind !== 'bridge') return undefined;
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
      const { podLink, hostLink } = await findVethPair(pod, host, env);
      log.debug('add: found veth pair');
      tracePhase('add: found veth pair');
      const result: Result = structuredClone(prev);
      let ifIdx = containerInterfaceIndex(result, env.ifname);
      const have = familiesFor(result, ifIdx);
      if (have.size === 0)
        throw new CniError(
          CniCode.InvalidConfig,
          `prevResult assigns no address to ${env.ifname} (addresses on host-side interfaces are not the pod's)`,
        );
      await proveClaims(conf.pinDir, pod, podLink, hostLink, podIps(result, ifIdx), env);
      log.debug('add: claims proven');
      tracePhase('add: claims proven');
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
      await ensureBridgeGateways(host, hostLink, newIps);
      for (const r of delegated?.routes ?? []) {
        const dst = parseCidr(r.dst);
        if (!missing.includes(dst.family)) continue;
        const gw = r.gw ?? newIps.find((i) => parseCidr(i.address).family === dst.family)?.gateway;
        await pod.replaceRoute(podLink.index, dst, gw);
      }

      // 4. MTU with room for the outer header.
      const room = hostLink.mtu - OUTER_HEADER_ROOM;
      if (conf.mtu !== undefined && conf.mtu > room) {
        throw new CniError(
          CniCode.InvalidConfig,
          `mtu ${conf.mtu} leaves no room for the ${OUTER_HEADER_ROOM}-byte outer header: ${hostLink.name} has mtu ${hostLink.mtu}, so at most ${room}`,
        );
      }
      const mtu = conf.mtu ?? room;
      if (mtu < 1280)
        throw new CniError(
          CniCode.InvalidConfig,
          `pod mtu would be ${mtu}, below the IPv6 minimum 1280 (host veth ${hostLink.name} mtu ${hostLink.mtu})`,
        );
      if (podLink.mtu !== mtu) {
        await pod.setMtu(podLink.index, mtu);
        undo.push({ what: 'restore pod mtu', run: () => pod?.setMtu(podLink.index, podLink.mtu) });
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
      if (ifIdx !== undefined && compareVersions(conf.cniVersion, '1.1.0') >= 0) {
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
      // 6. BPF: programs pinned once per node, filters on the host veth, endpoint registered.
      const progs = await preparePins(conf.pinDir, conf.stateDir, { swap: false });
      tracePhase('add: bpf programs (pinned: opened, else loaded)');
      let createdClsact = false;
      let bridge: AttachmentState['bridge'];
      try {
        createdClsact = ensureClsact(hostLink.index);
        if (createdClsact) undo.push({ what: 'remove clsact', run: () => destroyClsact(hostLink.index) });
        attach(hostLink.index, 'ingress', progs.fromPod);
        undo.push({ what: 'detach ingress', run: () => detach(hostLink.index, 'ingress') });
        attach(hostLink.index, 'egress', progs.toPod);
        undo.push({ what: 'detach egress', run: () => detach(hostLink.index, 'egress') });
        bridge = await attachBridgeOut(host, hostLink, progs.bridgeOut);
      } finally {
        closeFds(progs.fromPod, progs.toPod, progs.bridgeOut);
      }
      log.debug('add: filters attached');
      tracePhase('add: filters attached');
      if (ensureLiberalTcpTracking())
        log.info('enabled liberal TCP conntrack (nf_conntrack_tcp_be_liberal=1) so steering switches never hit stale conntrack windows');
      // An entry left for this ifindex by another pod (a DEL that never ran) must not lend this
      // pod its steering: start clean.
      const stale = getEndpoint(conf.pinDir, hostLink.index);
      if (stale && (stale.ipv4 !== ipv4 || stale.ipv6 !== ipv6 || stale.podIfindex !== podLink.index)) {
        log.warn('replacing a stale endpoint entry on this host interface', {
          host: hostLink.name,
          stale: `${stale.ipv4 ?? '-'} ${stale.ipv6 ?? '-'}`,
        });
        removeEndpoint(conf.pinDir, hostLink.index);
      }
      refuseForeignAddresses(
        conf.pinDir,
        [ipv4, ipv6].filter((a) => a !== undefined),
        hostLink.index,
      );
      putEndpoint(conf.pinDir, hostLink.index, { ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}), podIfindex: podLink.index });
      undo.push({ what: 'remove endpoint', run: () => deleteEndpoint(conf.pinDir, hostLink.index) });
      tracePhase('add: endpoint map written');

      // 7. State, written last: its presence means the attachment is complete. A repeated ADD
      //    for the same attachment keeps what the first one changed, so DEL still undoes it.
      const earlier = loadStateQuietly(conf.stateDir, env.containerId, env.ifname);
      const same = earlier?.hostIfindex === hostLink.index ? earlier : undefined;
      const state: AttachmentState = {
        containerId: env.containerId,
        ifname: env.ifname,
        netns: env.netns,
        netnsId: { dev: ns.dev, ino: ns.ino },
        network: conf.name,
        hostIfindex: hostLink.index,
        hostIfname: hostLink.name,
        podIfindex: podLink.index,
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
        mtu: { before: same?.mtu.before ?? podLink.mtu, after: mtu },
        createdAt: new Date().toISOString(),
      };
      saveState(conf.stateDir, state);
      undo.push({ what: 'remove state', run: () => removeState(conf.stateDir, env.containerId, env.ifname) });
      tracePhase('add: state saved');
      log.info('attached', { container: env.containerId, ifname: env.ifname, host: hostLink.name, ipv4, ipv6, mtu });
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
