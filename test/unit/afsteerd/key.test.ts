/**
 * The cluster key file: accepted only as a private regular file of root's (or this user's) with
 * one link, of ≥ 32 bytes, read without following links (its own or a directory's) or blocking.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadKey } from '../../../src/negotiator/key';

describe('keyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'afsteer-key-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, bytes: Buffer | string, mode = 0o600) => {
    const p = join(dir, name);
    writeFileSync(p, bytes, { mode });
    return p;
  };

  it('returns the raw bytes of a private file', () => {
    const k = Buffer.alloc(48, 7);
    expect(loadKey(file('ok', k))).toEqual(k);
  });
  it.each([
    ['group-readable', () => file('g', Buffer.alloc(32), 0o640), /group\/others.*chmod 600/],
    ['world-readable', () => file('w', Buffer.alloc(32), 0o604), /group\/others/],
    ['too short', () => file('s', Buffer.alloc(31)), /31 bytes, needs at least 32/],
    ['empty', () => file('e', ''), /0 bytes/],
    ['too long', () => file('l', Buffer.alloc(5000)), /at most 4096/],
    ['missing', () => join(dir, 'nope'), /does not exist/],
    [
      'a symlink to a good key',
      () => {
        const p = join(dir, 'link');
        symlinkSync(file('target', Buffer.alloc(32)), p);
        return p;
      },
      /symlink/,
    ],
    [
      'a directory',
      () => {
        const p = join(dir, 'd');
        mkdirSync(p, { mode: 0o700 });
        return p;
      },
      /not a regular file/,
    ],
    [
      'a FIFO (must not block)',
      () => {
        const p = join(dir, 'fifo');
        execFileSync('mkfifo', ['-m', '600', p]);
        return p;
      },
      /not a regular file/,
    ],
    [
      'a good key reached through a symbolically linked directory',
      () => {
        mkdirSync(join(dir, 'real'), { mode: 0o700 });
        file('real/k', Buffer.alloc(32));
        symlinkSync(join(dir, 'real'), join(dir, 'linked'));
        return join(dir, 'linked', 'k');
      },
      /linked is a symbolic link/,
    ],
    [
      'a good key with a second hard link',
      () => {
        linkSync(file('h', Buffer.alloc(32)), join(dir, 'h2'));
        return join(dir, 'h');
      },
      /has 2 hard links/,
    ],
    [
      'a good key in a directory others can write',
      () => {
        mkdirSync(join(dir, 'open'));
        chmodSync(join(dir, 'open'), 0o777);
        return file('open/k', Buffer.alloc(32));
      },
      /open is writable by group or others/,
    ],
  ])('refuses %s with a clear message', (_what, make, re) => {
    expect(() => loadKey(make())).toThrow(re);
  });
  it.skipIf(process.getuid?.() !== 0)('refuses a 0600 key owned by another user (root: chown)', () => {
    const p = file('other', Buffer.alloc(32));
    chownSync(p, 65534, 65534);
    expect(() => loadKey(p)).toThrow(/owned by uid 65534, not root/);
  });
});
