/**
 * `afsteer install` against hostile scratch roots, as a local attacker or a careless operator
 * leaves them: links planted at temp names, directory links inside --root, forged install
 * records, FIFOs, sockets and devices where files go, keys that are someone else's, and
 * directories others can write. Each is refused with one line naming the path (exit 2), or
 * ignored, and nothing outside the root is read through, written or removed. Cases that need
 * another user's file (chown) or a device (mknod) run as root only and say so otherwise.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BRIDGE_LIST, cleanupScratch, install, type Scratch, scratch, tree } from '../../support/install-tree';

const IS_ROOT = process.getuid?.() === 0;
if (!IS_ROOT) console.warn('install-hostile: the chown and mknod cases need root and are skipped');

const helpers: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const h of helpers.splice(0)) h.kill('SIGKILL');
  for (const s of servers.splice(0)) s.close();
  cleanupScratch();
});

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A scratch root with a bridge conflist as its primary CNI config. */
function withConflist(): Scratch & { conflist: string } {
  const s = scratch();
  const conflist = join(s.root, 'etc/cni/net.d/10-x.conflist');
  writeFileSync(conflist, BRIDGE_LIST);
  return { ...s, conflist };
}

/** Both trees (the root and the place beside it), to compare before and after. */
const both = (s: Scratch) => ({ root: tree(s.root), outside: tree(s.outside) });

/** A FIFO at path. */
const mkfifo = (path: string): void => void execFileSync('mkfifo', ['-m', '600', path]);

/**
 * Opens fifo for writing after a while, so that a reader the installer should never have opened
 * gets end-of-file instead of hanging the test run (before the fix: a wrong answer, not a hang).
 */
function unblockLater(fifo: string): void {
  helpers.push(spawn('sh', ['-c', `sleep 2; : > '${fifo}'`], { stdio: 'ignore' }));
}

/** A listening unix socket at path. */
async function socketAt(path: string): Promise<void> {
  const srv = createServer();
  servers.push(srv);
  await new Promise<void>((resolve) => srv.listen(path, resolve));
}

/** Expects a refusal: exit 2, one line on stderr matching re. */
function expectRefused(r: { code: number; err: string }, re: RegExp): void {
  expect(r.err.trimEnd().split('\n'), r.err).toHaveLength(1);
  expect([r.code, r.err]).toEqual([2, expect.stringMatching(re)]);
}

describe('temp files are created exclusively, never through a planted link (defect 3)', () => {
  it('a link planted at the old temp names of the record and the conflist is never written through', async () => {
    const s = withConflist();
    const victim = join(s.outside, 'victim');
    writeFileSync(victim, 'precious\n');
    // The names the installer used to write to: .NAME.afsteer-install.<pid>.tmp, opened without O_EXCL.
    mkdirSync(join(s.root, 'var/lib/afsteer'), { recursive: true, mode: 0o700 });
    symlinkSync(victim, join(s.root, `var/lib/afsteer/.install.json.afsteer-install.${process.pid}.tmp`));
    const r = await install('--root', s.root, '--bin', s.bin, '--cni-only');
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(join(s.root, 'var/lib/afsteer/install.json')).isFile()).toBe(true);

    // Uninstall writes the conflist without afsteer's entry to a temp file when the conflist changed since.
    const chained = JSON.parse(readFileSync(s.conflist, 'utf8'));
    chained.someRuntimeKey = { changed: true };
    writeFileSync(s.conflist, JSON.stringify(chained, null, 4));
    symlinkSync(victim, join(s.root, `etc/cni/net.d/.10-x.conflist.afsteer-install.${process.pid}.tmp`));
    const un = await install('--uninstall', '--root', s.root);
    expect(un.code, un.err).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(s.conflist).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(s.conflist, 'utf8')).plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
  });
});

describe('directory links inside --root are refused, never followed (defect 4)', () => {
  it.each(['etc/afsteer', 'opt/cni/bin', 'var/lib/afsteer', 'etc/systemd', 'etc'])(
    '%s as a link to a directory outside the root',
    async (dir) => {
      const s = withConflist();
      const real = join(s.outside, 'real');
      if (dir === 'etc') renameSync(join(s.root, 'etc'), real);
      else mkdirSync(real, { mode: 0o755 });
      mkdirSync(join(s.root, dir, '..'), { recursive: true });
      symlinkSync(real, join(s.root, dir));
      const before = both(s);
      const r = await install('--root', s.root, '--bin', s.bin, '--node-name', 'n');
      expectRefused(r, new RegExp(`^afsteer install: ${s.root}/${dir} is a symbolic link: refused, never followed`));
      expect(both(s)).toEqual(before);
    },
  );

  it('a directory swapped for a link after install: uninstall refuses, removes nothing outside', async () => {
    const s = withConflist();
    expect((await install('--root', s.root, '--bin', s.bin, '--node-name', 'n')).code).toBe(0);
    // The same files, now outside, reached through a link where etc/afsteer was.
    renameSync(join(s.root, 'etc/afsteer'), join(s.outside, 'afsteer'));
    symlinkSync(join(s.outside, 'afsteer'), join(s.root, 'etc/afsteer'));
    const before = both(s);
    expectRefused(await install('--uninstall', '--root', s.root), /etc\/afsteer is a symbolic link/);
    expect(both(s)).toEqual(before);
  });

  it('--root itself as a link is refused', async () => {
    const s = withConflist();
    symlinkSync(s.root, join(s.dir, 'root-link'));
    expectRefused(await install('--root', join(s.dir, 'root-link'), '--bin', s.bin, '--cni-only'), /root-link is a symbolic link/);
  });
});

describe('uninstall follows only what the installer could have written (defect 5)', () => {
  /** Installs (--cni-only), then rewrites install.json with edit; returns the scratch. */
  async function forged(edit: (rec: { actions: Record<string, unknown>[]; dirs: string[] }, s: Scratch) => void): Promise<Scratch> {
    const s = withConflist();
    expect((await install('--root', s.root, '--bin', s.bin, '--cni-only')).code).toBe(0);
    const p = join(s.root, 'var/lib/afsteer/install.json');
    const rec = JSON.parse(readFileSync(p, 'utf8'));
    edit(rec, s);
    writeFileSync(p, JSON.stringify(rec));
    return s;
  }

  it.each([
    [
      'a path ../../x outside the root',
      (rec: { actions: Record<string, unknown>[] }, s: Scratch) => {
        writeFileSync(join(s.outside, 'x'), 'outside\n');
        rec.actions.push({ path: '../outside/x', kind: 'file', sha256: sha('outside\n'), before: 'absent' });
      },
      /action 4 \("\.\.\/outside\/x"\): the path has an empty, '\.' or '\.\.' component/,
    ],
    [
      'a backup ../../y from outside the root',
      (rec: { actions: Record<string, unknown>[] }, s: Scratch) => {
        writeFileSync(join(s.outside, 'y'), 'outside\n');
        rec.actions[0]!.before = { backup: '../outside/y' };
      },
      /its backup must be var\/lib\/afsteer\/install-backup\/opt\/cni\/bin\/afsteer/,
    ],
    [
      'an absolute path',
      (rec: { actions: Record<string, unknown>[] }, s: Scratch) => {
        writeFileSync(join(s.outside, 'z'), 'outside\n');
        rec.actions.push({ path: join(s.outside, 'z'), kind: 'file', sha256: sha('outside\n'), before: 'absent' });
      },
      /is absolute/,
    ],
    [
      'a file inside the root the installer never writes',
      (rec: { actions: Record<string, unknown>[] }, s: Scratch) => {
        writeFileSync(join(s.root, 'etc/passwd'), 'root:x:0:0\n');
        rec.actions.push({ path: 'etc/passwd', kind: 'file', sha256: sha('root:x:0:0\n'), before: 'absent' });
      },
      /"etc\/passwd"\): not a path the installer writes/,
    ],
    [
      'a hidden file in the CNI config dir',
      (rec: { actions: Record<string, unknown>[] }) => {
        rec.actions.push({ path: 'etc/cni/net.d/.x.conflist', kind: 'file', sha256: sha(''), before: 'absent', conflist: true });
      },
      /not a path the installer writes/,
    ],
    [
      'a directory .. to remove',
      (rec: { dirs: string[] }) => {
        rec.dirs.push('..');
      },
      /directory "\.\.": not one the installer creates/,
    ],
    [
      'a directory it never creates',
      (rec: { dirs: string[] }) => {
        rec.dirs.push('home');
      },
      /directory "home": not one the installer creates/,
    ],
  ])('refuses %s, touching nothing', async (_what, edit, re) => {
    const s = await forged(edit);
    const before = both(s);
    expectRefused(await install('--uninstall', '--root', s.root), re);
    expect(both(s)).toEqual(before);
  });

  it('a record that is not valid JSON, or too large, is refused', async () => {
    const s = withConflist();
    mkdirSync(join(s.root, 'var/lib/afsteer'), { recursive: true, mode: 0o700 });
    writeFileSync(join(s.root, 'var/lib/afsteer/install.json'), '{"version": 1, ');
    expectRefused(await install('--uninstall', '--root', s.root), /install\.json is not valid JSON/);
    writeFileSync(join(s.root, 'var/lib/afsteer/install.json'), ' '.repeat((1 << 20) + 1));
    expectRefused(await install('--uninstall', '--root', s.root), /install\.json is 1048577 bytes, more than the 1048576 accepted/);
  });
});

describe('FIFOs, sockets and devices where files go: refused at once, never opened (defect 6)', () => {
  it('a FIFO as the primary conflist', async () => {
    const s = scratch();
    const fifo = join(s.root, 'etc/cni/net.d/10-x.conflist');
    mkfifo(fifo);
    unblockLater(fifo);
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /10-x\.conflist is a FIFO, not a regular file/);
  });

  it('a link to a FIFO as the primary conflist', async () => {
    const s = scratch();
    const fifo = join(s.outside, 'fifo');
    mkfifo(fifo);
    unblockLater(fifo);
    symlinkSync(fifo, join(s.root, 'etc/cni/net.d/10-x.conflist'));
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /10-x\.conflist is a symbolic link/);
  });

  it('a socket as the primary conflist', async () => {
    const s = scratch();
    await socketAt(join(s.root, 'etc/cni/net.d/10-x.conflist'));
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /10-x\.conflist is a socket, not a regular file/);
  });

  it.skipIf(!IS_ROOT)('a device as the primary conflist (root: mknod)', async () => {
    const s = scratch();
    execFileSync('mknod', [join(s.root, 'etc/cni/net.d/10-x.conflist'), 'c', '1', '3']);
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /10-x\.conflist is a device, not a regular file/);
  });

  it('a FIFO as install.json: install and uninstall both refuse', async () => {
    const s = withConflist();
    mkdirSync(join(s.root, 'var/lib/afsteer'), { recursive: true, mode: 0o700 });
    const fifo = join(s.root, 'var/lib/afsteer/install.json');
    mkfifo(fifo);
    unblockLater(fifo);
    const before = both(s);
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /install\.json is a FIFO, not a regular file/);
    unblockLater(fifo);
    expectRefused(await install('--uninstall', '--root', s.root), /install\.json is a FIFO, not a regular file/);
    expect(both(s)).toEqual(before);
  });

  it.each([
    ['key', 'cluster.key', /cluster\.key.*a FIFO, not a regular file/],
    ['config', 'afsteerd.json', /afsteerd\.json is a FIFO, not a regular file/],
  ])('a FIFO %s is refused, not silently kept', async (_what, name, re) => {
    const s = withConflist();
    mkdirSync(join(s.root, 'etc/afsteer'), { mode: 0o700 });
    const fifo = join(s.root, 'etc/afsteer', name);
    mkfifo(fifo);
    const before = both(s);
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--node-name', 'n'), re);
    expect(both(s)).toEqual(before);
  });
});

describe('keys: only a private regular file of root, with one link, through real directories (defect 13)', () => {
  /** A good key file at path (0600, 32 bytes). */
  const key = (path: string): string => {
    writeFileSync(path, Buffer.alloc(32, 5), { mode: 0o600 });
    return path;
  };

  it('--key reached through a symbolically linked directory', async () => {
    const s = withConflist();
    mkdirSync(join(s.outside, 'keys'), { mode: 0o700 });
    key(join(s.outside, 'keys/k'));
    symlinkSync(join(s.outside, 'keys'), join(s.dir, 'keys'));
    expectRefused(
      await install('--root', s.root, '--bin', s.bin, '--node-name', 'n', '--key', join(s.dir, 'keys/k')),
      /--key: keyFile .*: .*\/keys is a symbolic link/,
    );
  });

  it('--key with a second hard link, and a key already in the root with one', async () => {
    const s = withConflist();
    const k = key(join(s.outside, 'k'));
    linkSync(k, join(s.outside, 'k2'));
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--node-name', 'n', '--key', k), /--key: keyFile .*: has 2 hard links/);
    mkdirSync(join(s.root, 'etc/afsteer'), { mode: 0o700 });
    linkSync(k, join(s.root, 'etc/afsteer/cluster.key'));
    expectRefused(
      await install('--root', s.root, '--bin', s.bin, '--node-name', 'n'),
      /cluster key already there is refused: .*has 3 hard links/,
    );
  });

  it.skipIf(!IS_ROOT)('a 0600 key owned by another user (root: chown)', async () => {
    const s = withConflist();
    const k = key(join(s.outside, 'k'));
    chownSync(k, 65534, 65534);
    expectRefused(
      await install('--root', s.root, '--bin', s.bin, '--node-name', 'n', '--key', k),
      /--key: keyFile .*: owned by uid 65534, not root/,
    );
  });
});

describe('directories only root can write, files only root owns (one rule for the installer)', () => {
  it.each(['etc/cni/net.d', 'etc/cni', 'opt'])('%s writable by group or others is refused', async (dir) => {
    const s = withConflist();
    mkdirSync(join(s.root, dir), { recursive: true });
    chmodSync(join(s.root, dir), 0o775);
    expectRefused(
      await install('--root', s.root, '--bin', s.bin, '--cni-only'),
      new RegExp(`${s.root}/${dir} is writable by group or others \\(mode 775\\)`),
    );
  });

  it.skipIf(!IS_ROOT)('a directory or a conflist owned by another user is refused (root: chown)', async () => {
    const s = withConflist();
    chownSync(s.conflist, 65534, 65534);
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /10-x\.conflist is owned by uid 65534, not root/);
    chownSync(s.conflist, 0, 0);
    chownSync(join(s.root, 'etc/cni/net.d'), 65534, 65534);
    expectRefused(await install('--root', s.root, '--bin', s.bin, '--cni-only'), /net\.d is owned by uid 65534, not root/);
  });

  it('a conflist larger than 1 MiB is refused', async () => {
    const s = withConflist();
    writeFileSync(s.conflist, BRIDGE_LIST + ' '.repeat(1 << 20));
    expectRefused(
      await install('--root', s.root, '--bin', s.bin, '--cni-only'),
      /10-x\.conflist is \d+ bytes, more than the 1048576 accepted/,
    );
  });
});

describe('uninstall with afsteer pods on the node (issue 24)', () => {
  /** A state file as ADD writes it, in the root's default stateDir. */
  function pod(root: string, id: string, name: string): void {
    const dir = join(root, 'var/lib/afsteer/attachments');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(dir, `${id}_eth0.json`),
      JSON.stringify({
        containerId: id,
        ifname: 'eth0',
        netns: `/run/netns/${id}`,
        network: 'k8s-pod-network',
        hostIfindex: 4242,
        hostIfname: `veth${id}`,
        podIfindex: 2,
        ipv4: '10.88.0.7',
        ipv6: 'fd00:88::7',
        podNamespace: 'default',
        podName: name,
        createdClsact: true,
        progDir: '/sys/fs/bpf/afsteer/progs/x',
        addedAddresses: [],
        delegatedIpam: false,
        mtu: { before: 1500, after: 1460 },
        createdAt: new Date(0).toISOString(),
      }),
      { mode: 0o600 },
    );
  }

  it('refuses with the list of pods (exit 2) and changes nothing; --dry-run --force says what it would detach', async () => {
    const s = withConflist();
    expect((await install('--root', s.root, '--bin', s.bin, '--cni-only')).code).toBe(0);
    pod(s.root, 'ctr1', 'web-1');
    pod(s.root, 'ctr2', 'web-2');
    const before = both(s);
    const r = await install('--uninstall', '--root', s.root);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/afsteer is attached to 2 pod\(s\) on this node .* give --force/);
    expect(r.err).toMatch(/\n {2}default\/web-1 container ctr1 eth0: host vethctr1, 10\.88\.0\.7 fd00:88::7\n/);
    expect(r.err).toMatch(/\n {2}default\/web-2 container ctr2 eth0/);
    expect(both(s)).toEqual(before);
    const dry = await install('--uninstall', '--force', '--dry-run', '--root', s.root);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toMatch(/would detach afsteer from default\/web-1/);
    expect(both(s)).toEqual(before);
  });

  it('refuses while afsteerd answers on its control socket, even with --force', async () => {
    const s = withConflist();
    expect((await install('--root', s.root, '--bin', s.bin, '--cni-only')).code).toBe(0);
    mkdirSync(join(s.root, 'run/afsteer'), { recursive: true, mode: 0o700 });
    await socketAt(join(s.root, 'run/afsteer/afsteerd.sock'));
    const before = both(s);
    expectRefused(await install('--uninstall', '--force', '--root', s.root), /afsteerd is running .*stop it first/);
    expect(both(s)).toEqual(before);
  });

  it('an unreadable state file counts as a pod (it is listed, not ignored)', async () => {
    const s = withConflist();
    expect((await install('--root', s.root, '--bin', s.bin, '--cni-only')).code).toBe(0);
    mkdirSync(join(s.root, 'var/lib/afsteer/attachments'), { mode: 0o700 });
    mkfifo(join(s.root, 'var/lib/afsteer/attachments/ctr3_eth0.json'));
    const r = await install('--uninstall', '--root', s.root);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/ctr3_eth0\.json .*FIFO.*: an unreadable state file/);
    expect(existsSync(join(s.root, 'var/lib/afsteer/install.json'))).toBe(true);
  });
});
