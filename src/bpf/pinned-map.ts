/** A pinned BPF map opened by path: typed-buffer lookup/update/delete/iterate with errno-aware errors. */
import { join } from 'node:path';
import { check, closeFds, libbpf, openPinned } from './libbpf';

const ENOENT = 2;
const E2BIG = 7;
const EEXIST = 17;

/** update flags */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** An open pinned map; close() when done (or use withPinnedMap). */
export class PinnedMap {
  private constructor(
    readonly name: string,
    private readonly fd: number,
    readonly keySize: number,
    readonly valueSize: number,
  ) {}

  /** Opens pinDir/name; valueSize is the full lookup buffer size (per-CPU maps: slot × CPUs). */
  static open(pinDir: string, name: string, keySize: number, valueSize: number): PinnedMap {
    return new PinnedMap(name, openPinned(join(pinDir, name)), keySize, valueSize);
  }

  /** The value for key, or undefined. */
  lookup(key: Buffer): Buffer | undefined {
    const val = Buffer.alloc(this.valueSize);
    const rc = libbpf().mapLookup(this.fd, key, val);
    if (rc === -ENOENT) return undefined;
    check(`look up ${this.name}`, rc);
    return val;
  }

  /** Writes key → value; a full map is a clear error naming the map. Returns false on EEXIST with BPF_NOEXIST and on ENOENT with BPF_EXIST. */
  update(key: Buffer, value: Buffer, flags = BPF_ANY, capacity?: number): boolean {
    const rc = libbpf().mapUpdate(this.fd, key, value, BigInt(flags));
    if (rc === -EEXIST && flags === BPF_NOEXIST) return false;
    if (rc === -ENOENT && flags === BPF_EXIST) return false;
    if (rc === -E2BIG) throw new Error(`BPF map ${this.name} is full${capacity ? ` (${capacity} entries)` : ''}`);
    check(`update ${this.name}`, rc);
    return true;
  }

  /** Deletes key; returns false when it was not there. */
  delete(key: Buffer): boolean {
    const rc = libbpf().mapDelete(this.fd, key);
    if (rc === -ENOENT) return false;
    check(`delete from ${this.name}`, rc);
    return true;
  }

  /** Every key (snapshot). */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = libbpf().mapNextKey(this.fd, prev, next);
      if (rc === -ENOENT) return out;
      check(`iterate ${this.name}`, rc);
      out.push(next);
      prev = next;
    }
  }

  /** Closes the map fd. */
  close(): void {
    closeFds(this.fd);
  }
}

/** Opens a pinned map for the duration of fn. */
export function withPinnedMap<T>(pinDir: string, name: string, keySize: number, valueSize: number, fn: (m: PinnedMap) => T): T {
  const m = PinnedMap.open(pinDir, name, keySize, valueSize);
  try {
    return fn(m);
  } finally {
    m.close();
  }
}

/** A little-endian __u32 key (map keys and indexes). */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** Number of possible CPUs (per-CPU map values hold one slot each). */
export function possibleCpus(): number {
  return check('libbpf_num_possible_cpus', libbpf().numCpus());
}
