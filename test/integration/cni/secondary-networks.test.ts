/**
 * afsteer chained after macvlan and host-device on a secondary network (net1), driven through
 * libcni as Multus drives a NetworkAttachmentDefinition's delegate (CNI_IFNAME=net1): programs in
 * the pod's namespace on net1 (egress from the pod, ingress to it), keyed by attachment id (two
 * pods' net1 never collide even with the same ifindex), the parent's MTU less the outer header, a
 * steered pair moving between families over the transport router, bad input, and DEL/GC leaving
 * nothing. ipvlan: this kernel has no ipvlan (the test says so in one line and skips it).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEndpoint, listEndpoints, readCounters } from '../../../src/bpf/endpoint-map';
import { Direction, EP_KEY_POD, Family } from '../../../src/bpf/maps-layout';
import { listPairs } from '../../../src/bpf/steering';
import { nsExec } from '../../support/process';
import type { SimPod } from '../../support/sim-topology';
import { type Net1, TransportFabric } from '../../support/transport-fabric';
import { TwoNodes } from '../../support/two-nodes';
import { AFSTEER_BIN, announceSkip, IS_ROOT, runWithInput, sh } from '../../support/world';

announceSkip('secondary networks (macvlan, host-device) through libcni');
const HAS_IPVLAN = IS_ROOT && kernelHasIpvlan();
if (IS_ROOT && !HAS_IPVLAN)
  console.warn('SKIPPED ipvlan (l2, l3) after afsteer: this kernel has no ipvlan link type (and no module for it)');

/** True when this kernel can make an ipvlan link. */
function kernelHasIpvlan(): boolean {
  const ns = `afipvl${process.pid}`;
  try {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
    sh('ip', ['-n', ns, 'link', 'add', 'iv0', 'link', 'p0', 'type', 'ipvlan', 'mode', 'l2']);
    return true;
  } catch {
    return false;
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // not made
    }
  }
}

/** One ping (of family f) from a pod's namespace; true when answered. */
async function pings(pod: SimPod, f: 4 | 6, to: string): Promise<boolean> {
  try {
    await nsExec(pod.nsPath, ['ping', `-${f}`, '-c', '2', '-i', '0.2', '-W', '1', to]);
    return true;
  } catch {
    return false;
  }
}

/** The tc filters on a pod's interface at a clsact point, as tc shows them. */
function podTc(pod: SimPod, ifname: string, point: 'ingress' | 'egress'): string {
  try {
    return sh('ip', ['netns', 'exec', pod.ns, 'tc', 'filter', 'show', 'dev', ifname, point]);
  } catch {
    return '';
  }
}

describe.skipIf(!IS_ROOT)('secondary networks', () => {
  let t: TwoNodes;
  let fabric: TransportFabric;
  let a0: SimPod;
  let a1: SimPod;
  let b0: SimPod;
  let a0n: Net1;
  let a1n: Net1;
  let b0n: Net1;

  beforeAll(async () => {
    t = new TwoNodes();
    fabric = new TransportFabric(t);
    try {
      await t.up();
      fabric.up();
      a0 = await t.addPod(t.a, 'a0', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=cnf;K8S_POD_NAME=upf-a0');
      a1 = await t.addPod(t.a, 'a1', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=cnf;K8S_POD_NAME=upf-a1');
      b0 = await t.addPod(t.b, 'b0', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=cnf;K8S_POD_NAME=upf-b0');
      a0n = await fabric.addMacvlan(a0, 'IgnoreUnknown=1;K8S_POD_NAMESPACE=cnf;K8S_POD_NAME=upf-a0');
      a1n = await fabric.addMacvlan(a1, 'IgnoreUnknown=1;K8S_POD_NAMESPACE=cnf;K8S_POD_NAME=upf-a1');
      b0n = await fabric.addMacvlan(b0, 'IgnoreUnknown=1;K8S_POD_NAMESPACE=cnf;K8S_POD_NAME=upf-b0');
    } catch (err) {
      fabric.cleanup();
      t.cleanup();
      throw err;
    }
  }, 120_000);
  afterAll(() => {
    fabric?.cleanup();
    t?.cleanup();
  });

  it('ADD after macvlan (CNI_IFNAME=net1): dual-stack, programs in the pod namespace on net1, the parent MTU less 40, CHECK passes', async () => {
    expect(a0n.ipv4).toMatch(/^172\.30\.1\./);
    expect(a0n.ipv6).toMatch(/^fd30:1::/);
    expect(a0n.state).toMatchObject({ placement: 'pod', network: 'transport', ifname: 'net1', podName: 'upf-a0' });
    expect(a0n.state.hostIfindex).toBeUndefined();
    expect(a0n.endpoint).toBeGreaterThanOrEqual(EP_KEY_POD);
    // from the pod = net1's egress, to the pod = its ingress, each tagged with the attachment id.
    const id = (a0n.endpoint - EP_KEY_POD).toString(16);
    expect(podTc(a0, 'net1', 'egress')).toMatch(new RegExp(`flowid af:${id} afsteer_from_po`));
    expect(podTc(a0, 'net1', 'ingress')).toMatch(new RegExp(`flowid af:${id} afsteer_to_pod`));
    expect(await t.inPod(a0, ['ip', '-o', 'link', 'show', 'dev', 'net1'])).toMatch(/ mtu 1460 /);
    expect(a0n.state).toMatchObject({ parent: { name: 'tp0', mtu: 1500 }, mtu: { before: 1500, after: 1460 } });
    const ep = getEndpoint(t.a.pinDir, a0n.endpoint);
    expect(ep).toMatchObject({ ipv4: a0n.ipv4, ipv6: a0n.ipv6, inPod: true });
    const check = await fabric.driver(t.a, 'check', fabric.conflistPath(t.a, 'macvlan'), a0.nsPath, a0.id);
    expect(check.stderr).not.toMatch(/error/i);
  });

  it('the first afsteer ADD on a node may be an in-pod one (no pins, no state yet)', async () => {
    const fresh = { pinDir: `${t.a.pinDir}-fresh`, stateDir: join(t.dir, 'state-fresh') };
    const conf = fabric.conflist(t.a, 'macvlan', undefined, 0, fresh);
    const ipam = (conf.plugins as { ipam: { ranges: { rangeStart: string; rangeEnd: string }[][]; dataDir: string } }[])[0]!.ipam;
    ipam.ranges[0]![0]!.rangeStart = '172.30.1.150';
    ipam.ranges[0]![0]!.rangeEnd = '172.30.1.160';
    ipam.ranges[1]![0]!.rangeStart = 'fd30:1::150';
    ipam.ranges[1]![0]!.rangeEnd = 'fd30:1::160';
    ipam.dataDir = join(t.dir, 'ipam-fresh');
    const path = join(t.dir, 'fresh.conflist');
    writeFileSync(path, JSON.stringify(conf));
    const pod = await t.addPod(t.a, 'f0');
    try {
      const { stdout } = await fabric.driver(t.a, 'add', path, pod.nsPath, pod.id);
      expect((JSON.parse(stdout) as { ips: unknown[] }).ips).toHaveLength(2);
      expect(listEndpoints(fresh.pinDir).size).toBe(1);
      await fabric.driver(t.a, 'del', path, pod.nsPath, pod.id);
      expect(listEndpoints(fresh.pinDir).size).toBe(0);
    } finally {
      rmSync(fresh.pinDir, { recursive: true, force: true });
    }
  });

  it('a pod with eth0 (bridge) and net1 (macvlan) is two endpoints; two pods whose net1 share an ifindex never collide', async () => {
    const eps = listEndpoints(t.a.pinDir);
    expect(eps.get(a0.hostIfindex)).toMatchObject({ ipv4: a0.ipv4 });
    expect(eps.get(a0.hostIfindex)?.inPod).toBeUndefined();
    expect(eps.get(a0n.endpoint)).toMatchObject({ ipv4: a0n.ipv4 });
    expect(a1n.endpoint).not.toBe(a0n.endpoint);
    // Both pods' net1 have the same ifindex in their own namespaces: the key is the attachment id.
    expect(a1n.state.podIfindex).toBe(a0n.state.podIfindex);
    expect(eps.get(a1n.endpoint)).toMatchObject({ ipv4: a1n.ipv4, podIfindex: a0n.state.podIfindex });
  });

  it('two pods on one macvlan parent exchange traffic on net1; each pod counts its own, in the right direction', async () => {
    const before = readCounters(t.a.pinDir);
    expect(await pings(a0, 4, a1n.ipv4)).toBe(true);
    expect(await pings(a0, 6, a1n.ipv6)).toBe(true);
    const after = readCounters(t.a.pinDir);
    const delta = (key: number, fam: number, dir: number) => {
      const sum = (rows: typeof after) =>
        rows.filter((r) => r.ifindex === key && r.family === fam && r.direction === dir).reduce((s, r) => s + r.packets, 0n);
      return sum(after) - sum(before);
    };
    for (const fam of [Family.ipv4, Family.ipv6]) {
      for (const key of [a0n.endpoint, a1n.endpoint]) {
        expect(delta(key, fam, Direction.fromPod), `key ${key} fam ${fam} from`).toBeGreaterThanOrEqual(2n);
        expect(delta(key, fam, Direction.toPod), `key ${key} fam ${fam} to`).toBeGreaterThanOrEqual(2n);
      }
      // eth0 saw none of it.
      expect(delta(a0.hostIfindex, fam, Direction.fromPod)).toBe(0n);
    }
  });

  it('a steered pair on net1 moves between families (afsteer steer set) across the transport router; eth0 untouched', async () => {
    await t.steerCmd(t.a, ['remote', 'add', b0n.ipv4, b0n.ipv6]);
    await t.steerCmd(t.b, ['remote', 'add', a0n.ipv4, a0n.ipv6]);
    try {
      await fabric.impair(4, 'blackhole');
      expect(await pings(a0, 4, b0n.ipv4)).toBe(false);
      await t.steerCmd(t.a, ['set', a0n.ipv4, b0n.ipv4, 'ipv6']);
      await t.steerCmd(t.b, ['set', b0n.ipv4, a0n.ipv4, 'ipv6']);
      expect(await pings(a0, 4, b0n.ipv4)).toBe(true);
      const pa = listPairs(t.a.pinDir).find((p) => p.ifindex === a0n.endpoint);
      expect(pa?.wire).toBe('ipv6');
      expect(pa?.counters?.encapPackets[0]).toBeGreaterThanOrEqual(2n);
      expect(pa?.counters?.decapPackets[0]).toBeGreaterThanOrEqual(2n);
      // Anti-spoofing holds in the pod: a ready-made IPv4-in-IPv6 packet toward the steered peer is dropped.
      const spoof = [
        'import socket, struct',
        `src, dst = socket.inet_aton('${a0n.ipv4}'), socket.inet_aton('${b0n.ipv4}')`,
        "inner = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0x4000, 64, 17, 0, src, dst) + bytes(8)",
        's = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)',
        `s.sendto(inner, ('${b0n.ipv6}', 0))`,
      ].join('\n');
      await nsExec(a0.nsPath, ['python3', '-c', spoof]);
      expect(listPairs(t.a.pinDir).find((p) => p.ifindex === a0n.endpoint)?.counters?.dropSpoof).toBe(1n);

      await fabric.impair(4, null);
      await fabric.impair(6, 'blackhole');
      expect(await pings(a0, 6, b0n.ipv6)).toBe(false);
      await t.steerCmd(t.a, ['set', a0n.ipv4, b0n.ipv4, 'ipv4']);
      await t.steerCmd(t.b, ['set', b0n.ipv4, a0n.ipv4, 'ipv4']);
      expect(await pings(a0, 6, b0n.ipv6)).toBe(true);
      expect(listPairs(t.a.pinDir).find((p) => p.ifindex === a0n.endpoint)?.counters?.encapPackets[1]).toBeGreaterThanOrEqual(2n);
      // The pods' eth0 endpoints have no pair: the steering is net1's alone.
      expect(listPairs(t.a.pinDir).filter((p) => p.ifindex === a0.hostIfindex)).toEqual([]);
    } finally {
      await fabric.impair(6, null);
      await t.steerCmd(t.a, ['clear', a0n.ipv4, b0n.ipv4]).catch(() => '');
      await t.steerCmd(t.b, ['clear', b0n.ipv4, a0n.ipv4]).catch(() => '');
    }
  });

  it('bad input: the host namespace as CNI_NETNS (4); an ifname that already carries afsteer (7); an interface that vanished (CHECK names it, DEL cleans up)', async () => {
    const prevResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', sandbox: a0.nsPath }],
      ips: [
        { address: `${a0n.ipv4}/24`, interface: 0 },
        { address: `${a0n.ipv6}/64`, interface: 0 },
      ],
    };
    const conf = {
      ...(fabric.conflist(t.a, 'macvlan').plugins as Record<string, unknown>[])[1],
      cniVersion: '1.0.0',
      name: 'transport',
      prevResult,
    };
    const run = (netns: string, id: string, command = 'ADD') =>
      runWithInput('nsenter', [`--net=${t.a.nsPath}`, AFSTEER_BIN], JSON.stringify(conf), {
        PATH: process.env.PATH,
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: netns,
        CNI_IFNAME: 'net1',
        CNI_PATH: '/usr/lib/cni',
      });
    const hostNs = await run(t.a.nsPath, 'ctr-hostns');
    expect(hostNs.json).toMatchObject({ code: 4 });
    expect(String(hostNs.json?.msg)).toMatch(/host's network namespace/);

    const twice = await run(a0.nsPath, 'ctr-intruder');
    expect(twice.json, twice.stderr).toMatchObject({ code: 7 });
    expect(String(twice.json?.msg)).toMatch(/already carries afsteer \(attachment \d+, container ctr-a0 interface net1\)/);
    expect(podTc(a0, 'net1', 'egress')).toMatch(/afsteer_from_po/);

    // a1's net1 vanishes under afsteer: afsteer's own CHECK names it (the chain's macvlan CHECK would fail first).
    await t.inPod(a1, ['ip', 'link', 'del', 'net1']);
    conf.prevResult.interfaces[0]!.sandbox = a1.nsPath;
    const check = await run(a1.nsPath, a1.id, 'CHECK');
    expect(check.json).toMatchObject({ code: 999 });
    expect(String(check.json?.msg)).toMatch(/interface net1 is missing/);
    await fabric.driver(t.a, 'del', fabric.conflistPath(t.a, 'macvlan'), a1.nsPath, a1.id);
    expect(getEndpoint(t.a.pinDir, a1n.endpoint)).toBeUndefined();
    expect(existsSync(join(t.a.stateDir, 'attachments', `${a1.id}_net1.json`))).toBe(false);
  });

  it('host-device (a veth end moved into the pod, its peer in the transport router): in-pod programs, route MTU, steering, and DEL returns a clean device', async () => {
    const c0 = await t.addPod(t.a, 'c0');
    const c0n = await fabric.addHostDevice(c0);
    expect(c0n.state).toMatchObject({ placement: 'pod', mtu: { before: 1500, after: 1500 }, routeMtu: { mtu: 1460 } });
    expect(c0n.state.parent).toBeUndefined();
    expect(podTc(c0, 'net1', 'egress')).toMatch(/afsteer_from_po/);
    expect(podTc(c0, 'net1', 'ingress')).toMatch(/afsteer_to_pod/);
    // The device is the wire and keeps its MTU; the pod's routes through it leave room for the outer header.
    expect(await t.inPod(c0, ['ip', '-o', 'link', 'show', 'dev', 'net1'])).toMatch(/ mtu 1500 /);
    const routes = await t.inPod(c0, ['ip', '-4', 'route', 'show', 'dev', 'net1']);
    expect(routes).toMatch(/172\.30\.0\.0\/16 via 172\.31\.\d+\.1 .*mtu 1460/);
    expect(await t.inPod(c0, ['ip', '-6', 'route', 'show', 'dev', 'net1'])).toMatch(/fd30::\/16 via fd31:\d+::1 .*mtu 1460/);
    const hdCheck = fabric.conflistPath(t.a, 'host-device', '-1');
    await fabric.driver(t.a, 'check', hdCheck, c0.nsPath, c0.id);

    await t.steerCmd(t.a, ['remote', 'add', b0n.ipv4, b0n.ipv6]);
    await t.steerCmd(t.b, ['remote', 'add', c0n.ipv4, c0n.ipv6]);
    try {
      expect(await pings(c0, 4, b0n.ipv4)).toBe(true);
      await fabric.impair(4, 'blackhole');
      expect(await pings(c0, 4, b0n.ipv4)).toBe(false);
      await t.steerCmd(t.a, ['set', c0n.ipv4, b0n.ipv4, 'ipv6']);
      await t.steerCmd(t.b, ['set', b0n.ipv4, c0n.ipv4, 'ipv6']);
      expect(await pings(c0, 4, b0n.ipv4)).toBe(true);
      // Full-size packets both ways: 1460 on the pod's routes, 1500 with the outer header on the wire.
      await nsExec(c0.nsPath, ['ping', '-4', '-c', '2', '-W', '2', '-M', 'do', '-s', String(1460 - 28), b0n.ipv4]);
    } finally {
      await fabric.impair(4, null);
      await t.steerCmd(t.b, ['clear', b0n.ipv4, c0n.ipv4]).catch(() => '');
    }

    const dev = 'hd1xa';
    await fabric.driver(t.a, 'del', hdCheck, c0.nsPath, c0.id);
    expect(getEndpoint(t.a.pinDir, c0n.endpoint)).toBeUndefined();
    expect(listPairs(t.a.pinDir).filter((p) => p.ifindex === c0n.endpoint)).toEqual([]);
    // host-device moved the device back to the node: nothing of afsteer's on it.
    expect(sh('ip', ['netns', 'exec', t.a.ns, 'tc', 'qdisc', 'show', 'dev', dev])).not.toMatch(/clsact/);
    expect(sh('ip', ['netns', 'exec', t.a.ns, 'tc', 'filter', 'show', 'dev', dev, 'egress'])).toBe('');
  });

  it('GC of the network removes an in-pod attachment not in the valid list: no filter or clsact left on net1', async () => {
    const conf = {
      ...(fabric.conflist(t.a, 'macvlan').plugins as Record<string, unknown>[])[1],
      cniVersion: '1.1.0',
      name: 'transport',
      'cni.dev/valid-attachments': [{ containerID: 'ctr-a0', ifname: 'eth0' }],
    };
    const gc = await runWithInput('nsenter', [`--net=${t.a.nsPath}`, AFSTEER_BIN], JSON.stringify(conf), {
      PATH: process.env.PATH,
      CNI_COMMAND: 'GC',
      CNI_PATH: '/usr/lib/cni',
    });
    expect(gc.code, gc.stdout + gc.stderr).toBe(0);
    expect(getEndpoint(t.a.pinDir, a0n.endpoint)).toBeUndefined();
    expect(podTc(a0, 'net1', 'egress')).toBe('');
    expect(podTc(a0, 'net1', 'ingress')).toBe('');
    expect(sh('ip', ['netns', 'exec', a0.ns, 'tc', 'qdisc', 'show', 'dev', 'net1'])).not.toMatch(/clsact/);
    // The primary network's attachment of the same pod is another network's: GC of "transport" leaves it.
    expect(getEndpoint(t.a.pinDir, a0.hostIfindex)).toBeDefined();
  });

  it('DEL of net1 leaves nothing of it; the pod keeps eth0', async () => {
    await fabric.driver(t.b, 'del', fabric.conflistPath(t.b, 'macvlan'), b0.nsPath, b0.id);
    expect(getEndpoint(t.b.pinDir, b0n.endpoint)).toBeUndefined();
    expect(existsSync(join(t.b.stateDir, 'attachments', `${b0.id}_net1.json`))).toBe(false);
    expect(await t.inPod(b0, ['ip', '-o', 'link', 'show'])).not.toMatch(/net1/);
    expect(getEndpoint(t.b.pinDir, b0.hostIfindex)).toBeDefined();
    expect(existsSync(join(t.b.stateDir, 'attachments', `${b0.id}_eth0.json`))).toBe(true);
  });
});

describe.skipIf(!HAS_IPVLAN)('secondary networks: ipvlan', () => {
  let t: TwoNodes;
  let fabric: TransportFabric;
  beforeAll(async () => {
    t = new TwoNodes();
    fabric = new TransportFabric(t);
    try {
      await t.up();
      fabric.up();
    } catch (err) {
      fabric.cleanup();
      t.cleanup();
      throw err;
    }
  }, 120_000);
  afterAll(() => {
    fabric?.cleanup();
    t?.cleanup();
  });

  for (const mode of ['l2', 'l3'] as const) {
    it(`ipvlan ${mode}: programs in the pod on net1, the parent MTU less 40, traffic to the other node, DEL leaves nothing`, async () => {
      const pod = await t.addPod(t.a, `iv${mode}`);
      const conf = fabric.conflist(t.a, 'macvlan');
      const plugins = conf.plugins as Record<string, unknown>[];
      plugins[0] = { ...plugins[0], type: 'ipvlan', mode, master: 'tp0' };
      delete plugins[0]!.mtu;
      const path = join(t.dir, `ipvlan-${mode}.conflist`);
      writeFileSync(path, JSON.stringify(conf));
      const { stdout } = await fabric.driver(t.a, 'add', path, pod.nsPath, pod.id);
      const ips = (JSON.parse(stdout) as { ips: { address: string }[] }).ips.map((i) => i.address);
      expect(ips.some((a) => a.includes(':')) && ips.some((a) => !a.includes(':'))).toBe(true);
      const state = JSON.parse(sh('cat', [join(t.a.stateDir, 'attachments', `${pod.id}_net1.json`)])) as Record<string, unknown>;
      expect(state).toMatchObject({ placement: 'pod', parent: { name: 'tp0' }, mtu: { after: 1460 } });
      expect(podTc(pod, 'net1', 'egress')).toMatch(/afsteer_from_po/);
      expect(podTc(pod, 'net1', 'ingress')).toMatch(/afsteer_to_pod/);
      await fabric.driver(t.a, 'check', path, pod.nsPath, pod.id);
      const far = fabric.nodeAddresses(t.b);
      expect(await pings(pod, 4, far.ipv4)).toBe(true);
      expect(await pings(pod, 6, far.ipv6)).toBe(true);
      await fabric.driver(t.a, 'del', path, pod.nsPath, pod.id);
      expect(getEndpoint(t.a.pinDir, state.endpoint as number)).toBeUndefined();
      expect(existsSync(join(t.a.stateDir, 'attachments', `${pod.id}_net1.json`))).toBe(false);
    });
  }
});
