/**
 * The production binding of the remediation flow: the real rules, guardrails, actions, health
 * verification and PagerDuty paging behind the {@link RemediationServices} contract of
 * `flow-services.ts`. Importing this module installs it as the app's default
 * (`setDefaultRemediationServices`); `src/orchestrators/remediation.ts` imports it, so the app,
 * `npm run dev` and every test that loads `src/functions/index.ts` remediate for real. Only a
 * test's `useRemediationServices` overrides it.
 *
 * The contract's shapes are the flow's (JSON across activity boundaries); this module adapts
 * them to the modules' own types, which carry more (the resolved rule's path and cooldowns, the
 * plan's observed state), and passes those through unchanged so nothing is lost between steps.
 */
import type { OrchestrationContext, Task } from 'durable-functions';
import { resourceIdKey } from '../azure/resource-id.ts';
import type { AzureClients } from '../azure/clients.ts';
import type { EstateConfig, TargetConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { verifyHealth as verifyHealthStep } from '../health/verify-health.ts';
import { sendPagerDutyEvent } from '../notify/pagerduty.ts';
import { getRemediationAction as registryAction, UnknownRemediationActionError, type ActionPlan as RegistryPlan, type UndoRecord } from './actions/index.ts';
import type { RemediationActionName } from './actions/types.ts';
import {
  setDefaultRemediationServices,
  type ActionPlan,
  type ActionResult,
  type GuardrailEvaluation,
  type GuardrailRequest,
  type GuardrailStore,
  type Json,
  type MatchResult,
  type PageRequest,
  type RemediationAction,
  type RemediationIntake,
  type RemediationRule,
  type RemediationServices,
  type VerifyHealthInput,
  type VerifyHealthResult,
} from './flow-services.ts';
import { commitGuardrails, endGuardrailClaim, evaluateGuardrails, openGuardrailStore, type GuardrailReservation, type GuardrailStore as RealGuardrailStore } from './guardrails.ts';
import { matchRemediation, remediationTarget, type ResolvedRule } from './rules.ts';

function configuredTarget(targets: readonly TargetConfig[], id: string): TargetConfig | undefined {
  const key = resourceIdKey(id);
  return targets.find((target) => resourceIdKey(target.id) === key);
}

/** Rules: `matchRemediation` over the allow-list, answered with the configured target. */
function match(config: EstateConfig, targets: readonly TargetConfig[], intake: RemediationIntake): MatchResult {
  const found = matchRemediation(config, targets, intake);
  if (found.decision !== 'remediate') {
    const target = found.target === undefined ? undefined : configuredTarget(targets, found.target.id);
    return { decision: found.decision, reason: found.reason, ...(target === undefined ? {} : { target }) };
  }
  const target = configuredTarget(targets, found.target.id);
  // The allow-list only ever names configured targets; anything else is a defect: act on nothing.
  if (target === undefined) return { decision: 'reject', reason: `${found.target.id} matched but is not a configured target; nothing acts` };
  // The resolved rule is JSON (params parsed, cooldowns resolved): the flow carries it whole, and
  // the guardrails get it back as they resolved it.
  const rule = found.rule as unknown as RemediationRule;
  return { decision: 'remediate', target, rule, dryRun: found.dryRun };
}

function realStore(store: GuardrailStore): RealGuardrailStore {
  return store as RealGuardrailStore;
}

async function evaluate(store: GuardrailStore, request: GuardrailRequest): Promise<GuardrailEvaluation> {
  const guardrails = realStore(store);
  const target = remediationTarget(guardrails.config, request.target);
  if (target === undefined) {
    return { allowed: false, decisions: [{ guardrail: 'allow-list', verdict: 'block', reason: `${request.target.id} is not a kind remediation acts on` }] };
  }
  const result = await evaluateGuardrails(guardrails, {
    estate: request.estate,
    target,
    rule: request.rule as unknown as ResolvedRule,
    action: request.action as RemediationActionName,
    rung: request.rung,
    triggerKey: request.triggerKey,
    monitorCondition: request.monitorCondition,
    now: request.now,
    dryRun: request.dryRun,
    owner: request.owner,
    reservationKey: request.reservationKey,
  });
  return {
    allowed: result.allowed,
    dryRun: result.dryRun,
    decisions: result.decisions,
    ...(result.reservation === undefined ? {} : { reservation: result.reservation as unknown as Json }),
  };
}

/** The registry's action behind the flow's shape: plans and undo records pass through whole. */
function adapt(kind: string, name: string): RemediationAction | undefined {
  let action;
  try {
    action = registryAction(kind, name);
  } catch (error) {
    if (error instanceof UnknownRemediationActionError) return undefined;
    throw error;
  }
  const result = (done: { outcome: 'applied' | 'skipped'; message: string; undo?: UndoRecord; after: Readonly<Record<string, unknown>> }): ActionResult => ({
    outcome: done.outcome,
    message: done.message,
    ...(done.undo === undefined ? {} : { undo: done.undo as unknown as Json }),
    details: { after: done.after as Json },
  });
  const registered = action;
  const undo = action.undo === undefined ? undefined : (ctx: Parameters<NonNullable<typeof action.undo>>[0], target: TargetConfig, record: UndoRecord) => registered.undo?.(ctx, target, record);
  return {
    name: action.name,
    kinds: action.kinds,
    async plan(ctx, target, params) {
      const plan = await action.plan(ctx, target, params);
      return plan as unknown as ActionPlan;
    },
    async apply(ctx, target, plan) {
      return result(await action.apply(ctx, target, plan as unknown as RegistryPlan));
    },
    ...(undo === undefined
      ? {}
      : {
          async undo(ctx, target, record) {
            const done = await undo(ctx, target, record as unknown as UndoRecord);
            if (done === undefined) throw new OpsAutopilotError(`remediation: ${registered.name} has no undo`);
            return result(done);
          },
        }),
  };
}

/** Health: the health module's `verifyHealth` sub-step (probeHealthActivity on durable timers). */
function* verify(context: OrchestrationContext, input: VerifyHealthInput): Generator<Task, VerifyHealthResult, unknown> {
  const result = yield* verifyHealthStep(context, {
    targetId: input.targetId,
    ...(input.paths === undefined ? {} : { paths: input.paths }),
    consecutive: input.consecutive,
    intervalSeconds: input.intervalSeconds,
    deadlineSeconds: input.deadlineSeconds,
  });
  return { healthy: result.healthy, reason: result.reason, probes: result.probes.map((probe) => ({ at: probe.at, healthy: probe.healthy, summary: probe.reason })) };
}

/**
 * Paging: every PagerDuty target the escalation names (`request.targets`), else every one the
 * estate has. Undefined when there is none; never throws (a failed page is reported).
 */
async function page(config: EstateConfig, clients: AzureClients, request: PageRequest): Promise<{ outcome: 'applied' | 'failed'; message: string } | undefined> {
  const names = new Set(request.targets ?? config.notifications.pagerduty.map((target) => target.name));
  const targets = config.notifications.pagerduty.filter((target) => names.has(target.name));
  if (targets.length === 0) return undefined;
  const results = [];
  for (const target of targets) {
    const event =
      request.event === 'resolve'
        ? ({ action: 'resolve', dedupKey: request.dedupKey } as const)
        : ({
            action: 'trigger',
            dedupKey: request.dedupKey,
            summary: request.summary,
            source: request.source,
            ...(request.severity === undefined ? {} : { severity: request.severity }),
            ...(request.details === undefined ? {} : { details: request.details }),
          } as const);
    try {
      results.push(await sendPagerDutyEvent(config, clients, target.name, event));
    } catch (error) {
      results.push({ outcome: 'failed' as const, message: error instanceof Error ? error.message : String(error) });
    }
  }
  const failed = results.filter((entry) => entry.outcome === 'failed');
  return { outcome: failed.length === 0 ? 'applied' : 'failed', message: results.map((entry) => entry.message).join('; ') };
}

/** The real modules, by the contract's names. */
export const productionRemediationServices: RemediationServices = {
  matchRemediation: match,
  openGuardrailStore: (config, clients) => openGuardrailStore(config, clients),
  evaluateGuardrails: evaluate,
  commitGuardrails: async (store, reservation, outcome, now) => {
    if (reservation === null || typeof reservation !== 'object' || Array.isArray(reservation)) {
      throw new OpsAutopilotError(`guardrails: expected a reservation object to commit, found ${JSON.stringify(reservation)}`);
    }
    await commitGuardrails(realStore(store), reservation as unknown as GuardrailReservation, outcome, now === undefined ? {} : { now });
  },
  endClaim: async (store, reservation) => {
    if (reservation === null || typeof reservation !== 'object' || Array.isArray(reservation)) return;
    await endGuardrailClaim(realStore(store), reservation as unknown as GuardrailReservation);
  },
  getRemediationAction: adapt,
  verifyHealth: verify,
  page,
};

setDefaultRemediationServices(productionRemediationServices);
