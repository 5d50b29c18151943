/**
 * The plugin's side of the ADD hand-off (the conversation: src/control/handoff-protocol.ts): give the ADD
 * to a running afsteerd, whose code is warm, instead of doing it in this fresh process. Run by the
 * executable's main script before the program is loaded, so it uses node builtins only. Any doubt
 * before the go-ahead (no daemon, a refusal, a decline, no answer within HANDOFF_READY_TIMEOUT_MS,
 * a config this cannot read, a socket that may not be afsteerd's: safe-fs checkDaemonSocket)
 * answers undefined: the caller runs the ADD in-process, as it would without afsteerd, so its
 * result and errors are exactly those.
 */
import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { asAddResult, cniAddRequest, cniGo, HANDOFF_ENV_KEYS, isReady, type NsIdentity, readyForLayout } from '../control/handoff-protocol';
import { DEFAULT_CONTROL_SOCKET } from '../defaults';
import { checkDaemonSocket } from '../util/safe-fs';
import { CURRENT_VERSION, isSupported } from './version';

/** The longest the plugin waits for afsteerd's ready answer before doing the ADD itself. */
export const HANDOFF_READY_TIMEOUT_MS = 30;
/** After the go-ahead: the ADD's own bound (the config's lockTimeoutMs) plus this margin. */
export const HANDOFF_RUN_MARGIN_MS = 30_000;
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** Largest stdin offered (the request adds the environment and namespace ids; afsteerd's line limit is 64 KiB). */
export const HANDOFF_MAX_STDIN = 56 * 1024;
/** CNI "try again later": afsteerd was given the ADD and did not say how it ended. */
const TRY_AGAIN_LATER = 11;

/** What the ADD printed and its exit code. */
export interface HandoffOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * The control socket to try, from the raw config: daemonSocket when it is a plain absolute path
 * (the config schema's text rules, checked again in-process), else the default; undefined when the
 * config is larger than HANDOFF_MAX_STDIN, not a JSON object, delegates IPAM (stays in the plugin)
 * or names a socket this will not judge. Pure.
 */
export function handoffTarget(stdin: string): { socket: string; lockTimeoutMs: number; cniVersion: string } | undefined {
  // afsteerd reads at most MAX_CONTROL_REQUEST (64 KiB) per request: a larger config stays here.
  if (stdin.length > HANDOFF_MAX_STDIN) return undefined;
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return undefined;
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return undefined;
  const c = conf as Record<string, unknown>;
  if (c.ipam !== undefined) return undefined;
  const socket = c.daemonSocket === undefined ? DEFAULT_CONTROL_SOCKET : c.daemonSocket;
  if (typeof socket !== 'string' || !socket.startsWith('/') || socket.length > 107 || /[\x00-\x1f\x7f]/.test(socket)) return undefined;
  if (socket.split('/').some((part) => part === '.' || part === '..')) return undefined;
  const lockTimeoutMs =
    typeof c.lockTimeoutMs === 'number' && Number.isFinite(c.lockTimeoutMs) && c.lockTimeoutMs >= 0
      ? c.lockTimeoutMs
      : DEFAULT_LOCK_TIMEOUT_MS;
  const cniVersion = typeof c.cniVersion === 'string' && isSupported(c.cniVersion) ? c.cniVersion : CURRENT_VERSION;
  return { socket, lockTimeoutMs, cniVersion };
}

function nsOf(path: string): NsIdentity {
  const st = statSync(path);
  return { dev: st.dev, ino: st.ino };
}

/**
 * Offers the ADD (env, stdin) to afsteerd. Resolves with its outcome once afsteerd ran it;
 * undefined when afsteerd did not take it (then nothing was done); after the go-ahead, a lost
 * answer is a CNI error 11 (try again later), never a second ADD. trace: AFSTEER_TRACE_PHASES lines.
 */
export function tryHandOff(
  env: NodeJS.ProcessEnv,
  stdin: string,
  trace: (phase: string) => void = () => {},
): Promise<HandoffOutcome | undefined> {
  const target = handoffTarget(stdin);
  if (!target) return Promise.resolve(undefined);
  let ns: { net: ReturnType<typeof nsOf>; mnt: ReturnType<typeof nsOf> };
  let socket: string;
  try {
    // Not to a socket another user could have put there: then the plugin does the ADD itself.
    socket = checkDaemonSocket(target.socket);
    ns = { net: nsOf('/proc/self/ns/net'), mnt: nsOf('/proc/self/ns/mnt') };
  } catch {
    return Promise.resolve(undefined);
  }
  const cniEnv: Record<string, string> = {};
  for (const k of HANDOFF_ENV_KEYS) if (env[k] !== undefined) cniEnv[k] = env[k]!;
  const request = JSON.stringify(cniAddRequest(cniEnv, stdin, ns, performance.now(), Boolean(env.AFSTEER_TRACE_PHASES))) + '\n';
  trace('handoff: request built');
  return new Promise((resolve) => {
    let went = false;
    let settled = false;
    let buf = '';
    const c = createConnection(socket);
    const finish = (out: HandoffOutcome | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      c.destroy();
      resolve(out);
    };
    const lost = (why: string): HandoffOutcome => ({
      exitCode: 1,
      stdout:
        JSON.stringify({
          cniVersion: target.cniVersion,
          code: TRY_AGAIN_LATER,
          msg: `afsteerd took the ADD and ${why}; try again`,
          details: `control socket ${target.socket}`,
        }) + '\n',
      stderr: '',
    });
    let timer = setTimeout(() => finish(undefined), HANDOFF_READY_TIMEOUT_MS);
    c.on('error', () => finish(went ? lost('the connection failed') : undefined));
    c.on('close', () => finish(went ? lost('closed the connection without an answer') : undefined));
    c.on('connect', () => {
      trace('handoff: connected');
      c.write(request);
    });
    c.on('data', (d) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let reply: unknown;
        try {
          reply = JSON.parse(line);
        } catch {
          reply = undefined;
        }
        if (!went) {
          // An afsteerd of a pin layout this plugin cannot share would run the ADD with code for other pins.
          if (!isReady(reply) || !readyForLayout(reply)) return finish(undefined);
          // From here on the ADD is afsteerd's: waiting longer, never falling back.
          went = true;
          trace('handoff: ready');
          clearTimeout(timer);
          const runMs = Math.min(target.lockTimeoutMs + HANDOFF_RUN_MARGIN_MS, 2 ** 31 - 1);
          timer = setTimeout(() => finish(lost(`gave no answer within ${runMs} ms`)), runMs);
          c.write(JSON.stringify(cniGo()) + '\n');
          continue;
        }
        const out = asAddResult(reply);
        trace('handoff: answered');
        return finish(out ? { exitCode: out.exitCode, stdout: out.stdout, stderr: out.stderr } : lost('answered something else'));
      }
    });
  });
}
