/**
 * `afsteer install`: the node bootstrap installer (scripts/install.sh is a thin wrapper).
 *
 *   afsteer install [--root DIR] [--dry-run] [--bin FILE] [--cni-only] [--write-conflist]
 *                   [--afsteer-conf JSON] [--allow-plugin TYPE]... [--key FILE | --identity DIR2]
 *                   [--node-name NAME] [--peer IPV4[,IPV6][:PORT]]... [--multicast] [--port N]
 *   afsteer install --uninstall [--root DIR] [--dry-run] [--force] [--pin-dir DIR] [--state-dir DIR]
 *   afsteer install --nad NAME [--nad-file FILE] [--afsteer-conf JSON] [--allow-plugin TYPE]...
 *
 * --nad prints the NetworkAttachmentDefinition NAME (from FILE, or stdin: `kubectl get
 * net-attach-def -o json`) with afsteer chained into its config, for `kubectl apply -f -`; it
 * writes nothing (nad.ts).
 *
 * Every target is under DIR (default /), and nothing outside it is written or removed: every
 * directory from DIR down must be a real directory (never a symbolic link) that only root can
 * write, every file read a regular file of root's with one link (read without following a link
 * or blocking on a FIFO, at most 1 MiB), or the run is refused (exit 2) with one line naming the
 * path, before anything changes. Each file is written to a new temp file in its own directory
 * (exclusive create, random name) and renamed over the target (a running ADD never sees half an
 * executable); a target whose bytes (sha256) or link already match is left alone, so a re-run
 * with the same build changes nothing. All temp files — and a copy of every file replaced — are
 * written before the first rename; a failure renames nothing more and puts back every target
 * renamed so far, so "nothing changed" is true (exit 1). What was done (and backups of what it
 * replaced) is recorded in DIR/var/lib/afsteer/install.json, which --uninstall follows.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { inSea, readAsset } from '../native/assets';
import { describeError } from '../util/describe-error';
import { ensureTrustedDir, lstatBeneath, readBeneath, UnsafePathError, walkBeneath } from '../util/safe-fs';
import { InstallFailure } from './failure';
import { backupOf, INSTALL_PATHS } from './install-paths';
import { type Action, type InstallRecord, readRecord, recordText } from './install-record';
import { chainNad, findNad } from './nad';
import { chainConflist, daemonConfigFrom, InstallRefusal, type PeerSpec, parsePeer, primaryConfName } from './plan';
import { type Current, copyToTemp, current, dataTemp, sameAs, sha256OwnFile, symlinkTemp } from './targets';
import { uninstall } from './uninstall';

export { INSTALL_PATHS } from './install-paths';

/** The flags `afsteer install` takes (the manifests test checks the DaemonSet uses only these). */
export const INSTALL_OPTIONS = {
  root: { type: 'string' },
  uninstall: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
  'pin-dir': { type: 'string' },
  'state-dir': { type: 'string' },
  bin: { type: 'string' },
  'cni-only': { type: 'boolean' },
  'write-conflist': { type: 'boolean' },
  'afsteer-conf': { type: 'string' },
  'allow-plugin': { type: 'string', multiple: true },
  key: { type: 'string' },
  identity: { type: 'string' },
  'node-name': { type: 'string' },
  peer: { type: 'string', multiple: true },
  multicast: { type: 'boolean' },
  port: { type: 'string' },
  nad: { type: 'string' },
  'nad-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage: afsteer install [--root DIR] [--dry-run] [--bin FILE] [--cni-only] [--write-conflist]
                       [--afsteer-conf JSON] [--allow-plugin TYPE]... [--key FILE | --identity DIR2]
                       [--node-name NAME] [--peer IPV4[,IPV6][:PORT]]... [--multicast] [--port N]
       afsteer install --uninstall [--root DIR] [--dry-run] [--force] [--pin-dir DIR] [--state-dir DIR]
       afsteer install --nad NAME [--nad-file FILE] [--afsteer-conf JSON] [--allow-plugin TYPE]...
`;

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

/** Runs `afsteer install ARGS`; returns the exit code (2: refused, nothing changed; 1: failed). */
export async function runInstall(argv: string[], write: (s: string) => void): Promise<number> {
  const say = (s: string): void => write(`install: ${s}\n`);
  let flags: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof INSTALL_OPTIONS; strict: true; allowPositionals: false }>
  >['values'];
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
  const root = resolve(flags.root ?? '/');
  try {
    if (flags.nad !== undefined) return chainNadCommand(flags, write);
    checkRoot(root);
    if (flags.uninstall)
      return await uninstall(
        root,
        {
          dryRun: Boolean(flags['dry-run']),
          force: Boolean(flags.force),
          ...(flags['pin-dir'] !== undefined ? { pinDir: flags['pin-dir'] } : {}),
          ...(flags['state-dir'] !== undefined ? { stateDir: flags['state-dir'] } : {}),
        },
        say,
      );
    if (flags.force || flags['pin-dir'] || flags['state-dir'])
      throw new InstallRefusal('--force, --pin-dir and --state-dir go with --uninstall');
    const { steps, record } = await plan(root, flags, say);
    return await apply(root, steps, record, Boolean(flags['dry-run']), say);
  } catch (err) {
    if (err instanceof InstallRefusal || err instanceof UnsafePathError) {
      process.stderr.write(`afsteer install: ${err.message}\n`);
      return 2;
    }
    if (err instanceof InstallFailure) {
      process.stderr.write(`afsteer install: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`afsteer install: failed, nothing changed: ${describeError(err)}\n`);
    return 1;
  }
}

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

/** --nad NAME: prints that NetworkAttachmentDefinition (from --nad-file, else stdin) with afsteer chained into its config; writes nothing. */
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

/** --root must be an existing, real directory that only root can write, on a path only root can change. */
function checkRoot(root: string): void {
  try {
    lstatSync(root);
  } catch {
    throw new InstallRefusal(`--root ${root} does not exist`);
  }
  ensureTrustedDir(root); // exists: only checks, never creates
}

type Flags = {
  [K in keyof typeof INSTALL_OPTIONS]?: (typeof INSTALL_OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof INSTALL_OPTIONS)[K] extends { type: 'boolean' }
      ? boolean
      : string;
};

/** The primary conflist's text: a regular file of root's beneath the root (a link, FIFO, device or socket is refused, never opened). */
function readConflist(root: string, rel: string): string {
  const abs = join(root, rel);
  if (lstatBeneath(root, rel)?.isSymbolicLink())
    throw new InstallRefusal(
      `${abs} is a symbolic link: afsteer chains into the primary CNI config in place and never follows a link there; make it a regular file`,
    );
  const text = readBeneath(root, rel);
  if (text === undefined) throw new InstallRefusal(`${abs} disappeared while being read`);
  return text.toString('utf8');
}

/** Decides every write (reads only). */
async function plan(root: string, flags: Flags, say: (s: string) => void): Promise<{ steps: Step[]; record?: InstallRecord }> {
  const record = readRecord(root);
  const steps: Step[] = [];
  const given = flags.bin ?? (inSea() ? process.execPath : undefined);
  if (!given) throw new InstallRefusal('running from source: give the executable with --bin dist/afsteer');
  let bin: string;
  try {
    bin = realpathSync(given);
  } catch {
    throw new InstallRefusal(`--bin ${given} does not exist`);
  }
  steps.push({ path: INSTALL_PATHS.plugin, kind: 'file', mode: 0o755, src: bin, sha256: sha256OwnFile(bin), why: 'the CNI plugin' });
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
  const ours = record?.actions.find((a) => a.conflist);
  const names = walkBeneath(root, INSTALL_PATHS.cniConfDir) === undefined ? readdirSync(confDir) : [];
  const primary = primaryConfName(names);
  if (primary && !(ours && ours.path === join(INSTALL_PATHS.cniConfDir, primary) && ours.before === 'absent')) {
    const rel = join(INSTALL_PATHS.cniConfDir, primary);
    const c = chainConflist(primary, readConflist(root, rel), extra, flags['allow-plugin'] ?? []);
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
    const { loadKey } = await import('../negotiator/key');
    // The node's identity (`afsteer identity issue … --out DIR2`) instead of a cluster key; else
    // the cluster key: the given one, or a new one when there is none.
    const keyPath = join(root, INSTALL_PATHS.key);
    if (flags.identity && flags.key) throw new InstallRefusal('give --key or --identity, not both');
    if (flags.identity) steps.push(...(await identitySteps(flags.identity, flags['node-name'])));
    else if (flags.key) {
      let key: Buffer;
      try {
        key = loadKey(flags.key);
      } catch (err) {
        throw new InstallRefusal(`--key: ${(err as Error).message}`);
      }
      steps.push({ path: INSTALL_PATHS.key, kind: 'file', mode: 0o600, data: key, why: 'the cluster key (--key)' });
    } else if (!lstatBeneath(root, INSTALL_PATHS.key)) {
      steps.push({
        path: INSTALL_PATHS.key,
        kind: 'file',
        mode: 0o600,
        data: randomBytes(32),
        why: 'a new cluster key (32 random bytes): copy it to every node',
      });
    } else {
      // A key there already, the installer's or not, stays as it is — if afsteerd could use it.
      try {
        loadKey(keyPath);
      } catch (err) {
        throw new InstallRefusal(`the cluster key already there is refused: ${(err as Error).message}; fix or remove it`);
      }
    }
    // The daemon config, from flags, unless one exists (a regular file of root's: a link or FIFO is refused).
    const cfgPath = join(root, INSTALL_PATHS.daemonConfig);
    if (!lstatBeneath(root, INSTALL_PATHS.daemonConfig)) {
      steps.push({
        path: INSTALL_PATHS.daemonConfig,
        kind: 'file',
        mode: 0o644,
        data: Buffer.from(daemonConfigText(flags)),
        why: 'afsteerd config from the flags',
      });
    } else {
      readBeneath(root, INSTALL_PATHS.daemonConfig);
      if (flags['node-name'] || flags.peer || flags.multicast || flags.port)
        say(`${cfgPath} exists: kept as it is; --node-name/--peer/--multicast/--port ignored (edit it, or remove it and re-run)`);
    }
    steps.push({ path: INSTALL_PATHS.unit, kind: 'file', mode: 0o644, data: readAsset('afsteerd.service'), why: 'systemd unit' });
  }
  for (const s of steps) if (s.data) s.sha256 = sha256(s.data);
  return { steps, ...(record ? { record } : {}) };
}

/** The steps copying a node identity directory (checked first: a valid certificate for this node, its key 0600). */
async function identitySteps(dir: string, nodeName: string | undefined): Promise<Step[]> {
  const { FILES, loadNodeIdentity, readIdentityFile } = await import('../identity/identity-files');
  let node: string;
  try {
    node = loadNodeIdentity(dir, Date.now()).cert.node;
  } catch (err) {
    throw new InstallRefusal(`--identity: ${(err as Error).message}`);
  }
  if (node !== (nodeName ?? hostname()))
    throw new InstallRefusal(
      `--identity: the certificate is for ${node}, not this node (${nodeName ?? hostname()}); give --node-name ${node}`,
    );
  return [FILES.nodeKey, FILES.nodeCert, FILES.authorityPub].map((f) => ({
    path: join(INSTALL_PATHS.identityDir, f),
    kind: 'file' as const,
    mode: f === FILES.nodeKey ? 0o600 : 0o644,
    data: Buffer.from(readIdentityFile(join(dir, f), f === FILES.nodeKey)),
    why: `this node's identity (--identity): ${f}`,
  }));
}

function daemonConfigText(flags: Flags): string {
  const nodeName = flags['node-name'] ?? hostname();
  const peers: PeerSpec[] = (flags.peer ?? []).map(parsePeer);
  const port = flags.port !== undefined ? Number(flags.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535))
    throw new InstallRefusal(`--port ${flags.port}: must be 1-65535`);
  return (
    JSON.stringify(
      daemonConfigFrom({
        nodeName,
        peers,
        multicast: Boolean(flags.multicast),
        identity: Boolean(flags.identity),
        ...(port !== undefined ? { port } : {}),
      }),
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

/** The directory part of a path relative to root. */
const dirOf = (rel: string): string => (dirname(rel) === '.' ? '' : dirname(rel));

/** Mode of a directory the installer creates: private for afsteer's own, else the usual. */
const dirMode = (rel: string): number => (rel.startsWith('var/lib/afsteer') || rel === 'etc/afsteer' ? 0o700 : 0o755);

/** The recorded action for a step (what was there before: from the earlier record, else now). */
function actionFor(s: Step, now: Current, prev: Action | undefined): Action {
  return {
    path: s.path,
    kind: s.kind,
    ...(s.kind === 'file' ? { sha256: s.sha256! } : { target: s.target! }),
    before: prev ? prev.before : now.kind === 'absent' ? 'absent' : { backup: backupOf(s.path) },
    ...(s.conflist ? { conflist: true } : {}),
  };
}

/** A new temp file beside abs holding the step's version (the executable copied and checked against the planned sha256). */
function writeStep(s: Step, abs: string): string {
  if (s.kind === 'symlink') return symlinkTemp(s.target!, abs);
  if (!s.src) return dataTemp(s.data!, abs, s.mode);
  const { tmp, sha256: got } = copyToTemp(s.src, abs, s.mode);
  if (got !== s.sha256) {
    rmSync(tmp, { force: true });
    throw new Error(`${s.src} changed while it was being installed`);
  }
  return tmp;
}

/** A new temp file beside path holding a copy of what is at abs now (a file's bytes and mode, or a link). */
function copyOf(abs: string, now: Current, path: string): string {
  return now.kind === 'symlink' ? symlinkTemp(now.target, path) : copyToTemp(abs, path).tmp;
}

/** Writes the record (a new temp file renamed over it), unless it says that already. */
function writeRecord(root: string, next: InstallRecord, prev: InstallRecord | undefined): void {
  if (prev && recordText(prev) === recordText(next)) return;
  const abs = join(root, INSTALL_PATHS.record);
  renameSync(dataTemp(Buffer.from(recordText(next)), abs, 0o600), abs);
}

/** Applies the plan: temp files first, then renames, then the record; every rename undone on any failure. */
async function apply(
  root: string,
  steps: Step[],
  record: InstallRecord | undefined,
  dryRun: boolean,
  say: (s: string) => void,
): Promise<number> {
  const cfg = steps.find((s) => s.path === INSTALL_PATHS.daemonConfig);
  if (cfg?.data) await checkDaemonConfig(cfg.data.toString());
  const prev = new Map((record?.actions ?? []).map((a) => [a.path, a]));
  const todo = steps.map((s) => ({ s, abs: join(root, s.path), now: current(root, s.path) }));
  for (const { abs, now } of todo)
    if (now.kind === 'other') throw new InstallRefusal(`${abs} is ${now.what}, neither a file nor a symlink: move it away first`);
  const changes = todo.filter(({ s, now }) => !sameAs(now, s));
  // Every directory written to is checked now, so a refusal comes before any change.
  for (const { s, now } of changes) if (now.kind !== 'absent' && !prev.has(s.path)) walkBeneath(root, dirOf(backupOf(s.path)));
  walkBeneath(root, dirOf(INSTALL_PATHS.record));
  for (const { s, abs, now } of todo)
    say(`${dryRun ? 'would ' : ''}${sameAs(now, s) ? 'keep (unchanged)' : now.kind === 'absent' ? 'create' : 'replace'} ${abs}: ${s.why}`);
  if (dryRun) {
    say(`dry run: ${changes.length} change(s), nothing written`);
    return 0;
  }

  // The record after this run: the earlier record's actions in their order (a re-run that
  // changes nothing rewrites nothing), then new ones; a path already there as we would write it is not ours.
  const actionOf = new Map((record?.actions ?? []).map((a) => [a.path, a]));
  for (const { s, now } of todo) if (prev.has(s.path) || !sameAs(now, s)) actionOf.set(s.path, actionFor(s, now, prev.get(s.path)));
  const made: string[] = [];
  const next = (actions: Action[]): InstallRecord => ({
    version: 1,
    afsteer: process.env.AFSTEER_BUILD_VERSION ?? '0.1.0-dev',
    installedAt: record?.installedAt ?? new Date().toISOString(),
    actions,
    dirs: [...(record?.dirs ?? []), ...made],
  });

  const mkdirs = (rel: string): void => void walkBeneath(root, dirOf(rel), { mode: dirMode, made });
  const temps = new Set<string>();
  const undo: { path: string; run: () => void }[] = [];
  try {
    // 1. Every new version to a temp file beside its target, and a copy of what it replaces:
    //    the backup of what was there before the first install, else the version to put back on failure.
    const prepared: { s: Step; abs: string; tmp: string; keep?: string; backup?: { tmp: string; abs: string } }[] = [];
    for (const { s, abs, now } of changes) {
      mkdirs(s.path);
      const tmp = writeStep(s, abs);
      temps.add(tmp);
      let keep: string | undefined;
      let backup: { tmp: string; abs: string } | undefined;
      if (now.kind !== 'absent' && prev.has(s.path)) temps.add((keep = copyOf(abs, now, abs)));
      else if (now.kind !== 'absent') {
        mkdirs(backupOf(s.path));
        const at = join(root, backupOf(s.path));
        backup = { tmp: copyOf(abs, now, at), abs: at };
        temps.add(backup.tmp);
      }
      prepared.push({ s, abs, tmp, ...(keep ? { keep } : {}), ...(backup ? { backup } : {}) });
    }
    mkdirs(INSTALL_PATHS.record);
    // 2. The renames, each with its undo.
    for (const p of prepared) {
      if (p.backup) {
        renameSync(p.backup.tmp, p.backup.abs);
        const b = p.backup.abs;
        undo.push({ path: b, run: () => rmSync(b, { force: true }) });
      }
      renameSync(p.tmp, p.abs);
      const restore = p.backup?.abs ?? p.keep;
      undo.push({ path: p.abs, run: restore ? () => renameSync(restore, p.abs) : () => unlinkSync(p.abs) });
    }
    // 3. The record, last.
    writeRecord(root, next([...actionOf.values()]), record);
  } catch (err) {
    const left: string[] = [];
    for (const u of undo.reverse()) {
      try {
        u.run();
      } catch {
        left.push(u.path);
      }
    }
    for (const t of temps) rmSync(t, { force: true });
    for (const d of [...made].reverse()) {
      try {
        rmdirSync(join(root, d));
      } catch {
        // holds something (a target not undone): stays
      }
    }
    if (!left.length) throw new InstallFailure(`failed, nothing changed: ${describeError(err)}`, { cause: err });
    // Some target could not be put back: record it as installed, so --uninstall still removes or restores it.
    const stuck = new Set(left.map((p) => p.slice(root.length + 1)));
    try {
      writeRecord(
        root,
        next([...(record?.actions ?? []).filter((a) => !stuck.has(a.path)), ...[...stuck].flatMap((p) => actionOf.get(p) ?? [])]),
        record,
      );
    } catch {
      // reported below: the record is as before
    }
    throw new InstallFailure(
      `failed: ${describeError(err)}; rolled back except ${left.join(', ')} (the new version is there and recorded in ${join(root, INSTALL_PATHS.record)}: re-run the install, or --uninstall)`,
      { cause: err },
    );
  }
  for (const t of temps) rmSync(t, { force: true }); // the copies kept for a rollback
  say(changes.length ? `done: ${changes.length} change(s), recorded in ${join(root, INSTALL_PATHS.record)}` : 'done: nothing to change');
  if (steps.some((s) => s.path === INSTALL_PATHS.unit) && changes.length)
    say('start the negotiator: systemctl daemon-reload && systemctl enable --now afsteerd');
  return 0;
}
