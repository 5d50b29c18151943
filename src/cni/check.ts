/** CNI CHECK: verify that what ADD made is still in place, failing with a message naming what is missing. */
import { join } from 'node:path';
import { getEndpoint, localEndpointByAddress } from '../bpf/endpoint-map';
import { objectId } from '../bpf/libbpf';
import { closeFds, openPinned, PROGRAMS } from '../bpf/programs';
import { query } from '../bpf/tc';
import { parseCidr } from '../net/ip';
import { sameNetns } from '../net/netns';
import { Rtnl } from '../net/rtnl';
import { loadState } from '../node/attachments';
import { openPod, requirePrevResult } from './add';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { openPodNetns } from './pod-netns';
import { containerInterfaceIndex } from './result';

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
    const hostLink = await host.linkByIndex(state.hostIfindex);
    if (!hostLink || hostLink.name !== state.hostIfname) fail(`host veth ${state.hostIfname} (ifindex ${state.hostIfindex}) is gone`);

    for (const [point, prog] of [
      ['ingress', PROGRAMS.fromPod],
      ['egress', PROGRAMS.toPod],
    ] as const) {
      const attached = query(hostLink.index, point);
      if (attached === undefined) fail(`tc ${point} filter (${prog}) is missing on ${hostLink.name}`);
      const fd = openPinned(join(state.progDir, prog));
      try {
        if (objectId(fd) !== attached) fail(`tc ${point} filter on ${hostLink.name} runs program id ${attached}, not afsteer's ${prog}`);
      } finally {
        closeFds(fd);
      }
    }

    const ep = getEndpoint(conf.pinDir, state.hostIfindex);
    if (!ep) fail(`endpoint map entry for ${hostLink.name} (ifindex ${state.hostIfindex}) is missing`);
    if (ep.ipv4 !== state.ipv4 || ep.ipv6 !== state.ipv6 || ep.podIfindex !== state.podIfindex) {
      fail(
        `endpoint map entry for ${hostLink.name} holds ${ep.ipv4 ?? '-'} ${ep.ipv6 ?? '-'}, expected ${state.ipv4 ?? '-'} ${state.ipv6 ?? '-'}`,
      );
    }
    for (const a of [state.ipv4, state.ipv6]) {
      const owner = a === undefined ? undefined : localEndpointByAddress(conf.pinDir, a);
      if (a !== undefined && owner !== state.hostIfindex)
        fail(`address ${a} is registered to ${owner === undefined ? 'no endpoint' : `host ifindex ${owner}`}, not to ${hostLink.name}`);
    }

    pod = openPod(ns, env.netns);
    const podLink = await pod.linkByName(env.ifname);
    if (!podLink) fail(`interface ${env.ifname} is missing in ${env.netns}`);
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
