/** The afsteer CNI entry point: reads env + stdin, dispatches the verb, prints the result or the error JSON. */
import { readFileSync } from 'node:fs';
import { configureLog, log } from '../util/log';
import { parseNetConf } from './config';
import { readEnv, readVerb } from './env';
import { CniError, toCniError } from './errors';
import { CURRENT_VERSION, isSupported, SUPPORTED_VERSIONS } from './version';

/** afsteer's release version (set by the build). */
export const AFSTEER_VERSION = process.env.AFSTEER_BUILD_VERSION ?? '0.1.0-dev';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EOF' || code === 'EBADF') return '';
    throw err;
  }
}

/** cniVersion the caller asked for, if the text says one we support (used for error replies). */
function requestedVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && isSupported(v) ? v : CURRENT_VERSION;
  } catch {
    return CURRENT_VERSION;
  }
}

/** Runs one CNI invocation; returns the process exit code. Output goes through write. */
export async function runCni(env: NodeJS.ProcessEnv, argv: string[], write: (s: string) => void): Promise<number> {
  if (!env.CNI_COMMAND && argv.some((a) => a === '--version' || a === '-v' || a === 'version')) {
    write(`CNI afsteer plugin ${AFSTEER_VERSION}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
    return 0;
  }
  if (!env.CNI_COMMAND && argv[0] === 'show') {
    // Operator command (not a CNI verb): loaded lazily like the verbs.
    return (await import('../cli/show')).runShow(argv.slice(1), write);
  }
  if (!env.CNI_COMMAND && argv[0] === 'steer') {
    return (await import('../cli/steer')).runSteer(argv.slice(1), write);
  }
  let cniVersion = CURRENT_VERSION;
  try {
    const verb = readVerb(env);
    const stdin = readStdin();
    cniVersion = requestedVersion(stdin);
    if (verb === 'VERSION') {
      write(JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
      return 0;
    }
    const conf = parseNetConf(stdin);
    cniVersion = conf.cniVersion;
    configureLog({ level: conf.logLevel, ...(conf.logFile ? { file: conf.logFile } : {}), base: { verb, network: conf.name } });
    const cenv = readEnv(env, verb);
    log.debug('config parsed');
    let out: Record<string, unknown> | undefined;
    // Verbs are imported lazily so that VERSION and input errors never load netlink, koffi or libbpf.
    switch (verb) {
      case 'ADD':
        out = await (await import('./add')).cmdAdd(conf, cenv);
        break;
      case 'DEL':
        await (await import('./del')).cmdDel(conf, cenv);
        break;
      case 'CHECK':
        await (await import('./check')).cmdCheck(conf, cenv);
        break;
      case 'GC':
        await (await import('./gc')).cmdGc(conf, cenv);
        break;
      case 'STATUS':
        await (await import('./status')).cmdStatus(conf);
        break;
    }
    if (out) write(JSON.stringify(out) + '\n');
    return 0;
  } catch (err) {
    const e = toCniError(err);
    log.error(e.message, { code: e.code, ...(e instanceof CniError && e.cause ? { cause: String((e.cause as Error).message ?? e.cause) } : {}) });
    write(JSON.stringify(e.toJSON(cniVersion)) + '\n');
    return 1;
  }
}

/** Initialises every verb module (no native code is loaded by doing so); used when building the startup snapshot. */
export async function preloadVerbs(): Promise<void> {
  await Promise.all([import('./add'), import('./del'), import('./check'), import('./gc'), import('./status'), import('../cli/show'), import('../cli/steer')]);
  (await import('./warmup')).warmUp();
}
