/**
 * Scratch roots for `afsteer install --root`: a tree with an empty etc/cni/net.d and a fake
 * build beside it, the installer run in-process (or as dist/afsteer) with its output captured,
 * and a snapshot of a tree (every path's type, mode and sha256 or link target) to compare.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { runInstall } from '../../src/install/install';
import { AFSTEER_BIN } from './world';

/** A scratch dir holding root/ (with etc/cni/net.d), a fake build and room for things "outside the root". */
export interface Scratch {
  dir: string;
  root: string;
  bin: string;
  /** A directory beside the root: what the installer must never touch. */
  outside: string;
}

const made: string[] = [];

/** A new scratch root (removed by cleanupScratch). */
export function scratch(): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'afsteer-install-'));
  made.push(dir);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc/cni/net.d'), { recursive: true });
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const bin = join(dir, 'afsteer-build');
  writeFileSync(bin, `#!/bin/false\n${dir}\n`);
  chmodSync(bin, 0o755);
  return { dir, root, bin, outside };
}

/** Removes every scratch root made so far (afterEach). */
export function cleanupScratch(): void {
  for (const d of made.splice(0)) {
    const unlock = (p: string): void => {
      for (const n of readdirSync(p)) {
        const q = join(p, n);
        const st = lstatSync(q);
        if (st.isDirectory() && !st.isSymbolicLink()) {
          chmodSync(q, 0o755);
          unlock(q);
        }
      }
    };
    try {
      unlock(d);
    } catch {
      // gone already
    }
    rmSync(d, { recursive: true, force: true });
  }
}

/** Runs the installer in-process; returns its exit code, stdout and stderr. */
export async function install(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => {
    err += String(c);
    return true;
  });
  try {
    const code = await runInstall(argv, (s) => (out += s));
    return { code, out, err };
  } finally {
    spy.mockRestore();
  }
}

/** Runs the built executable's installer (dist/afsteer install ARGS); never throws on a non-zero exit. */
export function installExe(...argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(AFSTEER_BIN, ['install', ...argv], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Every path under root with its type, mode and sha256 (or link target): a tree snapshot. */
export function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o777).toString(8)}`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(root, r))}`;
      else if (st.isFile())
        out[r] = `file ${(st.mode & 0o777).toString(8)} ${createHash('sha256')
          .update(readFileSync(join(root, r)))
          .digest('hex')}`;
      else out[r] = `special ${(st.mode & 0o170000).toString(8)}`;
    }
  };
  walk('');
  return out;
}

/** A conflist with a bridge (a veth plugin afsteer chains after) and portmap, in four-space indentation. */
export const BRIDGE_LIST = `{
    "cniVersion": "1.0.0",
    "name": "k8s-pod-network",
    "someRuntimeKey": { "keep": [1, 2] },
    "plugins": [
        { "type": "bridge", "bridge": "cni0", "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.88.0.0/16" }], [{ "subnet": "fd00:88::/64" }]] } },
        { "type": "portmap", "capabilities": { "portMappings": true } }
    ]
}
`;
