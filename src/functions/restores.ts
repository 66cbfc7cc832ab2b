/**
 * Point-in-time restores over HTTP (function key on every route) and the restore
 * orchestration's activities:
 *
 * - `POST /api/restores` `{ server, point, name?, resourceGroup?, cutover?, mode?: plan | apply, id? }`:
 *   validates first (400 with every problem, nothing created); `mode: plan`, or an estate with
 *   `dryRun: true` (the dry-run gate), answers 200 with the plan and starts nothing; otherwise
 *   starts `restoreOrchestrator` and answers 202 with the status URL (`Location`).
 * - `GET /api/restores/{id}`: where it is (`phase`), and once done its outcome.
 * - `POST /api/restores/{id}/approve` | `/reject` `{ by?, reason? }`: raises the approval gate's
 *   event; 409 unless the restore is waiting for approval.
 */
import { randomUUID } from 'node:crypto';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { createAzureClients } from '../azure/clients.ts';
import { errorMessage } from '../errors.ts';
import { restoreOrchestrator, type RestoreInput } from '../orchestrators/restore.ts';
import { APPROVAL_EVENTS, RESTORE_ACTIVITIES as A, RESTORE_FUNCTIONS as F, RESTORE_ORCHESTRATOR } from '../restore/names.ts';
import { RestoreValidationError } from '../restore/servers.ts';
import { createStep, cutoverStep, deleteStep, finishStep, rollbackStep, statusStep, validateDataStep, validateStep } from '../restore/steps.ts';
import { registerStepActivity } from './durable-activity.ts';
import { errorBody, instanceStatus, json, readJsonBody, readyConfig, requestedByOf, siblingUrl } from './http-common.ts';

/** The body of `POST /api/restores`. */
export const restoreStartBodySchema = z
  .object({
    server: z.string().min(1).max(1024),
    point: z.string().min(1).max(64),
    name: z.string().min(1).max(63).optional(),
    resourceGroup: z.string().min(1).max(90).optional(),
    cutover: z.boolean().default(true),
    mode: z.enum(['plan', 'apply']).default('apply'),
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,99}$/, 'expected letters, digits and dashes').optional(),
  })
  .strict();

const decisionBodySchema = z.object({ by: z.string().max(200).optional(), reason: z.string().max(500).optional() }).strict();

const EXPECTED_START = 'expected a JSON body { "server": id|name, "point": ISO 8601|"latest", "name"?, "resourceGroup"?, "cutover"?: boolean, "mode"?: "plan"|"apply", "id"? }';

async function startRestore(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const read = await readJsonBody(request, restoreStartBodySchema, EXPECTED_START);
  if ('response' in read) return read.response;
  const body = read.body;
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  const restoreRequest = {
    server: body.server,
    point: body.point,
    ...(body.name === undefined ? {} : { newServerName: body.name }),
    ...(body.resourceGroup === undefined ? {} : { resourceGroup: body.resourceGroup }),
  };
  const clients = createAzureClients(config.azure);
  let plan;
  try {
    plan = await validateStep({ config, clients, now: () => new Date(), logger: { log: () => undefined } }, { request: restoreRequest, now: new Date().toISOString(), purpose: 'restore' });
  } catch (error) {
    if (error instanceof RestoreValidationError) return json(400, { error: { code: 'InvalidRestore', message: error.message }, problems: error.problems });
    return errorBody(502, 'ValidationUnavailable', `the restore could not be validated, so nothing was started: ${errorMessage(error)}`);
  } finally {
    await clients.close();
  }
  const cutover = body.cutover && plan.policy.cutover !== undefined;
  const steps = [
    ...plan.steps,
    ...(cutover
      ? [
          `wait up to ${plan.policy.approval.timeoutHours} h for approve/reject (then ${plan.policy.approval.onTimeout} the new server)`,
          `cut over ${plan.policy.cutover?.consumers.map((consumer) => `${consumer.id} (${consumer.setting})`).join(', ') ?? ''} to Key Vault references of the new connection string, restart, verify health; roll back on failure`,
        ]
      : ['no cutover']),
  ];
  if (body.mode === 'plan' || config.dryRun) {
    return json(200, { mode: 'plan', dryRun: config.dryRun, estate: config.estate, plan: { ...plan, steps }, note: config.dryRun && body.mode === 'apply' ? 'the estate is in dry-run mode (dryRun: true): nothing was started' : 'plan only: nothing was started' });
  }
  const id = body.id ?? `restore-${randomUUID()}`;
  const client = df.getClient(context);
  if ((await instanceStatus(client, id)) !== undefined) return errorBody(409, 'RestoreIdInUse', `id: expected a new restore id, found ${id} in use`);
  const input: RestoreInput = { request: restoreRequest, cutover, trigger: 'http', requestedBy: requestedByOf(request) };
  await client.startNew(RESTORE_ORCHESTRATOR, { instanceId: id, input });
  const statusUrl = siblingUrl(request, `restores/${id}`);
  context.log(`restore ${id} of ${plan.sourceName} as of ${plan.pointInTime} to ${plan.newServerName} started`);
  return json(
    202,
    { id, status: 'accepted', done: false, statusUrl, approveUrl: `${statusUrl}/approve`, rejectUrl: `${statusUrl}/reject`, plan: { ...plan, steps } },
    { location: statusUrl, 'retry-after': '5' },
  );
}

/** The status body of a restore or drill instance. */
export async function instanceBody(request: HttpRequest, context: InvocationContext, route: string): Promise<HttpResponseInit> {
  const id = request.params.id ?? '';
  if (!/^[A-Za-z0-9][A-Za-z0-9:-]{0,199}$/.test(id)) return errorBody(400, 'InvalidId', `id: expected an instance id (letters, digits, dashes), found "${id.slice(0, 100)}"`);
  const status = await instanceStatus(df.getClient(context), id);
  if (status === undefined) return errorBody(404, 'NotFound', `id: expected a known ${route}, found no instance ${id}`);
  const runtime: string = status.runtimeStatus;
  const done = ['Completed', 'Failed', 'Terminated'].includes(runtime);
  const custom: unknown = status.customStatus;
  const output: unknown = status.output;
  return json(
    done ? 200 : 202,
    { id, runtimeStatus: runtime, done, phase: (custom as { phase?: string } | null)?.phase ?? (done ? 'done' : 'pending'), status: custom ?? null, ...(done ? { output } : {}), statusUrl: siblingUrl(request, `${route}/${id}`) },
    done ? {} : { 'retry-after': '5' },
  );
}

async function decide(request: HttpRequest, context: InvocationContext, event: 'approve' | 'reject'): Promise<HttpResponseInit> {
  const id = request.params.id ?? '';
  const read = await readJsonBody(request, decisionBodySchema, 'expected a JSON body { "by"?: string, "reason"?: string } (or none)', { allowEmpty: true });
  if ('response' in read) return read.response;
  const client = df.getClient(context);
  const status = await instanceStatus(client, id);
  if (status === undefined) return errorBody(404, 'NotFound', `id: expected a known restore, found no instance ${id}`);
  const phase = (status.customStatus as { phase?: string } | null)?.phase;
  if ((status.runtimeStatus as string) !== 'Running' || phase !== 'awaiting-approval') {
    return errorBody(409, 'NotAwaitingApproval', `restore ${id}: expected it to be waiting for approval, found ${status.runtimeStatus}${phase === undefined ? '' : ` (${phase})`}`);
  }
  const by = read.body.by ?? requestedByOf(request);
  await client.raiseEvent(id, event === 'approve' ? APPROVAL_EVENTS.approve : APPROVAL_EVENTS.reject, { by, ...(read.body.reason === undefined ? {} : { reason: read.body.reason }) });
  context.log(`restore ${id}: ${event} by ${by}`);
  return json(202, { id, event, by, statusUrl: siblingUrl(request, `restores/${id}`) });
}

app.http(F.restoresStart.name, { route: F.restoresStart.route, methods: ['POST'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: startRestore });
app.http(F.restoresGet.name, { route: F.restoresGet.route, methods: ['GET'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: (request, context) => instanceBody(request, context, 'restores') });
app.http(F.restoresApprove.name, { route: F.restoresApprove.route, methods: ['POST'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: (request, context) => decide(request, context, 'approve') });
app.http(F.restoresReject.name, { route: F.restoresReject.route, methods: ['POST'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: (request, context) => decide(request, context, 'reject') });

df.app.orchestration(RESTORE_ORCHESTRATOR, restoreOrchestrator);
registerStepActivity(A.validate, validateStep);
registerStepActivity(A.create, createStep);
registerStepActivity(A.status, statusStep);
registerStepActivity(A.validateData, validateDataStep);
registerStepActivity(A.deleteServer, deleteStep);
registerStepActivity(A.cutover, cutoverStep);
registerStepActivity(A.rollback, rollbackStep);
registerStepActivity(A.finish, finishStep);
