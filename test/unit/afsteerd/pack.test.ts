/** Packing a peer's pairs and dropped notices into negotiation payloads that each fit one datagram. */
import { describe, expect, it } from 'vitest';
import { payloadRoom } from '../../../src/negotiator/protocol/frame';
import { NegotiateSchema, type PairMessage, parsePayload } from '../../../src/negotiator/protocol/messages';
import { MAX_PER_MESSAGE, packNegotiate } from '../../../src/negotiator/protocol/pack';

const entry = (i: number): PairMessage => ({
  source_CNF_ID: `default/web-7d9c8b6f4-x2k9p-${i}`,
  destination_CNF_ID: `default/api-5f6d7c8b9-abcde-${i}`,
  supported_families: ['IPv4', 'IPv6'],
  performance_metrics: {
    IPv4: { latency_ms: 12.345, jitter_ms: 0.812, packet_loss: 0.015, blackhole: false, samples: 200 },
    IPv6: { latency_ms: 8.1, jitter_ms: 0.5, packet_loss: 0, blackhole: false, samples: 200 },
  },
  preferred_family: 'IPv6',
  policy: { criterion: 'weighted', weights: { latency: 1, jitter: 0.5, loss: 4 } },
  decap: true,
  round: 12345,
  active: true,
});
const room = payloadRoom('node-with-a-long-name-0123456789');

describe('packNegotiate', () => {
  it.each([
    [0, 0],
    [1, 0],
    [0, 1],
    [5, 40],
    [40, 5],
    [100, 100],
    [0, 200],
  ])('%i pairs and %i dropped: every one once, each payload within one datagram and valid', (n, d) => {
    const entries = Array.from({ length: n }, (_, i) => entry(i));
    const dropped = Array.from({ length: d }, (_, i) => `default/web-7d9c8b6f4-x2k9p-${i}|default/api-5f6d7c8b9-abcde-${i}`);
    const msgs = packNegotiate('node-b', entries, dropped, room);
    if (n === 0 && d === 0) expect(msgs).toEqual([]);
    for (const m of msgs) {
      const bytes = Buffer.from(JSON.stringify(m));
      expect(bytes.length).toBeLessThanOrEqual(room);
      expect(m.pairs.length).toBeLessThanOrEqual(MAX_PER_MESSAGE);
      expect(m.dropped?.length ?? 0).toBeLessThanOrEqual(MAX_PER_MESSAGE);
      expect(parsePayload(NegotiateSchema, bytes)).toEqual(m);
      expect(m.to).toBe('node-b');
    }
    expect(msgs.flatMap((m) => m.pairs)).toEqual(entries);
    expect(msgs.flatMap((m) => m.dropped ?? [])).toEqual(dropped);
  });
});
