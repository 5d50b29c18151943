/** Processes of the tests: commands inside a network namespace or to completion with a timeout, waiting, and children killed at cleanup. */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { promisify } from 'node:util';

/** execFile, promised. */
export const execFileP = promisify(execFile);

/** Polls cond every 20 ms until it holds; throws after timeoutMs naming what was awaited. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs argv inside the network namespace at nsPath. */
export async function nsExec(nsPath: string, argv: string[]): Promise<string> {
  const { stdout } = await execFileP('nsenter', [`--net=${nsPath}`, ...argv], { encoding: 'utf8', maxBuffer: 16 << 20 });
  return stdout;
}

/** Resolves when child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<unknown> {
  return new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
}

/** Child processes a topology started: each tracked until it exits, the rest killed at cleanup. */
export class Children {
  private readonly set = new Set<ChildProcess>();

  /** Spawns cmd, tracked until it exits. */
  spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
    const child = spawn(cmd, args, opts);
    this.set.add(child);
    child.once('exit', () => this.set.delete(child));
    return child;
  }

  /** Kills every child still running. */
  killAll(): void {
    for (const c of this.set) c.kill('SIGKILL');
  }
}

/** Runs a command to completion (timeoutMs, then SIGKILL); resolves with its exit code and output. */
export function runCommand(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}
