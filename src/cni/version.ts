/** CNI spec versions afsteer speaks, and version comparison. */

/** Spec versions afsteer accepts in configs and reports from VERSION. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** The version afsteer itself implements. */
export const CURRENT_VERSION = '1.1.0';

/** True when afsteer can handle a config of this cniVersion. */
export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares two dotted versions numerically (-1, 0, 1). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** True when results of this version carry ips[].version ("4"/"6"), i.e. before 1.0.0. */
export function resultHasIpVersion(v: string): boolean {
  return compareVersions(v, '1.0.0') < 0;
}
