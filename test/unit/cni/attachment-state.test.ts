/** State files: placement and endpoint key, and older files (host-veth, keyed by hostIfindex) read the same way. */
import { describe, expect, it } from 'vitest';
import { AttachmentStateSchema, attachmentLabel } from '../../../src/node/attachments';

const base = {
  containerId: 'c1',
  ifname: 'eth0',
  netns: '/run/netns/x',
  network: 'net',
  podIfindex: 3,
  createdClsact: true,
  progDir: '/sys/fs/bpf/afsteer/progs/x',
  addedAddresses: [],
  delegatedIpam: false,
  mtu: { before: 1500, after: 1460 },
  createdAt: '2026-01-01T00:00:00Z',
};

describe('attachment state', () => {
  it('an older file (no placement, no endpoint) is a host-veth attachment keyed by its hostIfindex', () => {
    const s = AttachmentStateSchema.parse({ ...base, hostIfindex: 17, hostIfname: 'veth1' });
    expect(s).toMatchObject({ placement: 'host-veth', endpoint: 17 });
    expect(attachmentLabel(s)).toBe('veth1');
  });

  it('an in-pod attachment has its endpoint key and no host veth', () => {
    const s = AttachmentStateSchema.parse({ ...base, ifname: 'net1', placement: 'pod', endpoint: 0x80000002 });
    expect(s).toMatchObject({ placement: 'pod', endpoint: 0x80000002 });
    expect(attachmentLabel(s)).toBe('net1@c1');
  });

  it('refuses a file with neither an endpoint nor a host veth, and a host-veth one without its veth', () => {
    expect(AttachmentStateSchema.safeParse(base).success).toBe(false);
    expect(AttachmentStateSchema.safeParse({ ...base, placement: 'host-veth', endpoint: 5 }).success).toBe(false);
  });
});
