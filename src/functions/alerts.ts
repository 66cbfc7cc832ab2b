/**
 * `POST /api/alerts`: the webhook of an Azure Monitor action group (common alert schema).
 *
 * - **Auth**: the function key, always. With app setting `OPS_AUTOPILOT_SECURE_WEBHOOK_AUDIENCES`
 *   (comma-separated: the webhook app's identifier URI and/or client id) the action group's
 *   Secure Webhook bearer token is required too, verified against the tenant's signing keys
 *   (`OPS_AUTOPILOT_SECURE_WEBHOOK_TENANT_ID`, else `AZURE_TENANT_ID`; role
 *   `OPS_AUTOPILOT_SECURE_WEBHOOK_ROLE`, default `ActionGroupsSecureWebhook`): 401 for a bad
 *   token, 503 when the keys cannot be read.
 * - **Validation**: a body that is not JSON, too large, not the common schema or missing
 *   essentials gets 400 with, per field, what was expected and what was found; nothing starts.
 * - **Fired**: the idempotency key (`alertId` + `monitorCondition`) names the durable instance
 *   (`rem-<hash>`); the answer is 202 with the status URL (`GET /api/remediations/{id}`), also in
 *   `Location`. A delivery whose instance exists (action groups retry) starts nothing and gets the
 *   same URL with `duplicate: true`; two starts that race meet the task hub's 409 and become
 *   duplicates, and should both run, the per-resource lock and the guardrails' dedupe let one act.
 * - **Resolved** starts nothing: it leaves a marker the open remediation reads before its next
 *   rung (it then stops and resolves its page), resolves the page of a remediation that already
 *   escalated, and is recorded as a run record of its own.
 *
 * The trigger parses and starts; everything else happens in `remediationOrchestrator`.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient, DurableOrchestrationStatus } from 'durable-functions';
import { alertIdempotencyKey, MAX_ALERT_BODY_BYTES, parseCommonAlert, type ParsedAlert } from '../alerts/common-alert-schema.ts';
import { SecureWebhookError, SecureWebhookVerifier, DEFAULT_SECURE_WEBHOOK_ROLE } from '../alerts/secure-webhook.ts';
import { createAzureClients, type AzureClients } from '../azure/clients.ts';
import { resolveEndpoints } from '../azure/cloud.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { PayloadError, readJsonBody } from '../intake/payload.ts';
import { finishActivity, flowStoreFor, resolutionName, type RemediationInput, type ResolutionMarker } from '../remediation/flow-activities.ts';
import { incidentDedupKey, remediationInstanceId } from '../remediation/flow-ids.ts';
import { remediationServices, type Json } from '../remediation/flow-services.ts';
import { redactSecrets } from '../runs/secret-guard.ts';
import { checkReadiness, formatReadinessProblem } from '../startup/readiness.ts';
import { REMEDIATION_FUNCTION_NAMES, REMEDIATION_ROUTES, routePath } from './function-names.ts';
import { invocationLogger } from './invocation-logger.ts';

/** The answer to an accepted alert. */
export interface AlertAccepted {
  /** The remediation's id (the durable instance id). */
  readonly id: string;
  readonly statusUrl: string;
  /** `accepted` (Fired: the remediation runs; follow `statusUrl`) or `resolved`. */
  readonly status: 'accepted' | 'resolved';
  /** False for Fired (follow `statusUrl`); true for Resolved, which starts nothing. */
  readonly done: boolean;
  readonly monitorCondition: 'Fired' | 'Resolved';
  /** True when this delivery started nothing because the remediation exists already. */
  readonly duplicate: boolean;
  /** For Resolved: what it closed (`running`: the open remediation stops at its next rung; `escalated`: its page is resolved; `none`). */
  readonly closed?: 'running' | 'escalated' | 'finished' | 'none';
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit => ({
  status,
  headers: { 'cache-control': 'no-store', ...headers },
  jsonBody: body,
});

/** The status URL of a remediation: `…/remediations/{id}` beside `…/alerts`, keeping the route prefix. */
export function remediationStatusUrl(requestUrl: string, id: string): string {
  const url = new URL(requestUrl);
  const root = url.pathname.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  return `${url.origin}${root}/${routePath(REMEDIATION_ROUTES.remediationsGet, { id })}`;
}

/** The Secure Webhook settings, or undefined when the webhook is not a Secure Webhook. */
export function secureWebhookSettings(env: Readonly<Record<string, string | undefined>> = process.env): { audiences: string[]; tenantId: string | undefined; role: string } | undefined {
  const audiences = (env.OPS_AUTOPILOT_SECURE_WEBHOOK_AUDIENCES ?? '').split(',').map((value) => value.trim()).filter((value) => value !== '');
  if (audiences.length === 0) return undefined;
  const tenantId = (env.OPS_AUTOPILOT_SECURE_WEBHOOK_TENANT_ID ?? env.AZURE_TENANT_ID)?.trim();
  return { audiences, tenantId: tenantId === '' ? undefined : tenantId, role: env.OPS_AUTOPILOT_SECURE_WEBHOOK_ROLE?.trim() || DEFAULT_SECURE_WEBHOOK_ROLE };
}

let verifierCache: { key: string; verifier: SecureWebhookVerifier; clients: AzureClients } | undefined;

/** One verifier per settings and estate, kept for the life of the process (it caches the tenant's keys). */
async function verifierFor(config: EstateConfig, settings: NonNullable<ReturnType<typeof secureWebhookSettings>> & { tenantId: string }): Promise<SecureWebhookVerifier> {
  const authorityHost = resolveEndpoints(config.azure).authorityHost;
  const key = JSON.stringify([settings, authorityHost, config.azure.caFile ?? null]);
  if (verifierCache?.key === key) return verifierCache.verifier;
  const clients = createAzureClients(config.azure);
  const agent = await clients.agent();
  const verifier = new SecureWebhookVerifier({
    tenantId: settings.tenantId,
    audiences: settings.audiences,
    requiredRole: settings.role,
    authorityHost,
    ...(agent === undefined ? {} : { agent }),
  });
  const previous = verifierCache;
  verifierCache = { key, verifier, clients };
  if (previous !== undefined) await previous.clients.close();
  return verifier;
}

/** The status of an instance, or undefined when the task hub has none with this id. */
export async function instanceStatus(client: DurableClient, instanceId: string): Promise<DurableOrchestrationStatus | undefined> {
  try {
    const status = await client.getStatus(instanceId);
    // The durable client answers an unknown id with an empty status on some versions, a 404 on others.
    return (status.instanceId as string | undefined) === undefined || status.instanceId === '' ? undefined : status;
  } catch (error) {
    // durable-functions reports an unknown instance only in its message ("... replied with HTTP 404 ...").
    if (/\b404\b/.test(errorMessage(error))) return undefined;
    throw error;
  }
}

function isConflict(error: unknown): boolean {
  return /\b409\b|already exists/i.test(errorMessage(error));
}

async function readyConfig(): Promise<{ config: EstateConfig } | { response: HttpResponseInit }> {
  const readiness = await checkReadiness();
  if (readiness.ready) return { config: readiness.config };
  return {
    response: json(
      503,
      { error: { code: 'NotReady', message: `the app is not ready: ${String(readiness.problems.length)} problem(s) in its settings or estate configuration (GET /api/ready lists them)` }, problems: readiness.problems.map(formatReadinessProblem) },
      { 'retry-after': '30' },
    ),
  };
}

/** Starts the remediation of a Fired alert, or finds the one that exists. */
async function startFired(request: HttpRequest, client: DurableClient, alert: ParsedAlert, payload: Json): Promise<HttpResponseInit> {
  const id = remediationInstanceId(alert.idempotencyKey);
  const statusUrl = remediationStatusUrl(request.url, id);
  const accepted = (duplicate: boolean): HttpResponseInit => json(202, { id, statusUrl, status: 'accepted', done: false, monitorCondition: 'Fired', duplicate } satisfies AlertAccepted, { location: statusUrl, 'retry-after': '5' });
  if ((await instanceStatus(client, id)) !== undefined) return accepted(true);
  const input: RemediationInput = { source: 'alert', payload, triggerKey: alert.idempotencyKey, requestedBy: `action group (alert rule ${alert.alertRule ?? 'unknown'})`, receivedAt: new Date().toISOString() };
  try {
    await client.startNew(REMEDIATION_FUNCTION_NAMES.remediationOrchestrator, { instanceId: id, input });
  } catch (error) {
    if (isConflict(error)) return accepted(true);
    throw error;
  }
  return accepted(false);
}

/** Closes what a Resolved alert resolves; starts nothing. */
async function resolve(request: HttpRequest, client: DurableClient, alert: ParsedAlert, context: InvocationContext): Promise<HttpResponseInit> {
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const { config } = ready;
  const firedId = remediationInstanceId(alertIdempotencyKey(alert.alertId, 'Fired'));
  const resolvedId = remediationInstanceId(alert.idempotencyKey);
  const statusUrl = remediationStatusUrl(request.url, firedId);
  const clients = createAzureClients(config.azure);
  try {
    const store = await flowStoreFor(config, clients);
    const resolvedAt = (alert.resolvedAt ?? new Date()).toISOString();
    const marker: ResolutionMarker = { firedInstanceId: firedId, resolvedAt, alertId: alert.alertId };
    await store.write(resolutionName(firedId), marker as unknown as Json);
    const fired = await instanceStatus(client, firedId);
    let closed: NonNullable<AlertAccepted['closed']> = 'none';
    let page: 'resolve' | undefined;
    if (fired !== undefined) {
      const running = ['Pending', 'Running', 'ContinuedAsNew'].includes(fired.runtimeStatus);
      const output: unknown = fired.output;
      const escalated = output !== null && typeof output === 'object' && (output as { outcome?: unknown }).outcome === 'escalated';
      closed = running ? 'running' : escalated ? 'escalated' : 'finished';
      if (escalated) page = 'resolve';
    }
    const deps = { config, clients, services: remediationServices(), logger: invocationLogger(context), now: () => new Date() };
    // The Resolved notification's own record (its id derives from its key, so a retry records once); it pages only to resolve an escalation.
    await finishActivity(
      {
        instanceId: resolvedId,
        startedAt: new Date().toISOString(),
        input: { source: 'alert', triggerKey: alert.idempotencyKey, requestedBy: `action group (alert rule ${alert.alertRule ?? 'unknown'})` },
        match: undefined,
        outcome: 'resolved',
        reason: `alert ${alert.alertRule ?? alert.alertId} resolved; remediation ${firedId}: ${closed === 'running' ? 'stops before its next rung' : closed === 'escalated' ? 'had escalated, its page is resolved' : closed === 'finished' ? 'had finished' : 'none was open'}`,
        steps: [],
        ...(page === undefined ? {} : { page }),
      },
      { ...deps, services: { ...deps.services, page: (cfg, cl, pageRequest) => deps.services.page(cfg, cl, { ...pageRequest, dedupKey: incidentDedupKey(firedId) }) } },
    );
    return json(202, { id: firedId, statusUrl, status: 'resolved', done: true, monitorCondition: 'Resolved', duplicate: false, closed } satisfies AlertAccepted, { location: statusUrl });
  } finally {
    await clients.close();
  }
}

/** The handler of `POST /api/alerts`. */
export async function alertsHandler(request: HttpRequest, client: DurableClient, context: InvocationContext): Promise<HttpResponseInit> {
  const secure = secureWebhookSettings();
  if (secure !== undefined) {
    if (secure.tenantId === undefined) {
      return json(503, { error: { code: 'SecureWebhookMisconfigured', message: 'Secure Webhook: expected OPS_AUTOPILOT_SECURE_WEBHOOK_TENANT_ID or AZURE_TENANT_ID with OPS_AUTOPILOT_SECURE_WEBHOOK_AUDIENCES, found neither' } });
    }
    const ready = await readyConfig();
    if ('response' in ready) return ready.response;
    try {
      await (await verifierFor(ready.config, { ...secure, tenantId: secure.tenantId })).verify(request.headers.get('authorization') ?? undefined);
    } catch (error) {
      if (error instanceof SecureWebhookError) {
        context.warn(`alerts: refused a Secure Webhook call: ${error.message}`);
        return json(error.status, { error: { code: 'Unauthorized', reason: error.reason, message: error.message } }, error.status === 401 ? { 'www-authenticate': error.wwwAuthenticate() } : { 'retry-after': '30' });
      }
      throw error;
    }
  }
  const length = Number(request.headers.get('content-length') ?? '0');
  let alert: ParsedAlert;
  let payload: Json;
  try {
    if (length > MAX_ALERT_BODY_BYTES) {
      throw new PayloadError('alert', [{ path: '', expected: `expected a body of at most ${String(MAX_ALERT_BODY_BYTES)} bytes`, found: `${String(length)} bytes` }]);
    }
    const raw = readJsonBody(new Uint8Array(await request.arrayBuffer()), { what: 'alert', maxBytes: MAX_ALERT_BODY_BYTES, contentType: request.headers.get('content-type') ?? undefined });
    alert = parseCommonAlert(raw);
    payload = redactSecrets(raw) as Json;
    // The orchestration re-reads the redacted payload: a secret-looking value where the schema needs data cannot be passed on.
    parseCommonAlert(payload);
  } catch (error) {
    if (error instanceof PayloadError) {
      context.warn(`alerts: refused a payload: ${error.message}`);
      return json(400, error.toResponseBody('InvalidAlert'));
    }
    throw error;
  }
  return alert.monitorCondition === 'Fired' ? startFired(request, client, alert, payload) : resolve(request, client, alert, context);
}

df.app.client.http(REMEDIATION_FUNCTION_NAMES.alerts, {
  route: REMEDIATION_ROUTES.alerts,
  methods: ['POST'],
  authLevel: 'function',
  handler: alertsHandler,
});
