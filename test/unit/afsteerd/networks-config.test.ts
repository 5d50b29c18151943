/** afsteerd's `networks` and `primaryNetwork`: what is refused, and the negotiators planned from them (networks/plan.ts). */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDaemonConfig } from '../../../src/negotiator/daemon-config';
import { networkKey, networkOf, planNetworks } from '../../../src/negotiator/networks/network-plan';

const base = { nodeName: 'n1', keyFile: '/k', addresses: { ipv4: '10.0.0.1', ipv6: 'fd00::1' } };
const parse = (extra: Record<string, unknown>) => parseDaemonConfig(JSON.stringify({ ...base, ...extra }));
const transport = { name: 'transport', addresses: { ipv4: '172.30.0.1', ipv6: 'fd30::1' }, static: [{ ipv4: '172.30.0.2' }] };

describe('networks in the daemon config', () => {
  it('accepts a secondary network with addresses on the default port, and one without on its own port', () => {
    const c = parse({ primaryNetwork: 'k8s', networks: [transport, { name: 'sig', port: 6180 }] });
    expect(c.networks.map((n) => [n.name, n.port])).toEqual([
      ['transport', undefined],
      ['sig', 6180],
    ]);
    expect(parse({}).networks).toEqual([]);
  });

  it('refuses: no primaryNetwork, a name twice, a network without addresses on the primary port (or its echo port), bad names', () => {
    expect(() => parse({ networks: [transport] })).toThrow(/primaryNetwork: needs primaryNetwork/);
    expect(() => parse({ primaryNetwork: 'transport', networks: [transport] })).toThrow(/networks\.0\.name: transport is named twice/);
    expect(() => parse({ primaryNetwork: 'k8s', networks: [transport, transport] })).toThrow(/networks\.1\.name: transport is named twice/);
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ name: 'sig' }] })).toThrow(
      /networks\.0\.port: sig has no addresses of its own/,
    );
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ name: 'sig', port: 6171 }] })).toThrow(/needs a port of its own/);
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ name: 'sig', addresses: base.addresses }] })).toThrow(
      /networks\.0\.addresses: sig would share an address and port/,
    );
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ name: '../x' }] })).toThrow(ConfigError);
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ ...transport, colour: 'red' }] })).toThrow(/unknown key/);
  });

  it('a network given by its interface (one config for every node); not both addresses and interface', () => {
    expect(parse({ primaryNetwork: 'k8s', networks: [{ name: 'transport', interface: 'transport0' }] }).networks[0]!.interface).toBe(
      'transport0',
    );
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ ...transport, interface: 'transport0' }] })).toThrow(
      /give addresses or interface, not both/,
    );
    expect(() => parse({ primaryNetwork: 'k8s', networks: [{ name: 'transport', interface: 'a/b' }] })).toThrow(
      /must be an interface name/,
    );
  });

  it('with multicast discovery every network binds the wildcard: each needs its own port', () => {
    expect(() => parse({ primaryNetwork: 'k8s', discovery: { multicast: {} }, networks: [transport] })).toThrow(
      /with multicast discovery every network binds the wildcard address/,
    );
    expect(parse({ primaryNetwork: 'k8s', discovery: { multicast: {} }, networks: [{ ...transport, port: 6180 }] }).networks).toHaveLength(
      1,
    );
  });
});

describe('planNetworks', () => {
  it('the primary as configured; a secondary with its addresses, static peers and port; one without over the primary’s addresses', () => {
    const c = parse({
      primaryNetwork: 'k8s',
      discovery: { static: [{ ipv4: '10.0.0.2' }] },
      networks: [transport, { name: 'sig', port: 6180 }],
    });
    const [p, t, s] = planNetworks(c, base.addresses);
    expect(p).toMatchObject({ name: 'k8s', primary: true, measuredBy: 'own', addresses: base.addresses });
    expect(p!.cfg).toBe(c);
    expect(t).toMatchObject({ name: 'transport', primary: false, measuredBy: 'own', addresses: transport.addresses });
    expect(t!.cfg.port).toBe(c.port);
    expect(t!.cfg.discovery).toEqual({ static: transport.static });
    expect(t!.cfg.networks).toEqual([]);
    expect(s).toMatchObject({ name: 'sig', measuredBy: 'primary', addresses: base.addresses });
    expect(s!.cfg.discovery.static).toEqual([{ ipv4: '10.0.0.2', port: 6180 }]);
    expect(s!.cfg.discovery.etcd).toBeUndefined();
  });

  it('whose attachment is whose: the primary’s, a listed network’s, or nobody’s; without networks everything is the primary’s', () => {
    const c = parse({ primaryNetwork: 'k8s', networks: [transport] });
    expect(networkOf('k8s', c)).toBe('k8s');
    expect(networkOf('transport', c)).toBe('transport');
    expect(networkOf('sigtran', c)).toBeNull();
    expect(networkOf('anything', parse({}))).toBeUndefined();
  });

  it('a secondary network authenticates with its own key; the primary with the cluster key', () => {
    const key = Buffer.alloc(32, 1);
    expect(networkKey(key, { name: 'k8s', primary: true })).toBe(key);
    const t = networkKey(key, { name: 'transport', primary: false });
    expect(t.equals(key)).toBe(false);
    expect(t.equals(networkKey(key, { name: 'sig', primary: false }))).toBe(false);
    expect(t.equals(networkKey(key, { name: 'transport', primary: false }))).toBe(true);
  });
});
