/**
 * The afsteer executable of an earlier commit, for upgrade and rollback tests: built from git
 * (`git archive` of the commit into a scratch directory, its own `npm ci --prefer-offline` and
 * `node scripts/build.mjs`) once per machine, and cached under /var/cache/afsteer-test/ (the
 * executable only; the scratch tree is removed). Concurrent runs wait on a lock; a half-finished
 * build is never used (the cache entry appears by rename when complete).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLock } from '../../src/util/lock';
import { ROOT } from './world';

/** Where built releases are kept between runs. */
export const RELEASE_CACHE = process.env.AFSTEER_RELEASE_CACHE ?? '/var/cache/afsteer-test';

/** A built release: its executable under both names, and how long the build took when it ran. */
export interface ReleaseBuild {
  commit: string;
  afsteer: string;
  afsteerd: string;
  /** Seconds the build took (when it was built, now or on an earlier run). */
  buildSeconds: number;
  /** True when this call found it in the cache. */
  cached: boolean;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AFSTEER_BUILD_LOG: '' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} in ${cwd} failed (exit ${code}${code === null ? ', killed by the timeout' : ''}):\n${out.slice(-4000)}`,
          ),
        );
    });
  });
}

/** The executable of commit (a full hash), from the cache or built now (minutes: npm ci and the build). */
export async function releaseBuild(commit: string): Promise<ReleaseBuild> {
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`releaseBuild needs a full commit hash, got ${commit}`);
  const dir = join(RELEASE_CACHE, `afsteer-${commit}`);
  const found = (cached: boolean): ReleaseBuild => ({
    commit,
    afsteer: join(dir, 'afsteer'),
    afsteerd: join(dir, 'afsteerd'),
    buildSeconds: (JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as { seconds: number }).seconds,
    cached,
  });
  if (existsSync(join(dir, 'build.json'))) return found(true);
  mkdirSync(RELEASE_CACHE, { recursive: true, mode: 0o755 });
  return withLock(join(RELEASE_CACHE, '.build.lock'), 15 * 60_000, async () => {
    if (existsSync(join(dir, 'build.json'))) return found(true);
    try {
      await run('git', ['cat-file', '-e', `${commit}^{commit}`], ROOT, 10_000);
    } catch (err) {
      throw new Error(`commit ${commit} is not in ${ROOT} (a shallow clone? fetch the full history)`, { cause: err });
    }
    const t0 = Date.now();
    const scratch = join(RELEASE_CACHE, `scratch-${commit.slice(0, 12)}-${process.pid}`);
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    try {
      await run('sh', ['-c', `git -C '${ROOT}' archive --format=tar '${commit}' | tar -x -C '${scratch}'`], ROOT, 60_000);
      await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], scratch, 10 * 60_000);
      await run(process.execPath, ['scripts/build.mjs'], scratch, 10 * 60_000);
      const staged = `${dir}.tmp-${process.pid}`;
      rmSync(staged, { recursive: true, force: true });
      mkdirSync(staged, { recursive: true });
      await run('cp', [join(scratch, 'dist', 'afsteer'), join(staged, 'afsteer')], ROOT, 60_000);
      symlinkSync('afsteer', join(staged, 'afsteerd'));
      writeFileSync(
        join(staged, 'build.json'),
        JSON.stringify({ commit, seconds: Math.round((Date.now() - t0) / 1000), at: new Date().toISOString() }) + '\n',
      );
      rmSync(dir, { recursive: true, force: true });
      renameSync(staged, dir);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    return found(false);
  });
}
