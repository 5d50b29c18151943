/** Announcements in parts (src/negotiator/protocol/announce.ts): split to fit, put together in any order, generations kept apart. */
import { describe, expect, it } from 'vitest';
import {
  type AnnounceBase,
  addAnnouncePart,
  announcementPayloads,
  MAX_PODS_PER_PART,
  type Reassembly,
} from '../../../src/negotiator/protocol/announce';
import { payloadRoom } from '../../../src/negotiator/protocol/frame';
import { type AnnouncedEndpoint, AnnounceSchema, parsePayload } from '../../../src/negotiator/protocol/messages';

const base: AnnounceBase = {
  addresses: { ipv4: '10.0.0.1', ipv6: 'fd00::1' },
  port: 6170,
  supported_families: ['IPv4', 'IPv6'],
  capabilities: ['probe-v1'],
};
const pods = (n: number): AnnouncedEndpoint[] =>
  Array.from({ length: n }, (_, i) => ({
    cnf: `namespace-${i}/a-rather-long-pod-name-${i}`,
    ipv4: `10.244.${i >> 8}.${i & 255}`,
    ipv6: `fd00:244::${i.toString(16)}`,
  }));

describe('announcements in parts', () => {
  it.each([0, 1, 10, 64, 65, 300])('%i pods: every part fits and parses, none holds more than 64, all come back', (n) => {
    const room = payloadRoom('node-1');
    const parts = announcementPayloads(base, pods(n), 7, room);
    let r: Reassembly | undefined;
    let complete: Map<string, AnnouncedEndpoint> | undefined;
    // Reverse order: parts may arrive in any order.
    for (const p of [...parts].reverse()) {
      expect(p.length).toBeLessThanOrEqual(room);
      const a = parsePayload(AnnounceSchema, p)!;
      expect(a).toBeDefined();
      expect(a.endpoints.length).toBeLessThanOrEqual(MAX_PODS_PER_PART);
      expect(a).toMatchObject({ gen: 7, parts: parts.length });
      expect(complete).toBeUndefined();
      ({ state: r, complete } = addAnnouncePart(r, a));
    }
    expect([...complete!.keys()].sort()).toEqual(
      pods(n)
        .map((e) => e.cnf)
        .sort(),
    );
  });

  it('a part of another generation starts again: interleaved generations never mix; the next whole one completes', () => {
    const a = announcementPayloads(base, pods(100), 1, payloadRoom('n')).map((p) => parsePayload(AnnounceSchema, p)!);
    const b = announcementPayloads(base, pods(90), 2, payloadRoom('n')).map((p) => parsePayload(AnnounceSchema, p)!);
    expect(a.length).toBeGreaterThan(1);
    let s = addAnnouncePart(undefined, a[0]!);
    s = addAnnouncePart(s.state, b[0]!);
    for (const p of a.slice(1)) {
      s = addAnnouncePart(s.state, p);
      expect(s.complete).toBeUndefined();
    }
    for (const p of b) s = addAnnouncePart(s.state, p);
    expect(s.complete?.size).toBe(90);
  });

  it('addresses come back canonical', () => {
    const a = {
      ...parsePayload(AnnounceSchema, announcementPayloads(base, [], 1, 1200)[0]!)!,
      endpoints: [{ cnf: 'x', ipv4: '10.0.0.9', ipv6: 'FD00:0::9' }],
    };
    expect(addAnnouncePart(undefined, a).complete!.get('x')!.ipv6).toBe('fd00::9');
  });
});
