/** Text from the node (pod names, container ids, interface names) made safe to print on a terminal. */

/** s with control characters (C0, DEL, C1) escaped as \xNN, so a name cannot move the cursor or change the terminal. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f\\]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** Rows under a header as aligned text columns, every cell made printable. */
export function table(head: string[], rows: string[][]): string {
  const cells = rows.map((r) => r.map(printable));
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => x.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  return [line(head), ...cells.map(line)].join('\n') + '\n';
}
