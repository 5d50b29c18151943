/** afsteerd processes on simulated nodes: a config file per node, started in its namespace, logs collected, status read. */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileP, waitFor } from './process';
import type { SimNode, SimTopology } from './sim-topology';
import { ROOT } from './world';

/** afsteerd: the same executable under its second name. */
export const AFSTEERD_BIN = join(ROOT, 'dist', 'afsteerd');

/** A running afsteerd in a node's namespace. */
export interface SimDaemon {
  node: SimNode;
  child: ChildProcess;
  config: string;
  socket: string;
  /** Its JSON log lines so far (stderr), parsed. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Writes a fresh cluster key (32 random bytes, 0600) into dir; returns its path. */
export function writeClusterKey(dir: string): string {
  const keyFile = join(dir, 'cluster.key');
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  return keyFile;
}

/**
 * Starts afsteerd for node from a config file (static peers: the topology's other nodes; fast
 * timers that tests can override), inside the node's namespace; its stderr log lines are collected.
 * command: what runs `afsteerd` (default dist/afsteerd; another build's in upgrade tests; a benchmark may run it under node --cpu-prof).
 */
export async function startDaemon(
  t: SimTopology,
  node: SimNode,
  overrides: Record<string, unknown>,
  keyFile: string,
  command: string[] = [AFSTEERD_BIN],
): Promise<SimDaemon> {
  const peers = t.nodes.filter((x) => x !== node);
  const name = String(overrides.nodeName ?? `node-${node.name}`);
  const socket = String(overrides.controlSocket ?? join(t.dir, `afsteerd-${name}.sock`));
  const config = join(t.dir, `afsteerd-${name}.json`);
  const cfg = {
    nodeName: name,
    pinDir: node.pinDir,
    stateDir: node.stateDir,
    controlSocket: socket,
    addresses: t.nodeAddresses(node),
    keyFile,
    discovery: { static: peers.map((p) => t.nodeAddresses(p)) },
    timers: {
      announceIntervalMs: 300,
      peerTimeoutMs: 3000,
      remoteRetentionMs: 1000,
      evalIntervalMs: 100,
      negotiateIntervalMs: 500,
      rescanMs: 1000,
    },
    selection: { holdDownMs: 3000, intervals: 3 },
    ...overrides,
  };
  writeFileSync(config, JSON.stringify(cfg, null, 2));
  const child = t.children.spawn('nsenter', [`--net=${node.nsPath}`, ...command, 'run', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const d: SimDaemon = {
    node,
    child,
    config,
    socket,
    logs: [],
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  let buf = '';
  child.stderr!.on('data', (chunk) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        d.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        d.logs.push({ msg: line, raw: true });
      }
    }
  });
  // Started, and its control socket served (that comes after etcd discovery's start, which may take a while on a loaded machine).
  await waitFor(
    () => (d.logs.some((l) => l.msg === 'afsteerd started') && existsSync(socket)) || child.exitCode !== null,
    10_000,
    'afsteerd start',
  );
  if (child.exitCode !== null) throw new Error(`afsteerd exited ${child.exitCode}: ${JSON.stringify(d.logs)}`);
  return d;
}

/** `afsteerd status --json` of a running daemon. */
export async function daemonStatus(d: SimDaemon): Promise<any> {
  const { stdout } = await execFileP(AFSTEERD_BIN, ['status', '--json', '--socket', d.socket], { encoding: 'utf8', timeout: 5000 });
  return JSON.parse(stdout);
}
