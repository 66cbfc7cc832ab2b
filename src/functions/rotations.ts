/**
 * Credential rotation over HTTP (function key on every route), its orchestrator and activities:
 *
 * - `POST /api/rotations` `{ secret: "<vault>/<secret>", mode?: plan | apply, id? }`: 400 for a
 *   secret without a rotation policy; `mode: plan`, or an estate with `dryRun: true` (the dry-run
 *   gate), answers 200 with the plan — the current credential checked for real, the steps — and
 *   changes nothing; otherwise starts `rotationOrchestrator` and answers 202 with the status URL.
 * - `GET /api/rotations/{id}`: where the rotation is, and once done its outcome (references only).
 * - `rotationTimer` (`ROTATION_SCHEDULE`, default daily 05:00 UTC): starts a rotation of every
 *   secret whose policy says it is due, as instance `rotation-{vault}-{secret}-{version}` (a
 *   re-fired occurrence, or an event about the same version, starts nothing new); a no-op when
 *   nothing is due, and plans only in dry-run mode.
 */
import { randomUUID } from 'node:crypto';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { createAzureClients } from '../azure/clients.ts';
import { errorMessage } from '../errors.ts';
import { rotationOrchestrator, type RotationInput } from '../orchestrators/rotation.ts';
import { ROTATION_ACTIVITIES as A, ROTATION_FUNCTIONS as F, ROTATION_ORCHESTRATOR, ROTATION_TIMER, rotationInstanceId } from '../rotation/names.ts';
import { AppNotReadyError, checkReadiness } from '../startup/readiness.ts';
import { invocationLogger } from './invocation-logger.ts';
import { ORCHESTRATION_TIMERS, resolveSchedule } from './runbook-schedules.ts';
import { derivedStep, disableStep, dueStep, finishStep, lockStep, markStep, pickUpStep, planStep, reinstateStep, resetStep, RotationRequestError, storeStep, verifyStep, type RotationPlan } from '../rotation/steps.ts';
import { registerStepActivity } from './durable-activity.ts';
import { errorBody, instanceStatus, json, readJsonBody, readyConfig, requestedByOf, siblingUrl } from './http-common.ts';
import { instanceBody } from './restores.ts';

/** The body of `POST /api/rotations`. */
export const rotationStartBodySchema = z
  .object({
    secret: z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]\/[0-9a-zA-Z-]{1,127}$/, 'expected <vault>/<secret>'),
    mode: z.enum(['plan', 'apply']).default('apply'),
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,99}$/, 'expected letters, digits and dashes').optional(),
  })
  .strict();

const EXPECTED_START = 'expected a JSON body { "secret": "<vault>/<secret>", "mode"?: "plan"|"apply", "id"? }';

/** The read-only plan of a rotation (the current credential checked for real); changes nothing. */
export async function rotationPlan(config: Parameters<typeof planStep>[0]['config'], vault: string, secret: string): Promise<RotationPlan> {
  const clients = createAzureClients(config.azure);
  try {
    return await planStep({ config, clients, now: () => new Date(), logger: { log: () => undefined } }, { vault, secret, now: new Date().toISOString() });
  } finally {
    await clients.close();
  }
}

async function startRotation(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const read = await readJsonBody(request, rotationStartBodySchema, EXPECTED_START);
  if ('response' in read) return read.response;
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  const [vault = '', secret = ''] = read.body.secret.split('/');
  let plan: RotationPlan;
  try {
    plan = await rotationPlan(config, vault, secret);
  } catch (error) {
    if (error instanceof RotationRequestError) return json(400, { error: { code: 'InvalidRotation', message: error.message } });
    return errorBody(502, 'PlanUnavailable', `the rotation could not be planned, so nothing was started: ${errorMessage(error)}`);
  }
  if (read.body.mode === 'plan' || config.dryRun) {
    return json(200, {
      mode: 'plan',
      dryRun: config.dryRun,
      estate: config.estate,
      plan,
      note: config.dryRun && read.body.mode === 'apply' ? 'the estate is in dry-run mode (dryRun: true): nothing was changed' : 'plan only: nothing was changed',
    });
  }
  const id = read.body.id ?? `rotation-${randomUUID()}`;
  const client = df.getClient(context);
  if ((await instanceStatus(client, id)) !== undefined) return errorBody(409, 'RotationIdInUse', `id: expected a new rotation id, found ${id} in use`);
  const input: RotationInput = { vault: plan.vault, secret: plan.secret, trigger: 'http', requestedBy: requestedByOf(request) };
  await client.startNew(ROTATION_ORCHESTRATOR, { instanceId: id, input });
  const statusUrl = siblingUrl(request, `rotations/${id}`);
  context.log(`rotation ${id} of ${plan.vault}/${plan.secret} started`);
  return json(202, { id, status: 'accepted', done: false, statusUrl, plan }, { location: statusUrl, 'retry-after': '5' });
}

/** `rotationTimer`: starts the rotations that are due; returns the instance ids started. */
export async function runRotationTimer(_timer: Timer, context: InvocationContext): Promise<string[]> {
  const readiness = await checkReadiness();
  if (!readiness.ready) {
    const error = new AppNotReadyError(readiness.problems);
    context.error(error.message);
    throw error;
  }
  const { config } = readiness;
  const clients = createAzureClients(config.azure);
  let due: Awaited<ReturnType<typeof dueStep>>;
  try {
    due = await dueStep({ config, clients, now: () => new Date(), logger: invocationLogger(context) }, { now: new Date().toISOString() });
  } finally {
    await clients.close();
  }
  if (due.length === 0) {
    context.log('rotation: nothing is due');
    return [];
  }
  if (config.dryRun) {
    context.log(`rotation: the estate is in dry-run mode; due but not rotated: ${due.map((entry) => `${entry.vault}/${entry.secret} (${entry.detail})`).join(', ')}`);
    return [];
  }
  const client = df.getClient(context);
  const started: string[] = [];
  for (const entry of due) {
    const id = rotationInstanceId(entry.vault, entry.secret, entry.version);
    if ((await instanceStatus(client, id)) !== undefined) {
      context.log(`rotation ${id} exists already (this version was handed over before); nothing new started`);
      continue;
    }
    const input: RotationInput = { vault: entry.vault, secret: entry.secret, trigger: 'timer', requestedBy: `timer ${ROTATION_TIMER.name}`, expectedVersion: entry.version, onlyIfDue: true };
    await client.startNew(ROTATION_ORCHESTRATOR, { instanceId: id, input });
    started.push(id);
    context.log(`rotation ${id} of ${entry.vault}/${entry.secret} started (${entry.detail})`);
  }
  return started;
}

const rotationTimer = ORCHESTRATION_TIMERS.find((candidate) => candidate.functionName === ROTATION_TIMER.name);
if (rotationTimer === undefined) throw new Error(`timer ${ROTATION_TIMER.name}: expected it in ORCHESTRATION_TIMERS`);
app.timer(ROTATION_TIMER.name, {
  schedule: resolveSchedule(rotationTimer),
  runOnStartup: false,
  useMonitor: true,
  extraInputs: [df.input.durableClient()],
  handler: async (myTimer, context) => {
    await runRotationTimer(myTimer, context);
  },
});

app.http(F.rotationsStart.name, { route: F.rotationsStart.route, methods: ['POST'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: startRotation });
app.http(F.rotationsGet.name, { route: F.rotationsGet.route, methods: ['GET'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: (request, context) => instanceBody(request, context, 'rotations') });

df.app.orchestration(ROTATION_ORCHESTRATOR, rotationOrchestrator);
registerStepActivity(A.plan, planStep);
registerStepActivity(A.lock, lockStep);
registerStepActivity(A.store, storeStep);
registerStepActivity(A.reset, resetStep);
registerStepActivity(A.verify, verifyStep);
registerStepActivity(A.mark, markStep);
registerStepActivity(A.reinstate, reinstateStep);
registerStepActivity(A.derived, derivedStep);
registerStepActivity(A.pickUp, pickUpStep);
registerStepActivity(A.disable, disableStep);
registerStepActivity(A.due, dueStep);
registerStepActivity(A.finish, finishStep);
