/**
 * A second fabric for a SimTopology's nodes: the transport network a telco CNF carries its
 * user-plane traffic on, attached to pods as net1 the way Multus attaches a
 * NetworkAttachmentDefinition (libcni, CNI_IFNAME=net1, the same K8S_POD_* args):
 *
 *   pod net1 (macvlan on tp0) ─ node A tp0 ─ veth ─ tmid ─ veth ─ node B tp0 ─ pod net1 (macvlan)
 *   172.30.n.0/24, fd30:n::/64 per node, routed by tmid (172.30.n.1, fd30:n::1), which can drop
 *   one family (nftables, forward hook) like the primary fabric's middle.
 *
 * Each node keeps a macvlan of tp0 in its own namespace, tnet (172.30.n.2, fd30:n::2): the node's
 * addresses on the transport network (afsteerd's networks[].addresses). host-device pods get a
 * veth end moved into the pod as net1 (its peer stays in tmid, on its own 172.31.k.0/24,
 * fd31:k::/64), so the in-pod path is what carries their traffic. cleanup() removes the router
 * namespace (and with it every peer end); the pods' namespaces are the topology's.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Family } from '../../src/net/family';
import { execFileP, nsExec } from './process';
import type { SimNode, SimPod, SimTopology } from './sim-topology';
import { DRIVER_BIN, REFERENCE_PLUGINS, sh, shQuiet } from './world';

/** The transport network's routes through a gateway (explicit: the reference plugins' CHECK compares gw). */
function via(gw4: string, gw6: string): { dst: string; gw: string }[] {
  return [
    { dst: '172.30.0.0/16', gw: gw4 },
    { dst: 'fd30::/16', gw: gw6 },
    { dst: '172.31.0.0/16', gw: gw4 },
    { dst: 'fd31::/16', gw: gw6 },
  ];
}

/** A pod's attachment to the transport network. */
export interface Net1 {
  pod: SimPod;
  ifname: string;
  ipv4: string;
  ipv6: string;
  /** The state file afsteer wrote for it. */
  state: Record<string, unknown>;
  /** The endpoint key afsteer gave it. */
  endpoint: number;
}

/** The transport fabric of a topology. */
export class TransportFabric {
  /** The router namespace. */
  readonly tmid: string;
  readonly tmidPath: string;
  /** The network's name (the conflists' `name`, as a NetworkAttachmentDefinition gives it). */
  readonly network = 'transport';
  private hostDevices = 0;

  constructor(private readonly t: SimTopology) {
    this.tmid = `af${t.id}tm`;
    this.tmidPath = `/run/netns/${this.tmid}`;
  }

  /** The node's addresses on the transport network (its tnet macvlan). */
  nodeAddresses(node: SimNode): { ipv4: string; ipv6: string } {
    return { ipv4: `172.30.${node.n}.2`, ipv6: `fd30:${node.n}::2` };
  }

  /** The router's link toward node. */
  tmidLink(node: SimNode): string {
    return `af${this.t.id}t${node.name}`;
  }

  /** Builds the router, each node's tp0 and tnet. */
  up(): void {
    sh('ip', ['netns', 'add', this.tmid]);
    const inMid = (...a: string[]) => sh('ip', ['-n', this.tmid, ...a]);
    inMid('link', 'set', 'lo', 'up');
    for (const k of ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.default.accept_dad=0'])
      sh('ip', ['netns', 'exec', this.tmid, 'sysctl', '-q', '-w', k]);
    for (const node of this.t.nodes) {
      const n = node.n;
      const inNode = (...a: string[]) => sh('ip', ['-n', node.ns, ...a]);
      sh('ip', [
        'link',
        'add',
        `af${this.t.id}p${node.name}`,
        'netns',
        node.ns,
        'type',
        'veth',
        'peer',
        'name',
        this.tmidLink(node),
        'netns',
        this.tmid,
      ]);
      inNode('link', 'set', `af${this.t.id}p${node.name}`, 'name', 'tp0');
      inNode('link', 'set', 'tp0', 'up');
      inMid('link', 'set', this.tmidLink(node), 'up');
      inMid('addr', 'add', `172.30.${n}.1/24`, 'dev', this.tmidLink(node));
      inMid('addr', 'add', `fd30:${n}::1/64`, 'dev', this.tmidLink(node), 'nodad');
      // The node's own address on the transport network: a macvlan of the parent it keeps.
      inNode('link', 'add', 'tnet', 'link', 'tp0', 'type', 'macvlan', 'mode', 'bridge');
      inNode('link', 'set', 'tnet', 'up');
      inNode('addr', 'add', `172.30.${n}.2/24`, 'dev', 'tnet');
      inNode('addr', 'add', `fd30:${n}::2/64`, 'dev', 'tnet', 'nodad');
      inNode('route', 'add', '172.30.0.0/16', 'via', `172.30.${n}.1`, 'dev', 'tnet');
      inNode('-6', 'route', 'add', 'fd30::/16', 'via', `fd30:${n}::1`, 'dev', 'tnet');
      writeFileSync(this.conflistPath(node, 'macvlan'), JSON.stringify(this.conflist(node, 'macvlan')));
    }
  }

  /** Where node's conflist for kind lives. */
  conflistPath(node: SimNode, kind: 'macvlan' | 'host-device', suffix = ''): string {
    return join(this.t.dir, `transport-${kind}-${node.name}${suffix}.conflist`);
  }

  /** node's conflist: macvlan (bridge mode on tp0) or host-device (device given), host-local, then afsteer. */
  conflist(
    node: SimNode,
    kind: 'macvlan' | 'host-device',
    device?: string,
    k = 0,
    afsteer: Record<string, unknown> = {},
  ): Record<string, unknown> {
    const n = node.n;
    const ipam =
      kind === 'macvlan'
        ? {
            type: 'host-local',
            ranges: [
              [{ subnet: `172.30.${n}.0/24`, rangeStart: `172.30.${n}.10`, rangeEnd: `172.30.${n}.99`, gateway: `172.30.${n}.1` }],
              [{ subnet: `fd30:${n}::/64`, rangeStart: `fd30:${n}::10`, rangeEnd: `fd30:${n}::99`, gateway: `fd30:${n}::1` }],
            ],
            routes: via(`172.30.${n}.1`, `fd30:${n}::1`),
            dataDir: join(this.t.dir, `ipam-transport-${node.name}`),
          }
        : {
            type: 'host-local',
            ranges: [
              [{ subnet: `172.31.${k}.0/24`, rangeStart: `172.31.${k}.2`, rangeEnd: `172.31.${k}.2`, gateway: `172.31.${k}.1` }],
              [{ subnet: `fd31:${k}::/64`, rangeStart: `fd31:${k}::2`, rangeEnd: `fd31:${k}::2`, gateway: `fd31:${k}::1` }],
            ],
            routes: via(`172.31.${k}.1`, `fd31:${k}::1`),
            dataDir: join(this.t.dir, `ipam-transport-hd-${node.name}`),
          };
    return {
      cniVersion: '1.0.0',
      name: this.network,
      plugins: [
        kind === 'macvlan' ? { type: 'macvlan', master: 'tp0', mode: 'bridge', ipam } : { type: 'host-device', device, ipam },
        {
          type: 'afsteer',
          pinDir: node.pinDir,
          stateDir: node.stateDir,
          daemonSocket: join(this.t.dir, `afsteerd-node-${node.name}.sock`),
          logLevel: 'debug',
          ...afsteer,
        },
      ],
    };
  }

  /** Runs the libcni driver in node's namespace for the attachment (CNI_IFNAME ifname); the raw result. */
  async driver(node: SimNode, verb: 'add' | 'check' | 'del', conflist: string, podNs: string, id: string, ifname = 'net1', args?: string) {
    return execFileP(
      'nsenter',
      [
        `--net=${node.nsPath}`,
        DRIVER_BIN,
        verb,
        '--conflist',
        conflist,
        '--netns',
        podNs,
        '--container-id',
        id,
        '--ifname',
        ifname,
        '--cache-dir',
        join(this.t.dir, 'cache'),
        ...(args ? ['--args', args] : []),
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH, CNI_PATH: `${this.t.binDir(node)}:${REFERENCE_PLUGINS}` } },
    );
  }

  /** Attaches pod to the transport network as net1 on a macvlan of its node's tp0. */
  async addMacvlan(pod: SimPod, args?: string): Promise<Net1> {
    const { stdout } = await this.driver(pod.node, 'add', this.conflistPath(pod.node, 'macvlan'), pod.nsPath, pod.id, 'net1', args);
    return this.net1Of(pod, stdout);
  }

  /**
   * Attaches pod to the transport network as net1 through host-device: a veth whose one end is
   * moved into the pod (its peer stays in tmid, the pod's gateway on 172.31.k.1, fd31:k::1).
   */
  async addHostDevice(pod: SimPod, args?: string): Promise<Net1> {
    const k = ++this.hostDevices;
    const dev = `hd${k}x${pod.node.name}`;
    const peer = `af${this.t.id}h${k}`;
    sh('ip', ['link', 'add', dev, 'netns', pod.node.ns, 'type', 'veth', 'peer', 'name', peer, 'netns', this.tmid]);
    sh('ip', ['-n', this.tmid, 'link', 'set', peer, 'up']);
    sh('ip', ['-n', this.tmid, 'addr', 'add', `172.31.${k}.1/24`, 'dev', peer]);
    sh('ip', ['-n', this.tmid, 'addr', 'add', `fd31:${k}::1/64`, 'dev', peer, 'nodad']);
    const path = this.conflistPath(pod.node, 'host-device', `-${k}`);
    writeFileSync(path, JSON.stringify(this.conflist(pod.node, 'host-device', dev, k)));
    const { stdout } = await this.driver(pod.node, 'add', path, pod.nsPath, pod.id, 'net1', args);
    const net1 = this.net1Of(pod, stdout);
    return net1;
  }

  private net1Of(pod: SimPod, stdout: string): Net1 {
    const result = JSON.parse(stdout) as { ips: { address: string }[] };
    const addr = (f: Family) => result.ips.map((i) => i.address.split('/')[0]!).find((a) => (f === 6) === a.includes(':'))!;
    const state = JSON.parse(sh('cat', [join(pod.node.stateDir, 'attachments', `${pod.id}_net1.json`)])) as Record<string, unknown>;
    return { pod, ifname: 'net1', ipv4: addr(4), ipv6: addr(6), state, endpoint: state.endpoint as number };
  }

  /** Drops one family forwarded by the transport router ('blackhole'), or lets it through again (null). */
  async impair(family: Family, how: 'blackhole' | null): Promise<void> {
    const chain = `impair${family}`;
    await nsExec(this.tmidPath, ['nft', 'add', 'table', 'inet', 'afsteer_timpair']);
    await nsExec(this.tmidPath, [
      'nft',
      'add',
      'chain',
      'inet',
      'afsteer_timpair',
      chain,
      '{ type filter hook forward priority -10; policy accept; }',
    ]);
    await nsExec(this.tmidPath, ['nft', 'flush', 'chain', 'inet', 'afsteer_timpair', chain]);
    if (how === 'blackhole')
      await nsExec(this.tmidPath, [
        'nft',
        'add',
        'rule',
        'inet',
        'afsteer_timpair',
        chain,
        'meta',
        'nfproto',
        family === 4 ? 'ipv4' : 'ipv6',
        'drop',
      ]);
  }

  /** Removes the router namespace (every tp0 peer and host-device peer goes with it). */
  cleanup(): void {
    shQuiet('ip', ['netns', 'del', this.tmid]);
  }
}
