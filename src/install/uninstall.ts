/**
 * `afsteer install --uninstall`: follows the install record backwards — restores what the
 * installer replaced, removes what it added, takes only afsteer's entry out of a conflist changed
 * since — and leaves the node without afsteer's pins and state. Everything is checked before
 * anything changes: the record (record.ts: only the installer's own paths and backups), every
 * path beneath --root (real directories only root can write, nothing followed), and the pods
 * afsteer is attached to on the node: with any, the uninstall is refused with their list unless
 * --force, which takes afsteer off them first (node-pods.ts).
 */
import { renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describeError } from '../util/describe-error';
import { fileKind, lstatBeneath, readBeneath, trustedUid, walkBeneath } from '../util/safe-fs';
import { InstallFailure } from './failure';
import { INSTALL_PATHS } from './install-paths';
import { type Action, type InstallRecord, readRecord } from './install-record';
import {
  anyPods,
  checkStateDir,
  describePods,
  detachPods,
  findPods,
  nodeAfsteer,
  pinDirState,
  refuseRunningDaemon,
  removePinsAndState,
} from './node-pods';
import { InstallRefusal, unchainConflist } from './plan';
import { current, dataTemp, sameAs } from './targets';

/** How --uninstall runs. */
export interface UninstallOptions {
  dryRun: boolean;
  /** Take afsteer off the pods it is attached to (else: refused while there are any). */
  force: boolean;
  pinDir?: string;
  stateDir?: string;
}

/** What uninstall does with one recorded path. */
type Undo =
  | { a: Action; abs: string; op: 'remove' }
  | { a: Action; abs: string; op: 'restore'; backup: string }
  | { a: Action; abs: string; op: 'unchain'; text: string }
  | { a: Action; abs: string; op: 'leave'; why: string };

/** Decides, reading only, what to do with each recorded path (newest first); refuses what is not safe to touch. */
function planUndo(root: string, record: InstallRecord): Undo[] {
  return [...record.actions].reverse().map((a): Undo => {
    const abs = join(root, a.path);
    const now = current(root, a.path);
    if (!sameAs(now, a)) {
      if (a.conflist && now.kind === 'file') {
        const text = unchainConflist(readBeneath(root, a.path)!.toString('utf8'));
        if (text !== undefined) return { a, abs, op: 'unchain', text };
      }
      return { a, abs, op: 'leave', why: now.kind === 'absent' ? 'is already gone' : 'changed since install: left in place' };
    }
    if (a.before === 'absent') return { a, abs, op: 'remove' };
    const backup = join(root, a.before.backup);
    const st = lstatBeneath(root, a.before.backup);
    if (!st) return { a, abs, op: 'leave', why: `is afsteer's, but its backup ${backup} is gone: left in place` };
    if (!(st.isFile() || st.isSymbolicLink()) || !trustedUid(st.uid))
      throw new InstallRefusal(
        `backup ${backup} is ${st.isFile() || st.isSymbolicLink() ? `owned by uid ${st.uid}` : fileKind(st)}: not what the installer made; not restored, nothing changed`,
      );
    return { a, abs, op: 'restore', backup };
  });
}

/** What each undo says (as done, or with "would"). */
function describe(u: Undo, w: string): string {
  if (u.op === 'remove') return `${w}remove ${u.abs}`;
  if (u.op === 'restore') return `${w}restore ${u.abs} as it was before install`;
  if (u.op === 'unchain') return `${w}remove afsteer from ${u.abs} (changed since install: only afsteer's entry is removed)`;
  return `${u.abs} ${u.why}`;
}

/** The installed conflist's text, for the node's pinDir/stateDir and network (undefined when there is none or it is unusable). */
function installedConflist(root: string, record: InstallRecord | undefined): string | undefined {
  const a = record?.actions.find((x) => x.conflist);
  try {
    return a && readBeneath(root, a.path)?.toString('utf8');
  } catch {
    return undefined;
  }
}

/** Runs the uninstall; returns the exit code (2: refused, nothing changed). */
export async function uninstall(root: string, o: UninstallOptions, say: (s: string) => void): Promise<number> {
  const record = readRecord(root);
  const undos = record ? planUndo(root, record) : [];
  if (record) walkBeneath(root, INSTALL_PATHS.backups);
  const node = nodeAfsteer(root, o, installedConflist(root, record));
  const pins = pinDirState(node.pinDir);
  checkStateDir(node.stateDir);
  await refuseRunningDaemon(node.controlSocket);
  const pods = await findPods(node);
  if (anyPods(pods) && !o.force)
    throw new InstallRefusal(
      [
        `afsteer is attached to ${describePods(pods).length} pod(s) on this node (state in ${node.stateDir}, pins in ${node.pinDir}): delete them first, or give --force to take afsteer off them (they keep their addresses and the network their primary plugin gave them); nothing changed`,
        ...describePods(pods).map((l) => `  ${l}`),
      ].join('\n'),
    );
  if (!record && !anyPods(pods) && pins === 'absent') {
    say(`no install record at ${join(root, INSTALL_PATHS.record)}: nothing to uninstall`);
    return 0;
  }
  if (o.dryRun) {
    for (const u of undos) say(describe(u, 'would '));
    for (const l of describePods(pods)) say(`would detach afsteer from ${l}`);
    if (pins === 'present') say(`would remove the pins in ${node.pinDir}`);
    return 0;
  }

  // afsteer out of the chain first (no new pod gets it), then off the pods, then its pins and state, the record last.
  const done: string[] = [];
  const step = async (what: string, fn: () => unknown): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      throw new InstallFailure(
        `uninstall failed at "${what}": ${describeError(err)}; done before it: ${done.join('; ') || 'nothing'}; the record is kept: fix the cause and re-run --uninstall`,
        { cause: err },
      );
    }
    done.push(what);
  };
  for (const u of undos) {
    say(describe(u, ''));
    if (u.op === 'remove') await step(describe(u, ''), () => unlinkSync(u.abs));
    if (u.op === 'restore') await step(describe(u, ''), () => renameSync(u.backup, u.abs));
    if (u.op === 'unchain') await step(describe(u, ''), () => renameSync(dataTemp(Buffer.from(u.text), u.abs, 0o644), u.abs));
  }
  if (anyPods(pods)) await step('detach afsteer from the pods', () => detachPods(node, say));
  await step('remove pins and state', () => removePinsAndState(node, say));
  if (record) {
    await step('remove the backups and the record', () => {
      if (walkBeneath(root, INSTALL_PATHS.backups) === undefined) rmSync(join(root, INSTALL_PATHS.backups), { recursive: true });
      unlinkSync(join(root, INSTALL_PATHS.record));
    });
    for (const d of [...record.dirs].sort((x, y) => y.length - x.length)) {
      try {
        if (walkBeneath(root, d) === undefined) rmdirSync(join(root, d));
      } catch {
        // holds something the installer did not put there (state, native addons), or is not a real directory: stays
      }
    }
  }
  say('uninstalled');
  return 0;
}
