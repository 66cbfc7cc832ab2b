/**
 * Restore drills (issue 10): `restoreDrillOrchestrator` runs one drill over every server with a
 * drill policy (or the one asked for), each as a `restoreDrillServerOrchestrator`
 * sub-orchestration, and reports RTO and RPO per server.
 *
 * One server's drill:
 * heartbeats (three rows, `heartbeatIntervalSeconds` apart, written to the source) → wait until
 * the restore point (between the 2nd and 3rd heartbeat) is `offsetMinutes` old → validate
 * (nothing created on a bad request) → scratch record (the sweeper's recorded id) → create the
 * scratch server by point-in-time restore in the drill resource group, tagged `purpose: drill`
 * and owned by this instance → wait on durable timers → validate the data (the restore's checks)
 * → RPO from the heartbeats → compare RTO (restore requested → data validated) and RPO with the
 * policy's targets → ALWAYS tear down → run record → drill history row.
 *
 * Every step of the work is raced against one deadline (`timeoutHours` after the drill started)
 * by a durable timer; when the timer wins, the drill stops where it is, lets an activity that
 * was already under way finish (bounded), and tears down. A crash anywhere replays to the same
 * place: the create is idempotent by owner tag (no second server) and the teardown runs on every
 * path. A teardown that fails leaves the scratch record in place for the sweeper.
 *
 * Deterministic: time from `context.df.currentUtcDateTime`, all I/O in activities. History is
 * bounded: three heartbeats, one wait, at most log2(5 min / 30 s) + timeoutHours × 12 looks.
 */
import type { OrchestrationContext, Task, TimerTask } from 'durable-functions';
import type { DataEvidence } from '../restore/data-checks.ts';
import type { DrillCheck, DrillHistoryRow, DrillTarget, RpoEvidence } from '../restore/drills.ts';
import { scratchServerName } from '../restore/drills.ts';
import { RESTORE_ACTIVITIES as A, RESTORE_DRILL_SERVER_ORCHESTRATOR } from '../restore/names.ts';
import type { RestoreStart } from '../restore/servers.ts';
import type { FinishStepInput, ValidatedPlan } from '../restore/steps.ts';
import type { RunTrigger } from '../runs/run-record.ts';
import { activityRetry, failureText, FIRST_POLL_MS, MAX_POLL_MS, StepLog, waitForServer } from './restore.ts';

/** Longest wait for an activity already under way when the deadline passed, before the teardown. */
const IN_FLIGHT_GRACE_MS = 15 * 60_000;
/** Heartbeats a drill writes: before the point, the one the point follows, and one after it. */
const HEARTBEATS = 3;

/** Input of {@link restoreDrillOrchestrator}. */
export interface RestoreDrillInput {
  /** One server (ARM id or unique name); default every server with a drill policy. */
  readonly server?: string;
  readonly trigger: RunTrigger;
  readonly requestedBy?: string;
}

/** Input of {@link restoreDrillServerOrchestrator}. */
export interface RestoreDrillServerInput {
  readonly target: DrillTarget;
  readonly drillId: string;
  readonly trigger: RunTrigger;
  readonly requestedBy?: string;
}

/** A measurement against its target. */
export interface Measurement {
  readonly seconds: number | null;
  readonly targetSeconds: number;
  readonly met: boolean;
}

/** The result of one server's drill (also the output of {@link restoreDrillServerOrchestrator}). */
export interface DrillServerResult {
  readonly serverId: string;
  readonly instanceId: string;
  readonly runId: string;
  readonly verdict: 'passed' | 'failed';
  readonly reason: string;
  readonly rto: Measurement;
  readonly rpo: Measurement;
  readonly restorePoint?: string;
  readonly scratchServerId?: string;
  readonly tornDown: boolean;
  readonly timedOut: boolean;
  readonly checks: readonly DrillCheck[];
  readonly evidence?: DataEvidence;
  readonly heartbeats?: RpoEvidence;
  readonly steps: FinishStepInput['steps'];
  readonly startedAt: string;
  readonly finishedAt: string;
}

/** The output of {@link restoreDrillOrchestrator}. */
export interface RestoreDrillOutput {
  readonly id: string;
  readonly verdict: 'passed' | 'failed';
  readonly summary: string;
  readonly servers: readonly DrillServerResult[];
  readonly startedAt: string;
  readonly endedAt: string;
}

/** The deadline passed while the drill was at `step`. */
class DrillDeadline extends Error {
  override readonly name = 'DrillDeadline';
  constructor(
    readonly step: string,
    readonly inFlight: Task | undefined,
  ) {
    super(`the drill's deadline passed during ${step}`);
  }
}

/** The drill of one server; see the module comment. Never throws: every path ends in a teardown and a record. */
export function* restoreDrillServerOrchestrator(context: OrchestrationContext): Generator<Task, DrillServerResult, unknown> {
  const input = context.df.getInput<RestoreDrillServerInput>();
  const { target } = input;
  const id = context.df.instanceId;
  const runId = context.df.newGuid(id);
  const startedAt = context.df.currentUtcDateTime;
  const deadline = new Date(startedAt.getTime() + target.drill.timeoutHours * 3_600_000);
  const intervalMs = target.drill.heartbeatIntervalSeconds * 1000;
  const rtoTargetSeconds = Math.round(target.drill.rtoTargetMinutes * 60);
  const rpoTargetSeconds = Math.round(target.drill.rpoTargetMinutes * 60);
  const log = new StepLog(context);
  const now = (): Date => context.df.currentUtcDateTime;
  const status = (phase: string, extra: Record<string, unknown> = {}): void => {
    context.df.setCustomStatus({ phase, server: target.serverId, deadline: deadline.toISOString(), steps: log.steps.length, ...extra });
  };

  /** Runs `task` against the deadline: its result, or {@link DrillDeadline} when the timer wins. */
  function* raced<T>(step: string, task: Task): Generator<Task, T, unknown> {
    if (now() >= deadline) throw new DrillDeadline(step, undefined);
    const timer: TimerTask = context.df.createTimer(deadline);
    const winner: unknown = yield context.df.Task.any([task, timer]);
    if (winner === timer) throw new DrillDeadline(step, task.isCompleted || task.isFaulted ? undefined : task);
    timer.cancel();
    if (task.isFaulted) throw task.result;
    return task.result as T;
  }

  let plan: ValidatedPlan | undefined;
  const scratchName = scratchServerName(target.name, id);
  let scratchServerId: string | undefined;
  let createAttempted = false;
  let restorePoint: string | undefined;
  let evidence: DataEvidence | undefined;
  let heartbeats: RpoEvidence | undefined;
  let rtoSeconds: number | null = null;
  let failure: string | undefined;
  let timedOut = false;
  let inFlight: Task | undefined;

  try {
    // 1. Heartbeats: rows at t0, t0 + i, t0 + 2i; the restore point lies between the 2nd and the 3rd.
    status('heartbeats');
    const t0 = now().getTime();
    for (let seq = 1; seq <= HEARTBEATS; seq += 1) {
      const at = new Date(t0 + (seq - 1) * intervalMs);
      if (now() < at) yield* raced('heartbeat wait', context.df.createTimer(at));
      yield* raced('heartbeat', context.df.callActivityWithRetry(A.heartbeat, activityRetry(), { sourceServerId: target.serverId, drillId: id, seq, at: now().toISOString() }));
    }
    log.add('heartbeat', 'applied', `${String(HEARTBEATS)} heartbeat rows written to the source, ${String(target.drill.heartbeatIntervalSeconds)} s apart`, target.serverId);
    const point = new Date(t0 + Math.round(1.5 * intervalMs));
    restorePoint = point.toISOString();

    // 2. Wait until the point is offsetMinutes old (the drill restores to now − offset).
    const restoreAt = new Date(point.getTime() + target.drill.offsetMinutes * 60_000);
    status('waiting-for-point', { restorePoint, restoreAt: restoreAt.toISOString() });
    if (now() < restoreAt) yield* raced('wait for the restore point', context.df.createTimer(restoreAt));

    // 3. Validate; the RTO clock starts with the restore request.
    const requestedAt = now();
    status('validating', { restorePoint });
    plan = yield* raced<ValidatedPlan>(
      'validate',
      context.df.callActivity(A.validate, {
        request: { server: target.serverId, point: restorePoint, newServerName: scratchName, ...(target.drill.resourceGroup === undefined ? {} : { resourceGroup: target.drill.resourceGroup }) },
        now: requestedAt.toISOString(),
        purpose: 'drill',
      }),
    );
    scratchServerId = plan.newServerId;
    log.add('validate', 'applied', `restore ${plan.sourceName} as of ${plan.pointInTime} to the scratch server ${plan.newServerName}`, target.serverId);

    // 4. Record the scratch server before it exists, so a leftover is recognised by id and owner.
    yield* raced('record scratch', context.df.callActivityWithRetry(A.scratch, activityRetry(), { serverId: plan.newServerId, sourceServerId: plan.sourceServerId, owner: id, deadline: deadline.toISOString(), state: 'creating', at: now().toISOString() }));

    // 5. Create the scratch server (idempotent by owner tag) and wait for it.
    status('creating', { scratchServer: plan.newServerId, restorePoint });
    createAttempted = true;
    const start = yield* raced<RestoreStart>('create', context.df.callActivityWithRetry(A.create, activityRetry(), { plan, owner: id, purpose: 'drill' }));
    log.add('create', 'applied', `${start.outcome === 'started' ? 'started' : 'found already started'} the point-in-time restore of ${plan.newServerName}`, plan.newServerId);
    status('restoring', { scratchServer: plan.newServerId, restorePoint });
    const remainingHours = Math.min(target.restoreTimeoutHours, (deadline.getTime() - now().getTime()) / 3_600_000);
    const waited = yield* waitForServer(context, plan, id, start, Math.max(remainingHours, 0));
    if (waited.state === 'timed-out' && now() >= deadline) throw new DrillDeadline('restore', undefined);
    if (waited.state !== 'ready') throw new Error(waited.detail);
    log.add('wait', 'applied', waited.detail, plan.newServerId);
    const restoredFqdn = waited.fullyQualifiedDomainName ?? `${plan.newServerName}.postgres.database.azure.com`;

    // 6. Validate the data (the restore's checks), then stop the RTO clock.
    status('validating-data', { scratchServer: plan.newServerId });
    evidence = yield* raced<DataEvidence>('validate data', context.df.callActivityWithRetry(A.validateData, activityRetry(), { plan, restoredFqdn, now: now().toISOString() }));
    log.add('validate-data', evidence.pass ? 'applied' : 'failed', evidence.summary, plan.newServerId);
    rtoSeconds = Math.round((now().getTime() - requestedAt.getTime()) / 1000);

    // 7. RPO from the heartbeats.
    status('measuring-rpo', { scratchServer: plan.newServerId });
    heartbeats = yield* raced<RpoEvidence>(
      'measure RPO',
      context.df.callActivityWithRetry(A.measureRpo, activityRetry(), { sourceServerId: plan.sourceServerId, drillId: id, restorePoint: plan.pointInTime, restoredFqdn, login: plan.administratorLogin }),
    );
    log.add('measure-rpo', heartbeats.rpoSeconds === null ? 'failed' : 'applied', heartbeats.detail, plan.newServerId);
  } catch (error) {
    if (error instanceof DrillDeadline) {
      timedOut = true;
      inFlight = error.inFlight;
      failure = `timed out after ${String(target.drill.timeoutHours)} h (${error.step})`;
      log.add('deadline', 'failed', `${error.message}; tearing down`, target.serverId);
    } else {
      failure = failureText(error);
      log.add('drill', 'failed', failure, scratchServerId ?? target.serverId);
    }
  }

  // 8. ALWAYS tear down: an activity still under way gets a bounded wait first, so a create that
  // lands late is deleted too (the sweeper catches one that lands later still).
  let tornDown = !createAttempted && inFlight === undefined;
  if (inFlight !== undefined) {
    status('tearing-down', { waitingFor: 'an activity under way' });
    const grace = context.df.createTimer(new Date(now().getTime() + IN_FLIGHT_GRACE_MS));
    const winner: unknown = yield context.df.Task.any([inFlight, grace]);
    if (winner !== grace) grace.cancel();
  }
  if (scratchServerId !== undefined && plan !== undefined && (createAttempted || inFlight !== undefined)) {
    status('tearing-down', { scratchServer: scratchServerId });
    // A server still being created cannot be deleted (Azure answers 409): look again on durable
    // timers, 30 s doubling to 5 min, for at most restoreTimeoutHours; then the sweeper has it.
    const giveUpAt = now().getTime() + Math.max(target.restoreTimeoutHours, 1) * 3_600_000;
    let interval = FIRST_POLL_MS;
    try {
      for (;;) {
        const outcome = (yield context.df.callActivityWithRetry(A.teardown, activityRetry(), { serverId: scratchServerId, owner: id, sourceServerId: plan.sourceServerId })) as 'deleted' | 'absent' | 'not-owned' | 'busy';
        if (outcome !== 'busy') {
          tornDown = outcome !== 'not-owned';
          log.add('teardown', tornDown ? 'applied' : 'failed', `${plan.newServerName}: ${outcome}`, scratchServerId);
          break;
        }
        if (now().getTime() >= giveUpAt) {
          log.add('teardown', 'failed', `${plan.newServerName} still busy after ${String(target.restoreTimeoutHours)} h; the sweeper deletes it later`, scratchServerId);
          break;
        }
        yield context.df.createTimer(new Date(Math.min(now().getTime() + interval, giveUpAt)));
        interval = Math.min(interval * 2, MAX_POLL_MS);
      }
      if (tornDown) {
        yield context.df.callActivityWithRetry(A.scratch, activityRetry(), { serverId: scratchServerId, sourceServerId: plan.sourceServerId, owner: id, deadline: deadline.toISOString(), state: 'deleted', at: now().toISOString() });
      }
    } catch (error) {
      log.add('teardown', 'failed', `${failureText(error)}; the sweeper deletes it later`, scratchServerId);
    }
  }

  // 9. The verdict.
  const rpoSeconds = heartbeats?.rpoSeconds ?? null;
  const rto: Measurement = { seconds: rtoSeconds, targetSeconds: rtoTargetSeconds, met: rtoSeconds !== null && rtoSeconds <= rtoTargetSeconds };
  const rpo: Measurement = { seconds: rpoSeconds, targetSeconds: rpoTargetSeconds, met: rpoSeconds !== null && rpoSeconds <= rpoTargetSeconds };
  const checks: DrillCheck[] = [
    ...(evidence?.tables ?? []).map((table) => ({ name: `rows ${table.table}`, passed: table.pass, detail: table.detail })),
    ...(evidence?.sql ?? []).map((check) => ({ name: `sql ${check.name}`, passed: check.pass, detail: check.detail })),
    ...(evidence === undefined ? [] : [{ name: 'connect', passed: evidence.connected, detail: evidence.summary }]),
    ...(heartbeats === undefined ? [] : [{ name: 'point in time', passed: heartbeats.afterPointRestored === 0 && heartbeats.newestRestored !== null, detail: heartbeats.detail }]),
    { name: 'rto', passed: rto.met, detail: rtoSeconds === null ? 'not measured' : `${String(rtoSeconds)} s (target ${String(rtoTargetSeconds)} s)` },
    { name: 'rpo', passed: rpo.met, detail: rpoSeconds === null ? 'not measured' : `${String(rpoSeconds)} s (target ${String(rpoTargetSeconds)} s)` },
    { name: 'teardown', passed: tornDown, detail: tornDown ? (createAttempted ? 'scratch server deleted' : 'nothing was created') : 'scratch server not deleted (the sweeper deletes it)' },
  ];
  const failedChecks = checks.filter((check) => !check.passed).map((check) => check.name);
  const verdict: 'passed' | 'failed' = failure === undefined && failedChecks.length === 0 ? 'passed' : 'failed';
  const reason = verdict === 'passed' ? '' : [failure, failedChecks.length === 0 ? undefined : `failed: ${failedChecks.join(', ')}`].filter((part) => part !== undefined).join('; ');
  const finishedAt = now().toISOString();
  status('recording', { verdict });

  // 10. Run record, then the history row that links to it.
  const finishInput: FinishStepInput = {
    runId,
    runbook: 'restore-drill',
    trigger: input.trigger,
    ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }),
    startedAt: startedAt.toISOString(),
    endedAt: finishedAt,
    sourceServerId: target.serverId,
    outcome: verdict === 'passed' ? `passed: RTO ${String(rtoSeconds)} s, RPO ${String(rpoSeconds)} s` : `failed: ${reason}`,
    succeeded: verdict === 'passed',
    // A copy: a later log.add must not change the input recorded in the history.
    steps: [...log.steps],
    findings: checks.map((check) => ({ code: `restore-drill.${check.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`, severity: check.passed ? ('ok' as const) : ('fail' as const), message: `${check.name}: ${check.detail}` })),
  };
  try {
    yield context.df.callActivityWithRetry(A.finish, activityRetry(), finishInput);
  } catch (error) {
    log.add('record', 'failed', `the run record or notifications failed: ${failureText(error)}`);
  }
  const row: DrillHistoryRow = {
    estate: '',
    serverId: target.serverId,
    startedAt: startedAt.toISOString(),
    finishedAt,
    ...(restorePoint === undefined ? {} : { restorePoint }),
    ...(rtoSeconds === null ? {} : { rtoSeconds }),
    ...(rpoSeconds === null ? {} : { rpoSeconds }),
    rtoTargetSeconds,
    rpoTargetSeconds,
    checks,
    verdict,
    reason,
    instanceId: id,
    runId,
    scratchServerId: scratchServerId ?? '',
    tornDown,
  };
  try {
    yield context.df.callActivityWithRetry(A.recordDrill, activityRetry(), row);
  } catch (error) {
    log.add('history', 'failed', `the drill history row could not be written: ${failureText(error)}`);
  }
  const result: DrillServerResult = {
    serverId: target.serverId,
    instanceId: id,
    runId,
    verdict,
    reason,
    rto,
    rpo,
    ...(restorePoint === undefined ? {} : { restorePoint }),
    ...(scratchServerId === undefined ? {} : { scratchServerId }),
    tornDown,
    timedOut,
    checks,
    ...(evidence === undefined ? {} : { evidence }),
    ...(heartbeats === undefined ? {} : { heartbeats }),
    steps: log.steps,
    startedAt: startedAt.toISOString(),
    finishedAt,
  };
  status('done', { verdict, rto, rpo });
  return result;
}

/** One drill over the estate's servers with a drill policy; see the module comment. */
export function* restoreDrillOrchestrator(context: OrchestrationContext): Generator<Task, RestoreDrillOutput, unknown> {
  const input = context.df.getInput<RestoreDrillInput>();
  const id = context.df.instanceId;
  const startedAt = context.df.currentUtcDateTime.toISOString();
  context.df.setCustomStatus({ phase: 'targets' });
  let targets: DrillTarget[];
  try {
    targets = (yield context.df.callActivityWithRetry(A.drillTargets, activityRetry(), input.server === undefined ? {} : { server: input.server })) as DrillTarget[];
  } catch (error) {
    const summary = `no drill: ${failureText(error)}`;
    context.df.setCustomStatus({ phase: 'done', verdict: 'failed', summary });
    return { id, verdict: 'failed', summary, servers: [], startedAt, endedAt: context.df.currentUtcDateTime.toISOString() };
  }
  context.df.setCustomStatus({ phase: 'drilling', servers: targets.map((target) => target.serverId) });
  // Each server on its own, at the same time: one failing never stops another.
  const results = (yield context.df.Task.all(
    targets.map((target, index) =>
      context.df.callSubOrchestrator(RESTORE_DRILL_SERVER_ORCHESTRATOR, { target, drillId: id, trigger: input.trigger, ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }) } satisfies RestoreDrillServerInput, `${id}:${String(index)}`),
    ),
  )) as DrillServerResult[];
  const failed = results.filter((result) => result.verdict === 'failed');
  const verdict: 'passed' | 'failed' = targets.length > 0 && failed.length === 0 ? 'passed' : 'failed';
  const summary =
    targets.length === 0
      ? 'no server has a drill policy (restore.drill)'
      : `${String(results.length - failed.length)}/${String(results.length)} server(s) passed${failed.length === 0 ? '' : `; failed: ${failed.map((result) => `${result.serverId.split('/').pop() ?? result.serverId} (${result.reason})`).join('; ')}`}`;
  const endedAt = context.df.currentUtcDateTime.toISOString();
  context.df.setCustomStatus({
    phase: 'done',
    verdict,
    summary,
    servers: results.map((result) => ({ serverId: result.serverId, verdict: result.verdict, rto: result.rto.seconds, rpo: result.rpo.seconds })),
  });
  return { id, verdict, summary, servers: results, startedAt, endedAt };
}

