/**
 * `afsteer install`: the node bootstrap installer (scripts/install.sh is a thin wrapper).
 *
 *   afsteer install [--root DIR] [--dry-run] [--bin FILE] [--cni-only] [--write-conflist]
 *                   [--afsteer-conf JSON] [--allow-plugin TYPE]... [--key FILE]
 *                   [--node-name NAME] [--peer IPV4[,IPV6][:PORT]]... [--multicast] [--port N]
 *   afsteer install --uninstall [--root DIR] [--dry-run]
 *   afsteer install --nad NAME [--nad-file FILE] [--afsteer-conf JSON] [--allow-plugin TYPE]...
 *
 * --nad prints the NetworkAttachmentDefinition NAME (from FILE, or stdin: `kubectl get
 * net-attach-def -o json`) with afsteer chained into its config, for `kubectl apply -f -`; it
 * writes nothing (nad.ts).
 *
 * Every target is under DIR (default /). Each file is written to a hidden temp file in its own
 * directory and renamed over the target (a running ADD never sees half an executable); a target
 * whose bytes (sha256) or link already match is left alone, so a re-run with the same build
 * changes nothing. All temp files are written before the first rename; a failure renames nothing
 * more, undoes the renames done and removes the temp files. What was done (and backups of what
 * it replaced) is recorded in DIR/var/lib/afsteer/install.json, which --uninstall follows.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { inSea, readAsset } from '../native/assets';
import { chainNad, findNad } from './nad';
import { chainConflist, daemonConfigFrom, InstallRefusal, type PeerSpec, parsePeer, primaryConfName, unchainConflist } from './plan';

/** Target paths, relative to --root: one place for the layout (the manifests test checks against it). */
export const INSTALL_PATHS = {
  plugin: 'opt/cni/bin/afsteer',
  pluginDaemonLink: 'opt/cni/bin/afsteerd',
  daemonLink: 'usr/local/bin/afsteerd',
  cniConfDir: 'etc/cni/net.d',
  exampleConflist: 'etc/cni/net.d/10-afsteer.conflist',
  key: 'etc/afsteer/cluster.key',
  daemonConfig: 'etc/afsteer/afsteerd.json',
  unit: 'etc/systemd/system/afsteerd.service',
  record: 'var/lib/afsteer/install.json',
  backups: 'var/lib/afsteer/install-backup',
} as const;

/** The flags `afsteer install` takes (the manifests test checks the DaemonSet uses only these). */
export const INSTALL_OPTIONS = {
  root: { type: 'string' },
  uninstall: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  bin: { type: 'string' },
  'cni-only': { type: 'boolean' },
  'write-conflist': { type: 'boolean' },
  'afsteer-conf': { type: 'string' },
  'allow-plugin': { type: 'string', multiple: true },
  key: { type: 'string' },
  'node-name': { type: 'string' },
  peer: { type: 'string', multiple: true },
  multicast: { type: 'boolean' },
  port: { type: 'string' },
  nad: { type: 'string' },
  'nad-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage: afsteer install [--root DIR] [--dry-run] [--bin FILE] [--cni-only] [--write-conflist]
                       [--afsteer-conf JSON] [--allow-plugin TYPE]... [--key FILE]
                       [--node-name NAME] [--peer IPV4[,IPV6][:PORT]]... [--multicast] [--port N]
       afsteer install --uninstall [--root DIR] [--dry-run]
       afsteer install --nad NAME [--nad-file FILE] [--afsteer-conf JSON] [--allow-plugin TYPE]...
`;

/** One recorded action: a file or link the installer put at path (relative to root). */
interface Action {
  path: string;
  kind: 'file' | 'symlink';
  /** sha256 of the file written, or the link's target. */
  sha256?: string;
  target?: string;
  /** What was there before the first install: nothing, or a backup (relative to root). */
  before: 'absent' | { backup: string };
  /** For the chained conflist: uninstall may remove just the afsteer entry if the file changed since. */
  conflist?: boolean;
}

/** The install record (DIR/var/lib/afsteer/install.json). */
interface InstallRecord {
  version: 1;
  afsteer: string;
  installedAt: string;
  actions: Action[];
  /** Directories the installer created (removed on uninstall when empty). */
  dirs: string[];
}

/** A planned write. */
interface Step {
  path: string;
  kind: 'file' | 'symlink';
  mode: number;
  /** File contents, or a file to copy them from (the executable). */
  data?: Buffer;
  src?: string;
  target?: string;
  sha256?: string;
  conflist?: boolean;
  why: string;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function sha256File(p: string): string {
  const h = createHash('sha256');
  const fd = openSync(p, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** What is at an absolute path now: absent, a file (sha256), a link (target), or something else. */
function current(
  p: string,
): { kind: 'absent' } | { kind: 'file'; sha256: string } | { kind: 'symlink'; target: string } | { kind: 'other' } {
  let st;
  try {
    st = lstatSync(p);
  } catch (err) {
    if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return { kind: 'absent' };
    throw err;
  }
  if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(p) };
  if (st.isFile()) return { kind: 'file', sha256: sha256File(p) };
  return { kind: 'other' };
}

const matches = (c: ReturnType<typeof current>, s: { kind: string; sha256?: string; target?: string }): boolean =>
  (c.kind === 'file' && s.kind === 'file' && c.sha256 === s.sha256) ||
  (c.kind === 'symlink' && s.kind === 'symlink' && c.target === s.target);

function readRecord(root: string): InstallRecord | undefined {
  const p = join(root, INSTALL_PATHS.record);
  if (!existsSync(p)) return undefined;
  try {
    const r = JSON.parse(readFileSync(p, 'utf8')) as InstallRecord;
    if (r.version !== 1 || !Array.isArray(r.actions)) throw new Error('unknown format');
    return r;
  } catch (err) {
    throw new InstallRefusal(`${p} is unreadable (${(err as Error).message}): move it away to install afresh`);
  }
}

/** Runs `afsteer install ARGS`; returns the exit code (2: refused, nothing changed). */
export async function runInstall(argv: string[], write: (s: string) => void): Promise<number> {
  const say = (s: string): void => write(`install: ${s}\n`);
  let flags;
  try {
    flags = parseArgs({ args: argv, options: INSTALL_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`afsteer install: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    write(USAGE);
    return 0;
  }
  const root = flags.root ?? '/';
  try {
    if (flags.nad !== undefined) return chainNadCommand(flags, write);
    if (!existsSync(root)) throw new InstallRefusal(`--root ${root} does not exist`);
    if (flags.uninstall) return await uninstall(root, Boolean(flags['dry-run']), say);
    const steps = await plan(root, flags, say);
    return await apply(root, steps, Boolean(flags['dry-run']), say);
  } catch (err) {
    if (err instanceof InstallRefusal) {
      process.stderr.write(`afsteer install: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`afsteer install: failed, nothing changed: ${(err as Error).message}\n`);
    return 1;
  }
}

type Flags = {
  [K in keyof typeof INSTALL_OPTIONS]?: (typeof INSTALL_OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof INSTALL_OPTIONS)[K] extends { type: 'boolean' }
      ? boolean
      : string;
};

/** --afsteer-conf: afsteer's own keys, as an object. */
function afsteerConfFlag(flags: Flags): Record<string, unknown> {
  if (!flags['afsteer-conf']) return {};
  let extra: unknown;
  try {
    extra = JSON.parse(flags['afsteer-conf']);
  } catch (err) {
    throw new InstallRefusal(`--afsteer-conf is not valid JSON: ${(err as Error).message}`);
  }
  if (!extra || typeof extra !== 'object' || Array.isArray(extra) || 'type' in extra)
    throw new InstallRefusal('--afsteer-conf must be a JSON object of afsteer keys (without "type")');
  return extra as Record<string, unknown>;
}

/** --nad NAME: prints that NetworkAttachmentDefinition (from --nad-file, else stdin) with afsteer chained into its config. */
function chainNadCommand(flags: Flags, write: (s: string) => void): number {
  const from = flags['nad-file'] ?? 'stdin';
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(flags['nad-file'] ?? 0, 'utf8'));
  } catch (err) {
    throw new InstallRefusal(
      `--nad: cannot read a JSON document from ${from} (${(err as Error).message}): give kubectl get net-attach-def -o json`,
    );
  }
  const nad = findNad(doc, flags.nad!);
  const c = chainNad(nad, afsteerConfFlag(flags), flags['allow-plugin'] ?? []);
  if (c.already) {
    process.stderr.write(`afsteer install: ${flags.nad} already chains afsteer; printed unchanged\n`);
    write(`${JSON.stringify(nad, null, 2)}\n`);
    return 0;
  }
  write(`${JSON.stringify(c.nad, null, 2)}\n`);
  return 0;
}

/** Decides every write (reads only). */
async function plan(root: string, flags: Flags, say: (s: string) => void): Promise<Step[]> {
  const steps: Step[] = [];
  const bin = flags.bin ?? (inSea() ? process.execPath : undefined);
  if (!bin) throw new InstallRefusal('running from source: give the executable with --bin dist/afsteer');
  if (!existsSync(bin)) throw new InstallRefusal(`--bin ${bin} does not exist`);
  steps.push({ path: INSTALL_PATHS.plugin, kind: 'file', mode: 0o755, src: bin, sha256: sha256File(bin), why: 'the CNI plugin' });
  steps.push({ path: INSTALL_PATHS.pluginDaemonLink, kind: 'symlink', mode: 0o777, target: 'afsteer', why: 'afsteerd beside the plugin' });
  if (!flags['cni-only'])
    steps.push({
      path: INSTALL_PATHS.daemonLink,
      kind: 'symlink',
      mode: 0o777,
      target: `/${INSTALL_PATHS.plugin}`,
      why: 'afsteerd on PATH',
    });

  // The conflist: chain into the primary one, or write the example.
  const extra = afsteerConfFlag(flags);
  const confDir = join(root, INSTALL_PATHS.cniConfDir);
  const record = readRecord(root);
  const ours = record?.actions.find((a) => a.conflist);
  const names = existsSync(confDir) ? readdirSync(confDir) : [];
  const primary = primaryConfName(names);
  if (primary && !(ours && ours.path === join(INSTALL_PATHS.cniConfDir, primary) && ours.before === 'absent')) {
    const rel = join(INSTALL_PATHS.cniConfDir, primary);
    const text = readFileSync(join(root, rel), 'utf8');
    const c = chainConflist(primary, text, extra, flags['allow-plugin'] ?? []);
    if (c.text !== undefined)
      steps.push({
        path: rel,
        kind: 'file',
        mode: 0o644,
        data: Buffer.from(c.text),
        conflist: true,
        why: `afsteer chained into ${primary}`,
      });
    else if (ours?.path !== rel) say(`${join(root, rel)} already chains afsteer (not added by this installer: left as it is)`);
    else say(`keep ${join(root, rel)}: afsteer chained by an earlier install`); // its recorded action carries over
  } else if (primary || flags['write-conflist']) {
    const list = JSON.parse(readAsset('10-afsteer.conflist').toString()) as { plugins: Record<string, unknown>[] };
    for (const p of list.plugins) if (p.type === 'afsteer') Object.assign(p, extra);
    steps.push({
      path: INSTALL_PATHS.exampleConflist,
      kind: 'file',
      mode: 0o644,
      data: Buffer.from(JSON.stringify(list, null, 2) + '\n'),
      conflist: true,
      why: "afsteer's example bridge conflist (--write-conflist)",
    });
  } else {
    throw new InstallRefusal(
      `no CNI config (*.conflist, *.conf, *.json) in ${confDir}: install the node's network plugin first, or give --write-conflist for afsteer's example bridge conflist`,
    );
  }

  if (!flags['cni-only']) {
    // The cluster key: the given one, or a new one when there is none.
    const keyPath = join(root, INSTALL_PATHS.key);
    if (flags.key) {
      const { loadKey } = await import('../negotiator/key');
      let key: Buffer;
      try {
        key = loadKey(flags.key);
      } catch (err) {
        throw new InstallRefusal(`--key: ${(err as Error).message}`);
      }
      steps.push({ path: INSTALL_PATHS.key, kind: 'file', mode: 0o600, data: key, why: 'the cluster key (--key)' });
    } else if (!existsSync(keyPath)) {
      steps.push({
        path: INSTALL_PATHS.key,
        kind: 'file',
        mode: 0o600,
        data: randomBytes(32),
        why: 'a new cluster key (32 random bytes): copy it to every node',
      });
    } // (a key there already, the installer's or not, stays as it is)
    // The daemon config, from flags, unless one exists.
    const cfgPath = join(root, INSTALL_PATHS.daemonConfig);
    if (!existsSync(cfgPath)) {
      steps.push({
        path: INSTALL_PATHS.daemonConfig,
        kind: 'file',
        mode: 0o644,
        data: Buffer.from(daemonConfigText(flags)),
        why: 'afsteerd config from the flags',
      });
    } else if (flags['node-name'] || flags.peer || flags.multicast || flags.port) {
      say(`${cfgPath} exists: kept as it is; --node-name/--peer/--multicast/--port ignored (edit it, or remove it and re-run)`);
    }
    steps.push({ path: INSTALL_PATHS.unit, kind: 'file', mode: 0o644, data: readAsset('afsteerd.service'), why: 'systemd unit' });
  }
  for (const s of steps) if (s.data) s.sha256 = sha256(s.data);
  return steps;
}

function daemonConfigText(flags: Flags): string {
  const nodeName = flags['node-name'] ?? hostname();
  const peers: PeerSpec[] = (flags.peer ?? []).map(parsePeer);
  const port = flags.port !== undefined ? Number(flags.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535))
    throw new InstallRefusal(`--port ${flags.port}: must be 1-65535`);
  return (
    JSON.stringify(
      daemonConfigFrom({ nodeName, peers, multicast: Boolean(flags.multicast), ...(port !== undefined ? { port } : {}) }),
      null,
      2,
    ) + '\n'
  );
}

/** Checks the generated daemon config against afsteerd's own schema. */
async function checkDaemonConfig(text: string): Promise<void> {
  const { parseDaemonConfig } = await import('../negotiator/daemon-config');
  try {
    parseDaemonConfig(text, 'afsteerd.json from the flags');
  } catch (err) {
    throw new InstallRefusal(`${(err as Error).message}${/nodeName/.test((err as Error).message) ? ' (give --node-name)' : ''}`);
  }
}

/** Creates the directories a path needs (relative to root), recording those it made. */
function ensureDirs(root: string, rel: string, made: string[]): void {
  const parts = dirname(rel).split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = parts.slice(0, i).join('/');
    if (existsSync(join(root, d))) continue;
    mkdirSync(join(root, d), { mode: d.startsWith('var/lib/afsteer') || d === 'etc/afsteer' ? 0o700 : 0o755 });
    made.push(d);
  }
}

const tmpName = (p: string): string => join(dirname(p), `.${p.slice(dirname(p).length + 1)}.afsteer-install.${process.pid}.tmp`);

/** Writes a step to its temp file (a new file: never through something planted there). */
function writeTemp(abs: string, s: Step): string {
  const tmp = tmpName(abs);
  rmSync(tmp, { force: true });
  if (s.kind === 'symlink') symlinkSync(s.target!, tmp);
  else {
    if (s.src) copyFileSync(s.src, tmp);
    else writeFileSync(tmp, s.data!, { mode: s.mode, flag: 'wx' });
    chmodSync(tmp, s.mode);
  }
  return tmp;
}

/** Applies the plan: temp files first, then renames, then the record; undone on any failure. */
async function apply(root: string, steps: Step[], dryRun: boolean, say: (s: string) => void): Promise<number> {
  const cfg = steps.find((s) => s.path === INSTALL_PATHS.daemonConfig);
  if (cfg?.data) await checkDaemonConfig(cfg.data.toString());
  const record = readRecord(root);
  const prev = new Map((record?.actions ?? []).map((a) => [a.path, a]));
  const todo = steps.map((s) => ({ s, abs: join(root, s.path), now: current(join(root, s.path)) }));
  for (const { s, abs, now } of todo)
    if (now.kind === 'other') throw new InstallRefusal(`${abs} is neither a file nor a symlink: move it away first`);
  const changes = todo.filter(({ s, now }) => !matches(now, s));
  for (const { s, abs, now } of todo)
    say(`${dryRun ? 'would ' : ''}${matches(now, s) ? 'keep (unchanged)' : now.kind === 'absent' ? 'create' : 'replace'} ${abs}: ${s.why}`);
  if (dryRun) {
    say(`dry run: ${changes.length} change(s), nothing written`);
    return 0;
  }
  const made: string[] = [];
  const temps: string[] = [];
  const undo: (() => void)[] = [];
  // In the earlier record's order (a re-run that changes nothing rewrites nothing), new ones last.
  const byPath = new Map((record?.actions ?? []).map((a) => [a.path, a]));
  try {
    // 1. Everything to temp files (and backups of what is replaced for the first time).
    const backups = new Map<string, { tmp: string; rel: string }>();
    for (const { s, abs, now } of changes) {
      ensureDirs(root, s.path, made);
      temps.push(writeTemp(abs, s));
      if (now.kind !== 'absent' && !prev.has(s.path)) {
        const rel = join(INSTALL_PATHS.backups, s.path);
        ensureDirs(root, rel, made);
        const tmp = tmpName(join(root, rel));
        rmSync(tmp, { force: true });
        if (now.kind === 'symlink') symlinkSync(now.target, tmp);
        else copyFileSync(abs, tmp);
        temps.push(tmp);
        backups.set(s.path, { tmp, rel });
      }
    }
    ensureDirs(root, INSTALL_PATHS.record, made);
    // 2. Renames.
    for (const { s, abs, now } of changes) {
      const b = backups.get(s.path);
      if (b) {
        renameSync(b.tmp, join(root, b.rel));
        undo.push(() => rmSync(join(root, b.rel), { force: true }));
      }
      const restore = now.kind === 'absent' ? undefined : join(root, INSTALL_PATHS.backups, s.path);
      renameSync(tmpName(abs), abs);
      undo.push(() => {
        if (restore && existsSync(restore)) copyFileSync(restore, tmpName(abs)), renameSync(tmpName(abs), abs);
        else if (!restore) unlinkSync(abs);
      });
    }
    for (const { s, now } of todo) {
      const p = prev.get(s.path);
      if (!p && matches(now, s)) continue; // was there already as we would write it: not ours
      byPath.set(s.path, {
        path: s.path,
        kind: s.kind,
        ...(s.kind === 'file' ? { sha256: s.sha256! } : { target: s.target! }),
        before: p ? p.before : now.kind === 'absent' ? 'absent' : { backup: join(INSTALL_PATHS.backups, s.path) },
        ...(s.conflist ? { conflist: true } : {}),
      });
    }
    const actions = [...byPath.values()]; // with those of earlier runs, e.g. a conflist chained then
    // 3. The record, last.
    const rec: InstallRecord = {
      version: 1,
      afsteer: process.env.AFSTEER_BUILD_VERSION ?? '0.1.0-dev',
      installedAt: record?.installedAt ?? new Date().toISOString(),
      actions,
      dirs: [...(record?.dirs ?? []), ...made],
    };
    const recText = JSON.stringify(rec, null, 2) + '\n';
    const recPath = join(root, INSTALL_PATHS.record);
    if (!existsSync(recPath) || readFileSync(recPath, 'utf8') !== recText) {
      writeFileSync(tmpName(recPath), recText, { mode: 0o600 });
      renameSync(tmpName(recPath), recPath);
    }
  } catch (err) {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch {
        // best effort: keep undoing the rest
      }
    }
    for (const t of temps) rmSync(t, { force: true });
    for (const d of made.reverse()) {
      try {
        rmdirSync(join(root, d));
      } catch {
        // not empty: leave it
      }
    }
    throw err;
  }
  say(changes.length ? `done: ${changes.length} change(s), recorded in ${join(root, INSTALL_PATHS.record)}` : 'done: nothing to change');
  if (steps.some((s) => s.path === INSTALL_PATHS.unit) && changes.length)
    say('start the negotiator: systemctl daemon-reload && systemctl enable --now afsteerd');
  return 0;
}

/** Follows the record backwards: restores what was there, removes what was not. */
function uninstall(root: string, dryRun: boolean, say: (s: string) => void): number {
  const record = readRecord(root);
  if (!record) {
    say(`no install record at ${join(root, INSTALL_PATHS.record)}: nothing to uninstall`);
    return 0;
  }
  const w = dryRun ? 'would ' : '';
  for (const a of [...record.actions].reverse()) {
    const abs = join(root, a.path);
    const now = current(abs);
    if (!matches(now, a)) {
      const unchained = a.conflist && now.kind === 'file' ? unchainConflist(readFileSync(abs, 'utf8')) : undefined;
      if (unchained !== undefined) {
        say(`${w}remove afsteer from ${abs} (changed since install: only afsteer's entry is removed)`);
        if (!dryRun) writeFileSync(tmpName(abs), unchained, { mode: 0o644 }), renameSync(tmpName(abs), abs);
      } else say(`${abs} ${now.kind === 'absent' ? 'is already gone' : 'changed since install: left in place'}`);
      continue;
    }
    if (a.before === 'absent') {
      say(`${w}remove ${abs}`);
      if (!dryRun) unlinkSync(abs);
    } else {
      const b = join(root, a.before.backup);
      say(`${w}restore ${abs} as it was before install`);
      if (!dryRun) renameSync(b, abs);
    }
  }
  if (dryRun) return 0;
  rmSync(join(root, INSTALL_PATHS.backups), { recursive: true, force: true });
  rmSync(join(root, INSTALL_PATHS.record), { force: true });
  for (const d of [...record.dirs].sort((x, y) => y.length - x.length)) {
    try {
      rmdirSync(join(root, d));
    } catch {
      // holds something the installer did not put there (state, native addons): stays
    }
  }
  say('uninstalled');
  return 0;
}
