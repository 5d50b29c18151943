/**
 * Simulated Kubernetes nodes (two, or three) in network namespaces, joined through a middle
 * namespace that routes both families and counts forwarded packets per family with nftables:
 *
 *   pod a0 ─ bridge ─ node A ─ veth ─ mid ─ veth ─ node B ─ bridge ─ pod b0
 *   10.1.0.0/24                 192.168.{1,2}.0/24           10.2.0.0/24
 *   fd00:1::/64                 fd01::/64, fd02::/64         fd00:2::/64
 *   (node C, when asked for: 10.3.0.0/24, fd00:3::/64 behind 192.168.3.0/24, fd03::/64)
 *
 * Pods come up through the real chain (bridge + host-local, then dist/afsteer) driven by libcni
 * inside each node's namespace (nsenter --net only: /sys stays shared, so each node gets its own
 * bpffs pin dir and state dir). Each node tracks TCP strictly (nf_conntrack_tcp_be_liberal=0,
 * per namespace on this kernel, set explicitly) and drops `ct state invalid` in its forward, input
 * and output chains, as kube-proxy's rules do; afsteer must never need it looser. cleanup() removes every namespace, pin, file and child process, also after a failure.
 * Daemons, impairments and test applications are in their own modules (sim-daemons.ts,
 * impairments.ts, apps.ts); two-nodes.ts puts them together.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WireName } from '../../src/bpf/maps-layout';
import { readWires } from '../../src/bpf/steering';
import type { Family } from '../../src/net/family';
import { canonical } from '../../src/net/ip';
import { Children, execFileP, nsExec } from './process';
import { AFSTEER_BIN, DRIVER_BIN, REFERENCE_PLUGINS, sh, shQuiet } from './world';

/** One simulated node. */
export interface SimNode {
  name: 'a' | 'b' | 'c';
  /** 1, 2, 3: its subnets are 10.n.0.0/24, fd00:n::/64, uplink 192.168.n.0/24, fd0n::/64. */
  n: number;
  ns: string;
  nsPath: string;
  pinDir: string;
  stateDir: string;
  conflist: string;
  podV4: string;
  podV6: string;
}

/** A pod brought up through the chain. */
export interface SimPod {
  node: SimNode;
  id: string;
  ns: string;
  nsPath: string;
  ipv4: string;
  ipv6: string;
  hostIfname: string;
  hostIfindex: number;
}

/** Per-family packet counts of traffic forwarded by the middle namespace. */
export interface FamilyCounts {
  ipv4: number;
  ipv6: number;
}

/** The nodes, the middle router and the pods. */
export class SimTopology {
  readonly id = randomBytes(2).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), `afsteer-2n-${this.id}-`));
  readonly mid = `af${this.id}mid`;
  /** The middle namespace's path. */
  readonly midPath = `/run/netns/${this.mid}`;
  readonly a: SimNode;
  readonly b: SimNode;
  /** The third node, when built with three. */
  readonly c?: SimNode;
  /** Every node. */
  readonly nodes: SimNode[];
  /** Every process started for this topology (killed at cleanup). */
  readonly children = new Children();
  private readonly namespaces: string[] = [];

  /** plugin: before afsteer in the chain (bridge, as in the tests, or ptp); nodeCount: 2 or 3 nodes around the middle router. */
  constructor(
    readonly plugin: 'bridge' | 'ptp' = 'bridge',
    nodeCount: 2 | 3 = 2,
  ) {
    this.a = this.makeNode('a', 1);
    this.b = this.makeNode('b', 2);
    this.nodes = [this.a, this.b];
    if (nodeCount === 3) this.nodes.push((this.c = this.makeNode('c', 3)));
  }

  /** Control addresses of a node (its uplink). */
  nodeAddresses(node: SimNode): { ipv4: string; ipv6: string } {
    const n = node.n;
    return { ipv4: `192.168.${n}.2`, ipv6: `fd0${n}::2` };
  }

  /** The middle namespace's link toward node. */
  midLink(node: Pick<SimNode, 'name'>): string {
    return `af${this.id}m${node.name}`;
  }

  /** The wire family the pod's node has for the pod's pair toward `to` (any pair of the pod without it), or undefined without a route. */
  wireOf(pod: SimPod, to?: SimPod): WireName | undefined {
    const remote = to && canonical(to.ipv6);
    return readWires(pod.node.pinDir).find((p) => p.ifindex === pod.hostIfindex && (!remote || p.remote === remote))?.wire;
  }

  /** Runs a one-off command in a pod's namespace (e.g. ping), returns stdout. */
  async inPod(pod: SimPod, argv: string[]): Promise<string> {
    return nsExec(pod.nsPath, argv);
  }

  /** The node's CNI bin directory (its afsteer: dist/afsteer unless installPlugin put another there). */
  binDir(node: Pick<SimNode, 'name'>): string {
    return join(this.dir, `bin-${node.name}`);
  }

  /** Installs plugin (an afsteer executable) as node's afsteer, replacing the link atomically (rename), as an installer does. */
  installPlugin(node: SimNode, plugin: string): void {
    const tmp = join(this.binDir(node), `.afsteer-${randomBytes(3).toString('hex')}`);
    symlinkSync(plugin, tmp);
    renameSync(tmp, join(this.binDir(node), 'afsteer'));
  }

  private makeNode(name: 'a' | 'b' | 'c', n: number): SimNode {
    const ns = `af${this.id}n${name}`;
    mkdirSync(this.binDir({ name }));
    symlinkSync(AFSTEER_BIN, join(this.binDir({ name }), 'afsteer'));
    const node: SimNode = {
      name,
      n,
      ns,
      nsPath: `/run/netns/${ns}`,
      pinDir: `/sys/fs/bpf/afsteer-2n-${this.id}-${name}`,
      stateDir: join(this.dir, `state-${name}`),
      conflist: join(this.dir, `node-${name}.conflist`),
      podV4: `10.${n}.0.0/24`,
      podV6: `fd00:${n}::/64`,
    };
    writeFileSync(
      node.conflist,
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `twonode-${name}`,
        plugins: [
          {
            type: this.plugin,
            ...(this.plugin === 'bridge' ? { bridge: 'cni0', isGateway: true } : {}),
            ipMasq: false,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: node.podV4 }], [{ subnet: node.podV6 }]],
              routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
              dataDir: join(this.dir, `ipam-${name}`),
            },
          },
          { type: 'afsteer', pinDir: node.pinDir, stateDir: node.stateDir, daemonSocket: join(this.dir, `afsteerd-node-${name}.sock`) },
        ],
      }),
    );
    return node;
  }

  private ip(ns: string, ...args: string[]): void {
    sh('ip', ['-n', ns, ...args]);
  }

  private addNs(ns: string): void {
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.ip(ns, 'link', 'set', 'lo', 'up');
    for (const k of [
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
      // The kernel default, per namespace; said explicitly: strict TCP window tracking.
      'net.netfilter.nf_conntrack_tcp_be_liberal=0',
    ]) {
      sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', k]);
    }
  }

  /** Builds namespaces, links, addresses, routes and nftables rules. */
  async up(): Promise<void> {
    this.addNs(this.mid);
    for (const node of this.nodes) {
      const n = node.n;
      this.addNs(node.ns);
      sh('ip', [
        'link',
        'add',
        `af${this.id}u${node.name}`,
        'netns',
        node.ns,
        'type',
        'veth',
        'peer',
        'name',
        this.midLink(node),
        'netns',
        this.mid,
      ]);
      this.ip(node.ns, 'link', 'set', `af${this.id}u${node.name}`, 'name', 'uplink');
      this.ip(node.ns, 'link', 'set', 'uplink', 'up');
      this.ip(this.mid, 'link', 'set', this.midLink(node), 'up');
      this.ip(node.ns, 'addr', 'add', `192.168.${n}.2/24`, 'dev', 'uplink');
      this.ip(node.ns, 'addr', 'add', `fd0${n}::2/64`, 'dev', 'uplink', 'nodad');
      this.ip(this.mid, 'addr', 'add', `192.168.${n}.1/24`, 'dev', this.midLink(node));
      this.ip(this.mid, 'addr', 'add', `fd0${n}::1/64`, 'dev', this.midLink(node), 'nodad');
      this.ip(node.ns, 'route', 'add', 'default', 'via', `192.168.${n}.1`);
      this.ip(node.ns, '-6', 'route', 'add', 'default', 'via', `fd0${n}::1`);
      this.ip(this.mid, 'route', 'add', node.podV4, 'via', `192.168.${n}.2`);
      this.ip(this.mid, '-6', 'route', 'add', node.podV6, 'via', `fd0${n}::2`);
      // kube-proxy-style: invalid conntrack state is dropped in the node's forward path (pods) and
      // in its input and output paths (host-network endpoints).
      await this.nft(
        node.nsPath,
        `table inet afsteer_test {
        chain forward_filter { type filter hook forward priority 0; policy accept; ct state invalid counter drop; }
        chain input_filter { type filter hook input priority 0; policy accept; ct state invalid counter drop; }
        chain output_filter { type filter hook output priority 0; policy accept; ct state invalid counter drop; }
      }`,
      );
    }
    await this.nft(
      this.midPath,
      `table inet afsteer_mid {
      counter v4 { }
      counter v6 { }
      chain forward_filter { type filter hook forward priority 0; policy accept; meta nfproto ipv4 counter name "v4"; meta nfproto ipv6 counter name "v6"; }
    }`,
    );
  }

  private async nft(nsPath: string, ruleset: string): Promise<void> {
    const f = join(this.dir, `nft-${randomBytes(3).toString('hex')}.nft`);
    writeFileSync(f, ruleset);
    await nsExec(nsPath, ['nft', '-f', f]);
  }

  /** Brings a pod up on node through libcni; returns its addresses and host veth. */
  async addPod(node: SimNode, name: string, args?: string): Promise<SimPod> {
    const ns = `af${this.id}p${name}`;
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.unshift(ns);
    this.ip(ns, 'link', 'set', 'lo', 'up');
    const id = `ctr-${name}`;
    const res = await this.driver(node, 'add', `/run/netns/${ns}`, id, args);
    const result = JSON.parse(res) as { ips: { address: string }[] };
    const st = JSON.parse(readFileSync(join(node.stateDir, 'attachments', `${id}_eth0.json`), 'utf8')) as {
      hostIfname: string;
      hostIfindex: number;
    };
    const addr = (f: Family) => result.ips.map((i) => i.address.split('/')[0]!).find((a) => (f === 6) === a.includes(':'))!;
    return {
      node,
      id,
      ns,
      nsPath: `/run/netns/${ns}`,
      ipv4: addr(4),
      ipv6: addr(6),
      hostIfname: st.hostIfname,
      hostIfindex: st.hostIfindex,
    };
  }

  /** Runs the libcni driver inside node's namespace. */
  async driver(node: SimNode, verb: 'add' | 'check' | 'del', podNs: string, id: string, args?: string): Promise<string> {
    const { stdout } = await execFileP(
      'nsenter',
      [
        `--net=${node.nsPath}`,
        DRIVER_BIN,
        verb,
        '--conflist',
        node.conflist,
        '--netns',
        podNs,
        '--container-id',
        id,
        '--cache-dir',
        join(this.dir, 'cache'),
        ...(args ? ['--args', args] : []),
      ],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, CNI_PATH: `${this.binDir(node)}:${REFERENCE_PLUGINS}` },
      },
    );
    return stdout;
  }

  /** Runs `dist/afsteer steer ...` on node (the operator command, in the node's namespace: its conntrack is the node's). */
  async steerCmd(node: SimNode, args: string[]): Promise<string> {
    const { stdout } = await execFileP(
      'nsenter',
      [`--net=${node.nsPath}`, AFSTEER_BIN, 'steer', ...args, '--pin-dir', node.pinDir, '--state-dir', node.stateDir],
      { encoding: 'utf8' },
    );
    return stdout;
  }

  /** Packets of each family the middle namespace has forwarded so far. */
  async midCounts(): Promise<FamilyCounts> {
    const out = JSON.parse(await nsExec(this.midPath, ['nft', '-j', 'list', 'counters', 'table', 'inet', 'afsteer_mid'])) as {
      nftables: { counter?: { name: string; packets: number } }[];
    };
    const get = (n: string) => out.nftables.find((x) => x.counter?.name === n)?.counter?.packets ?? 0;
    return { ipv4: get('v4'), ipv6: get('v6') };
  }

  /** Packets node's `ct state invalid drop` rules have dropped (chain: one of them; default: all three). */
  async invalidDrops(node: SimNode, chain?: 'forward_filter' | 'input_filter' | 'output_filter'): Promise<number> {
    const out = await nsExec(
      node.nsPath,
      chain ? ['nft', 'list', 'chain', 'inet', 'afsteer_test', chain] : ['nft', 'list', 'table', 'inet', 'afsteer_test'],
    );
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  }

  /** Removes everything. */
  cleanup(): void {
    this.children.killAll();
    for (const ns of this.namespaces) shQuiet('ip', ['netns', 'del', ns]);
    for (const n of this.nodes) rmSync(n.pinDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
