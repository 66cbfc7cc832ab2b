/**
 * `GET /api/guardrails[?target=…]` (guardrailsStatus) and `POST /api/guardrails/{target}/reset`
 * (guardrailsReset), both behind the function key. Thin: check readiness, resolve the target
 * against the estate's targets (by name, unique end of its id, or the URL-encoded full id), call
 * the guardrails module. A reset is recorded with who asked: the body's `by`, else the
 * authenticated principal App Service put in `x-ms-client-principal-name`, else "function key".
 */
import { resolveWithArm } from '../azure/discovery.ts';
import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { createAzureClients } from '../azure/clients.ts';
import { selectTargetsBy, TargetSelectorError } from '../config/target-selector.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { guardrailStatus, openGuardrailStore, resetGuardrails } from '../remediation/guardrails.ts';
import { hasStateStore } from '../state/tables.ts';
import { checkReadiness, formatReadinessProblem } from '../startup/readiness.ts';

const NO_STORE = { 'cache-control': 'no-store' };

function problem(status: number, message: string): HttpResponseInit {
  return { status, headers: NO_STORE, jsonBody: { error: message } };
}

/** The configured target a route parameter names, or the response saying why not. */
function resolveTarget(targets: readonly { readonly id: string }[], selector: string): { id: string } | { response: HttpResponseInit } {
  try {
    const [target] = selectTargetsBy(targets, [selector], 'estate targets');
    if (target === undefined) return { response: problem(404, `expected an estate target, found "${selector}"`) };
    return { id: target.id };
  } catch (error) {
    if (error instanceof TargetSelectorError) return { response: problem(error.problems[0]?.problem === 'ambiguous' ? 400 : 404, error.message) };
    throw error;
  }
}

/** Shared prologue: readiness, a state store, a client layer. */
async function withStore<T extends HttpResponseInit>(
  readOnly: boolean,
  fn: (config: EstateConfig, store: ReturnType<typeof openGuardrailStore>, targets: readonly { readonly id: string }[]) => Promise<T>,
): Promise<HttpResponseInit> {
  const readiness = await checkReadiness();
  if (!readiness.ready) return { status: 503, headers: { ...NO_STORE, 'retry-after': '30' }, jsonBody: { error: 'not ready', problems: readiness.problems.map(formatReadinessProblem) } };
  const config = readiness.config;
  if (!hasStateStore(config)) return problem(503, `estate ${config.estate}: expected a state store for the guardrails (state.tableServiceUrl, state.storageAccountId or runRecords.storageAccountId), found none`);
  const clients = createAzureClients(config.azure);
  try {
    // Targets as every trigger resolves them (scopes listed through ARM).
    const { targets } = await resolveWithArm(config, clients);
    return await fn(config, openGuardrailStore(config, clients, { readOnly }), targets);
  } catch (error) {
    return problem(502, `guardrail state could not be read or written: ${errorMessage(error)}`);
  } finally {
    await clients.close();
  }
}

/** GET /api/guardrails[?target=<name or id>][&dryRun=true] */
export async function guardrailsStatusHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const selector = request.query.get('target') ?? undefined;
  const dryRun = request.query.get('dryRun') === 'true';
  return withStore(true, async (config, store, targets) => {
    let id: string | undefined;
    if (selector !== undefined && selector !== '') {
      const resolved = resolveTarget(targets, selector);
      if ('response' in resolved) return resolved.response;
      id = resolved.id;
    }
    return { status: 200, headers: NO_STORE, jsonBody: await guardrailStatus(store, id, { dryRun }) };
  });
}

/** POST /api/guardrails/{target}/reset, body optional: `{ "by": "alice", "dryRun": false }` */
export async function guardrailsResetHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const selector = decodeURIComponent(request.params.target ?? '');
  let body: unknown = {};
  const text = await request.text();
  if (text.trim() !== '') {
    if (text.length > 4096) return problem(413, `expected a body of at most 4096 bytes, found ${String(text.length)}`);
    try {
      body = JSON.parse(text);
    } catch {
      return problem(400, 'expected an empty body or a JSON object { "by": "<who>" }, found something that is not JSON');
    }
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return problem(400, 'expected a JSON object { "by": "<who>" }');
  const fields = body as Record<string, unknown>;
  if (fields.by !== undefined && (typeof fields.by !== 'string' || fields.by.length > 200)) return problem(400, 'expected "by" to be a string of at most 200 characters');
  const by = (typeof fields.by === 'string' && fields.by.trim() !== '' ? fields.by : undefined) ?? request.headers.get('x-ms-client-principal-name') ?? 'function key';
  return withStore(false, async (config, store, targets) => {
    const resolved = resolveTarget(targets, selector);
    if ('response' in resolved) return resolved.response;
    const reset = await resetGuardrails(store, resolved.id, `${by} (HTTP)`, { dryRun: fields.dryRun === true });
    return { status: 200, headers: NO_STORE, jsonBody: reset };
  });
}

app.http('guardrailsStatus', { route: 'guardrails', methods: ['GET'], authLevel: 'function', handler: guardrailsStatusHandler });
app.http('guardrailsReset', { route: 'guardrails/{target}/reset', methods: ['POST'], authLevel: 'function', handler: guardrailsResetHandler });
