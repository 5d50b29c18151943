/**
 * A pod's negotiation policy as the plugin takes it: the network config key `policy` (an object,
 * validated with ./schema.ts) or CNI_ARGS `AFSTEER_POLICY=lowest-latency |
 * lowest-loss | weighted[:L,J,P]` (weights of latency, jitter and loss; which wins), and its
 * protection as `AFSTEER_PROTECT=off | on-suspicion | always`. No "=" in
 * the value: the reference plugins split every CNI_ARGS pair at each "=". Pure.
 */
import { type Policy, PROTECT_MODES, type ProtectMode } from './schema';

/** Parses an AFSTEER_POLICY value; returns the policy or a message saying what is wrong. */
export function parsePolicyArg(text: string): Policy | string {
  const [criterion, weights, ...extra] = text.split(':');
  if (extra.length) return `AFSTEER_POLICY ${JSON.stringify(text)}: at most one ":"`;
  if (criterion !== 'lowest-latency' && criterion !== 'lowest-loss' && criterion !== 'weighted') {
    return `AFSTEER_POLICY ${JSON.stringify(text)}: must be lowest-latency, lowest-loss or weighted[:L,J,P]`;
  }
  if (weights === undefined) return { criterion };
  if (criterion !== 'weighted') return `AFSTEER_POLICY ${JSON.stringify(text)}: only weighted takes weights`;
  const w = weights.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
  if (w.length !== 3 || w.some((n) => !Number.isFinite(n) || n < 0 || n > 1000)) {
    return `AFSTEER_POLICY ${JSON.stringify(text)}: weights are three numbers L,J,P (latency, jitter, loss) between 0 and 1000`;
  }
  return { criterion, weights: { latency: w[0]!, jitter: w[1]!, loss: w[2]! } };
}

/** Parses an AFSTEER_PROTECT value (off | on-suspicion | always); returns the mode or a message saying what is wrong. */
export function parseProtectArg(text: string): ProtectMode | string {
  return (PROTECT_MODES as readonly string[]).includes(text)
    ? (text as ProtectMode)
    : `AFSTEER_PROTECT ${JSON.stringify(text)}: must be off, on-suspicion or always`;
}
