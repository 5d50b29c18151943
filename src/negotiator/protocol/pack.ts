/** Packs a peer's pair entries and dropped-pair notices into negotiation payloads that each fit one datagram. Pure. */
import type { Negotiate, PairMessage } from './messages';

/** Most pairs, and most dropped notices, in one message (the schema's limit). */
export const MAX_PER_MESSAGE = 32;

/** Greedy packing: every entry and notice exactly once, ≤ MAX_PER_MESSAGE of each and ≤ room bytes of JSON per message. */
export function packNegotiate(to: string, entries: PairMessage[], dropped: string[], room: number): Negotiate[] {
  const out: Negotiate[] = [];
  let msg: Negotiate = { to, pairs: [] };
  const size = (m: Negotiate) => Buffer.byteLength(JSON.stringify(m));
  const flush = () => {
    if (msg.pairs.length || msg.dropped?.length) out.push(msg);
    msg = { to, pairs: [] };
  };
  for (const e of entries) {
    if (msg.pairs.length >= MAX_PER_MESSAGE || size({ ...msg, pairs: [...msg.pairs, e] }) > room) flush();
    msg.pairs.push(e);
  }
  for (const d of dropped) {
    const next = [...(msg.dropped ?? []), d];
    if (next.length > MAX_PER_MESSAGE || size({ ...msg, dropped: next }) > room) {
      flush();
      msg.dropped = [d];
    } else {
      msg.dropped = next;
    }
  }
  flush();
  return out;
}
