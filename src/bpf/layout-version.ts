/**
 * The layout version of what afsteer pins on a node: the set of pinned maps (names, types, key and
 * value layouts, sizes, meaning of their contents) and how the programs use them. No imports: the
 * executable's main script (the ADD hand-off) reads it before anything else is loaded.
 *
 * Bump `version` with every change to a pinned map and add a migration (src/bpf/pin-migrations.ts);
 * keep `readableFrom` when code of older layouts can still run on the new pins unchanged (a map
 * added; a field appended that older code never reads), raise it to `version` when it cannot (a
 * map renamed for a new key or value: older code would write the old one). docs/upgrades.md.
 */

/** A layout version and the oldest layout whose code may run on pins of this one as they are. */
export interface LayoutVersion {
  version: number;
  readableFrom: number;
}

/**
 * This build's pin layout. Layout 1 is every build before layouts were recorded (their pins carry
 * no record); layout 2 added maps and in-pod endpoint keys (pin-migrations.ts), which layout-1 code
 * never meets, so it may still run on them.
 */
export const PIN_LAYOUT: LayoutVersion = { version: 2, readableFrom: 1 };

/** Whether code of layouts a and b may share one node's pins (either order): the same, or the newer readable by the older. Pure. */
export function layoutsCompatible(a: LayoutVersion, b: LayoutVersion): boolean {
  if (a.version === b.version) return true;
  const [older, newer] = a.version < b.version ? [a, b] : [b, a];
  return newer.readableFrom <= older.version;
}
