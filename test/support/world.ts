/**
 * Test fixture: an isolated afsteer "node" for one test file — its own bridge, IPAM data dir,
 * state dir, bpffs pin dir, CNI bin dir and netns — driven through libcni (build/cni-driver)
 * and the real dist/afsteer. cleanup() removes every namespace, link, pin and file it made,
 * and restores the host sysctls the bridge plugin changes.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Repository root. */
export const ROOT = process.env.AFSTEER_REPO_ROOT ?? resolve(import.meta.dirname, '..', '..');
/** The executable under test and the libcni driver. */
export const AFSTEER_BIN = join(ROOT, 'dist', 'afsteer');
export const DRIVER_BIN = join(ROOT, 'build', 'cni-driver');
/** Debian's reference plugins. */
export const REFERENCE_PLUGINS = '/usr/lib/cni';

/** True when the process may change kernel state (root). */
export const IS_ROOT = process.getuid?.() === 0;

/** Says clearly why a root-only suite is skipped. */
export function announceSkip(suite: string): void {
  if (!IS_ROOT) console.warn(`SKIPPED ${suite}: needs root (network namespaces, bpffs, tc); run the tests as root`);
}

/** Output of one plugin or driver run. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json?: Record<string, unknown>;
}

function parse(stdout: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Runs a command with stdin, never throwing on a non-zero exit. */
export function runWithInput(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, stdout, stderr, json: parse(stdout) });
    });
    child.stdin.end(input);
  });
}

/** Runs a command and returns stdout (throws on failure). */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Like sh, but ignores failure (for cleanup). */
export function shQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** Options for a world's conflist. */
export interface ConflistOptions {
  cniVersion?: string;
  /** Give the bridge's host-local only IPv4 (single-stack prevResult). */
  bridgeV4Only?: boolean;
  /** Extra keys for the afsteer plugin entry (ipam, mtu, allowSingleStack...). */
  afsteer?: Record<string, unknown>;
}

/** One isolated test node. */
export class World {
  readonly id = randomBytes(3).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), `afsteer-it-${this.id}-`));
  readonly bridge = `afbr${this.id}`;
  readonly pinDir = `/sys/fs/bpf/afsteer-it-${this.id}`;
  readonly stateDir = join(this.dir, 'state');
  readonly ipamDir = join(this.dir, 'ipam');
  readonly cacheDir = join(this.dir, 'cache');
  readonly binDir = join(this.dir, 'bin');
  readonly v4Subnet: string;
  readonly v6Subnet: string;
  private readonly netnses = new Set<string>();
  private readonly sysctls: [string, string][] = [];

  constructor() {
    const n = parseInt(this.id.slice(0, 2), 16);
    this.v4Subnet = `10.${200 + (n % 50)}.${n}.0/24`;
    // Canonical text (no leading zeros in a group), as the kernel and ip(8) print it.
    this.v6Subnet = `fd00:af${this.id.slice(0, 2)}:${parseInt(this.id.slice(2), 16).toString(16)}::/64`;
    mkdirSync(this.binDir, { recursive: true });
    symlinkSync(AFSTEER_BIN, join(this.binDir, 'afsteer'));
    for (const k of ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding']) {
      this.sysctls.push([k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]);
    }
  }

  /** CNI_PATH for this world: afsteer first, then Debian's reference plugins. */
  get cniPath(): string {
    return `${this.binDir}:${REFERENCE_PLUGINS}`;
  }

  /** The afsteer plugin entry with this world's dirs. */
  afsteerConf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { type: 'afsteer', pinDir: this.pinDir, stateDir: this.stateDir, logLevel: 'debug', ...extra };
  }

  /** Writes a conflist (bridge + host-local, then afsteer) and returns its path. */
  conflist(name: string, o: ConflistOptions = {}): string {
    const ranges = o.bridgeV4Only ? [[{ subnet: this.v4Subnet }]] : [[{ subnet: this.v4Subnet }], [{ subnet: this.v6Subnet }]];
    const list = {
      cniVersion: o.cniVersion ?? '1.0.0',
      name: `${name}-${this.id}`,
      plugins: [
        {
          type: 'bridge',
          bridge: this.bridge,
          isGateway: true,
          ipMasq: false,
          ipam: { type: 'host-local', ranges, dataDir: this.ipamDir },
        },
        this.afsteerConf(o.afsteer),
      ],
    };
    const p = join(this.dir, `${name}.conflist`);
    writeFileSync(p, JSON.stringify(list, null, 2));
    return p;
  }

  /** Creates a network namespace owned by this world and returns its path. */
  netns(name: string): string {
    const ns = `af${this.id}${name}`;
    sh('ip', ['netns', 'add', ns]);
    this.netnses.add(ns);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return `/run/netns/${ns}`;
  }

  /** Deletes a netns early (to test DEL after the netns is gone). */
  dropNetns(path: string): void {
    const ns = path.replace('/run/netns/', '');
    shQuiet('ip', ['netns', 'del', ns]);
    this.netnses.delete(ns);
  }

  /** Runs the libcni driver: add/check/del of conflist for a container. */
  async driver(verb: 'add' | 'check' | 'del', conflist: string, netns: string, containerId: string, args = ''): Promise<Run> {
    const argv = [verb, '--conflist', conflist, '--netns', netns, '--container-id', containerId, '--cache-dir', this.cacheDir];
    if (args) argv.push('--args', args);
    return runWithInput(DRIVER_BIN, argv, '', { PATH: process.env.PATH, CNI_PATH: this.cniPath });
  }

  /** Runs dist/afsteer directly with a CNI environment and stdin config. */
  plugin(verb: string, conf: unknown, env: Record<string, string> = {}): Promise<Run> {
    const input = typeof conf === 'string' ? conf : JSON.stringify(conf);
    return runWithInput(AFSTEER_BIN, [], input, { PATH: process.env.PATH, CNI_COMMAND: verb, CNI_PATH: this.cniPath, ...env });
  }

  /** Runs a command inside one of this world's namespaces. */
  async inNs(netns: string, cmd: string[]): Promise<string> {
    const { stdout } = await execFileP('nsenter', [`--net=${netns}`, ...cmd], { encoding: 'utf8' });
    return stdout;
  }

  /** Files in the world's state dir for attachments. */
  stateFiles(): string[] {
    const d = join(this.stateDir, 'attachments');
    return existsSync(d)
      ? sh('ls', ['-A', d])
          .split('\n')
          .filter((f) => f.endsWith('.json'))
      : [];
  }

  /** IPAM lease files (host-local writes one file per allocated address). */
  leases(): string[] {
    const out: string[] = [];
    if (!existsSync(this.ipamDir)) return out;
    for (const net of sh('ls', ['-A', this.ipamDir]).split('\n').filter(Boolean)) {
      for (const f of sh('ls', ['-A', join(this.ipamDir, net)])
        .split('\n')
        .filter(Boolean)) {
        if (f !== 'lock' && !f.startsWith('last_reserved_ip')) out.push(`${net}/${f}`);
      }
    }
    return out;
  }

  /** veth interfaces on the host enslaved to this world's bridge. */
  bridgePorts(): string[] {
    try {
      return sh('ip', ['-o', 'link', 'show', 'master', this.bridge])
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(': ')[1]!.split('@')[0]!);
    } catch {
      return [];
    }
  }

  /** Removes everything this world made. */
  cleanup(): void {
    for (const ns of this.netnses) shQuiet('ip', ['netns', 'del', ns]);
    this.netnses.clear();
    shQuiet('ip', ['link', 'del', this.bridge]);
    rmSync(this.pinDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
    for (const [k, v] of this.sysctls) writeFileSync(`/proc/sys/${k}`, v);
  }
}
