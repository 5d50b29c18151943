/** Loads the afsteer BPF object once per node and pins its programs and maps; later calls reuse the pins. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readAsset } from '../native/assets';
import { mount } from '../native/libc';
import { BPFFS_ROOT, shouldMountBpffs } from './bpffs';
import { type LayoutVersion, PIN_LAYOUT } from './layout-version';
import { check, closeFds, libbpf, openAndLoad, openPinned } from './libbpf';
import { assertPinLayoutUsable } from './pin-layout';

/** Magic number of a bpf filesystem (statfs f_type). */
const BPF_FS_MAGIC = 0xcafe4a11;
/** Names of the programs in bpf/afsteer.bpf.c. */
export const PROGRAMS = { fromPod: 'afsteer_from_pod', toPod: 'afsteer_to_pod', bridgeOut: 'afsteer_bridge_out' } as const;

/** Open file descriptors of the pinned programs; close them when done. */
export interface ProgramFds {
  fromPod: number;
  toPod: number;
  /** For the egress of the bridge the pods' veths are enslaved to. */
  bridgeOut: number;
  /** Directory the programs are pinned in (content-addressed by the object's hash). */
  dir: string;
}

/** The BPF object's bytes and short content hash. */
export function bpfObject(): { elf: Buffer; hash: string } {
  const elf = readAsset('afsteer.bpf.o');
  return { elf, hash: createHash('sha256').update(elf).digest('hex').slice(0, 16) };
}

const isBpffs = (path: string): boolean => Number(statfsSync(path).type) === BPF_FS_MAGIC;

/**
 * Throws unless pinDir is (or can be created) on a bpf filesystem. Mounts one only on
 * /sys/fs/bpf itself, only when it is not a bpffs yet, and only for a pinDir under it (as
 * Cilium does); never over an existing bpffs, which would hide every pin on the node. pinDir is
 * normalised and free of '..' (the plugin's and afsteerd's config), so "under /sys/fs/bpf" is a plain prefix test.
 */
export function assertBpffs(pinDir: string, mountIfMissing = true): void {
  const onBpffs = (): string | undefined => {
    let probe = pinDir;
    while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
    return isBpffs(probe) ? undefined : probe;
  };
  let bad = onBpffs();
  if (bad && mountIfMissing && shouldMountBpffs(pinDir, existsSync(BPFFS_ROOT) && isBpffs(BPFFS_ROOT), existsSync(BPFFS_ROOT))) {
    try {
      mount('bpf', BPFFS_ROOT, 'bpf', 'mode=0700');
    } catch (err) {
      throw new Error(`${BPFFS_ROOT} is not a bpf filesystem and mounting one failed`, { cause: err });
    }
    bad = onBpffs();
  }
  if (bad)
    throw new Error(
      `pinDir ${pinDir}: ${bad} is not on a bpf filesystem (give a directory under a mounted bpffs, e.g. ${BPFFS_ROOT}/afsteer)`,
    );
}

/** Where the programs of the current object are pinned under pinDir. */
export function programPinDir(pinDir: string, hash: string): string {
  return join(pinDir, 'progs', hash);
}

/**
 * Returns fds of the pinned programs, loading and pinning the object first if needed (its maps by
 * name in pinDir: reused when pinned, created otherwise). Refuses pins of a layout this build
 * cannot use before loading anything. Call under the node lock (src/node/prepare-pins.ts also
 * migrates and records the layout).
 */
export function ensurePrograms(pinDir: string, own: LayoutVersion = PIN_LAYOUT): ProgramFds {
  assertBpffs(pinDir);
  if (existsSync(pinDir)) assertPinLayoutUsable(pinDir, own);
  const { elf, hash } = bpfObject();
  const dir = programPinDir(pinDir, hash);
  const paths = Object.entries(PROGRAMS).map(([role, name]) => [role as keyof typeof PROGRAMS, name, join(dir, name)] as const);
  if (paths.some(([, , p]) => !existsSync(p))) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const b = libbpf();
    let obj: unknown;
    try {
      obj = openAndLoad(elf, 'afsteer', pinDir);
    } catch (err) {
      throw new Error(
        `loading the afsteer BPF object over the pins in ${pinDir} failed (a pinned map that differs from this build's is a pin layout error: docs/upgrades.md)`,
        { cause: err },
      );
    }
    try {
      for (const [, name, path] of paths) {
        if (existsSync(path)) continue;
        const prog = b.findProg(obj, name);
        if (!prog) throw new Error(`program ${name} missing from the BPF object`);
        check(`bpf_program__pin(${path})`, b.progPin(prog, path));
      }
    } finally {
      b.objClose(obj);
    }
  }
  const fds = {} as Record<keyof typeof PROGRAMS, number>;
  try {
    for (const [role, , p] of paths) fds[role] = openPinned(p);
  } catch (err) {
    closeFds(...Object.values(fds));
    throw err;
  }
  return { ...fds, dir };
}
