/**
 * Runs the pure-JS hot paths of ADD/DEL once with sample data while the program's V8 code cache
 * is made at build time (scripts/make-code-cache.cjs), so their compiled code is in it and a real
 * invocation does not pay for lazy compilation. Touches no kernel state and no native code.
 */
import { decodeEndpoint, encodeEndpoint } from '../bpf/maps-layout';
import { canonical, parseCidr } from '../net/ip';
import { AttachmentStateSchema } from '../node/attachments';
import { parseNetConf } from './config';
import { readEnv } from './env';
import { containerInterfaceIndex, familiesFor, formatResult, parseResult } from './result';

/** Exercises config, env, result and codec paths; returns nothing. */
export function warmUp(): void {
  const prevResult = {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'br0', mac: '00:00:00:00:00:01' },
      { name: 'veth0', mac: '00:00:00:00:00:02' },
      { name: 'eth0', mac: '00:00:00:00:00:03', sandbox: '/run/netns/x' },
    ],
    ips: [
      { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 },
      { address: 'fd00::2/64', gateway: 'fd00::1', interface: 2 },
    ],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00::1' }],
    dns: {},
  };
  for (let i = 0; i < 3; i++) {
    const conf = parseNetConf(
      JSON.stringify({ cniVersion: '1.0.0', name: 'warm', type: 'afsteer', ipam: { type: 'host-local' }, prevResult }),
    );
    readEnv(
      { CNI_CONTAINERID: 'warm', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'A=1;B=2' },
      'ADD',
    );
    const r = parseResult(conf.prevResult, 'prevResult');
    const idx = containerInterfaceIndex(r, 'eth0');
    familiesFor(r, idx);
    JSON.stringify(formatResult(structuredClone(r), i ? '0.4.0' : '1.1.0'));
    decodeEndpoint(encodeEndpoint({ ipv4: parseCidr('10.0.0.2/24').address, ipv6: canonical('fd00:0::2'), podIfindex: 2 }));
    AttachmentStateSchema.safeParse({});
  }
}
