/**
 * What the path keys of the config (pinDir, stateDir, logFile) may be, decided on the text alone
 * (pure, before anything touches the filesystem). The filesystem checks that need the kernel
 * (file types, owners, bpffs) are in src/util/safe-fs.ts and src/bpf/programs.ts.
 */
import { posix } from 'node:path';

/** Where the node's bpf filesystem is conventionally mounted. */
export const BPFFS_ROOT = '/sys/fs/bpf';
/** The directory a logFile may be in besides the stateDir. */
export const LOG_ROOT = '/var/log';
/** Longest path accepted (PATH_MAX includes the NUL). */
export const PATH_MAX = 4095;

/** Why text is not an acceptable path for a config key, or undefined when it is. */
export function pathProblem(text: string): string | undefined {
  if (!text.startsWith('/')) return 'must be an absolute path';
  if (text.length > PATH_MAX) return `must be at most ${PATH_MAX} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(text)) return 'must not contain NUL or control characters';
  if (text.split('/').some((s) => s === '..' || s === '.')) return "must not contain '.' or '..' components";
  return undefined;
}

/** The path with repeated and trailing slashes removed ("/a//b/" → "/a/b"); only for paths pathProblem accepts. */
export function normalizePath(text: string): string {
  return posix.normalize(text).replace(/(.)\/+$/, '$1');
}

/** True when path is dir or inside it (both normalised). */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : dir + '/');
}

/** Why logFile may not be used with this stateDir, or undefined: it must lie under /var/log or under the stateDir. */
export function logFileProblem(logFile: string, stateDir: string): string | undefined {
  if (logFile === LOG_ROOT || logFile === stateDir) return 'must be a file, not the directory itself';
  if (isWithin(logFile, LOG_ROOT) || isWithin(logFile, stateDir)) return undefined;
  return `must be under ${LOG_ROOT}/ or under the stateDir (${stateDir}/)`;
}

/**
 * Whether afsteer may mount a bpf filesystem before using pinDir: only on /sys/fs/bpf itself,
 * only when it is not a bpffs already (a mount there would hide every pin on the node), and
 * only for a pinDir under it. Anything else is used as it is or refused.
 */
export function shouldMountBpffs(pinDir: string, rootIsBpffs: boolean, rootExists: boolean): boolean {
  return rootExists && !rootIsBpffs && isWithin(pinDir, BPFFS_ROOT);
}
