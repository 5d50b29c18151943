/**
 * The afsteer CNI entry point: reads env + stdin, dispatches the verb, prints the result or the
 * error JSON. (The executable's names and operator commands are routed in src/bin/route.ts.)
 */
import { readFileSync } from 'node:fs';
import { describeError } from '../util/describe-error';
import { configureLog, log, tracePhase } from '../util/log';
import { CniError, toCniError } from './cni-error';
import { parseNetConf } from './config';
import { readEnv, readVerb } from './env';
import { CURRENT_VERSION, isSupported, SUPPORTED_VERSIONS } from './version';

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

/**
 * Runs one CNI invocation; returns the process exit code. Output goes through write. stdin: the
 * request's stdin when already read (the executable's main script read it to try afsteerd, or
 * afsteerd runs a handed-over ADD); otherwise it is read here.
 */
export async function runCni(env: NodeJS.ProcessEnv, write: (s: string) => void, given?: string): Promise<number> {
  let cniVersion = CURRENT_VERSION;
  try {
    const verb = readVerb(env);
    const stdin = given ?? readStdin();
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
    tracePhase('config parsed');
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
    log.error(e.message, { code: e.code, ...(e instanceof CniError && e.cause ? { cause: describeError(e.cause) } : {}) });
    write(JSON.stringify(e.toJSON(cniVersion)) + '\n');
    return 1;
  }
}

/** Initialises every verb module (no native code is loaded by doing so); used when making the program's code cache. */
export async function preloadVerbs(): Promise<void> {
  await Promise.all([import('./add'), import('./del'), import('./check'), import('./gc'), import('./status')]);
  (await import('./warmup')).warmUp();
}
