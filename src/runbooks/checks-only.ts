/**
 * What the two checks-only runbooks (`backup-verify`, `secret-expiry`) share: the typed error
 * their `apply` throws, since their plans never hold an action, and the formatting of the
 * times and durations in their evidence, so both read the same way in run records and
 * notifications (`74.0 h`, `2026-11-20T14:00Z`).
 */
import { OpsAutopilotError } from '../errors.ts';
import type { RunbookName, TargetConfig } from '../config/schema.ts';
import type { PlannedAction } from './runbook.ts';

/** Milliseconds in an hour. */
export const HOUR_MS = 3_600_000;
/** Milliseconds in a day. */
export const DAY_MS = 24 * HOUR_MS;

/**
 * `apply` was called on a runbook whose plans hold checks only. Its plans never contain an
 * action, so reaching `apply` means the caller applied something that was not planned.
 */
export class ChecksOnlyApplyError extends OpsAutopilotError {
  override readonly name: string = 'ChecksOnlyApplyError';

  constructor(runbook: RunbookName, target: TargetConfig, action: PlannedAction) {
    super(
      `${runbook} on ${target.id}: expected no action to apply (this runbook only checks), found action ${action.id} (${action.kind} on ${action.resource})`,
      { context: { runbook, resourceId: target.id, actionId: action.id, actionKind: action.kind } },
    );
  }
}

/** A target of a kind the runbook does not check reached `plan` (a hand-built config; the schema refuses it). */
export class UnsupportedTargetKindError extends OpsAutopilotError {
  override readonly name: string = 'UnsupportedTargetKindError';

  constructor(runbook: RunbookName, targetId: string, expectedKinds: readonly string[], found: string) {
    super(`${runbook} on ${targetId}: expected a target of kind ${expectedKinds.join(' or ')}, found ${found}`, {
      context: { runbook, resourceId: targetId, found },
    });
  }
}

/** An instant to the minute, in UTC: `2026-11-20T14:00Z`. */
export function formatInstant(date: Date): string {
  return `${date.toISOString().slice(0, 16)}Z`;
}

/** A duration in hours with one decimal: `74.0 h`. */
export function formatHours(ms: number): string {
  return `${(ms / HOUR_MS).toFixed(1)} h`;
}

/** A duration in days with one decimal: `12.0 days`. */
export function formatDays(ms: number): string {
  return `${(ms / DAY_MS).toFixed(1)} days`;
}
