/** Single-stack prevResults: delegated IPAM, explicit pass-through, and the error without either. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listEndpoints as listPinned } from '../../../src/bpf/endpoint-map';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

const listEndpoints = (pinDir: string) => (existsSync(join(pinDir, 'afsteer_endpoints')) ? listPinned(pinDir) : new Map());

announceSkip('single-stack prevResult');

describe.skipIf(!IS_ROOT)('single-stack prevResult', () => {
  let w: World;
  beforeAll(() => (w = new World()));
  afterAll(() => w?.cleanup());

  it('without ipam is code 7 and afsteer leaves nothing behind', async () => {
    const list = w.conflist('v4only', { bridgeV4Only: true });
    const ns = w.netns('a');
    const add = await w.driver('add', list, ns, 'ctr-a');
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ code: 7 });
    expect(String(add.json?.msg)).toMatch(/only IPv4.*"ipam" section.*allowSingleStack/);
    expect(w.stateFiles()).toEqual([]);
    for (const port of w.bridgePorts()) {
      expect(sh('tc', ['filter', 'show', 'dev', port, 'ingress'])).toBe('');
    }
    expect(listEndpoints(w.pinDir).size).toBe(0);
    // libcni does not roll back a failed ADD; the runtime's DEL must still succeed.
    expect((await w.driver('del', list, ns, 'ctr-a')).code).toBe(0);
    expect(w.leases()).toEqual([]);
  });

  it('with ipam delegates the missing IPv6, configures it without DAD and releases it on DEL', async () => {
    const v6 = w.v6Subnet;
    const gw = v6.replace('::/64', '::1');
    const list = w.conflist('deleg', {
      bridgeV4Only: true,
      afsteer: { ipam: { type: 'host-local', ranges: [[{ subnet: v6, gateway: gw }]], routes: [{ dst: '::/0' }], dataDir: w.ipamDir } },
    });
    const ns = w.netns('b');
    const add = await w.driver('add', list, ns, 'ctr-b');
    expect(add.code, add.stdout + add.stderr).toBe(0);
    const r = add.json as { ips: { address: string; interface: number }[]; interfaces: { name: string }[]; routes: { dst: string }[] };
    const v6ip = r.ips.find((i) => i.address.includes(':'));
    expect(v6ip).toBeDefined();
    expect(r.interfaces[v6ip!.interface]?.name).toBe('eth0');
    expect(r.routes.map((x) => x.dst)).toContain('::/0');
    const addr = await w.inNs(ns, ['ip', '-o', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    expect(addr).toContain(v6ip!.address);
    expect(addr).not.toMatch(/tentative/);
    expect(await w.inNs(ns, ['ip', '-6', 'route', 'show', 'default'])).toContain(`via ${gw}`);
    // The bridge never saw the IPv6 range: afsteer puts the delegated gateway on it, so the route works.
    expect(sh('ip', ['-6', '-o', 'addr', 'show', 'dev', w.bridge])).toContain(gw);
    await w.inNs(ns, ['ping', '-6', '-c', '2', '-i', '0.1', '-W', '2', gw]);
    expect(w.leases().filter((l) => l.startsWith('deleg-')).length).toBe(2);
    expect((await w.driver('check', list, ns, 'ctr-b')).code).toBe(0);
    expect((await w.driver('del', list, ns, 'ctr-b')).code).toBe(0);
    expect(w.leases()).toEqual([]);
    expect(w.stateFiles()).toEqual([]);
  });

  it('allowSingleStack passes a single-stack pod through, registered with one family', async () => {
    const list = w.conflist('pass', { bridgeV4Only: true, afsteer: { allowSingleStack: true } });
    const ns = w.netns('c');
    const add = await w.driver('add', list, ns, 'ctr-c');
    expect(add.code, add.stdout + add.stderr).toBe(0);
    const eps = [...listEndpoints(w.pinDir).values()];
    expect(eps).toHaveLength(1);
    expect(eps[0]!.ipv4).toBeDefined();
    expect(eps[0]!.ipv6).toBeUndefined();
    expect((await w.driver('del', list, ns, 'ctr-c')).code).toBe(0);
    expect(listEndpoints(w.pinDir).size).toBe(0);
  });

  it('a failure after the delegated IPAM allocated rolls everything back (mtu too large)', async () => {
    const list = w.conflist('fail', {
      bridgeV4Only: true,
      afsteer: { mtu: 1500, ipam: { type: 'host-local', ranges: [[{ subnet: w.v6Subnet }]], dataDir: w.ipamDir } },
    });
    const ns = w.netns('d');
    const add = await w.driver('add', list, ns, 'ctr-d');
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ code: 7 });
    expect(String(add.json?.msg)).toMatch(/leaves no room for the 40-byte outer header/);
    // Only the bridge's own IPv4 lease remains; afsteer's IPv6 lease was released.
    expect(w.leases().filter((l) => l.includes(':'))).toEqual([]);
    expect(await w.inNs(ns, ['ip', '-o', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).toBe('');
    expect(await w.inNs(ns, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).toMatch(/ mtu 1500 /);
    expect(w.stateFiles()).toEqual([]);
    expect(listEndpoints(w.pinDir).size).toBe(0);
    expect((await w.driver('del', list, ns, 'ctr-d')).code).toBe(0);
    expect(w.leases()).toEqual([]);
  });
});
