/**
 * `afsteer install --uninstall` on a node with afsteer pods (issue 24): two pods brought up
 * through the chain the installer made (libcni, the installed dist/afsteer after bridge +
 * host-local giving IPv4, afsteer delegating IPv6). Without --force: refused with both pods
 * listed, nothing changed. With --force: afsteer is off both host veths and the bridge (and
 * afsteerd's echo reflector off the node's interfaces), its pins and state are gone, the root is as before the install (conflist byte for byte), and the pods
 * keep their addresses and reach each other over both families with their MTU back; the
 * runtime's later DEL through the unchained conflist releases every lease.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachEchoReflector } from '../../../src/bpf/echo-reflector';
import { installExe, tree } from '../../support/install-tree';
import { AFSTEER_BIN, announceSkip, DRIVER_BIN, IS_ROOT, REFERENCE_PLUGINS, runWithInput, sh, World } from '../../support/world';

announceSkip('uninstall with pods (libcni + bridge + host-local + installed afsteer)');

interface Pod {
  name: string;
  id: string;
  ns: string;
  hostIfname: string;
  ipv4: string;
  ipv6: string;
}

describe.skipIf(!IS_ROOT)('uninstall with afsteer pods on the node', () => {
  let w: World;
  let root: string;
  let conflist: string;
  let pristine: Record<string, string>;
  let cniPath: string;
  const pods: Pod[] = [];
  const nodeFlags = (): string[] => ['--pin-dir', w.pinDir, '--state-dir', w.stateDir];

  /** Runs the libcni driver on the installed conflist with the root's CNI bin dir. */
  const driver = (verb: 'add' | 'del', pod: { ns: string; id: string; name: string }) =>
    runWithInput(
      DRIVER_BIN,
      [
        verb,
        '--conflist',
        conflist,
        '--netns',
        pod.ns,
        '--container-id',
        pod.id,
        '--cache-dir',
        w.cacheDir,
        '--args',
        `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`,
      ],
      '',
      { PATH: process.env.PATH, CNI_PATH: cniPath },
    );
  const afsteerFilters = (dev: string): string =>
    sh('tc', ['filter', 'show', 'dev', dev, 'ingress']) + sh('tc', ['filter', 'show', 'dev', dev, 'egress']);

  beforeAll(async () => {
    w = new World();
    root = join(w.dir, 'root');
    cniPath = join(root, 'opt/cni/bin');
    mkdirSync(join(root, 'etc/cni/net.d'), { recursive: true, mode: 0o755 });
    mkdirSync(cniPath, { recursive: true, mode: 0o755 });
    for (const p of ['bridge', 'host-local']) symlinkSync(join(REFERENCE_PLUGINS, p), join(cniPath, p));
    conflist = join(root, 'etc/cni/net.d/10-pods.conflist');
    const bridge = { type: 'bridge', bridge: w.bridge, isGateway: true, ipMasq: false };
    const ipam = { type: 'host-local', ranges: [[{ subnet: w.v4Subnet }]], dataDir: w.ipamDir };
    writeFileSync(conflist, JSON.stringify({ cniVersion: '1.0.0', name: `pods-${w.id}`, plugins: [{ ...bridge, ipam }] }, null, 2) + '\n');
    pristine = tree(root);

    const afsteerConf = {
      pinDir: w.pinDir,
      stateDir: w.stateDir,
      daemonSocket: join(w.dir, 'no-afsteerd.sock'),
      ipam: { type: 'host-local', ranges: [[{ subnet: w.v6Subnet }]], dataDir: w.ipamDir },
    };
    const inst = installExe('--root', root, '--bin', AFSTEER_BIN, '--cni-only', '--afsteer-conf', JSON.stringify(afsteerConf));
    expect(inst.code, inst.err).toBe(0);
    expect(JSON.parse(readFileSync(conflist, 'utf8')).plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'afsteer']);

    for (const name of ['pod-a', 'pod-b']) {
      const p = { name, id: `ctr-${name}`, ns: w.netns(name.slice(-1)) };
      const add = await driver('add', p);
      expect(add.code, add.stderr).toBe(0);
      const st = JSON.parse(readFileSync(join(w.stateDir, 'attachments', `${p.id}_eth0.json`), 'utf8'));
      pods.push({ ...p, hostIfname: st.hostIfname, ipv4: st.ipv4, ipv6: st.ipv6 });
    }
  });
  afterAll(() => w?.cleanup());

  it('the pods run with afsteer: filters on their host veths, the delegated IPv6, the MTU lowered for the outer header', async () => {
    for (const p of pods) {
      expect(afsteerFilters(p.hostIfname)).toMatch(/afsteer_from_po[\s\S]*afsteer_to_pod/);
      const addrs = await w.inNs(p.ns, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addrs).toContain(p.ipv4);
      expect(addrs).toContain(p.ipv6);
      expect(await w.inNs(p.ns, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).toMatch(/ mtu 1460 /);
    }
    expect(sh('tc', ['filter', 'show', 'dev', w.bridge, 'egress'])).toMatch(/afsteer_bridge_/);
    expect(w.leases()).toHaveLength(4);
  });

  it('without --force: refused with both pods listed (exit 2), nothing changed', () => {
    const before = tree(root);
    const r = installExe('--uninstall', '--root', root, ...nodeFlags());
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/^afsteer install: afsteer is attached to 2 pod\(s\) on this node .* give --force/);
    for (const p of pods)
      expect(r.err).toContain(`\n  default/${p.name} container ${p.id} eth0: host ${p.hostIfname}, ${p.ipv4} ${p.ipv6}`);
    expect(tree(root)).toEqual(before);
    expect(w.stateFiles()).toHaveLength(2);
    for (const p of pods) expect(afsteerFilters(p.hostIfname)).toMatch(/afsteer/);
  });

  it('with --force: afsteer off the pods, pins and state gone, the root as before; the pods keep their addresses and reach each other', async () => {
    // afsteerd's echo reflector, which it leaves attached when it stops, on the bridge (it has the node's addresses here).
    attachEchoReflector(w.pinDir, 6170, [Number(readFileSync(`/sys/class/net/${w.bridge}/ifindex`, 'utf8'))]);
    expect(sh('tc', ['filter', 'show', 'dev', w.bridge, 'ingress'])).toMatch(/afsteer_echo/);
    const r = installExe('--uninstall', '--force', '--root', root, ...nodeFlags());
    expect(r.code, r.err).toBe(0);
    for (const p of pods) expect(r.out).toContain(`detach afsteer from default/${p.name} container ${p.id}`);

    for (const p of pods) {
      expect(afsteerFilters(p.hostIfname)).not.toMatch(/afsteer/);
      expect(sh('tc', ['qdisc', 'show', 'dev', p.hostIfname])).not.toMatch(/clsact/); // afsteer created it
    }
    expect(sh('tc', ['filter', 'show', 'dev', w.bridge, 'egress'])).not.toMatch(/afsteer/);
    expect(sh('tc', ['filter', 'show', 'dev', w.bridge, 'ingress'])).not.toMatch(/afsteer/);
    expect(r.out).toContain(`detached afsteerd's echo reflector from ${w.bridge}`);
    expect(existsSync(w.pinDir)).toBe(false);
    expect(w.stateFiles()).toEqual([]);
    expect(existsSync(join(w.stateDir, 'afsteer.lock'))).toBe(false);
    expect(tree(root)).toEqual(pristine);

    for (const [i, p] of pods.entries()) {
      const other = pods[1 - i]!;
      const addrs = await w.inNs(p.ns, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addrs).toContain(p.ipv4);
      expect(addrs).toContain(p.ipv6);
      expect(await w.inNs(p.ns, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).toMatch(/ mtu 1500 /);
      for (const ip of [other.ipv4, other.ipv6]) await w.inNs(p.ns, ['ping', '-c', '2', '-i', '0.1', '-W', '2', ip]);
    }
    expect(w.leases()).toHaveLength(4); // the addresses stay the pods', and so do their leases
    expect(installExe('--uninstall', '--root', root, ...nodeFlags()).out).toMatch(/nothing to uninstall/);
  });

  it('the runtime deleting the pods later (DEL through the unchained conflist) releases every lease and leaves no port', async () => {
    for (const p of pods) {
      const del = await driver('del', p);
      expect(del.code, del.stderr).toBe(0);
    }
    expect(w.leases()).toEqual([]);
    expect(w.bridgePorts()).toEqual([]);
  });
});
