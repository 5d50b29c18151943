/**
 * The layout version of the attachment state files (stateDir/attachments/*.json), recorded in each
 * file as `layout: { version, readableFrom }` (files without one are layout 1: written before
 * layouts were recorded). The same rules as the pins' (src/bpf/layout-version.ts): a change to the
 * file's fields bumps the version and adds a migration here; readableFrom stays when older code
 * can still use the file as it is (a field added: older code's schema drops it), and becomes the
 * new version when it cannot. Files are migrated when read and written in this build's layout.
 */
import type { LayoutVersion } from '../bpf/layout-version';

/**
 * This build's state file layout. Layout 2 added the fields of attachments inside a pod
 * (placement, endpoint, parent, routeMtu...): a host-veth file is still one layout-1 code reads
 * (readableFrom 1: its schema drops them), an in-pod one is not (layoutOfState).
 */
export const STATE_LAYOUT: LayoutVersion = { version: 2, readableFrom: 1 };

/** The layout a state file is written with: an in-pod attachment's only code of layout 2 or later can use. */
export function layoutOfState(s: { placement?: string }): LayoutVersion {
  return s.placement === 'pod' ? { version: STATE_LAYOUT.version, readableFrom: 2 } : { ...STATE_LAYOUT };
}

/** One step: a layout `to` − 1 file's fields (parsed JSON) to layout `to`. */
export interface StateMigration {
  to: number;
  up(fields: Record<string, unknown>): Record<string, unknown>;
}

/** Every state file migration of this build, by target layout. */
export const STATE_MIGRATIONS: readonly StateMigration[] = [
  // A layout-1 file is a host-veth attachment; the schema reads its absent placement and endpoint as that.
  { to: 2, up: (fields) => fields },
];

/** A state file this build cannot read. */
export class StateLayoutError extends Error {}

function layoutOf(fields: Record<string, unknown>): LayoutVersion {
  const l = fields.layout as Partial<LayoutVersion> | undefined;
  const version = typeof l?.version === 'number' ? l.version : 1;
  return { version, readableFrom: typeof l?.readableFrom === 'number' ? l.readableFrom : version };
}

/**
 * A state file's parsed JSON in this build's layout: migrated up from an older one, kept as it is
 * from a newer one this build can read (its schema drops what it does not know), refused otherwise. Pure.
 */
export function stateInOwnLayout(
  raw: unknown,
  own: LayoutVersion = STATE_LAYOUT,
  migrations: readonly StateMigration[] = STATE_MIGRATIONS,
): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  let fields = raw as Record<string, unknown>;
  const found = layoutOf(fields);
  if (found.version === own.version) return fields;
  if (found.version > own.version) {
    if (found.readableFrom <= own.version) return fields;
    throw new StateLayoutError(
      `written in state layout ${found.version}, which only code of layout ${found.readableFrom} or later can read; this build is layout ${own.version}`,
    );
  }
  for (let v = found.version + 1; v <= own.version; v++) {
    const step = migrations.find((m) => m.to === v);
    if (!step) throw new StateLayoutError(`no migration of state files from layout ${v - 1} to ${v} in this build`);
    fields = step.up(fields);
  }
  return { ...fields, layout: { ...own } };
}
