/**
 * Manual runs over HTTP, and past runs (function key on every route, never anonymous):
 *
 * - `POST /api/runs/{runbook}` with `{ mode: "plan" | "apply", targets?, force?, runId?, confirmedPlan? }`:
 *   - `plan` answers 200 with the plan and its `planDigest`, through the executor in plan mode,
 *     and has no side effects: no record, no notification, no lock (a lease is a write);
 *   - `apply` starts `runbookRunOrchestrator` with instance id = run id (`runId` from the body,
 *     else a new uuid) and answers 202 with the run id and the status URL (`Location`); the
 *     run goes through the same executor, locks, cap and dry-run gate as every trigger. The same
 *     `runId` again gets the same status URL (`duplicate: true`) and starts nothing. With
 *     `confirmedPlan` (the digest of the plan a person confirmed) the run applies only a plan
 *     with that digest, so a plan that changed since it was shown is declined, not applied.
 *   - 400 with the reason for an invalid body, an unknown runbook or an unknown target.
 * - `GET /api/runs?runbook=&since=&limit=&cursor=`: run summaries newest first, paged.
 * - `GET /api/runs/{runId}`: one run: `done: false` while it runs, else its outcome and record.
 * - `runbookRunActivity`: the activity of the orchestration (`src/runbooks/manual-run.ts`).
 *
 * While the app's settings or estate config are invalid (`checkReadiness`), every route answers
 * 503 with the problems, as `/api/ready` does, and nothing runs.
 *
 * Errors are JSON `{ error: { code, message } }`; messages name what was expected and found.
 */
import { randomUUID } from 'node:crypto';
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient, DurableOrchestrationStatus } from 'durable-functions';
import { z } from 'zod';
import { createAzureClients, type AzureClients } from '../azure/clients.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { armScopeDiscovery } from '../azure/discovery.ts';
import { resolveTargets, TargetResolutionError } from '../config/resolve.ts';
import { executeRunbook, RunbookTargetError, selectRunTargets } from '../runbooks/execute-runbook.ts';
import { runManualRun, type ManualRunInput, type ManualRunOutput } from '../runbooks/manual-run.ts';
import { PLAN_DIGEST_PATTERN, planDigest } from '../runbooks/plan-digest.ts';
import { getRunbook, isRunbookName, RUNBOOK_NAMES } from '../runbooks/registry.ts';
import { DEFAULT_SINCE, listRuns, parseLimit, parseSince, RunQueryError, summariseRecord, type RunOutcome } from '../runs/run-history.ts';
import { createRunRecordStore, type RunRecordStore } from '../runs/run-record-store.ts';
import type { RunRecord } from '../runs/run-record.ts';
import { AppNotReadyError, checkReadiness, formatReadinessProblem } from '../startup/readiness.ts';
import { FUNCTION_NAMES, routePath, ROUTES } from './function-names.ts';
import { invocationLogger } from './invocation-logger.ts';

/** Largest request body accepted (a target list of a few hundred ids fits easily). */
const MAX_BODY_BYTES = 64 * 1024;
/** What a client polling a running run should wait, in seconds. */
const POLL_AFTER_SECONDS = 2;

/** The body of `POST /api/runs/{runbook}`. */
export const runStartBodySchema = z
  .object({
    mode: z.enum(['plan', 'apply']),
    targets: z.array(z.string().min(1).max(1024)).min(1).max(500).optional(),
    force: z.boolean().optional(),
    runId: z.uuid().optional(),
    /**
     * With `apply`: the `planDigest` of the plan a person confirmed (from a `plan` answer). The
     * run applies only if its own plan has this digest; else nothing is applied (declined).
     */
    confirmedPlan: z.string().regex(PLAN_DIGEST_PATTERN, 'expected the planDigest of a plan answer (64 hex digits)').optional(),
  })
  .strict()
  .refine((body) => body.mode === 'apply' || body.confirmedPlan === undefined, { message: 'confirmedPlan goes with mode apply only', path: ['confirmedPlan'] });

/** The body of `POST /api/runs/{runbook}`, validated. */
export type RunStartBody = z.output<typeof runStartBodySchema>;

/** Where a run is, as `GET /api/runs/{runId}` and the start answer report it (the app client's contract). */
export interface RunStatusBody {
  /** The run id (also the orchestration instance id). */
  readonly id: string;
  readonly runId: string;
  readonly runbook: string;
  /** `accepted`, `pending`, `running`, then the record's status (`succeeded`, `partial`, `failed`, `cancelled`), or `failed`. */
  readonly status: string;
  /** True once the run has ended; then `outcome` says how. */
  readonly done: boolean;
  readonly outcome?: RunOutcome;
  readonly summary?: string;
  readonly statusUrl: string;
}

function errorBody(status: number, code: string, message: string, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, jsonBody: { error: { code, message } } };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, jsonBody: body };
}

/**
 * The status URL of a run: `GET …/runs/{runId}` beside the route the request came in on
 * (`POST …/runs/{runbook}` or `GET …/runs/{runId}`), so the host's route prefix is kept.
 */
function statusUrlOf(request: HttpRequest, runId: string): string {
  const url = new URL(request.url);
  const runsRoot = url.pathname.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  return `${url.origin}${runsRoot}/${routePath(ROUTES.runsGet, { runId }).replace(/^runs\//, '')}`;
}

/** Loads the settings and config, or the 503 answer while they are invalid. */
async function readyConfig(): Promise<{ config: EstateConfig } | { response: HttpResponseInit }> {
  const readiness = await checkReadiness();
  if (readiness.ready) return { config: readiness.config };
  return {
    response: {
      status: 503,
      headers: { 'cache-control': 'no-store', 'retry-after': '30' },
      jsonBody: {
        error: { code: 'NotReady', message: `the app is not ready: ${String(readiness.problems.length)} problem(s) in its settings or estate configuration (GET /api/ready lists them)` },
        problems: readiness.problems.map(formatReadinessProblem),
      },
    },
  };
}

async function withClients<T>(config: EstateConfig, fn: (clients: AzureClients) => Promise<T>): Promise<T> {
  const clients = createAzureClients(config.azure);
  try {
    return await fn(clients);
  } finally {
    await clients.close();
  }
}

async function readBody(request: HttpRequest): Promise<{ body: RunStartBody } | { response: HttpResponseInit }> {
  const expected = 'expected a JSON body { "mode": "plan" | "apply", "targets"?: [ids or names], "force"?: boolean, "runId"?: uuid, "confirmedPlan"?: planDigest }';
  const length = Number(request.headers.get('content-length') ?? '0');
  if (length > MAX_BODY_BYTES) return { response: errorBody(413, 'BodyTooLarge', `${expected}, found ${String(length)} bytes (at most ${String(MAX_BODY_BYTES)})`) };
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) return { response: errorBody(413, 'BodyTooLarge', `${expected}, found more than ${String(MAX_BODY_BYTES)} bytes`) };
  if (text.trim() === '') return { response: errorBody(400, 'InvalidBody', `${expected}, found an empty body`) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { response: errorBody(400, 'InvalidBody', `${expected}, found text that is not JSON`) };
  }
  const result = runStartBodySchema.safeParse(parsed);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.length === 0 ? '(body)' : issue.path.join('.')}: ${issue.message}`);
    return { response: errorBody(400, 'InvalidBody', `${expected}; found: ${issues.join('; ')}`) };
  }
  return { body: result.data };
}

/** The status of an instance, or undefined when the task hub has none with this id. */
async function instanceStatus(client: DurableClient, instanceId: string): Promise<DurableOrchestrationStatus | undefined> {
  try {
    return await client.getStatus(instanceId, { showInput: true });
  } catch (error) {
    // durable-functions reports an unknown instance only in its message ("... replied with HTTP 404 ...").
    if (/\bHTTP 404\b/.test(errorMessage(error))) return undefined;
    throw error;
  }
}

function inputOf(status: DurableOrchestrationStatus): Partial<ManualRunInput> {
  // durable-functions types the input as `any`: the starter wrote a ManualRunInput.
  const input: unknown = status.input;
  return input !== null && typeof input === 'object' ? input : {};
}

async function startRun(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const name = request.params.runbook ?? '';
  if (!isRunbookName(name)) {
    return errorBody(400, 'UnknownRunbook', `runbook: expected one of ${RUNBOOK_NAMES.join(', ')}, found "${name}"`);
  }
  const read = await readBody(request);
  if ('response' in read) return read.response;
  const { body } = read;
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  const runbook = getRunbook(name);
  let targets: string[] | undefined;
  try {
    if (body.targets !== undefined) {
      // The same resolution the run makes (scopes listed through ARM), so a name a scope selects is known here too.
      const selectors = body.targets;
      const resolution = await withClients(config, (clients) => resolveTargets(config, { discovery: armScopeDiscovery(clients) }));
      targets = selectRunTargets(runbook, config, selectors, resolution).map(({ target }) => target.id);
    }
  } catch (error) {
    if (error instanceof RunbookTargetError) return errorBody(400, 'UnknownTarget', error.message);
    if (error instanceof TargetResolutionError) return errorBody(503, 'TargetsUnresolved', error.message);
    throw error;
  }
  if (targets !== undefined && targets.length === 0) return errorBody(400, 'UnknownTarget', `targets: expected targets of ${name}, found none`);
  const principal = request.headers.get('x-ms-client-principal-name');
  const requestedBy = `http ${principal === null ? '(function key)' : principal}`;

  if (body.mode === 'plan') {
    // Read-only: no lock, no record, no notification.
    const result = await withClients(config, (clients) =>
      executeRunbook(runbook, { config, clients, logger: invocationLogger(context), now: () => new Date() }, {
        trigger: 'http',
        mode: 'plan',
        force: body.force === true,
        requestedBy,
        correlationId: context.invocationId,
        writeRecord: false,
        notify: false,
        ...(targets === undefined ? {} : { targets }),
      }),
    );
    return json(200, {
      mode: 'plan',
      runbook: name,
      estate: config.estate,
      outcome: result.exit,
      summary: result.summary,
      ...(result.refusal === undefined ? {} : { refusal: result.refusal }),
      plans: result.plans,
      planDigest: planDigest(result.plans),
      record: result.record,
    });
  }

  const runId = (body.runId ?? randomUUID()).toLowerCase();
  const statusUrl = statusUrlOf(request, runId);
  const accepted = (duplicate: boolean): HttpResponseInit =>
    json(
      202,
      { id: runId, runId, runbook: name, status: 'accepted', done: false, statusUrl, ...(duplicate ? { duplicate: true } : {}) } satisfies RunStatusBody & { duplicate?: boolean },
      { location: statusUrl, 'retry-after': String(POLL_AFTER_SECONDS) },
    );
  const client = df.getClient(context);
  const duplicateOf = async (): Promise<HttpResponseInit | undefined> => {
    const existing = await instanceStatus(client, runId);
    if (existing === undefined) return undefined;
    if (inputOf(existing).runbook !== name) {
      return errorBody(409, 'RunIdInUse', `runId: expected a new run id or one of a ${name} run, found ${runId} in use by a run of ${inputOf(existing).runbook ?? existing.name}`);
    }
    return accepted(true);
  };
  const before = await duplicateOf();
  if (before !== undefined) return before;
  const input: ManualRunInput = {
    runId,
    runbook: name,
    force: body.force === true,
    requestedBy,
    correlationId: context.invocationId,
    requestedAt: new Date().toISOString(),
    ...(targets === undefined ? {} : { targets }),
    ...(body.confirmedPlan === undefined ? {} : { confirmedPlan: body.confirmedPlan }),
  };
  try {
    await client.startNew(FUNCTION_NAMES.runbookRunOrchestrator, { instanceId: runId, input });
  } catch (error) {
    // Two requests with one run id raced: the other one started it.
    const raced = await duplicateOf();
    if (raced !== undefined) return raced;
    throw error;
  }
  context.log(`run ${runId} of ${name} on ${config.estate} started (${requestedBy})`);
  return accepted(false);
}

async function listRunsRoute(request: HttpRequest): Promise<HttpResponseInit> {
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  const runbook = request.query.get('runbook') ?? undefined;
  if (runbook !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(runbook)) {
    return errorBody(400, 'InvalidQuery', `runbook: expected a runbook name such as ${RUNBOOK_NAMES.join(', ')}, found "${runbook}"`);
  }
  let since: Date;
  let limit: number;
  try {
    since = parseSince(request.query.get('since') ?? DEFAULT_SINCE);
    limit = parseLimit(request.query.get('limit') ?? undefined);
  } catch (error) {
    if (error instanceof RunQueryError) return errorBody(400, 'InvalidQuery', error.message);
    throw error;
  }
  const cursor = request.query.get('cursor') ?? undefined;
  return withClients(config, async (clients) => {
    const store = await storeOf(config, clients);
    if (store === undefined) return errorBody(404, 'NoRunRecordStore', `estate ${config.estate}: expected runRecords.blobServiceUrl or runRecords.storageAccountId, found neither: no run is recorded`);
    try {
      const page = await listRuns(store, { since, limit, ...(runbook === undefined ? {} : { runbook }), ...(cursor === undefined ? {} : { cursor }) });
      const next = page.next === undefined ? undefined : new URL(request.url);
      next?.searchParams.set('cursor', page.next ?? '');
      return json(200, { estate: config.estate, since: since.toISOString(), runs: page.runs, truncated: page.truncated, ...(next === undefined ? {} : { next: next.href }) });
    } catch (error) {
      if (error instanceof RunQueryError) return errorBody(400, 'InvalidQuery', error.message);
      throw error;
    }
  });
}

async function storeOf(config: EstateConfig, clients: AzureClients): Promise<RunRecordStore | undefined> {
  if (config.runRecords.blobServiceUrl === undefined && config.runRecords.storageAccountId === undefined) return undefined;
  return createRunRecordStore(config, clients);
}

function finished(request: HttpRequest, record: RunRecord, blobName: string): HttpResponseInit {
  const run = summariseRecord(record, blobName);
  return json(200, {
    id: record.runId,
    runId: record.runId,
    runbook: record.runbook,
    status: record.status,
    done: true,
    outcome: run.outcome,
    summary: `${record.runbook} on ${record.estate}: ${run.outcome}`,
    statusUrl: statusUrlOf(request, record.runId),
    run,
    record,
  });
}

async function getRunRoute(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const runId = (request.params.runId ?? '').toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(runId)) {
    return errorBody(400, 'InvalidRunId', `runId: expected a run id (a uuid), found "${request.params.runId ?? ''}"`);
  }
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  return withClients(config, async (clients) => {
    const store = await storeOf(config, clients);
    const recorded = await store?.findById(runId);
    if (recorded !== undefined) return finished(request, recorded.record, recorded.blobName);
    const instance = await instanceStatus(df.getClient(context), runId);
    if (instance === undefined) return errorBody(404, 'RunNotFound', `run ${runId}: expected a recorded run or one in progress, found neither`);
    const input = inputOf(instance);
    const runbook = input.runbook ?? '';
    const statusUrl = statusUrlOf(request, runId);
    const status: string = instance.runtimeStatus;
    if (status === 'Pending' || status === 'Running' || status === 'ContinuedAsNew') {
      return json(200, { id: runId, runId, runbook, status: status === 'Pending' ? 'pending' : 'running', done: false, statusUrl } satisfies RunStatusBody, { 'retry-after': String(POLL_AFTER_SECONDS) });
    }
    if (status === 'Completed') {
      // Finished: its record may have been written without the id index (a crash in between).
      if (store !== undefined && input.requestedAt !== undefined) {
        const late = await store.findById(runId, { runbook, from: new Date(input.requestedAt) });
        if (late !== undefined) return finished(request, late.record, late.blobName);
      }
      const output = instance.output as ManualRunOutput | null;
      return json(200, { id: runId, runId, runbook, status: output?.run?.status ?? 'completed', done: true, outcome: output?.outcome ?? 'failed', summary: output?.summary ?? '', statusUrl, ...(output?.run === undefined ? {} : { run: output.run }) } satisfies RunStatusBody & { run?: unknown });
    }
    return json(200, { id: runId, runId, runbook, status: 'failed', done: true, outcome: 'failed', summary: `the run's orchestration ended ${status}: ${typeof instance.output === 'string' ? instance.output : JSON.stringify(instance.output)}`, statusUrl } satisfies RunStatusBody);
  });
}

app.http(FUNCTION_NAMES.runsStart, {
  route: ROUTES.runsStart,
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: startRun,
});

app.http(FUNCTION_NAMES.runsList, {
  route: ROUTES.runsList,
  methods: ['GET'],
  authLevel: 'function',
  handler: listRunsRoute,
});

app.http(FUNCTION_NAMES.runsGet, {
  route: ROUTES.runsGet,
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: getRunRoute,
});

df.app.activity(FUNCTION_NAMES.runbookRunActivity, {
  handler: async (input: ManualRunInput, context: InvocationContext): Promise<ManualRunOutput> => {
    const readiness = await checkReadiness();
    // Thrown, so the durable retry tries again once the settings are fixed (nothing ran).
    if (!readiness.ready) throw new AppNotReadyError(readiness.problems);
    const { config } = readiness;
    const output = await withClients(config, (clients) => runManualRun(input, { config, clients, logger: invocationLogger(context), now: () => new Date() }));
    context.log(output.summary);
    return output;
  },
});
