/**
 * The sandbox's HTTPS front door: one loopback port serving ARM, the Key Vault and ACR data
 * planes, emulated apps, the identity endpoints and the control endpoints. It owns transport,
 * authentication, throttling, fault injection, long-running operations and the request log;
 * providers own the resources.
 */
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type {
  ControlRoute,
  PostgresBackend,
  ProviderContext,
  RouteDefinition,
  RouteHost,
  SandboxProvider,
  SandboxRequest,
  SandboxResponse,
  ThrottleClass,
} from '../contract.ts';
import type { AzuriteEndpoints } from './azurite.ts';
import type { ChildExit } from './child-lifecycle.ts';
import { ControlRequestError } from './errors.ts';
import { defaultErrorCode, FaultRegistry, parseFaultSpec } from './faults.ts';
import { SandboxIdentity, type MintTokenOptions, type VerifiedPrincipal } from './identity.ts';
import { SandboxClock } from './clock.ts';
import { OperationRegistry } from './operations.ts';
import { Router, splitPath } from './router.ts';
import { Throttler, type ThrottlingSettings } from './throttle.ts';
import type { CapturedWebhook, CloudEventOutboxEvent, EventGridOutboxEvent, FaultSpec, RequestLogEntry, SandboxEvent } from './types.ts';

/** Options of {@link SandboxServer}. */
export interface SandboxServerOptions {
  readonly tenantIds: readonly string[];
  readonly tls: { readonly cert: string; readonly key: string };
  readonly providers: readonly SandboxProvider[];
  readonly lroDurationMs: number;
  /** Durations of particular operation ids (e.g. `Microsoft.DBforPostgreSQL/flexibleServers.create`), overriding `lroDurationMs`. */
  readonly lroDurationsMs?: Readonly<Record<string, number>>;
  /** `Retry-After` on long-running operation responses, in seconds. */
  readonly lroRetryAfterSeconds: number;
  readonly latencyMs: number;
  readonly throttling: ThrottlingSettings;
  readonly log: (line: string) => void;
  /** Location of the top-level resource an ID belongs to, for operation URLs. */
  readonly locationOf: (resourceId: string) => string | undefined;
  /** Extra fields of `GET /_sandbox/state` (worlds). */
  readonly describeWorlds: () => unknown;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_LOG_ENTRIES = 100_000;
const MAX_EVENTS = 10_000;
const MAX_OUTBOX_EVENTS = 10_000;
/** Control resources the engine serves itself; providers cannot claim them. */
const ENGINE_CONTROL_NAMES = new Set(['requests', 'state', 'faults', 'webhooks', 'clock', 'eventgrid', 'identity']);
const ARM_AUDIENCES = ['https://management.azure.com', 'https://management.core.windows.net'];
// How often providers' onClock hooks run in real time, besides after every clock shift.
const CLOCK_TICK_MS = 1000;
// A clock shift waits this long for the operations it made due (a restore takes seconds).
const CLOCK_SETTLE_MS = 60_000;
const LRO_STATUS_PATTERN = /^\/subscriptions\/([^/]+)\/providers\/([^/]+)\/locations\/([^/]+)\/(operationStatuses|operationResults)\/([^/]+)$/i;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A response being assembled, plus what the request log needs to know about it. */
interface Outcome {
  response: SandboxResponse;
  operationId: string | undefined;
  throttleClass: ThrottleClass;
  throttled: boolean;
  faulted: boolean;
  extraHeaders: Record<string, string>;
}

/** A backend process as `GET /_sandbox/state` shows it. */
export interface ServiceStatus {
  /** `down`: it exited without being asked to; `stopped`: the sandbox stopped it. */
  readonly status: 'up' | 'down' | 'stopped';
  readonly pid: number | undefined;
  readonly exitCode?: number | null;
  readonly signal?: NodeJS.Signals | null;
}

/** Where a request is addressed, from its path prefix. */
interface Addressed {
  readonly host: RouteHost | 'identity';
  readonly hostName: string | undefined;
  /** Path after the host prefix. */
  readonly path: string;
}

function address(path: string): Addressed {
  const segments = path.split('/');
  const first = segments[1] ?? '';
  const prefixed = (host: RouteHost): Addressed => {
    const name = decodeURIComponent(segments[2] ?? '');
    return { host, hostName: name, path: `/${segments.slice(3).join('/')}` };
  };
  if (first === 'vaults' && segments.length >= 3) return prefixed('keyvault');
  if (first === 'registries' && segments.length >= 3) return prefixed('acr');
  if (first === '_hosts' && segments.length >= 3) return prefixed('apphost');
  const second = segments[2] ?? '';
  if (first.toLowerCase() !== 'subscriptions' && first.toLowerCase() !== 'providers' && ['oauth2', 'v2.0', 'discovery'].includes(second)) {
    return { host: 'identity', hostName: undefined, path };
  }
  return { host: 'arm', hostName: undefined, path };
}

/** Builds an error response in the shape the given host uses. */
export function hostError(host: RouteHost | 'identity', status: number, code: string, message: string): SandboxResponse {
  if (host === 'acr') return { status, body: { errors: [{ code, message, detail: null }] } };
  if (host === 'identity') return { status, body: { error: code, error_description: message } };
  return { status, body: { error: { code, message } } };
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body larger than ${String(MAX_BODY_BYTES)} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    request.on('error', reject);
  });
}

function parseJsonBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  if (contentType !== undefined && !/json/i.test(contentType) && !/^text\/plain/i.test(contentType)) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The HTTPS server and the per-sandbox state of the engine. */
export class SandboxServer {
  readonly identity: SandboxIdentity;
  readonly faults = new FaultRegistry();
  readonly operations: OperationRegistry;
  private readonly throttler: Throttler;
  private readonly router: Router;
  private readonly server: https.Server;
  private readonly requestLog: RequestLogEntry[] = [];
  private readonly events: SandboxEvent[] = [];
  private readonly webhooks: CapturedWebhook[] = [];
  private readonly outbox: EventGridOutboxEvent[] = [];
  /** Push subscriptions of the Event Grid outbox (`/_sandbox/eventgrid/subscriptions`). */
  private readonly subscriptions: EventGridSubscription[] = [];
  /** Deliveries made (at most 1,000 kept), for tests and `GET /_sandbox/eventgrid/subscriptions`. */
  private readonly deliveries: EventGridDelivery[] = [];
  /** Deliveries under way; advancing the clock waits for them (bounded). */
  private readonly delivering = new Set<Promise<void>>();
  private readonly controlRoutes: readonly ControlRoute[];
  readonly clock = new SandboxClock();
  private readonly lroDurations: Map<string, number>;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private port = 0;
  /** Set once PostgreSQL is up; providers read it through the context. */
  postgres: PostgresBackend | undefined;
  /** Set once Azurite is up. */
  azurite: AzuriteEndpoints | undefined;
  private readonly services = new Map<string, ServiceStatus>();

  constructor(private readonly options: SandboxServerOptions) {
    this.identity = new SandboxIdentity(options.tenantIds);
    this.throttler = new Throttler(options.throttling);
    this.router = new Router(options.providers.flatMap((provider) => provider.routes()));
    this.controlRoutes = options.providers.flatMap((provider) => provider.controlRoutes?.() ?? []);
    for (const route of this.controlRoutes) {
      if (ENGINE_CONTROL_NAMES.has(route.name)) throw new Error(`a provider control route claims /_sandbox/${route.name}, which the engine serves itself`);
    }
    this.lroDurations = new Map(Object.entries(options.lroDurationsMs ?? {}));
    this.operations = new OperationRegistry(
      (operationId) => this.lroDurations.get(operationId) ?? options.lroDurationMs,
      options.lroRetryAfterSeconds,
      () => this.now(),
      (kind, details) => {
        this.event(kind, details);
      },
    );
    this.server = https.createServer({ cert: options.tls.cert, key: options.tls.key }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        options.log(`sandbox: request ${request.method ?? '?'} ${request.url ?? '?'} failed: ${(error as Error).stack ?? String(error)}`);
        if (!response.headersSent) {
          response.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        }
        response.end(JSON.stringify({ error: { code: 'InternalServerError', message: 'The sandbox failed to process the request.' } }));
      });
    });
  }

  /** `https://127.0.0.1:{port}` once listening. */
  get baseUrl(): string {
    return `https://127.0.0.1:${String(this.port)}`;
  }

  /** Starts listening on loopback; port 0 picks a free one. */
  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.tickTimer = setInterval(() => {
      void this.tick();
    }, CLOCK_TICK_MS);
    this.tickTimer.unref();
  }

  /**
   * Runs every provider's `onClock` hook once (never two runs at a time), e.g. so that Key Vault
   * sends near-expiry events and apps refresh their Key Vault references as time passes. A
   * failing hook is logged, never thrown: time passing must not break the sandbox.
   */
  tick(): Promise<void> {
    this.ticking ??= (async () => {
      const context = this.seedContext();
      for (const provider of this.options.providers) {
        if (provider.onClock === undefined) continue;
        try {
          await provider.onClock(this.now(), context);
        } catch (error) {
          this.options.log(`sandbox: ${provider.name} onClock failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        }
      }
    })().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** Shifts the sandbox clock, completes the operations that became due and runs the providers' clock hooks. */
  async advanceClock(ms: number): Promise<void> {
    this.clock.advance(ms);
    this.event('clock.advanced', { advanceMs: ms, offsetMs: this.clock.offsetMs });
    this.operations.clockAdvanced(this.now());
    await Promise.race([this.operations.settled(), new Promise((resolve) => setTimeout(resolve, CLOCK_SETTLE_MS).unref())]);
    // A tick already under way may have read the clock before the shift; run once more after it.
    await this.tick();
    await this.tick();
    await this.deliveriesSettled();
  }

  /** Sets (or with `undefined` resets) the duration of one operation id, in sandbox-clock milliseconds. */
  setOperationDuration(operationId: string, ms: number | undefined): void {
    if (ms === undefined) this.lroDurations.delete(operationId);
    else this.lroDurations.set(operationId, ms);
  }

  /** Stops accepting requests, drops open connections and cancels pending operations. */
  async close(): Promise<void> {
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    await this.ticking;
    await this.operations.stop();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
      this.server.closeAllConnections();
    });
  }

  /** The sandbox clock: real time shifted by `POST /_sandbox/clock`. */
  now(): Date {
    return this.clock.now();
  }

  /** Records an event for `GET /_sandbox/state`. */
  event(kind: string, details: Record<string, unknown>): void {
    this.events.push({ time: this.now().toISOString(), kind, details });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  /** Adds an event to the Event Grid outbox (`GET /_sandbox/eventgrid`). */
  publishEvent(event: { topic: string; subject: string; eventType: string; data: Readonly<Record<string, unknown>>; dataVersion: string }): void {
    this.outbox.push({
      id: randomUUID(),
      topic: event.topic,
      subject: event.subject,
      eventType: event.eventType,
      eventTime: this.now().toISOString(),
      data: event.data,
      dataVersion: event.dataVersion,
      metadataVersion: '1',
    });
    if (this.outbox.length > MAX_OUTBOX_EVENTS) this.outbox.splice(0, this.outbox.length - MAX_OUTBOX_EVENTS);
    const published = this.outbox[this.outbox.length - 1];
    if (published === undefined) return;
    for (const subscription of this.subscriptions) {
      if (subscription.eventTypes !== undefined && !subscription.eventTypes.some((type) => type.toLowerCase() === published.eventType.toLowerCase())) continue;
      const delivery = this.deliver(subscription, published).finally(() => {
        this.delivering.delete(delivery);
      });
      this.delivering.add(delivery);
    }
  }

  /**
   * Pushes one event to a subscription's endpoint as Event Grid does: a POST of a one-event
   * array (`aeg-event-type: Notification`), in the subscription's schema; retried up to 3 times
   * on a network error, 408, 429 or 5xx (Event Grid's back-off is minutes; here 200 ms), never on
   * another 4xx (Event Grid dead-letters those).
   */
  private async deliver(subscription: EventGridSubscription, event: EventGridOutboxEvent): Promise<void> {
    const payload =
      subscription.schema === 'cloudevents'
        ? [{ specversion: '1.0', id: event.id, source: event.topic, subject: event.subject, type: event.eventType, time: event.eventTime, datacontenttype: 'application/json', data: event.data }]
        : [event];
    const body = JSON.stringify(payload);
    let outcome: { status?: number; error?: string } = {};
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      outcome = await postLoopback(subscription.endpoint, body);
      if (outcome.status !== undefined && outcome.status < 400) break;
      if (outcome.status !== undefined && outcome.status !== 408 && outcome.status !== 429 && outcome.status < 500) break;
      await new Promise((resolve) => setTimeout(resolve, 200).unref());
    }
    this.deliveries.push({ subscription: subscription.name, eventId: event.id, eventType: event.eventType, subject: event.subject, time: new Date().toISOString(), ...outcome });
    if (this.deliveries.length > 1000) this.deliveries.splice(0, this.deliveries.length - 1000);
  }

  /** Waits (at most `ms`) until the Event Grid deliveries under way have ended. */
  async deliveriesSettled(ms = CLOCK_SETTLE_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.delivering.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.delivering]), new Promise((resolve) => setTimeout(resolve, Math.max(1, deadline - Date.now())).unref())]);
    }
  }

  /** The Event Grid outbox, in the Event Grid schema or as CloudEvents 1.0. */
  eventGridEvents(schema: 'eventgrid' | 'cloudevents'): EventGridOutboxEvent[] | CloudEventOutboxEvent[] {
    if (schema === 'eventgrid') return [...this.outbox];
    return this.outbox.map((event): CloudEventOutboxEvent => ({
      specversion: '1.0',
      id: event.id,
      source: event.topic,
      subject: event.subject,
      type: event.eventType,
      time: event.eventTime,
      datacontenttype: 'application/json',
      data: event.data,
    }));
  }

  /**
   * Shows a backend process in `GET /_sandbox/state` (`services`) and, when it exits without
   * being asked to, logs that, records a `service.exited` event and shows it `down`.
   */
  watchService(name: string, service: { readonly pid: number | undefined; onExit(listener: (exit: ChildExit) => void): void }): void {
    const pid = service.pid;
    this.services.set(name, { status: 'up', pid });
    service.onExit((exit) => {
      this.services.set(name, { status: exit.expected ? 'stopped' : 'down', pid, exitCode: exit.code, signal: exit.signal });
      if (exit.expected) return;
      this.options.log(
        `sandbox: ${name} (pid ${String(pid)}) exited unexpectedly (code ${String(exit.code)}, signal ${String(exit.signal)}); requests that need it will fail until the sandbox is restarted`,
      );
      this.event('service.exited', { service: name, pid, exitCode: exit.code, signal: exit.signal });
    });
  }

  /** A context for work outside any request (seeding). */
  seedContext(): ProviderContext {
    return this.context({ apiVersion: '2023-01-01', subscriptionId: undefined, pendingFailure: undefined });
  }

  private context(scope: { apiVersion: string; subscriptionId: string | undefined; pendingFailure: { spec: FaultSpec | undefined } | undefined }): ProviderContext {
    // Getters read the backends at call time: providers may keep the context from seeding on.
    const currentPostgres = (): PostgresBackend | undefined => this.postgres;
    const currentAzurite = (): AzuriteEndpoints | undefined => this.azurite;
    return {
      now: () => this.now(),
      realTimeAt: (sandboxTime) => this.clock.realTimeAt(sandboxTime),
      baseUrl: this.baseUrl,
      startOperation: (options) => {
        let failure = scope.pendingFailure?.spec;
        if (scope.pendingFailure !== undefined) scope.pendingFailure.spec = undefined;
        failure ??= this.faults.takeOperationFailure(options.operationId);
        const match = /^\/subscriptions\/([^/]+)\/resourceGroups\/[^/]+\/providers\/([^/]+)\//i.exec(options.resourceId);
        const location = (this.options.locationOf(options.resourceId) ?? 'global').toLowerCase().replace(/\s+/g, '');
        return this.operations.start(
          options,
          {
            baseUrl: this.baseUrl,
            apiVersion: scope.apiVersion,
            subscriptionId: match?.[1] ?? scope.subscriptionId ?? '00000000-0000-0000-0000-000000000000',
            namespace: match?.[2] ?? 'Microsoft.Resources',
            location,
          },
          failure,
        );
      },
      armError: (status, code, message) => hostError('arm', status, code, message),
      get postgres() {
        return currentPostgres();
      },
      get azurite() {
        return currentAzurite();
      },
      event: (kind, details) => {
        this.event(kind, details);
      },
      verifyAccessToken: (token) => {
        const verified = this.identity.verifyBearer(`Bearer ${token}`);
        return 'principal' in verified ? verified.principal : undefined;
      },
      blobEndpointFor: (accountName) => {
        const azurite = currentAzurite();
        return azurite === undefined ? undefined : `${azurite.blobEndpoint}/${accountName}`;
      },
      publishEvent: (event) => {
        this.publishEvent(event);
      },
      operationDurationMs: () => this.options.lroDurationMs,
    };
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    const time = new Date().toISOString();
    const url = new URL(request.url ?? '/', 'https://127.0.0.1');
    const method = (request.method ?? 'GET').toUpperCase();
    const rawBody = await readBody(request);
    const fullPath = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    if (fullPath === '/_sandbox' || fullPath.startsWith('/_sandbox/')) {
      this.send(response, method, await this.control(method, fullPath, rawBody, request.headers['content-type'], url.searchParams), {});
      return;
    }
    const requestId = randomUUID();
    const correlationHeader = request.headers['x-ms-correlation-request-id'];
    const clientRequestId = request.headers['x-ms-client-request-id'];
    const baseHeaders: Record<string, string> = {
      'x-ms-request-id': requestId,
      'x-ms-correlation-request-id': typeof correlationHeader === 'string' ? correlationHeader : randomUUID(),
      ...(typeof clientRequestId === 'string' ? { 'x-ms-client-request-id': clientRequestId } : {}),
    };
    if (this.options.latencyMs > 0) await sleep(this.options.latencyMs);
    const addressed = address(fullPath);
    const verified = this.identity.verifyBearer(request.headers.authorization);
    const principal = 'principal' in verified ? verified.principal : undefined;
    const outcome = await this.dispatch({ method, fullPath, url, rawBody, request, addressed, principal, authFailure: 'reason' in verified ? verified.reason : undefined });
    this.send(response, method, outcome.response, { ...baseHeaders, ...outcome.extraHeaders });
    this.requestLog.push({
      time,
      method,
      path: fullPath,
      query: url.search.replace(/^\?/, ''),
      operationId: outcome.operationId,
      host: addressed.host,
      status: outcome.response.status,
      throttleClass: outcome.throttleClass,
      ...(principal === undefined ? {} : { principal: principal.oid }),
      durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
      requestId,
      throttled: outcome.throttled,
      faulted: outcome.faulted,
    });
    if (this.requestLog.length > MAX_LOG_ENTRIES) this.requestLog.splice(0, this.requestLog.length - MAX_LOG_ENTRIES);
  }

  private async dispatch(input: {
    method: string;
    fullPath: string;
    url: URL;
    rawBody: Buffer;
    request: IncomingMessage;
    addressed: Addressed;
    principal: VerifiedPrincipal | undefined;
    authFailure: string | undefined;
  }): Promise<Outcome> {
    const { method, fullPath, url, addressed, principal } = input;
    const outcome = (response: SandboxResponse, fields: Partial<Outcome> = {}): Outcome => ({
      response,
      operationId: undefined,
      throttleClass: 'none',
      throttled: false,
      faulted: false,
      extraHeaders: {},
      ...fields,
    });
    if (addressed.host === 'identity') return this.identityEndpoint(method, fullPath, input.rawBody, outcome);

    const host = addressed.host;
    const apiVersion = url.searchParams.get('api-version');
    if (host === 'arm' && (apiVersion === null || apiVersion === '')) {
      return outcome(
        hostError('arm', 400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests."),
      );
    }

    // Engine-owned ARM routes: the status URLs of long-running operations.
    const lro = host === 'arm' ? LRO_STATUS_PATTERN.exec(addressed.path) : null;
    let route: RouteDefinition | undefined;
    let params: Readonly<Record<string, string>> = {};
    let methodMismatch = false;
    if (lro === null) {
      const found = this.router.match(host, method, addressed.path);
      route = found.match?.route;
      params = found.match?.params ?? {};
      methodMismatch = found.methodMismatch;
    }
    const operationId = lro !== null ? `Microsoft.Resources/${lro[4] ?? ''}.get` : route?.operationId;
    const throttleClass: ThrottleClass =
      lro !== null ? 'read' : (route?.throttle ?? (host === 'arm' ? (method === 'GET' || method === 'HEAD' ? 'read' : 'write') : 'none'));
    const base = { operationId, throttleClass };

    // Authentication: ARM and emulated apps answer 401 themselves; the Key Vault and ACR
    // providers run their own challenge protocols and only get the verified principal.
    const requiresAuth = lro !== null || route === undefined ? host === 'arm' : route.requiresAuth !== false;
    if (requiresAuth && (host === 'arm' || host === 'apphost')) {
      const tenant = this.options.tenantIds[0] ?? 'common';
      if (principal === undefined) {
        const missing = input.request.headers.authorization === undefined;
        return outcome(
          {
            ...hostError(
              host,
              401,
              missing ? 'AuthenticationFailed' : 'InvalidAuthenticationToken',
              missing ? "Authentication failed. The 'Authorization' header is missing." : `The access token is invalid: ${input.authFailure ?? 'unknown reason'}.`,
            ),
            headers: {
              'WWW-Authenticate': `Bearer authorization_uri="${this.baseUrl}/${tenant}", error="invalid_token", error_description="${missing ? "The authentication failed because of missing 'Authorization' header." : 'The access token is invalid.'}"`,
            },
          },
          base,
        );
      }
      if (host === 'arm' && !this.acceptsArmAudience(principal.aud)) {
        return outcome(
          {
            ...hostError(
              'arm',
              401,
              'InvalidAuthenticationTokenAudience',
              `The access token has been obtained for wrong audience or resource '${principal.aud}'. It should exactly match with one of the allowed audiences '${[...ARM_AUDIENCES, this.baseUrl].join("', '")}'.`,
            ),
            headers: { 'WWW-Authenticate': `Bearer authorization_uri="${this.baseUrl}/${tenant}", error="invalid_token", error_description="The access token has the wrong audience."` },
          },
          base,
        );
      }
    }

    // Throttling.
    const extraHeaders: Record<string, string> = {};
    if (host === 'arm' && throttleClass !== 'none') {
      const segments = splitPath(addressed.path);
      const subscriptionId = segments[0]?.toLowerCase() === 'subscriptions' ? (segments[1] ?? 'none') : 'tenant';
      const taken = this.throttler.arm(throttleClass, subscriptionId, principal?.oid ?? 'anonymous');
      const remaining = String(taken.remaining);
      if (throttleClass === 'read') extraHeaders['x-ms-ratelimit-remaining-subscription-reads'] = remaining;
      else {
        extraHeaders['x-ms-ratelimit-remaining-subscription-writes'] = remaining;
        if (method === 'DELETE') extraHeaders['x-ms-ratelimit-remaining-subscription-deletes'] = remaining;
      }
      if (!taken.allowed) {
        return outcome(
          {
            ...hostError(
              'arm',
              429,
              'TooManyRequests',
              `The request is being throttled as the limit has been reached for operation type - ${throttleClass === 'read' ? 'Read' : 'Write'}_ObservationWindow_00:05:00. Please retry after ${String(taken.retryAfterSeconds)} seconds.`,
            ),
            headers: { 'Retry-After': String(taken.retryAfterSeconds) },
          },
          { ...base, throttled: true, extraHeaders },
        );
      }
    } else if (host === 'acr' && throttleClass !== 'none' && addressed.hostName !== undefined) {
      const taken = this.throttler.acr(addressed.hostName);
      if (!taken.allowed) {
        return outcome(
          {
            ...hostError('acr', 429, 'TOOMANYREQUESTS', `Too many requests to registry ${addressed.hostName}; retry after ${String(taken.retryAfterSeconds)} seconds.`),
            headers: { 'Retry-After': String(taken.retryAfterSeconds) },
          },
          { ...base, throttled: true },
        );
      }
    } else if (host === 'keyvault' && throttleClass !== 'none' && addressed.hostName !== undefined) {
      const taken = this.throttler.keyVault(addressed.hostName);
      if (!taken.allowed) {
        return outcome(
          {
            ...hostError(
              'keyvault',
              429,
              'Throttled',
              `Request was not processed because too many requests were received for vault ${addressed.hostName}. Please retry after ${String(taken.retryAfterSeconds)} seconds.`,
            ),
            headers: { 'Retry-After': String(taken.retryAfterSeconds) },
          },
          { ...base, throttled: true },
        );
      }
    }

    // Fault injection.
    const fault = this.faults.take({ method, path: fullPath, operationId });
    const pendingFailure: { spec: FaultSpec | undefined } = { spec: undefined };
    if (fault !== undefined) {
      if (fault.latencyMs !== undefined && fault.latencyMs > 0) await sleep(fault.latencyMs);
      if (fault.failLongRunningOperation === true) {
        pendingFailure.spec = fault;
      } else if (fault.status !== undefined) {
        const code = fault.errorCode ?? (host === 'acr' && fault.status === 429 ? 'TOOMANYREQUESTS' : defaultErrorCode(fault.status));
        const response = hostError(host, fault.status, code, fault.message ?? `Injected fault for ${operationId ?? fullPath} (${method} ${fullPath}).`);
        return outcome(
          { ...response, headers: fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) } },
          { ...base, faulted: true, extraHeaders },
        );
      }
    }

    if (lro !== null) {
      const id = lro[5] ?? '';
      const response = lro[4]?.toLowerCase() === 'operationstatuses' ? this.operations.statusResponse(id) : this.operations.resultResponse(id);
      return outcome(
        response ?? hostError('arm', 404, 'OperationNotFound', `The operation '${id}' was not found.`),
        { ...base, faulted: fault !== undefined, extraHeaders },
      );
    }

    if (route === undefined) {
      return outcome(this.notFound(host, method, addressed, methodMismatch), { ...base, faulted: fault !== undefined, extraHeaders });
    }

    const contentType = input.request.headers['content-type'];
    const sandboxRequest: SandboxRequest = {
      method,
      path: addressed.path,
      query: url.searchParams,
      headers: input.request.headers,
      body: parseJsonBody(input.rawBody, contentType),
      form: contentType?.startsWith('application/x-www-form-urlencoded') === true ? new URLSearchParams(input.rawBody.toString('utf8')) : undefined,
      rawBody: input.rawBody,
      params,
      hostName: addressed.hostName,
      principal: principal === undefined ? undefined : { oid: principal.oid, aud: principal.aud, ...(principal.scp === undefined ? {} : { scp: principal.scp }) },
    };
    const segments = splitPath(addressed.path);
    const context = this.context({
      apiVersion: apiVersion ?? '2023-01-01',
      subscriptionId: segments[0]?.toLowerCase() === 'subscriptions' ? segments[1] : undefined,
      pendingFailure,
    });
    try {
      const response = await route.handler(sandboxRequest, context);
      return outcome(response, { ...base, faulted: fault !== undefined, extraHeaders });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.options.log(`sandbox: handler ${route.operationId} threw: ${error instanceof Error ? (error.stack ?? message) : message}`);
      return outcome(hostError(host, 500, host === 'acr' ? 'UNKNOWN' : 'InternalServerError', `The sandbox provider failed in ${route.operationId}: ${message}`), {
        ...base,
        extraHeaders,
      });
    }
  }

  private acceptsArmAudience(aud: string): boolean {
    const normalised = aud.replace(/\/+$/, '').toLowerCase();
    return [...ARM_AUDIENCES, this.baseUrl].some((allowed) => allowed.toLowerCase() === normalised);
  }

  private notFound(host: RouteHost, method: string, addressed: Addressed, methodMismatch: boolean): SandboxResponse {
    if (methodMismatch) {
      return hostError(host, 405, host === 'acr' ? 'UNSUPPORTED' : 'MethodNotAllowed', `The requested method ${method} is not allowed for ${addressed.path}.`);
    }
    if (host === 'arm') {
      const providerMatch = /^\/subscriptions\/[^/]+\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)(?:\/([^/]+))?/i.exec(addressed.path);
      if (providerMatch !== null) {
        const [, resourceGroup, namespace, type, name] = providerMatch as unknown as [string, string, string, string, string | undefined];
        if (!this.router.servesArmType(namespace, type)) {
          return hostError('arm', 404, 'InvalidResourceType', `The resource type '${type}' could not be found in the namespace '${namespace}' for api version in this sandbox.`);
        }
        return hostError(
          'arm',
          404,
          'ResourceNotFound',
          `The Resource '${namespace}/${type}/${name ?? ''}' under resource group '${resourceGroup}' was not found.`,
        );
      }
      return hostError('arm', 404, 'NotFound', `No sandbox route serves ${method} ${addressed.path}.`);
    }
    if (host === 'acr') return hostError('acr', 404, 'NAME_UNKNOWN', `No sandbox route serves ${method} ${addressed.path} on registry ${addressed.hostName ?? ''}.`);
    if (host === 'keyvault') return hostError('keyvault', 404, 'NotFound', `No sandbox route serves ${method} ${addressed.path} on vault ${addressed.hostName ?? ''}.`);
    return hostError('apphost', 404, 'NotFound', `No emulated app serves ${method} ${addressed.path} on host ${addressed.hostName ?? ''}.`);
  }

  private identityEndpoint(method: string, path: string, rawBody: Buffer, outcome: (response: SandboxResponse, fields?: Partial<Outcome>) => Outcome): Outcome {
    const segments = path.split('/').slice(1);
    const tenant = segments[0] ?? '';
    const rest = segments.slice(1).join('/');
    if (method === 'POST' && rest === 'oauth2/v2.0/token') {
      const { status, body } = this.identity.token(tenant, new URLSearchParams(rawBody.toString('utf8')));
      return outcome({ status, body, headers: { 'Cache-Control': 'no-store, no-cache', Pragma: 'no-cache' } }, { operationId: 'Identity.token' });
    }
    const authority = `${this.baseUrl}/${tenant}`;
    const discovery = rest === 'v2.0/.well-known/openid-configuration' || rest === 'discovery/v2.0/keys';
    if (method === 'GET' && discovery && !this.identity.tenantIds.includes(tenant) && tenant !== 'common' && tenant !== 'organizations') {
      // As Entra ID answers for a tenant it does not know (AADSTS90002).
      return outcome(
        { status: 400, body: { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found. Expected one of: ${this.identity.tenantIds.join(', ')}.`, error_codes: [90002] } },
        { operationId: rest === 'discovery/v2.0/keys' ? 'Identity.keys' : 'Identity.openidConfiguration' },
      );
    }
    if (method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      return outcome(
        {
          status: 200,
          body: {
            token_endpoint: `${authority}/oauth2/v2.0/token`,
            token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
            jwks_uri: `${authority}/discovery/v2.0/keys`,
            response_modes_supported: ['query', 'fragment', 'form_post'],
            subject_types_supported: ['pairwise'],
            id_token_signing_alg_values_supported: ['RS256'],
            response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
            scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
            issuer: `${authority}/v2.0`,
            request_uri_parameter_supported: false,
            authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
            device_authorization_endpoint: `${authority}/oauth2/v2.0/devicecode`,
            end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
            tenant_region_scope: 'EU',
            cloud_instance_name: '127.0.0.1',
            cloud_graph_host_name: '127.0.0.1',
            msgraph_host: '127.0.0.1',
          },
        },
        { operationId: 'Identity.openidConfiguration' },
      );
    }
    if (method === 'GET' && rest === 'discovery/v2.0/keys') {
      return outcome({ status: 200, body: this.identity.jwks() }, { operationId: 'Identity.keys' });
    }
    if (method === 'GET' && tenant === 'common' && rest === 'discovery/instance') {
      const hostPort = new URL(this.baseUrl).host;
      return outcome(
        {
          status: 200,
          body: {
            tenant_discovery_endpoint: `${this.baseUrl}/{tenant}/v2.0/.well-known/openid-configuration`,
            'api-version': '1.1',
            metadata: [{ preferred_network: hostPort, preferred_cache: hostPort, aliases: [hostPort] }],
          },
        },
        { operationId: 'Identity.instanceDiscovery' },
      );
    }
    return outcome(hostError('identity', 404, 'invalid_request', `No identity endpoint serves ${method} ${path}.`), { operationId: undefined });
  }

  private async control(method: string, path: string, rawBody: Buffer, contentType: string | undefined, query: URLSearchParams): Promise<SandboxResponse> {
    try {
      const segments = path.split('/').slice(2);
      const [resource, name] = segments;
      const json = (): unknown => {
        if (rawBody.length === 0) return {};
        try {
          return JSON.parse(rawBody.toString('utf8')) as unknown;
        } catch (error) {
          throw new ControlRequestError(`${method} ${path}`, `expected a JSON body: ${(error as Error).message}`);
        }
      };
      switch (`${method} ${resource ?? ''}`) {
        case 'GET requests':
          return { status: 200, body: this.requestLog };
        case 'DELETE requests':
          this.requestLog.length = 0;
          return { status: 204 };
        case 'GET state':
          return { status: 200, body: this.state() };
        case 'GET faults':
          return { status: 200, body: this.faults.list() };
        case 'POST faults': {
          const body = json();
          for (const entry of Array.isArray(body) ? (body as unknown[]) : [body]) this.faults.add(parseFaultSpec(entry));
          return { status: 201, body: this.faults.list() };
        }
        case 'DELETE faults':
          this.faults.clear();
          return { status: 204 };
        case 'GET webhooks':
          return { status: 200, body: name === undefined ? this.webhooks : this.webhooks.filter((hook) => hook.name === decodeURIComponent(name)) };
        case 'POST webhooks': {
          if (name === undefined || segments.length !== 2) throw new ControlRequestError(`${method} ${path}`, 'expected /_sandbox/webhooks/{name}');
          const text = rawBody.toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            // Not JSON: keep the text, a webhook may legitimately post plain text.
          }
          this.webhooks.push({ name: decodeURIComponent(name), time: new Date().toISOString(), contentType, body });
          return { status: 200, rawBody: '1', headers: { 'content-type': 'text/plain' } };
        }
        case 'DELETE webhooks':
          this.webhooks.length = 0;
          return { status: 204 };
        case 'GET clock':
          return { status: 200, body: { now: this.now().toISOString(), offsetMs: this.clock.offsetMs } };
        case 'POST clock': {
          const body = json();
          const advanceMs = typeof body === 'object' && body !== null ? (body as { advanceMs?: unknown }).advanceMs : undefined;
          if (typeof advanceMs !== 'number' || !Number.isFinite(advanceMs)) {
            throw new ControlRequestError(`${method} ${path}`, `expected {"advanceMs": <number>}, found ${rawBody.toString('utf8').slice(0, 200)}`);
          }
          await this.advanceClock(advanceMs);
          return { status: 200, body: { now: this.now().toISOString(), offsetMs: this.clock.offsetMs } };
        }
        case 'GET operations':
          return { status: 200, body: name === 'durations' ? { default: this.options.lroDurationMs, ...Object.fromEntries(this.lroDurations) } : this.operations.snapshot() };
        case 'POST operations': {
          if (name !== 'durations' || segments.length !== 2) throw new ControlRequestError(`${method} ${path}`, 'expected /_sandbox/operations/durations');
          const body = json();
          if (typeof body !== 'object' || body === null || Array.isArray(body)) {
            throw new ControlRequestError(`${method} ${path}`, 'expected {"<operationId>": <milliseconds> | null, ...}');
          }
          for (const [operationId, value] of Object.entries(body as Record<string, unknown>)) {
            if (value !== null && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
              throw new ControlRequestError(`${method} ${path}`, `expected ${operationId} to be a number of milliseconds >= 0 or null, found ${JSON.stringify(value)}`);
            }
          }
          for (const [operationId, value] of Object.entries(body as Record<string, number | null>)) this.setOperationDuration(operationId, value ?? undefined);
          return { status: 200, body: { default: this.options.lroDurationMs, ...Object.fromEntries(this.lroDurations) } };
        }
        case 'POST eventgrid': {
          if (name !== 'subscriptions' || segments.length !== 2) throw new ControlRequestError(`${method} ${path}`, 'expected /_sandbox/eventgrid/subscriptions');
          const subscription = parseSubscription(json(), `${method} ${path}`);
          const existing = this.subscriptions.findIndex((candidate) => candidate.name === subscription.name);
          if (existing >= 0) this.subscriptions.splice(existing, 1);
          this.subscriptions.push(subscription);
          return { status: 201, body: this.subscriptions };
        }
        case 'GET eventgrid': {
          if (name === 'subscriptions') return { status: 200, body: { subscriptions: this.subscriptions, deliveries: this.deliveries } };
          const schema = query.get('schema') ?? 'eventgrid';
          if (schema !== 'eventgrid' && schema !== 'cloudevents') {
            throw new ControlRequestError(`${method} ${path}`, `expected schema=eventgrid or schema=cloudevents, found schema=${schema}`);
          }
          return { status: 200, body: this.eventGridEvents(schema) };
        }
        case 'DELETE eventgrid':
          if (name === 'subscriptions') {
            this.subscriptions.length = 0;
            this.deliveries.length = 0;
            return { status: 204 };
          }
          this.outbox.length = 0;
          return { status: 204 };
        case 'POST identity': {
          if (name === 'tokens' && segments.length === 2) {
            const options = parseMintOptions(json(), `${method} ${path}`);
            if (options.tenantId !== undefined && !this.identity.tenantIds.includes(options.tenantId)) {
              throw new ControlRequestError(`${method} ${path}`, `tenantId: expected one of ${this.identity.tenantIds.join(', ')}, found ${options.tenantId}`);
            }
            return { status: 201, body: { token_type: 'Bearer', access_token: this.identity.mint(options, this.baseUrl) } };
          }
          if (name === 'keys' && segments[2] === 'rotate' && segments.length === 3) {
            return { status: 200, body: { kid: this.identity.rotateSigningKey() } };
          }
          throw new ControlRequestError(`${method} ${path}`, 'expected /_sandbox/identity/tokens or /_sandbox/identity/keys/rotate');
        }
        default: {
          const route = this.controlRoutes.find((candidate) => candidate.method === method && candidate.name === resource);
          if (route !== undefined) {
            let body: unknown;
            if (rawBody.length > 0) {
              try {
                body = JSON.parse(rawBody.toString('utf8')) as unknown;
              } catch (error) {
                throw new ControlRequestError(`${method} ${path}`, `expected a JSON body: ${(error as Error).message}`);
              }
            }
            return route.handler({ segments: segments.slice(1).map((segment) => decodeURIComponent(segment)), body }, this.seedContext());
          }
          return { status: 404, body: { error: { code: 'NotFound', message: `No control endpoint serves ${method} ${path}.` } } };
        }
      }
    } catch (error) {
      if (error instanceof ControlRequestError) return { status: 400, body: { error: { code: 'InvalidControlRequest', message: error.message } } };
      throw error;
    }
  }

  /** The body of `GET /_sandbox/state`. */
  state(): Record<string, unknown> {
    return {
      worlds: this.options.describeWorlds(),
      providers: Object.fromEntries(this.options.providers.map((provider) => [provider.name, provider.snapshot()])),
      services: Object.fromEntries(this.services),
      operations: this.operations.snapshot(),
      events: this.events,
      faults: this.faults.list(),
      clock: { now: this.now().toISOString(), offsetMs: this.clock.offsetMs },
    };
  }

  private send(response: ServerResponse, method: string, result: SandboxResponse, baseHeaders: Record<string, string>): void {
    const headers: Record<string, string> = { ...baseHeaders };
    for (const [key, value] of Object.entries(result.headers ?? {})) headers[key.toLowerCase()] = value;
    let payload: Buffer | undefined;
    if (result.rawBody !== undefined) {
      payload = typeof result.rawBody === 'string' ? Buffer.from(result.rawBody, 'utf8') : result.rawBody;
      headers['content-type'] ??= 'application/octet-stream';
    } else if (result.body !== undefined) {
      payload = Buffer.from(JSON.stringify(result.body), 'utf8');
      headers['content-type'] ??= 'application/json; charset=utf-8';
    }
    const bodyless = result.status === 204 || result.status === 304;
    headers['content-length'] ??= String(bodyless ? 0 : (payload?.length ?? 0));
    response.writeHead(result.status, headers);
    if (payload !== undefined && method !== 'HEAD' && !bodyless) response.end(payload);
    else response.end();
  }
}

const mintOptionsSchema = z
  .object({
    tenantId: z.string().min(1).optional(),
    audience: z.string().min(1),
    appId: z.string().min(1).optional(),
    roles: z.array(z.string()).optional(),
    scp: z.string().optional(),
    version: z.enum(['1.0', '2.0']).optional(),
    expiresInSeconds: z.number().optional(),
    notBeforeInSeconds: z.number().optional(),
    issuer: z.string().min(1).optional(),
    signWith: z.enum(['sandbox', 'foreign']).optional(),
  })
  .strict();

/** Validates the body of `POST /_sandbox/identity/tokens`. */
function parseMintOptions(body: unknown, where: string): MintTokenOptions {
  const parsed = mintOptionsSchema.safeParse(body);
  if (!parsed.success) {
    throw new ControlRequestError(where, parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; '));
  }
  return parsed.data;
}

/** A push subscription of the sandbox's Event Grid outbox. */
export interface EventGridSubscription {
  readonly name: string;
  /** A loopback http URL, e.g. the local host's `/runtime/webhooks/EventGrid?functionName=eventGrid`. */
  readonly endpoint: string;
  /** Event types delivered (case-insensitive); all when absent. */
  readonly eventTypes?: readonly string[];
  readonly schema: 'eventgrid' | 'cloudevents';
}

/** One delivery attempt's outcome (after retries). */
export interface EventGridDelivery {
  readonly subscription: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly subject: string;
  readonly time: string;
  readonly status?: number;
  readonly error?: string;
}

function parseSubscription(body: unknown, where: string): EventGridSubscription {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ControlRequestError(where, 'expected {"name": <string>, "endpoint": <loopback http URL>, "eventTypes"?: [<string>], "schema"?: "eventgrid" | "cloudevents"}');
  const record = body as Record<string, unknown>;
  const endpoint = record.endpoint;
  let url: URL | undefined;
  try {
    url = typeof endpoint === 'string' ? new URL(endpoint) : undefined;
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new ControlRequestError(where, `endpoint: expected a loopback http URL, found ${JSON.stringify(endpoint)}`);
  }
  const types = record.eventTypes;
  if (types !== undefined && (!Array.isArray(types) || !types.every((type) => typeof type === 'string'))) throw new ControlRequestError(where, 'eventTypes: expected an array of strings');
  const schema = record.schema ?? 'eventgrid';
  if (schema !== 'eventgrid' && schema !== 'cloudevents') throw new ControlRequestError(where, `schema: expected eventgrid or cloudevents, found ${JSON.stringify(schema)}`);
  return {
    name: typeof record.name === 'string' && record.name !== '' ? record.name : 'default',
    endpoint: url.toString(),
    ...(types === undefined ? {} : { eventTypes: types }),
    schema,
  };
}

/** POSTs a JSON body to a loopback http URL (the local Functions host serves http); 10 s deadline. */
function postLoopback(endpoint: string, body: string): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const url = new URL(endpoint);
    const request = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'aeg-event-type': 'Notification' }, timeout: 10_000 },
      (response) => {
        response.resume();
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0 });
        });
        response.on('error', (error) => {
          resolve({ error: error.message });
        });
      },
    );
    request.on('timeout', () => {
      request.destroy(new Error('no answer within 10 s'));
    });
    request.on('error', (error) => {
      resolve({ error: error.message });
    });
    request.end(body);
  });
}
