/** The CNI_* environment a runtime passes, validated per verb (missing or malformed ⇒ code 4). */
import { CniCode, CniError } from './cni-error';

/** Verbs of the CNI protocol afsteer implements. */
export type Verb = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';

/** The runtime parameters of one invocation. */
export interface CniEnv {
  command: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  args: Map<string, string>;
  path: string[];
  /**
   * DEL only: why the container id or interface name is one ADD would refuse. Nothing of
   * afsteer's can exist for it, so DEL succeeds without touching anything.
   */
  neverAdded?: string;
}

/** Longest container id accepted: its state file name (id, "_", ifname, ".json", and the temporary name around it) must fit NAME_MAX (255). */
export const MAX_CONTAINER_ID = 200;

const REQUIRED: Readonly<Record<Verb, (keyof NodeJS.ProcessEnv)[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

/** Reads the verb only (so VERSION needs nothing else). */
export function readVerb(env: NodeJS.ProcessEnv): Verb {
  const c = env.CNI_COMMAND;
  if (!c) throw new CniError(CniCode.InvalidEnv, 'CNI_COMMAND is not set (expected ADD, DEL, CHECK, GC, STATUS or VERSION)');
  // Own properties only: "constructor", "__proto__", "toString" are not verbs.
  if (!Object.hasOwn(REQUIRED, c)) throw new CniError(CniCode.InvalidEnv, `unknown CNI_COMMAND ${JSON.stringify(c)}`);
  return c as Verb;
}

/** Reads and validates the environment for verb. */
export function readEnv(env: NodeJS.ProcessEnv, verb: Verb): CniEnv {
  const missing = REQUIRED[verb].filter((k) => !env[k]);
  if (missing.length) throw new CniError(CniCode.InvalidEnv, `required environment variables missing for ${verb}: ${missing.join(', ')}`);
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  const problem = idProblem(containerId, ifname);
  if (problem && verb !== 'DEL') throw new CniError(CniCode.InvalidEnv, problem);
  return {
    command: verb,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
    ...(problem ? { neverAdded: problem } : {}),
  };
}

/** Why a container id or interface name is unacceptable (they name state files), or undefined (pure). */
export function idProblem(containerId: string, ifname: string): string | undefined {
  const show = (s: string) => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
  if (containerId && (containerId.length > MAX_CONTAINER_ID || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId))) {
    return `invalid CNI_CONTAINERID ${show(containerId)} (${containerId.length} characters): at most ${MAX_CONTAINER_ID} characters, alphanumeric with _ . - and starting alphanumeric`;
  }
  if (ifname && (ifname.length > 15 || ifname === '.' || ifname === '..' || /[/:\s\x00-\x1f\x7f]/.test(ifname))) {
    return `invalid CNI_IFNAME ${show(ifname)}: at most 15 characters, no '/', ':', whitespace or control characters`;
  }
  return undefined;
}

/** Parses CNI_ARGS ("K=V;K2=V2") into a map; malformed pairs are code 4. */
export function parseCniArgs(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(';')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnv, `invalid CNI_ARGS pair ${JSON.stringify(part)}: expected KEY=VALUE`);
    out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}
