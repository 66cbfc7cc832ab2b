/**
 * The shape of a remediation action (Cloud Custodian style: a registry of named actions per
 * resource kind, each with a read-only plan before anything is done).
 *
 * - `plan(ctx, target, params)` reads Azure and returns what would change, the evidence it read,
 *   whether the change can be undone and the record to undo it with. It makes no mutating call.
 *   When the state needed to prove the action safe (or useful) cannot be read or says no, it
 *   throws {@link ActionRefusedError} naming the resource, what was expected and what was found.
 * - `apply(ctx, target, plan)` carries out exactly that plan. It first re-reads the state the
 *   plan was made on: unchanged, it acts; already changed the planned way (a retried activity),
 *   it reports `skipped`; changed any other way, it refuses ({@link ActionStateChangedError})
 *   rather than act on a state nobody planned for. Every long-running operation is awaited
 *   through the SDK poller, bounded by a deadline (see `long-running.ts`).
 * - `undo(ctx, target, record)`, where reversible, puts back what `apply` changed, with the same
 *   re-read first.
 *
 * `ctx` is the runbook context (config, the one client layer, clock, logger), never a durable
 * context. Plans, results and undo records are JSON (they travel through durable history) and
 * hold no secrets. Nothing here imports `@azure/functions` or `durable-functions`.
 */
import type { ResourceKind } from '../../azure/resource-id.ts';
import type { TargetConfig } from '../../config/schema.ts';
import { OpsAutopilotError } from '../../errors.ts';
import type { RunbookContext } from '../../runbooks/runbook.ts';

/** A JSON value, as plans and records carry them. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

import type { RemediationActionName } from '../../config/remediation-schema.ts';

export { REMEDIATION_ACTION_NAMES, type RemediationActionName } from '../../config/remediation-schema.ts';

/** The resource kinds remediation acts on. */
export type RemediationKind = Extract<ResourceKind, 'webSite' | 'containerApp' | 'postgresFlexibleServer'>;

/** The runbook context, plus the bounds of long-running operations (tests shorten them). */
export interface ActionContext extends RunbookContext {
  /** Longest wait for one long-running operation; default {@link DEFAULT_OPERATION_DEADLINE_MS}. */
  readonly operationDeadlineMs?: number;
  /** Poll interval when the service sends no `Retry-After`; default 5 s. */
  readonly pollIntervalMs?: number;
}

/** Default bound of one long-running operation: below the Functions host's 10-minute timeout. */
export const DEFAULT_OPERATION_DEADLINE_MS = 8 * 60_000;

/** One field the action changes, from what to what. */
export interface ActionChange {
  /** ARM id of what changes (the site, the plan, a revision). */
  readonly resource: string;
  /** e.g. `sku.capacity`, `properties.template.scale.minReplicas`, `traffic`, `state`. */
  readonly field: string;
  readonly from: JsonValue;
  readonly to: JsonValue;
}

/** How to undo an applied action: the action's own data, JSON, no secrets. */
export interface UndoRecord {
  readonly action: RemediationActionName;
  readonly kind: RemediationKind;
  readonly targetId: string;
  /** One line: what the undo does. */
  readonly summary: string;
  readonly data: { readonly [key: string]: JsonValue };
}

/** What an action would do to one target. */
export interface ActionPlan {
  readonly action: RemediationActionName;
  readonly kind: RemediationKind;
  readonly targetId: string;
  /** One line for people: what would change, on what. */
  readonly summary: string;
  readonly changes: readonly ActionChange[];
  /** Whether `undo` can put the change back. */
  readonly reversible: boolean;
  /** Why not, when not reversible. */
  readonly irreversibleReason?: string;
  /** The record `undo` takes; `apply`'s result may carry a fuller one (use that when present). */
  readonly undo?: UndoRecord;
  /** The parameters as resolved (defaults filled). */
  readonly params: { readonly [key: string]: JsonValue };
  /** The state the plan read, which `apply` checks again before acting. */
  readonly observed: { readonly [key: string]: JsonValue };
  /** Things the reader should know (side effects, what the action will not do). */
  readonly notes: readonly string[];
  /** When the plan was made (ISO, the context's clock). */
  readonly plannedAt: string;
}

/** What `apply` or `undo` did. */
export interface ActionResult {
  readonly action: RemediationActionName;
  readonly targetId: string;
  /** `applied`, or `skipped` when the state already was the planned result (a re-run). */
  readonly outcome: 'applied' | 'skipped';
  readonly message: string;
  /** The state after, as read back from Azure. */
  readonly after: { readonly [key: string]: JsonValue };
  /** The undo record to use from now on (fuller than the plan's, e.g. with the revision created). */
  readonly undo?: UndoRecord;
}

/** A remediation action on one resource kind. */
export interface RemediationAction {
  readonly name: RemediationActionName;
  readonly kinds: readonly RemediationKind[];
  /** One line for `--help`, explain output and docs. */
  readonly description: string;
  /** Read-only. @throws ActionRefusedError, ActionParamsError, typed Azure errors. */
  plan(ctx: ActionContext, target: TargetConfig, params: unknown): Promise<ActionPlan>;
  /** @throws ActionStateChangedError, ActionRefusedError, typed Azure errors, OperationDeadlineError. */
  apply(ctx: ActionContext, target: TargetConfig, plan: ActionPlan): Promise<ActionResult>;
  /** Present only when the action can be reversible. */
  undo?(ctx: ActionContext, target: TargetConfig, record: UndoRecord): Promise<ActionResult>;
}

interface ExpectedFound {
  readonly expected: string;
  readonly found: string;
  readonly cause?: unknown;
}

/** Base of the actions' own errors: the resource, the action, what was expected and what was found. */
export class RemediationActionError extends OpsAutopilotError {
  override readonly name: string = 'RemediationActionError';
  readonly resourceId: string;
  readonly action: string;
  readonly expected: string;
  readonly found: string;

  constructor(action: string, resourceId: string, message: string, details: ExpectedFound) {
    super(`${action} on ${resourceId}: ${message}`, { context: { resourceId, action, expected: details.expected, found: details.found }, cause: details.cause });
    this.resourceId = resourceId;
    this.action = action;
    this.expected = details.expected;
    this.found = details.found;
  }
}

/** The action will not be planned: it cannot be proven safe or useful from what Azure reports. */
export class ActionRefusedError extends RemediationActionError {
  override readonly name: string = 'ActionRefusedError';
}

/** Between plan and apply (or apply and undo) the resource changed in a way nobody planned for. */
export class ActionStateChangedError extends RemediationActionError {
  override readonly name: string = 'ActionStateChangedError';
}

/** The action's parameters are invalid (a config the schema should have refused, or a hand-built one). */
export class ActionParamsError extends RemediationActionError {
  override readonly name: string = 'ActionParamsError';
}

/** The change was made but Azure does not report the planned result afterwards. */
export class ActionNotEffectiveError extends RemediationActionError {
  override readonly name: string = 'ActionNotEffectiveError';
}

/** No action of that name for that kind. */
export class UnknownRemediationActionError extends OpsAutopilotError {
  override readonly name: string = 'UnknownRemediationActionError';
}

/** A plan or record handed to apply/undo for another action, kind or target. */
export function checkPlanFor(plan: Pick<ActionPlan, 'action' | 'kind' | 'targetId'>, action: RemediationActionName, kind: RemediationKind, target: TargetConfig): void {
  if (plan.action !== action || plan.kind !== kind || plan.targetId.toLowerCase() !== target.id.toLowerCase()) {
    throw new ActionParamsError(action, target.id, 'the plan or undo record is not for this action and target', {
      expected: `${action} on ${kind} ${target.id}`,
      found: `${plan.action} on ${plan.kind} ${plan.targetId}`,
    });
  }
}
