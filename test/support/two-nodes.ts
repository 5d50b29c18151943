/**
 * TwoNodes: the simulated topology (sim-topology.ts) with its daemons (sim-daemons.ts),
 * impairments (impairments.ts), captures (capture.ts) and pod applications (apps.ts) as methods,
 * the one object the steering and negotiator tests, the benches and the demos work with.
 */
import type { Family } from '../../src/net/family';
import { PodApps } from './apps';
import { captureUdp } from './capture';
import { DelayLines, impair } from './impairments';
import { daemonStatus, type SimDaemon, startDaemon, writeClusterKey } from './sim-daemons';
import { type SimNode, type SimPod, SimTopology } from './sim-topology';

export { nsExec, waitFor } from './process';
export { AFSTEERD_BIN, type SimDaemon } from './sim-daemons';
export type { FamilyCounts, SimNode, SimPod } from './sim-topology';

/** Two (or three) simulated nodes, with everything the tests do to them. */
export class TwoNodes extends SimTopology {
  /** The cluster key every daemon of this topology shares (0600). */
  readonly keyFile: string;
  private readonly apps = new PodApps(this);
  private readonly delayLines = new DelayLines(this);

  /** plugin: before afsteer in the chain; nodeCount: 2 or 3 nodes around the middle router. */
  constructor(plugin: 'bridge' | 'ptp' = 'bridge', nodeCount: 2 | 3 = 2) {
    super(plugin, nodeCount);
    this.keyFile = writeClusterKey(this.dir);
  }

  /** Starts afsteerd for node (see sim-daemons.ts startDaemon; command: what runs it, default dist/afsteerd; another build's in upgrade tests). */
  startDaemon(node: SimNode, overrides: Record<string, unknown> = {}, keyFile = this.keyFile, command?: string[]): Promise<SimDaemon> {
    return startDaemon(this, node, overrides, keyFile, command);
  }

  /** `afsteerd status --json` of a running daemon. */
  status(d: SimDaemon): Promise<any> {
    return daemonStatus(d);
  }

  /** Drops one family in the middle ('blackhole', a percentage, null: none), everywhere or on one node's link; spare: nft expressions accepted before the drop. */
  impair(family: Family, how: 'blackhole' | number | null, only?: SimNode, spare?: string[][]): Promise<void> {
    return impair(this, family, how, only, spare);
  }

  /** Delays one family in the middle by delayMs ± jitterMs; null removes the delay. */
  delay(family: Family, delayMs: number | null, jitterMs = 0): Promise<void> {
    return this.delayLines.set(family, delayMs, jitterMs);
  }

  /** Captures UDP datagrams to port on the middle's link toward node while during() runs (see capture.ts). */
  capture(node: SimNode, port: number, count: number, ms: number, during: () => Promise<unknown>, minLen = 0): Promise<string> {
    return captureUdp(this, node, port, count, ms, during, minLen);
  }

  /** Sends raw datagrams to addr:port from inside the namespace at nsPath. */
  sendUdp(nsPath: string, addr: string, port: number, datagrams: Buffer[], gapUs = 0): Promise<number> {
    return this.apps.sendUdp(nsPath, addr, port, datagrams, gapUs);
  }

  /** Starts the stream server in pod (see apps.ts). */
  server(
    pod: SimPod,
    bind: string,
    port: number,
    echo = false,
    mode = 'server',
    extra: string[] = [],
  ): Promise<{ done: Promise<Record<string, unknown>> }> {
    return this.apps.server(pod, bind, port, echo, mode, extra);
  }

  /** Runs the stream client in pod to completion. */
  client(pod: SimPod, connect: string, port: number, opts: string[], mode = 'client'): Promise<Record<string, unknown>> {
    return this.apps.client(pod, connect, port, opts, mode);
  }

  /** Starts the UDP GSO receiver in pod. */
  udpGsoReceiver(
    pod: SimPod,
    bind: string,
    port: number,
    expect: number,
    size: number,
  ): Promise<{ done: Promise<Record<string, unknown>> }> {
    return this.apps.udpGsoReceiver(pod, bind, port, expect, size);
  }

  /** Sends UDP GSO packets from pod. */
  udpGsoSend(pod: SimPod, to: string, port: number, buffers: number, segments: number, size: number): Promise<Record<string, unknown>> {
    return this.apps.udpGsoSend(pod, to, port, buffers, segments, size);
  }
}

/** Two nodes with one pod each (a0, b0) through the chain, and afsteerd running on both (the negotiator tests' common set-up). */
export async function twoNodesWithDaemons(): Promise<{ t: TwoNodes; pa: SimPod; pb: SimPod; da: SimDaemon; db: SimDaemon }> {
  const t = new TwoNodes();
  try {
    await t.up();
    const pa = await t.addPod(t.a, 'a0');
    const pb = await t.addPod(t.b, 'b0');
    return { t, pa, pb, da: await t.startDaemon(t.a), db: await t.startDaemon(t.b) };
  } catch (err) {
    t.cleanup();
    throw err;
  }
}
