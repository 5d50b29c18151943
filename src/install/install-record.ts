/**
 * The install record (DIR/var/lib/afsteer/install.json): what `afsteer install` did and what it
 * replaced, which a re-install extends and --uninstall follows. It is read as untrusted input:
 * a regular file of root (or this user) beneath the root, at most 1 MiB, whose every path is one
 * the installer writes, every backup the one it makes for that path, every directory one on the
 * way to those; anything else is refused, and nothing it names is touched.
 */
import { join } from 'node:path';
import * as z from 'zod/mini';
import { MAX_OWN_FILE_BYTES, readBeneath, relPathProblem } from '../util/safe-fs';
import { backupOf, INSTALL_PATHS, isConfPath, isInstallerDir, kindAt } from './install-paths';
import { InstallRefusal } from './plan';

const Sha256 = z.string().check(z.regex(/^[0-9a-f]{64}$/));

/** One recorded action: a file or link the installer put at path (relative to root). */
const ActionSchema = z.object({
  path: z.string(),
  kind: z.enum(['file', 'symlink']),
  /** sha256 of the file written, or the link's target. */
  sha256: z.optional(Sha256),
  target: z.optional(z.string()),
  /** What was there before the first install: nothing, or a backup (relative to root). */
  before: z.union([z.literal('absent'), z.object({ backup: z.string() })]),
  /** For the chained conflist: uninstall may remove just the afsteer entry if the file changed since. */
  conflist: z.optional(z.boolean()),
});

/** One recorded action. */
export type Action = z.infer<typeof ActionSchema>;

const RecordSchema = z.object({
  version: z.literal(1),
  afsteer: z.string(),
  installedAt: z.string(),
  actions: z.array(ActionSchema),
  /** Directories the installer created (removed on uninstall when empty). */
  dirs: z.array(z.string()),
});

/** The install record. */
export type InstallRecord = z.infer<typeof RecordSchema>;

/** Why a parsed record may not be followed, or undefined (pure). */
export function recordProblem(r: InstallRecord): string | undefined {
  const seen = new Set<string>();
  for (const [i, a] of r.actions.entries()) {
    const at = `action ${i + 1} (${JSON.stringify(a.path)})`;
    const bad = relPathProblem(a.path);
    if (bad) return `${at}: the path ${bad}`;
    const kind = kindAt(a.path);
    if (!kind) return `${at}: not a path the installer writes`;
    if (kind !== a.kind) return `${at}: the installer writes a ${kind} there, not a ${a.kind}`;
    if (a.kind === 'file' ? !a.sha256 || a.target !== undefined : !a.target || a.sha256 !== undefined)
      return `${at}: a ${a.kind} needs ${a.kind === 'file' ? 'sha256' : 'target'} (only)`;
    if (a.conflist && !isConfPath(a.path)) return `${at}: marked as the conflist, but not in ${INSTALL_PATHS.cniConfDir}`;
    if (a.before !== 'absent' && a.before.backup !== backupOf(a.path)) return `${at}: its backup must be ${backupOf(a.path)}`;
    if (seen.has(a.path)) return `${at}: recorded twice`;
    seen.add(a.path);
  }
  for (const d of r.dirs)
    if (relPathProblem(d) || !isInstallerDir(d)) return `directory ${JSON.stringify(d)}: not one the installer creates`;
  return undefined;
}

/**
 * The record beneath root, or undefined when there is none. A record that is not a regular file
 * of ours, too large, not valid, or naming anything the installer does not write is refused
 * (InstallRefusal), so neither install nor uninstall acts on it.
 */
export function readRecord(root: string): InstallRecord | undefined {
  const p = join(root, INSTALL_PATHS.record);
  const refuse = (why: string): never => {
    throw new InstallRefusal(`${p} ${why}: not followed (move it away to install afresh, and clean up by hand)`);
  };
  let text: Buffer | undefined;
  try {
    text = readBeneath(root, INSTALL_PATHS.record, MAX_OWN_FILE_BYTES);
  } catch (err) {
    if ((err as { code?: string }).code === 'EUNSAFEPATH') throw err; // names the path and why
    return refuse(`is unreadable (${(err as Error).message})`);
  }
  if (!text) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text.toString('utf8'));
  } catch (err) {
    return refuse(`is not valid JSON (${(err as Error).message})`);
  }
  const r = RecordSchema.safeParse(raw);
  if (!r.success) return refuse(`is not an install record (${z.prettifyError(r.error).replace(/\s*\n\s*/g, '; ')})`);
  const problem = recordProblem(r.data);
  if (problem) refuse(`is refused: ${problem}`);
  return r.data;
}

/** The record's text as written. */
export function recordText(r: InstallRecord): string {
  return JSON.stringify(r, null, 2) + '\n';
}
