import { describe, expect, it } from 'vitest';
import {
  bloomBit,
  counterIndex,
  decodeEndpoint,
  decodeRoute,
  decodeRouteKey,
  EndpointLayout,
  encodeEndpoint,
  encodeRoute,
  encodeRouteKey,
  RouteLayout,
} from '../../../src/bpf/maps-layout';
import { addressBytes, bytesToAddress, CANONICAL_MEMO, canonical, parseCidr } from '../../../src/net/ip';

describe('ip helpers', () => {
  it('round-trips addresses through bytes', () => {
    for (const a of ['10.1.2.3', 'fd00::1', '::', '2001:db8:0:1:1:1:1:1', 'fe80::1:0:0:1']) expect(bytesToAddress(addressBytes(a))).toBe(a);
    expect(canonical('FD00:0:0:0::0005')).toBe('fd00::5');
    expect(canonical('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
  });
  it('canonical stays right past its memo bound, and an invalid address still throws after a valid one', () => {
    for (let i = 0; i < CANONICAL_MEMO * 2 + 10; i++) {
      const long = `fd00:0:0:0:0:0:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16).padStart(4, '0')}`;
      expect(canonical(long)).toBe(bytesToAddress(addressBytes(long)));
      expect(canonical(long)).toBe(canonical(long.toUpperCase()));
    }
    expect(canonical('fd00:0::5')).toBe('fd00::5');
    expect(() => canonical('fd00::5%eth0')).toThrow(/not an IP address/);
    expect(() => canonical('not-an-address')).toThrow(/not an IP address/);
  });
  it('parses CIDRs and rejects bad ones', () => {
    expect(parseCidr('fd00:10::2/64')).toEqual({ family: 6, address: 'fd00:10::2', prefix: 64 });
    expect(() => parseCidr('10.0.0.1/33')).toThrow(/not a valid CIDR/);
  });
});

describe('map layout codecs', () => {
  it('encodes the endpoint as the header lays it out', () => {
    const b = encodeEndpoint({ ipv4: '10.0.0.2', ipv6: 'fd00::2', podIfindex: 7, slot: 5, ifindex: 33, routes: 2, routeBloom: 5n });
    expect(b.length).toBe(EndpointLayout.size);
    expect([...b.subarray(0, 4)]).toEqual([10, 0, 0, 2]);
    expect(b[4]).toBe(0xfd);
    expect(b.readUInt32LE(20)).toBe(3);
    expect(b.readUInt32LE(24)).toBe(7);
    expect(b.readUInt32LE(28)).toBe(5);
    expect(b.readUInt32LE(32)).toBe(33);
    expect(b.readUInt32LE(36)).toBe(2);
    expect(b.readBigUInt64LE(40)).toBe(5n);
    expect(decodeEndpoint(b)).toEqual({
      ipv4: '10.0.0.2',
      ipv6: 'fd00::2',
      podIfindex: 7,
      slot: 5,
      ifindex: 33,
      routes: 2,
      routeBloom: 5n,
    });
    expect(decodeEndpoint(encodeEndpoint({ ipv6: 'fd00::9', podIfindex: 1 }))).toEqual({
      ipv6: 'fd00::9',
      podIfindex: 1,
      slot: 0,
      ifindex: 0,
      routes: 0,
      routeBloom: 0n,
    });
  });
  it('computes bloom bits as AFSTEER_BLOOM_BIT does (fold, multiply, top 6 bits)', () => {
    // 10.2.0.2 loads as 0x0200020a on little-endian; (0x0200020a * 0x9E3779B1) mod 2^32 >> 26.
    expect(bloomBit('10.2.0.2')).toBe(Number(((BigInt(0x0200020a) * 0x9e3779b1n) % 2n ** 32n) >> 26n));
    const w = [0x000000fd, 0, 0, 0x02000000];
    expect(bloomBit('fd00::2')).toBe(Number(((BigInt((w[0]! ^ w[1]! ^ w[2]! ^ w[3]!) >>> 0) * 0x9e3779b1n) % 2n ** 32n) >> 26n));
    for (const a of ['10.0.0.1', 'fd00:1::2', '::']) {
      expect(bloomBit(a)).toBeGreaterThanOrEqual(0);
      expect(bloomBit(a)).toBeLessThan(64);
    }
  });
  it('indexes counter cells as AFSTEER_COUNTER_INDEX does', () => {
    expect(counterIndex(0, 0, 0)).toBe(0);
    expect(counterIndex(3, 1, 1)).toBe(3 * 6 + 2 + 1);
  });
  it('round-trips route keys and values', () => {
    expect(decodeRouteKey(encodeRouteKey(42, '10.2.0.2'))).toEqual({ ifindex: 42, family: 4, address: '10.2.0.2' });
    expect(decodeRouteKey(encodeRouteKey(42, 'fd00:2::2'))).toEqual({ ifindex: 42, family: 6, address: 'fd00:2::2' });
    const r = { wire: 'ipv6' as const, generation: 9, pair: 17, remote: { ipv4: '10.2.0.2', ipv6: 'fd00:2::2' } };
    const b = encodeRoute(r);
    expect(b.length).toBe(RouteLayout.size);
    expect(b[0]).toBe(6);
    expect(decodeRoute(b)).toEqual(r);
  });
});
