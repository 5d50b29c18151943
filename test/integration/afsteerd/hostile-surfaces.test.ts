/**
 * Hostile input against a real afsteerd (dist/afsteerd in its own namespace), as a local user
 * (uid nobody, through setpriv) and a careless operator would try it: malformed request-targets
 * and foreign Host names on the metrics address, a flood of idle connections against a daemon
 * held to 1,024 descriptors, silent and half-sent requests (timeouts), pipelined status requests
 * whose answers are never read, an untrusted stateDir, planted pins and state files (FIFO, device,
 * link, another user's, half-forged), etcd TLS files that are FIFOs, devices, readable by others or
 * another user's, a control socket in a directory others may write or owned by another user
 * (the CLI refuses it, the plugin does its ADD itself), and prototype names given to `prefer`.
 * The unprivileged counterpart is test/unit/afsteerd/hostile-surfaces.test.ts; extend both with
 * each new surface.
 */
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileP, waitFor } from '../../support/process';
import { AFSTEERD_BIN, type SimDaemon } from '../../support/sim-daemons';
import { TwoNodes } from '../../support/two-nodes';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

announceSkip('hostile input against afsteerd');

const NOBODY = 65534;
const PINS = 'afsteerd-pins.json';
const METRICS = 'http://127.0.0.1:9617';

describe.skipIf(!IS_ROOT)('hostile input against afsteerd (a real daemon, a non-root attacker)', () => {
  let t: TwoNodes;
  let running: SimDaemon | undefined;
  let seq = 0;
  beforeAll(async () => {
    t = new TwoNodes();
    await t.up();
  }, 60_000);
  afterEach(async () => {
    await stop();
  });
  afterAll(() => t?.cleanup());

  const stop = async () => {
    const d = running;
    running = undefined;
    if (!d || d.child.exitCode !== null) return;
    d.child.kill('SIGTERM');
    await Promise.race([d.exited, new Promise((r) => setTimeout(r, 5000))]);
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
  };
  /** A fresh stateDir (0700) for one test. */
  const freshState = (): string => {
    const dir = join(t.dir, `state-${seq++}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  };
  /** Starts afsteerd on node a; resolves once its metrics address and its control socket are up. */
  const start = async (overrides: Record<string, unknown> = {}): Promise<SimDaemon> => {
    const d = await t.startDaemon(t.a, { stateDir: freshState(), ...overrides });
    running = d;
    await waitFor(
      () => d.logs.some((l) => l.msg === 'metrics and page listening') && existsSync(d.socket),
      10_000,
      'the metrics address and the control socket',
    );
    return d;
  };
  /** Starts afsteerd expecting it to stop at once; resolves with its log lines as text. */
  const startRefused = async (overrides: Record<string, unknown>): Promise<string> => {
    try {
      const d = await t.startDaemon(t.a, overrides);
      running = d;
      const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('running'), 10_000))]);
      expect(code, 'afsteerd should have stopped').toBe(1);
      return JSON.stringify(d.logs);
    } catch (err) {
      return (err as Error).message;
    }
  };
  const logText = (d: SimDaemon) => d.logs.map((l) => JSON.stringify(l)).join('\n');
  /** Runs argv as uid nobody inside node a's namespace. */
  const asNobody = (argv: string[]): string[] => [
    `--net=${t.a.nsPath}`,
    'setpriv',
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    '--clear-groups',
    '--',
    ...argv,
  ];
  /** A node script run as nobody in node a's namespace: its stdout lines parsed as JSON, pushed as they come. */
  const nobodyScript = (script: string, args: string[] = []): { child: ChildProcess; lines: any[]; done: Promise<number | null> } => {
    const child = t.children.spawn('nsenter', asNobody([process.execPath, '-e', script, ...args]), {
      cwd: '/',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: any[] = [];
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    });
    return { child, lines, done: new Promise((r) => child.once('exit', r)) };
  };
  const curlIn = async (args: string[]): Promise<string> =>
    (await execFileP('nsenter', [`--net=${t.a.nsPath}`, 'curl', '-sS', '--max-time', '5', ...args], { encoding: 'utf8' })).stdout;
  const httpCode = async (args: string[]): Promise<number> => Number(await curlIn(['-o', '/dev/null', '-w', '%{http_code}', ...args]));
  const status = async (d: SimDaemon): Promise<any> => t.status(d);
  const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
  const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

  describe('metrics address', () => {
    /** Sends each raw request on its own connection; prints {i, status} per request (status 0: closed without an answer). */
    const RAW_REQUESTS = `
      const net = require('node:net');
      const reqs = JSON.parse(process.argv[1]);
      let i = 0;
      const next = () => {
        if (i >= reqs.length) return;
        const n = i++;
        const c = net.connect(9617, '127.0.0.1', () => c.write(reqs[n]));
        let out = '';
        const done = () => { console.log(JSON.stringify({ i: n, status: Number((/^HTTP\\/1\\.1 (\\d{3})/.exec(out) || [])[1] || 0) })); c.destroy(); next(); };
        c.setTimeout(4000, done);
        c.on('data', (d) => { out += d; if (out.includes('\\r\\n\\r\\n')) done(); });
        c.on('error', () => {});
        c.on('close', () => { if (!c.destroyed || out === '') done(); });
      };
      next();`;

    it('as a non-root user: request-targets it cannot parse are 400s, a foreign Host a 403, odd requests refused; afsteerd lives on and counts them', async () => {
      const d = await start();
      const reqs: [string, number][] = [
        ['GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400],
        ['GET http://a:99999/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400],
        ['GET http://[::1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400],
        ['GET /%zz[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400],
        ['GET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400],
        ['GET / HTTP/1.1\r\nHost: evil.example:9617\r\n\r\n', 403],
        ['GET /history.json HTTP/1.1\r\nHost: attacker.example\r\n\r\n', 403],
        ['DELETE /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 405],
        ['GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: ' + 'a'.repeat(100 * 1024) + '\r\n\r\n', 431],
        // Request smuggling shapes: both lengths, two lengths, a space before the colon.
        ['POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
        ['GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx', 400],
        ['GET / HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n', 400],
        ['GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 404],
        ['\x00\x01\x02 garbage\r\n\r\n', 400],
      ];
      const run = nobodyScript(RAW_REQUESTS, [JSON.stringify(reqs.map(([r]) => r))]);
      await run.done;
      expect(run.lines.map((l) => l.status)).toEqual(reqs.map(([, s]) => s));
      expect(d.child.exitCode, logText(d)).toBeNull();
      expect((await status(d)).node).toBe('node-a');
      expect(await httpCode([`${METRICS}/healthz`])).toBe(200);
      expect(await httpCode(['-H', 'Host: localhost:9617', `${METRICS}/`])).toBe(200);
      const text = await curlIn([`${METRICS}/metrics`]);
      expect(Number(/afsteer_daemon_refusals_total\{reason="http-bad-target"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(4);
      expect(Number(/afsteer_daemon_refusals_total\{reason="http-host"\} (\d+)/.exec(text)?.[1])).toBe(2);
    });

    it('a non-root flood of idle connections against a daemon held to 1,024 descriptors: its descriptors stay under the cap, /metrics and status keep answering', async () => {
      const d = await start();
      const pid = d.child.pid!;
      sh('prlimit', ['--pid', String(pid), '--nofile=1024:1024']);
      const base = fds(pid);
      const flood = nobodyScript(
        `
        const net = require('node:net');
        const n = Number(process.argv[1]);
        let settled = 0, open = 0;
        const socks = [];
        for (let i = 0; i < n; i++) {
          const c = net.connect(9617, '127.0.0.1');
          socks.push(c);
          let counted = false;
          const settle = () => { if (counted) return; counted = true; if (++settled === n) console.log(JSON.stringify({ settled, open })); };
          c.on('connect', () => { open++; settle(); });
          c.on('error', settle);
          c.on('close', () => { if (counted) open--; });
        }
        setInterval(() => console.log(JSON.stringify({ open })), 500);`,
        ['1500'],
      );
      try {
        await waitFor(() => flood.lines.some((l) => l.settled === 1500), 20_000, 'the flood to connect');
        // Every connection was accepted once; the daemon holds at most the cap of them.
        expect(fds(pid)).toBeLessThanOrEqual(base + 64 + 8);
        expect((await status(d)).node).toBe('node-a');
        expect(await httpCode([`${METRICS}/metrics`])).toBe(200);
        expect(fds(pid)).toBeLessThanOrEqual(base + 64 + 8);
        const text = await curlIn([`${METRICS}/metrics`]);
        expect(Number(/afsteer_daemon_refusals_total\{reason="http-connection-cap"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(
          1500 - 64,
        );
        expect(d.child.exitCode).toBeNull();
      } finally {
        flood.child.kill('SIGKILL');
      }
    }, 60_000);

    it('timeouts hold at their value: a silent connection, half-sent headers and an idle keep-alive connection are closed within 5–7 s', async () => {
      await start();
      const probe = nobodyScript(`
        const net = require('node:net');
        const t0 = Date.now();
        const watch = (name, c) => { c.on('error', () => {}); c.on('close', () => console.log(JSON.stringify({ name, ms: Date.now() - t0 }))); c.resume(); };
        watch('silent', net.connect(9617, '127.0.0.1'));
        const half = net.connect(9617, '127.0.0.1', () => half.write('GET /metrics HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n'));
        watch('half', half);
        const idle = net.connect(9617, '127.0.0.1', () => idle.write('GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n'));
        watch('idle', idle);
        setTimeout(() => process.exit(0), 15000);`);
      await waitFor(() => probe.lines.length === 3 || probe.child.exitCode !== null, 20_000, 'three connections closed');
      probe.child.kill('SIGKILL');
      const ms = Object.fromEntries(probe.lines.map((l) => [l.name, l.ms]));
      expect(Object.keys(ms).sort()).toEqual(['half', 'idle', 'silent']);
      for (const [name, v] of Object.entries(ms)) {
        expect(v, name).toBeGreaterThanOrEqual(4000);
        expect(v, name).toBeLessThan(7500);
      }
    }, 30_000);
  });

  describe('control socket', () => {
    it('198,400 pipelined status requests whose answers are never read: afsteerd stops reading, its memory stays bounded, status answers on another connection', async () => {
      const d = await start();
      const pid = d.child.pid!;
      const before = rssBytes(pid);
      // Root, like the socket's only allowed user; the answers are never read.
      const hog = t.children.spawn(
        process.execPath,
        [
          '-e',
          `const c = require('node:net').connect(process.argv[1], () => {
             // In 3,200 writes of 62 requests: what the daemon has not read stays counted here.
             const chunk = '{"op":"status"}\\n'.repeat(62) + ' '.repeat(8);
             for (let i = 0; i < 3200; i++) c.write(chunk);
             setInterval(() => console.log(JSON.stringify({ unsent: c.writableLength })), 250);
           });
           c.pause();
           c.on('error', (e) => console.log(JSON.stringify({ error: e.code })));`,
          d.socket,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const lines: any[] = [];
      hog.stdout!.on('data', (b) =>
        lines.push(
          ...String(b)
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        ),
      );
      try {
        let peak = before;
        const t0 = Date.now();
        while (Date.now() - t0 < 3000) {
          peak = Math.max(peak, rssBytes(pid));
          await new Promise((r) => setTimeout(r, 100));
        }
        // Nothing much was read: the requests wait in the sender's socket, not as answers in afsteerd.
        expect(lines.at(-1)?.unsent, JSON.stringify(lines.at(-1))).toBeGreaterThan(2_000_000);
        expect(peak - before, `RSS grew ${((peak - before) / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(48 * 2 ** 20);
        expect((await status(d)).node).toBe('node-a');
        expect(d.child.exitCode).toBeNull();
      } finally {
        hog.kill('SIGKILL');
      }
    }, 30_000);

    it('a control socket directory others may write: afsteerd refuses to start, naming it', async () => {
      const open = join(t.dir, `open-sock-${seq++}`);
      mkdirSync(open);
      chmodSync(open, 0o777);
      const out = await startRefused({ stateDir: freshState(), controlSocket: join(open, 'afsteerd.sock') });
      expect(out).toMatch(new RegExp(`${open} is writable by group or others`));
    });
  });

  describe('stateDir and the files in it', () => {
    it.each([
      ['writable by others (0777)', (p: string) => sh('install', ['-d', '-m', '0777', p]), /is writable by group or others \(mode 777\)/],
      [
        'sticky and writable by others (1777)',
        (p: string) => sh('install', ['-d', '-m', '1777', p]),
        /is writable by group or others \(mode 1777\)/,
      ],
      ['a symbolic link', (p: string) => symlinkSync(freshState(), p), /is a symbolic link/],
      ['owned by another user', (p: string) => sh('install', ['-d', '-m', '0700', '-o', 'nobody', p]), /is owned by uid 65534, not root/],
    ])('a stateDir %s: afsteerd refuses to start, one line naming it', async (_what, make, why) => {
      const p = join(t.dir, `bad-state-${seq++}`);
      make(p);
      const out = await startRefused({ stateDir: p });
      expect(out).toMatch(/stateDir .* refused/);
      expect(out).toMatch(why);
      expect(out).toContain(p);
    });

    it("a pins file that is a FIFO, a link to a root-only file or another user's: refused with one line, never read or quoted; afsteerd starts", async () => {
      const secret = join(t.dir, 'secret');
      writeFileSync(secret, 'SECRET-first-bytes {"version":1,"nodes":{"node-x":"IPv4"},"cnfs":{}}', { mode: 0o600 });
      const cases: [string, (p: string) => void, RegExp][] = [
        ['FIFO', (p) => sh('mkfifo', [p]), /is a FIFO, not a regular file/],
        ['link', (p) => symlinkSync(secret, p), /is a symbolic link/],
        [
          "another user's",
          (p) => {
            writeFileSync(p, '{"version":1,"nodes":{"node-x":"IPv4"},"cnfs":{}}', { mode: 0o600 });
            chownSync(p, NOBODY, NOBODY);
          },
          /is owned by uid 65534, not root/,
        ],
        ['device', (p) => sh('mknod', [p, 'c', '1', '5']), /is a device, not a regular file/],
      ];
      for (const [what, make, why] of cases) {
        const state = freshState();
        make(join(state, PINS));
        const d = await start({ stateDir: state });
        const refused = d.logs.filter((l) => l.msg === 'operator pins not loaded');
        expect(refused, what).toHaveLength(1);
        expect(String(refused[0]!.error), what).toMatch(why);
        expect(logText(d), what).not.toMatch(/SECRET|node-x/);
        expect((await status(d)).pins, what).toEqual({ nodes: {}, cnfs: {} });
        await stop();
      }
    }, 60_000);

    it('forged pins with prototype names: the good pins are kept, each bad one dropped with one line; prefer refuses prototype names; a restart keeps the pins', async () => {
      const state = freshState();
      writeFileSync(
        join(state, PINS),
        '{"version":1,"nodes":{"node-b":"IPv4","__defineGetter__":"IPv6","__proto__":"IPv4","constructor":"IPv9"},"cnfs":{"ns/pod":"IPv6","x":{"y":1}}}',
        { mode: 0o600 },
      );
      let d = await start({ stateDir: state });
      expect((await status(d)).pins).toEqual({ nodes: { 'node-b': 'IPv4' }, cnfs: { 'ns/pod': 'IPv6' } });
      expect(d.logs.filter((l) => l.msg === 'operator pins not loaded')).toHaveLength(4);
      const prefer = (...args: string[]) =>
        execFileP(AFSTEERD_BIN, ['prefer', ...args, '--socket', d.socket], { encoding: 'utf8', timeout: 5000 }).then(
          () => 0,
          (err: { code?: number; stderr?: string }) => {
            expect(err.stderr).toMatch(/neither a known peer node nor a known CNF id/);
            return err.code;
          },
        );
      for (const name of ['constructor', 'toString', '__proto__', '__defineGetter__', 'hasOwnProperty', 'valueOf'])
        expect(await prefer(name, 'ipv4'), name).toBe(1);
      expect(await prefer('node-b', 'ipv6')).toBe(0);
      await stop();
      d = await start({ stateDir: state });
      expect((await status(d)).pins).toEqual({ nodes: { 'node-b': 'IPv6' }, cnfs: { 'ns/pod': 'IPv6' } });
      expect(JSON.parse(readFileSync(join(state, PINS), 'utf8')).nodes).toEqual({ 'node-b': 'IPv6' });
    }, 30_000);

    it("state files planted as a FIFO, a device, a link or another user's: each refused with one line, afsteerd runs on", async () => {
      const state = freshState();
      const att = join(state, 'attachments');
      mkdirSync(att, { mode: 0o700 });
      sh('mkfifo', [join(att, 'fifo_eth0.json')]);
      sh('mknod', [join(att, 'dev_eth0.json'), 'c', '1', '5']);
      symlinkSync('/etc/shadow', join(att, 'link_eth0.json'));
      writeFileSync(join(att, 'other_eth0.json'), '{}');
      chownSync(join(att, 'other_eth0.json'), NOBODY, NOBODY);
      const d = await start({ stateDir: state });
      const s = await status(d);
      expect(s.node).toBe('node-a');
      const bad = d.logs.filter((l) => l.msg === 'unreadable state file').map((l) => `${l.file}: ${l.error}`);
      expect(bad.length, bad.join('\n')).toBeGreaterThanOrEqual(4);
      expect(bad.join('\n')).not.toMatch(/root:/);
    });
  });

  describe('etcd TLS files', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    it.each([
      [
        'ca as a FIFO',
        (d: string) => {
          sh('mkfifo', [join(d, 'ca.pem')]);
          return { ca: join(d, 'ca.pem') };
        },
        /discovery\.etcd\.ca .*is a FIFO/,
      ],
      ['ca as /dev/zero', () => ({ ca: '/dev/zero' }), /discovery\.etcd\.ca \/dev\/zero.*is a device/],
      [
        'a private key readable by others',
        (d: string) => {
          writeFileSync(join(d, 'c.pem'), pem);
          writeFileSync(join(d, 'k.pem'), pem, { mode: 0o644 });
          return { cert: join(d, 'c.pem'), key: join(d, 'k.pem') };
        },
        /discovery\.etcd\.key .*readable or writable by group or others/,
      ],
      [
        "a private key of another user's",
        (d: string) => {
          writeFileSync(join(d, 'c.pem'), pem);
          writeFileSync(join(d, 'k.pem'), pem, { mode: 0o600 });
          chownSync(join(d, 'k.pem'), NOBODY, NOBODY);
          return { cert: join(d, 'c.pem'), key: join(d, 'k.pem') };
        },
        /discovery\.etcd\.key .*owned by uid 65534/,
      ],
      [
        "a certificate through another user's link in a world-writable directory",
        (d: string) => {
          const open = join(d, 'open');
          mkdirSync(open);
          chmodSync(open, 0o777);
          writeFileSync(join(d, 'c.pem'), pem);
          writeFileSync(join(d, 'k.pem'), pem, { mode: 0o600 });
          symlinkSync(join(d, 'c.pem'), join(open, 'c.pem'));
          sh('chown', ['-h', `${NOBODY}:${NOBODY}`, join(open, 'c.pem')]);
          return { cert: join(open, 'c.pem'), key: join(d, 'k.pem') };
        },
        /discovery\.etcd\.cert .*symbolic link owned by uid 65534/,
      ],
    ])('%s: afsteerd stops with one line naming the key and the path (never hangs or grows)', async (_what, make, why) => {
      const dir = join(t.dir, `tls-${seq++}`);
      mkdirSync(dir, { mode: 0o700 });
      const files = make(dir);
      const out = await startRefused({
        stateDir: freshState(),
        discovery: { static: [], multicast: false, etcd: { endpoints: ['https://127.0.0.1:2379'], ...files } },
      });
      expect(out).toMatch(why);
    });
  });

  describe('socket identity (the CLI and the plugin)', () => {
    const servers: Server[] = [];
    afterAll(() => {
      for (const s of servers) s.close();
    });
    /** A stand-in daemon answering every line with a forged status and a ready; counts connections. */
    const forged = async (path: string): Promise<{ conns: () => number }> => {
      let n = 0;
      const s = createServer((c) => {
        n++;
        c.on('error', () => {});
        c.on('data', () => c.write('{"ok":true,"node":"forged","v":1,"ready":true}\n'));
      });
      servers.push(s);
      await new Promise<void>((r) => s.listen(path, () => r()));
      return { conns: () => n };
    };

    it('a socket owned by another user: afsteerd status refuses it with one line and sends nothing', async () => {
      const dir = join(t.dir, `sock-${seq++}`);
      mkdirSync(dir, { mode: 0o700 });
      const path = join(dir, 'afsteerd.sock');
      const f = await forged(path);
      chownSync(path, NOBODY, NOBODY);
      const err = await execFileP(AFSTEERD_BIN, ['status', '--socket', path], { encoding: 'utf8', timeout: 5000 }).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(1);
      expect(err?.stderr).toMatch(new RegExp(`${path} is owned by uid 65534, not root`));
      expect(err?.stderr.trim().split('\n')).toHaveLength(1);
      expect(f.conns()).toBe(0);
    });

    it("another user's daemon in a world-writable socket directory: status refuses it, the plugin does its ADD itself (through libcni)", async () => {
      const w = new World();
      // Under /tmp (sticky), reachable by nobody; the directory itself world-writable.
      const open = mkdtempSync(join(tmpdir(), 'afsteer-opensock-'));
      chmodSync(open, 0o777);
      const path = join(open, 'afsteerd.sock');
      const fake = t.children.spawn(
        'setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          '--',
          process.execPath,
          '-e',
          `let n = 0;
           require('node:net').createServer((c) => {
             console.log(JSON.stringify({ conn: ++n }));
             c.on('error', () => {});
             c.on('data', () => c.write('{"ok":true,"node":"forged","v":1,"ready":true}\\n'));
           }).listen(process.argv[1], () => console.log(JSON.stringify({ listening: true })));`,
          path,
        ],
        { cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const lines: any[] = [];
      fake.stdout!.on('data', (b) =>
        lines.push(
          ...String(b)
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        ),
      );
      try {
        await waitFor(() => lines.some((l) => l.listening), 5000, "nobody's socket");
        const st = await execFileP(AFSTEERD_BIN, ['status', '--socket', path], { encoding: 'utf8', timeout: 5000 }).then(
          () => undefined,
          (e: { code: number; stderr: string }) => e,
        );
        expect(st?.code).toBe(1);
        expect(st?.stderr).toMatch(new RegExp(`${open} is writable by group or others`));
        const list = w.conflist('opensock', { afsteer: { daemonSocket: path } });
        const ns = w.netns('o1');
        const add = await w.driver('add', list, ns, 'ctr-o1');
        expect(add.code, add.stderr).toBe(0);
        expect(JSON.parse(add.stdout).ips?.length).toBeGreaterThan(0);
        expect(w.stateFiles()).toHaveLength(1);
        const del = await w.driver('del', list, ns, 'ctr-o1');
        expect(del.code, del.stderr).toBe(0);
        expect(lines.filter((l) => l.conn)).toEqual([]);
      } finally {
        fake.kill('SIGKILL');
        w.cleanup();
        rmSync(open, { recursive: true, force: true });
      }
    }, 60_000);
  });
});
