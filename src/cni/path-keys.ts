/**
 * What the path keys of the config (pinDir, stateDir, logFile) may be, decided on the text alone
 * (pure, before anything touches the filesystem). The filesystem checks that need the kernel
 * (file types, owners, bpffs) are in src/util/safe-fs.ts and src/bpf/programs.ts; the bpffs
 * mount rule is src/bpf/bpffs.ts.
 */
import { posix } from 'node:path';
import { isWithin } from '../util/paths';

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

/** Why logFile may not be used with this stateDir, or undefined: it must lie under /var/log or under the stateDir. */
export function logFileProblem(logFile: string, stateDir: string): string | undefined {
  if (logFile === LOG_ROOT || logFile === stateDir) return 'must be a file, not the directory itself';
  if (isWithin(logFile, LOG_ROOT) || isWithin(logFile, stateDir)) return undefined;
  return `must be under ${LOG_ROOT}/ or under the stateDir (${stateDir}/)`;
}
