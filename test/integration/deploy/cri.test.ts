/**
 * Kubelet's path: pod sandboxes run through containerd's CRI plugin over gRPC, as kubelet runs
 * them (RunPodSandbox with the pod's metadata, labels and kubelet's default Linux security
 * context, PodSandboxStatus, StopPodSandbox — twice, as kubelet may — and RemovePodSandbox),
 * with the small CRI client in test/support/cri-client.ts.
 *
 * Debian's containerd (1.6) runs with its own root, state, socket, runc root and config, inside
 * node A of the simulated two-node topology (test/support/sim-topology.ts: containerd is started
 * in A's network namespace, so the bridge and host veths the CNI plugins make are A's). Its CRI
 * plugin's cni.conf_dir / cni.bin_dir are this test's: bridge + host-local (dual-stack ranges) +
 * dist/afsteer chained, Debian's loopback for the pod's lo. The sandbox ("pause") image is
 * busybox-static built here with buildah and imported into the k8s.io namespace: no registry.
 *
 * What this path does that `ctr run --cni` (containerd.test.ts) does not: go-cni passes
 * K8S_POD_* and IgnoreUnknown in CNI_ARGS, the CRI plugin caches the result and reports the
 * addresses in PodSandboxStatus, and it calls DEL on StopPodSandbox while the sandbox's netns
 * still exists (then again, with the netns gone, on a repeated Stop or Remove).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEndpoints, localEndpointByAddress } from '../../../src/bpf/endpoint-map';
import { listPairs, readWires } from '../../../src/bpf/steering';
import { buildBusyboxImage } from '../../support/busybox-image';
import { CriClient, kubeletSandboxConfig, type SandboxStatusResponse } from '../../support/cri-client';
import { exited, nsExec, runCommand, waitFor } from '../../support/process';
import type { SimPod } from '../../support/sim-topology';
import { TwoNodes } from '../../support/two-nodes';
import { AFSTEER_BIN, IS_ROOT, REFERENCE_PLUGINS, sh, shQuiet } from '../../support/world';

const TOOLS = ['containerd', 'ctr', 'runc', 'buildah', 'nsenter', 'tc'];
const missing = [
  ...TOOLS.filter((t) => {
    try {
      sh('sh', ['-c', `command -v ${t}`]);
      return false;
    } catch {
      return true;
    }
  }),
  ...['/bin/busybox', ...['bridge', 'host-local', 'loopback'].map((p) => join(REFERENCE_PLUGINS, p))].filter((f) => !existsSync(f)),
];
if (!IS_ROOT)
  console.warn('SKIPPED CRI (pods as kubelet runs them): needs root (containerd, runc, netns, bpffs, tc); run the tests as root');
else if (missing.length)
  console.warn(`SKIPPED CRI (pods as kubelet runs them): missing ${missing.join(', ')} (bash scripts/setup.sh installs them)`);

const PAUSE = 'localhost/afsteer-pause:test';
/**
 * CAP_SYS_RESOURCE (bit 24) in our effective set: the CRI plugin gives a sandbox oom_score_adj
 * -998, which runc cannot set without it (some machines' root, e.g. inside a container, lacks it:
 * "failed to update /proc/self/oom_score_adj: Permission denied"); there containerd is told to keep
 * scores at or above its own (restrict_oom_score_adj, as kind and rootless setups do).
 */
const HAVE_SYS_RESOURCE =
  ((BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`) >> 24n) & 1n) === 1n;
const MB10 = 10_000_000;

/** One plugin log line (the afsteer entry's logFile). */
interface LogLine {
  level: string;
  msg: string;
  verb?: string;
  container?: string;
  netns?: string;
}

describe.skipIf(!IS_ROOT || missing.length > 0)("pod sandboxes through containerd's CRI plugin, as kubelet runs them", () => {
  const id = Math.random().toString(16).slice(2, 8);
  let T = '';
  let t: TwoNodes;
  let b0: SimPod;
  let cri: CriClient;
  let containerd: ChildProcess | undefined;
  const sandboxes: { id: string; pod: SimPod; netns: string; status: SandboxStatusResponse }[] = [];
  const cgroupRoot = `/afsteer-cri-${id}`;
  let sock = '';
  let logFile = '';
  let ipamDir = '';
  let pinsAfterFirstAdd: string[] = [];
  let port = 7100;

  const startContainerd = async () => {
    const out = openSync(join(T, 'containerd.log'), 'a');
    containerd = spawn('nsenter', [`--net=${t.a.nsPath}`, 'containerd', '--config', join(T, 'config.toml')], {
      stdio: ['ignore', out, out],
    });
    await waitFor(
      async () => {
        if (containerd?.exitCode !== null)
          throw new Error(`containerd exited (${containerd?.exitCode}): ${readFileSync(join(T, 'containerd.log'), 'utf8').slice(-2000)}`);
        return (
          existsSync(sock) &&
          (await cri.version().then(
            () => true,
            () => false,
          ))
        );
      },
      30_000,
      'containerd and its CRI plugin to answer Version',
    );
  };
  const stopContainerd = async () => {
    if (!containerd || containerd.exitCode !== null) return;
    containerd.kill('SIGTERM');
    const timer = setTimeout(() => containerd?.kill('SIGKILL'), 10_000);
    await exited(containerd);
    clearTimeout(timer);
  };
  const logLines = (): LogLine[] =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as LogLine)
      : [];
  const inNode = (argv: string[]) => nsExec(t.a.nsPath, argv);
  const leases = () => readdirSync(join(ipamDir, 'cri-a')).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
  const pins = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? pins(join(dir, e.name)).map((p) => `${e.name}/${p}`) : [e.name],
    );

  /** Runs a pod sandbox as kubelet does and reads back what PodSandboxStatus and afsteer's state say about it. */
  const runSandbox = async (name: string) => {
    const uid = `${id}-0000-4000-8000-${name.padStart(12, '0')}`;
    const config = kubeletSandboxConfig({ name, namespace: 'afsteer-cri', uid }, join(T, 'pods'), cgroupRoot);
    mkdirSync(config.logDirectory, { recursive: true });
    const sid = await cri.runPodSandbox(config);
    const st = await cri.podSandboxStatus(sid);
    const info = JSON.parse(st.info.info!) as { runtimeSpec: { linux: { namespaces: { type: string; path?: string }[] } } };
    const netns = info.runtimeSpec.linux.namespaces.find((n) => n.type === 'network')!.path!;
    const ips = [st.status.network!.ip, ...st.status.network!.additionalIps.map((a) => a.ip)];
    const state = JSON.parse(readFileSync(join(t.a.stateDir, 'attachments', `${sid}_eth0.json`), 'utf8')) as {
      hostIfname: string;
      hostIfindex: number;
    };
    const pod: SimPod = {
      node: t.a,
      id: sid,
      ns: name,
      nsPath: netns,
      ipv4: ips.find((a) => !a.includes(':'))!,
      ipv6: ips.find((a) => a.includes(':'))!,
      hostIfname: state.hostIfname,
      hostIfindex: state.hostIfindex,
    };
    const s = { id: sid, pod, netns, status: st };
    sandboxes.push(s);
    return s;
  };
  const ping = (from: SimPod, to: string) => nsExec(from.nsPath, ['ping', '-c', '2', '-i', '0.2', '-W', '3', to]);
  /** A 10 MB TCP stream from `from` to `to` over the app family of the address; both ends' sha256 and the middle's per-family packets. */
  const transfer = async (from: SimPod, to: SimPod, addr: string) => {
    const p = ++port;
    const before = await t.midCounts();
    const { done } = await t.server(to, addr, p);
    const client = await t.client(from, addr, p, ['--bytes', String(MB10)]);
    const server = await done;
    const after = await t.midCounts();
    return { client, server, ipv4: after.ipv4 - before.ipv4, ipv6: after.ipv6 - before.ipv6 };
  };
  /** What afsteer holds for the running sandboxes on node A: state files, endpoints, filters, pairs, leases, pins. */
  const nodeState = async () => ({
    states: Object.fromEntries(
      readdirSync(join(t.a.stateDir, 'attachments'))
        .sort()
        .map((f) => [f, readFileSync(join(t.a.stateDir, 'attachments', f), 'utf8')]),
    ),
    endpoints: JSON.stringify(
      [...listEndpoints(t.a.pinDir)].sort((x, y) => x[0] - y[0]),
      (_k, v) => (typeof v === 'bigint' ? String(v) : v),
    ),
    filters: await Promise.all(
      sandboxes.map(async (s) => [
        await inNode(['tc', 'filter', 'show', 'dev', s.pod.hostIfname, 'ingress']),
        await inNode(['tc', 'filter', 'show', 'dev', s.pod.hostIfname, 'egress']),
      ]),
    ),
    wires: readWires(t.a.pinDir),
    leases: leases().sort(),
    pins: pins(t.a.pinDir).sort(),
  });

  beforeAll(async () => {
    T = mkdtempSync(join(tmpdir(), `afsteer-cri-${id}-`));
    sock = join(T, 'containerd.sock');
    t = new TwoNodes();
    await t.up();
    b0 = await t.addPod(t.b, 'b0');
    ipamDir = join(T, 'ipam');
    logFile = join(t.a.stateDir, 'afsteer.log');

    // The CNI directories the CRI plugin reads: the chain, and the plugins it names.
    const confDir = join(T, 'cni/net.d');
    const binDir = join(T, 'cni/bin');
    mkdirSync(confDir, { recursive: true });
    mkdirSync(binDir, { recursive: true });
    symlinkSync(AFSTEER_BIN, join(binDir, 'afsteer'));
    for (const p of ['bridge', 'host-local', 'loopback']) symlinkSync(join(REFERENCE_PLUGINS, p), join(binDir, p));
    writeFileSync(
      join(confDir, '10-afsteer.conflist'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: 'cri-a',
          plugins: [
            {
              type: 'bridge',
              bridge: 'cni0',
              isGateway: true,
              ipMasq: false,
              ipam: {
                type: 'host-local',
                dataDir: ipamDir,
                ranges: [[{ subnet: t.a.podV4 }], [{ subnet: t.a.podV6 }]],
                routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
              },
            },
            {
              type: 'afsteer',
              pinDir: t.a.pinDir,
              stateDir: t.a.stateDir,
              daemonSocket: join(T, 'no-afsteerd.sock'),
              logFile,
              logLevel: 'info',
            },
          ],
        },
        null,
        2,
      ),
    );
    writeFileSync(
      join(T, 'config.toml'),
      `version = 2
root = "${T}/root"
state = "${T}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${T}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE}"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = ${!HAVE_SYS_RESOURCE}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "${T}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${binDir}"
    conf_dir = "${confDir}"
    max_conf_num = 1
`,
    );

    const archive = await buildBusyboxImage(join(T, 'pause-image'), PAUSE, ['sh', 'sleep'], ['/bin/sleep', '2147483647']);
    cri = new CriClient(sock, 30_000);
    await startContainerd();
    const imported = await runCommand('ctr', ['-a', sock, '-n', 'k8s.io', 'images', 'import', archive]);
    if (imported.code !== 0) throw new Error(`ctr images import: ${imported.out}`);
    // The CRI plugin learns of imported images from containerd's events: wait until it knows the pause image.
    await waitFor(async () => (await cri.imageStatus(PAUSE)) !== null, 10_000, `the CRI plugin to see ${PAUSE}`);
  }, 120_000);

  afterAll(async () => {
    try {
      if (containerd?.exitCode === null) {
        for (const s of sandboxes) {
          await cri.stopPodSandbox(s.id).catch(() => undefined);
          await cri.removePodSandbox(s.id).catch(() => undefined);
        }
      }
    } finally {
      cri?.close();
      await stopContainerd();
      // Shims of our containerd (their command line names our socket) and anything whose root is ours (pause), by pid.
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          const mine =
            readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(sock) ||
            (T !== '' && sh('readlink', [`/proc/${pid}/root`]).startsWith(T));
          if (mine) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      for (const m of readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((p): p is string => !!p && T !== '' && p.startsWith(T))
        .reverse())
        shQuiet('umount', ['-l', m]);
      removeCgroupTree(cgroupRoot);
      t?.cleanup();
      if (T) rmSync(T, { recursive: true, force: true });
    }
  }, 60_000);

  it('two sandboxes get dual-stack addresses (PodSandboxStatus), afsteer on their host veths, and reach each other over both families', async () => {
    const v = await cri.version();
    expect(v.runtimeName).toBe('containerd');
    expect(v.runtimeApiVersion).toBe('v1');
    const s1 = await runSandbox('s1');
    pinsAfterFirstAdd = pins(t.a.pinDir).sort();
    const s2 = await runSandbox('s2');
    for (const s of [s1, s2]) {
      expect(s.status.status.state).toBe('SANDBOX_READY');
      expect(s.status.status.metadata).toMatchObject({ name: s.pod.ns, namespace: 'afsteer-cri' });
      expect(s.pod.ipv4.startsWith('10.1.0.')).toBe(true);
      expect(s.pod.ipv6.startsWith('fd00:1::')).toBe(true);
      // The chain ran with kubelet's pod identity (go-cni's K8S_POD_* in CNI_ARGS), recorded in afsteer's state.
      const state = JSON.parse(readFileSync(join(t.a.stateDir, 'attachments', `${s.id}_eth0.json`), 'utf8')) as Record<string, unknown>;
      expect(state).toMatchObject({ podNamespace: 'afsteer-cri', podName: s.pod.ns, netns: s.netns });
      expect(await inNode(['tc', 'filter', 'show', 'dev', s.pod.hostIfname, 'ingress'])).toMatch(/afsteer_from_po/); // (tc prints the first 15 bytes of a program's name)
      expect(await inNode(['tc', 'filter', 'show', 'dev', s.pod.hostIfname, 'egress'])).toMatch(/afsteer_to_pod/);
      expect(listEndpoints(t.a.pinDir).get(s.pod.hostIfindex)).toMatchObject({ ipv4: s.pod.ipv4, ipv6: s.pod.ipv6 });
      // afsteer's pod MTU (40 bytes for an outer header) on the sandbox's eth0.
      expect(await nsExec(s.netns, ['ip', '-o', 'link', 'show', 'eth0'])).toMatch(/mtu 1460/);
    }
    expect(await inNode(['tc', 'filter', 'show', 'dev', 'cni0', 'egress'])).toMatch(/afsteer_bridge_/);
    for (const [from, to] of [
      [s1, s2],
      [s2, s1],
    ] as const) {
      for (const addr of [to.pod.ipv4, to.pod.ipv6]) expect(await ping(from.pod, addr), `${from.pod.ns} -> ${addr}`).toMatch(/ 2 received/);
    }
    expect(logLines().filter((l) => l.level === 'error')).toEqual([]);
  });

  it("a steered pair (sandbox s1 ↔ pod b0 on node B) moves each family's traffic over the other, with the same sha256", async () => {
    const s1 = sandboxes[0]!.pod;
    await t.steerCmd(t.a, ['remote', 'add', b0.ipv4, b0.ipv6]);
    await t.steerCmd(t.b, ['remote', 'add', s1.ipv4, s1.ipv6]);
    // LOCAL by the sandbox id (the container id CRI gave CNI), as an operator would name it.
    await t.steerCmd(t.a, ['set', s1.id, b0.ipv4, 'ipv6']);
    await t.steerCmd(t.b, ['set', b0.ipv4, s1.ipv4, 'ipv6']);
    const v4app = await transfer(s1, b0, b0.ipv4);
    expect(v4app.server.sha256).toBe(v4app.client.sha256);
    expect(v4app.server.bytes).toBe(MB10);
    expect(v4app.ipv4).toBe(0);
    expect(v4app.ipv6).toBeGreaterThan(100);

    await t.steerCmd(t.a, ['set', s1.id, b0.ipv6, 'ipv4']);
    await t.steerCmd(t.b, ['set', b0.ipv6, s1.ipv6, 'ipv4']);
    const v6app = await transfer(b0, s1, s1.ipv6);
    expect(v6app.server.sha256).toBe(v6app.client.sha256);
    expect(v6app.ipv6).toBe(0);
    expect(v6app.ipv4).toBeGreaterThan(100);
    expect(
      readWires(t.a.pinDir)
        .filter((w) => w.ifindex === s1.hostIfindex)
        .map((w) => w.wire),
    ).toEqual(['ipv4']);
  });

  it('a containerd restart with the sandboxes running changes nothing', async () => {
    const before = await nodeState();
    const lines = logLines().length;
    await stopContainerd();
    await startContainerd();
    const listed = await cri.listPodSandbox();
    for (const s of sandboxes) {
      expect(listed.find((l) => l.id === s.id)?.state).toBe('SANDBOX_READY');
      const st = await cri.podSandboxStatus(s.id);
      expect(st.status.network).toEqual(s.status.status.network);
    }
    expect(await nodeState()).toEqual(before);
    expect(logLines().length).toBe(lines);
    const [s1, s2] = sandboxes.map((s) => s.pod) as [SimPod, SimPod];
    for (const addr of [s2.ipv4, s2.ipv6]) expect(await ping(s1, addr)).toMatch(/ 2 received/);
    // The pair is still steered (both app families over IPv4): an IPv6 stream crosses as IPv4.
    const again = await transfer(s1, b0, b0.ipv6);
    expect(again.server.sha256).toBe(again.client.sha256);
    expect(again.ipv6).toBe(0);
    expect(again.ipv4).toBeGreaterThan(100);
  });

  it('StopPodSandbox runs DEL while the netns exists; Stop (twice) and Remove leave no veth, state file, lease, map entry or pin of theirs', async () => {
    const pinsBefore = pins(t.a.pinDir).sort();
    for (const s of sandboxes) {
      const at = logLines().length;
      await cri.stopPodSandbox(s.id);
      const del = logLines().slice(at);
      // The first DEL found the sandbox's netns (the one recorded at ADD) and restored its eth0.
      expect(del).toContainEqual(
        expect.objectContaining({ verb: 'DEL', msg: 'restored the pod interface', container: s.id, netns: s.netns, ifname: 'eth0' }),
      );
      await cri.stopPodSandbox(s.id);
      await cri.removePodSandbox(s.id);
      const all = logLines().slice(at);
      expect(all.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
      expect(all.filter((l) => l.msg === 'detached' && l.container === s.id).length).toBeGreaterThanOrEqual(1);
      expect(existsSync(s.netns)).toBe(false);
      expect(await inNode(['ip', '-o', 'link', 'show'])).not.toContain(`${s.pod.hostIfname}@`);
      expect(existsSync(join(t.a.stateDir, 'attachments', `${s.id}_eth0.json`))).toBe(false);
      expect(listEndpoints(t.a.pinDir).has(s.pod.hostIfindex)).toBe(false);
      for (const a of [s.pod.ipv4, s.pod.ipv6]) {
        expect(localEndpointByAddress(t.a.pinDir, a)).toBeUndefined();
        expect(leases()).not.toContain(a);
      }
      expect(listPairs(t.a.pinDir).filter((p) => p.ifindex === s.pod.hostIfindex)).toEqual([]);
    }
    expect(await cri.listPodSandbox()).toEqual([]);
    expect(leases()).toEqual([]);
    expect(readdirSync(join(t.a.stateDir, 'attachments')).filter((f) => f.endsWith('.json'))).toEqual([]);
    expect(listEndpoints(t.a.pinDir).size).toBe(0);
    // Per-node pins stay (programs and maps, shared by every pod); none was a pod's own.
    expect(pins(t.a.pinDir).sort()).toEqual(pinsBefore);
    expect(pinsBefore.filter((p) => !pinsAfterFirstAdd.includes(p))).toEqual(['afsteer_writer_gen']); // made by the first `steer` command
    expect((await inNode(['ip', '-o', 'link', 'show', 'master', 'cni0'])).trim()).toBe('');
    expect(await inNode(['tc', 'filter', 'show', 'dev', 'cni0', 'egress'])).not.toMatch(/afsteer/);
    sandboxes.length = 0;
  });
});

/** Removes the cgroup directories runc made under name (each hierarchy: cgroup v1 controllers, the unified v2 tree), deepest first. */
function removeCgroupTree(name: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4]!);
  const rm = (dir: string) => {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch {
      // still in use or already gone
    }
  };
  for (const m of mounts) rm(join(m, name));
}
