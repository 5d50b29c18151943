/**
 * Getting a node's pins ready for this build, under the node lock (the plugin's ADD and STATUS,
 * afsteerd's start): refuses pins of a layout it cannot use before loading anything, loads (or
 * reuses) its BPF object, migrates pins of an older layout step by step (each step recorded as it
 * completes), records the layout, and — after a migration, and at every afsteerd start — moves the
 * node's pods onto this build's programs and removes program pins nothing uses (program-swap.ts).
 */
import { PIN_LAYOUT } from '../bpf/layout-version';
import { PinLayoutError, type PinMigration, planPinLayout, readPinLayout, recordPinLayout } from '../bpf/pin-layout';
import { PIN_MIGRATIONS } from '../bpf/pin-migrations';
import { closeFds, ensurePrograms, type ProgramFds } from '../bpf/programs';
import { log } from '../util/log';
import { type SwapReport, swapPrograms } from './program-swap';

/** What preparePins did besides opening the programs. */
export interface PinsReady extends ProgramFds {
  /** Layouts migrated to, in order (empty: the pins were used as they are). */
  migrated: number[];
  /** The swap's report, when one ran. */
  swap?: SwapReport;
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
    return { ...fds, migrated, ...(swap ? { swap } : {}) };
  } catch (err) {
    closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
    throw err;
  }
}
