/** Packet capture (tcpdump) on the middle namespace's link toward one node of a simulated topology; read it with pcap.ts. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { exited, waitFor } from './process';
import type { SimNode, SimTopology } from './sim-topology';

/**
 * Captures up to count UDP datagrams to port on the middle's link toward node (tcpdump), for at
 * most ms, while during() runs; minLen (IP packet length) leaves out the small ones (afsteerd's
 * probes). Returns the pcap file.
 */
export async function captureUdp(
  t: SimTopology,
  node: SimNode,
  port: number,
  count: number,
  ms: number,
  during: () => Promise<unknown>,
  minLen = 0,
): Promise<string> {
  const file = join(t.dir, `cap-${randomBytes(3).toString('hex')}.pcap`);
  const child = t.children.spawn(
    'nsenter',
    [
      `--net=${t.midPath}`,
      'timeout',
      String(Math.ceil(ms / 1000)),
      'tcpdump',
      '-U',
      '-n',
      '-i',
      t.midLink(node),
      '-c',
      String(count),
      '-w',
      file,
      'udp',
      'dst',
      'port',
      String(port),
      ...(minLen ? ['and', 'greater', String(minLen)] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await waitFor(() => err.includes('listening'), 5000, 'tcpdump');
  await during();
  await exited(child);
  return file;
}
