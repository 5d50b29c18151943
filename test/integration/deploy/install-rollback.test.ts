/**
 * A re-install that fails at one rename (issue 21 defect 7): the target renamed before it is put
 * back, so "failed, nothing changed" is true, and --uninstall afterwards still leaves the root
 * as it was before the first install. The rename is made to fail for real: the key it would
 * replace is immutable (chattr +i, root only), so rename(2) over it is EPERM.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BRIDGE_LIST, cleanupScratch, installExe, scratch, tree } from '../../support/install-tree';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('install rollback (chattr +i)');

const immutable: string[] = [];
afterEach(() => {
  for (const p of immutable.splice(0)) execFileSync('chattr', ['-i', p]);
  cleanupScratch();
});

describe.skipIf(!IS_ROOT)('a re-install that fails at one rename', () => {
  it('puts back every target renamed before it, says nothing changed, and uninstall still restores the original tree', () => {
    const s = scratch();
    writeFileSync(join(s.root, 'etc/cni/net.d/10-x.conflist'), BRIDGE_LIST);
    const pristine = tree(s.root);
    const first = installExe('--root', s.root, '--bin', s.bin, '--node-name', 'n');
    expect(first.code, first.err).toBe(0);
    const installed = tree(s.root);

    // The upgrade: a new build (renamed first) and a new key (renamed later, and it cannot be).
    writeFileSync(s.bin, '#!/bin/false\nthe next build\n');
    const newKey = join(s.dir, 'new.key');
    writeFileSync(newKey, Buffer.alloc(32, 9), { mode: 0o600 });
    const key = join(s.root, 'etc/afsteer/cluster.key');
    execFileSync('chattr', ['+i', key]);
    immutable.push(key);
    const upgrade = installExe('--root', s.root, '--bin', s.bin, '--node-name', 'n', '--key', newKey);
    expect(upgrade.code, upgrade.out).toBe(1);
    expect(upgrade.err).toMatch(/^afsteer install: failed, nothing changed: .*EPERM/);
    expect(upgrade.out).toMatch(/replace .*opt\/cni\/bin\/afsteer/);
    expect(readFileSync(join(s.root, 'opt/cni/bin/afsteer'), 'utf8')).not.toMatch(/the next build/);
    expect(tree(s.root)).toEqual(installed); // and no temp file left behind

    execFileSync('chattr', ['-i', key]);
    immutable.pop();
    const un = installExe('--uninstall', '--root', s.root);
    expect(un.code, un.err).toBe(0);
    expect(tree(s.root)).toEqual(pristine);
  });
});
