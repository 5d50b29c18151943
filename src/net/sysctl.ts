/** Per-namespace sysctls under /proc/sys/net (the namespace is the calling thread's at open time). */
import { readFileSync, writeFileSync } from 'node:fs';

function path(segments: string[]): string {
  for (const s of segments)
    if (!s || s === '.' || s === '..' || s.includes('/')) throw new Error(`refusing sysctl path segment ${JSON.stringify(s)}`);
  return '/proc/sys/net/' + segments.join('/');
}

/** Writes net/<segments...> (segments are used verbatim, so interface names with dots are fine). */
export function setNetSysctl(segments: string[], value: string): void {
  try {
    writeFileSync(path(segments), value);
  } catch (err) {
    throw new Error(`cannot set sysctl net.${segments.join('.')}=${value}`, { cause: err });
  }
}

/** Reads net/<segments...>, trimmed. */
export function getNetSysctl(segments: string[]): string {
  return readFileSync(path(segments), 'utf8').trim();
}
