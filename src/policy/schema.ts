/**
 * A pod's negotiation policy: the one schema the plugin's config, the state files, afsteerd's
 * config and the protocol's pair message all validate with (zod, strict). Pure.
 */
import * as z from 'zod/mini';

/** A policy: criterion plus weights for `weighted`. */
export const PolicySchema = z.strictObject({
  criterion: z.enum(['lowest-latency', 'lowest-loss', 'weighted']),
  weights: z.optional(z.strictObject({
    latency: z.number().check(z.gte(0), z.lte(1000)),
    jitter: z.number().check(z.gte(0), z.lte(1000)),
    loss: z.number().check(z.gte(0), z.lte(1000)),
  })),
});
/** A pair's selection policy. */
export type Policy = z.infer<typeof PolicySchema>;
