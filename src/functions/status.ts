/**
 * The go/no-go status (issue 12), behind the function key on both routes (never anonymous: it
 * names production resources):
 *
 * - `GET /api/status[?runbook=&outcome=&since=&limit=]` (`statusGet`): the evidence as JSON
 *   (src/status/model.ts `EstateStatus`), 200 for go and no-go alike (the decision is in the body);
 * - `GET /api/status/page[?…the same filters]` (`statusPage`): the same evidence as one HTML page,
 *   server-rendered, no script (src/status/page.ts).
 *
 * Thin: readiness, the filters, one `collectStatus` call. Reads only.
 */
import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { createAzureClients } from '../azure/clients.ts';
import { collectStatus } from '../status/collect.ts';
import type { RunFilters } from '../status/model.ts';
import { STATUS_FUNCTIONS } from '../status/names.ts';
import { renderStatusPage } from '../status/page.ts';
import { json, readyConfig, siblingUrl } from './http-common.ts';

/** The run filters of a request's query string. */
export function filtersOf(request: HttpRequest): Partial<RunFilters> {
  const limit = Number(request.query.get('limit') ?? '');
  return {
    ...(request.query.get('runbook') === null ? {} : { runbook: request.query.get('runbook') ?? '' }),
    ...(request.query.get('outcome') === null ? {} : { outcome: request.query.get('outcome') ?? '' }),
    ...(request.query.get('since') === null ? {} : { since: request.query.get('since') ?? '' }),
    ...(Number.isInteger(limit) && limit > 0 ? { limit } : {}),
  };
}

async function statusGet(request: HttpRequest): Promise<HttpResponseInit> {
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const clients = createAzureClients(ready.config.azure);
  try {
    const status = await collectStatus({ config: ready.config, clients, filters: filtersOf(request), linkBase: siblingUrl(request, 'runs/') });
    return json(200, status);
  } finally {
    await clients.close();
  }
}

async function statusPage(request: HttpRequest): Promise<HttpResponseInit> {
  const ready = await readyConfig();
  if ('response' in ready) return ready.response;
  const clients = createAzureClients(ready.config.azure);
  try {
    const status = await collectStatus({ config: ready.config, clients, filters: filtersOf(request), linkBase: siblingUrl(request, 'runs/') });
    return {
      status: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        // No script, no external resource: the policy says so to the browser too.
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      },
      body: renderStatusPage(status, { formAction: new URL(request.url).pathname }),
    };
  } finally {
    await clients.close();
  }
}

app.http(STATUS_FUNCTIONS.statusPage.name, { route: STATUS_FUNCTIONS.statusPage.route, methods: ['GET'], authLevel: 'function', handler: statusPage });
app.http(STATUS_FUNCTIONS.statusGet.name, { route: STATUS_FUNCTIONS.statusGet.route, methods: ['GET'], authLevel: 'function', handler: statusGet });
