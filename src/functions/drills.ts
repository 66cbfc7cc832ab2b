/**
 * Restore drills over HTTP (function key on every route), their timers, orchestrators and
 * activities:
 *
 * - `POST /api/drills` `{ server?, mode?: plan | apply, id? }`: 400 for a server without a drill
 *   policy; `mode: plan`, or an estate with `dryRun: true` (the dry-run gate), answers 200 with
 *   each server's validated plan and starts nothing; otherwise starts `restoreDrillOrchestrator`
 *   and answers 202 with the status URL (`Location`).
 * - `GET /api/drills/{id}`: where the drill is, and once done its RTO and RPO per server.
 * - `GET /api/drills/history?limit=&server=`: the drill history rows, newest first.
 * - `restoreDrillTimer` (`RESTORE_DRILL_SCHEDULE`, default Sunday 03:30 UTC): starts a drill of
 *   every server with a drill policy, one instance per schedule occurrence.
 * - `drillSweeperTimer` (`DRILL_SWEEPER_SCHEDULE`, default hourly): deletes leftover drill
 *   servers (src/restore/drill-sweeper.ts) and fails the invocation when a delete failed.
 */
import { randomUUID } from 'node:crypto';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { createAzureClients } from '../azure/clients.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { restoreDrillOrchestrator, restoreDrillServerOrchestrator, type RestoreDrillInput } from '../orchestrators/restore-drill.ts';
import { sweepDrillServers } from '../restore/drill-sweeper.ts';
import { drillHistory, drillTargets, drillTargetsStep, heartbeatStep, measureRpoStep, recordDrillStep, scratchServerName, scratchStep, teardownStep, type DrillTarget } from '../restore/drills.ts';
import { RESTORE_ACTIVITIES as A, RESTORE_DRILL_ORCHESTRATOR, RESTORE_DRILL_SERVER_ORCHESTRATOR, RESTORE_FUNCTIONS as F, RESTORE_TIMERS } from '../restore/names.ts';
import { RestoreValidationError } from '../restore/servers.ts';
import { validateStep } from '../restore/steps.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import type { EstateConfig } from '../config/schema.ts';
import { AppNotReadyError, checkReadiness } from '../startup/readiness.ts';
import { registerStepActivity } from './durable-activity.ts';
import { errorBody, instanceStatus, json, readJsonBody, readyConfig, requestedByOf, siblingUrl } from './http-common.ts';
import { instanceBody } from './restores.ts';
import { invocationLogger } from './invocation-logger.ts';
import { ORCHESTRATION_TIMERS, resolveSchedule, type ScheduledTimer } from './runbook-schedules.ts';

/** The body of `POST /api/drills`. */
export const drillStartBodySchema = z
  .object({
    server: z.string().min(1).max(1024).optional(),
    mode: z.enum(['plan', 'apply']).default('apply'),
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,99}$/, 'expected letters, digits and dashes').optional(),
  })
  .strict();

/** A drill timer run failed (a sweep delete failed, or the app is not ready). */
export class DrillTimerFailedError extends OpsAutopilotError {
  override readonly name: string = 'DrillTimerFailedError';
}

const EXPECTED_START = 'expected a JSON body { "server"?: id|name, "mode"?: "plan"|"apply", "id"? } (or none)';

/** The read-only plan of a drill of `targets`: each server's validated restore to its scratch server, at wall-clock now − offset. */
export async function drillPlan(config: EstateConfig, targets: readonly DrillTarget[], now: Date): Promise<unknown[]> {
  const clients = createAzureClients(config.azure);
  const ctx: RunbookContext = { config, clients, now: () => now, logger: { log: () => undefined } };
  try {
    const plans: unknown[] = [];
    for (const target of targets) {
      const point = new Date(now.getTime() - target.drill.offsetMinutes * 60_000).toISOString();
      try {
        const plan = await validateStep(ctx, {
          request: { server: target.serverId, point, newServerName: scratchServerName(target.name, `plan-${now.toISOString()}`), ...(target.drill.resourceGroup === undefined ? {} : { resourceGroup: target.drill.resourceGroup }) },
          now: now.toISOString(),
          purpose: 'drill',
        });
        plans.push({
          serverId: target.serverId,
          valid: true,
          steps: [
            `write 3 heartbeat rows to ${target.name}, ${String(target.drill.heartbeatIntervalSeconds)} s apart; restore point between the 2nd and the 3rd, ${String(target.drill.offsetMinutes)} min before the restore`,
            ...plan.steps.map((step) => step.replace(plan.pointInTime, 'the restore point')),
            'measure RTO (restore requested → data validated) and RPO (restore point − newest heartbeat restored)',
            `compare with the targets: RTO ${String(target.drill.rtoTargetMinutes)} min, RPO ${String(target.drill.rpoTargetMinutes)} min`,
            `delete the scratch server (always; at the latest after ${String(target.drill.timeoutHours)} h)`,
            'record the drill in the drill history and a run record',
          ],
        });
      } catch (error) {
        if (!(error instanceof RestoreValidationError)) throw error;
        plans.push({ serverId: target.serverId, valid: false, problems: error.problems });
      }
    }
    return plans;
  } finally {
    await clients.close();
  }
}

async function startDrill(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const read = await readJsonBody(request, drillStartBodySchema, EXPECTED_START, { allowEmpty: true });
  if ('response' in read) return read.response;
  const body = read.body;
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  let targets: DrillTarget[];
  try {
    targets = drillTargets(config, body.server);
  } catch (error) {
    if (error instanceof RestoreValidationError) return json(400, { error: { code: 'InvalidDrill', message: error.message }, problems: error.problems });
    throw error;
  }
  if (targets.length === 0) return json(400, { error: { code: 'InvalidDrill', message: `estate ${config.estate}: expected a PostgreSQL flexible server target with restore.drill, found none; nothing was started` }, problems: [] });
  if (body.mode === 'plan' || config.dryRun) {
    let plans: unknown[];
    try {
      plans = await drillPlan(config, targets, new Date());
    } catch (error) {
      return errorBody(502, 'ValidationUnavailable', `the drill could not be planned, so nothing was started: ${errorMessage(error)}`);
    }
    return json(200, { mode: 'plan', dryRun: config.dryRun, estate: config.estate, servers: plans, note: config.dryRun && body.mode === 'apply' ? 'the estate is in dry-run mode (dryRun: true): nothing was started' : 'plan only: nothing was started' });
  }
  const id = body.id ?? `drill-${randomUUID()}`;
  const client = df.getClient(context);
  if ((await instanceStatus(client, id)) !== undefined) return errorBody(409, 'DrillIdInUse', `id: expected a new drill id, found ${id} in use`);
  const input: RestoreDrillInput = { ...(body.server === undefined ? {} : { server: body.server }), trigger: 'http', requestedBy: requestedByOf(request) };
  await client.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: id, input });
  const statusUrl = siblingUrl(request, `drills/${id}`);
  context.log(`drill ${id} of ${targets.map((target) => target.name).join(', ')} started`);
  return json(202, { id, status: 'accepted', done: false, statusUrl, servers: targets.map((target) => target.serverId) }, { location: statusUrl, 'retry-after': '5' });
}

async function history(request: HttpRequest): Promise<HttpResponseInit> {
  const limitText = request.query.get('limit') ?? '50';
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) return errorBody(400, 'InvalidQuery', `limit: expected a whole number 1-500, found "${limitText.slice(0, 20)}"`);
  const server = request.query.get('server') ?? undefined;
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  const clients = createAzureClients(config.azure);
  try {
    const found = await drillHistory({ config, clients, now: () => new Date(), logger: { log: () => undefined } }, { limit, ...(server === undefined ? {} : { server }) });
    return json(200, { estate: config.estate, ...found });
  } catch (error) {
    return errorBody(502, 'HistoryUnavailable', `the drill history could not be read: ${errorMessage(error)}`);
  } finally {
    await clients.close();
  }
}

/** The occurrence a timer invocation stands for, on the host's clock (virtual on the local host). */
export function occurrenceOf(myTimer: Timer): Date {
  // Typed as always present, but null on the host for an unmonitored schedule.
  const status = myTimer.scheduleStatus as Timer['scheduleStatus'] | null | undefined;
  const next = status?.next;
  const parsed = next === undefined ? Number.NaN : new Date(next).getTime();
  // The status is null for an unmonitored schedule; the wall clock is then the only clock there is.
  return Number.isNaN(parsed) || parsed < Date.UTC(2000, 0, 1) ? new Date() : new Date(parsed);
}

async function readyOrThrow(context: InvocationContext): Promise<EstateConfig> {
  const readiness = await checkReadiness();
  if (!readiness.ready) {
    const error = new AppNotReadyError(readiness.problems);
    context.error(error.message);
    throw error;
  }
  return readiness.config;
}

/** `restoreDrillTimer`: one drill per schedule occurrence (a re-fired occurrence starts nothing new). */
export async function runDrillTimer(myTimer: Timer, context: InvocationContext): Promise<string | undefined> {
  const config = await readyOrThrow(context);
  const targets = drillTargets(config);
  if (targets.length === 0) {
    context.log('restore drill: no server has a drill policy (restore.drill); nothing to do');
    return undefined;
  }
  const occurrence = occurrenceOf(myTimer);
  if (config.dryRun) {
    const plans = await drillPlan(config, targets, new Date());
    context.log(`restore drill: the estate is in dry-run mode; nothing was started. Plan: ${JSON.stringify(plans)}`);
    return undefined;
  }
  const id = `drill-timer-${occurrence.toISOString().replace(/[:.]/g, '-')}`;
  const client = df.getClient(context);
  if ((await instanceStatus(client, id)) !== undefined) {
    context.warn(`restore drill ${id} exists already (the occurrence fired again); nothing new started`);
    return id;
  }
  const input: RestoreDrillInput = { trigger: 'timer', requestedBy: `timer ${RESTORE_TIMERS.restoreDrillTimer.name}` };
  await client.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: id, input });
  context.log(`restore drill ${id} of ${targets.map((target) => target.name).join(', ')} started${myTimer.isPastDue ? ' (past due)' : ''}`);
  return id;
}

const ACTIVE = new Set<string>(['Running', 'Pending', 'ContinuedAsNew']);

/** `drillSweeperTimer`: deletes leftover drill servers; throws when a delete failed, so the host records a failure. */
export async function runSweeperTimer(myTimer: Timer, context: InvocationContext): Promise<void> {
  const config = await readyOrThrow(context);
  const client = df.getClient(context);
  const clients = createAzureClients(config.azure);
  try {
    const report = await sweepDrillServers(
      { config, clients, now: () => new Date(), logger: invocationLogger(context) },
      {
        now: occurrenceOf(myTimer),
        isActive: async (owner) => {
          const found = await instanceStatus(client, owner);
          return found !== undefined && ACTIVE.has(found.runtimeStatus);
        },
      },
    );
    const line = `drill sweeper: ${report.summary}${report.servers.map((entry) => `\n  ${entry.outcome}: ${entry.serverId} (${entry.reason})`).join('')}`;
    if (report.failed > 0) {
      context.error(line);
      throw new DrillTimerFailedError(line, { context: { estate: config.estate, failed: report.failed } });
    }
    if (report.deleted > 0) context.warn(line);
    else context.log(line);
  } finally {
    await clients.close();
  }
}

app.http(F.drillsStart.name, { route: F.drillsStart.route, methods: ['POST'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: startDrill });
app.http(F.drillsHistory.name, { route: F.drillsHistory.route, methods: ['GET'], authLevel: 'function', handler: history });
app.http(F.drillsGet.name, { route: F.drillsGet.route, methods: ['GET'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: (request, context) => instanceBody(request, context, 'drills') });

const timerOf = (name: string): ScheduledTimer => {
  const timer = ORCHESTRATION_TIMERS.find((candidate) => candidate.functionName === name);
  if (timer === undefined) throw new Error(`timer ${name}: expected it in ORCHESTRATION_TIMERS`);
  return timer;
};
app.timer(RESTORE_TIMERS.restoreDrillTimer.name, {
  schedule: resolveSchedule(timerOf(RESTORE_TIMERS.restoreDrillTimer.name)),
  runOnStartup: false,
  useMonitor: true,
  extraInputs: [df.input.durableClient()],
  handler: async (myTimer, context) => {
    await runDrillTimer(myTimer, context);
  },
});
app.timer(RESTORE_TIMERS.drillSweeperTimer.name, {
  schedule: resolveSchedule(timerOf(RESTORE_TIMERS.drillSweeperTimer.name)),
  runOnStartup: false,
  useMonitor: true,
  extraInputs: [df.input.durableClient()],
  handler: runSweeperTimer,
});

df.app.orchestration(RESTORE_DRILL_ORCHESTRATOR, restoreDrillOrchestrator);
df.app.orchestration(RESTORE_DRILL_SERVER_ORCHESTRATOR, restoreDrillServerOrchestrator);
registerStepActivity(A.drillTargets, drillTargetsStep);
registerStepActivity(A.heartbeat, heartbeatStep);
registerStepActivity(A.measureRpo, measureRpoStep);
registerStepActivity(A.recordDrill, recordDrillStep);
registerStepActivity(A.scratch, scratchStep);
registerStepActivity(A.teardown, teardownStep);
