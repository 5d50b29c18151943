/** The CNI_* environment a runtime passes, validated per verb (missing or malformed ⇒ code 4). */
import { CniCode, CniError } from './errors';

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
}

const REQUIRED: Record<Verb, (keyof NodeJS.ProcessEnv)[]> = {
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
  if (!(c in REQUIRED)) throw new CniError(CniCode.InvalidEnv, `unknown CNI_COMMAND ${JSON.stringify(c)}`);
  return c as Verb;
}

/** Reads and validates the environment for verb. */
export function readEnv(env: NodeJS.ProcessEnv, verb: Verb): CniEnv {
  const missing = REQUIRED[verb].filter((k) => !env[k]);
  if (missing.length) throw new CniError(CniCode.InvalidEnv, `required environment variables missing for ${verb}: ${missing.join(', ')}`);
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) {
    throw new CniError(CniCode.InvalidEnv, `invalid CNI_CONTAINERID ${JSON.stringify(containerId)}: must be alphanumeric with _ . -`);
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (ifname && (ifname.length > 15 || ifname === '.' || ifname === '..' || /[/:\s]/.test(ifname))) {
    throw new CniError(CniCode.InvalidEnv, `invalid CNI_IFNAME ${JSON.stringify(ifname)}: at most 15 characters, no '/', ':' or whitespace`);
  }
  return {
    command: verb,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
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
