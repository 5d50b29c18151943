/**
 * A pod's negotiation policy: the one schema the plugin's config, the state files, afsteerd's
 * config and the protocol's pair message all validate with (zod, strict). Pure.
 */
import * as z from 'zod/mini';

/** Protection modes, weakest first: off, duplicate while a family looks troubled, duplicate always. */
export const PROTECT_MODES = ['off', 'on-suspicion', 'always'] as const;
/** A pair's protection mode. */
export type ProtectMode = (typeof PROTECT_MODES)[number];
/** "off" | "on-suspicion" | "always" */
export const ProtectModeSchema = z.enum(PROTECT_MODES);

const criterion = z.enum(['lowest-latency', 'lowest-loss', 'weighted']);
const weights = z.strictObject({
  latency: z.number().check(z.gte(0), z.lte(1000)),
  jitter: z.number().check(z.gte(0), z.lte(1000)),
  loss: z.number().check(z.gte(0), z.lte(1000)),
});

/** A policy: criterion plus weights for `weighted`, and the pair's protection (default off). */
export const PolicySchema = z.strictObject({
  criterion,
  weights: z.optional(weights),
  protect: z.optional(ProtectModeSchema),
});
/** A pair's selection policy. */
export type Policy = z.infer<typeof PolicySchema>;

/** A pod's own policy (plugin config, state file): any part of a policy; what it leaves out is afsteerd's. */
export const PodPolicySchema = z.strictObject({
  criterion: z.optional(criterion),
  weights: z.optional(weights),
  protect: z.optional(ProtectModeSchema),
});
/** A pod's own policy. */
export type PodPolicy = z.infer<typeof PodPolicySchema>;

/** The policy a pod's pairs use: its own criterion (with its weights) and protection where it has them, else the node's. */
export function effectivePolicy(pod: PodPolicy | undefined, node: Policy): Policy {
  if (!pod) return node;
  const sel = pod.criterion
    ? { criterion: pod.criterion, ...(pod.weights ? { weights: pod.weights } : {}) }
    : { criterion: node.criterion, ...(node.weights ? { weights: node.weights } : {}) };
  const protect = pod.protect ?? node.protect;
  return { ...sel, ...(protect ? { protect } : {}) };
}

/** A pair is protected when either end asks; the stronger mode wins (always > on-suspicion > off). */
export function mergeProtect(a: ProtectMode | undefined, b: ProtectMode | undefined): ProtectMode {
  const rank = (m: ProtectMode | undefined) => PROTECT_MODES.indexOf(m ?? 'off');
  return PROTECT_MODES[Math.max(rank(a), rank(b))]!;
}
