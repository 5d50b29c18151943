/** The bpf filesystem rules, decided on the text alone (pure); src/bpf/programs.ts applies them. */
import { isWithin } from '../util/paths';

/** Where the node's bpf filesystem is conventionally mounted. */
export const BPFFS_ROOT = '/sys/fs/bpf';

/**
 * Whether afsteer may mount a bpf filesystem before using pinDir: only on /sys/fs/bpf itself,
 * only when it is not a bpffs already (a mount there would hide every pin on the node), and
 * only for a pinDir under it. Anything else is used as it is or refused.
 */
export function shouldMountBpffs(pinDir: string, rootIsBpffs: boolean, rootExists: boolean): boolean {
  return rootExists && !rootIsBpffs && isWithin(pinDir, BPFFS_ROOT);
}
