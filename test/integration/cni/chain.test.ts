/**
 * The real chain — Debian's bridge + host-local, then dist/afsteer — driven through libcni.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEndpoint, readCounters } from '../../../src/bpf/endpoint-map';
import { Direction, Family } from '../../../src/bpf/maps-layout';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

announceSkip('chain (libcni + bridge + host-local + afsteer)');

interface AddResult {
  cniVersion: string;
  interfaces: { name: string; sandbox?: string; mtu?: number }[];
  ips: { address: string; interface?: number; version?: string }[];
}

function hostVethOf(w: World, containerId: string): { hostIfname: string; hostIfindex: number } {
  const st = JSON.parse(sh('cat', [join(w.stateDir, 'attachments', `${containerId}_eth0.json`)])) as {
    hostIfname: string;
    hostIfindex: number;
  };
  return st;
}

describe.skipIf(!IS_ROOT)('chain through libcni', () => {
  let w: World;
  let conflist: string;
  beforeAll(() => {
    w = new World();
    conflist = w.conflist('chain');
  });
  afterAll(() => w?.cleanup());

  it('ADD makes the pod dual-stack, attaches filters, pins, registers the endpoint; CHECK passes', async () => {
    const ns = w.netns('a');
    const add = await w.driver('add', conflist, ns, 'ctr-a', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a');
    expect(add.code, add.stderr).toBe(0);
    const r = add.json as unknown as AddResult;
    const fams = r.ips.map((i) => (i.address.includes(':') ? 6 : 4)).sort();
    expect(fams).toEqual([4, 6]);

    const addrs = await w.inNs(ns, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    for (const ip of r.ips) expect(addrs).toContain(ip.address);
    expect(addrs).not.toMatch(/tentative/);
    // (not /sys/class/net: sysfs follows the mount namespace, not the netns)
    expect(await w.inNs(ns, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).toMatch(/ mtu 1460 /);

    const { hostIfname, hostIfindex } = hostVethOf(w, 'ctr-a');
    expect(sh('tc', ['filter', 'show', 'dev', hostIfname, 'ingress'])).toMatch(/afsteer_from_po/);
    expect(sh('tc', ['filter', 'show', 'dev', hostIfname, 'egress'])).toMatch(/afsteer_to_pod/);
    expect(existsSync(join(w.pinDir, 'afsteer_endpoints'))).toBe(true);
    expect(existsSync(join(w.pinDir, 'afsteer_counters'))).toBe(true);
    const progDirs = readdirSync(join(w.pinDir, 'progs'));
    expect(progDirs).toHaveLength(1);
    expect(readdirSync(join(w.pinDir, 'progs', progDirs[0]!)).sort()).toEqual(['afsteer_bridge_out', 'afsteer_from_pod', 'afsteer_to_pod']);
    // The pod's veth is a bridge port: the bridge's egress carries afsteer_bridge_out.
    expect(sh('tc', ['filter', 'show', 'dev', w.bridge, 'egress'])).toMatch(/afsteer_bridge_/);

    const ep = getEndpoint(w.pinDir, hostIfindex);
    expect(ep?.ipv4 && r.ips.some((i) => i.address.startsWith(ep.ipv4 + '/'))).toBe(true);
    expect(ep?.ipv6 && r.ips.some((i) => i.address.startsWith(ep.ipv6 + '/'))).toBe(true);
    const state = JSON.parse(sh('cat', [join(w.stateDir, 'attachments', 'ctr-a_eth0.json')])) as Record<string, unknown>;
    expect(state).toMatchObject({ podNamespace: 'default', podName: 'pod-a', containerId: 'ctr-a' });

    const check = await w.driver('check', conflist, ns, 'ctr-a');
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });

  it('per-family counters rise with real traffic between two pods', async () => {
    const nsB = w.netns('b');
    const add = await w.driver('add', conflist, nsB, 'ctr-b');
    expect(add.code, add.stderr).toBe(0);
    const ipsB = (add.json as unknown as AddResult).ips.map((i) => i.address.split('/')[0]!);
    const nsA = '/run/netns/af' + w.id + 'a';
    const { hostIfindex } = hostVethOf(w, 'ctr-a');
    const before = readCounters(w.pinDir, hostIfindex);
    for (const ip of ipsB) await w.inNs(nsA, ['ping', '-c', '5', '-i', '0.05', '-W', '2', ip]);
    const after = readCounters(w.pinDir, hostIfindex);
    const total = (rows: typeof after, fam: number, dir: number) =>
      rows.filter((r) => r.family === fam && r.direction === dir).reduce((s, r) => s + r.packets, 0n);
    for (const fam of [Family.ipv4, Family.ipv6]) {
      for (const dir of [Direction.fromPod, Direction.toPod]) {
        expect(total(after, fam, dir) - total(before, fam, dir), `family ${fam} dir ${dir}`).toBeGreaterThanOrEqual(5n);
      }
    }
    const del = await w.driver('del', conflist, nsB, 'ctr-b');
    expect(del.code, del.stderr).toBe(0);
  });

  it('CHECK fails with a specific message once a filter is removed by hand', async () => {
    const ns = '/run/netns/af' + w.id + 'a';
    const { hostIfname } = hostVethOf(w, 'ctr-a');
    sh('tc', ['filter', 'del', 'dev', hostIfname, 'ingress']);
    const check = await w.driver('check', conflist, ns, 'ctr-a');
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/tc ingress filter \(afsteer_from_pod\) is missing on veth/);
  });

  it('DEL removes everything and succeeds twice', async () => {
    const ns = '/run/netns/af' + w.id + 'a';
    const { hostIfindex } = hostVethOf(w, 'ctr-a');
    for (let i = 0; i < 2; i++) {
      const del = await w.driver('del', conflist, ns, 'ctr-a');
      expect(del.code, `DEL #${i + 1}: ${del.stdout} ${del.stderr}`).toBe(0);
    }
    expect(w.stateFiles()).toEqual([]);
    expect(getEndpoint(w.pinDir, hostIfindex)).toBeUndefined();
    expect(w.bridgePorts()).toEqual([]);
    expect(w.leases()).toEqual([]);
  });

  it('DEL after the netns is gone succeeds and releases everything', async () => {
    const ns = w.netns('gone');
    const add = await w.driver('add', conflist, ns, 'ctr-gone');
    expect(add.code, add.stderr).toBe(0);
    const { hostIfindex } = hostVethOf(w, 'ctr-gone');
    w.dropNetns(ns);
    const del = await w.driver('del', conflist, ns, 'ctr-gone');
    expect(del.code, del.stdout + del.stderr).toBe(0);
    expect(w.stateFiles()).toEqual([]);
    expect(getEndpoint(w.pinDir, hostIfindex)).toBeUndefined();
    expect(w.leases()).toEqual([]);
  });

  it('DEL with an empty CNI_NETNS succeeds', async () => {
    const r = await w.plugin(
      'DEL',
      { cniVersion: '1.0.0', name: 'chain-' + w.id, ...w.afsteerConf() },
      { CNI_CONTAINERID: 'never-added', CNI_IFNAME: 'eth0', CNI_NETNS: '' },
    );
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('results follow the conflist version (0.4.0 has ips[].version)', async () => {
    const old = w.conflist('old', { cniVersion: '0.4.0' });
    const ns = w.netns('old');
    const add = await w.driver('add', old, ns, 'ctr-old');
    expect(add.code, add.stderr).toBe(0);
    const r = add.json as unknown as AddResult;
    expect(r.cniVersion).toBe('0.4.0');
    expect(r.ips.map((i) => i.version).sort()).toEqual(['4', '6']);
    expect((await w.driver('check', old, ns, 'ctr-old')).code).toBe(0);
    expect((await w.driver('del', old, ns, 'ctr-old')).code).toBe(0);
  });
});
