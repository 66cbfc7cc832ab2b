/**
 * The one way a runbook runs, whatever triggered it (timer, CLI, HTTP, alert, orchestration).
 *
 * Steps, each exactly once:
 * 1. select the targets that opt into the runbook (optionally filtered by id);
 * 2. in `apply` mode, take the per-runbook lock (a blob lease shared by every process; see
 *    {@link ../runs/run-lock.ts}) — if another run holds it, the run ends `refused` with nothing
 *    planned or applied;
 * 3. plan every target on its own, a few at a time; a failing target is recorded failed with its
 *    typed error and never stops the others;
 * 4. ask the runbook's `refuse` guard (e.g. the deletion cap) unless forced;
 * 5. pass {@link dryRunGate} — THE dry-run gate;
 * 6. apply exactly the planned actions, each awaited and recorded applied/skipped/failed; if the
 *    lock is lost meanwhile (a lease renewal failed), start no further action and fail the run;
 * 7. record checks as findings, finish the run record, send notifications, write the record to
 *    the store and emit it to the log;
 * 8. release the lock and return the record, the plans and the exit status.
 */
import { createRunRecordStore, runRecordDestination, type StoredRunRecord } from '../runs/run-record-store.ts';
import { emitRunRecord } from '../runs/run-log.ts';
import { blobLeaseLocks, inProcessLocks, RunLockHeldError, type RunLock, type RunLockProvider } from '../runs/run-lock.ts';
import { startRun, type DetailValue, type NotificationRecord, type RunRecord, type RunTrigger, type TargetRecorder } from '../runs/run-record.ts';
import { assertNoSecrets } from '../runs/secret-guard.ts';
import { sendRunNotifications } from '../notify/send-notifications.ts';
import { targetKind, type EstateConfig, type TargetConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { forEachLimited } from '../util/concurrency.ts';
import { targetsFor, type Check, type PlannedAction, type Runbook, type RunbookContext, type TargetPlan } from './runbook.ts';

/** How a run ended, for exit codes and timers. */
export type RunExit = 'ok' | 'findings' | 'failed' | 'refused';

/** What a caller asks of {@link executeRunbook}. */
export interface ExecuteRunbookRequest {
  readonly trigger: RunTrigger;
  /** `plan` never applies; `apply` applies only if {@link dryRunGate} lets it. */
  readonly mode: 'plan' | 'apply';
  /** Apply even when the runbook's `refuse` guard objects (e.g. above the deletion cap). */
  readonly force?: boolean;
  readonly requestedBy?: string;
  readonly correlationId?: string;
  /** Only these target ids (case-insensitive); each must be a target of the runbook. */
  readonly targets?: readonly string[];
  /** Asked once with the plans before anything is applied; false keeps the run to a plan. */
  readonly confirm?: (plans: readonly TargetPlan[]) => Promise<boolean>;
  /** Lock provider; default: blob leases in the run-records container, else in-process. */
  readonly locks?: RunLockProvider;
  /** Targets planned or applied at once (default 4). */
  readonly targetConcurrency?: number;
  /**
   * Actions of one target applied at once. Default: the runbook's `applyConcurrency` hint, else 1
   * (in plan order), since actions of one target may depend on each other.
   */
  readonly actionConcurrency?: number;
  /** Write the run record to the configured store (default true). */
  readonly writeRecord?: boolean;
  /** Send notifications (default true). */
  readonly notify?: boolean;
}

/** The gate's decision. */
export interface GateDecision {
  readonly apply: boolean;
  readonly reason: string;
}

/** A run that did not go ahead, and why. */
export interface RunRefusal {
  /** `lock`: another run holds the lock; `guard`: the runbook's `refuse` objected. */
  readonly kind: 'lock' | 'guard';
  readonly message: string;
}

/** What {@link executeRunbook} returns. */
export interface ExecuteRunbookResult {
  readonly record: RunRecord;
  /** Plans of the targets that planned successfully, in target order. */
  readonly plans: readonly TargetPlan[];
  /** `ok`, `findings` (warn/fail checks), `failed` (a target, an action or the run failed), `refused`. */
  readonly exit: RunExit;
  /** One line for humans. */
  readonly summary: string;
  /** The gate's decision; undefined when the run was refused before reaching it. */
  readonly gate: GateDecision | undefined;
  readonly refusal?: RunRefusal;
  readonly notifications: readonly NotificationRecord[];
  /** Where the record went, when written. */
  readonly stored?: StoredRunRecord;
  /** Why the record could not be written (the run then counts as failed). */
  readonly recordError?: string;
}

/** Thrown before anything runs when `request.targets` names something the runbook does not cover. */
export class RunbookTargetError extends OpsAutopilotError {
  override readonly name: string = 'RunbookTargetError';
}

/**
 * Recorded as the run's error when the lock was lost while applying (a lease renewal failed, so
 * another run may have taken it): the actions not yet started were left unapplied.
 */
export class RunLockLostError extends OpsAutopilotError {
  override readonly name: string = 'RunLockLostError';
}

/** Recorded as the run's error when the `refuse` guard stopped it. */
export class RunRefusedError extends OpsAutopilotError {
  override readonly name: string = 'RunRefusedError';
}

/**
 * THE dry-run gate, used by every trigger: actions are applied only when
 * - the caller asked for `apply` (a `plan` never applies), and
 * - the estate config has `dryRun: false` (the config is the authority; no trigger or flag can
 *   override it), and
 * - there is something to apply, and
 * - `confirm` is absent or answers true (the CLI asks a person; timers pass none).
 */
export async function dryRunGate(input: {
  readonly mode: 'plan' | 'apply';
  readonly dryRun: boolean;
  readonly plans: readonly TargetPlan[];
  readonly confirm?: (plans: readonly TargetPlan[]) => Promise<boolean>;
}): Promise<GateDecision> {
  if (input.mode === 'plan') return { apply: false, reason: 'plan mode: read-only, nothing applied' };
  if (input.dryRun) return { apply: false, reason: 'dryRun is true in the estate config: the gate kept the run to a plan' };
  const count = input.plans.reduce((total, plan) => total + plan.actions.length, 0);
  if (count === 0) return { apply: false, reason: 'nothing to apply: the plan has no actions' };
  if (input.confirm !== undefined && !(await input.confirm(input.plans))) {
    return { apply: false, reason: 'not confirmed: nothing applied' };
  }
  return { apply: true, reason: `applying ${count} planned action(s)` };
}

function checkDetails(check: Check): Record<string, DetailValue> {
  return { expected: check.expected, found: check.found };
}

function actionDetails(action: PlannedAction): Record<string, DetailValue> {
  return { ...action.details, actionId: action.id, destructive: action.destructive };
}

function hasStore(config: EstateConfig): boolean {
  return config.runRecords.blobServiceUrl !== undefined || config.runRecords.storageAccountId !== undefined;
}

async function defaultLocks(context: RunbookContext): Promise<{ provider: RunLockProvider; note: string | undefined }> {
  const { config } = context;
  if (!hasStore(config)) {
    return {
      provider: inProcessLocks(),
      note: 'lock: in-process only, because runRecords is not configured; runs in other processes or instances are not excluded',
    };
  }
  const service = await context.clients.blobServiceClient(runRecordDestination(config));
  return { provider: blobLeaseLocks(service.getContainerClient(config.runRecords.container)), note: undefined };
}

function selectTargets<TPolicy>(runbook: Runbook<TPolicy>, config: EstateConfig, ids: readonly string[] | undefined): { target: TargetConfig; policy: TPolicy }[] {
  const all = targetsFor(runbook, config);
  if (ids === undefined) return all;
  const wanted = new Set(ids.map((id) => id.toLowerCase().replace(/\/+$/, '')));
  const selected = all.filter(({ target }) => wanted.has(target.id.toLowerCase().replace(/\/+$/, '')));
  if (selected.length !== wanted.size) {
    const known = new Set(all.map(({ target }) => target.id.toLowerCase()));
    const unknown = ids.filter((id) => !known.has(id.toLowerCase().replace(/\/+$/, '')));
    throw new RunbookTargetError(
      `runbook ${runbook.name} on estate ${config.estate}: expected targets that opt into it (${all.map(({ target }) => target.id).join(', ') || 'none'}), found ${unknown.join(', ')}`,
      { context: { runbook: runbook.name, estate: config.estate, unknown } },
    );
  }
  return selected;
}

/**
 * Runs a runbook over the estate of `context.config`; see the module comment for the steps.
 * Never fire-and-forget: every plan, apply, record write and notification is awaited before
 * it returns. Throws only for a wrong request ({@link RunbookTargetError}); every failure
 * during the run ends up in the record and in `exit`.
 */
export async function executeRunbook<TPolicy>(
  runbook: Runbook<TPolicy>,
  context: RunbookContext,
  request: ExecuteRunbookRequest,
): Promise<ExecuteRunbookResult> {
  const { config } = context;
  const selected = selectTargets(runbook, config, request.targets);
  const recorder = startRun({
    runbook: runbook.name,
    trigger: request.trigger,
    dryRun: request.mode === 'plan' || config.dryRun,
    estate: config.estate,
    now: context.now,
    ...(request.requestedBy === undefined ? {} : { requestedBy: request.requestedBy }),
    ...(request.correlationId === undefined ? {} : { correlationId: request.correlationId }),
  });
  const notes: string[] = [];
  const targetConcurrency = request.targetConcurrency ?? 4;

  // Step 2: the lock. A plan is read-only, so it needs none (taking a lease is itself a write).
  let lock: RunLock | undefined;
  if (request.mode === 'apply') {
    try {
      const { provider, note } = request.locks === undefined ? await defaultLocks(context) : { provider: request.locks, note: undefined };
      if (note !== undefined) {
        notes.push(note);
        context.logger.log('warn', { event: 'run.lock', runbook: runbook.name, estate: config.estate, message: note });
      }
      lock = await provider.acquire(config.estate, runbook.name);
      notes.push(`lock: ${lock.kind} ${lock.location}`);
    } catch (error) {
      const held = error instanceof RunLockHeldError;
      notes.push(held ? `refused: ${error.message}` : `lock could not be taken: ${errorMessage(error)}`);
      const record = recorder.finish({ error, notes, ...(held ? { cancelled: true } : {}) });
      return finishRun({
        runbook: runbook.name,
        context,
        request,
        record,
        plans: [],
        gate: undefined,
        ...(held ? { refusal: { kind: 'lock', message: error.message } } : {}),
        notify: !held,
      });
    }
  } else {
    notes.push('lock: none (plan mode is read-only)');
  }

  try {
    // Step 3: plan each target on its own.
    const planned: ({ target: TargetConfig; policy: TPolicy; plan: TargetPlan; recorder: TargetRecorder } | undefined)[] = new Array<undefined>(selected.length);
    let planDone = 0;
    await forEachLimited(selected, targetConcurrency, async ({ target, policy }, index) => {
      const kind = targetKind(target);
      const targetRecorder = recorder.target(target.id, kind);
      try {
        const plan = await runbook.plan(context, target, policy);
        for (const check of plan.checks) {
          targetRecorder.finding({
            severity: check.status,
            code: check.code,
            message: check.message,
            details: checkDetails(check),
            ...(check.resource === undefined ? {} : { resource: check.resource }),
          });
        }
        planned[index] = { target, policy, plan, recorder: targetRecorder };
      } catch (error) {
        targetRecorder.fail(error, 'plan');
      } finally {
        planDone += 1;
        context.progress?.({ phase: 'plan', targetId: target.id, done: planDone, total: selected.length });
      }
    });
    const ready = planned.filter((entry): entry is NonNullable<typeof entry> => entry !== undefined);
    const plans = ready.map((entry) => entry.plan);

    // Step 4: the whole-plan guard, told whether the caller forced. A reason returned even
    // when forced is a hard refusal the runbook insists on.
    const force = request.force === true;
    const objection = runbook.refuse?.(context, plans, { force });
    let refusal: RunRefusal | undefined;
    if (objection !== undefined) {
      if (request.mode === 'apply') refusal = { kind: 'guard', message: objection };
      else notes.push(`an apply would be refused${force ? '' : ' without --force'}: ${objection}`);
    } else if (force && runbook.refuse !== undefined) {
      notes.push('forced: the refuse guard was told to let the plan through');
    }

    // Step 5: the gate (only when not refused).
    const gate = refusal === undefined ? await dryRunGate({ mode: request.mode, dryRun: config.dryRun, plans, ...(request.confirm === undefined ? {} : { confirm: request.confirm }) }) : undefined;
    notes.push(refusal === undefined ? `gate: ${gate?.reason ?? ''}` : `refused: ${refusal.message}`);

    // Step 6: apply exactly the planned actions, or record them as planned.
    const state = { cancelled: false };
    if (gate?.apply === true) {
      const total = plans.reduce((sum, plan) => sum + plan.actions.length, 0);
      let applyDone = 0;
      await forEachLimited(ready, targetConcurrency, async ({ target, policy, plan, recorder: targetRecorder }) => {
        const actionConcurrency = request.actionConcurrency ?? runbook.applyConcurrency?.(context, target) ?? 1;
        await forEachLimited(plan.actions, actionConcurrency, async (action) => {
          if (context.signal?.aborted === true) {
            state.cancelled = true;
            targetRecorder.action({ action: action.kind, outcome: 'planned', message: `not applied (cancelled): ${action.description}`, resource: action.resource, details: actionDetails(action) });
            return;
          }
          // A lost lease means another run may hold the lock now: start nothing more.
          const lostLock = lock?.lost();
          if (lostLock !== undefined) {
            targetRecorder.action({ action: action.kind, outcome: 'planned', message: `not applied (lock lost: ${lostLock}): ${action.description}`, resource: action.resource, details: actionDetails(action) });
            return;
          }
          try {
            const result = await runbook.apply(context, target, policy, action);
            targetRecorder.action({ action: action.kind, outcome: result.outcome, message: `${action.description}: ${result.message}`, resource: action.resource, details: actionDetails(action) });
          } catch (error) {
            targetRecorder.action({ action: action.kind, outcome: 'failed', message: `${action.description}: ${errorMessage(error)}`, resource: action.resource, details: { ...actionDetails(action), errorName: error instanceof Error ? error.name : 'Error' } });
          } finally {
            applyDone += 1;
            context.progress?.({ phase: 'apply', targetId: target.id, done: applyDone, total });
          }
        });
      });
    } else {
      const why = refusal === undefined ? (gate?.reason ?? '') : `refused: ${refusal.message}`;
      for (const { plan, recorder: targetRecorder } of ready) {
        for (const action of plan.actions) {
          targetRecorder.action({ action: action.kind, outcome: 'planned', message: `${action.description} (not applied: ${why})`, resource: action.resource, details: actionDetails(action) });
        }
      }
    }
    const lost = lock?.lost();
    if (lost !== undefined) notes.push(`lock lost during the run: ${lost}`);
    const lostError =
      lost !== undefined && gate?.apply === true
        ? new RunLockLostError(`runbook ${runbook.name} on estate ${config.estate}: expected to hold the lock ${lock?.location ?? ''} until the end, found it lost (${lost}); actions not yet started were not applied`, {
            context: { runbook: runbook.name, estate: config.estate },
          })
        : undefined;
    const record = recorder.finish({
      notes,
      ...(refusal === undefined
        ? lostError === undefined
          ? {}
          : { error: lostError }
        : { error: new RunRefusedError(refusal.message, { context: { runbook: runbook.name, estate: config.estate } }) }),
      ...(state.cancelled ? { cancelled: true } : {}),
    });
    return await finishRun({ runbook: runbook.name, context, request, record, plans, gate, ...(refusal === undefined ? {} : { refusal }), notify: true, releaseLock: lock });
  } catch (error) {
    // Only the executor's own machinery can land here (runbook errors are caught per target).
    notes.push(`run failed: ${errorMessage(error)}`);
    const record = recorder.finish({ error, notes });
    return finishRun({ runbook: runbook.name, context, request, record, plans: [], gate: undefined, notify: true, releaseLock: lock });
  }
}

/** Step 7 and 8: release the lock, notify, write and emit the record, compute the exit. */
async function finishRun(input: {
  runbook: string;
  context: RunbookContext;
  request: ExecuteRunbookRequest;
  record: RunRecord;
  plans: readonly TargetPlan[];
  gate: GateDecision | undefined;
  refusal?: RunRefusal;
  notify: boolean;
  releaseLock?: RunLock | undefined;
}): Promise<ExecuteRunbookResult> {
  const { context, request } = input;
  const { config } = context;
  let record: RunRecord = { ...input.record, dryRun: input.gate?.apply !== true };
  if (input.releaseLock !== undefined) {
    try {
      await input.releaseLock.release();
    } catch (error) {
      // The lease expires on its own within a minute; the run's outcome stands.
      record = { ...record, notes: [...(record.notes ?? []), `lock release failed (it expires by itself): ${errorMessage(error)}`] };
    }
  }
  let notifications: NotificationRecord[] = [];
  if (input.notify && request.notify !== false && config.notifications.webhooks.length > 0) {
    const agent = await context.clients.agent();
    notifications = await sendRunNotifications(config, record, agent === undefined ? {} : { agent });
    if (notifications.length > 0) record = { ...record, notifications };
  }
  assertNoSecrets(record, `run record ${record.runId}`);
  let stored: StoredRunRecord | undefined;
  let recordError: string | undefined;
  if (request.writeRecord !== false && hasStore(config)) {
    try {
      const store = await createRunRecordStore(config, context.clients);
      stored = await store.write(record);
    } catch (error) {
      recordError = errorMessage(error);
    }
  }
  emitRunRecord(record, context.logger);
  for (const notification of notifications) {
    context.logger.log(notification.outcome === 'failed' ? 'error' : 'info', {
      event: 'run.notification',
      runId: record.runId,
      runbook: record.runbook,
      estate: record.estate,
      webhook: notification.webhook,
      outcome: notification.outcome,
      message: notification.message,
    });
  }
  if (recordError !== undefined) {
    context.logger.log('error', { event: 'run.record.failed', runId: record.runId, runbook: record.runbook, estate: record.estate, message: recordError });
  }
  const { summary: counts } = record;
  const anyFailure = record.status !== 'succeeded' || counts.actions.failed > 0 || recordError !== undefined;
  const exit: RunExit =
    input.refusal !== undefined ? 'refused' : anyFailure ? 'failed' : counts.findings.fail + counts.findings.warn > 0 ? 'findings' : 'ok';
  const summary = [
    `${input.runbook} on ${record.estate}: ${exit}`,
    `${counts.targets} target(s)${counts.targetsFailed > 0 ? `, ${counts.targetsFailed} failed` : ''}`,
    `checks ${counts.findings.ok ?? 0} ok / ${counts.findings.warn} warn / ${counts.findings.fail} fail`,
    `actions ${counts.actions.applied} applied / ${counts.actions.skipped} skipped / ${counts.actions.failed} failed / ${counts.actions.planned} planned`,
    input.refusal === undefined ? (input.gate?.reason ?? 'not run') : `refused: ${input.refusal.message}`,
    ...(recordError === undefined ? [] : [`run record not written: ${recordError}`]),
  ].join('; ');
  return {
    record,
    plans: input.plans,
    exit,
    summary,
    gate: input.gate,
    notifications,
    ...(input.refusal === undefined ? {} : { refusal: input.refusal }),
    ...(stored === undefined ? {} : { stored }),
    ...(recordError === undefined ? {} : { recordError }),
  };
}
