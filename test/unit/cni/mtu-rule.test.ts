/** The pod MTU rule (mtu-rule.ts): the wire's MTU less the outer header, on the link or — a device that is the wire — on the routes. */
import { describe, expect, it } from 'vitest';
import { mtuRule } from '../../../src/cni/mtu-rule';

describe('mtuRule', () => {
  it('host veth: its MTU less 40, on the pod interface', () => {
    expect(mtuRule({ placement: 'host-veth', found: 1500, hostLink: { name: 'veth1', mtu: 1500 } })).toEqual({ on: 'link', mtu: 1460 });
    expect(mtuRule({ placement: 'host-veth', found: 1500, hostLink: { name: 'veth1', mtu: 9000 } })).toEqual({ on: 'link', mtu: 8960 });
  });

  it('macvlan/ipvlan: the smaller of the parent and the interface as found, less 40, on the pod interface', () => {
    expect(mtuRule({ placement: 'pod', found: 1500, parent: { name: 'tp0', mtu: 1500 } })).toEqual({ on: 'link', mtu: 1460 });
    expect(mtuRule({ placement: 'pod', found: 1400, parent: { name: 'tp0', mtu: 9000 } })).toEqual({ on: 'link', mtu: 1360 });
    expect(mtuRule({ placement: 'pod', found: 9000, parent: { name: 'tp0', mtu: 1500 } })).toEqual({ on: 'link', mtu: 1460 });
  });

  it('no parent (host-device): the device keeps its MTU, the routes carry it less 40', () => {
    expect(mtuRule({ placement: 'pod', found: 1500 })).toEqual({ on: 'routes', mtu: 1460 });
  });

  it('a configured mtu is used when it leaves room, refused when it does not; below 1280 is refused', () => {
    expect(mtuRule({ placement: 'pod', found: 1500, parent: { name: 'tp0', mtu: 1500 }, configured: 1400 })).toEqual({
      on: 'link',
      mtu: 1400,
    });
    expect(mtuRule({ placement: 'pod', found: 1500, parent: { name: 'tp0', mtu: 1500 }, configured: 1461 })).toEqual({
      error: 'mtu 1461 leaves no room for the 40-byte outer header: its parent tp0 has mtu 1500, so at most 1460',
    });
    expect(mtuRule({ placement: 'pod', found: 1300 })).toMatchObject({ error: expect.stringMatching(/below the IPv6 minimum 1280/) });
    expect(mtuRule({ placement: 'host-veth', found: 1500 })).toMatchObject({ error: expect.any(String) });
  });
});
