/**
 * Data-plane benchmark (root): one run measures, next to baselines from the same run,
 *  1. ns per packet under BPF_PROG_TEST_RUN: afsteer pass-through, encapsulate, decapsulate, each
 *     next to an empty tc program. Targets: pass-through ≤ 1.5× empty; encap/decap ≤ 40 ns above.
 *  2. pod-to-pod TCP throughput (iperf3) between two simulated nodes: no program vs program
 *     attached but native vs steered to the other family. Targets: attached-native ≥ 97% of no
 *     program; steered ≥ 85% of native. Measured on the bridge chain (where afsteer_bridge_out
 *     keeps tunnel GSO packets whole) and on the ptp chain.
 *  3. in situ: per-run cost from the kernel's BPF run-time stats under real traffic (reported).
 * Prints medians and ratios; exits 1 when a target is missed.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { putEndpoint } from '../../src/bpf/endpoint-map';
import { libbpf, openAndLoad } from '../../src/bpf/libbpf';
import { closeFds, ensurePrograms } from '../../src/bpf/programs';
import { registerRemote, setSteering, unregisterRemote } from '../../src/bpf/steering';
import { progTestRun } from '../../src/bpf/test-run';
import { ROOT } from '../integration/helpers/world';
import { TwoNodes, nsExec, type SimPod } from '../integration/helpers/two-nodes';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const misses: string[] = [];
const target = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (!ok) misses.push(what);
};

/** Puts a pinned program on dev's clsact hook in nsPath, with the handle and priority the plugin uses. */
function attachPinned(nsPath: string, dev: string, dir: 'ingress' | 'egress', pin: string): Promise<string> {
  return nsExec(nsPath, ['tc', 'filter', 'replace', 'dev', dev, dir, 'prio', '175', 'handle', '0xaf', 'bpf', 'da', 'pinned', pin]);
}

/** Ethernet + IPv4 + UDP (64-byte payload) from 10.1.0.2 to dst. */
function udp4Frame(dst: string): Buffer {
  const ip = Buffer.from('45000064000040004011000000000000' + '00000000', 'hex');
  Buffer.from([10, 1, 0, 2]).copy(ip, 12);
  Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
  const udp = Buffer.alloc(8 + 72);
  udp.writeUInt16BE(4000, 0);
  udp.writeUInt16BE(5000, 2);
  udp.writeUInt16BE(udp.length, 4);
  ip.writeUInt16BE(20 + udp.length, 2);
  return Buffer.concat([Buffer.from('0200000000020200000000010800', 'hex'), ip, udp]);
}

function programBench(): void {
  const pin = `/sys/fs/bpf/afsteer-bench-${randomBytes(3).toString('hex')}`;
  const REPEAT = 1_000_000;
  const SINGLE = Number(process.env.BENCH_PROG_RUNS ?? 20000);
  try {
    const progs = ensurePrograms(pin);
    const emptyObj = openAndLoad(readFileSync(join(ROOT, 'build', 'bench_empty.bpf.o')), 'afsteer_bench', pin);
    const emptyFd = libbpf().progFd(libbpf().findProg(emptyObj, 'afsteer_bench_empty'));
    // Local pod A on ifindex 1 (the device BPF_PROG_TEST_RUN uses); B steered over IPv6; C known, not steered.
    putEndpoint(pin, 1, { ipv4: '10.1.0.2', ipv6: 'fd00:1::2', podIfindex: 2 });
    registerRemote(pin, { ipv4: '10.2.0.2', ipv6: 'fd00:2::2' });
    registerRemote(pin, { ipv4: '10.3.0.2', ipv6: 'fd00:3::2' });
    setSteering(pin, 1, '10.2.0.2', 'ipv6');
    const toC = udp4Frame('10.3.0.2');
    const toB = udp4Frame('10.2.0.2');
    const encapsulated = progTestRun(progs.fromPod, toB).data;
    if (encapsulated.length !== toB.length + 40) throw new Error('bench setup: the steered frame was not encapsulated');

    // Pass-through leaves the packet as it was: time it in the kernel's loop.
    const loop = (fd: number, frame: Buffer) => median(Array.from({ length: 7 }, () => progTestRun(fd, frame, { repeat: REPEAT }).durationNs));
    // Encap/decap rewrite the packet, and the kernel re-runs `repeat` on the same skb (and refuses
    // to encapsulate an skb twice), so each call runs once on a fresh copy; the empty program is
    // timed the same way, so both carry the same per-call timer overhead.
    const single = (fd: number, frame: Buffer) => median(Array.from({ length: SINGLE }, () => progTestRun(fd, frame).durationNs));
    const emptyLoop = loop(emptyFd, toC);
    const passFrom = loop(progs.fromPod, toC);
    const passTo = loop(progs.toPod, toC);
    const emptySingle = single(emptyFd, toC);
    const encap = single(progs.fromPod, toB);
    // Decapsulate at the far end: the maps now describe B's node (local B, remote A steered).
    putEndpoint(pin, 1, { ipv4: '10.2.0.2', ipv6: 'fd00:2::2', podIfindex: 2 });
    unregisterRemote(pin, '10.2.0.2');
    registerRemote(pin, { ipv4: '10.1.0.2', ipv6: 'fd00:1::2' });
    setSteering(pin, 1, '10.1.0.2', 'ipv6');
    const decap = single(progs.toPod, encapsulated);
    closeFds(progs.fromPod, progs.toPod, progs.bridgeOut);
    libbpf().objClose(emptyObj);

    console.log(`\nBPF_PROG_TEST_RUN, ns per packet (medians; loops: 7 × ${REPEAT} repetitions; single runs: ${SINGLE})`);
    console.log(`  empty tc program (loop)             ${emptyLoop.toFixed(1)}`);
    console.log(`  from-pod pass-through (loop)        ${passFrom.toFixed(1)}   = ${(passFrom / emptyLoop).toFixed(2)}× empty  (pod has a steered pair; this peer is not steered)`);
    console.log(`  to-pod pass-through (loop)          ${passTo.toFixed(1)}   = ${(passTo / emptyLoop).toFixed(2)}× empty`);
    console.log(`  empty tc program (single run)       ${emptySingle.toFixed(1)}`);
    console.log(`  encapsulate IPv4-in-IPv6 (single)   ${encap.toFixed(1)}   = empty + ${(encap - emptySingle).toFixed(1)} ns`);
    console.log(`  decapsulate (single)                ${decap.toFixed(1)}   = empty + ${(decap - emptySingle).toFixed(1)} ns`);
    target(passFrom <= 1.5 * emptyLoop, `from-pod pass-through ≤ 1.5× empty (${(passFrom / emptyLoop).toFixed(2)}×)`);
    target(passTo <= 1.5 * emptyLoop, `to-pod pass-through ≤ 1.5× empty (${(passTo / emptyLoop).toFixed(2)}×)`);
    target(encap - emptySingle <= 40, `encapsulate ≤ 40 ns above empty (${(encap - emptySingle).toFixed(1)} ns)`);
    target(decap - emptySingle <= 40, `decapsulate ≤ 40 ns above empty (${(decap - emptySingle).toFixed(1)} ns)`);
  } finally {
    rmSync(pin, { recursive: true, force: true });
  }
}

async function iperf(t: TwoNodes, from: string, fromNs: string, toNs: string, to: string, seconds: number): Promise<number> {
  const port = String(5201 + Math.floor(Math.random() * 500));
  const server = nsExec(toNs, ['iperf3', '-s', '-1', '-B', to, '-p', port]);
  await new Promise((r) => setTimeout(r, 300));
  const out = JSON.parse(await nsExec(fromNs, ['iperf3', '-c', to, '-p', port, '-t', String(seconds), '-J', '-B', from])) as { end: { sum_received: { bits_per_second: number } } };
  await server.catch(() => undefined);
  void t;
  return out.end.sum_received.bits_per_second / 1e9;
}

async function throughputBench(plugin: 'ptp' | 'bridge'): Promise<void> {
  const t = new TwoNodes(plugin);
  const SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 4);
  const ROUNDS = Number(process.env.BENCH_IPERF_ROUNDS ?? 3);
  try {
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    registerRemote(t.a.pinDir, { ipv4: pb.ipv4, ipv6: pb.ipv6 });
    registerRemote(t.b.pinDir, { ipv4: pa.ipv4, ipv6: pa.ipv6 });
    const steerBoth = (wire: 'native' | 'ipv6') => {
      setSteering(t.a.pinDir, pa.hostIfindex, pb.ipv6, wire);
      setSteering(t.b.pinDir, pb.hostIfindex, pa.ipv6, wire);
    };
    // "No program" removes afsteer's clsact hooks (veths, and the bridge's); attaching puts the
    // same pinned programs back with the same handle and priority the plugin uses.
    const hooks = (n: typeof t.a, pod: SimPod) => {
      const progDir = join(n.pinDir, 'progs', readdirSync(join(n.pinDir, 'progs'))[0]!);
      const list: [string, 'ingress' | 'egress', string][] = [[pod.hostIfname, 'ingress', 'afsteer_from_pod'], [pod.hostIfname, 'egress', 'afsteer_to_pod']];
      if (plugin === 'bridge') list.push(['cni0', 'egress', 'afsteer_bridge_out']);
      return { list, progDir };
    };
    const setAttached = async (on: boolean) => {
      for (const [n, pod] of [[t.a, pa], [t.b, pb]] as const) {
        const { list, progDir } = hooks(n, pod);
        for (const dev of new Set(list.map((h) => h[0]))) await nsExec(n.nsPath, ['tc', 'qdisc', on ? 'replace' : 'del', 'dev', dev, 'clsact']).catch(() => undefined);
        if (on) for (const [dev, dir, prog] of list) await attachPinned(n.nsPath, dev, dir, join(progDir, prog));
      }
    };
    const modes: Record<string, () => Promise<void>> = {
      none: () => setAttached(false),
      native: async () => {
        await setAttached(true);
        steerBoth('native');
      },
      steered: async () => {
        await setAttached(true);
        steerBoth('ipv6');
      },
    };
    // Interleave (and rotate the order) so drift in the machine's speed hits every mode alike.
    const results: Record<string, number[]> = { none: [], native: [], steered: [] };
    const names = Object.keys(modes);
    for (let r = 0; r < ROUNDS * ROUNDS; r++) {
      for (let k = 0; k < names.length; k++) {
        const mode = names[(r + k) % names.length]!;
        await modes[mode]!();
        results[mode]!.push(await iperf(t, pa.ipv4, pa.nsPath, pb.nsPath, pb.ipv4, SECONDS));
      }
    }
    const none = median(results.none!), native = median(results.native!), steered = median(results.steered!);
    console.log(`\npod-to-pod TCP over ${plugin} + host-local + afsteer (iperf3, IPv4 app, ${SECONDS}s runs, median of ${ROUNDS * ROUNDS}, Gbit/s)`);
    console.log(`  no program          ${none.toFixed(2)}`);
    console.log(`  attached, native    ${native.toFixed(2)}   = ${((native / none) * 100).toFixed(1)}% of no program`);
    console.log(`  steered over IPv6   ${steered.toFixed(2)}   = ${((steered / native) * 100).toFixed(1)}% of native`);
    target(native >= 0.97 * none, `${plugin}: attached-native ≥ 97% of no program (${((native / none) * 100).toFixed(1)}%)`);
    target(steered >= 0.85 * native, `${plugin}: steered ≥ 85% of native (${((steered / native) * 100).toFixed(1)}%)`);
  } finally {
    t.cleanup();
  }
}

/**
 * 3. In situ: the kernel's own per-program run-time accounting (kernel.bpf_stats_enabled) under
 * real traffic (iperf3 UDP, 200-byte datagrams) between the two nodes — the cost per invocation
 * with the caches as real traffic leaves them. The empty program is attached in afsteer's place
 * for the baseline. Reported, not gated (bpf_stats itself adds ~20 ns per run).
 */
async function inSituBench(): Promise<void> {
  const t = new TwoNodes('bridge');
  const emptyPin = `/sys/fs/bpf/afsteer-bench-empty-${randomBytes(3).toString('hex')}`;
  const stats = (id: number) => {
    const j = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', String(id), '-j'], { encoding: 'utf8' })) as { run_time_ns?: number; run_cnt?: number };
    return { ns: j.run_time_ns ?? 0, cnt: j.run_cnt ?? 0 };
  };
  const progId = (pin: string) => (JSON.parse(execFileSync('bpftool', ['prog', 'show', 'pinned', pin, '-j'], { encoding: 'utf8' })) as { id: number }).id;
  const wasEnabled = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  try {
    execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=1']);
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    registerRemote(t.a.pinDir, { ipv4: pb.ipv4, ipv6: pb.ipv6 });
    registerRemote(t.b.pinDir, { ipv4: pa.ipv4, ipv6: pa.ipv6 });
    const progDir = (n: typeof t.a) => join(n.pinDir, 'progs', readdirSync(join(n.pinDir, 'progs'))[0]!);
    const fromA = join(progDir(t.a), 'afsteer_from_pod');
    const toB = join(progDir(t.b), 'afsteer_to_pod');
    execFileSync('bpftool', ['prog', 'load', join(ROOT, 'build', 'bench_empty.bpf.o'), emptyPin, 'type', 'tc']);
    const put = async (fromPin: string, toPin: string) => {
      await attachPinned(t.a.nsPath, pa.hostIfname, 'ingress', fromPin);
      await attachPinned(t.b.nsPath, pb.hostIfname, 'egress', toPin);
    };
    let port = 7100;
    const measure = async (fromPin: string, toPin: string) => {
      await put(fromPin, toPin);
      const ids = [progId(fromPin), progId(toPin)];
      const s0 = ids.map(stats);
      const p = String(++port);
      const server = nsExec(pb.nsPath, ['iperf3', '-s', '-1', '-B', pb.ipv4, '-p', p]);
      await new Promise((r) => setTimeout(r, 300));
      await nsExec(pa.nsPath, ['iperf3', '-c', pb.ipv4, '-p', p, '-u', '-b', '0', '-l', '200', '-t', '2', '-J']);
      await server;
      const s1 = ids.map(stats);
      // The empty program sits on both hooks (one program id): its average covers both.
      return ids.map((_, i) => (s1[i]!.ns - s0[i]!.ns) / Math.max(1, s1[i]!.cnt - s0[i]!.cnt));
    };
    const steer = (wire: 'native' | 'ipv6') => {
      setSteering(t.a.pinDir, pa.hostIfindex, pb.ipv6, wire);
      setSteering(t.b.pinDir, pb.hostIfindex, pa.ipv6, wire);
    };
    steer('native');
    const [empty] = await measure(emptyPin, emptyPin);
    const [nativeFrom, nativeTo] = await measure(fromA, toB);
    steer('ipv6');
    const [encap, decap] = await measure(fromA, toB);
    console.log('\nin situ, real traffic (kernel.bpf_stats_enabled; iperf3 UDP 200 B; ns per program run, bridge chain)');
    console.log(`  empty tc program                   ${empty!.toFixed(1)}`);
    console.log(`  from-pod, pair set to native       ${nativeFrom!.toFixed(1)}   = empty + ${(nativeFrom! - empty!).toFixed(1)}`);
    console.log(`  to-pod, native                     ${nativeTo!.toFixed(1)}   = empty + ${(nativeTo! - empty!).toFixed(1)}`);
    console.log(`  from-pod, encapsulating            ${encap!.toFixed(1)}   = empty + ${(encap! - empty!).toFixed(1)}`);
    console.log(`  to-pod, decapsulating              ${decap!.toFixed(1)}   = empty + ${(decap! - empty!).toFixed(1)}`);
  } finally {
    rmSync(emptyPin, { force: true });
    execFileSync('sysctl', ['-q', '-w', `kernel.bpf_stats_enabled=${wasEnabled}`]);
    t.cleanup();
  }
}

if (process.getuid?.() !== 0) {
  console.error('dataplane bench: needs root');
  process.exit(1);
}
programBench();
await throughputBench('bridge');
await throughputBench('ptp');
await inSituBench();
if (misses.length) {
  console.log(`\n${misses.length} target(s) missed`);
  process.exitCode = 1;
}
