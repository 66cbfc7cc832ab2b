/**
 * The one way a runbook runs, whatever triggered it (timer, CLI, HTTP, alert, orchestration).
 *
 * Steps, each exactly once:
 * 1. select the targets that opt into the runbook (optionally those named: id, name or unique
 *    end of the id);
 * 2. in `apply` mode with `dryRun: false`, take the per-runbook lock (a blob lease shared by every process; see
 *    {@link ../runs/run-lock.ts}) — if another run holds it, the run ends `refused` with nothing
 *    planned or applied;
 * 3. plan every target on its own, a few at a time; a failing target is recorded failed with its
 *    typed error and never stops the others. In `apply` mode (with `dryRun: false`) each target's
 *    resource lock ({@link ../runs/resource-lock.ts}) is held from before its plan to its last
 *    action, so no remediation or other operation changes it in between; a target whose lock
 *    another operation holds is skipped;
 * 4. ask the runbook's `refuse` guard (e.g. the deletion cap) unless forced — in plan mode too,
 *    so a plan ends `refused` when its apply would;
 * 5. pass {@link dryRunGate} — THE dry-run gate (a declined or cancelled confirmation closes it:
 *    the record says cancelled and nobody is notified);
 * 6. apply exactly the planned actions, each awaited and recorded applied/skipped/failed; if the
 *    lock is lost meanwhile (a lease renewal failed), start no further action and fail the run;
 * 7. record checks as findings, finish the run record, send notifications, write the record to
 *    the store and emit it to the log;
 * 8. release the lock and return the record, the plans and the exit status.
 */
import { createRunRecordStore, runRecordDestination, type StoredRunRecord } from '../runs/run-record-store.ts';
import { emitRunRecord } from '../runs/run-log.ts';
import { blobLeaseLocks, inProcessLocks, RunLockHeldError, RunLockUnavailableError, type RunLock, type RunLockProvider } from '../runs/run-lock.ts';
import { AuthorizationFailedError, AzureCredentialError, TransientAzureError } from '../azure/errors.ts';
import { ResourceLockHeldError, resourceLocksFor, type ResourceLock, type ResourceLockProvider } from '../runs/resource-lock.ts';
import type { RunJournal } from '../runs/run-journal.ts';
import { startRun, type DetailValue, type NotificationRecord, type RunRecord, type RunTrigger, type TargetRecorder } from '../runs/run-record.ts';
import { assertNoSecrets } from '../runs/secret-guard.ts';
import { sendRunNotifications } from '../notify/send-notifications.ts';
import { targetKind, type EstateConfig, type TargetConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { selectorMatches, selectTargetsBy, TargetSelectorError } from '../config/target-selector.ts';
import { forEachLimited } from '../util/concurrency.ts';
import { resolveTargets, scopeReaches, selectionOf, unavailableScopesFor, type TargetResolution, type TargetSelection } from '../config/resolve.ts';
import { armScopeDiscovery } from '../azure/discovery.ts';
import { targetsFor, type Check, type PlannedAction, type Runbook, type RunbookContext, type TargetPlan } from './runbook.ts';

/**
 * How a run ended, for exit codes and timers. `refused`: the lock or the runbook's guard stopped
 * it (in plan mode: an apply would be refused); `declined`: the person asked said no;
 * `cancelled`: stopped on request (Ctrl-C at the prompt or during the run).
 */
export type RunExit = 'ok' | 'findings' | 'failed' | 'refused' | 'declined' | 'cancelled';

/**
 * A person's answer to the confirmation: true applies, false declines, `cancelled` stops the
 * run (Ctrl-C or end of input at the prompt).
 */
export type ConfirmAnswer = boolean | 'cancelled';

/** What a caller asks of {@link executeRunbook}. */
export interface ExecuteRunbookRequest {
  readonly trigger: RunTrigger;
  /** `plan` never applies; `apply` applies only if {@link dryRunGate} lets it. */
  readonly mode: 'plan' | 'apply';
  /** Apply even when the runbook's `refuse` guard objects (e.g. above the deletion cap). */
  readonly force?: boolean;
  readonly requestedBy?: string;
  readonly correlationId?: string;
  /**
   * Only these targets, each given as its full id, its name or a unique path suffix of its id
   * (see {@link selectTargetsBy}); each must be a target of the runbook.
   */
  readonly targets?: readonly string[];
  /** Asked once with the plans before anything is applied; only true applies. */
  readonly confirm?: (plans: readonly TargetPlan[]) => Promise<ConfirmAnswer>;
  /** Lock provider; default: blob leases in the run-records container, else in-process. */
  readonly locks?: RunLockProvider;
  /** Per-resource lock provider; default: blob leases in the run-records container, else in-process. */
  readonly resourceLocks?: ResourceLockProvider;
  /**
   * The run id (a uuid; default a new one). A caller that may retry one run (a durable activity)
   * passes the same id each time: the locks' lease ids derive from it, so a retry re-enters the
   * locks its crashed attempt held, and the record keeps the id the caller announced.
   */
  readonly runId?: string;
  /** What earlier attempts of this run applied; see {@link ../runs/run-journal.ts}. */
  readonly journal?: RunJournal;
  /** Targets planned or applied at once (default 4). */
  readonly targetConcurrency?: number;
  /**
   * Actions of one target applied at once. Default: the runbook's `applyConcurrency` hint, else 1
   * (in plan order), since actions of one target may depend on each other.
   */
  readonly actionConcurrency?: number;
  /**
   * Write the run record to the configured store (default true: timers record every run). The
   * CLI passes false for a plan or a dry run unless asked (`--record`), so a preview writes nothing.
   */
  readonly writeRecord?: boolean;
  /** Send notifications (default true). The CLI passes false for a preview unless asked (`--notify`). */
  readonly notify?: boolean;
}

/** The gate's decision. */
export interface GateDecision {
  readonly apply: boolean;
  readonly reason: string;
  /** Set when the confirmation closed the gate: the person declined, or cancelled. */
  readonly answer?: 'declined' | 'cancelled';
}

/** A run that did not go ahead (or, for a plan, an apply that would not), and why. */
export interface RunRefusal {
  /** `lock`: another run holds the lock; `guard`: the runbook's `refuse` objected. */
  readonly kind: 'lock' | 'guard';
  readonly message: string;
  /** A plan: nothing was refused yet, but an apply of this plan would be. */
  readonly preview?: boolean;
}

/** How a refusal reads in one line: `refused: ...` or, for a plan, `an apply would be refused: ...`. */
export function refusalLine(refusal: RunRefusal): string {
  return `${refusal.preview === true ? 'an apply would be refused' : 'refused'}: ${refusal.message}`;
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
  /** Per selected target: which scope or entry selected it and which policy won (plans show it). */
  readonly selection?: readonly TargetSelection[];
}

/** A scope's resources could not be listed, so the run did nothing in its reach. */
export class ScopeUnavailableError extends OpsAutopilotError {
  override readonly name: string = 'ScopeUnavailableError';
}

/**
 * Thrown before anything runs when `request.targets` names something the runbook does not
 * cover: no target, several, or a target of the estate that does not opt into the runbook.
 */
export class RunbookTargetError extends TargetSelectorError {
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
  readonly confirm?: (plans: readonly TargetPlan[]) => Promise<ConfirmAnswer>;
  /** Aborted (Ctrl-C) before the gate: nothing is applied. */
  readonly signal?: AbortSignal;
}): Promise<GateDecision> {
  if (input.mode === 'plan') return { apply: false, reason: 'plan mode: read-only, nothing applied' };
  if (input.dryRun) return { apply: false, reason: 'nothing applied: dryRun is true in the estate config, the gate kept the run to a plan' };
  const count = input.plans.reduce((total, plan) => total + plan.actions.length, 0);
  if (count === 0) return { apply: false, reason: 'nothing to apply: the plan has no actions' };
  const cancelled: GateDecision = { apply: false, reason: 'cancelled: nothing applied', answer: 'cancelled' };
  // A function, not a narrowed property: the signal may fire while confirm is awaited.
  const aborted = (): boolean => input.signal?.aborted === true;
  if (aborted()) return cancelled;
  if (input.confirm !== undefined) {
    const answer = await input.confirm(input.plans);
    if (answer === 'cancelled' || aborted()) return cancelled;
    if (!answer) return { apply: false, reason: 'declined at the confirmation: nothing applied', answer: 'declined' };
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

/** Wraps a failure to take the lock from the run-record store, naming the store and the cause. */
function lockUnavailable(runbook: string, config: EstateConfig, cause: unknown): RunLockUnavailableError {
  const field = config.runRecords.blobServiceUrl !== undefined ? 'runRecords.blobServiceUrl' : 'runRecords.storageAccountId';
  let store = 'none configured';
  try {
    store = runRecordDestination(config);
  } catch {
    // No store at all: the in-process lock never fails this way; keep the wording generic.
  }
  const found =
    cause instanceof TransientAzureError
      ? 'it unreachable'
      : cause instanceof AuthorizationFailedError
        ? 'access to it denied'
        : cause instanceof AzureCredentialError
          ? 'no token for it'
          : 'it failing';
  return new RunLockUnavailableError(
    `the run lock could not be taken: expected the run-record store ${store} (${field}) to be reachable, found ${found} (${errorMessage(cause)}); runbook ${runbook} on estate ${config.estate}: nothing was planned or applied`,
    { context: { runbook, estate: config.estate, store }, cause },
  );
}

/**
 * The targets of `runbook` a request names (`selectors`: a full id, a name or a unique end of
 * the id), or all of them. Triggers that start a run later (an orchestration) call it first, to
 * answer a wrong target at once. `resolution` is the estate's resolved targets
 * ({@link resolveTargets}); without it, the config's explicit entries only.
 *
 * @throws {@link RunbookTargetError} naming the unknown or ambiguous ones.
 */
export function selectRunTargets<TPolicy>(
  runbook: Runbook<TPolicy>,
  config: EstateConfig,
  selectors: readonly string[] | undefined,
  resolution: { readonly targets: readonly TargetConfig[] } = { targets: config.targets },
): { target: TargetConfig; policy: TPolicy }[] {
  const all = targetsFor(runbook, resolution.targets);
  if (selectors === undefined) return all;
  const candidates = all.map((entry) => ({ id: entry.target.id, entry }));
  try {
    return selectTargetsBy(candidates, selectors, `targets of ${runbook.name} on estate ${config.estate}`).map(({ entry }) => entry);
  } catch (error) {
    if (!(error instanceof TargetSelectorError)) throw error;
    // Say so when an unknown selector names a target of the estate that does not opt in.
    const notOptedIn = error.problems
      .filter((problem) => problem.problem === 'unknown')
      .flatMap((problem) => resolution.targets.filter((target) => selectorMatches(problem.selector, target.id)).map((target) => `"${problem.selector}" is ${target.id}, which has no ${runbook.name} policy`));
    const message = `runbook ${runbook.name}: ${error.message}${notOptedIn.length === 0 ? '' : ` (${notOptedIn.join('; ')})`}`;
    throw new RunbookTargetError(message, error.problems, { runbook: runbook.name, estate: config.estate });
  }
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
  // Step 0: the targets, resolved once for the run (scopes listed through ARM); a caller that
  // resolved already (a trigger answering a wrong --target at once) passes its resolution.
  let resolution: TargetResolution;
  let resolutionError: unknown;
  try {
    resolution = context.resolution ?? (await resolveTargets(config, { discovery: armScopeDiscovery(context.clients), ...(context.signal === undefined ? {} : { signal: context.signal }) }));
  } catch (error) {
    resolution = { targets: [], warnings: [], unavailable: [], excluded: [] };
    resolutionError = error;
  }
  context = { ...context, resolution };
  // Targets a scope whose discovery failed could have selected get nothing of this runbook: acting
  // on them without the scope's policy (or missing the scope's other matches) is not safe.
  const unavailable = unavailableScopesFor(config, resolution, runbook.name);
  const selected = selectRunTargets(runbook, config, request.targets, resolution).filter(({ target }) => !unavailable.some((entry) => {
    const scope = config.scopes[entry.index];
    return scope !== undefined && scopeReaches(scope, target.id);
  }));
  const recorder = startRun({
    runbook: runbook.name,
    trigger: request.trigger,
    dryRun: request.mode === 'plan' || config.dryRun,
    estate: config.estate,
    now: context.now,
    ...(request.runId === undefined ? {} : { runId: request.runId }),
    ...(request.requestedBy === undefined ? {} : { requestedBy: request.requestedBy }),
    ...(request.correlationId === undefined ? {} : { correlationId: request.correlationId }),
  });
  const notes: string[] = [];
  for (const warning of resolution.warnings) notes.push(`targets: ${warning}`);
  for (const entry of unavailable) {
    const scope = config.scopes[entry.index];
    const reach = scope === undefined ? entry.scope : `/subscriptions/${scope.subscription}${scope.resourceGroups?.length === 1 ? `/resourceGroups/${scope.resourceGroups[0] ?? ''}` : ''}`;
    recorder.target(reach).fail(new ScopeUnavailableError(`${entry.reason}; ${runbook.name} did nothing for the resources it could select`, { context: { scope: entry.scope, runbook: runbook.name } }), 'discover');
  }
  if (resolutionError !== undefined) {
    notes.push(`targets not resolved: ${errorMessage(resolutionError)}`);
    const record = recorder.finish({ error: resolutionError, notes });
    return finishRun({ runbook: runbook.name, context, request, record, plans: [], gate: undefined, notRun: errorMessage(resolutionError), notify: true });
  }
  const targetConcurrency = request.targetConcurrency ?? 4;
  // Resource locks held, released when their target is done (and any left at the end).
  const targetLocks = new Set<ResourceLock>();
  const releaseTargetLock = async (held: ResourceLock | undefined): Promise<void> => {
    if (held === undefined || !targetLocks.delete(held)) return;
    try {
      await held.release();
    } catch (error) {
      notes.push(`resource lock release failed (it expires by itself): ${errorMessage(error)}`);
    }
  };
  const releaseTargetLocks = async (): Promise<void> => {
    await Promise.all([...targetLocks].map((held) => releaseTargetLock(held)));
  };

  // Step 2: the lock. A plan, and a dry run (the gate cannot open with dryRun: true), is
  // read-only, so it needs none (taking a lease is itself a write).
  let lock: RunLock | undefined;
  let resourceLocks: ResourceLockProvider | undefined;
  if (request.mode === 'apply' && !config.dryRun) {
    try {
      const { provider, note } = request.locks === undefined ? await defaultLocks(context) : { provider: request.locks, note: undefined };
      if (note !== undefined) {
        notes.push(note);
        context.logger.log('warn', { event: 'run.lock', runbook: runbook.name, estate: config.estate, message: note });
      }
      lock = await provider.acquire(config.estate, runbook.name, { owner: recorder.runId });
      notes.push(`lock: ${lock.kind} ${lock.location}`);
      if (request.resourceLocks === undefined) {
        const resources = await resourceLocksFor(config, context.clients);
        resourceLocks = resources.provider;
        if (resources.note !== undefined) notes.push(resources.note);
      } else {
        resourceLocks = request.resourceLocks;
      }
    } catch (error) {
      if (error instanceof RunLockHeldError) {
        notes.push(`refused: ${error.message}`);
        const record = recorder.finish({ error, notes, cancelled: true });
        return finishRun({ runbook: runbook.name, context, request, record, plans: [], gate: undefined, refusal: { kind: 'lock', message: error.message }, notify: false });
      }
      // Without the lock nothing may run; say why, naming the store, rather than leave an
      // empty run that reads like "no targets".
      const unavailable = lockUnavailable(runbook.name, config, error);
      notes.push(unavailable.message);
      const record = recorder.finish({ error: unavailable, notes });
      // The record cannot go to the store that was just found unreachable; it goes to the log.
      return finishRun({ runbook: runbook.name, context, request, record, plans: [], gate: undefined, notRun: unavailable.message, notify: true, storeUnavailable: true });
    }
  } else {
    notes.push(request.mode === 'plan' ? 'lock: none (plan mode is read-only)' : 'lock: none (dryRun: nothing can be applied)');
  }

  try {
    // Step 3: plan each target on its own.
    const planned: ({ target: TargetConfig; policy: TPolicy; plan: TargetPlan; recorder: TargetRecorder; resourceLock: ResourceLock | undefined } | undefined)[] = new Array<undefined>(selected.length);
    let planDone = 0;
    await forEachLimited(selected, targetConcurrency, async ({ target, policy }, index) => {
      const kind = targetKind(target);
      const targetRecorder = recorder.target(target.id, kind);
      let resourceLock: ResourceLock | undefined;
      try {
        // The target's own lock, from before the plan to its last action.
        if (resourceLocks !== undefined) {
          try {
            resourceLock = await resourceLocks.acquire(target.id, { owner: recorder.runId, purpose: `${runbook.name} run ${recorder.runId}` });
            targetLocks.add(resourceLock);
          } catch (error) {
            // Another operation on this resource is normal overlap: skip it, as a held run lock refuses.
            if (!(error instanceof ResourceLockHeldError)) throw error;
            targetRecorder.skip(`not planned: ${error.message}`);
            return;
          }
        }
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
        planned[index] = { target, policy, plan, recorder: targetRecorder, resourceLock };
      } catch (error) {
        targetRecorder.fail(error, resourceLock === undefined && resourceLocks !== undefined ? 'lock resource' : 'plan');
        await releaseTargetLock(resourceLock);
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
    // A plan reports what an apply would refuse, and ends `refused` as the apply would.
    const objection = runbook.refuse?.(context, plans, { force });
    let refusal: RunRefusal | undefined;
    if (objection !== undefined) {
      refusal = { kind: 'guard', message: objection, ...(request.mode === 'plan' ? { preview: true } : {}) };
    } else if (force && runbook.refuse !== undefined) {
      notes.push('forced: the refuse guard was told to let the plan through');
    }

    // Step 5: the gate (only when not refused).
    const gate =
      refusal === undefined
        ? await dryRunGate({
            mode: request.mode,
            dryRun: config.dryRun,
            plans,
            ...(request.confirm === undefined ? {} : { confirm: request.confirm }),
            ...(context.signal === undefined ? {} : { signal: context.signal }),
          })
        : undefined;
    notes.push(refusal === undefined ? `gate: ${gate?.reason ?? ''}` : refusalLine(refusal));

    // Step 6: apply exactly the planned actions, or record them as planned.
    const state = { cancelled: false };
    if (gate?.apply === true) {
      const total = plans.reduce((sum, plan) => sum + plan.actions.length, 0);
      let applyDone = 0;
      await forEachLimited(ready, targetConcurrency, async ({ target, policy, plan, recorder: targetRecorder, resourceLock }) => {
        const actionConcurrency = request.actionConcurrency ?? runbook.applyConcurrency?.(context, target) ?? 1;
        await forEachLimited(plan.actions, actionConcurrency, async (action) => {
          if (context.signal?.aborted === true) {
            state.cancelled = true;
            targetRecorder.action({ action: action.kind, outcome: 'planned', message: `not applied (cancelled): ${action.description}`, resource: action.resource, details: actionDetails(action) });
            return;
          }
          // A lost lease means another run may hold the lock now: start nothing more.
          const lostLock = lock?.lost() ?? resourceLock?.lost();
          if (lostLock !== undefined) {
            targetRecorder.action({ action: action.kind, outcome: 'planned', message: `not applied (lock lost: ${lostLock}): ${action.description}`, resource: action.resource, details: actionDetails(action) });
            return;
          }
          // An earlier attempt of this run (crashed, retried with the same run id) applied it already.
          const earlier = request.journal?.earlier(target.id, action.id);
          if (earlier !== undefined) {
            targetRecorder.action({ ...earlier.action, message: `${earlier.action.message} (in an earlier attempt of this run, not applied again)` });
            applyDone += 1;
            return;
          }
          try {
            const result = await runbook.apply(context, target, policy, action);
            const entry = { action: action.kind, outcome: result.outcome, message: `${action.description}: ${result.message}`, resource: action.resource, details: actionDetails(action) };
            targetRecorder.action(entry);
            request.journal?.record({ targetId: target.id, actionId: action.id, action: { ...entry, at: context.now().toISOString() } });
          } catch (error) {
            targetRecorder.action({ action: action.kind, outcome: 'failed', message: `${action.description}: ${errorMessage(error)}`, resource: action.resource, details: { ...actionDetails(action), errorName: error instanceof Error ? error.name : 'Error' } });
          } finally {
            applyDone += 1;
            context.progress?.({ phase: 'apply', targetId: target.id, done: applyDone, total });
          }
        });
        const lostTarget = resourceLock?.lost();
        if (lostTarget !== undefined) targetRecorder.fail(new RunLockLostError(`resource ${target.id}: expected to hold its lock until the last action, found it lost (${lostTarget}); actions not yet started were not applied`, { context: { resourceId: target.id } }), 'apply');
        await releaseTargetLock(resourceLock);
      });
      // What an earlier attempt applied that this attempt's plan no longer contains (done already).
      for (const entry of request.journal?.unseen() ?? []) {
        recorder.target(entry.targetId).action({ ...entry.action, message: `${entry.action.message} (in an earlier attempt of this run)` });
      }
      const journalProblem = await request.journal?.flush();
      if (journalProblem !== undefined) notes.push(journalProblem);
    } else {
      const why = refusal === undefined ? (gate?.reason ?? '') : refusalLine(refusal);
      for (const { plan, recorder: targetRecorder } of ready) {
        for (const action of plan.actions) {
          targetRecorder.action({ action: action.kind, outcome: 'planned', message: `${action.description} (not applied: ${why})`, resource: action.resource, details: actionDetails(action) });
        }
      }
    }
    await releaseTargetLocks();
    const lost = lock?.lost();
    if (lost !== undefined) notes.push(`lock lost during the run: ${lost}`);
    const lostError =
      lost !== undefined && gate?.apply === true
        ? new RunLockLostError(`runbook ${runbook.name} on estate ${config.estate}: expected to hold the lock ${lock?.location ?? ''} until the end, found it lost (${lost}); actions not yet started were not applied`, {
            context: { runbook: runbook.name, estate: config.estate },
          })
        : undefined;
    // The confirmation closed the gate: the person said no, or cancelled. Nothing was applied,
    // so nobody is notified; the record (when written) says cancelled.
    const answered = gate?.answer !== undefined;
    const record = recorder.finish({
      notes,
      ...(refusal === undefined || request.mode === 'plan'
        ? lostError === undefined
          ? {}
          : { error: lostError }
        : { error: new RunRefusedError(refusal.message, { context: { runbook: runbook.name, estate: config.estate } }) }),
      ...(state.cancelled || answered ? { cancelled: true } : {}),
    });
    return await finishRun({
      runbook: runbook.name,
      context,
      request,
      record,
      plans,
      gate,
      ...(refusal === undefined ? {} : { refusal }),
      notify: !answered,
      releaseLock: lock,
      ...(state.cancelled || gate?.answer === 'cancelled' ? { cancelled: true } : {}),
    });
  } catch (error) {
    // Only the executor's own machinery can land here (runbook errors are caught per target).
    notes.push(`run failed: ${errorMessage(error)}`);
    await releaseTargetLocks();
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
  /** Stopped on request (Ctrl-C): the exit is `cancelled`. */
  cancelled?: boolean;
  /** Why the run never reached planning (e.g. the lock's store is unreachable), for the summary. */
  notRun?: string;
  /** The run-record store was just found unreachable: the record goes to the log only. */
  storeUnavailable?: boolean;
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
  if (input.storeUnavailable === true) {
    record = { ...record, notes: [...(record.notes ?? []), 'run record: not written to the run-record store (unreachable, see above); emitted to the log only'] };
  } else if (request.writeRecord !== false && hasStore(config)) {
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
  const anyFailure =
    (record.status !== 'succeeded' && record.status !== 'cancelled') || counts.targetsFailed > 0 || counts.actions.failed > 0 || record.error !== undefined || recordError !== undefined;
  const exit: RunExit =
    input.refusal !== undefined
      ? 'refused'
      : input.cancelled === true
        ? 'cancelled'
        : input.gate?.answer === 'declined'
          ? 'declined'
          : anyFailure
            ? 'failed'
            : counts.findings.fail + counts.findings.warn > 0
              ? 'findings'
              : 'ok';
  const summary = [
    `${input.runbook} on ${record.estate}: ${exit}`,
    `${counts.targets} target(s)${counts.targetsFailed > 0 ? `, ${counts.targetsFailed} failed` : ''}`,
    `checks ${counts.findings.ok ?? 0} ok / ${counts.findings.warn} warn / ${counts.findings.fail} fail`,
    `actions ${counts.actions.applied} applied / ${counts.actions.skipped} skipped / ${counts.actions.failed} failed / ${counts.actions.planned} planned`,
    input.refusal !== undefined ? refusalLine(input.refusal) : (input.cancelled === true && input.gate?.apply === true ? 'cancelled: actions not yet started were not applied' : (input.gate?.reason ?? input.notRun ?? 'not run')),
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
    selection: selectionOf(context.resolution?.targets ?? []).filter((entry) => record.targets.some((target) => target.targetId.toLowerCase() === entry.targetId.toLowerCase())),
  };
}
