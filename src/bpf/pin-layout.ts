/**
 * The pin layout recorded on a node and what a build does with it. The record is a one-entry
 * array map pinned beside the others, `afsteer_layout` ({ u32 version; u32 readable_from }),
 * made by the first build that records layouts (not part of the BPF object: the data plane never
 * reads it, and older objects load beside it untouched). Pins without a record but with afsteer's
 * maps are layout 1 (made before layouts were recorded).
 *
 * A build of layout L finding layout R: R = L, or R > L and readable by L → uses the pins as they
 * are (a newer record is left as it is); R < L → runs the migrations R+1 … L in order, recording
 * each step as it completes; anything else → refuses with what to do, before loading anything.
 */
import { closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { type LayoutVersion, PIN_LAYOUT } from './layout-version';
import { check, libbpf } from './libbpf';
import { MAPS } from './maps-layout';
import { PinnedMap, u32 } from './pinned-map';

/** Pin name of the layout record. */
export const PIN_LAYOUT_MAP = 'afsteer_layout';
const BPF_MAP_TYPE_ARRAY = 2;
const EEXIST = 17;

/** The layout found on a node; recorded false: inferred (pins from before layouts were recorded). */
export interface FoundLayout extends LayoutVersion {
  recorded: boolean;
}

/** One step of the pin layout: what a build of layout `to` does to pins of layout to − 1. */
export interface PinMigration {
  to: number;
  /** readableFrom of layout `to` (recorded with it). */
  readableFrom: number;
  /** One line: what changes (logged when it runs). */
  what: string;
  /**
   * Runs with this build's object loaded (its maps, new ones included, pinned) and before any pod
   * is moved onto its programs: fills new maps from the old ones. Must tolerate a second run
   * (a crash before the step was recorded).
   */
  up(pinDir: string): void;
  /** Map pins this layout no longer uses (renamed or dropped): removed once no older program is pinned (src/node/prepare-pins.ts). */
  retires?: readonly string[];
}

/** What a build does with a node's pins. */
export type LayoutPlan =
  | { action: 'use'; record: boolean }
  | { action: 'migrate'; steps: PinMigration[] }
  | { action: 'refuse'; why: string };

/** Pins of a layout this build cannot use. */
export class PinLayoutError extends Error {}

/** The plan for pins found (undefined: none yet) by a build of layout own with these migrations. Pure. */
export function planPinLayout(found: FoundLayout | undefined, own: LayoutVersion, migrations: readonly PinMigration[]): LayoutPlan {
  if (!found) return { action: 'use', record: true };
  if (found.version === own.version) return { action: 'use', record: !found.recorded };
  if (found.version > own.version) {
    if (found.readableFrom <= own.version) return { action: 'use', record: false };
    return {
      action: 'refuse',
      why:
        `the pins are layout ${found.version}, which only code of layout ${found.readableFrom} or later can use; this build is layout ${own.version}: ` +
        `run a build of layout ${found.readableFrom} or later on this node (docs/upgrades.md, "Rolling back")`,
    };
  }
  const steps: PinMigration[] = [];
  for (let v = found.version + 1; v <= own.version; v++) {
    const step = migrations.find((m) => m.to === v);
    if (!step)
      return {
        action: 'refuse',
        why: `no migration of the pins from layout ${v - 1} to ${v} in this build (a bug: every layout needs one)`,
      };
    steps.push(step);
  }
  return { action: 'migrate', steps };
}

/** The layout recorded in pinDir; layout 1 unrecorded when afsteer's maps are there without a record; undefined on a node without afsteer's maps. */
export function readPinLayout(pinDir: string): FoundLayout | undefined {
  if (existsSync(join(pinDir, PIN_LAYOUT_MAP))) {
    const m = PinnedMap.open(pinDir, PIN_LAYOUT_MAP, 4, 8);
    try {
      const v = m.lookup(u32(0));
      const version = v?.readUInt32LE(0) ?? 0;
      // A record being made (created, not yet written) reads 0: as before it was made.
      if (version > 0) return { version, readableFrom: v!.readUInt32LE(4), recorded: true };
    } finally {
      m.close();
    }
  }
  return existsSync(join(pinDir, MAPS.endpoints.name)) ? { version: 1, readableFrom: 1, recorded: false } : undefined;
}

/** Records layout in pinDir (creating and pinning the record when missing). */
export function recordPinLayout(pinDir: string, layout: LayoutVersion): void {
  const path = join(pinDir, PIN_LAYOUT_MAP);
  if (!existsSync(path)) {
    const b = libbpf();
    const fd = check(`bpf_map_create(${PIN_LAYOUT_MAP})`, b.mapCreate(BPF_MAP_TYPE_ARRAY, PIN_LAYOUT_MAP, 4, 8, 1, null));
    try {
      const rc = b.objPin(fd, path);
      if (rc < 0 && -rc !== EEXIST) check(`bpf_obj_pin(${path})`, rc);
    } finally {
      closeSync(fd);
    }
  }
  const m = PinnedMap.open(pinDir, PIN_LAYOUT_MAP, 4, 8);
  try {
    const v = Buffer.alloc(8);
    v.writeUInt32LE(layout.version, 0);
    v.writeUInt32LE(layout.readableFrom, 4);
    m.update(u32(0), v);
  } finally {
    m.close();
  }
}

/** Throws PinLayoutError when this build must not load its object over pinDir's pins (a newer layout it cannot read). */
export function assertPinLayoutUsable(pinDir: string, own: LayoutVersion = PIN_LAYOUT): void {
  const found = readPinLayout(pinDir);
  if (found && found.version > own.version && found.readableFrom > own.version) {
    const plan = planPinLayout(found, own, []);
    if (plan.action === 'refuse') throw new PinLayoutError(`afsteer pins in ${pinDir}: ${plan.why}`);
  }
}
