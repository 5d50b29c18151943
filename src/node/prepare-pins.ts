/**
 * Getting a node's pins ready for this build, under the node lock (the plugin's ADD and STATUS,
 * afsteerd's start): refuses pins of a layout it cannot use before loading anything, loads (or
 * reuses) its BPF object, migrates pins of an older layout step by step (each step recorded as it
 * completes), records the layout, and — after a migration, and at every afsteerd start — moves the
 * node's pods onto this build's programs and removes program pins nothing uses (program-swap.ts),
 * then the map pins earlier layouts retired, once no older program is pinned.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PIN_LAYOUT } from '../bpf/layout-version';
import { closeFds } from '../bpf/libbpf';
import { PinLayoutError, type PinMigration, planPinLayout, readPinLayout, recordPinLayout } from '../bpf/pin-layout';
import { PIN_MIGRATIONS } from '../bpf/pin-migrations';
import { ensurePrograms, PROGRAMS, type ProgramFds } from '../bpf/programs';
import { log } from '../util/log';
import { type SwapReport, swapPrograms } from './program-swap';

/** What preparePins did besides opening the programs. */
export interface PinsReady extends ProgramFds {
  /** Layouts migrated to, in order (empty: the pins were used as they are). */
  migrated: number[];
  /** The swap's report, when one ran. */
  swap?: SwapReport;
  /** Map pins of earlier layouts removed (none while an older object's programs are still pinned). */
  retired: string[];
}

/**
 * Removes the pins of maps earlier layouts used and this one does not, once nothing can use them:
 * after a swap, when no pod program directory but this build's (current) is left — every recorded
 * pod runs this build's programs, which never name them. Retried at every afsteerd start until then.
 */
export function removeRetiredMaps(pinDir: string, current: string, names: readonly string[]): string[] {
  const present = names.filter((n) => existsSync(join(pinDir, n)));
  if (!present.length) return [];
  let dirs: string[];
  try {
    dirs = readdirSync(join(pinDir, 'progs'));
  } catch {
    dirs = [];
  }
  if (dirs.some((d) => join(pinDir, 'progs', d) !== current && existsSync(join(pinDir, 'progs', d, PROGRAMS.fromPod)))) {
    log.info('keeping map pins of an earlier layout: an older object is still pinned', { maps: present });
    return [];
  }
  for (const n of present) rmSync(join(pinDir, n), { force: true });
  log.info('removed map pins of an earlier layout', { maps: present });
  return present;
}

/**
 * Makes pinDir's pins this build's: see the file comment. swap: move every recorded pod onto this
 * build's programs even without a migration (afsteerd's start). The caller closes the returned fds.
 */
export async function preparePins(
  pinDir: string,
  stateDir: string,
  opts: { swap: boolean },
  own = PIN_LAYOUT,
  migrations: readonly PinMigration[] = PIN_MIGRATIONS,
): Promise<PinsReady> {
  const found = readPinLayout(pinDir);
  const plan = planPinLayout(found, own, migrations);
  if (plan.action === 'refuse') throw new PinLayoutError(`afsteer pins in ${pinDir}: ${plan.why}`);
  const fds = ensurePrograms(pinDir, own);
  try {
    const migrated: number[] = [];
    if (plan.action === 'migrate') {
      for (const step of plan.steps) {
        log.info('migrating the pins', { pinDir, from: step.to - 1, to: step.to, what: step.what });
        step.up(pinDir);
        recordPinLayout(pinDir, { version: step.to, readableFrom: step.readableFrom });
        migrated.push(step.to);
      }
    } else if (plan.record) {
      recordPinLayout(pinDir, own);
    }
    const swap = opts.swap || migrated.length ? await swapPrograms(pinDir, stateDir, fds) : undefined;
    const retired = swap
      ? removeRetiredMaps(
          pinDir,
          fds.dir,
          migrations.filter((m) => m.to <= own.version).flatMap((m) => m.retires ?? []),
        )
      : [];
    return { ...fds, migrated, retired, ...(swap ? { swap } : {}) };
  } catch (err) {
    closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
    throw err;
  }
}
