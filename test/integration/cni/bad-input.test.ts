/**
 * Hostile and careless input against the real executable: stdin, environment, config paths,
 * prevResult tampering and `afsteer steer` arguments. Each case asserts the exact CNI code, that
 * stdout is exactly one JSON object, and that the host's links, addresses, sysctls and
 * /sys/fs/bpf mounts are unchanged afterwards. The plugin's stderr is captured (runWithInput),
 * never let through to the console.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lchownSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localEndpointByAddress } from '../../../src/bpf/endpoint-map';
import { AFSTEER_BIN, announceSkip, IS_ROOT, type Run, runWithInput, sh, shQuiet, World } from '../../support/world';

announceSkip('bad input');

/** Host sysctls an ADD in the wrong namespace would write. */
const SYSCTLS = [
  'net/ipv6/conf/all/disable_ipv6',
  'net/ipv6/conf/default/disable_ipv6',
  'net/ipv6/conf/all/accept_dad',
  'net/ipv6/conf/lo/disable_ipv6',
];

/** What must not change on the host: its own links (not the veths and bridges tests make), their addresses, sysctls, bpffs mounts. */
function hostSnapshot(): unknown {
  const own = (name: string) => !/^(veth|af)/.test(name);
  const links = (JSON.parse(sh('ip', ['-j', 'link', 'show'])) as { ifname: string; mtu: number; flags: string[] }[])
    .filter((l) => own(l.ifname))
    .map((l) => `${l.ifname} ${l.mtu} ${l.flags.join(',')}`);
  const addrs = (JSON.parse(sh('ip', ['-j', 'addr', 'show'])) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[])
    .filter((l) => own(l.ifname))
    .map(
      (l) =>
        `${l.ifname} ${l.addr_info
          .map((a) => `${a.local}/${a.prefixlen}`)
          .sort()
          .join(' ')}`,
    );
  const sysctls = SYSCTLS.map((k) => `${k}=${readFileSync(`/proc/sys/${k}`, 'utf8').trim()}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / \/sys\/fs\/bpf(\/\S*)? /.test(l.split(' - ')[0] ?? ''));
  return { links: links.sort(), addrs: addrs.sort(), sysctls, mounts };
}

/** The reply is an error: exit 1 and stdout exactly one JSON object with this code. */
function expectError(r: Run, code: number, msg?: RegExp): Record<string, unknown> {
  expect(r.code, r.stdout + r.stderr).toBe(1);
  const lines = r.stdout.split('\n').filter(Boolean);
  expect(lines, r.stdout).toHaveLength(1);
  const j = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(j, r.stderr).toMatchObject({ code });
  if (msg) expect(String(j.msg)).toMatch(msg);
  return j;
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const mtuIn = async (w: World, ns: string, dev = 'eth0') =>
  Number(/ mtu (\d+) /.exec(await w.inNs(ns, ['ip', '-o', 'link', 'show', 'dev', dev]))?.[1]);

describe.skipIf(!IS_ROOT)('bad input', () => {
  let w: World;
  let list: string;
  let before: unknown;
  let seq = 0;
  const net = () => `bad-${w.id}`;
  const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: net(), ...w.afsteerConf(), ...extra });
  const envFor = (id: string, netns: string, ifname = 'eth0') => ({ CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: ifname });
  const fakePrev = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'eth0', sandbox: '/x' }],
    ips: [
      { address: '10.99.0.2/24', interface: 0 },
      { address: 'fd00:99::2/64', interface: 0 },
    ],
  };
  const pod = async (name: string) => {
    const ns = w.netns(name);
    const id = `ctr-${name}`;
    const add = await w.driver('add', list, ns, id);
    expect(add.code, add.stderr).toBe(0);
    const state = JSON.parse(readFileSync(join(w.stateDir, 'attachments', `${id}_eth0.json`), 'utf8')) as {
      hostIfindex: number;
      hostIfname: string;
      ipv4: string;
      ipv6: string;
    };
    return { ns, id, result: add.json as Record<string, unknown> & { ips: { address: string }[] }, state };
  };

  beforeAll(() => {
    w = new World();
    list = w.conflist('bad');
    before = hostSnapshot();
  });
  afterEach(() => expect(hostSnapshot()).toEqual(before));
  afterAll(() => w?.cleanup());

  describe('stdin', () => {
    it.each([
      ['truncated JSON', 6, '{"cniVersion": "1.0.0", '],
      ['an array', 6, '[1,2]'],
      ['a number', 6, '42'],
      ['null', 6, 'null'],
      ['empty', 6, ''],
      ['control bytes', 6, '\u0000\u0001\u0002'],
    ])('%s is code %i', async (_what, code, input) => {
      expectError(await w.plugin('ADD', input, envFor('c1', '/run/netns/none')), code);
    });

    it.each([
      [{ mtu: 'big' }, /mtu must be an integer between 1280 and 65535/],
      [{ name: 7 }, /name must be a non-empty string/],
      [{ stateDir: ['x'] }, /stateDir must be an absolute path/],
      [{ lockTimeoutMs: 0 }, /lockTimeoutMs must be a positive integer/],
      [{ prevResult: { ips: 'x' } }, /prevResult/],
    ])('wrong type %j is code 7 naming the key', async (extra, msg) => {
      expectError(await w.plugin('ADD', conf(extra as Record<string, unknown>), envFor('c1', '/run/netns/none')), 7, msg);
    });

    it('a 50 MB config is answered with one error object', async () => {
      const huge = JSON.stringify({ ...conf(), padding: 'x'.repeat(50 << 20) });
      expectError(await w.plugin('ADD', huge, envFor('c1', '/run/netns/none')), 7, /chained plugin/);
    });
  });

  describe('environment', () => {
    it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])('CNI_COMMAND=%s is code 4', async (verb) => {
      expectError(await w.plugin(verb, conf(), envFor('c1', '/run/netns/none')), 4, /unknown CNI_COMMAND/);
    });

    it.each([['../../etc/passwd'], ['a/b'], ['-x'], ['x'.repeat(300)]])(
      'container id %s: ADD is code 4 before anything, DEL succeeds',
      async (id) => {
        const ns = w.netns(`id${seq++}`);
        const add = await w.plugin('ADD', conf({ prevResult: fakePrev }), envFor(id, ns));
        expectError(add, 4, /CNI_CONTAINERID/);
        expect(w.stateFiles()).toEqual([]);
        const del = await w.plugin('DEL', conf(), envFor(id, ns));
        expect(del.code, del.stdout + del.stderr).toBe(0);
        expect(del.stdout).toBe('');
      },
    );

    it.each([['eth0/../x'], ['a:b'], ['x'.repeat(16)], ['e\u001b[0m']])('interface name %j is code 4', async (ifname) => {
      expectError(await w.plugin('ADD', conf({ prevResult: fakePrev }), envFor('c1', '/run/netns/none', ifname)), 4, /CNI_IFNAME/);
    });

    it('CNI_NETNS at a regular file, a directory, a FIFO or another namespace type is code 4, without hanging', async () => {
      const file = join(w.dir, 'netns-file');
      writeFileSync(file, '');
      const fifo = join(w.dir, 'netns-fifo');
      execFileSync('mkfifo', [fifo]);
      for (const p of [file, w.dir, fifo, '/proc/self/ns/mnt', '/run/netns/does-not-exist', 'relative/path']) {
        const started = Date.now();
        const r = await w.plugin('ADD', conf({ prevResult: fakePrev }), envFor('c1', p));
        expectError(r, 4, /CNI_NETNS/);
        expect(Date.now() - started).toBeLessThan(10_000);
        const check = await w.plugin('CHECK', conf({ prevResult: fakePrev }), envFor('c1', p));
        expectError(check, 4, /CNI_NETNS/);
      }
      expect(w.stateFiles()).toEqual([]);
    });

    it("ADD in the host's network namespace is code 4 and changes nothing (a host veth keeps its MTU, no filters)", async () => {
      const host = `afh${w.id}`,
        peer = `afp${w.id}`;
      sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      try {
        const prev = {
          cniVersion: '1.0.0',
          interfaces: [{ name: host, sandbox: '/proc/self/ns/net' }],
          ips: [
            { address: '10.99.1.2/24', interface: 0 },
            { address: 'fd00:99:1::2/64', interface: 0 },
          ],
        };
        for (const p of ['/proc/self/ns/net', `/proc/${process.pid}/ns/net`]) {
          expectError(await w.plugin('ADD', conf({ prevResult: prev }), envFor('c-host', p, host)), 4, /host's network namespace/);
        }
        expect(sh('ip', ['-o', 'link', 'show', 'dev', host])).toMatch(/ mtu 1500 /);
        expect(sh('tc', ['filter', 'show', 'dev', peer, 'ingress'])).toBe('');
        expect(w.stateFiles()).toEqual([]);
      } finally {
        shQuiet('ip', ['link', 'del', host]);
      }
    });

    it("ADD run inside a node namespace refuses that namespace as the pod's (its own namespace is the host's)", async () => {
      const node = w.netns(`node${seq++}`);
      await w.inNs(node, ['ip', 'link', 'add', 'h0', 'type', 'veth', 'peer', 'name', 'p0']);
      const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'p0', sandbox: node }], ips: [{ address: '10.99.2.2/24', interface: 0 }] };
      const r = await runWithInput(
        'nsenter',
        [`--net=${node}`, AFSTEER_BIN],
        JSON.stringify(conf({ prevResult: prev, allowSingleStack: true })),
        {
          PATH: process.env.PATH,
          CNI_COMMAND: 'ADD',
          CNI_PATH: w.cniPath,
          ...envFor('c-node', node, 'p0'),
        },
      );
      expectError(r, 4, /host's network namespace/);
      expect(await w.inNs(node, ['ip', '-o', 'link', 'show', 'dev', 'p0'])).toMatch(/ mtu 1500 /);
      expect(await w.inNs(node, ['cat', '/proc/sys/net/ipv6/conf/p0/accept_dad'])).not.toBe('0\n');
    });
  });

  describe('config paths', () => {
    it('a pinDir that leaves /sys/fs/bpf through ".." is code 7 and mounts nothing (STATUS and ADD)', async () => {
      const pinDir = '/sys/fs/bpf/../../../tmp/x/pd';
      expectError(await w.plugin('STATUS', { ...conf(), cniVersion: '1.1.0', pinDir }), 7, /pinDir must not contain/);
      expectError(await w.plugin('ADD', conf({ pinDir, prevResult: fakePrev }), envFor('c1', '/run/netns/none')), 7, /pinDir/);
      expect(existsSync('/tmp/x/pd')).toBe(false);
    });

    it('a pinDir under /sys/fs/bpf that is a link out of bpffs: STATUS code 50, ADD code 7 before touching the pod; nothing mounted', async () => {
      const outside = join(w.dir, 'not-bpffs');
      mkdirSync(outside);
      const link = `/sys/fs/bpf/afsteer-badlink-${w.id}`;
      symlinkSync(outside, link);
      try {
        expectError(await w.plugin('STATUS', { ...conf(), cniVersion: '1.1.0', pinDir: `${link}/pd` }), 50, /not on a bpf filesystem/);
        const p = await pod(`pl${seq++}`);
        const mtu = await mtuIn(w, p.ns);
        await w.inNs(p.ns, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1500']);
        const r = await w.plugin('ADD', conf({ pinDir: `${link}/pd`, prevResult: p.result }), envFor(`${p.id}-x`, p.ns));
        expectError(r, 7, /pinDir is unusable: .*not on a bpf filesystem/);
        expect(await mtuIn(w, p.ns)).toBe(1500);
        await w.inNs(p.ns, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', String(mtu)]);
        expect(readdirSync(outside)).toEqual([]);
      } finally {
        rmSync(link, { force: true });
      }
    });

    it('logFile outside /var/log and the stateDir (/etc/passwd) is code 7 and the file is untouched', async () => {
      const h = sha('/etc/passwd');
      expectError(await w.plugin('DEL', conf({ logFile: '/etc/passwd' }), envFor('c1', '')), 7, /logFile must be under \/var\/log/);
      expect(sha('/etc/passwd')).toBe(h);
    });

    it('logFile as a symlink (to a root file or dangling) is code 7; the target is neither written nor created', async () => {
      mkdirSync(w.stateDir, { recursive: true, mode: 0o700 });
      const victim = join(w.dir, 'victim');
      writeFileSync(victim, 'root:x:0:0\n');
      const link = join(w.stateDir, `log-link-${seq++}`);
      symlinkSync(victim, link);
      const dangling = join(w.stateDir, `log-dangling-${seq++}`);
      symlinkSync(join(w.dir, 'created-by-afsteer'), dangling);
      for (const logFile of [link, dangling]) {
        expectError(await w.plugin('DEL', conf({ logFile }), envFor('c1', '')), 7, /is a symbolic link/);
      }
      expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0\n');
      expect(existsSync(join(w.dir, 'created-by-afsteer'))).toBe(false);
    });

    it('logFile at a FIFO is code 7 at once, and the node lock is not left held', async () => {
      mkdirSync(w.stateDir, { recursive: true, mode: 0o700 });
      const fifo = join(w.stateDir, `log-fifo-${seq++}`);
      execFileSync('mkfifo', [fifo]);
      const started = Date.now();
      expectError(await w.plugin('DEL', conf({ logFile: fifo }), envFor('c1', '')), 7, /FIFO/);
      expect(Date.now() - started).toBeLessThan(10_000);
      const del = await w.plugin('DEL', conf({ lockTimeoutMs: 2000 }), envFor('c1', ''));
      expect(del.code, del.stdout + del.stderr).toBe(0);
    });

    it('stateDir with a NUL byte, or pointing at a file, is code 7', async () => {
      expectError(await w.plugin('DEL', conf({ stateDir: '/tmp/a\u0000b' }), envFor('c1', '')), 7, /stateDir must not contain NUL/);
      const file = join(w.dir, 'state-file');
      writeFileSync(file, '');
      expectError(await w.plugin('DEL', conf({ stateDir: file }), envFor('c1', '')), 7, /is not a directory/);
    });

    it('a stateDir that is a symlink, or under one planted by another user, is code 7; nothing is created at the target', async () => {
      const target = join(w.dir, `elsewhere-${seq++}`);
      mkdirSync(target, { mode: 0o700 });
      const direct = join(w.dir, `state-link-${seq++}`);
      symlinkSync(target, direct);
      expectError(await w.plugin('DEL', conf({ stateDir: direct }), envFor('c1', '')), 7, /is a symbolic link/);
      const planted = join(w.dir, `planted-${seq++}`);
      symlinkSync(target, planted);
      lchownSync(planted, 65534, 65534);
      expectError(
        await w.plugin('DEL', conf({ stateDir: join(planted, 'state') }), envFor('c1', '')),
        7,
        /symbolic link owned by uid 65534/,
      );
      expect(readdirSync(target)).toEqual([]);
    });

    it('afsteer.lock as a symlink or a FIFO is code 7 at once; the symlink target is not created', async () => {
      const sd = join(w.dir, `state-${seq++}`);
      mkdirSync(sd, { mode: 0o700 });
      symlinkSync(join(w.dir, 'lock-target'), join(sd, 'afsteer.lock'));
      expectError(await w.plugin('DEL', conf({ stateDir: sd }), envFor('c1', '')), 7, /afsteer\.lock is a symbolic link/);
      expect(existsSync(join(w.dir, 'lock-target'))).toBe(false);
      const sd2 = join(w.dir, `state-${seq++}`);
      mkdirSync(sd2, { mode: 0o700 });
      execFileSync('mkfifo', [join(sd2, 'afsteer.lock')]);
      const started = Date.now();
      expectError(
        await w.plugin('GC', { ...conf({ stateDir: sd2 }), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }, {}),
        7,
        /afsteer\.lock is a FIFO/,
      );
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('a state file that is a symlink is never read or written through', async () => {
      const sd = join(w.dir, `state-${seq++}`);
      mkdirSync(join(sd, 'attachments'), { recursive: true, mode: 0o700 });
      const victim = join(w.dir, `victim-${seq++}`);
      writeFileSync(victim, 'secret\n');
      symlinkSync(victim, join(sd, 'attachments', 'c1_eth0.json'));
      const del = await w.plugin('DEL', conf({ stateDir: sd }), envFor('c1', ''));
      expect(del.code, del.stdout + del.stderr).toBe(0);
      expect(del.stderr).toMatch(/is a symbolic link/);
      expect(readFileSync(victim, 'utf8')).toBe('secret\n');
    });
  });

  describe('prevResult tampering and namespaces', () => {
    it("a prevResult claiming another pod's address is code 7, whether or not the address was put on the interface; the owner keeps it", async () => {
      const a = await pod(`ta${seq++}`);
      const b = await pod(`tb${seq++}`);
      const bV4 = b.result.ips.find((i) => !i.address.includes(':'))!.address;
      const claimB = { ...a.result, ips: a.result.ips.map((i) => (i.address.includes(':') ? i : { ...i, address: bV4 })) };
      expectError(await w.plugin('ADD', conf({ prevResult: claimB }), envFor(a.id, a.ns)), 7, /does not have it/);
      await w.inNs(a.ns, ['ip', 'addr', 'add', bV4, 'dev', 'eth0']);
      expectError(await w.plugin('ADD', conf({ prevResult: claimB }), envFor(a.id, a.ns)), 7, /another pod on this node owns it/);
      expect(localEndpointByAddress(w.pinDir, b.state.ipv4)).toBe(b.state.hostIfindex);
      expect(localEndpointByAddress(w.pinDir, a.state.ipv4)).toBe(a.state.hostIfindex);
      for (const p of [a, b]) {
        const check = await w.driver('check', list, p.ns, p.id);
        expect(check.code, check.stdout + check.stderr).toBe(0);
      }
    });

    it('a prevResult whose addresses are all on host-side interfaces is code 7', async () => {
      const p = await pod(`th${seq++}`);
      const hostOnly = {
        cniVersion: '1.0.0',
        interfaces: [{ name: w.bridge }, { name: p.state.hostIfname }],
        ips: p.result.ips.map((i, n) => ({ address: i.address, interface: n % 2 })),
      };
      expectError(await w.plugin('ADD', conf({ prevResult: hostOnly }), envFor(`${p.id}-h`, p.ns)), 7, /assigns no address to eth0/);
      expect(w.stateFiles()).not.toContain(`${p.id}-h_eth0.json`);
    });

    it("DEL acts on the namespace recorded at ADD: another pod's CNI_NETNS is left alone", async () => {
      const a = await pod(`da${seq++}`);
      const b = await pod(`db${seq++}`);
      expect(await mtuIn(w, a.ns)).toBe(1460);
      const del = await w.plugin('DEL', conf(), envFor(b.id, a.ns));
      expect(del.code, del.stdout + del.stderr).toBe(0);
      expect(await mtuIn(w, a.ns)).toBe(1460);
      expect(await mtuIn(w, b.ns)).toBe(1500);
      const check = await w.driver('check', list, a.ns, a.id);
      expect(check.code, check.stdout + check.stderr).toBe(0);
    });

    it('GC without cni.dev/valid-attachments removes nothing', async () => {
      const p = await pod(`gc${seq++}`);
      const files = w.stateFiles();
      const gc = await w.plugin('GC', { ...conf(), cniVersion: '1.1.0' }, {});
      expect(gc.code, gc.stdout + gc.stderr).toBe(0);
      expect(gc.stderr).toMatch(/none removed/);
      expect(w.stateFiles()).toEqual(files);
      expect(sh('tc', ['filter', 'show', 'dev', p.state.hostIfname, 'ingress'])).toMatch(/afsteer/);
    });
  });

  describe('afsteer steer and show arguments', () => {
    const steer = (...args: string[]) =>
      runWithInput(AFSTEER_BIN, ['steer', ...args, '--pin-dir', w.pinDir, '--state-dir', w.stateDir], '', { PATH: process.env.PATH });

    it.each(['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'IPV6'])(
      'set LOCAL REMOTE %s is refused with exit 2',
      async (fam) => {
        const r = await steer('set', '10.0.0.1', '10.0.0.2', fam);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/family must be ipv4, ipv6 or native/);
      },
    );

    it.each([
      ['remote', 'add', '10.98.0.1', 'fe80::1%eth0'],
      ['remote', 'add', '10.98.0.1/8', 'fd00::1'],
      ['remote', 'del', 'fe80::1%eth0'],
      ['set', '10.0.0.1', 'fd00::1%1', 'ipv6'],
    ])('zone-scoped or prefixed addresses are refused: %s %s %s %s', async (...args) => {
      const r = await steer(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/without zone or prefix/);
    });

    it('a --state-dir that is a planted symlink is refused', async () => {
      const link = join(w.dir, `steer-link-${seq++}`);
      symlinkSync(w.dir, link);
      const r = await runWithInput(
        AFSTEER_BIN,
        ['steer', 'clear', '10.0.0.1', '10.0.0.2', '--pin-dir', w.pinDir, '--state-dir', link],
        '',
        { PATH: process.env.PATH },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/is a symbolic link/);
    });

    it('afsteer show escapes terminal control characters in pod names', async () => {
      const ns = w.netns(`esc${seq++}`);
      const add = await w.driver(
        'add',
        list,
        ns,
        `ctr-esc${seq}`,
        'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=evil\u001b[2J\u0007',
      );
      expect(add.code, add.stderr).toBe(0);
      const r = await runWithInput(AFSTEER_BIN, ['show', '--pin-dir', w.pinDir, '--state-dir', w.stateDir], '', { PATH: process.env.PATH });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('default/evil\\x1b[2J\\x07');
      // eslint-disable-next-line no-control-regex
      expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    });
  });
});
