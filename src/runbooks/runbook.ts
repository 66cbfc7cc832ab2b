/**
 * The shape every runbook has, and the registry of runbooks.
 *
 * A runbook is two functions over one target at a time:
 * - `plan` reads Azure and returns the exact actions it would take, plus findings (checks with
 *   their evidence) and the items it deliberately keeps, with why. It makes no mutating call.
 * - `apply` carries out one planned action and nothing else.
 *
 * Everything around them — choosing targets, isolation of failures, the dry-run gate, the
 * per-runbook lock, the deletion cap, run records and notifications — lives once in
 * `execute-runbook.ts`, so no trigger can skip a step. Runbooks import nothing from
 * `@azure/functions` or `durable-functions`.
 */
import type { AzureClients } from '../azure/clients.ts';
import type { ResourceKind } from '../azure/resource-id.ts';
import type { EstateConfig, RunbookName, TargetConfig } from '../config/schema.ts';
import type { TargetResolution } from '../config/resolve.ts';
import type { DetailValue } from '../runs/run-record.ts';
import type { RunLogger } from '../runs/run-log.ts';

/** Outcome of one check, e.g. "backup retention is at least 7 days". */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/** A check with its evidence: what was expected and what was found. */
export interface Check {
  readonly status: CheckStatus;
  /** Stable machine code, e.g. `postgres.backup.stale`. */
  readonly code: string;
  /** One line for humans, naming the resource. */
  readonly message: string;
  readonly expected: string;
  readonly found: string;
  /** The resource checked when it is not the target itself (a secret, a backup). */
  readonly resource?: string;
}

/** One mutation a runbook would make. */
export interface PlannedAction {
  /** Stable across re-plans of the same state, e.g. `delete-tag:user-service:v1.0.0`. */
  readonly id: string;
  /** Verb, e.g. `deactivate-revision`, `delete-tag`, `backup-secret`. */
  readonly kind: string;
  /** What the action touches: a revision, a tag, a secret, a blob. */
  readonly resource: string;
  /** Human description, e.g. `deactivate revision ca-user-service--r03 (created 40 days ago, no traffic)`. */
  readonly description: string;
  /** Deleting or deactivating something; notifications fire for every one applied. */
  readonly destructive: boolean;
  /** Everything apply needs, as scalars (no secrets). */
  readonly details: Readonly<Record<string, DetailValue>>;
}

/** Something the plan deliberately leaves alone, and why (e.g. "in use by ca-user-service"). */
export interface KeptItem {
  readonly resource: string;
  readonly reason: string;
}

/** The plan for one target. */
export interface TargetPlan {
  readonly targetId: string;
  readonly kind: ResourceKind;
  readonly actions: readonly PlannedAction[];
  readonly checks: readonly Check[];
  readonly kept: readonly KeptItem[];
}

/** Progress of a long run, for terminals. */
export interface ProgressEvent {
  readonly phase: 'plan' | 'apply';
  readonly targetId: string;
  readonly done: number;
  readonly total: number;
}

/** What a runbook gets to work with. */
export interface RunbookContext {
  readonly config: EstateConfig;
  readonly clients: AzureClients;
  /** The clock; the sandbox and tests inject theirs. */
  readonly now: () => Date;
  readonly logger: RunLogger;
  readonly signal?: AbortSignal;
  readonly progress?: (event: ProgressEvent) => void;
  /**
   * The estate's resolved targets ({@link ../config/resolve.ts}); the executor sets it for the
   * runbooks it runs (resolving once per run when the caller did not), so a runbook that looks at
   * other targets (images in use) sees the same list the run selected from.
   */
  readonly resolution?: TargetResolution;
}

/**
 * A runbook. `TPolicy` is its policy type from the config schema.
 *
 * Both functions throw on failure (typed errors naming the resource); the executor records the
 * failure against the target or action and carries on with the others.
 */
export interface Runbook<TPolicy = unknown> {
  readonly name: RunbookName;
  /** One line for `--help` and docs. */
  readonly description: string;
  /** The policy of a target for this runbook, or undefined when the target does not opt in. */
  policyOf(target: TargetConfig): TPolicy | undefined;
  /** Read-only: the exact actions for one target. */
  plan(context: RunbookContext, target: TargetConfig, policy: TPolicy): Promise<TargetPlan>;
  /** Carries out one planned action. Must be idempotent: it may run again after a crash. */
  apply(context: RunbookContext, target: TargetConfig, policy: TPolicy, action: PlannedAction): Promise<ApplyResult>;
  /**
   * Optional whole-plan guard, e.g. the deletion cap: returns a reason to refuse the plan
   * unless forced, or undefined.
   */
  refuse?(context: RunbookContext, plans: readonly TargetPlan[], options: { readonly force: boolean }): string | undefined;
  /**
   * Optional hint: how many of one target's planned actions the executor may apply at once
   * (default 1, one after another). Only for runbooks whose actions on a target are
   * independent of each other, e.g. `image-purge` deleting thousands of tags, where it returns
   * the registry budget's concurrency cap. The client layer's request budget still paces every
   * request, so this never raises the request rate above the budget; it only lets requests
   * overlap their latency.
   */
  applyConcurrency?(context: RunbookContext, target: TargetConfig): number;
}

/** What apply reports for one action. */
export interface ApplyResult {
  /** `applied`, or `skipped` when the state already matched (idempotent re-run). */
  readonly outcome: 'applied' | 'skipped';
  readonly message: string;
}

/**
 * Targets that opt into a runbook: of a resolution's targets (see {@link ../config/resolve.ts}),
 * or, given a config, of its explicit entries only (for code and tests without scopes).
 */
export function targetsFor<TPolicy>(runbook: Runbook<TPolicy>, source: EstateConfig | readonly TargetConfig[]): { target: TargetConfig; policy: TPolicy }[] {
  const selected: { target: TargetConfig; policy: TPolicy }[] = [];
  const targets: readonly TargetConfig[] = 'targets' in source ? source.targets : source;
  for (const target of targets) {
    const policy = runbook.policyOf(target);
    if (policy !== undefined) selected.push({ target, policy });
  }
  return selected;
}
