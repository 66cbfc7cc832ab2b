/**
 * `GET /api/remediations/{id}` (function key): one remediation, running or finished — its
 * status, where it is on its ladder, and the evidence so far (guardrail decisions, plans,
 * results, health probes, undo). Read from the orchestration's custom status while it runs and
 * from its output once it has ended; neither holds a secret.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient } from 'durable-functions';
import { isRemediationInstanceId } from '../remediation/flow-ids.ts';
import type { RemediationOutput, RemediationStatus } from '../orchestrators/remediation.ts';
import { instanceStatus } from './alerts.ts';
import { REMEDIATION_FUNCTION_NAMES, REMEDIATION_ROUTES } from './function-names.ts';

/** The body of `GET /api/remediations/{id}`. */
export interface RemediationView {
  readonly id: string;
  /** The orchestration's runtime status (`Pending`, `Running`, `Completed`, `Failed`, ...). */
  readonly runtimeStatus: string;
  /** The phase while it runs, its outcome once done (the app client's status contract). */
  readonly status: string;
  readonly done: boolean;
  readonly phase: string;
  readonly outcome?: string;
  readonly reason?: string;
  readonly summary?: string;
  readonly target?: string;
  readonly rule?: string;
  readonly dryRun?: boolean;
  readonly ladder: readonly string[];
  /** The rung being worked on (0-based; the ladder's length once it is through). */
  readonly rung: number;
  readonly steps: RemediationStatus['steps'];
  readonly watch?: RemediationOutput['watch'];
  readonly record?: RemediationOutput['record'];
  readonly createdAt?: string;
  readonly lastUpdatedAt?: string;
  readonly statusUrl: string;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit => ({ status, headers: { 'cache-control': 'no-store', ...headers }, jsonBody: body });

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The handler of `GET /api/remediations/{id}`. */
export async function remediationsGetHandler(request: HttpRequest, client: DurableClient): Promise<HttpResponseInit> {
  const id = request.params.id ?? '';
  if (!isRemediationInstanceId(id)) {
    return json(400, { error: { code: 'InvalidId', message: `expected a remediation id (rem- and 32 hex digits, as POST /api/alerts answers), found ${JSON.stringify(id.slice(0, 80))}` } });
  }
  const status = await instanceStatus(client, id);
  if (status === undefined) return json(404, { error: { code: 'NotFound', message: `remediation ${id}: expected one with this id, found none (it may have been purged)` } });
  const runtimeStatus: string = status.runtimeStatus;
  const done = ['Completed', 'Failed', 'Terminated'].includes(runtimeStatus);
  const custom = (asObject(status.customStatus) ?? {}) as Partial<RemediationStatus>;
  const output = runtimeStatus === 'Completed' ? (asObject(status.output) as Partial<RemediationOutput> | undefined) : undefined;
  const outcome = output?.outcome ?? (runtimeStatus === 'Failed' || runtimeStatus === 'Terminated' ? 'failed' : undefined);
  const view: RemediationView = {
    id,
    runtimeStatus,
    status: done ? (outcome ?? 'done') : (custom.phase ?? 'pending'),
    done,
    phase: done ? 'done' : (custom.phase ?? 'pending'),
    ...(output?.outcome !== undefined ? { outcome: output.outcome, reason: output.reason } : runtimeStatus === 'Failed' ? { outcome: 'failed', reason: typeof status.output === 'string' ? status.output.slice(0, 2000) : 'the orchestration failed' } : custom.outcome !== undefined ? { outcome: custom.outcome, reason: custom.reason } : {}),
    ...(custom.summary === undefined ? {} : { summary: custom.summary }),
    ...(custom.target === undefined ? {} : { target: custom.target }),
    ...(custom.rule === undefined ? {} : { rule: custom.rule }),
    ...(custom.dryRun === undefined ? {} : { dryRun: custom.dryRun }),
    ladder: custom.ladder ?? [],
    rung: custom.rung ?? -1,
    steps: output?.steps ?? custom.steps ?? [],
    ...(output?.watch === undefined ? {} : { watch: output.watch }),
    ...(output?.record === undefined ? {} : { record: output.record }),
    createdAt: new Date(status.createdTime).toISOString(),
    lastUpdatedAt: new Date(status.lastUpdatedTime).toISOString(),
    statusUrl: request.url.split('?')[0] ?? request.url,
  };
  return json(200, view, done ? {} : { 'retry-after': '2' });
}

df.app.client.http(REMEDIATION_FUNCTION_NAMES.remediationsGet, {
  route: REMEDIATION_ROUTES.remediationsGet,
  methods: ['GET'],
  authLevel: 'function',
  handler: remediationsGetHandler,
});
