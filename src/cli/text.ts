/** Text from the node (pod names, container ids, interface names) made safe to print on a terminal. */

/** s with control characters (C0, DEL, C1) escaped as \xNN, so a name cannot move the cursor or change the terminal. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f\\]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
