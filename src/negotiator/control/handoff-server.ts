/**
 * afsteerd's side of the plugin's ADD hand-off (the conversation: src/control/handoff-protocol.ts). The
 * ADD itself is the plugin's own code, injected as a runner by src/bin (the negotiator does not
 * import src/cni): afsteerd only decides whether it may run it here, and when.
 */
import { statSync } from 'node:fs';
import { layoutsCompatible, PIN_LAYOUT } from '../../bpf/layout-version';
import {
  CNI_ADD_OP,
  CNI_GO_OP,
  CNI_HANDOFF_VERSION,
  type CniAddResultReply,
  type CniDeclineReply,
  type CniReadyReply,
  HANDOFF_ENV_KEYS,
  type NsIdentity,
  statedLayout,
} from '../../control/handoff-protocol';
import { type CniAddRequestMessage, CniAddRequestSchema } from '../../control/requests';
import { log } from '../../util/log';
import type { ControlConnection, ControlHandler } from './socket-server';

/** Runs one CNI ADD as the plugin would in-process: its env and stdin in, what it would print and its exit code out. */
export type CniAddRunner = (
  env: Record<string, string>,
  stdin: string,
  opts: { clientMs: number; trace: boolean },
) => Promise<Omit<CniAddResultReply, 'ok'>>;

/** The network and mount namespaces a process runs in. */
export interface ProcessNamespaces {
  net: NsIdentity;
  mnt: NsIdentity;
}

/** This process's namespaces (/proc/self/ns). */
export function ownNamespaces(): ProcessNamespaces {
  const id = (p: string): NsIdentity => {
    const st = statSync(p);
    return { dev: st.dev, ino: st.ino };
  };
  return { net: id('/proc/self/ns/net'), mnt: id('/proc/self/ns/mnt') };
}

/**
 * Why afsteerd must not run this ADD (the plugin then runs it itself), or undefined when it may.
 * Pure. The "host" side of an ADD is the namespace its process runs in, and its paths are its
 * mount namespace's: both must be afsteerd's. Delegated IPAM stays in the plugin: it runs another
 * plugin synchronously, with the plugin's own environment.
 */
export function declineReason(req: CniAddRequestMessage, own: ProcessNamespaces): string | undefined {
  if (req.v !== CNI_HANDOFF_VERSION) return `hand-off version ${req.v} (afsteerd speaks ${CNI_HANDOFF_VERSION})`;
  const layout = statedLayout(req);
  if (!layoutsCompatible(layout, PIN_LAYOUT))
    return `the plugin's pin layout ${layout.version} (readable from ${layout.readableFrom}) and afsteerd's ${PIN_LAYOUT.version} (readable from ${PIN_LAYOUT.readableFrom}) cannot share the pins`;
  const same = (a: NsIdentity, b: NsIdentity) => a.dev === b.dev && a.ino === b.ino;
  if (!same(req.ns.net, own.net)) return 'the plugin runs in another network namespace';
  if (!same(req.ns.mnt, own.mnt)) return 'the plugin runs in another mount namespace';
  if (req.env.CNI_COMMAND !== 'ADD') return 'only ADD is handed over';
  let conf: unknown;
  try {
    conf = JSON.parse(req.stdin);
  } catch {
    return 'stdin is not JSON (the plugin reports it)';
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return 'stdin is not a JSON object (the plugin reports it)';
  if ((conf as Record<string, unknown>).ipam !== undefined) return 'delegated IPAM runs in the plugin';
  return undefined;
}

/** The CNI variables of a request's env (anything else it carries is dropped). */
export function cniEnvOf(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of HANDOFF_ENV_KEYS) if (Object.hasOwn(env, k)) out[k] = env[k]!;
  return out;
}

const decline = (error: string): Record<string, unknown> => ({ ok: false, decline: true, error }) satisfies CniDeclineReply;

/**
 * A control handler that answers the hand-off's two requests and passes every other one to next.
 * Without a runner it declines every hand-off. ownNs is read per request (cheap: two stats).
 */
export function withCniHandoff(
  run: CniAddRunner | undefined,
  next: ControlHandler,
  ownNs: () => ProcessNamespaces = ownNamespaces,
): ControlHandler {
  return (req: Record<string, unknown>, conn: ControlConnection) => {
    if (req.op === CNI_ADD_OP) {
      conn.state = undefined;
      if (!run) return decline('this afsteerd does not run ADDs');
      const parsed = CniAddRequestSchema.safeParse(req);
      if (!parsed.success) return decline(`malformed hand-off request: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      const why = declineReason(parsed.data, ownNs());
      if (why) return decline(why);
      conn.state = { pending: parsed.data };
      const ready: CniReadyReply = { ok: true, ready: true, layout: { ...PIN_LAYOUT } };
      return { ...ready };
    }
    if (req.op === CNI_GO_OP) {
      const pending = (conn.state as { pending?: CniAddRequestMessage } | undefined)?.pending;
      conn.state = undefined;
      if (!pending || !run) return { ok: false, error: 'cni-go without a ready cni-add before it on this connection' };
      // The plugin that sent cni-go waits for the outcome; if it is gone, nobody would read it: run nothing.
      if (conn.closed) return { ok: false, error: 'the plugin is gone' };
      const t0 = performance.now();
      return run(cniEnvOf(pending.env), pending.stdin, { clientMs: pending.clientMs, trace: pending.trace }).then(
        (r): Record<string, unknown> => {
          log.info('ran a handed-over ADD', {
            containerId: pending.env.CNI_CONTAINERID,
            ifname: pending.env.CNI_IFNAME,
            exitCode: r.exitCode,
            tookMs: Math.round((performance.now() - t0) * 10) / 10,
          });
          const reply: CniAddResultReply = { ok: true, ...r };
          return { ...reply };
        },
      );
    }
    return next(req, conn);
  };
}
