/** Pure path predicates on normalised absolute paths. */

/** True when path is dir or inside it (both normalised). */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : dir + '/');
}
