/** Text of thrown values for messages and logs: one rule, so every place says an error the same way. */

/** The message of a thrown value: an Error's (or error-like object's) message, else its string form. */
export function describeError(err: unknown): string {
  const message = err !== null && typeof err === 'object' ? (err as { message?: unknown }).message : undefined;
  return String(message ?? err);
}

/** The messages of an error and its causes ("a: b: c", at most five deep), or undefined for none. */
export function causeText(err: unknown): string | undefined {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    parts.push(cur instanceof Error ? cur.message : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.length ? parts.join(': ') : undefined;
}
