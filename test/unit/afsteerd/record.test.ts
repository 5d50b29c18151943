import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { diffTargets, RecordBook } from '../../../src/negotiator/discovery/book';
import { decodeFrame, encodeFrame } from '../../../src/negotiator/protocol/frame';
import { decodeRecord, encodeRecord, MAX_RECORD, type SignedRecord } from '../../../src/negotiator/protocol/record';

const key = Buffer.alloc(32, 7);
const other = Buffer.alloc(32, 8);
const T = 1_700_000_000_000;
const rec = (over: Partial<SignedRecord> = {}): SignedRecord => ({
  node: 'node-b',
  addresses: { ipv4: '192.0.2.2', ipv6: '2001:db8::2' },
  port: 6170,
  families: ['IPv4', 'IPv6'],
  epoch: 1000n,
  seq: 1n,
  writtenAt: T,
  ...over,
});

describe('etcd record', () => {
  it('round-trips', () => {
    const v = encodeRecord(key, rec());
    expect(v).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(decodeRecord(key, v)).toEqual(rec());
    expect(decodeRecord(key, Buffer.from(v))).toEqual(rec());
  });
  it('refuses another key, any flipped bit, and junk', () => {
    const v = encodeRecord(key, rec());
    expect(decodeRecord(other, v)).toBe('mac');
    const b = Buffer.from(v, 'base64');
    for (let i = 0; i < b.length; i += 7) {
      const c = Buffer.from(b);
      c[i]! ^= 0x10;
      expect(decodeRecord(key, c.toString('base64'))).not.toHaveProperty('node');
    }
    expect(decodeRecord(key, 'not base64!')).toBe('encoding');
    expect(decodeRecord(key, '')).toBe('short');
    expect(decodeRecord(key, 'A'.repeat(4000))).toBe('oversized');
    expect(decodeRecord(key, JSON.stringify({ node: 'x' }))).toBe('encoding');
  });
  it('a datagram frame signed with the cluster key is not a record (and a record is not a datagram)', () => {
    const f = encodeFrame(key, { type: 'announce', epoch: 1n, seq: 1n, node: 'node-b', payload: Buffer.from('{"addresses":{}}') });
    expect(decodeRecord(key, f.toString('base64'))).toBe('magic');
    expect(decodeFrame(key, Buffer.from(encodeRecord(key, rec()), 'base64'))).toBe('magic');
  });
  it('refuses a payload that is MAC-valid but not a record', () => {
    // Build a valid MAC around a bad payload by hand.
    const mk = (payload: string) => {
      const node = Buffer.from('node-b');
      const b = Buffer.alloc(29 + node.length + payload.length + 32);
      b.write('AR', 0, 'ascii');
      b[2] = 1;
      b.writeBigUInt64BE(1n, 4);
      b.writeBigUInt64BE(1n, 12);
      b.writeBigUInt64BE(BigInt(T), 20);
      b[28] = node.length;
      node.copy(b, 29);
      b.write(payload, 29 + node.length);
      createHmac('sha256', key)
        .update(b.subarray(0, b.length - 32))
        .digest()
        .copy(b, b.length - 32);
      return b.toString('base64');
    };
    expect(decodeRecord(key, mk('{'))).toBe('payload');
    expect(decodeRecord(key, mk('{"addresses":{"ipv4":"192.0.2.2"},"port":6170,"families":["IPv6"]}'))).toBe('payload');
    expect(decodeRecord(key, mk('{"addresses":{"ipv4":"192.0.2.2"},"port":6170,"families":["IPv4"],"x":1}'))).toBe('payload');
    expect(decodeRecord(key, mk('{"addresses":{"ipv4":"192.0.2.2"},"port":6170,"families":["IPv4"]}'))).toHaveProperty('node', 'node-b');
  });
  it('refuses to encode what it would refuse to decode', () => {
    expect(() => encodeRecord(key, rec({ node: 'bad name' }))).toThrow(/invalid node name/);
    expect(() => encodeRecord(key, rec({ addresses: { ipv4: '192.0.2.2' } }))).toThrow(/families need their address/);
    expect(() => encodeRecord(key, rec({ port: 0 }))).toThrow(/invalid record/);
    expect(MAX_RECORD).toBeGreaterThan(Buffer.from(encodeRecord(key, rec({ node: 'n'.repeat(63) })), 'base64').length);
  });
});

describe('RecordBook', () => {
  const P = '/afsteer/nodes/';
  const book = () => new RecordBook({ key, prefix: P, self: 'node-a', maxAgeMs: 300_000, graceMs: 20_000 });
  it('adds, changes and deletes targets', () => {
    const b = book();
    expect(b.put(P + 'node-b', encodeRecord(key, rec()), T)).toBe('added');
    expect(b.put(P + 'node-b', encodeRecord(key, rec()), T)).toBe('same');
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ seq: 2n })), T)).toBe('same');
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ seq: 3n, port: 7000 })), T)).toBe('changed');
    expect(b.targets()).toEqual([{ node: 'node-b', addresses: rec().addresses, port: 7000, families: ['IPv4', 'IPv6'] }]);
    expect(b.delete(P + 'node-b')).toBe(true);
    expect(b.targets()).toEqual([]);
    expect(b.delete(P + 'node-b')).toBe(false);
  });
  it('own record is not a target', () => {
    const b = book();
    expect(b.put(P + 'node-a', encodeRecord(key, rec({ node: 'node-a' })), T)).toBe('self');
    expect(b.targets()).toEqual([]);
  });
  it('refuses, and counts by reason: forged, wrong key name, replays, stale and future records', () => {
    const b = book();
    expect(b.put(P + 'node-b', encodeRecord(other, rec()), T)).toEqual({ refused: 'mac' });
    expect(b.put(P + 'node-b', '{"node":"node-b","port":1}', T)).toEqual({ refused: 'encoding' });
    expect(b.put(P + 'node-c', encodeRecord(key, rec()), T)).toEqual({ refused: 'name' });
    expect(b.put(P + 'x/node-b', encodeRecord(key, rec()), T)).toEqual({ refused: 'name' });
    expect(b.put('/other/node-b', encodeRecord(key, rec()), T)).toEqual({ refused: 'name' });
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ writtenAt: T - 300_001 })), T)).toEqual({ refused: 'stale' });
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ writtenAt: T + 300_001 })), T)).toEqual({ refused: 'future' });
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ epoch: 1000n, seq: 5n })), T)).toBe('added');
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ epoch: 1000n, seq: 4n })), T)).toEqual({ refused: 'replay' });
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ epoch: 999n, seq: 99n })), T)).toEqual({ refused: 'replay' });
    // Dropped (lease expired), then the very record put back by someone: a replay.
    b.delete(P + 'node-b');
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ epoch: 1000n, seq: 5n })), T)).toEqual({ refused: 'replay' });
    // The writer itself (a new put, or a new boot) is accepted.
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ epoch: 1000n, seq: 6n })), T)).toBe('added');
    expect(b.put(P + 'node-b', encodeRecord(key, rec({ epoch: 2000n, seq: 1n })), T)).toBe('same');
    expect(b.refused).toEqual({ mac: 1, encoding: 1, name: 3, stale: 1, future: 1, replay: 3 });
    expect(b.targets().map((t) => t.node)).toEqual(['node-b']);
  });
  it('keeps targets missing after a resync until etcd has been reachable for the grace period', () => {
    const b = book();
    b.put(P + 'node-b', encodeRecord(key, rec()), T);
    b.put(P + 'node-c', encodeRecord(key, rec({ node: 'node-c' })), T);
    // etcd came back with node-c only (node-b has not re-put yet).
    b.resync([{ key: P + 'node-c', value: encodeRecord(key, rec({ node: 'node-c' })) }], T);
    expect(b.expire(T, undefined)).toEqual([]);
    expect(b.expire(T, 19_999)).toEqual([]);
    expect(b.targets().map((t) => t.node)).toEqual(['node-b', 'node-c']);
    // node-b re-puts in time: it stays.
    b.put(P + 'node-b', encodeRecord(key, rec({ seq: 2n })), T);
    expect(b.expire(T, 20_000)).toEqual([]);
    // Missing again and not back within the grace: dropped.
    b.resync([{ key: P + 'node-c', value: encodeRecord(key, rec({ node: 'node-c' })) }], T);
    expect(b.expire(T, 20_000)).toEqual(['node-b']);
    expect(b.targets().map((t) => t.node)).toEqual(['node-c']);
  });
  it('expires records not refreshed within maxAge, only while etcd is reachable', () => {
    const b = book();
    b.put(P + 'node-b', encodeRecord(key, rec()), T);
    expect(b.expire(T + 400_000, undefined)).toEqual([]);
    expect(b.expire(T + 400_000, 30_000)).toEqual(['node-b']);
  });
  it('diffTargets', () => {
    const t = (node: string, port = 1) => ({ node, addresses: { ipv4: '192.0.2.1' }, port, families: ['IPv4' as const] });
    expect(diffTargets([t('a'), t('b')], [t('b', 2), t('c')])).toEqual({ added: ['c'], removed: ['a'], changed: ['b'] });
    expect(diffTargets([t('a')], [t('a')])).toEqual({ added: [], removed: [], changed: [] });
  });
});
