/**
 * A digest of the actions of a plan, so that a confirmation given to one plan is not taken for
 * another. `runs start` shows the app's plan and asks; the app plans again when it applies (the
 * state may have changed in between), and applies only if its plan's digest is the one the person
 * confirmed. Action ids are stable across re-plans of the same state (see `PlannedAction.id`), so
 * the digest changes exactly when an action is added, dropped, or moves to another target.
 *
 * Nothing here imports `@azure/functions` or `durable-functions`.
 */
import { createHash } from 'node:crypto';
import type { TargetPlan } from './runbook.ts';

/** Form of a digest: 64 lower-case hex digits (SHA-256). */
export const PLAN_DIGEST_PATTERN = /^[0-9a-f]{64}$/;

/** The SHA-256 of the plan's (target id, action id) pairs, in an order that does not depend on the plan's. */
export function planDigest(plans: readonly TargetPlan[]): string {
  const pairs = plans.flatMap((plan) => plan.actions.map((action) => `${plan.targetId.toLowerCase()}\n${action.id}`)).sort();
  return createHash('sha256').update(JSON.stringify(pairs)).digest('hex');
}
