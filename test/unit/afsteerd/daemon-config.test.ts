import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PORT } from '../../../src/defaults';
import { authModeOf, DEFAULT_ETCD_PREFIX, parseDaemonConfig } from '../../../src/negotiator/daemon-config';

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
    expect(c.optimizeForMemory).toBe(true);
    expect(parseDaemonConfig('{"nodeName":"a","keyFile":"/k","optimizeForMemory":false}').optimizeForMemory).toBe(false);
    for (const bad of ['"yes"', '"true"', '1', 'null', '[]', '{}'])
      expect(() => parseDaemonConfig(`{"nodeName":"a","keyFile":"/k","optimizeForMemory":${bad}}`)).toThrow(
        /^config: optimizeForMemory: must be a boolean$/,
      );
  });
  it('auth: identity alone means identity, keyFile alone cluster-key, both both; each mode needs its credentials', () => {
    const mode = (j: object) => authModeOf(parseDaemonConfig(JSON.stringify({ nodeName: 'a', ...j })));
    expect(mode({ identity: '/id' })).toBe('identity');
    expect(mode({ keyFile: '/k' })).toBe('cluster-key');
    expect(mode({ keyFile: '/k', identity: '/id' })).toBe('both');
    expect(mode({ keyFile: '/k', identity: '/id', auth: 'identity' })).toBe('identity');
    expect(() => mode({})).toThrow(/^config: keyFile: needs keyFile, identity or both$/);
    expect(() => mode({ identity: '/id', auth: 'both' })).toThrow(/keyFile: auth cluster-key and both need keyFile/);
    expect(() => mode({ keyFile: '/k', auth: 'identity' })).toThrow(/identity: auth identity and both need identity/);
    expect(() => mode({ keyFile: '/k', auth: 'cluster' })).toThrow(/auth: must be one of "cluster-key", "identity", "both"/);
    expect(() => mode({ keyFile: '/k', revocations: '/r' })).toThrow(/revocations: needs identity/);
    expect(() => mode({ identity: 'id' })).toThrow(/identity: must be an absolute path/);
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
    ['{"nodeName":"a","keyFile":"/k","probe":{"demandIntervalMs":-1}}', /probe\.demandIntervalMs: must be ≥ 0/],
    ['{"nodeName":"a","keyFile":"/k","probe":{"demandIntervalMs":1e12}}', /probe\.demandIntervalMs: must be ≤ 60000/],
    ['{"nodeName":"a","keyFile":"/k","probe":{"demandIntervalMs":"250"}}', /probe\.demandIntervalMs: /],
    ['{"nodeName":"a","keyFile":"/k","probe":{"demandIntervalMs":2.5}}', /probe\.demandIntervalMs: must be an integer/],
    ['{"nodeName":"a","keyFile":"/k","addresses":{"ipv4":"fe80::1"}}', /addresses\.ipv4: must be an IPv4 address/],
    ['{"nodeName":"a","keyFile":"/k","addresses":{"ipv6":"fe80::1%eth0"}}', /addresses\.ipv6: must be an IPv6 address without a zone/],
    ['{"nodeName":"a","keyFile":"/k","discovery":{"static":[{}]}}', /discovery\.static\.0: needs ipv4, ipv6 or both/],
    ['{"nodeName":"a","keyFile":"/k","policy":{"criterion":"fastest"}}', /policy\.criterion: /],
    [
      '{"nodeName":"a","keyFile":"/k","policy":{"criterion":"lowest-loss","protect":"sometimes"}}',
      /policy\.protect: must be one of "off", "on-suspicion", "always"/,
    ],
    ['{"nodeName":"a","keyFile":"/k","protection":{"budgetBytesPerSecond":-1}}', /protection\.budgetBytesPerSecond: must be ≥ 0/],
    ['{"nodeName":"a","keyFile":"/k","protection":{"bogus":1}}', /protection\.bogus: unknown key/],
    ['{"nodeName":"a","keyFile":"/k","timers":{"announceRefreshMs":"7500"}}', /timers\.announceRefreshMs: must be a number/],
    ['{"nodeName":"a","keyFile":"/k","timers":{"announceRefreshMs":1e12}}', /timers\.announceRefreshMs: must be ≤ 600000/],
    ['{"nodeName":"a","keyFile":"/k","timers":{"announceRefreshMs":10}}', /timers\.announceRefreshMs: must be ≥ 50/],
    ['{"nodeName":"a","keyFile":"/k","timers":{"announceRefreshMs":7500.5}}', /timers\.announceRefreshMs: must be an integer$/],
    ['{"nodeName":"a","keyFile":"/k","timers":{"mapsResyncMs":null}}', /timers\.mapsResyncMs: must be a number/],
    ['{"nodeName":"a","keyFile":"/k","timers":{"mapsResyncMs":1e300}}', /timers\.mapsResyncMs: must be an integer number of ms/],
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

describe('afsteerd config: discovery.etcd', () => {
  const cfg = (etcd: unknown) => `{"nodeName":"a","keyFile":"/k","discovery":{"etcd":${JSON.stringify(etcd)}}}`;
  it('is absent unless configured', () => {
    expect(parseDaemonConfig('{"nodeName":"a","keyFile":"/k"}').discovery.etcd).toBeUndefined();
  });
  it('fills defaults', () => {
    const e = parseDaemonConfig(cfg({ endpoints: ['http://127.0.0.1:2379'] })).discovery.etcd!;
    expect(e).toEqual({ endpoints: ['http://127.0.0.1:2379'], prefix: DEFAULT_ETCD_PREFIX, leaseTtlS: 10, maxRecordAgeS: 300 });
  });
  it('takes TLS files, a prefix and a TTL', () => {
    const e = parseDaemonConfig(
      cfg({
        endpoints: ['https://etcd-1.example:2379', 'https://[fd00::1]:2379'],
        prefix: '/c1/afsteer/',
        ca: '/etc/afsteer/etcd-ca.pem',
        cert: '/etc/afsteer/etcd.pem',
        key: '/etc/afsteer/etcd-key.pem',
        leaseTtlS: 3,
      }),
    ).discovery.etcd!;
    expect(e.prefix).toBe('/c1/afsteer/');
    expect(e.leaseTtlS).toBe(3);
    expect(e.cert).toBe('/etc/afsteer/etcd.pem');
  });
  it.each([
    [{}, /discovery\.etcd\.endpoints: /],
    [{ endpoints: [] }, /discovery\.etcd\.endpoints: needs at least one endpoint/],
    [{ endpoints: ['127.0.0.1:2379'] }, /discovery\.etcd\.endpoints\.0: must be http\(s\):\/\/host:port/],
    [{ endpoints: ['http://127.0.0.1'] }, /discovery\.etcd\.endpoints\.0: must be http\(s\):\/\/host:port/],
    [{ endpoints: ['unix:///run/etcd.sock'] }, /discovery\.etcd\.endpoints\.0: /],
    [{ endpoints: ['http://h:2379/path'] }, /discovery\.etcd\.endpoints\.0: /],
    [{ endpoints: ['http://h:2379'], prefix: 'afsteer/' }, /discovery\.etcd\.prefix: must start and end with "\/"/],
    [{ endpoints: ['http://h:2379'], prefix: '/afsteer' }, /discovery\.etcd\.prefix: /],
    [{ endpoints: ['http://h:2379'], prefix: '/a b/' }, /discovery\.etcd\.prefix: /],
    [{ endpoints: ['https://h:2379'], ca: 'ca.pem' }, /discovery\.etcd\.ca: must be an absolute path/],
    [{ endpoints: ['https://h:2379'], cert: '/c.pem' }, /discovery\.etcd\.cert: cert and key go together/],
    [{ endpoints: ['https://h:2379'], key: '/k.pem' }, /discovery\.etcd\.cert: cert and key go together/],
    [{ endpoints: ['http://h:2379'], ca: '/ca.pem' }, /discovery\.etcd\.endpoints: ca\/cert need https endpoints/],
    [{ endpoints: ['http://h:2379'], leaseTtlS: 1 }, /discovery\.etcd\.leaseTtlS: must be ≥ 2/],
    [{ endpoints: ['http://h:2379'], leaseTtlS: 2.5 }, /discovery\.etcd\.leaseTtlS: must be /],
    [{ endpoints: ['http://h:2379'], maxRecordAgeS: 5 }, /discovery\.etcd\.maxRecordAgeS: must be ≥ 20/],
    [{ endpoints: ['http://h:2379'], username: 'x' }, /discovery\.etcd\.username: unknown key/],
    [{ endpoints: ['http://h:2379'], user: 'x' }, /discovery\.etcd\.passwordFile: user needs passwordFile/],
    [{ endpoints: ['http://h:2379'], passwordFile: 'pw' }, /discovery\.etcd\.passwordFile: must be an absolute path/],
    ['http://h:2379', /discovery\.etcd: must be an object/],
  ])('rejects %j with one line naming the key', (etcd, re) => {
    expect(() => parseDaemonConfig(cfg(etcd))).toThrow(re);
  });
});
