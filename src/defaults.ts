/**
 * Where afsteer keeps things on a node when nothing says otherwise: the one place for the default
 * paths and port that the plugin, the operator commands and afsteerd share.
 */
import { join } from 'node:path';

/** bpffs directory of afsteer's pinned programs and maps. */
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/afsteer';
/** Directory of the attachment state files and the node lock. */
export const DEFAULT_STATE_DIR = '/var/lib/afsteer';
/** afsteerd's control socket (the plugin's notifications, `afsteerd status`). */
export const DEFAULT_CONTROL_SOCKET = '/run/afsteer/afsteerd.sock';
/** Name of the node lock file inside the state dir. */
export const LOCK_FILE = 'afsteer.lock';
/** Default UDP port of afsteerd (both families). */
export const DEFAULT_PORT = 6170;

/** The node lock of a state dir. */
export function nodeLockPath(stateDir: string): string {
  return join(stateDir, LOCK_FILE);
}
