/** The afsteer network configuration (zod schema with defaults) and its parsing into CNI errors. */
import * as z from 'zod/mini';
import { DEFAULT_CONTROL_SOCKET, DEFAULT_PIN_DIR, DEFAULT_STATE_DIR } from '../defaults';
import { PodPolicySchema } from '../policy/schema';
import { CniCode, CniError } from './cni-error';
import { logFileProblem, normalizePath, pathProblem } from './path-keys';
import { isSupported, SUPPORTED_VERSIONS } from './version';

/** A path key: absolute, no NUL/control characters, no '.'/'..' components (see paths.ts); normalised. */
const absPath = () =>
  z.string().check(
    z.superRefine((v, ctx) => {
      const p = pathProblem(v);
      if (p) ctx.addIssue({ code: 'custom', message: p, input: v });
    }),
    z.overwrite((v) => (pathProblem(v) ? v : normalizePath(v))),
  );

/** Delegated IPAM section: any IPAM plugin's config; only `type` is afsteer's business. */
export const IpamSchema = z.looseObject({
  type: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a plugin name without path separators')),
});

/** afsteer's own keys in the network config; other keys pass through untouched. */
export const NetConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string().check(z.minLength(1)),
  type: z.string().check(z.minLength(1)),
  prevResult: z.optional(z.unknown()),
  /** IPAM plugin to delegate to for a family the previous plugin did not assign. */
  ipam: z.optional(IpamSchema),
  /** Pod interface MTU; default: host veth MTU − 40 (room for the outer header). */
  mtu: z.optional(z.number().check(z.int(), z.gte(1280), z.lte(65535))),
  /** Accept a single-stack prevResult without ipam (the pod then stays single-stack, never steered). */
  allowSingleStack: z._default(z.boolean(), false),
  /** bpffs directory for afsteer's pinned programs and maps. */
  pinDir: z._default(absPath(), DEFAULT_PIN_DIR),
  /** Directory for endpoint state files and the node lock. */
  stateDir: z._default(absPath(), DEFAULT_STATE_DIR),
  /** Optional log file (in addition to stderr). */
  logFile: z.optional(absPath()),
  logLevel: z._default(z.enum(['debug', 'info', 'warn', 'error']), 'info'),
  /** How long to wait for the node lock, ms. */
  lockTimeoutMs: z._default(z.number().check(z.int(), z.gt(0)), 60000),
  /** afsteerd's control socket, told of each ADD/DEL (best effort). */
  daemonSocket: z._default(absPath(), DEFAULT_CONTROL_SOCKET),
  /** The pods' negotiation policy and protection (CNI_ARGS AFSTEER_POLICY / AFSTEER_PROTECT override them); what it leaves out is afsteerd's. */
  policy: z.optional(PodPolicySchema),
});

/** A parsed and defaulted afsteer network config. */
export type NetConf = z.infer<typeof NetConfSchema>;

/** What each key of afsteer's own must be, for error messages that name the key and the allowed values. */
export const KEY_RULES: ReadonlyMap<string, string> = new Map([
  ['cniVersion', 'a string'],
  ['name', 'a non-empty string'],
  ['type', 'a non-empty string'],
  ['ipam', 'an object whose "type" names an IPAM plugin (letters, digits, ".", "_", "-")'],
  ['mtu', 'an integer between 1280 and 65535'],
  ['allowSingleStack', 'true or false'],
  ['pinDir', 'an absolute path'],
  ['stateDir', 'an absolute path'],
  ['logFile', 'an absolute path'],
  ['logLevel', 'one of "debug", "info", "warn", "error"'],
  ['lockTimeoutMs', 'a positive integer (milliseconds)'],
  ['daemonSocket', 'an absolute path'],
  [
    'policy',
    'an object {"criterion": "lowest-latency" | "lowest-loss" | "weighted", "weights"?: {"latency", "jitter", "loss"}, "protect"?: "off" | "on-suspicion" | "always"}',
  ],
]);

/** One readable line per zod issue: "mtu must be an integer between 1280 and 65535 (got 3.5)". */
export function describeIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): string {
  return issues
    .map((i) => {
      const key = i.path.map(String).join('.') || '(config)';
      if (i.code === 'custom') return `${key} ${i.message}`;
      const rule = typeof i.path[0] === 'string' ? KEY_RULES.get(i.path[0]) : undefined;
      let got: unknown = raw;
      for (const p of i.path)
        got =
          got !== null && typeof got === 'object' && Object.hasOwn(got, p as PropertyKey)
            ? (got as Record<PropertyKey, unknown>)[p as PropertyKey]
            : undefined;
      const shown = got === undefined ? 'nothing' : (JSON.stringify(got) ?? String(got)).slice(0, 60);
      if (rule && i.path.length === 1) return `${key} must be ${rule} (got ${shown})`;
      if (i.code === 'invalid_value') return `${key} must be one of ${i.values.map((v) => JSON.stringify(v)).join(', ')} (got ${shown})`;
      return `${key}: ${i.message} (got ${shown})`;
    })
    .join('; ');
}

/** Parses stdin bytes into a NetConf; bad JSON is code 6, bad fields code 7, bad version code 1. */
export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, 'cannot decode the network configuration on stdin: not valid JSON', undefined, {
      cause: err,
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, 'cannot decode the network configuration on stdin: expected a JSON object');
  }
  const v = (raw as { cniVersion?: unknown }).cniVersion;
  if (typeof v === 'string' && !isSupported(v)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI version ${v}: afsteer supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const r = NetConfSchema.safeParse(raw);
  if (!r.success)
    throw new CniError(CniCode.InvalidConfig, `invalid afsteer network configuration: ${describeIssues(r.error.issues, raw)}`);
  const logProblem = r.data.logFile === undefined ? undefined : logFileProblem(r.data.logFile, r.data.stateDir);
  if (logProblem) throw new CniError(CniCode.InvalidConfig, `invalid afsteer network configuration: logFile ${logProblem}`);
  return r.data;
}
