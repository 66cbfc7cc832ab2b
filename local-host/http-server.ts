import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { CoreHttpCookie, CoreHttpData, CoreInvocationResponse } from './functions-core-types.ts';
import type { FunctionInfo } from './function-registry.ts';
import type { InMemoryTaskHub, RuntimeStatus } from './durable/task-hub.ts';
import { OrchestrationInstanceError } from './durable/durable-errors.ts';
import { EventGridPayloadError, parseEventGridBody, subscriptionValidationCode } from './event-grid.ts';
import type { RouteTemplate } from './route-template.ts';
import { compileRoute } from './route-template.ts';

/** Function and admin keys the host checks (`x-functions-key` header or `code` query). */
export interface HostKeys {
  readonly master: string;
  readonly function: string;
}

/** What the HTTP server needs from the host. */
export interface HostServerContext {
  readonly routePrefix: string;
  readonly keys: HostKeys;
  readonly functions: readonly FunctionInfo[];
  readonly hub: InMemoryTaskHub;
  baseUrl(): string;
  invokeHttp(info: FunctionInfo, request: CoreHttpData): Promise<CoreInvocationResponse>;
  /** Admin-endpoint invocation of a non-HTTP function; resolves when it has been accepted. */
  invokeAdmin(info: FunctionInfo, input: string | undefined): void;
  invokeEventGrid(info: FunctionInfo, event: Record<string, unknown>): Promise<void>;
  log(message: string): void;
}

function keyMatches(candidate: string | undefined, expected: string): boolean {
  if (!candidate) return false;
  const a = Buffer.from(candidate);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function presentedKey(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['x-functions-key'];
  return (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('code') ?? undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

function cookieHeader(cookie: CoreHttpCookie): string {
  const parts = [`${cookie.name ?? ''}=${cookie.value ?? ''}`];
  if (cookie.domain?.value) parts.push(`Domain=${cookie.domain.value}`);
  if (cookie.path?.value) parts.push(`Path=${cookie.path.value}`);
  const seconds = cookie.expires?.value?.seconds;
  if (typeof seconds === 'number') parts.push(`Expires=${new Date(seconds * 1000).toUTCString()}`);
  if (typeof cookie.maxAge?.value === 'number') parts.push(`Max-Age=${cookie.maxAge.value}`);
  if (cookie.secure?.value) parts.push('Secure');
  if (cookie.httpOnly?.value) parts.push('HttpOnly');
  if (cookie.sameSite === 'lax') parts.push('SameSite=Lax');
  else if (cookie.sameSite === 'strict') parts.push('SameSite=Strict');
  else if (cookie.sameSite === 'explicitNone') parts.push('SameSite=None');
  return parts.join('; ');
}

function writeHttpResult(res: ServerResponse, http: CoreHttpData | null | undefined): void {
  if (!http) {
    res.writeHead(204);
    res.end();
    return;
  }
  const headers: Record<string, string | string[]> = { ...(http.headers ?? {}) };
  const cookies = (http.cookies ?? []).map(cookieHeader);
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  const body = http.body?.bytes ? Buffer.from(http.body.bytes) : typeof http.body?.string === 'string' ? Buffer.from(http.body.string) : Buffer.alloc(0);
  res.writeHead(Number(http.statusCode ?? '200'), headers);
  res.end(body);
}

function findHttpOutput(info: FunctionInfo, response: CoreInvocationResponse): CoreHttpData | null | undefined {
  const ret = info.bindings.$return;
  if (ret && String(ret.type).toLowerCase() === 'http') return response.returnValue?.http;
  for (const out of response.outputData ?? []) {
    const binding = out.name ? info.bindings[out.name] : undefined;
    if (binding && String(binding.type).toLowerCase() === 'http') return out.data?.http;
  }
  return undefined;
}

/** The management payload the extension returns for an instance (URLs with the instance id filled in). */
export function managementPayload(baseUrl: string, taskHub: string, instanceId: string): Record<string, string> {
  const root = `${baseUrl}/runtime/webhooks/durabletask/instances/${encodeURIComponent(instanceId)}`;
  const q = `taskHub=${encodeURIComponent(taskHub)}&connection=Storage`;
  return {
    id: instanceId,
    statusQueryGetUri: `${root}?${q}`,
    sendEventPostUri: `${root}/raiseEvent/{eventName}?${q}`,
    terminatePostUri: `${root}/terminate?reason={text}&${q}`,
    rewindPostUri: `${root}/rewind?reason={text}&${q}`,
    purgeHistoryDeleteUri: `${root}?${q}`,
    restartPostUri: `${root}/restart?${q}`,
    suspendPostUri: `${root}/suspend?reason={text}&${q}`,
    resumePostUri: `${root}/resume?reason={text}&${q}`,
  };
}

/**
 * Builds the request handler of the local host: `/{routePrefix}/...` for HTTP triggers,
 * `/admin/functions/{name}` for on-demand invocation, `/runtime/webhooks/EventGrid` for Event Grid
 * deliveries and `/runtime/webhooks/durabletask/...` for the Durable client API.
 */
export function createHostRequestHandler(ctx: HostServerContext): (req: IncomingMessage, res: ServerResponse) => void {
  const httpFunctions: { info: FunctionInfo; route: RouteTemplate }[] = ctx.functions
    .filter((f) => f.http)
    .map((info) => ({ info, route: compileRoute(info.http?.route ?? info.name) }))
    .sort((a, b) => b.route.specificity - a.route.specificity);
  const byName = new Map(ctx.functions.map((f) => [f.name.toLowerCase(), f]));
  const prefix = ctx.routePrefix.replace(/^\/+|\/+$/g, '');

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', ctx.baseUrl());
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname.replace(/\/+$/, '');

    if (path.toLowerCase().startsWith('/runtime/webhooks/durabletask/')) {
      await handleDurable(ctx, req, res, url, method, path.slice('/runtime/webhooks/durabletask/'.length));
      return;
    }
    if (path.toLowerCase() === '/runtime/webhooks/eventgrid') {
      await handleEventGrid(ctx, byName, req, res, url, method);
      return;
    }
    const admin = /^\/admin\/functions\/([^/]+)$/i.exec(path);
    if (admin) {
      if (!keyMatches(presentedKey(req, url), ctx.keys.master)) {
        res.writeHead(401);
        res.end();
        return;
      }
      const info = byName.get(decodeURIComponent(admin[1] ?? '').toLowerCase());
      if (method !== 'POST') {
        res.writeHead(405, { allow: 'POST' });
        res.end();
        return;
      }
      if (!info) {
        sendJson(res, 404, { message: `function '${admin[1] ?? ''}' is not registered` });
        return;
      }
      if (info.http || info.durable.kind) {
        sendJson(res, 400, { message: `function '${info.name}' has a ${info.triggerType} trigger; the admin endpoint invokes timer, Event Grid and other non-HTTP, non-durable triggers` });
        return;
      }
      const raw = (await readBody(req)).toString('utf8');
      let input: string | undefined;
      if (raw.trim()) {
        const parsed = JSON.parse(raw) as unknown;
        const value = typeof parsed === 'object' && parsed !== null && 'input' in parsed ? parsed.input : undefined;
        input = typeof value === 'string' ? value : value === undefined ? undefined : JSON.stringify(value);
      }
      ctx.invokeAdmin(info, input);
      res.writeHead(202);
      res.end();
      return;
    }
    const prefixPath = prefix ? `/${prefix}` : '';
    if (!path.toLowerCase().startsWith(prefixPath.toLowerCase()) || (prefix && path.length > prefixPath.length && path[prefixPath.length] !== '/')) {
      res.writeHead(404);
      res.end();
      return;
    }
    const routePath = path.slice(prefixPath.length).replace(/^\/+/, '');
    let matchedRoute = false;
    for (const { info, route } of httpFunctions) {
      const params = route.match(routePath);
      if (!params) continue;
      matchedRoute = true;
      if (!info.http?.methods.includes(method)) continue;
      const level = info.http.authLevel;
      const key = presentedKey(req, url);
      const authorised = level === 'anonymous'
        || keyMatches(key, ctx.keys.master)
        || (level === 'function' && keyMatches(key, ctx.keys.function));
      if (!authorised) {
        res.writeHead(401);
        res.end();
        return;
      }
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const query: Record<string, string> = {};
      for (const [name, value] of url.searchParams) query[name] = value;
      try {
        const response = await ctx.invokeHttp(info, {
          method,
          url: url.href,
          headers,
          query,
          params,
          body: body.length > 0 ? { bytes: body } : undefined,
        });
        writeHttpResult(res, findHttpOutput(info, response));
      } catch (error) {
        ctx.log(`Executed 'Functions.${info.name}' (Failed): ${error instanceof Error ? error.message : String(error)}`);
        res.writeHead(500);
        res.end();
      }
      return;
    }
    res.writeHead(matchedRoute ? 405 : 404);
    res.end();
  };

  return (req, res) => {
    handle(req, res).catch((error: unknown) => {
      ctx.log(`local host request ${req.method ?? ''} ${req.url ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent) {
        sendJson(res, error instanceof SyntaxError ? 400 : 500, { message: error instanceof Error ? error.message : String(error) });
      } else {
        res.end();
      }
    });
  };
}

async function handleEventGrid(
  ctx: HostServerContext,
  byName: ReadonlyMap<string, FunctionInfo>,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  method: string,
): Promise<void> {
  if (!keyMatches(presentedKey(req, url), ctx.keys.master)) {
    res.writeHead(401);
    res.end();
    return;
  }
  if (method === 'OPTIONS') {
    // CloudEvents webhook abuse-protection handshake.
    const origin = req.headers['webhook-request-origin'];
    res.writeHead(200, { 'webhook-allowed-origin': (Array.isArray(origin) ? origin[0] : origin) ?? '*', 'webhook-allowed-rate': '*' });
    res.end();
    return;
  }
  const functionName = url.searchParams.get('functionName') ?? '';
  const info = byName.get(functionName.toLowerCase());
  if (!info?.eventGrid) {
    sendJson(res, 404, { message: `no Event Grid triggered function named '${functionName}'` });
    return;
  }
  let delivery;
  try {
    delivery = parseEventGridBody(JSON.parse((await readBody(req)).toString('utf8')) as unknown);
  } catch (error) {
    if (error instanceof EventGridPayloadError || error instanceof SyntaxError) {
      sendJson(res, 400, { message: error.message });
      return;
    }
    throw error;
  }
  const validation = subscriptionValidationCode(delivery.events);
  if (validation !== undefined) {
    sendJson(res, 200, { validationResponse: validation });
    return;
  }
  let failed = 0;
  for (const event of delivery.events) {
    try {
      await ctx.invokeEventGrid(info, event);
    } catch (error) {
      failed++;
      ctx.log(`Executed 'Functions.${info.name}' (Failed): ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  // A failed delivery answers 500 so Event Grid retries it, as on the host.
  res.writeHead(failed > 0 ? 500 : 202);
  res.end();
}

const RUNTIME_STATUSES: readonly RuntimeStatus[] = ['Pending', 'Running', 'Completed', 'ContinuedAsNew', 'Failed', 'Terminated'];

async function handleDurable(
  ctx: HostServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  method: string,
  rest: string,
): Promise<void> {
  const hub = ctx.hub;
  const segments = rest.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
  try {
    if (segments[0] === 'orchestrators' && method === 'POST' && segments[1]) {
      const raw = (await readBody(req)).toString('utf8');
      const input = raw.trim() ? (JSON.parse(raw) as unknown) : null;
      const { instanceId } = hub.startNew(segments[1], { instanceId: segments[2], input });
      const payload = managementPayload(ctx.baseUrl(), hub.taskHubName, instanceId);
      sendJson(res, 202, payload, { location: payload.statusQueryGetUri ?? '' });
      return;
    }
    if (segments[0] === 'instances') {
      const instanceId = segments[1];
      if (!instanceId) {
        const statusFilter = (url.searchParams.get('runtimeStatus') ?? '').split(',').filter((s): s is RuntimeStatus => (RUNTIME_STATUSES as readonly string[]).includes(s));
        if (method === 'GET') {
          sendJson(res, 200, hub.listInstances(statusFilter));
          return;
        }
        if (method === 'DELETE') {
          const from = url.searchParams.get('createdTimeFrom');
          const to = url.searchParams.get('createdTimeTo');
          const deleted = hub.purgeBy({
            createdTimeFrom: from ? new Date(from) : undefined,
            createdTimeTo: to ? new Date(to) : undefined,
            runtimeStatus: statusFilter,
          });
          sendJson(res, deleted > 0 ? 200 : 404, { instancesDeleted: deleted });
          return;
        }
      } else if (segments.length === 2 && method === 'GET') {
        const status = hub.getStatus(instanceId, {
          showHistory: url.searchParams.get('showHistory') === 'true',
          showInput: url.searchParams.get('showInput') !== 'false',
        });
        if (!status) {
          res.writeHead(404);
          res.end();
          return;
        }
        const running = status.runtimeStatus === 'Running' || status.runtimeStatus === 'Pending' || status.runtimeStatus === 'ContinuedAsNew';
        sendJson(res, running ? 202 : 200, status);
        return;
      } else if (segments.length === 2 && method === 'DELETE') {
        const deleted = hub.purge(instanceId);
        sendJson(res, deleted > 0 ? 200 : 404, { instancesDeleted: deleted });
        return;
      } else if (segments[2] === 'raiseEvent' && segments[3] && method === 'POST') {
        const raw = (await readBody(req)).toString('utf8');
        hub.raiseEvent(instanceId, segments[3], raw.trim() ? (JSON.parse(raw) as unknown) : undefined);
        res.writeHead(202);
        res.end();
        return;
      } else if (segments[2] === 'terminate' && method === 'POST') {
        hub.terminate(instanceId, url.searchParams.get('reason') ?? '');
        res.writeHead(202);
        res.end();
        return;
      }
    }
    sendJson(res, 404, { message: `the local task hub does not serve ${method} /runtime/webhooks/durabletask/${rest}` });
  } catch (error) {
    if (error instanceof OrchestrationInstanceError) {
      sendJson(res, error.status, { message: error.message });
      return;
    }
    throw error;
  }
}
