/**
 * Announcements in parts: a node's pod list split into datagrams that fit (at most 64 pods
 * each), and put together again on the receiving side. A list counts only once every part of
 * one generation has arrived. Pure.
 */
import { canonical } from '../../net/ip';
import type { Announce, AnnouncedEndpoint } from './messages';

/** Most pods in one announcement part. */
export const MAX_PODS_PER_PART = 64;
/** Most parts of one announcement. */
export const MAX_PARTS = 1024;

/** What every part of an announcement carries besides its pods. */
export type AnnounceBase = Omit<Announce, 'gen' | 'part' | 'parts' | 'endpoints'>;

/** The payloads of one announcement generation: the pods split so each part fits room bytes. */
export function announcementPayloads(base: AnnounceBase, endpoints: AnnouncedEndpoint[], gen: number, room: number): Buffer[] {
  const size = (c: AnnouncedEndpoint[]) =>
    Buffer.byteLength(JSON.stringify({ ...base, gen, part: MAX_PARTS - 1, parts: MAX_PARTS, endpoints: c }));
  const chunks: AnnouncedEndpoint[][] = [];
  let cur: AnnouncedEndpoint[] = [];
  for (const e of endpoints) {
    if (cur.length >= MAX_PODS_PER_PART || size([...cur, e]) > room) {
      chunks.push(cur);
      cur = [];
    }
    cur.push(e);
  }
  chunks.push(cur);
  return chunks
    .slice(0, MAX_PARTS)
    .map((c, part) => Buffer.from(JSON.stringify({ ...base, gen, part, parts: chunks.length, endpoints: c })));
}

/** An announcement being put together. */
export interface Reassembly {
  gen: number;
  total: number;
  parts: Map<number, AnnouncedEndpoint[]>;
}

/**
 * Adds one part: a part of another generation (or part count) starts again. Returns the state
 * to keep and, once every part is in, the complete pod list by CNF id (addresses canonical).
 */
export function addAnnouncePart(r: Reassembly | undefined, a: Announce): { state?: Reassembly; complete?: Map<string, AnnouncedEndpoint> } {
  const state =
    r && r.gen === a.gen && r.total === a.parts ? r : { gen: a.gen, total: a.parts, parts: new Map<number, AnnouncedEndpoint[]>() };
  state.parts.set(a.part, a.endpoints);
  if (state.parts.size !== state.total) return { state };
  const all = new Map<string, AnnouncedEndpoint>();
  for (const list of state.parts.values())
    for (const e of list) all.set(e.cnf, { cnf: e.cnf, ipv4: canonical(e.ipv4), ipv6: canonical(e.ipv6) });
  return { complete: all };
}
