/** CNI CHECK: verify that what ADD made is still in place, failing with a message naming what is missing. */
import { join } from 'node:path';
import { getEndpoint, localEndpointByAddress } from '../bpf/endpoint-map';
import { closeFds, objectId, openPinned } from '../bpf/libbpf';
import { podAttachmentId } from '../bpf/maps-layout';
import { idOfClassid, POD_POINTS, podFilters } from '../bpf/pod-filters';
import { PROGRAMS } from '../bpf/programs';
import { query } from '../bpf/tc';
import { parseCidr } from '../net/ip';
import { sameNetns } from '../net/netns';
import { Rtnl } from '../net/rtnl';
import { attachmentLabel, loadState } from '../node/attachments';
import { openPod, requirePrevResult } from './add';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { routesMissingMtu } from './in-pod';
import { openPodNetns } from './pod-netns';
import { containerInterfaceIndex } from './result';

/** The id of afsteer's pinned program name in progDir. */
function pinnedId(progDir: string, name: string): number {
  const fd = openPinned(join(progDir, name));
  try {
    return objectId(fd);
  } finally {
    closeFds(fd);
  }
}

function fail(msg: string): never {
  throw new CniError(CniCode.Internal, `afsteer CHECK failed: ${msg}`);
}

/** Runs CHECK (prints nothing on success). */
export async function cmdCheck(conf: NetConf, env: CniEnv): Promise<undefined> {
  const prev = requirePrevResult(conf);
  const ns = openPodNetns(env.netns);
  try {
    await checkIn(conf, env, prev, ns);
  } finally {
    ns.close();
  }
  return undefined;
}

async function checkIn(
  conf: NetConf,
  env: CniEnv,
  prev: ReturnType<typeof requirePrevResult>,
  ns: ReturnType<typeof openPodNetns>,
): Promise<void> {
  const state = loadState(conf.stateDir, env.containerId, env.ifname);
  if (!state) fail(`no attachment recorded for container ${env.containerId} interface ${env.ifname} in ${conf.stateDir}`);
  if (state.netnsId && !sameNetns(state.netnsId, ns))
    fail(`CNI_NETNS ${env.netns} is not the network namespace recorded at ADD (${state.netns})`);

  const host = Rtnl.host();
  let pod: Rtnl | undefined;
  try {
    const label = attachmentLabel(state);
    if (state.placement === 'host-veth') {
      const hostLink = state.hostIfindex === undefined ? undefined : await host.linkByIndex(state.hostIfindex);
      if (!hostLink || hostLink.name !== state.hostIfname) fail(`host veth ${state.hostIfname} (ifindex ${state.hostIfindex}) is gone`);
      for (const [point, prog] of [
        ['ingress', PROGRAMS.fromPod],
        ['egress', PROGRAMS.toPod],
      ] as const) {
        const attached = query(hostLink.index, point);
        if (attached === undefined) fail(`tc ${point} filter (${prog}) is missing on ${hostLink.name}`);
        if (pinnedId(state.progDir, prog) !== attached)
          fail(`tc ${point} filter on ${hostLink.name} runs program id ${attached}, not afsteer's ${prog}`);
      }
    }

    const ep = getEndpoint(conf.pinDir, state.endpoint);
    const keyText = state.placement === 'host-veth' ? `ifindex ${state.endpoint}` : `attachment ${podAttachmentId(state.endpoint)}`;
    if (!ep) fail(`endpoint map entry for ${label} (${keyText}) is missing`);
    if (ep.ipv4 !== state.ipv4 || ep.ipv6 !== state.ipv6 || ep.podIfindex !== state.podIfindex) {
      fail(`endpoint map entry for ${label} holds ${ep.ipv4 ?? '-'} ${ep.ipv6 ?? '-'}, expected ${state.ipv4 ?? '-'} ${state.ipv6 ?? '-'}`);
    }
    for (const a of [state.ipv4, state.ipv6]) {
      const owner = a === undefined ? undefined : localEndpointByAddress(conf.pinDir, a);
      if (a !== undefined && owner !== state.endpoint)
        fail(
          `address ${a} is registered to ${owner === undefined ? 'no endpoint' : podAttachmentId(owner) === undefined ? `host ifindex ${owner}` : `attachment ${podAttachmentId(owner)}`}, not to ${label}`,
        );
    }

    pod = openPod(ns, env.netns);
    const podLink = await pod.linkByName(env.ifname);
    if (!podLink) fail(`interface ${env.ifname} is missing in ${env.netns}`);
    if (podLink.index !== state.podIfindex)
      fail(`${env.ifname} in ${env.netns} is not the interface afsteer attached to (ifindex ${podLink.index}, not ${state.podIfindex})`);
    if (state.placement === 'pod') {
      const filters = await podFilters(pod, podLink.index);
      const id = podAttachmentId(state.endpoint);
      for (const role of ['fromPod', 'toPod'] as const) {
        const f = filters[role];
        const where = `tc ${POD_POINTS[role]} filter (${PROGRAMS[role]}) on ${env.ifname}`;
        if (!f) fail(`${where} is missing`);
        if (idOfClassid(f.classid) !== id) fail(`${where} carries classid ${f.classid.toString(16)}, not attachment ${id}'s`);
        if (f.progId !== pinnedId(state.progDir, PROGRAMS[role]))
          fail(`${where} runs program id ${f.progId}, not afsteer's ${PROGRAMS[role]}`);
      }
      if (state.routeMtu) {
        const lacking = await routesMissingMtu(pod, podLink.index, state.routeMtu);
        if (lacking.length)
          fail(`route${lacking.length > 1 ? 's' : ''} ${lacking.join(', ')} through ${env.ifname} lack mtu ${state.routeMtu.mtu}`);
      }
    }
    if (podLink.mtu !== state.mtu.after) fail(`${env.ifname} has mtu ${podLink.mtu}, expected ${state.mtu.after}`);
    const present = new Set((await pod.addresses(podLink.index)).map((a) => `${a.address}/${a.prefix}`));
    const ifIdx = containerInterfaceIndex(prev, env.ifname);
    const expected = (prev.ips ?? []).filter((i) => i.interface === undefined || i.interface === ifIdx).map((i) => parseCidr(i.address));
    for (const c of expected) {
      if (!present.has(`${c.address}/${c.prefix}`)) fail(`address ${c.address}/${c.prefix} is missing on ${env.ifname}`);
    }
    for (const a of [state.ipv4, state.ipv6]) {
      if (a && ![...present].some((p) => p.startsWith(a + '/'))) fail(`address ${a} is missing on ${env.ifname}`);
    }
  } finally {
    pod?.close();
    host.close();
  }
}
