import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chainConflist, InstallRefusal, parsePeer, primaryConfName, unchainConflist } from '../../../src/install/plan';
import { parseDaemonConfig } from '../../../src/negotiator/daemon-config';
import { BRIDGE_LIST, cleanupScratch, install, scratch, tree } from '../../support/install-tree';

afterEach(cleanupScratch);

describe('choosing and editing the conflist (pure)', () => {
  it('picks the lexically first CNI config file, as libcni/go-cni sort them, ignoring hidden and other files', () => {
    expect(primaryConfName(['99-x.conflist', '10-b.conflist', '05-a.conf', '.01-tmp.conflist', '00-readme.txt'])).toBe('05-a.conf');
    expect(primaryConfName(['Z.conflist', 'a.conflist'])).toBe('Z.conflist'); // byte order: upper case first
    expect(primaryConfName(['x.txt'])).toBeUndefined();
  });

  it('appends afsteer last, keeps every key, plugin and the indentation; idempotent; unchain reverses', () => {
    const c = chainConflist('10-x.conflist', BRIDGE_LIST, { logLevel: 'debug' });
    const doc = JSON.parse(c.text!);
    expect(doc.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', 'afsteer']);
    expect(doc.plugins[2]).toEqual({ type: 'afsteer', logLevel: 'debug' });
    expect(doc.someRuntimeKey).toEqual({ keep: [1, 2] });
    expect(c.text).toMatch(/\n {4}"cniVersion"/);
    expect(chainConflist('10-x.conflist', c.text!, {}).already).toEqual({ type: 'afsteer', logLevel: 'debug' });
    expect(JSON.parse(unchainConflist(c.text!)!)).toEqual(JSON.parse(BRIDGE_LIST));
  });

  it('chains after macvlan, ipvlan and host-device; refuses a list without a plugin it chains after, invalid JSON, a single-plugin .conf', () => {
    for (const type of ['macvlan', 'ipvlan', 'host-device']) {
      const list = JSON.stringify({ cniVersion: '1.0.0', name: 'm', plugins: [{ type, master: 'eth0' }] });
      expect(JSON.parse(chainConflist('a.conflist', list, {}).text!).plugins.map((p: { type: string }) => p.type)).toEqual([
        type,
        'afsteer',
      ]);
    }
    const cil = JSON.stringify({ cniVersion: '1.0.0', name: 'c', plugins: [{ type: 'cilium-cni' }] });
    expect(() => chainConflist('a.conflist', cil, {})).toThrow(/no plugin afsteer chains after.*cilium-cni/);
    expect(chainConflist('a.conflist', cil, {}, ['cilium-cni']).text).toMatch(/afsteer/);
    expect(() => chainConflist('a.conflist', '{"plugins": [', {})).toThrow(InstallRefusal);
    expect(() => chainConflist('a.conf', '{"type":"bridge"}', {})).toThrow(/single-plugin \.conf/);
  });

  it('parses --peer forms', () => {
    expect(parsePeer('192.0.2.1')).toEqual({ ipv4: '192.0.2.1' });
    expect(parsePeer('192.0.2.1:7000')).toEqual({ ipv4: '192.0.2.1', port: 7000 });
    expect(parsePeer('2001:db8::1')).toEqual({ ipv6: '2001:db8::1' });
    expect(parsePeer('192.0.2.1,[2001:db8::1]:6171')).toEqual({ ipv4: '192.0.2.1', ipv6: '2001:db8::1', port: 6171 });
    expect(() => parsePeer('host.example')).toThrow(/not an IPv4 or IPv6/);
  });
});

describe('afsteer install against a scratch root', () => {
  it('installs, changes nothing when re-run, and --uninstall leaves the tree byte for byte as before', async () => {
    const { root, bin } = scratch();
    writeFileSync(join(root, 'etc/cni/net.d/10-containerd-net.conflist'), BRIDGE_LIST);
    writeFileSync(join(root, 'etc/cni/net.d/20-other.conflist'), '{"plugins":[{"type":"macvlan"}]}');
    const before = tree(root);

    const dry = await install('--root', root, '--bin', bin, '--dry-run', '--node-name', 'node-1');
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toMatch(/dry run: 7 change/);
    expect(tree(root)).toEqual(before);

    const r = await install('--root', root, '--bin', bin, '--node-name', 'node-1', '--peer', '192.0.2.12,2001:db8::12', '--multicast');
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(root, 'opt/cni/bin/afsteer'))).toEqual(readFileSync(bin));
    expect(statSync(join(root, 'opt/cni/bin/afsteer')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(root, 'opt/cni/bin/afsteerd'))).toBe('afsteer');
    expect(readlinkSync(join(root, 'usr/local/bin/afsteerd'))).toBe('/opt/cni/bin/afsteer');
    const list = JSON.parse(readFileSync(join(root, 'etc/cni/net.d/10-containerd-net.conflist'), 'utf8'));
    expect(list.plugins.at(-1)).toEqual({ type: 'afsteer' });
    const key = join(root, 'etc/afsteer/cluster.key');
    expect(statSync(key).size).toBe(32);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const cfg = parseDaemonConfig(readFileSync(join(root, 'etc/afsteer/afsteerd.json'), 'utf8'));
    expect(cfg.nodeName).toBe('node-1');
    expect(cfg.discovery.static).toEqual([{ ipv4: '192.0.2.12', ipv6: '2001:db8::12' }]);
    expect(cfg.discovery.multicast).toBeTruthy();
    expect(readFileSync(join(root, 'etc/systemd/system/afsteerd.service'), 'utf8')).toMatch(
      /ExecStart=\/usr\/local\/bin\/afsteerd run --config \/etc\/afsteer\/afsteerd.json/,
    );
    expect(JSON.parse(readFileSync(join(root, 'var/lib/afsteer/install.json'), 'utf8')).actions).toHaveLength(7);

    const installed = tree(root);
    const again = await install('--root', root, '--bin', bin, '--node-name', 'node-1');
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/nothing to change/);
    expect(tree(root)).toEqual(installed);

    const un = await install('--uninstall', '--root', root);
    expect(un.code, un.err).toBe(0);
    expect(tree(root)).toEqual(before);
    expect((await install('--uninstall', '--root', root)).out).toMatch(/nothing to uninstall/);
  });

  it('a new build replaces the executable atomically and uninstall still restores the original state', async () => {
    const { root, bin } = scratch();
    writeFileSync(join(root, 'etc/cni/net.d/10-x.conflist'), BRIDGE_LIST);
    const before = tree(root);
    expect((await install('--root', root, '--bin', bin, '--cni-only')).code).toBe(0);
    writeFileSync(bin, 'a newer build\n');
    const r = await install('--root', root, '--bin', bin, '--cni-only');
    expect(r.out).toMatch(/replace .*opt\/cni\/bin\/afsteer/);
    expect(readFileSync(join(root, 'opt/cni/bin/afsteer'), 'utf8')).toBe('a newer build\n');
    expect(readdirSync(join(root, 'opt/cni/bin')).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(existsSync(join(root, 'etc/afsteer'))).toBe(false); // --cni-only: no key, config or unit
    expect((await install('--uninstall', '--root', root)).code).toBe(0);
    expect(tree(root)).toEqual(before);
  });

  it('refuses with exit 2 and changes nothing: no conflist, no veth plugin, invalid JSON', async () => {
    const { root, bin } = scratch();
    const none = await install('--root', root, '--bin', bin, '--node-name', 'n');
    expect(none.code).toBe(2);
    expect(none.err.trim().split('\n')).toHaveLength(1);
    expect(none.err).toMatch(/no CNI config .* --write-conflist/);
    writeFileSync(join(root, 'etc/cni/net.d/10-m.conflist'), '{"cniVersion":"1.0.0","name":"m","plugins":[{"type":"cilium-cni"}]}');
    const before = tree(root);
    const mac = await install('--root', root, '--bin', bin, '--node-name', 'n');
    expect([mac.code, mac.err]).toEqual([2, expect.stringMatching(/no plugin afsteer chains after/)]);
    writeFileSync(join(root, 'etc/cni/net.d/05-bad.conflist'), '{ "plugins": [ ');
    const bad = await install('--root', root, '--bin', bin, '--node-name', 'n');
    expect([bad.code, bad.err]).toEqual([2, expect.stringMatching(/05-bad.conflist is not valid JSON/)]);
    rmSync(join(root, 'etc/cni/net.d/05-bad.conflist'));
    expect(tree(root)).toEqual(before);
  });

  it('--write-conflist writes the example bridge conflist when there is none; uninstall removes it', async () => {
    const { root, bin } = scratch();
    const before = tree(root);
    const r = await install('--root', root, '--bin', bin, '--write-conflist', '--node-name', 'n');
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(root, 'etc/cni/net.d/10-afsteer.conflist'), 'utf8')).toBe(
      JSON.stringify(JSON.parse(readFileSync('conf/10-afsteer.conflist', 'utf8')), null, 2) + '\n',
    );
    expect((await install('--uninstall', '--root', root)).code).toBe(0);
    expect(tree(root)).toEqual(before);
  });

  it('a key it did not create stays; --key installs the given one', async () => {
    const { root, bin } = scratch();
    writeFileSync(join(root, 'etc/cni/net.d/10-x.conflist'), BRIDGE_LIST);
    mkdirSync(join(root, 'etc/afsteer'));
    writeFileSync(join(root, 'etc/afsteer/cluster.key'), Buffer.alloc(32, 7), { mode: 0o600 });
    expect((await install('--root', root, '--bin', bin, '--node-name', 'n')).code).toBe(0);
    expect(readFileSync(join(root, 'etc/afsteer/cluster.key'))).toEqual(Buffer.alloc(32, 7));
    expect((await install('--uninstall', '--root', root)).code).toBe(0);
    expect(readFileSync(join(root, 'etc/afsteer/cluster.key'))).toEqual(Buffer.alloc(32, 7));

    const given = join(root, '..', 'given.key');
    writeFileSync(given, Buffer.alloc(40, 9), { mode: 0o600 });
    expect((await install('--root', root, '--bin', bin, '--node-name', 'n', '--key', given)).code).toBe(0);
    expect(readFileSync(join(root, 'etc/afsteer/cluster.key'))).toEqual(Buffer.alloc(40, 9));
    expect((await install('--uninstall', '--root', root)).code).toBe(0);
    expect(readFileSync(join(root, 'etc/afsteer/cluster.key'))).toEqual(Buffer.alloc(32, 7)); // the one it replaced, back
    chmodSync(given, 0o644);
    expect((await install('--root', root, '--bin', bin, '--key', given)).err).toMatch(/--key: .*chmod 600/);
  });

  it('--identity installs the node identity (node.key 0600) instead of a cluster key, and the config names it; another node’s is refused', async () => {
    const { root, bin } = scratch();
    writeFileSync(join(root, 'etc/cni/net.d/10-x.conflist'), BRIDGE_LIST);
    const d = dirname(root);
    const ca = join(d, 'ca');
    const id = join(d, 'id-n');
    const { runIdentity } = await import('../../../src/cli/identity');
    expect(await runIdentity(['init', '--out', ca], () => {})).toBe(0);
    const issue = ['issue', '--authority', ca, '--node', 'n', '--pod-cidr', '10.9.0.0/24', '--address', '192.0.2.9', '--out', id];
    expect(await runIdentity(issue, () => {})).toBe(0);
    expect((await install('--root', root, '--bin', bin, '--node-name', 'other', '--identity', id)).err).toMatch(
      /certificate is for n, not this node/,
    );
    expect((await install('--root', root, '--bin', bin, '--node-name', 'n', '--identity', id, '--key', id)).err).toMatch(/not both/);
    expect((await install('--root', root, '--bin', bin, '--node-name', 'n', '--identity', id)).code).toBe(0);
    expect(statSync(join(root, 'etc/afsteer/identity/node.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(root, 'etc/afsteer/identity/node.cert'))).toEqual(readFileSync(join(id, 'node.cert')));
    expect(existsSync(join(root, 'etc/afsteer/cluster.key'))).toBe(false);
    const cfg = JSON.parse(readFileSync(join(root, 'etc/afsteer/afsteerd.json'), 'utf8'));
    expect(cfg).toMatchObject({ nodeName: 'n', identity: '/etc/afsteer/identity' });
    expect(cfg.keyFile).toBeUndefined();
    expect((await install('--uninstall', '--root', root)).code).toBe(0);
    expect(existsSync(join(root, 'etc/afsteer/identity/node.key'))).toBe(false);
  });

  it('a file where a directory must go is refused before anything is written', async () => {
    const { root, bin } = scratch();
    writeFileSync(join(root, 'etc/cni/net.d/10-x.conflist'), BRIDGE_LIST);
    writeFileSync(join(root, 'etc/systemd'), 'a file where a directory must go\n');
    const before = tree(root);
    const r = await install('--root', root, '--bin', bin, '--node-name', 'n');
    expect([r.code, r.err]).toEqual([2, `afsteer install: ${root}/etc/systemd is a regular file, not a directory\n`]);
    expect(tree(root)).toEqual(before);
  });

  it('a bad node name or flag is refused before anything is written', async () => {
    const { root, bin } = scratch();
    writeFileSync(join(root, 'etc/cni/net.d/10-x.conflist'), BRIDGE_LIST);
    const before = tree(root);
    expect((await install('--root', root, '--bin', bin, '--node-name', 'bad name')).err).toMatch(/nodeName/);
    expect((await install('--root', root, '--bin', bin, '--no-such-flag')).code).toBe(2);
    expect(tree(root)).toEqual(before);
  });
});
