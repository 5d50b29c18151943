/**
 * Secondary-network benchmark (root): two simulated nodes with a transport fabric
 * (test/support/transport-fabric.ts), pods with eth0 on bridge (programs on the host veth) and
 * net1 on macvlan (programs in the pod's namespace on net1), in one run:
 *  1. pod-to-pod TCP throughput on net1 (iperf3, IPv4 app): in-pod programs removed, the empty
 *     program on the same hooks, afsteer's attached native, and steered to IPv6, interleaved. Target: steered ≥ 85% of native (the host-veth
 *     chains' target).
 *  2. in situ, the kernel's per-program run-time accounting (kernel.bpf_stats_enabled) under the
 *     same UDP load (iperf3, 200-byte datagrams) sent over eth0 and then over net1: ns per run of
 *     from-pod and to-pod on the host veth against the same programs inside the pod, native and
 *     steered. Reported (bpf_stats adds ~20 ns per run to both alike).
 * BENCH_SECONDARY_PARTS (tcp, insitu) runs a subset; BENCH_IPERF_SECONDS / BENCH_IPERF_ROUNDS as
 * in dataplane.ts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { registerRemote, setSteering } from '../../src/bpf/steering';
import { nsExec } from '../support/process';
import type { SimPod } from '../support/sim-topology';
import { type Net1, TransportFabric } from '../support/transport-fabric';
import { TwoNodes } from '../support/two-nodes';
import { ROOT } from '../support/world';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const misses: string[] = [];
const target = (ok: boolean, what: string) => {
  console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${what}`);
  if (!ok) misses.push(what);
};

async function iperf(fromNs: string, from: string, toNs: string, to: string, args: string[]): Promise<Record<string, any>> {
  const port = String(5201 + Math.floor(Math.random() * 500));
  const server = nsExec(toNs, ['iperf3', '-s', '-1', '-B', to, '-p', port]);
  await new Promise((r) => setTimeout(r, 300));
  const out = JSON.parse(await nsExec(fromNs, ['iperf3', '-c', to, '-p', port, '-J', '-B', from, ...args]));
  await server.catch(() => undefined);
  return out;
}

/** A topology with a0/b0 (eth0 + net1), each side's remote registered on both networks; cleaned up after fn. */
async function withPods(fn: (t: TwoNodes, f: TransportFabric, p: { a0: SimPod; b0: SimPod; a0n: Net1; b0n: Net1 }) => Promise<void>) {
  const t = new TwoNodes('bridge');
  const f = new TransportFabric(t);
  try {
    await t.up();
    f.up();
    const a0 = await t.addPod(t.a, 'a0');
    const b0 = await t.addPod(t.b, 'b0');
    const a0n = await f.addMacvlan(a0);
    const b0n = await f.addMacvlan(b0);
    registerRemote(t.a.pinDir, { ipv4: b0.ipv4, ipv6: b0.ipv6 });
    registerRemote(t.b.pinDir, { ipv4: a0.ipv4, ipv6: a0.ipv6 });
    registerRemote(t.a.pinDir, { ipv4: b0n.ipv4, ipv6: b0n.ipv6 });
    registerRemote(t.b.pinDir, { ipv4: a0n.ipv4, ipv6: a0n.ipv6 });
    await fn(t, f, { a0, b0, a0n, b0n });
  } finally {
    f.cleanup();
    t.cleanup();
  }
}

const progDir = (pinDir: string) => join(pinDir, 'progs', readdirSync(join(pinDir, 'progs'))[0]!);

const cleanups: (() => void)[] = [];

async function tcpBench(): Promise<void> {
  const SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 4);
  const ROUNDS = Number(process.env.BENCH_IPERF_ROUNDS ?? 3);
  await withPods(async (t, _f, { a0, b0, a0n, b0n }) => {
    const steer = (wire: 'native' | 'ipv6') => {
      setSteering(t.a.pinDir, a0n.endpoint, b0n.ipv6, wire);
      setSteering(t.b.pinDir, b0n.endpoint, a0n.ipv6, wire);
    };
    // "no program": afsteer's clsact hooks on net1 removed; attaching puts the pinned programs back
    // with the classid the plugin gives them (the attachment id: the endpoint key's low bits).
    const emptyDir = `/sys/fs/bpf/afsteer-bench-empty-${randomBytes(3).toString('hex')}`;
    execFileSync('bpftool', ['prog', 'loadall', join(ROOT, 'build', 'bench_empty.bpf.o'), emptyDir, 'type', 'tc']);
    cleanups.push(() => rmSync(emptyDir, { recursive: true, force: true }));
    // empty: the empty program on the same hooks (the share of clsact and cls_bpf on a macvlan).
    const setAttached = async (on: boolean, empty = false) => {
      for (const [pod, n, node] of [
        [a0, a0n, t.a],
        [b0, b0n, t.b],
      ] as const) {
        await nsExec(pod.nsPath, ['tc', 'qdisc', on ? 'replace' : 'del', 'dev', 'net1', 'clsact']).catch(() => undefined);
        if (!on) continue;
        const classid = `af:${(n.endpoint & 0xffff).toString(16)}`;
        for (const [dir, prog] of [
          ['egress', 'afsteer_from_pod'],
          ['ingress', 'afsteer_to_pod'],
        ] as const)
          await nsExec(pod.nsPath, [
            'tc',
            'filter',
            'replace',
            'dev',
            'net1',
            dir,
            'prio',
            '175',
            'handle',
            '0xaf',
            'bpf',
            'da',
            'pinned',
            empty ? join(emptyDir, 'afsteer_bench_empty') : join(progDir(node.pinDir), prog),
            'classid',
            classid,
          ]);
      }
    };
    const modes: Record<string, () => Promise<void>> = {
      none: () => setAttached(false),
      empty: () => setAttached(true, true),
      native: async () => {
        await setAttached(true);
        steer('native');
      },
      steered: async () => {
        await setAttached(true);
        steer('ipv6');
      },
    };
    const results: Record<string, number[]> = { none: [], empty: [], native: [], steered: [] };
    const names = Object.keys(modes);
    for (let r = 0; r < ROUNDS * ROUNDS; r++) {
      for (let k = 0; k < names.length; k++) {
        const mode = names[(r + k) % names.length]!;
        await modes[mode]!();
        const out = await iperf(a0.nsPath, a0n.ipv4, b0.nsPath, b0n.ipv4, ['-t', String(SECONDS)]);
        results[mode]!.push(out.end.sum_received.bits_per_second / 1e9);
      }
    }
    const [none, empty, native, steered] = ['none', 'empty', 'native', 'steered'].map((m) => median(results[m]!)) as [
      number,
      number,
      number,
      number,
    ];
    console.log(
      `\npod-to-pod TCP on net1 over macvlan + host-local + afsteer, programs in the pod (iperf3, IPv4 app, ${SECONDS}s runs, median of ${ROUNDS * ROUNDS}, Gbit/s)`,
    );
    console.log(`  no program          ${none.toFixed(2)}`);
    console.log(
      `  empty program       ${empty.toFixed(2)}   = ${((empty / none) * 100).toFixed(1)}% of no program  (same hooks, program does nothing)`,
    );
    console.log(
      `  attached, native    ${native.toFixed(2)}   = ${((native / none) * 100).toFixed(1)}% of no program, ${((native / empty) * 100).toFixed(1)}% of the empty program`,
    );
    console.log(`  steered over IPv6   ${steered.toFixed(2)}   = ${((steered / native) * 100).toFixed(1)}% of native`);
    target(steered >= 0.85 * native, `macvlan: steered ≥ 85% of native (${((steered / native) * 100).toFixed(1)}%)`);
  });
}

async function inSituBench(): Promise<void> {
  const wasEnabled = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  const stats = (pin: string) => {
    const j = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'pinned', pin, '-j'], { encoding: 'utf8' })) as {
      run_time_ns?: number;
      run_cnt?: number;
    };
    return { ns: j.run_time_ns ?? 0, cnt: j.run_cnt ?? 0 };
  };
  try {
    execFileSync('sysctl', ['-q', '-w', 'kernel.bpf_stats_enabled=1']);
    await withPods(async (t, _f, { a0, b0, a0n, b0n }) => {
      const fromA = join(progDir(t.a.pinDir), 'afsteer_from_pod');
      const toB = join(progDir(t.b.pinDir), 'afsteer_to_pod');
      // ns per run of A's from-pod and B's to-pod while 200-byte UDP goes from a0 to b0 over one attachment.
      const measure = async (from: string, to: string) => {
        const s0 = [stats(fromA), stats(toB)];
        await iperf(a0.nsPath, from, b0.nsPath, to, ['-u', '-b', '0', '-l', '200', '-t', '2']);
        const s1 = [stats(fromA), stats(toB)];
        return s1.map((s, i) => (s.ns - s0[i]!.ns) / Math.max(1, s.cnt - s0[i]!.cnt));
      };
      const steer = (wire: 'native' | 'ipv6') => {
        setSteering(t.a.pinDir, a0.hostIfindex, b0.ipv6, wire);
        setSteering(t.b.pinDir, b0.hostIfindex, a0.ipv6, wire);
        setSteering(t.a.pinDir, a0n.endpoint, b0n.ipv6, wire);
        setSteering(t.b.pinDir, b0n.endpoint, a0n.ipv6, wire);
      };
      const rows: Record<string, number[][]> = { vethNative: [], podNative: [], vethSteered: [], podSteered: [] };
      for (let r = 0; r < 3; r++) {
        steer('native');
        rows.vethNative!.push(await measure(a0.ipv4, b0.ipv4));
        rows.podNative!.push(await measure(a0n.ipv4, b0n.ipv4));
        steer('ipv6');
        rows.vethSteered!.push(await measure(a0.ipv4, b0.ipv4));
        rows.podSteered!.push(await measure(a0n.ipv4, b0n.ipv4));
      }
      const m = (k: string, i: number) => median(rows[k]!.map((x) => x[i]!));
      console.log('\nin situ, real traffic (kernel.bpf_stats_enabled; iperf3 UDP 200 B; ns per program run, median of 3)');
      console.log('                              host veth (eth0)   in the pod (net1, macvlan)');
      for (const [label, veth, pod, i] of [
        ['from-pod, native      ', 'vethNative', 'podNative', 0],
        ['to-pod, native        ', 'vethNative', 'podNative', 1],
        ['from-pod, encapsulating', 'vethSteered', 'podSteered', 0],
        ['to-pod, decapsulating ', 'vethSteered', 'podSteered', 1],
      ] as const) {
        const v = m(veth, i),
          p = m(pod, i);
        console.log(
          `  ${label}     ${v.toFixed(1).padStart(8)}           ${p.toFixed(1).padStart(8)}   (${(p - v >= 0 ? '+' : '') + (p - v).toFixed(1)})`,
        );
      }
    });
  } finally {
    execFileSync('sysctl', ['-q', '-w', `kernel.bpf_stats_enabled=${wasEnabled}`]);
  }
}

if (process.getuid?.() !== 0) {
  console.error('secondary-network bench: needs root');
  process.exit(1);
}
const parts = new Set((process.env.BENCH_SECONDARY_PARTS ?? 'tcp,insitu').split(',').map((p) => p.trim()));
try {
  if (parts.has('tcp')) await tcpBench();
} finally {
  for (const c of cleanups) c();
}
if (parts.has('insitu')) await inSituBench();
if (misses.length) {
  console.log(`\n${misses.length} target(s) missed`);
  process.exitCode = 1;
}
