/** The afsteer network configuration (zod schema with defaults) and its parsing into CNI errors. */
import { z } from 'zod';
import { CniCode, CniError } from './errors';
import { isSupported, SUPPORTED_VERSIONS } from './version';

/** Delegated IPAM section: any IPAM plugin's config; only `type` is afsteer's business. */
export const IpamSchema = z.looseObject({
  type: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a plugin name without path separators'),
});

/** afsteer's own keys in the network config; other keys pass through untouched. */
export const NetConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string().min(1),
  type: z.string().min(1),
  prevResult: z.unknown().optional(),
  /** IPAM plugin to delegate to for a family the previous plugin did not assign. */
  ipam: IpamSchema.optional(),
  /** Pod interface MTU; default: host veth MTU − 40 (room for the outer header). */
  mtu: z.number().int().min(1280).max(65535).optional(),
  /** Accept a single-stack prevResult without ipam (the pod then stays single-stack, never steered). */
  allowSingleStack: z.boolean().default(false),
  /** bpffs directory for afsteer's pinned programs and maps. */
  pinDir: z.string().startsWith('/').default('/sys/fs/bpf/afsteer'),
  /** Directory for endpoint state files and the node lock. */
  stateDir: z.string().startsWith('/').default('/var/lib/afsteer'),
  /** Optional log file (in addition to stderr). */
  logFile: z.string().startsWith('/').optional(),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** How long to wait for the node lock, ms. */
  lockTimeoutMs: z.number().int().positive().default(60000),
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
