/**
 * What is at one of the installer's paths beneath --root, examined without following a link or
 * opening a special file, and new temp files beside it (exclusive, random names) holding the
 * next version or a copy of the current one.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readlinkSync, readSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileKind, lstatBeneath, openOwnFile, READ_FLAGS, tempNameBeside, writeExclusiveTemp } from '../util/safe-fs';

/** The tag in the installer's temp file names (.NAME.afsteer-install.RANDOM.tmp). */
export const TEMP_TAG = 'afsteer-install';

/** What is at a path now. */
export type Current =
  | { kind: 'absent' }
  | { kind: 'file'; sha256: string }
  | { kind: 'symlink'; target: string }
  | { kind: 'other'; what: string };

/** True when what is at a path now is what s describes (same bytes, or a link with the same target). */
export function sameAs(now: Current, s: { kind: 'file' | 'symlink'; sha256?: string; target?: string }): boolean {
  return (
    (now.kind === 'file' && s.kind === 'file' && now.sha256 === s.sha256) ||
    (now.kind === 'symlink' && s.kind === 'symlink' && now.target === s.target)
  );
}

/** Copies the file open at src into fd, feeding each chunk to onChunk. */
function copyFd(src: number, fd: number, onChunk?: (b: Buffer) => void): void {
  const buf = Buffer.alloc(1 << 20);
  for (let n = 0; (n = readSync(src, buf, 0, buf.length, null)) > 0; ) {
    onChunk?.(buf.subarray(0, n));
    for (let off = 0; off < n; ) off += writeSync(fd, buf, off, n - off);
  }
}

/** sha256 of one of afsteer's files (opened by openOwnFile: no link, no FIFO, ours, one link). */
export function sha256OwnFile(path: string): string {
  const h = createHash('sha256');
  const fd = openOwnFile(path, READ_FLAGS);
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n = 0; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** What is at root/rel now (its directories checked by lstatBeneath); a FIFO, device, socket or directory is 'other'. */
export function current(root: string, rel: string): Current {
  const st = lstatBeneath(root, rel);
  const abs = join(root, rel);
  if (!st) return { kind: 'absent' };
  if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(abs) };
  if (st.isFile()) return { kind: 'file', sha256: sha256OwnFile(abs) };
  return { kind: 'other', what: fileKind(st) };
}

/**
 * A new temp file beside path holding a copy of src (one of afsteer's files, see openOwnFile)
 * with mode (default: src's own); returns the temp's path and the sha256 of what was copied.
 */
export function copyToTemp(src: string, path: string, mode?: number): { tmp: string; sha256: string } {
  const h = createHash('sha256');
  const fd = openOwnFile(src, READ_FLAGS);
  try {
    const tmp = writeExclusiveTemp(path, TEMP_TAG, mode ?? fstatSync(fd).mode & 0o7777, (out) => copyFd(fd, out, (b) => h.update(b)));
    return { tmp, sha256: h.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

/** A new symbolic link to target beside path (symlink(2) never replaces an existing name); returns its path. */
export function symlinkTemp(target: string, path: string): string {
  const tmp = tempNameBeside(path, TEMP_TAG);
  symlinkSync(target, tmp);
  return tmp;
}

/** A new temp file beside path holding data with mode; returns its path. */
export function dataTemp(data: Uint8Array, path: string, mode: number): string {
  return writeExclusiveTemp(path, TEMP_TAG, mode, data);
}
