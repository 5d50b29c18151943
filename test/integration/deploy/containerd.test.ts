/**
 * A real container runtime: Debian's containerd + runc, started here with its own root, state,
 * socket and config (CRI plugin off), stopped afterwards. The afsteer image (scripts/build-image.sh,
 * built fresh into the scratch dir) and a busybox-static scratch image (buildah) are imported
 * with ctr; the installer, run from the afsteer image by containerd, chains afsteer into a
 * bridge + host-local dual-stack conflist in a scratch node root; two containers started with
 * `ctr run --cni` (go-cni, as CRI calls CNI) in a private mount namespace whose /etc/cni/net.d
 * and /opt/cni/bin are that scratch root's get dual-stack addresses and ping each other over
 * both families; their deletion leaves no state file, lease, endpoint entry or bridge filter.
 *
 * What `ctr --cni` does not do that CRI does: it calls DEL after the task has exited, when
 * /proc/PID/ns/net is gone (CRI calls it while the pinned sandbox netns still exists, so the pod
 * side is cleaned there), and it never calls CHECK, GC or STATUS, nor adds a loopback network.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEndpoints } from '../../../src/bpf/endpoint-map';
import { runCommand } from '../../support/process';
import { IS_ROOT, REFERENCE_PLUGINS, ROOT, sh, shQuiet } from '../../support/world';

const HAVE_TOOLS =
  ['containerd', 'ctr', 'runc', 'buildah', 'unshare'].every((t) => {
    try {
      sh('sh', ['-c', `command -v ${t}`]);
      return true;
    } catch {
      return false;
    }
  }) && existsSync('/bin/busybox');
if (!IS_ROOT)
  console.warn('SKIPPED containerd (real runtime through the chain): needs root (containerd, runc, bpffs, tc); run the tests as root');
else if (!HAVE_TOOLS)
  console.warn('SKIPPED containerd: needs containerd, runc, buildah, busybox-static (bash scripts/setup.sh installs them)');

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; afsteer: { image: string } };
const IMAGE = `${pkg.afsteer.image}:${pkg.version}`;
const BUSYBOX = 'localhost/afsteer-busybox:test';

/** Polls until check() is true or the timeout passes. */
async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!IS_ROOT || !HAVE_TOOLS)('containerd + runc through the chain (ctr run --cni)', () => {
  const id = Math.random().toString(16).slice(2, 8);
  const T = mkdtempSync(join(tmpdir(), `afsteer-ctr-${id}-`));
  const sock = join(T, 'containerd.sock');
  const node = join(T, 'node');
  const bridge = `afctr${id}`;
  const pinDir = `/sys/fs/bpf/afsteer-ctr-${id}`;
  const stateDir = join(T, 'afsteer-state');
  const ipamDir = join(T, 'ipam');
  const n = parseInt(id.slice(0, 2), 16);
  const v4 = `10.${150 + (n % 40)}.${n}`;
  const v6 = `fd00:afc${id.slice(0, 1)}:${parseInt(id.slice(1, 4), 16).toString(16)}`;
  const ctrArgs = ['-a', sock, '-n', 'afsteer-it'];
  let containerd: ChildProcess | undefined;
  const runs: ChildProcess[] = [];
  const ctr = (args: string[], timeoutMs = 60_000) => runCommand('ctr', [...ctrArgs, ...args], timeoutMs);

  beforeAll(async () => {
    mkdirSync(join(node, 'etc/cni/net.d'), { recursive: true });
    mkdirSync(join(node, 'opt/cni/bin'), { recursive: true });
    for (const p of ['bridge', 'host-local']) copyFileSync(join(REFERENCE_PLUGINS, p), join(node, 'opt/cni/bin', p));
    writeFileSync(
      join(T, 'config.toml'),
      [
        'version = 2',
        `root = "${T}/root"`,
        `state = "${T}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[ttrpc]',
        `  address = "${sock}.ttrpc"`,
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
      ].join('\n') + '\n',
    );
    containerd = spawn('containerd', ['--config', join(T, 'config.toml')], { stdio: ['ignore', 'ignore', 'ignore'] });
    await until('containerd socket', () => existsSync(sock), 20_000);

    // The two images: afsteer's (the real build script, fresh) and busybox-static from scratch.
    const built = await runCommand('bash', [join(ROOT, 'scripts/build-image.sh')], 120_000);
    if (built.code !== 0)
      throw new Error(`build-image.sh failed (exit ${built.code}${built.code === -1 ? ', killed by the timeout' : ''}):\n${built.out}`);
    const bb = join(T, 'busybox-root/bin');
    mkdirSync(bb, { recursive: true });
    copyFileSync('/bin/busybox', join(bb, 'busybox'));
    for (const a of ['sh', 'ping', 'ip', 'sleep']) symlinkSync('busybox', join(bb, a));
    const B = ['--root', join(T, 'buildah/root'), '--runroot', join(T, 'buildah/run'), '--storage-driver', 'vfs'];
    const c = (await runCommand('buildah', [...B, 'from', '--pull=never', 'scratch'])).out.trim().split('\n').at(-1)!;
    for (const step of [
      ['copy', c, join(T, 'busybox-root'), '/'],
      ['config', '--env', 'PATH=/bin', c],
      ['commit', '--quiet', '--rm', c, BUSYBOX],
      ['push', '--quiet', BUSYBOX, `oci-archive:${T}/busybox.tar:${BUSYBOX}`],
    ]) {
      const r = await runCommand('buildah', [...B, ...step]);
      if (r.code !== 0) throw new Error(`buildah ${step[0]} failed: ${r.out}`);
    }
    for (const tar of [join(ROOT, 'build/afsteer-image.oci.tar'), join(T, 'busybox.tar')]) {
      const r = await ctr(['images', 'import', tar]);
      if (r.code !== 0) throw new Error(`ctr images import ${tar}: ${r.out}`);
    }
  }, 240_000);

  afterAll(async () => {
    try {
      for (const name of ['c1', 'c2']) await ctr(['task', 'kill', '-s', 'KILL', name], 10_000).catch(() => undefined);
      for (const p of runs)
        if (p.exitCode === null)
          await new Promise((r) => {
            const t = setTimeout(() => {
              p.kill('SIGKILL');
              r(undefined);
            }, 10_000);
            p.once('exit', () => {
              clearTimeout(t);
              r(undefined);
            });
          });
      for (const name of ['c1', 'c2', 'install']) await ctr(['containers', 'rm', name], 10_000).catch(() => undefined);
    } finally {
      if (containerd?.exitCode === null) {
        containerd.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            containerd?.kill('SIGKILL');
            r(undefined);
          }, 10_000);
          containerd!.once('exit', () => {
            clearTimeout(t);
            r(undefined);
          });
        });
      }
      // Shims of our containerd (their command line names our socket), by pid.
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(sock)) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      for (const m of readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1])
        .filter((p): p is string => !!p && p.startsWith(T))
        .reverse())
        shQuiet('umount', ['-l', m]);
      shQuiet('ip', ['link', 'del', bridge]);
      rmSync(pinDir, { recursive: true, force: true });
      rmSync(T, { recursive: true, force: true });
    }
  }, 60_000);

  it("the installer, run from the afsteer image by containerd, chains afsteer into the node's bridge conflist", async () => {
    const conflist = join(node, 'etc/cni/net.d/10-ctr.conflist');
    writeFileSync(
      conflist,
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: `ctr-${id}`,
          plugins: [
            {
              type: 'bridge',
              bridge,
              isGateway: true,
              ipMasq: false,
              ipam: {
                type: 'host-local',
                dataDir: ipamDir,
                ranges: [[{ subnet: `${v4}.0/24` }], [{ subnet: `${v6}::/64` }]],
                routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
              },
            },
          ],
        },
        null,
        2,
      ) + '\n',
    );
    const conf = JSON.stringify({ pinDir, stateDir, daemonSocket: join(T, 'no-afsteerd.sock'), logLevel: 'debug' });
    const r = await ctr([
      'run',
      '--rm',
      '--mount',
      `type=bind,src=${node},dst=/host,options=rbind:rw`,
      IMAGE,
      'install',
      '/usr/local/bin/afsteer',
      'install',
      '--root',
      '/host',
      '--cni-only',
      '--afsteer-conf',
      conf,
    ]);
    expect(r.code, r.out).toBe(0);
    const list = JSON.parse(readFileSync(conflist, 'utf8')) as { plugins: { type: string }[] };
    expect(list.plugins.map((p) => p.type)).toEqual(['bridge', 'afsteer']);
    expect(readFileSync(join(node, 'opt/cni/bin/afsteer')).equals(readFileSync(join(ROOT, 'dist/afsteer')))).toBe(true);
  });

  it('two containers get dual-stack addresses through the chain, ping each other on both families; deleting them leaves nothing', async () => {
    // ctr reads /etc/cni/net.d and /opt/cni/bin: the scratch node's, in a private mount namespace.
    const inNs = [
      'set -e; mount --make-rprivate /',
      'mount -t tmpfs -o mode=755 afsteer-it /opt; mkdir -p /opt/cni/bin',
      `mount --bind ${node}/opt/cni/bin /opt/cni/bin`,
      `mkdir -p /etc/cni/net.d; mount --bind ${node}/etc/cni/net.d /etc/cni/net.d`,
      'exec "$@"',
    ].join('\n');
    for (const name of ['c1', 'c2']) {
      runs.push(
        spawn('unshare', ['--mount', 'sh', '-c', inNs, 'sh', 'ctr', ...ctrArgs, 'run', '--rm', '--cni', BUSYBOX, name, 'sleep', '120'], {
          stdio: 'ignore',
        }),
      );
    }
    const addr = async (name: string, fam: '-4' | '-6'): Promise<string | undefined> => {
      const r = await ctr(
        [
          'task',
          'exec',
          '--exec-id',
          `a${Math.random().toString(16).slice(2, 8)}`,
          name,
          'ip',
          fam,
          '-o',
          'addr',
          'show',
          'dev',
          'eth0',
          'scope',
          'global',
        ],
        10_000,
      );
      return /inet6? ([0-9a-f.:]+)\//.exec(r.out)?.[1];
    };
    const ips: Record<string, { v4?: string; v6?: string }> = {};
    const end = Date.now() + 30_000;
    for (const name of ['c1', 'c2']) {
      while (!(ips[name]?.v4 && ips[name]?.v6)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${name}'s dual-stack addresses (${JSON.stringify(ips)})`);
        ips[name] = { v4: await addr(name, '-4'), v6: await addr(name, '-6') };
        if (!(ips[name].v4 && ips[name].v6)) await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(ips.c1!.v4).toMatch(new RegExp(`^${v4.replace(/\./g, '\\.')}\\.`));
    expect(ips.c2!.v6!.startsWith(`${v6}::`)).toBe(true);
    expect(readdirSync(join(stateDir, 'attachments')).filter((f) => f.endsWith('.json'))).toHaveLength(2);
    expect(listEndpoints(pinDir).size).toBe(2);
    expect(sh('tc', ['filter', 'show', 'dev', bridge, 'egress'])).toMatch(/afsteer_bridge_/);

    for (const [from, to] of [
      ['c1', 'c2'],
      ['c2', 'c1'],
    ] as const) {
      for (const dst of [ips[to]!.v4!, ips[to]!.v6!]) {
        const p = await ctr(
          [
            'task',
            'exec',
            '--exec-id',
            `p${Math.random().toString(16).slice(2, 8)}`,
            from,
            'ping',
            ...(dst.includes(':') ? ['-6'] : []),
            '-c',
            '2',
            '-W',
            '3',
            dst,
          ],
          20_000,
        );
        expect(p.out, `${from} -> ${dst}`).toMatch(/2 packets received/);
      }
    }

    // Kill both: each `ctr run --rm --cni` then calls CNI DEL (through the chain) and deletes its container.
    for (const name of ['c1', 'c2']) expect((await ctr(['task', 'kill', '-s', 'KILL', name], 10_000)).code).toBe(0);
    await until('both ctr run processes to finish', () => runs.every((p) => p.exitCode !== null), 30_000);
    expect((await ctr(['containers', 'ls', '-q'])).out.trim()).toBe('');
    expect(readdirSync(join(stateDir, 'attachments')).filter((f) => f.endsWith('.json'))).toEqual([]);
    expect(listEndpoints(pinDir).size).toBe(0);
    const leases = readdirSync(join(ipamDir, `ctr-${id}`)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
    expect(leases).toEqual([]);
    expect(sh('tc', ['filter', 'show', 'dev', bridge, 'egress'])).not.toMatch(/afsteer/);
    expect(sh('tc', ['qdisc', 'show', 'dev', bridge])).not.toMatch(/clsact/);
    expect(sh('ip', ['-o', 'link', 'show', 'master', bridge]).trim()).toBe('');
  });
});
