/**
 * What the remediation flow (`src/orchestrators/remediation.ts` and its activities) calls of the
 * modules around it, by the names of the issue 9 contract (/work/notes/design.md):
 *
 * - rules and guardrails (`src/remediation/rules.ts`, `src/remediation/guardrails.ts`):
 *   `matchRemediation`, `openGuardrailStore`, `evaluateGuardrails`, `commitGuardrails`;
 * - actions and health (`src/remediation/actions/index.ts`, `src/health/`):
 *   `getRemediationAction` (plan / apply / undo) and `verifyHealth`, a durable sub-step;
 * - paging (`src/notify/pagerduty.ts`): trigger and resolve with a dedup key per incident.
 *
 * The flow depends on these shapes only, so that the orchestration is one piece of code
 * whatever implements them. `src/remediation/services.ts` is the production binding, installed
 * with {@link setDefaultRemediationServices} when the orchestrator module loads;
 * {@link remediationServices} returns it; {@link useRemediationServices} overrides it (tests, and
 * nothing else). Without a binding (a module graph that never loaded services.ts) every
 * remediation fails closed: it changes nothing and its record says why.
 */
import type { OrchestrationContext, Task } from 'durable-functions';
import type { AzureClients } from '../azure/clients.ts';
import type { EstateConfig, TargetConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import type { ParsedAlert } from '../alerts/common-alert-schema.ts';
import type { ParsedEvent } from '../events/event-grid-schema.ts';

/** A JSON value: what may cross an activity boundary (durable history keeps it). */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };

/** How one action is verified: the health paths, N consecutive successes, the probe interval and a deadline. */
export interface VerifySpec {
  readonly paths?: readonly string[];
  readonly consecutive: number;
  readonly intervalSeconds: number;
  readonly deadlineSeconds: number;
}

/** One rung of a ladder: an action, its parameters, and how it is verified. */
export interface LadderRung {
  readonly action: string;
  readonly params: Readonly<Record<string, Json>>;
  readonly verify: VerifySpec;
}

/** A remediation rule, as `matchRemediation` returns it. */
export interface RemediationRule {
  readonly name: string;
  readonly ladder: readonly LadderRung[];
  /** Who hears the escalation (the rules module's shape; the flow passes it on). */
  readonly escalate?: unknown;
  /** For events that start a watch (slot swap completed, new revision): how long and how health is watched before the ladder. Default: the first rung's verify. */
  readonly watch?: VerifySpec;
}

/** What an alert or event asks for. */
export type MatchResult =
  | { readonly decision: 'remediate'; readonly target: TargetConfig; readonly rule: RemediationRule; readonly dryRun?: boolean }
  | { readonly decision: 'ignore' | 'reject'; readonly reason: string; readonly target?: TargetConfig };

/** A parsed alert or event, as the intake modules produce them. */
export type RemediationIntake = ParsedAlert | ParsedEvent;

/** One guardrail's decision, in the order. */
export interface GuardrailDecision {
  readonly guardrail: string;
  readonly verdict: 'pass' | 'block' | 'skip';
  readonly reason: string;
}

/** Input of `evaluateGuardrails`. */
export interface GuardrailRequest {
  readonly estate: string;
  readonly target: TargetConfig;
  readonly rule: RemediationRule;
  readonly action: string;
  /** The alert's idempotency key or the event's: dedupe is by this key. */
  readonly triggerKey: string;
  readonly monitorCondition: 'Fired' | 'Resolved' | undefined;
  readonly now: Date;
  readonly dryRun: boolean;
  /**
   * The same for every attempt of one rung of one remediation (`<instance id>:<rung>`), so that
   * an activity that runs again after a crash re-finds its reservation instead of taking a second.
   */
  readonly reservationKey: string;
  /** The rung's index in the rule's ladder. */
  readonly rung: number;
  /** Who evaluates: the orchestration instance id. */
  readonly owner: string;
}

/** What `evaluateGuardrails` decided. `reservation` is JSON, passed back to `commitGuardrails`. */
export interface GuardrailEvaluation {
  readonly allowed: boolean;
  /** The dry-run gate is closed (the estate, the rule or the target's mode): plan and record, do not apply. */
  readonly dryRun?: boolean;
  readonly decisions: readonly GuardrailDecision[];
  readonly reservation?: Json;
}

/** How a rung ended, for `commitGuardrails`. */
export type GuardrailOutcome = 'succeeded' | 'failed' | 'undone' | 'not-applied';

/** An action's plan: what it would change and how to undo it. JSON, no secrets. */
export interface ActionPlan {
  readonly summary: string;
  readonly changes: readonly Json[];
  readonly undo?: Json;
  readonly reversible: boolean;
}

/** What an action did. */
export interface ActionResult {
  readonly outcome: 'applied' | 'skipped';
  readonly message: string;
  /** The undo record to use from now on, when fuller than the plan's. */
  readonly undo?: Json;
  readonly details?: Readonly<Record<string, Json>>;
}

/** One remediation action of the registry. */
export interface RemediationAction {
  readonly name: string;
  readonly kinds: readonly string[];
  plan(ctx: RunbookContext, target: TargetConfig, params: Readonly<Record<string, Json>>): Promise<ActionPlan>;
  apply(ctx: RunbookContext, target: TargetConfig, plan: ActionPlan): Promise<ActionResult>;
  undo?(ctx: RunbookContext, target: TargetConfig, undoRecord: Json): Promise<ActionResult>;
}

/** Input of the `verifyHealth` sub-step. */
export interface VerifyHealthInput {
  readonly targetId: string;
  readonly kind: string;
  readonly paths?: readonly string[];
  readonly consecutive: number;
  readonly intervalSeconds: number;
  readonly deadlineSeconds: number;
}

/** One probe of a verification, as evidence. */
export interface ProbeEvidence {
  readonly at: string;
  readonly healthy: boolean;
  readonly summary: string;
}

/** What `verifyHealth` found. */
export interface VerifyHealthResult {
  readonly healthy: boolean;
  readonly reason: string;
  readonly probes: readonly ProbeEvidence[];
}

/** A page: trigger or resolve, with the incident's dedup key. */
export interface PageRequest {
  readonly event: 'trigger' | 'resolve';
  readonly dedupKey: string;
  readonly summary: string;
  readonly source: string;
  readonly severity?: 'critical' | 'error' | 'warning' | 'info';
  readonly details?: Readonly<Record<string, Json>>;
  /** The notification entries the escalation names (PagerDuty targets among them are paged); default every PagerDuty target. */
  readonly targets?: readonly string[];
}

/** What a guardrail store is, to the flow: opaque. */
export type GuardrailStore = object;

/** Everything the flow calls of the guardrails, actions, health and paging modules. */
export interface RemediationServices {
  matchRemediation(config: EstateConfig, targets: readonly TargetConfig[], intake: RemediationIntake): MatchResult;
  openGuardrailStore(config: EstateConfig, clients: AzureClients): Promise<GuardrailStore> | GuardrailStore;
  evaluateGuardrails(store: GuardrailStore, request: GuardrailRequest): Promise<GuardrailEvaluation>;
  /** `now`: the orchestration's time of the commit (breaker openings and healthy periods are on the same clock as the evaluations). */
  commitGuardrails(store: GuardrailStore, reservation: Json, outcome: GuardrailOutcome, now?: Date): Promise<void>;
  /** Ends the in-progress claim of a finished remediation (any reservation it made); optional: a binding without claims has none. */
  endClaim?(store: GuardrailStore, reservation: Json): Promise<void>;
  getRemediationAction(kind: string, name: string): RemediationAction | undefined;
  /** A durable sub-step (`yield*`): probes through an activity on durable timers until N consecutive successes or the deadline. */
  verifyHealth(context: OrchestrationContext, input: VerifyHealthInput): Generator<Task, VerifyHealthResult, unknown>;
  /** Sends a page when the estate has a pager; returns what happened, or undefined when it has none. Never throws for a failed send. */
  page(config: EstateConfig, clients: AzureClients, request: PageRequest): Promise<{ outcome: 'applied' | 'failed'; message: string } | undefined>;
}

/** No remediation modules are bound: the flow refuses to act (fail closed) and says so. */
export class RemediationUnavailableError extends OpsAutopilotError {
  override readonly name: string = 'RemediationUnavailableError';
}

const unavailable = (what: string): never => {
  throw new RemediationUnavailableError(`remediation: expected the ${what} module to be installed in this app, found none; nothing was changed`);
};

/** The binding of an app without the remediation modules: every call refuses. */
export const UNAVAILABLE_SERVICES: RemediationServices = {
  matchRemediation: () => unavailable('rules (matchRemediation)'),
  openGuardrailStore: () => unavailable('guardrails (openGuardrailStore)'),
  evaluateGuardrails: () => unavailable('guardrails (evaluateGuardrails)'),
  commitGuardrails: () => unavailable('guardrails (commitGuardrails)'),
  getRemediationAction: () => unavailable('actions (getRemediationAction)'),
  // eslint-disable-next-line require-yield -- refuses before its first step
  *verifyHealth(): Generator<Task, VerifyHealthResult, unknown> {
    return unavailable('health (verifyHealth)');
  },
  page: () => Promise.resolve(undefined),
};

let defaults: RemediationServices = UNAVAILABLE_SERVICES;
let override: RemediationServices | undefined;

/** The services the app's remediation flow uses: a test's override, else the app's binding. */
export function remediationServices(): RemediationServices {
  return override ?? defaults;
}

/** Sets the app's binding (`src/remediation/services.ts`, imported by the orchestrator). */
export function setDefaultRemediationServices(services: RemediationServices): void {
  defaults = services;
}

/** Overrides the binding (tests only; it wins over the app's, whenever that is set). Returns the previous override. */
export function useRemediationServices(services: RemediationServices | undefined): RemediationServices | undefined {
  const previous = override;
  override = services;
  return previous;
}
