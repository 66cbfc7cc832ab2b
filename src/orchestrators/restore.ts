/**
 * `restoreOrchestrator`: a point-in-time restore of a PostgreSQL flexible server to a new
 * server, with data validation, an approval gate and an optional cutover of its consumers.
 *
 * validate (nothing created on a bad request) → create (PointInTimeRestore, idempotent per
 * instance) → wait on durable timers with back-off (30 s doubling to 5 min, at most
 * `restoreTimeoutHours`) → validate the data over `pg` → approval (`approve`/`reject` events
 * raced against `approval.timeoutHours`) → cutover of each consumer (Key Vault references,
 * restart) → verifyHealth of each → on failure, the previous connection strings back, restart,
 * verify again, escalate. The old server is only ever read. Every input, output and custom
 * status holds references and facts, never a secret value.
 *
 * Deterministic: time from `context.df.currentUtcDateTime`, all I/O in activities.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, Task, TimerTask } from 'durable-functions';
import { verifyHealth, type VerifyHealthResult } from '../health/verify-health.ts';
import type { CutoverRecord } from '../restore/cutover.ts';
import type { DataEvidence } from '../restore/data-checks.ts';
import { APPROVAL_EVENTS, RESTORE_ACTIVITIES as A } from '../restore/names.ts';
import type { RestoreRequest, RestoreServerStatus, RestoreStart } from '../restore/servers.ts';
import type { FinishStepInput, StepRecord, ValidatedPlan } from '../restore/steps.ts';
import type { RunTrigger } from '../runs/run-record.ts';

/** First wait between looks at a restore in progress, and the longest. */
export const FIRST_POLL_MS = 30_000;
export const MAX_POLL_MS = 5 * 60_000;
/** Looks in a row that may fail (Azure unreachable) before the restore counts as failed. */
const MAX_STATUS_FAILURES = 5;

/** Retries of idempotent activities: a transient failure gets two more attempts, 10 s and 20 s later. */
export function activityRetry(): df.RetryOptions {
  const options = new df.RetryOptions(10_000, 3);
  options.backoffCoefficient = 2;
  options.maxRetryIntervalInMilliseconds = 60_000;
  return options;
}

/** Input of {@link restoreOrchestrator}: references only. */
export interface RestoreInput {
  readonly request: RestoreRequest;
  /** Cut the consumers over once approved (the source's `restore.cutover`). */
  readonly cutover: boolean;
  readonly trigger: RunTrigger;
  readonly requestedBy?: string;
}

/** How a restore ended. */
export type RestoreOutcome =
  | 'invalid'
  | 'restore-failed'
  | 'restore-timed-out'
  | 'validation-failed'
  | 'restored'
  | 'rejected'
  | 'approval-timed-out'
  | 'cut-over'
  | 'rolled-back'
  | 'cutover-failed';

/** What an approval or rejection said. */
export interface ApprovalDecision {
  readonly decision: 'approved' | 'rejected' | 'timed-out';
  readonly by?: string;
  readonly reason?: string;
  readonly at: string;
}

/** The output of {@link restoreOrchestrator} (also in the run record). */
export interface RestoreOutput {
  readonly id: string;
  /** The run record's id. */
  readonly runId: string;
  readonly outcome: RestoreOutcome;
  readonly succeeded: boolean;
  readonly summary: string;
  readonly plan?: ValidatedPlan;
  readonly restoredFqdn?: string;
  readonly evidence?: DataEvidence;
  readonly approval?: ApprovalDecision;
  readonly cutover?: readonly CutoverRecord[];
  readonly health?: readonly VerifyHealthResult[];
  readonly rollbackHealth?: readonly VerifyHealthResult[];
  readonly newServerKept?: boolean;
  readonly steps: readonly StepRecord[];
  readonly startedAt: string;
  readonly endedAt: string;
}

/** The message of a failed activity as durable-functions hands it over (first line, bounded). */
export function failureText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = (text.split('\n')[0] ?? text).replace(/^Activity function '[^']+' failed:\s*/, '');
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

/** A step log for the record, time-stamped with the orchestration clock. */
export class StepLog {
  readonly steps: StepRecord[] = [];
  constructor(private readonly context: OrchestrationContext) {}
  add(step: string, outcome: StepRecord['outcome'], message: string, resource?: string): void {
    this.steps.push({ at: this.context.df.currentUtcDateTime.toISOString(), step, outcome, message, ...(resource === undefined ? {} : { resource }) });
  }
}

/** What {@link waitForServer} ends with. */
export type WaitResult = RestoreServerStatus | { readonly state: 'timed-out'; readonly detail: string };

/**
 * Waits for a restored server on durable timers: looks at once, then after 30 s, doubling to
 * 5 minutes, until it is Ready, failed, or `timeoutHours` passed. The history grows with the
 * number of looks, at most log2(5 min / 30 s) + timeout / 5 min of them.
 */
export function* waitForServer(
  context: OrchestrationContext,
  plan: ValidatedPlan,
  owner: string,
  start: RestoreStart,
  timeoutHours: number,
): Generator<Task, WaitResult, unknown> {
  const deadline = context.df.currentUtcDateTime.getTime() + timeoutHours * 3_600_000;
  let interval = FIRST_POLL_MS;
  let failures = 0;
  for (;;) {
    try {
      const status = (yield context.df.callActivity(A.status, { plan, owner, pollerState: start.pollerState })) as RestoreServerStatus;
      failures = 0;
      if (status.state !== 'provisioning') return status;
    } catch (error) {
      failures += 1;
      if (failures >= MAX_STATUS_FAILURES) return { state: 'failed', detail: `the restore's status could not be read ${failures} times in a row: ${failureText(error)}` };
    }
    const now = context.df.currentUtcDateTime.getTime();
    if (now >= deadline) return { state: 'timed-out', detail: `${plan.newServerName} was not Ready within ${timeoutHours} h` };
    yield context.df.createTimer(new Date(Math.min(now + interval, deadline)));
    interval = Math.min(interval * 2, MAX_POLL_MS);
  }
}

function decisionOf(kind: 'approved' | 'rejected', payload: unknown, at: Date): ApprovalDecision {
  const record = payload !== null && typeof payload === 'object' ? (payload as Record<string, unknown>) : {};
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, 200) : undefined);
  const by = text(record.by);
  const reason = text(record.reason);
  return { decision: kind, at: at.toISOString(), ...(by === undefined ? {} : { by }), ...(reason === undefined ? {} : { reason }) };
}

/** The restore orchestration; see the module comment. */
export function* restoreOrchestrator(context: OrchestrationContext): Generator<Task, RestoreOutput, unknown> {
  const input = context.df.getInput<RestoreInput>();
  const id = context.df.instanceId;
  const runId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? id : context.df.newGuid(id);
  const startedAt = context.df.currentUtcDateTime.toISOString();
  const log = new StepLog(context);
  const status = (phase: string, extra: Record<string, unknown> = {}): void => {
    context.df.setCustomStatus({ phase, steps: log.steps.length, ...extra });
  };

  let plan: ValidatedPlan | undefined;
  // Set as the steps go; read by finish().
  const found: { restoredFqdn?: string; approval?: ApprovalDecision } = {};
  let evidence: DataEvidence | undefined;
  let newServerKept: boolean | undefined;
  const cutover: CutoverRecord[] = [];
  const health: VerifyHealthResult[] = [];
  const rollbackHealth: VerifyHealthResult[] = [];

  function* finish(outcome: RestoreOutcome, succeeded: boolean, summary: string): Generator<Task, RestoreOutput, unknown> {
    status('finishing', { outcome });
    const endedAt = context.df.currentUtcDateTime.toISOString();
    const findings: FinishStepInput['findings'] = [
      ...(evidence === undefined ? [] : [{ code: 'restore.data', severity: evidence.pass ? ('ok' as const) : ('fail' as const), message: evidence.summary }]),
      ...health.map((verdict) => ({ code: 'restore.cutover.health', severity: verdict.healthy ? ('ok' as const) : ('fail' as const), message: `${verdict.targetId}: ${verdict.reason}` })),
      ...rollbackHealth.map((verdict) => ({ code: 'restore.rollback.health', severity: verdict.healthy ? ('ok' as const) : ('fail' as const), message: `${verdict.targetId}: ${verdict.reason}` })),
    ];
    const finishInput: FinishStepInput = {
      // Run record ids are uuids; instance ids need not be (restore-<uuid>, or the caller's own).
      runId,
      runbook: 'restore',
      trigger: input.trigger,
      ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }),
      startedAt,
      endedAt,
      sourceServerId: plan?.sourceServerId ?? input.request.server,
      outcome: `${outcome}: ${summary}`,
      succeeded,
      // A copy: a later log.add must not change the input recorded in the history.
      steps: [...log.steps],
      findings,
    };
    try {
      yield context.df.callActivityWithRetry(A.finish, activityRetry(), finishInput);
    } catch (error) {
      log.add('record', 'failed', `the run record or notifications failed: ${failureText(error)}`);
    }
    const output: RestoreOutput = {
      id,
      runId,
      outcome,
      succeeded,
      summary,
      ...(plan === undefined ? {} : { plan }),
      ...(found.restoredFqdn === undefined ? {} : { restoredFqdn: found.restoredFqdn }),
      ...(evidence === undefined ? {} : { evidence }),
      ...(found.approval === undefined ? {} : { approval: found.approval }),
      ...(cutover.length === 0 ? {} : { cutover }),
      ...(health.length === 0 ? {} : { health }),
      ...(rollbackHealth.length === 0 ? {} : { rollbackHealth }),
      ...(newServerKept === undefined ? {} : { newServerKept }),
      steps: log.steps,
      startedAt,
      endedAt,
    };
    status('done', { outcome, summary });
    return output;
  }

  // 1. Validate before anything is created.
  status('validating');
  try {
    plan = (yield context.df.callActivity(A.validate, { request: input.request, now: context.df.currentUtcDateTime.toISOString(), purpose: 'restore' })) as ValidatedPlan;
  } catch (error) {
    log.add('validate', 'failed', failureText(error));
    return yield* finish('invalid', false, failureText(error));
  }
  log.add('validate', 'applied', `restore ${plan.sourceName} as of ${plan.pointInTime} to ${plan.newServerName}`, plan.sourceServerId);
  const wantsCutover = input.cutover && plan.policy.cutover !== undefined;

  // 2. Create (idempotent: a replayed or retried attempt finds its own server).
  status('creating', { newServer: plan.newServerId, pointInTime: plan.pointInTime });
  let start: RestoreStart;
  try {
    start = (yield context.df.callActivityWithRetry(A.create, activityRetry(), { plan, owner: id, purpose: 'restore' })) as RestoreStart;
  } catch (error) {
    log.add('create', 'failed', failureText(error), plan.newServerId);
    return yield* finish('restore-failed', false, `the restore could not be started: ${failureText(error)}`);
  }
  log.add('create', 'applied', `${start.outcome === 'started' ? 'started' : 'found already started'} the point-in-time restore of ${plan.newServerName}`, plan.newServerId);

  // 3. Wait on durable timers.
  status('restoring', { newServer: plan.newServerId, pointInTime: plan.pointInTime });
  const waited = yield* waitForServer(context, plan, id, start, plan.policy.restoreTimeoutHours);
  if (waited.state !== 'ready') {
    log.add('wait', 'failed', waited.detail, plan.newServerId);
    return yield* finish(waited.state === 'timed-out' ? 'restore-timed-out' : 'restore-failed', false, waited.detail);
  }
  const restoredFqdn = waited.fullyQualifiedDomainName ?? `${plan.newServerName}.postgres.database.azure.com`;
  found.restoredFqdn = restoredFqdn;
  log.add('wait', 'applied', waited.detail, plan.newServerId);

  // 4. Validate the data.
  status('validating-data', { newServer: plan.newServerId });
  try {
    evidence = (yield context.df.callActivityWithRetry(A.validateData, activityRetry(), { plan, restoredFqdn, now: context.df.currentUtcDateTime.toISOString() })) as DataEvidence;
  } catch (error) {
    log.add('validate-data', 'failed', failureText(error), plan.newServerId);
    return yield* finish('validation-failed', false, `the restored data could not be validated: ${failureText(error)}`);
  }
  log.add('validate-data', evidence.pass ? 'applied' : 'failed', evidence.summary, plan.newServerId);
  if (!evidence.pass) return yield* finish('validation-failed', false, `the restored data failed validation (${evidence.summary}); ${plan.newServerName} is kept for inspection`);
  if (!wantsCutover) return yield* finish('restored', true, `${plan.newServerName} restored as of ${plan.pointInTime} and validated (no cutover requested)`);

  // 5. Approval, raced against its deadline.
  const approvalDeadline = new Date(context.df.currentUtcDateTime.getTime() + plan.policy.approval.timeoutHours * 3_600_000);
  status('awaiting-approval', { newServer: plan.newServerId, approvalDeadline: approvalDeadline.toISOString(), evidence: evidence.summary });
  log.add('approval', 'planned', `waiting for approve or reject until ${approvalDeadline.toISOString()}`);
  const approveEvent = context.df.waitForExternalEvent(APPROVAL_EVENTS.approve);
  const rejectEvent = context.df.waitForExternalEvent(APPROVAL_EVENTS.reject);
  const deadlineTimer: TimerTask = context.df.createTimer(approvalDeadline);
  const winner: unknown = yield context.df.Task.any([approveEvent, rejectEvent, deadlineTimer]);
  if (winner !== deadlineTimer) deadlineTimer.cancel();
  const now = context.df.currentUtcDateTime;
  const approval: ApprovalDecision = winner === approveEvent ? decisionOf('approved', approveEvent.result, now) : winner === rejectEvent ? decisionOf('rejected', rejectEvent.result, now) : { decision: 'timed-out', at: now.toISOString() };
  found.approval = approval;
  if (approval.decision !== 'approved') {
    const action = approval.decision === 'rejected' ? plan.policy.approval.onReject : plan.policy.approval.onTimeout;
    log.add('approval', 'skipped', approval.decision === 'rejected' ? `rejected${approval.by === undefined ? '' : ` by ${approval.by}`}${approval.reason === undefined ? '' : `: ${approval.reason}`}` : `nobody approved by ${approvalDeadline.toISOString()}`);
    newServerKept = true;
    if (action === 'delete') {
      try {
        const deleted = (yield context.df.callActivityWithRetry(A.deleteServer, activityRetry(), { serverId: plan.newServerId, owner: id, sourceServerId: plan.sourceServerId })) as string;
        newServerKept = deleted === 'not-owned';
        log.add('delete', deleted === 'not-owned' ? 'skipped' : 'applied', `${plan.newServerName}: ${deleted}`, plan.newServerId);
      } catch (error) {
        log.add('delete', 'failed', failureText(error), plan.newServerId);
      }
    }
    const outcome = approval.decision === 'rejected' ? 'rejected' : 'approval-timed-out';
    return yield* finish(outcome, false, `no cutover (${approval.decision}); ${plan.newServerName} ${newServerKept ? 'kept' : 'deleted'}`);
  }
  log.add('approval', 'applied', `approved${approval.by === undefined ? '' : ` by ${approval.by}`}`);

  // 6. Cutover, one consumer at a time.
  const consumers = plan.policy.cutover?.consumers ?? [];
  const verify = plan.policy.cutover?.verify ?? { consecutive: 3, intervalSeconds: 10, deadlineSeconds: 300 };
  status('cutting-over', { newServer: plan.newServerId, consumers: consumers.map((consumer) => consumer.id) });
  const login = plan.administratorLogin;
  function* rollbackAll(reason: string): Generator<Task, void, unknown> {
    status('rolling-back', { reason });
    for (const record of [...cutover].reverse()) {
      try {
        yield context.df.callActivityWithRetry(A.rollback, activityRetry(), { sourceServerId: plan?.sourceServerId ?? '', record, owner: id });
        log.add('rollback', 'applied', `${record.setting} of ${record.consumerId} back to its previous value`, record.consumerId);
      } catch (error) {
        log.add('rollback', 'failed', failureText(error), record.consumerId);
      }
    }
    for (const record of cutover) {
      const verdict = yield* verifyHealth(context, { targetId: record.consumerId, ...verify });
      rollbackHealth.push(verdict);
      log.add('verify-rollback', verdict.healthy ? 'applied' : 'failed', verdict.reason, record.consumerId);
    }
  }
  for (const consumer of consumers) {
    try {
      const record = (yield context.df.callActivityWithRetry(A.cutover, activityRetry(), { sourceServerId: plan.sourceServerId, consumerId: consumer.id, owner: id, fqdn: restoredFqdn, login })) as CutoverRecord;
      cutover.push(record);
      log.add('cutover', 'applied', `${record.setting} now references the restored server's connection string${record.restarted ? '; restarted' : ''}`, consumer.id);
    } catch (error) {
      log.add('cutover', 'failed', failureText(error), consumer.id);
      yield* rollbackAll(`cutover of ${consumer.id} failed`);
      return yield* finish('cutover-failed', false, `cutover of ${consumer.id} failed (${failureText(error)}); the consumers already cut over were rolled back`);
    }
  }

  // 7. Verify every consumer; roll back if any is not healthy.
  status('verifying', { consumers: consumers.map((consumer) => consumer.id) });
  for (const record of cutover) {
    const verdict = yield* verifyHealth(context, { targetId: record.consumerId, ...verify });
    health.push(verdict);
    log.add('verify', verdict.healthy ? 'applied' : 'failed', verdict.reason, record.consumerId);
  }
  const unhealthy = health.filter((verdict) => !verdict.healthy);
  if (unhealthy.length > 0) {
    yield* rollbackAll(`${unhealthy.map((verdict) => verdict.targetId).join(', ')} not healthy after the cutover`);
    const restored = rollbackHealth.every((verdict) => verdict.healthy);
    return yield* finish('rolled-back', false, `${unhealthy.length} consumer(s) not healthy on ${plan.newServerName}; previous connection strings put back (${restored ? 'healthy again' : 'STILL UNHEALTHY'}); escalated`);
  }
  return yield* finish('cut-over', true, `${cutover.length} consumer(s) on ${plan.newServerName} (restored as of ${plan.pointInTime}) and healthy; ${plan.sourceName} untouched`);
}
