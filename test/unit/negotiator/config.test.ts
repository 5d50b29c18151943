import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PORT } from '../../../src/defaults';
import { parseDaemonConfig } from '../../../src/negotiator/config';

describe('afsteerd config', () => {
  it('fills defaults', () => {
    const c = parseDaemonConfig('{"nodeName":"node-a","keyFile":"/etc/afsteer/key"}');
    expect(c.port).toBe(DEFAULT_PORT);
    expect(c.pinDir).toBe('/sys/fs/bpf/afsteer');
    expect(c.controlSocket).toBe('/run/afsteer/afsteerd.sock');
    expect(c.probe.activeIntervalMs).toBe(20);
    expect(c.timers.peerTimeoutMs).toBe(5000);
    expect(c.selection.holdDownMs).toBe(10000);
    expect(c.policy.criterion).toBe('lowest-latency');
    expect(c.discovery.static).toEqual([]);
  });
  it('the example in conf/afsteerd.json is valid', () => {
    const c = parseDaemonConfig(readFileSync(join(import.meta.dirname, '..', '..', '..', 'conf', 'afsteerd.json'), 'utf8'));
    expect(c.discovery.multicast).toEqual({ ipv4Group: '239.255.61.70', ipv6Group: 'ff02::6170' });
    expect(c.discovery.static).toHaveLength(1);
  });
  it.each([
    ['{', /not valid JSON/],
    ['[]', /\(top level\)/],
    ['{"keyFile":"/k"}', /^config: nodeName: /],
    ['{"nodeName":"a b","keyFile":"/k"}', /nodeName: must be 1–63 characters/],
    ['{"nodeName":"a","keyFile":"k"}', /keyFile: must be an absolute path/],
    ['{"nodeName":"a","keyFile":"/k","port":0}', /port: must be 1–65535/],
    ['{"nodeName":"a","keyFile":"/k","port":"80"}', /port: /],
    ['{"nodeName":"a","keyFile":"/k","probe":{"activeIntervalMs":1}}', /probe\.activeIntervalMs: must be ≥ 5/],
    ['{"nodeName":"a","keyFile":"/k","probe":{"idleIntervalMs":10}}', /probe\.idleIntervalMs: must be ≥ 1000/],
    ['{"nodeName":"a","keyFile":"/k","addresses":{"ipv4":"fe80::1"}}', /addresses\.ipv4: must be an IPv4 address/],
    ['{"nodeName":"a","keyFile":"/k","addresses":{"ipv6":"fe80::1%eth0"}}', /addresses\.ipv6: must be an IPv6 address without a zone/],
    ['{"nodeName":"a","keyFile":"/k","discovery":{"static":[{}]}}', /discovery\.static\.0: needs ipv4, ipv6 or both/],
    ['{"nodeName":"a","keyFile":"/k","policy":{"criterion":"fastest"}}', /policy\.criterion: /],
    ['{"nodeName":"a","keyFile":"/k","bogus":1}', /bogus/],
    ['{"nodeName":"a","keyFile":"/k","__proto__":{"x":1}}', /__proto__|config/],
    ['{"nodeName":"a","keyFile":"/k","controlSocket":"/' + 'x'.repeat(200) + '"}', /controlSocket: must fit a unix socket path/],
  ])('rejects %s with one line naming the key', (text, re) => {
    expect(() => parseDaemonConfig(text)).toThrow(re);
    try {
      parseDaemonConfig(text);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
