/** Impairments of one family in the middle namespace of a simulated topology: loss, blackholes, delay and jitter. */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Family } from '../../src/net/family';
import { exited, nsExec } from './process';
import type { SimNode, SimTopology } from './sim-topology';
import { ROOT } from './world';

/** A per-family delay line in the middle namespace (TUN; the kernel has no netem). */
export const DELAY_LINE_APP = join(ROOT, 'test', 'fixtures', 'delay-line.py');

/**
 * Impairs one family in the middle namespace (or only on the link to one node): 'blackhole'
 * drops all of it, a number drops that percentage at random (nftables numgen); null removes it.
 * spare: nft expressions whose packets are accepted before the drop (in place before it is).
 */
export async function impair(
  t: SimTopology,
  family: Family,
  how: 'blackhole' | number | null,
  only?: SimNode,
  spare: string[][] = [],
): Promise<void> {
  const chain = `impair${family}`;
  const proto = family === 4 ? 'ipv4' : 'ipv6';
  const mid = t.midPath;
  await nsExec(mid, ['nft', 'add', 'table', 'inet', 'afsteer_impair']);
  await nsExec(mid, ['nft', 'add', 'chain', 'inet', 'afsteer_impair', chain, '{ type filter hook forward priority -10; policy accept; }']);
  await nsExec(mid, ['nft', 'flush', 'chain', 'inet', 'afsteer_impair', chain]);
  if (how === null) return;
  for (const expr of spare) await nsExec(mid, ['nft', 'add', 'rule', 'inet', 'afsteer_impair', chain, ...expr, 'accept']);
  const verdict = how === 'blackhole' ? ['drop'] : ['numgen', 'random', 'mod', '100', '<', String(how), 'drop'];
  // Everywhere, or only on one node's link (both directions).
  const scopes = only
    ? [
        ['iifname', t.midLink(only)],
        ['oifname', t.midLink(only)],
      ]
    : [[]];
  for (const scope of scopes)
    await nsExec(mid, ['nft', 'add', 'rule', 'inet', 'afsteer_impair', chain, 'meta', 'nfproto', proto, ...scope, ...verdict]);
}

/** The delay lines of one topology, one per family at most. */
export class DelayLines {
  private readonly lines = new Map<Family, ChildProcess>();

  /** Delay lines for topology t. */
  constructor(private readonly t: SimTopology) {}

  /**
   * Delays one family in the middle namespace by delayMs ± jitterMs (test/fixtures/delay-line.py:
   * a TUN device that the nodes' uplinks are policy-routed into); null removes it.
   */
  async set(family: Family, delayMs: number | null, jitterMs = 0): Promise<void> {
    const t = this.t;
    const mid = t.midPath;
    const dev = `afdl${family}`;
    const fam = `-${family}`;
    const old = this.lines.get(family);
    if (old) {
      for (const node of t.nodes)
        await nsExec(mid, ['ip', fam, 'rule', 'del', 'iif', t.midLink(node), 'table', String(100 + family)]).catch(() => {});
      old.kill('SIGKILL');
      await exited(old);
      this.lines.delete(family);
    }
    if (delayMs === null) return;
    const child = t.children.spawn(
      'nsenter',
      [`--net=${mid}`, 'python3', DELAY_LINE_APP, dev, '--delay-ms', String(delayMs), '--jitter-ms', String(jitterMs)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('delay line did not start')), 5000);
      child.stderr!.on('data', (d) => {
        if (String(d).includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`delay line exited ${code}`)));
    });
    this.lines.set(family, child);
    // A long queue: a delay line starved of CPU for a moment must delay packets, not drop a burst.
    await nsExec(mid, ['ip', 'link', 'set', dev, 'txqueuelen', '10000', 'up']);
    // Packets come back out of the TUN device with sources routed elsewhere: no reverse-path filter.
    if (family === 4) for (const k of ['all', dev]) await nsExec(mid, ['sysctl', '-q', '-w', `net.ipv4.conf.${k}.rp_filter=0`]);
    await nsExec(mid, ['ip', fam, 'route', 'replace', 'default', 'dev', dev, 'table', String(100 + family)]);
    for (const node of t.nodes) await nsExec(mid, ['ip', fam, 'rule', 'add', 'iif', t.midLink(node), 'table', String(100 + family)]);
  }
}
