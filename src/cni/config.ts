/** The afsteer network configuration (zod schema with defaults) and its parsing into CNI errors. */
import * as z from 'zod/mini';
import { CniCode, CniError } from './errors';
import { isSupported, SUPPORTED_VERSIONS } from './version';

const absPath = () => z.string().check(z.startsWith('/', 'must be an absolute path'));

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
  pinDir: z._default(absPath(), '/sys/fs/bpf/afsteer'),
  /** Directory for endpoint state files and the node lock. */
  stateDir: z._default(absPath(), '/var/lib/afsteer'),
  /** Optional log file (in addition to stderr). */
  logFile: z.optional(absPath()),
  logLevel: z._default(z.enum(['debug', 'info', 'warn', 'error']), 'info'),
  /** How long to wait for the node lock, ms. */
  lockTimeoutMs: z._default(z.number().check(z.int(), z.gt(0)), 60000),
});

/** A parsed and defaulted afsteer network config. */
export type NetConf = z.infer<typeof NetConfSchema>;

/** Parses stdin bytes into a NetConf; bad JSON is code 6, bad fields code 7, bad version code 1. */
export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, 'cannot decode the network configuration on stdin: not valid JSON', undefined, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, 'cannot decode the network configuration on stdin: expected a JSON object');
  }
  const v = (raw as { cniVersion?: unknown }).cniVersion;
  if (typeof v === 'string' && !isSupported(v)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI version ${v}: afsteer supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const r = NetConfSchema.safeParse(raw);
  if (!r.success) throw new CniError(CniCode.InvalidConfig, `invalid afsteer network configuration: ${z.prettifyError(r.error).replace(/\n/g, '; ')}`);
  return r.data;
}
