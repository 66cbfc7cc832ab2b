/**
 * `remediationOrchestrator`: what an alert or event asks for, done durably and deterministically.
 *
 *     match → [watch] → per rung: checkResolved → guardrails → act (lock, plan, dry-run gate, apply)
 *           → verifyHealth → undo if it did not help → commit → next rung → escalate → finish
 *
 * - **match** reads the payload again and asks the rules which target and ladder apply; foreign
 *   targets and unmatched alerts end here as `ignored` (recorded, nothing changed).
 * - **watch** (slot swap completed, a container app write): health is watched first; only if it
 *   fails does the ladder (swap back, roll back) run.
 * - **guardrails** decide every rung (kill switch … dry-run gate) and reserve it; the reservation
 *   key is `<instance>:<rung>`, the same on every attempt, and **commit** settles it with how the
 *   rung ended (`succeeded`, `failed`, `undone`, `not-applied`), so counts and cooldowns stay right
 *   however often an activity runs.
 * - **act** is the one dry-run gate: in dry run every rung is planned and recorded and nothing
 *   changes; otherwise the per-resource lock (shared with the runbook executor, owner = this
 *   instance) decides who acts: a held lock ends the remediation as `suppressed`. The act
 *   activity takes the lock as a bounded *hold*; it stays held through verification and undo
 *   (renewed by the lock activity before each verification, for its deadline) and is released
 *   by the finish of every path, a failure included. A remediation that crashes and never
 *   resumes frees it when the hold expires.
 * - **verifyHealth** is the health module's durable sub-step (`yield*`, durable timers, N
 *   consecutive successes or a deadline). A rung that did not help is undone when reversible.
 * - **escalate**: after the last rung, the finish step notifies with the alert, every action,
 *   its evidence and the probes, and pages with the incident's dedup key.
 * - A `Resolved` alert leaves a marker (see `src/functions/alerts.ts`); it is read before every
 *   rung, and a resolved remediation stops, settles its reservation and resolves its page.
 *
 * Time comes from `context.df.currentUtcDateTime`; all I/O is in the activities of
 * `src/remediation/flow-activities.ts`, retried a bounded number of times (never by time). The
 * input holds the redacted payload; history, custom status and output hold decisions and
 * evidence, never a secret.
 */
import { armScopeDiscovery } from '../azure/discovery.ts';
import { resolveTargets } from '../config/resolve.ts';
import type { InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import { createAzureClients, type AzureClients } from '../azure/clients.ts';
import type { EstateConfig } from '../config/schema.ts';
import { REMEDIATION_FUNCTION_NAMES } from '../functions/function-names.ts';
import { invocationLogger } from '../functions/invocation-logger.ts';
import {
  actActivity,
  checkResolvedActivity,
  commitActivity,
  failureText,
  finishActivity,
  flowStoreFor,
  guardrailsActivity,
  lockActivity,
  matchActivity,
  ACT_HOLD_MS,
  undoActivity,
  watchSpec,
  type ActInput,
  type ActStepResult,
  type CommitInput,
  type FinishInput,
  type FinishResult,
  type FlowDeps,
  type GuardrailsInput,
  type GuardrailsOutcome,
  type LockInput,
  type LockResult,
  type MatchOutcome,
  type RemediationInput,
  type RemediationOutcome,
  type ResolutionMarker,
  type StepEvidence,
  type UndoInput,
  type UndoResult,
} from '../remediation/flow-activities.ts';
import { remediationServices, type GuardrailOutcome, type Json, type VerifyHealthResult, type VerifySpec } from '../remediation/flow-services.ts';
import '../remediation/services.ts';
import { AppNotReadyError, checkReadiness } from '../startup/readiness.ts';

const names = REMEDIATION_FUNCTION_NAMES;

/** Attempts per activity: the first and two retries, 5 s then 10 s apart (bounded by attempts, never by time). */
export const REMEDIATION_ACTIVITY_ATTEMPTS = 3;

/** Most probes kept per verification in the custom status (the output keeps them all). */
const STATUS_PROBES = 5;

/** Where a remediation is, as `GET /api/remediations/{id}` shows it (the custom status). */
export interface RemediationStatus {
  readonly phase: 'matching' | 'watching' | 'guardrails' | 'acting' | 'verifying' | 'undoing' | 'finishing' | 'done';
  readonly trigger: 'alert' | 'event';
  readonly summary?: string;
  readonly target?: string;
  readonly rule?: string;
  readonly dryRun?: boolean;
  /** The ladder's actions, in order. */
  readonly ladder: readonly string[];
  /** The rung being worked on (0-based), or -1 before the first. */
  readonly rung: number;
  readonly steps: readonly StepEvidence[];
  readonly outcome?: RemediationOutcome;
  readonly reason?: string;
}

/** What the orchestration returns. */
export interface RemediationOutput extends FinishInput {
  readonly record: FinishResult;
}

function retryOptions(): df.RetryOptions {
  const retry = new df.RetryOptions(5_000, REMEDIATION_ACTIVITY_ATTEMPTS);
  retry.backoffCoefficient = 2;
  retry.maxRetryIntervalInMilliseconds = 10_000;
  return retry;
}

function shortVerify(verify: VerifyHealthResult, keep = Number.POSITIVE_INFINITY): NonNullable<StepEvidence['verify']> {
  const probes = verify.probes.slice(-Math.min(keep, verify.probes.length));
  return { healthy: verify.healthy, reason: verify.reason, probes: probes.map((probe) => ({ at: probe.at, healthy: probe.healthy, summary: probe.summary.slice(0, 300) })) };
}

/** The orchestrator. Deterministic: no I/O, no clock but the orchestration's, no randomness. */
export const remediationOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext): Generator<Task, RemediationOutput, unknown> {
  const input = context.df.getInput<RemediationInput>();
  const instanceId = context.df.instanceId;
  const startedAt = context.df.currentUtcDateTime.toISOString();
  const services = remediationServices();
  const retry = retryOptions();
  const steps: StepEvidence[] = [];
  let match: MatchOutcome | undefined;
  let watch: StepEvidence['verify'];
  let rung = -1;

  const status = (phase: RemediationStatus['phase'], end?: { outcome: RemediationOutcome; reason: string }): void => {
    const view: RemediationStatus = {
      phase,
      trigger: input.source,
      ladder: match?.rule?.ladder.map((step) => step.action) ?? [],
      rung,
      steps: steps.map((step) => (step.verify === undefined ? step : { ...step, verify: { ...step.verify, probes: step.verify.probes.slice(-STATUS_PROBES) } })),
      ...(match === undefined ? {} : { summary: match.summary, dryRun: match.dryRun }),
      ...(match?.target === undefined ? {} : { target: match.target.id }),
      ...(match?.rule === undefined ? {} : { rule: match.rule.name }),
      ...(end === undefined ? {} : end),
    };
    context.df.setCustomStatus(view);
  };

  // The last reservation the guardrails gave: the finish ends its in-progress claim.
  let lastReservation: Json | undefined;
  // Set once an act or undo ran outside dry run: from then on this instance may hold the target's lock.
  let lockTarget: string | undefined;

  function* finish(outcome: RemediationOutcome, reason: string, extra: { page?: 'trigger' | 'resolve'; error?: string } = {}): Generator<Task, RemediationOutput, unknown> {
    status('finishing', { outcome, reason });
    if (lockTarget !== undefined) {
      const unlock: LockInput = { instanceId, targetId: lockTarget, release: true };
      try {
        yield context.df.callActivityWithRetry(names.lockActivity, retry, unlock);
      } catch {
        // The hold expires by itself (bounded); the record still gets written.
      }
      lockTarget = undefined;
    }
    const finishInput: FinishInput = {
      instanceId,
      startedAt,
      input: { source: input.source, triggerKey: input.triggerKey, requestedBy: input.requestedBy },
      match,
      outcome,
      reason,
      steps,
      ...(watch === undefined ? {} : { watch }),
      ...(extra.page === undefined ? {} : { page: extra.page }),
      ...(extra.error === undefined ? {} : { error: extra.error }),
      ...(lastReservation === undefined ? {} : { reservation: lastReservation }),
    };
    const record = (yield context.df.callActivityWithRetry(names.finishActivity, retry, finishInput)) as FinishResult;
    status('done', { outcome, reason });
    return { ...finishInput, record };
  }

  function* commit(reservation: Json | undefined, outcome: GuardrailOutcome): Generator<Task, GuardrailOutcome | undefined, unknown> {
    if (reservation === undefined) return undefined;
    const commitInput: CommitInput = { reservation, outcome, now: context.df.currentUtcDateTime.toISOString() };
    yield context.df.callActivityWithRetry(names.commitActivity, retry, commitInput);
    return outcome;
  }

  function* run(): Generator<Task, RemediationOutput, unknown> {
    status('matching');
    try {
      match = (yield context.df.callActivityWithRetry(names.matchActivity, retry, input)) as MatchOutcome;
    } catch (error) {
      return yield* finish('failed', `could not match the ${input.source}: ${failureText(error)}`, { error: failureText(error) });
    }
    if (match.decision === 'ignore' || match.decision === 'reject') return yield* finish(match.decision === 'ignore' ? 'ignored' : 'rejected', match.reason);
    if (match.flow === 'notify') return yield* finish('notified', match.reason);
    const rule = match.rule;
    const target = match.target;
    if (rule === undefined || target === undefined) return yield* finish('rejected', 'the rules named no target or rule');

    if (match.flow === 'watch' && !match.dryRun) {
      const spec = watchSpec(rule);
      if (spec !== undefined) {
        status('watching');
        const watched = yield* services.verifyHealth(context, { targetId: target.id, kind: target.kind, ...spec });
        watch = shortVerify(watched);
        if (watched.healthy) return yield* finish('healthy', `health held after ${match.summary}: ${watched.reason}`);
      }
    }

    let planned = 0;
    for (const [index, step] of rule.ladder.entries()) {
      rung = index;
      if (!match.dryRun) {
        const resolved = (yield context.df.callActivityWithRetry(names.checkResolvedActivity, retry, { instanceId })) as ResolutionMarker | null;
        if (resolved !== null) return yield* finish('resolved', `the alert was resolved at ${resolved.resolvedAt} before rung ${String(index + 1)} (${step.action})`, { page: 'resolve' });
      }
      status('guardrails');
      const guardInput: GuardrailsInput = {
        targetId: target.id,
        rule,
        action: step.action,
        triggerKey: input.triggerKey,
        monitorCondition: match.monitorCondition,
        now: context.df.currentUtcDateTime.toISOString(),
        dryRun: match.dryRun,
        reservationKey: `${instanceId}:${String(index)}`,
        rung: index,
        owner: instanceId,
      };
      let guard: GuardrailsOutcome;
      try {
        guard = (yield context.df.callActivityWithRetry(names.guardrailsActivity, retry, guardInput)) as GuardrailsOutcome;
      } catch (error) {
        // Fail closed: without a guardrail decision nothing acts.
        steps.push({ rung: index, action: step.action, error: `guardrails could not be evaluated: ${failureText(error)}` });
        return yield* finish('failed', `guardrails could not be evaluated for ${step.action}; nothing was changed`, { error: failureText(error) });
      }
      if (guard.reservation !== undefined) lastReservation = guard.reservation;
      const evidence: { -readonly [K in keyof StepEvidence]: StepEvidence[K] } = { rung: index, action: step.action, guardrails: guard.decisions, allowed: guard.allowed };
      steps.push(evidence);
      const blockedBy = guard.decisions.filter((decision) => decision.verdict === 'block');
      const planOnly = match.dryRun || guard.dryRun;
      if (!guard.allowed && !planOnly) {
        return yield* finish('suppressed', `${step.action} suppressed: ${blockedBy.map((decision) => `${decision.guardrail} (${decision.reason})`).join('; ') || 'a guardrail refused'}`);
      }

      status('acting');
      if (!planOnly) lockTarget = target.id;
      const actInput: ActInput = { instanceId, targetId: target.id, rung: index, action: step.action, params: step.params, dryRun: planOnly };
      let acted: ActStepResult;
      try {
        acted = (yield context.df.callActivityWithRetry(names.actActivity, retry, actInput)) as ActStepResult;
      } catch (error) {
        evidence.error = failureText(error);
        evidence.commit = yield* commit(guard.reservation, 'failed');
        continue;
      }
      if (acted.outcome === 'locked') {
        evidence.result = { outcome: 'skipped', message: `not applied: ${acted.message}` };
        evidence.commit = yield* commit(guard.reservation, 'not-applied');
        return yield* finish('suppressed', `${step.action} not applied: another operation holds the lock of ${target.id}${acted.holder === undefined ? '' : ` (${acted.holder})`}`);
      }
      evidence.plan = { summary: acted.plan.summary, reversible: acted.plan.reversible };
      if (acted.outcome === 'planned') {
        planned += 1;
        evidence.result = { outcome: 'planned', message: `dry run: would ${acted.plan.summary}${guard.allowed ? '' : ` (the guardrails would refuse it now: ${blockedBy.map((decision) => decision.guardrail).join(', ')})`}` };
        evidence.commit = yield* commit(guard.reservation, 'not-applied');
        continue;
      }
      evidence.result = { outcome: acted.outcome, message: acted.message };

      status('verifying');
      // Keep the lock through the verification's timers and a possible undo after it.
      const renew: LockInput = { instanceId, targetId: target.id, holdSeconds: step.verify.deadlineSeconds + ACT_HOLD_MS / 1000, purpose: `verify ${step.action}` };
      const renewed = (yield context.df.callActivityWithRetry(names.lockActivity, retry, renew)) as LockResult;
      if (renewed.outcome === 'locked') evidence.error = `the lock of ${target.id} was taken during ${step.action}: ${renewed.message}`;
      const verified = yield* services.verifyHealth(context, { targetId: target.id, kind: target.kind, ...step.verify } satisfies VerifySpec & { targetId: string; kind: string });
      evidence.verify = shortVerify(verified);
      if (verified.healthy) {
        evidence.commit = yield* commit(guard.reservation, 'succeeded');
        return yield* finish('remediated', `${step.action} helped: ${verified.reason}`);
      }
      const undoRecord = acted.undo ?? acted.plan.undo;
      if (acted.plan.reversible && undoRecord !== undefined) {
        status('undoing');
        const undoInput: UndoInput = { instanceId, targetId: target.id, rung: index, action: step.action, undo: undoRecord };
        try {
          const undone = (yield context.df.callActivityWithRetry(names.undoActivity, retry, undoInput)) as UndoResult;
          evidence.undo = undone;
          evidence.commit = yield* commit(guard.reservation, undone.outcome === 'applied' ? 'undone' : 'failed');
        } catch (error) {
          evidence.undo = { outcome: 'failed', message: failureText(error) };
          evidence.commit = yield* commit(guard.reservation, 'failed');
        }
      } else {
        evidence.commit = yield* commit(guard.reservation, 'failed');
      }
    }

    rung = rule.ladder.length;
    if (match.dryRun || (planned > 0 && planned === steps.length)) return yield* finish('planned', `dry run: planned ${String(steps.length)} rung(s) of ${rule.name}; nothing was changed`);
    const resolved = (yield context.df.callActivityWithRetry(names.checkResolvedActivity, retry, { instanceId })) as ResolutionMarker | null;
    if (resolved !== null) return yield* finish('resolved', `the alert was resolved at ${resolved.resolvedAt}; no escalation`, { page: 'resolve' });
    return yield* finish('escalated', `${rule.name}: no rung helped (${steps.map((step) => `${step.action}: ${step.error ?? (step.verify?.healthy === false ? 'still unhealthy' : (step.result?.outcome ?? '-'))}`).join(', ')})`, { page: 'trigger' });
  }

  try {
    return yield* run();
  } catch (error) {
    // Whatever failed unexpectedly (an activity out of retries, a verification input out of
    // bounds), the finish still releases the lock, settles nothing twice and records why.
    return yield* finish('failed', `remediation stopped: ${failureText(error)}`, { error: failureText(error) });
  }
};

let shared: { key: string; clients: AzureClients } | undefined;

/**
 * The client layer of the activities, kept for the life of the worker as the Functions guidance
 * asks (one credential, one token cache, one request budget per subscription, kept-alive
 * connections), rebuilt when the estate's Azure settings change.
 */
function sharedClients(config: EstateConfig): AzureClients {
  const key = JSON.stringify(config.azure);
  if (shared?.key !== key) {
    const previous = shared;
    shared = { key, clients: createAzureClients(config.azure) };
    void previous?.clients.close().catch(() => undefined);
  }
  return shared.clients;
}

/** Runs one activity with the app's config and client layer; the app must be ready. */
async function withFlowDeps<T>(context: InvocationContext, fn: (deps: FlowDeps) => Promise<T>): Promise<T> {
  const readiness = await checkReadiness();
  if (!readiness.ready) throw new AppNotReadyError(readiness.problems);
  const config: EstateConfig = readiness.config;
  const clients = sharedClients(config);
  // The allow-list is the resolved targets (scopes listed through ARM); a failed listing leaves
  // that scope's resources out (fail closed), a conflict between scopes fails the activity.
  const { targets } = await resolveTargets(config, { discovery: armScopeDiscovery(clients) });
  return fn({ config, targets, clients, services: remediationServices(), logger: invocationLogger(context), now: () => new Date() });
}

df.app.orchestration(names.remediationOrchestrator, remediationOrchestrator);
df.app.activity(names.matchActivity, { handler: (input: RemediationInput, context) => withFlowDeps(context, (deps) => Promise.resolve(matchActivity(input, deps))) });
df.app.activity(names.guardrailsActivity, { handler: (input: GuardrailsInput, context) => withFlowDeps(context, (deps) => guardrailsActivity(input, deps)) });
df.app.activity(names.commitActivity, { handler: (input: CommitInput, context) => withFlowDeps(context, (deps) => commitActivity(input, deps)) });
df.app.activity(names.actActivity, { handler: (input: ActInput, context) => withFlowDeps(context, async (deps) => actActivity(input, deps, await flowStoreFor(deps.config, deps.clients))) });
df.app.activity(names.lockActivity, { handler: (input: LockInput, context) => withFlowDeps(context, (deps) => lockActivity(input, deps)) });
df.app.activity(names.undoActivity, { handler: (input: UndoInput, context) => withFlowDeps(context, async (deps) => undoActivity(input, deps, await flowStoreFor(deps.config, deps.clients))) });
df.app.activity(names.checkResolvedActivity, {
  handler: (input: { instanceId: string }, context) => withFlowDeps(context, async (deps) => (await checkResolvedActivity(input, await flowStoreFor(deps.config, deps.clients))) ?? null),
});
df.app.activity(names.finishActivity, { handler: (input: FinishInput, context) => withFlowDeps(context, (deps) => finishActivity(input, deps)) });
