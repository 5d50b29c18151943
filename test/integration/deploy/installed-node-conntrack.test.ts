/**
 * Issue 23's "done when": a node with afsteer installed and pods steered still reads
 * nf_conntrack_tcp_be_liberal = 0 — and afsteer changed no conntrack setting anywhere. Two
 * simulated nodes (sim-topology.ts: each its own network namespace, strict TCP tracking and
 * kube-proxy's INVALID drop) are each installed by `dist/afsteer install` on a scratch root holding
 * the node's own conflist (bridge + host-local), run inside the node's namespace (so a sysctl it
 * wrote would land there); pods come up through the chain the installer made, afsteerd runs from
 * the config the installer wrote, and a blackhole steers the pods' pair with a TCP stream on it.
 * Every net.netfilter sysctl of every namespace afsteer touched (both nodes, both pods, the
 * middle router) and of the host namespace reads as before; no sysctl file was installed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tree } from '../../support/install-tree';
import { nsExec, type SimDaemon, type SimNode, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { AFSTEER_BIN, announceSkip, IS_ROOT } from '../../support/world';

announceSkip('an installed node keeps strict conntrack');

/** net.netfilter.* of the namespace at nsPath (undefined: the host's), without the live entry count. */
async function netfilterSysctls(nsPath?: string): Promise<Record<string, string>> {
  const argv = ['sysctl', '-a', '-r', '^net\\.netfilter\\.'];
  const out = nsPath ? await nsExec(nsPath, argv) : execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' = ') as [string, string])
      .filter(([k]) => k !== 'net.netfilter.nf_conntrack_count'),
  );
}

describe.skipIf(!IS_ROOT)('an installed node keeps strict conntrack', () => {
  let t: TwoNodes;
  const roots = new Map<SimNode, string>();
  let pa: SimPod, pb: SimPod;
  let da: SimDaemon, db: SimDaemon;
  let before: Map<string, Record<string, string>>;
  /** The namespaces afsteer touches here, and the host's. */
  const namespaces = (): [string, string | undefined][] => [
    ['host', undefined],
    ['node a', t.a.nsPath],
    ['node b', t.b.nsPath],
    ['middle', t.midPath],
    ...(pa ? ([['pod a0', pa.nsPath]] as [string, string][]) : []),
    ...(pb ? ([['pod b0', pb.nsPath]] as [string, string][]) : []),
  ];

  beforeAll(async () => {
    t = new TwoNodes();
    try {
      await t.up();
      before = new Map();
      for (const [name, ns] of namespaces()) before.set(name, await netfilterSysctls(ns));
      expect(before.get('node a')!['net.netfilter.nf_conntrack_tcp_be_liberal']).toBe('0');
      for (const node of t.nodes) {
        // The node's root: its own conflist (bridge + host-local, without afsteer), nothing else.
        const root = join(t.dir, `root-${node.name}`);
        mkdirSync(join(root, 'etc/cni/net.d'), { recursive: true, mode: 0o755 });
        const list = JSON.parse(readFileSync(node.conflist, 'utf8')) as { plugins: Record<string, unknown>[] };
        const afsteerConf = Object.fromEntries(Object.entries(list.plugins.pop()!).filter(([k]) => k !== 'type'));
        writeFileSync(join(root, 'etc/cni/net.d/10-pods.conflist'), JSON.stringify(list, null, 2) + '\n');
        const peer = t.nodeAddresses(t.nodes.find((n) => n !== node)!);
        const argv = ['install', '--root', root, '--bin', AFSTEER_BIN, '--afsteer-conf', JSON.stringify(afsteerConf)];
        argv.push('--key', t.keyFile, '--node-name', `node-${node.name}`, '--peer', `${peer.ipv4},${peer.ipv6}`);
        // In the node's namespace: a sysctl the installer wrote would be the node's.
        await nsExec(node.nsPath, [AFSTEER_BIN, ...argv]);
        roots.set(node, root);
        // Pods come up through the chain the installer made, with the executable it installed.
        node.conflist = join(root, 'etc/cni/net.d/10-pods.conflist');
      }
      expect(JSON.parse(readFileSync(t.a.conflist, 'utf8')).plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'afsteer']);
      for (const node of [t.a, t.b]) t.installPlugin(node, join(roots.get(node)!, 'opt/cni/bin/afsteer'));
      pa = await t.addPod(t.a, 'a0');
      pb = await t.addPod(t.b, 'b0');
      for (const name of ['pod a0', 'pod b0'] as const) before.set(name, await netfilterSysctls(name === 'pod a0' ? pa.nsPath : pb.nsPath));
      // afsteerd from the config the installer wrote (its key under the scratch root, this test's paths and timers).
      const daemon = (node: SimNode) => {
        const root = roots.get(node)!;
        const cfg = JSON.parse(readFileSync(join(root, 'etc/afsteer/afsteerd.json'), 'utf8')) as Record<string, unknown>;
        return t.startDaemon(node, { ...cfg, keyFile: join(root, 'etc/afsteer/cluster.key') });
      };
      da = await daemon(t.a);
      db = await daemon(t.b);
      await waitFor(
        async () =>
          (await t.status(da)).peers[0]?.families?.IPv6?.state === 'up' && (await t.status(db)).peers[0]?.families?.IPv6?.state === 'up',
        10_000,
        'peers up',
      );
    } catch (err) {
      t?.cleanup();
      throw err;
    }
  }, 120_000);
  afterAll(() => t?.cleanup());

  it('pods steered on the installed nodes (a TCP stream crossing a blackhole to IPv6, intact): every namespace afsteer touched still reads nf_conntrack_tcp_be_liberal = 0, and no net.netfilter sysctl changed anywhere', async () => {
    const drops0 = [await t.invalidDrops(t.a), await t.invalidDrops(t.b)];
    const { done } = await t.server(pb, pb.ipv4, 7400);
    const client = t.client(pa, pb.ipv4, 7400, ['--duration-ms', '4000', '--chunk', '16384', '--interval-ms', '5']);
    client.catch(() => {});
    await new Promise((r) => setTimeout(r, 1000));
    await t.impair(4, 'blackhole');
    try {
      await waitFor(() => t.wireOf(pa) === 'ipv6' && t.wireOf(pb) === 'ipv6', 3000, 'the pair steered to IPv6 on both nodes');
      const [c, s] = [await client, await done];
      expect(s.sha256).toBe(c.sha256);
    } finally {
      await t.impair(4, null);
    }
    expect([(await t.invalidDrops(t.a)) - drops0[0]!, (await t.invalidDrops(t.b)) - drops0[1]!]).toEqual([0, 0]);
    // The pods are steered: the writer marked their flows, per flow.
    expect((await t.status(da)).pairs[0]).toMatchObject({ wire: 'ipv6' });
    for (const [name, ns] of namespaces()) {
      const now = await netfilterSysctls(ns);
      if (name !== 'host') expect(now['net.netfilter.nf_conntrack_tcp_be_liberal'], name).toBe('0');
      expect(now, `net.netfilter sysctls of ${name}`).toEqual(before.get(name));
    }
    // Nothing the installer put on the node sets a sysctl at boot either.
    for (const root of roots.values()) expect(Object.keys(tree(root)).filter((p) => /sysctl/.test(p))).toEqual([]);
  }, 30_000);
});
