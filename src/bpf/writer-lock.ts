/**
 * The lock every writer of the steering maps takes (afsteerd's held-open writer, `afsteer steer`,
 * the plugin's DEL/GC clearing a pod's pairs), and the generation that tells a writer whether
 * somebody else wrote since it last looked:
 *   - the lock is flock(2) on the pin directory itself (a bpffs directory holds no regular files,
 *     and the pin dir is the one path every writer already knows);
 *   - the generation is a u64 in a one-entry array map pinned beside the others,
 *     `afsteer_writer_gen`, created here on first use (not part of the BPF object: the data plane
 *     never reads it, and pins made by an older object get it too).
 * A writer that finds the generation moved re-reads its index before it acts; every hold that may
 * write bumps it, a read-only one does not.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_EX, LOCK_NB, LOCK_UN, tryFlock } from '../native/libc';
import { check, libbpf } from './libbpf';
import { PinnedMap, u32 } from './pinned-map';

/** Pin name of the writers' generation counter. */
export const WRITER_GEN_MAP = 'afsteer_writer_gen';
const BPF_MAP_TYPE_ARRAY = 2;
const EEXIST = 17;

/** Serialises the steering maps' writers and says whether another one wrote in between. */
export interface WriterLock {
  /**
   * Runs fn holding the lock; fn learns whether the maps changed since this lock's last hold.
   * writes false: fn only reads (the generation is left as it is, so no other writer re-reads its
   * index for it — a read of every remote is O(remotes) syscalls: ~0.4 s at 10,000).
   */
  hold<T>(fn: (changedByOthers: boolean) => T, writes?: boolean): T;
  /** Releases what the lock holds open. */
  close(): void;
}

/** A lock held too long by another writer. */
export class WriterLockTimeout extends Error {}

let sleepCell: Int32Array | undefined;
const sleep = (ms: number) => Atomics.wait((sleepCell ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, ms);

/** The lock of a real pin directory: flock on the directory, generation in a pinned array map. */
export class PinDirLock implements WriterLock {
  private readonly dirFd: number;
  private readonly gen: PinnedMap;
  private seen: bigint | undefined;

  /** Opens the pin dir and the generation map (creating and pinning it when missing). */
  constructor(
    readonly pinDir: string,
    private readonly timeoutMs = 5000,
  ) {
    this.dirFd = openSync(pinDir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      this.gen = openOrCreateGen(pinDir);
    } catch (err) {
      closeSync(this.dirFd);
      throw err;
    }
  }

  hold<T>(fn: (changedByOthers: boolean) => T, writes = true): T {
    const deadline = Date.now() + this.timeoutMs;
    let wait = 1;
    while (!tryFlock(this.dirFd, LOCK_EX | LOCK_NB)) {
      if (Date.now() >= deadline)
        throw new WriterLockTimeout(`timed out after ${this.timeoutMs} ms waiting for the steering writer lock on ${this.pinDir}`);
      sleep(wait);
      wait = Math.min(wait * 2, 10);
    }
    try {
      const now = this.read();
      try {
        return fn(this.seen !== now);
      } finally {
        if (writes) {
          // Bumped also when fn threw: a change that failed half-way may still have written.
          this.seen = now + 1n;
          this.write(this.seen);
        } else {
          this.seen = now;
        }
      }
    } finally {
      tryFlock(this.dirFd, LOCK_UN);
    }
  }

  close(): void {
    this.gen.close();
    closeSync(this.dirFd);
  }

  private read(): bigint {
    return this.gen.lookup(u32(0))?.readBigUInt64LE(0) ?? 0n;
  }

  private write(g: bigint): void {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(g);
    this.gen.update(u32(0), v);
  }
}

function openOrCreateGen(pinDir: string): PinnedMap {
  const path = join(pinDir, WRITER_GEN_MAP);
  try {
    return PinnedMap.open(pinDir, WRITER_GEN_MAP, 4, 8);
  } catch {
    // Not pinned yet: create it; a writer that pins first wins and the other opens its pin.
    const b = libbpf();
    const fd = check('bpf_map_create(afsteer_writer_gen)', b.mapCreate(BPF_MAP_TYPE_ARRAY, WRITER_GEN_MAP.slice(0, 15), 4, 8, 1, null));
    try {
      const rc = b.objPin(fd, path);
      if (rc < 0 && -rc !== EEXIST) check(`bpf_obj_pin(${path})`, rc);
    } finally {
      closeSync(fd);
    }
    return PinnedMap.open(pinDir, WRITER_GEN_MAP, 4, 8);
  }
}
