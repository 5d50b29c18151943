/**
 * The plugin's ADD hand-off to afsteerd, as both ends speak it (no schema library: the
 * executable's main script, which must start fast, builds and reads these; afsteerd validates
 * requests with the schemas in ./messages.ts). On the control socket, one connection:
 *
 *   plugin → {"op":"cni-add","v":1,"env":{CNI_*},"stdin":…,"ns":{"net":…,"mnt":…},"clientMs":…,"trace":…}
 *   afsteerd → {"ok":true,"ready":true}              nothing done yet; or a decline / failure: the plugin does the ADD itself
 *   plugin → {"op":"cni-go"}                         only now may afsteerd start
 *   afsteerd → {"ok":true,"exitCode":…,"stdout":…,"stderr":…}   exactly what the plugin would have printed
 *
 * The plugin gives up (and does the ADD itself) only before it sent cni-go, and afsteerd starts
 * only after it read cni-go: so an ADD is never applied twice, nor half by each. Pure.
 *
 * Versions of the two ends may differ during a rollout (a new plugin, the old afsteerd, or the
 * reverse); afsteerd runs the ADD with its own code, so the two must share the pin layout
 * (src/bpf/layout-version.ts). The request carries the plugin's layout (`"layout":{…}`, left out
 * while layout-1 code may run on the plugin's pins — readableFrom 1 — so that afsteerd builds from
 * before layouts, whose schema refuses unknown keys, still take it; a reader then takes it as
 * layout 1, which is never less safe), the ready answer afsteerd's; afsteerd declines an incompatible plugin, the plugin
 * gives up on an incompatible afsteerd before cni-go. Either way the ADD then runs in the plugin.
 */
import { type LayoutVersion, layoutsCompatible, PIN_LAYOUT } from '../bpf/layout-version';

/** Version of this conversation; afsteerd declines another. */
export const CNI_HANDOFF_VERSION = 1;
/** The request's op. */
export const CNI_ADD_OP = 'cni-add';
/** The go-ahead's op. */
export const CNI_GO_OP = 'cni-go';
/** The environment variables handed over (the CNI ones; nothing else of the plugin's environment reaches the ADD). */
export const HANDOFF_ENV_KEYS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;

/** A namespace file's identity (st_dev, st_ino). */
export interface NsIdentity {
  dev: number;
  ino: number;
}

/** The plugin's request: its CNI environment, its stdin, the network and mount namespaces it runs in. */
export interface CniAddRequest {
  op: typeof CNI_ADD_OP;
  v: number;
  env: Record<string, string>;
  stdin: string;
  ns: { net: NsIdentity; mnt: NsIdentity };
  /** The plugin's time since its process started, so afsteerd's log and phase lines continue its clock. */
  clientMs: number;
  /** AFSTEER_TRACE_PHASES is set in the plugin's environment. */
  trace: boolean;
  /** The plugin's pin layout; absent: layout 1. */
  layout?: LayoutVersion;
}

/** The go-ahead. */
export interface CniGo {
  op: typeof CNI_GO_OP;
}

/** afsteerd will run the ADD once it reads cni-go; it has done nothing yet. */
export interface CniReadyReply {
  ok: true;
  ready: true;
  /** afsteerd's pin layout; absent (afsteerd from before layouts): layout 1. */
  layout?: LayoutVersion;
}

/** afsteerd will not run it (another namespace, delegated IPAM, another version): the plugin does it. */
export interface CniDeclineReply {
  ok: false;
  decline: true;
  error: string;
}

/** The ADD's outcome as the plugin would have produced it in-process. */
export interface CniAddResultReply {
  ok: true;
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The plugin's request line for an ADD. */
export function cniAddRequest(
  env: Record<string, string>,
  stdin: string,
  ns: CniAddRequest['ns'],
  clientMs: number,
  trace: boolean,
  own: LayoutVersion = PIN_LAYOUT,
): CniAddRequest {
  return {
    op: CNI_ADD_OP,
    v: CNI_HANDOFF_VERSION,
    env,
    stdin,
    ns,
    clientMs,
    trace,
    ...(own.readableFrom === 1 ? {} : { layout: { ...own } }),
  };
}

/** The layout an end of the hand-off states (absent: layout 1). */
export function statedLayout(m: { layout?: LayoutVersion | undefined }): LayoutVersion {
  return m.layout ?? { version: 1, readableFrom: 1 };
}

/** Whether the plugin (layout own) may let afsteerd run its ADD after this ready answer. */
export function readyForLayout(reply: CniReadyReply, own: LayoutVersion = PIN_LAYOUT): boolean {
  return layoutsCompatible(own, statedLayout(reply));
}

/** The go-ahead line. */
export function cniGo(): CniGo {
  return { op: CNI_GO_OP };
}

/** A reply object as the ready answer, or false. */
export function isReady(r: unknown): r is CniReadyReply {
  return typeof r === 'object' && r !== null && (r as CniReadyReply).ok === true && (r as CniReadyReply).ready === true;
}

/** A reply object as the ADD's outcome, or undefined when it is not one. */
export function asAddResult(r: unknown): CniAddResultReply | undefined {
  if (typeof r !== 'object' || r === null) return undefined;
  const o = r as Record<string, unknown>;
  if (o.ok !== true || !Number.isInteger(o.exitCode) || typeof o.stdout !== 'string' || typeof o.stderr !== 'string') return undefined;
  return { ok: true, exitCode: o.exitCode as number, stdout: o.stdout, stderr: o.stderr };
}
