/**
 * Message payloads, validated with zod before anything in them is used. Announcements and
 * negotiation are JSON (the seed's message, made strict: numbers in ms and fractions, families
 * named "IPv4"/"IPv6"); probes are binary (probe.ts). Pure.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as z from 'zod/mini';
import { FAMILY_NAMES } from '../../net/family';
import { PolicySchema, ProtectModeSchema } from '../../policy/schema';

/** A family as the protocol names it. */
export const FamilySchema = z.enum(FAMILY_NAMES);
/** "IPv4" | "IPv6" */
export type FamilyName = z.infer<typeof FamilySchema>;

const ipv4 = () =>
  z.string().check(
    z.maxLength(15),
    z.refine((s) => isIPv4(s), 'must be an IPv4 address'),
  );
const ipv6 = () =>
  z.string().check(
    z.maxLength(45),
    z.refine((s) => isIPv6(s) && !s.includes('%'), 'must be an IPv6 address without zone'),
  );
/** A CNF id: K8S namespace/name or a container id. */
export const CnfIdSchema = z.string().check(z.minLength(1), z.maxLength(253), z.regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'must be a CNF id'));

/** One endpoint (pod) of a node, as announced. */
export const AnnouncedEndpointSchema = z.strictObject({
  cnf: CnfIdSchema,
  ipv4: ipv4(),
  ipv6: ipv6(),
});
/** An announced endpoint. */
export type AnnouncedEndpoint = z.infer<typeof AnnouncedEndpointSchema>;

/** Periodic discovery message: who the node is, where to reach it, which pods it hosts. */
export const AnnounceSchema = z
  .strictObject({
    addresses: z.strictObject({ ipv4: z.optional(ipv4()), ipv6: z.optional(ipv6()) }),
    port: z.number().check(z.int(), z.gte(1), z.lte(65535)),
    supported_families: z.array(FamilySchema).check(z.minLength(1), z.maxLength(2)),
    capabilities: z.array(z.string().check(z.maxLength(32))).check(z.maxLength(16)),
    /** Generation of the endpoint list; its parts share it. */
    gen: z.number().check(z.int(), z.gte(0)),
    part: z.number().check(z.int(), z.gte(0), z.lte(1023)),
    parts: z.number().check(z.int(), z.gte(1), z.lte(1024)),
    endpoints: z.array(AnnouncedEndpointSchema).check(z.maxLength(64)),
  })
  .check(z.refine((a) => a.part < a.parts, 'part must be below parts'));
/** An announcement. */
export type Announce = z.infer<typeof AnnounceSchema>;

/** Path metrics of one family as one node measured them. */
export const FamilyMetricsSchema = z.strictObject({
  latency_ms: z.number().check(z.gte(0), z.lte(60000)),
  jitter_ms: z.number().check(z.gte(0), z.lte(60000)),
  packet_loss: z.number().check(z.gte(0), z.lte(1)),
  blackhole: z.boolean(),
  /** Probe outcomes the figures come from (their confidence). */
  samples: z.number().check(z.int(), z.gte(0), z.lte(1_000_000)),
});
/** Metrics of one family. */
export type FamilyMetrics = z.infer<typeof FamilyMetricsSchema>;

/** One pair in a negotiation message: the seed's message, strict. */
export const PairMessageSchema = z.strictObject({
  source_CNF_ID: CnfIdSchema,
  destination_CNF_ID: CnfIdSchema,
  supported_families: z.array(FamilySchema).check(z.minLength(1), z.maxLength(2)),
  performance_metrics: z.strictObject({ IPv4: z.optional(FamilyMetricsSchema), IPv6: z.optional(FamilyMetricsSchema) }),
  /** The sender's choice for the pair (null: native, each packet in its own family). */
  preferred_family: z.nullable(FamilySchema),
  /** The sender's policy for its endpoint. */
  policy: PolicySchema,
  /** The sender has the destination's pod registered and decapsulates its tunnelled packets. */
  decap: z.boolean(),
  /** The sender's decision counter for the pair (a newer decision supersedes an older one). */
  round: z.number().check(z.int(), z.gte(0)),
  /** The sender saw traffic on the pair within its idle timeout. */
  active: z.boolean(),
  /**
   * An operator pinned the pair to this family on the sender's node (`afsteerd prefer`); the leader
   * follows its own pin, else the follower's. Sent only to peers announcing the prefer-v1
   * capability: an older peer's strict schema would refuse the whole datagram.
   */
  pinned: z.optional(FamilySchema),
  /**
   * Protection (sent only to a node announcing dedup-v1; a node without it refuses these keys, as
   * its strict schema does every unknown key, so it is never sent them): the sender's agreed mode
   * (the leader's is the decision), whether it holds the pair's dedup window (the peer may send
   * both copies), whether it sends both copies now.
   */
  protect: z.optional(ProtectModeSchema),
  dedup: z.optional(z.boolean()),
  dup: z.optional(z.boolean()),
});
/** One pair entry. */
export type PairMessage = z.infer<typeof PairMessageSchema>;

/** A negotiation datagram: several pairs between the same two nodes. */
export const NegotiateSchema = z
  .strictObject({
    /** The receiver's node name: a copy replayed to another node is refused there. */
    to: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be a node name')),
    pairs: z.array(PairMessageSchema).check(z.maxLength(32)),
    /** Pairs the sender has dropped (idle): "source|destination". */
    dropped: z.optional(z.array(z.string().check(z.maxLength(520))).check(z.maxLength(32))),
  })
  .check(z.refine((m) => m.pairs.length > 0 || (m.dropped?.length ?? 0) > 0, 'carries no pair'));
/** A negotiation message. */
export type Negotiate = z.infer<typeof NegotiateSchema>;

/** Parses a JSON payload with schema; undefined when it is not valid. */
export function parsePayload<T>(schema: z.ZodMiniType<T>, payload: Buffer): T | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = schema.safeParse(raw);
  return r.success ? r.data : undefined;
}
