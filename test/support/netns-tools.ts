/**
 * Real operator tools run inside a test's network namespace: Debian's Prometheus (own data dir,
 * 1 s scrapes, its HTTP API queried with curl in the namespace) and headless Chromium driven by
 * playwright-core (launched through a wrapper that enters the namespace). Each is started by the
 * test and stopped by it; every wait is bounded.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Runs argv in the namespace at nsPath, within timeoutMs. */
export async function inNs(nsPath: string, argv: string[], timeoutMs = 10_000, input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await execFileP('nsenter', [`--net=${nsPath}`, ...argv], {
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const c = spawn('nsenter', [`--net=${nsPath}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out + err);
      else reject(new Error(`${argv.join(' ')} exited ${code}: ${out}${err}`));
    });
    c.stdin.end(input);
  });
}

/** HTTP GET from inside the namespace (curl), the body as text. */
export function curlIn(nsPath: string, url: string, timeoutMs = 5000): Promise<string> {
  return inNs(nsPath, ['curl', '-sSf', '--max-time', String(Math.ceil(timeoutMs / 1000)), url], timeoutMs + 1000);
}

/** A Prometheus server in a namespace. */
export class Prometheus {
  private child?: ChildProcess;
  readonly url: string;

  constructor(
    private readonly nsPath: string,
    private readonly dir: string,
    readonly targets: string[],
    readonly port = 19090,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Writes its config (1 s scrape of targets) and starts it; resolves when its API is ready. */
  async start(): Promise<void> {
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    const cfg = join(this.dir, 'prometheus.yml');
    writeFileSync(
      cfg,
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: afsteerd\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [${this.targets.map((t) => `'${t}'`).join(', ')}]\n`,
    );
    this.child = spawn(
      'nsenter',
      [
        `--net=${this.nsPath}`,
        'prometheus',
        `--config.file=${cfg}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--storage.tsdb.retention.time=1h',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    this.child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    const t0 = Date.now();
    for (;;) {
      try {
        if ((await curlIn(this.nsPath, `${this.url}/-/ready`, 2000)).includes('Ready')) return;
      } catch {
        // not yet
      }
      if (this.child.exitCode !== null || Date.now() - t0 > 20_000) throw new Error(`prometheus did not become ready: ${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** An instant query through the HTTP API: the result vector. */
  async query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const body = await curlIn(this.nsPath, `${this.url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const r = JSON.parse(body) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (r.status !== 'success') throw new Error(`query ${q}: ${body}`);
    return r.data.result;
  }

  /** Stops it (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        c.kill('SIGKILL');
        resolve();
      }, 5000);
      c.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      c.kill('SIGTERM');
    });
  }
}

/** Chromium flags for a quiet headless run here. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** A wrapper executable that starts Debian's chromium inside the namespace (playwright launches it). */
export function chromiumInNs(dir: string, nsPath: string): string {
  const p = join(dir, 'chromium-in-ns');
  writeFileSync(p, `#!/bin/sh\nexec nsenter --net=${nsPath} /usr/bin/chromium "$@"\n`);
  chmodSync(p, 0o755);
  return p;
}

/** Loads url in headless Chromium inside the namespace, waits for selector, returns what evaluate() computes; saves a screenshot when asked. */
export async function withPage<T>(
  dir: string,
  nsPath: string,
  url: string,
  selector: string,
  evaluate: string,
  screenshot?: string,
  timeoutMs = 30_000,
): Promise<T> {
  const { chromium } = await import('playwright-core');
  mkdirSync(join(dir, 'chromium-profile'), { recursive: true });
  // An empty profile of its own (playwright passes it as --user-data-dir).
  const browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: chromiumInNs(dir, nsPath),
    args: CHROMIUM_FLAGS,
    headless: true,
    timeout: timeoutMs,
    viewport: { width: 1000, height: 520 },
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeoutMs);
    await page.goto(url, { timeout: timeoutMs });
    await page.waitForSelector(selector, { timeout: timeoutMs, state: 'attached' });
    const r = (await page.evaluate(evaluate)) as T;
    if (screenshot) await page.screenshot({ path: screenshot, timeout: timeoutMs });
    return r;
  } finally {
    await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5000))]);
  }
}
