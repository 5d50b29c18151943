/** `afsteerd status` as text: hostile names from peers and pods are escaped, never printed raw. */
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../../src/cli/afsteerd-status';

describe('afsteerd status text', () => {
  it('escapes control characters in every name it prints', () => {
    const evil = 'ns/\x1b[2Jpod\x07';
    const out = renderStatus({
      node: 'n\x1b]0;x\x07',
      epoch: '1',
      uptimeMs: 1000,
      addresses: { ipv4: '10.0.0.1' },
      port: 6170,
      endpoints: [{ cnf: evil, ifindex: 3, ipv4: '10.1.0.2', ipv6: 'fd00::2', policy: 'lowest-loss' }],
      peers: [{ node: 'peer\x1b', lastHeardMsAgo: 5, endpoints: 1, families: {} }],
      pairs: [{ local: evil, remote: 'r\x9b', peer: 'p', policy: 'weighted', preferred: null, wire: 'native', reason: 'x\ry' }],
      switches: [{ at: 't', pair: `${evil}|r`, from: 'native', to: 'ipv6', reason: 'blackhole on IPv4' }],
      counters: { drops: { 'm\x1bac': 1 } },
    });
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(out).toContain('ns/\\x1b[2Jpod\\x07');
    expect(out).toContain('native');
  });
});
