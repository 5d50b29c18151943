/**
 * Bounded vocabularies for operators (metrics labels, history, logs), as pure functions: a
 * family's state toward a peer, and the class of a switch reason. Free-text reasons stay in
 * status and logs; metrics only ever carry these few values, so their cardinality is fixed.
 */
import type { FamilyMetrics } from '../protocol/messages';

/** A family's state toward a peer, as metrics and the page show it. */
export type FamilyState = 'probing' | 'up' | 'degraded' | 'blackhole';
/** Every family state (a metric has one series per state). */
export const FAMILY_STATES: readonly FamilyState[] = ['probing', 'up', 'degraded', 'blackhole'];
/** Loss over the window from which a live family counts as degraded. */
export const DEGRADED_LOSS = 0.05;

/** The state of one family from its window's metrics (undefined: no outcome yet). */
export function familyState(m: Pick<FamilyMetrics, 'blackhole' | 'packet_loss'> | undefined): FamilyState {
  if (!m) return 'probing';
  if (m.blackhole) return 'blackhole';
  return m.packet_loss >= DEGRADED_LOSS ? 'degraded' : 'up';
}

/** The class of a switch, a metric label. */
export type SwitchReason = 'blackhole' | 'policy' | 'peer-choice' | 'pinned' | 'peer-silent' | 'no-decap' | 'other';
/** Every switch reason class. */
export const SWITCH_REASONS: readonly SwitchReason[] = ['blackhole', 'policy', 'peer-choice', 'pinned', 'peer-silent', 'no-decap', 'other'];

/** Classifies a switch's free-text reason (pair.ts, policy.ts, prefer.ts word them). */
export function switchReason(reason: string): SwitchReason {
  if (/blackhole/i.test(reason)) return 'blackhole';
  if (/^pinned|operator pin/i.test(reason)) return 'pinned';
  if (/^(lowest-latency|lowest-loss|weighted)\b/.test(reason)) return 'policy';
  if (/^peer \S+ chose/.test(reason)) return 'peer-choice';
  if (/peer silent/.test(reason)) return 'peer-silent';
  if (/decapsulation/.test(reason)) return 'no-decap';
  return 'other';
}
