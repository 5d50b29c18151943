/**
 * A real etcd (Debian's etcd-server) for tests: one member on loopback with its own data dir
 * and free ports, started, stopped and restarted by the test (same data dir and ports on
 * restart, as a member coming back after a reboot).
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './process';

/** The etcd executable, or undefined when it is not installed. */
export const ETCD_BIN = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((p) => spawnSync(p, ['--version']).status === 0);

/** A free TCP port on 127.0.0.1 (bound and released: good enough for a test on one machine). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls cond until it holds; throws after timeoutMs naming what was awaited (the simulated nodes' waitFor). */
export const until = waitFor;

/** One etcd member: on loopback (random free ports), or inside a test's network namespace on one of its addresses (ports 2379, 2380). */
export class EtcdServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'afsteer-etcd-'));
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  clientPort = 0;
  private peerPort = 0;

  constructor(private readonly where: { nsPath: string; host: string } | undefined = undefined) {
    if (where) {
      this.clientPort = 2379;
      this.peerPort = 2380;
    }
  }

  private get host(): string {
    return this.where?.host ?? '127.0.0.1';
  }

  /** The client URL (http://HOST:PORT). */
  get url(): string {
    return `http://${this.host}:${this.clientPort}`;
  }

  /** Starts etcd (ports picked on the first start, kept on restarts) and waits until it is healthy. */
  async start(): Promise<void> {
    if (!ETCD_BIN) throw new Error('no etcd binary');
    if (!this.clientPort) {
      this.clientPort = await freePort();
      this.peerPort = await freePort();
    }
    const peer = `http://${this.host}:${this.peerPort}`;
    const log = createWriteStream(join(this.dir, 'etcd.log'), { flags: 'a' });
    const argv = [
      '--name',
      'test',
      '--data-dir',
      join(this.dir, 'data'),
      '--listen-client-urls',
      this.url,
      '--advertise-client-urls',
      this.url,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `test=${peer}`,
      '--initial-cluster-state',
      'new',
      '--log-level',
      'warn',
      '--logger',
      'zap',
    ];
    const child = this.where
      ? spawn('nsenter', [`--net=${this.where.nsPath}`, ETCD_BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(ETCD_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const early = this.exited.then(() => {
      throw new Error(`etcd exited at start; see ${join(this.dir, 'etcd.log')}`);
    });
    early.catch(() => undefined);
    await Promise.race([early, until(() => this.healthy(), 20_000, 'etcd to be healthy')]);
  }

  /** Whether etcd answers /health with health true. */
  async healthy(): Promise<boolean> {
    if (this.where) {
      const r = spawnSync('nsenter', [`--net=${this.where.nsPath}`, 'curl', '-sf', '-m', '1', `${this.url}/health`], { encoding: 'utf8' });
      return r.status === 0 && r.stdout.includes('"health":"true"');
    }
    try {
      const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok && ((await r.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  /** Stops etcd (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
    this.child = undefined;
  }

  /** Stops etcd and removes its data dir. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
