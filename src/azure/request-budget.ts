/**
 * Client-side request budgets, so the autopilot never becomes the reason a subscription is
 * throttled.
 *
 * ARM limits each principal per subscription with token buckets (reads; writes and deletes),
 * ACR and Key Vault limit per registry and per vault. A {@link RequestBudget} mirrors that: one
 * token bucket per throttle class, a cap on concurrent requests, a pause of the whole budget
 * when the service answers 429 with a retry hint, and a lower rate when ARM's
 * `x-ms-ratelimit-remaining-*` headers say the shared quota runs low.
 *
 * A budget is used as a core-rest-pipeline policy placed inside the SDK's retry loop, so every
 * attempt (including the SDK's own retries and LRO polls) draws a token. The policy never
 * retries by itself; it only delays, so the SDK's retry count stays the only one.
 *
 * Every delay a service asks for passes the policy first, before the SDK's retry (which would
 * sleep for any `Retry-After`, however long) or an LRO poller (which takes `Retry-After` as its
 * poll interval) sees it: a delay above {@link MAX_SERVER_DELAY_MS} fails the request with a
 * {@link ServerDelayAboveCapError}, and a pause of the budget never lasts longer than the cap.
 */
import type { HttpClient, PipelinePolicy, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { isRestError, RestError } from '@azure/core-rest-pipeline';
import { delay } from '@azure/core-util';
import type { RequestBudgetSettings } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { longestServerDelay, parseRetryAfterMs, ServerDelayAboveCapError } from './errors.ts';

/**
 * The longest delay a service may ask of us (`Retry-After`, `retry-after-ms`,
 * `x-ms-retry-after-ms`, an LRO's poll interval): 60 s. host.json's `functionTimeout` is 10
 * minutes (the Consumption plan's maximum); the SDK retries a request at most 3 times, so the
 * waits a server can impose on one request total at most 3 minutes and leave most of the
 * invocation to the work. It is also below the SDK's own ceiling on its exponential back-off
 * (64 s), so a server never makes us wait longer than we would choose to. ARM's, Key Vault's and
 * ACR's throttling hints are seconds; a longer one (an outage, a misbehaving proxy) is not worth
 * stalling a subscription's whole budget for: the request fails, typed, and the next run tries again.
 */
export const MAX_SERVER_DELAY_MS = 60_000;

/**
 * The longest a request waits for its budget (a concurrency slot and a token, pauses
 * included) before failing with a {@link RequestBudgetWaitError}: 5 minutes, half the
 * `functionTimeout`. A run that queues this long is misconfigured (a budget far below what the
 * run needs) and should fail with a reason rather than be killed by the host without one.
 */
export const MAX_BUDGET_WAIT_MS = 5 * 60_000;

/**
 * How long one attempt of an SDK request may wait for the response headers when the SDK set
 * no timeout of its own (its default is none, so a connection that never answers would hold the
 * run until the host kills it): 60 s. The attempt then fails as `ETIMEDOUT`, which the SDK's
 * retry (and storage's) treats as a network error and retries; four attempts at this bound plus
 * three capped server delays stay inside the 10-minute `functionTimeout`.
 */
export const ATTEMPT_TIMEOUT_MS = 60_000;

/** The abort signal SDK requests carry (core-rest-pipeline's `AbortSignalLike`). */
export type BudgetAbortSignal = NonNullable<PipelineRequest['abortSignal']>;

/** Time source and sleeper; tests inject a fake one. */
export interface BudgetClock {
  /** Milliseconds since the epoch (or any monotonic origin). */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: BudgetAbortSignal): Promise<void>;
}

/** The real clock: `Date.now()` and core-util's abortable `delay`. */
export const systemClock: BudgetClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    signal === undefined ? delay(ms) : delay(ms, { abortSignal: signal, abortErrorMsg: 'The request was aborted while waiting for the request budget' }),
};

/**
 * A request waited longer than the budget's `maxWaitMs` for a slot and a token. Nothing was sent.
 */
export class RequestBudgetWaitError extends OpsAutopilotError {
  override readonly name: string = 'RequestBudgetWaitError';
}

function abortReason(signal: BudgetAbortSignal | undefined): Error {
  const reason: unknown = signal !== undefined && 'reason' in signal ? signal.reason : undefined;
  if (reason instanceof Error) return reason;
  const error = new Error('The request was aborted while waiting for the request budget');
  error.name = 'AbortError';
  return error;
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/** Refill rate and size of one token bucket. */
export interface BucketSettings {
  readonly ratePerSecond: number;
  readonly burst: number;
}

/** Observable counters of one budget, for tests and benchmarks. */
export interface BudgetStats {
  readonly key: string;
  /** Requests let through, including SDK retries and LRO polls. */
  readonly requests: number;
  /** Requests per throttle class. */
  readonly requestsByClass: Readonly<Record<string, number>>;
  /** Requests that had to wait (for a token, a concurrency slot or a pause). */
  readonly waits: number;
  /** Total milliseconds requests spent waiting. */
  readonly waitedMs: number;
  /** 429 responses seen. */
  readonly throttledResponses: number;
  /** Times a low `x-ms-ratelimit-remaining-*` header lowered a bucket's rate. */
  readonly rateReductions: number;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Most requests ever in flight at once. */
  readonly peakInFlight: number;
  /** Current refill rate per class (lowered while the service reports little headroom). */
  readonly ratePerSecond: Readonly<Record<string, number>>;
  /** Epoch ms until which the budget is paused after a 429, or undefined. */
  readonly pausedUntil: number | undefined;
}

/** Options of one {@link RequestBudget}. */
export interface RequestBudgetOptions {
  /** Buckets by throttle class, e.g. `{ read: ..., write: ... }` or `{ all: ... }`. */
  readonly buckets: Readonly<Record<string, BucketSettings>>;
  /** Maps a request to a key of `buckets`. Defaults to the only bucket. */
  readonly classify?: (request: PipelineRequest) => string;
  readonly maxConcurrency: number;
  readonly clock?: BudgetClock;
  /** Pause after a 429 that carries no retry hint. Default 1 s. */
  readonly defaultThrottlePauseMs?: number;
  /** Remaining-quota headers below this fraction of the bucket lower the rate. Default 0.1. */
  readonly lowHeadroomFraction?: number;
  /**
   * Response headers reporting remaining quota, per class: e.g. `read` →
   * `x-ms-ratelimit-remaining-subscription-reads`. The lowest present value counts.
   */
  readonly remainingHeaders?: Readonly<Record<string, readonly string[]>>;
  /**
   * Statuses that mean "slow down" and pause the budget. Default `[429]`; Azure Storage
   * answers 503 Server Busy as well.
   */
  readonly throttleStatuses?: readonly number[];
  /** The longest server-supplied delay honoured; default {@link MAX_SERVER_DELAY_MS}. */
  readonly maxServerDelayMs?: number;
  /** The longest a request waits for the budget; default {@link MAX_BUDGET_WAIT_MS}. */
  readonly maxWaitMs?: number;
  /** Timeout of one attempt that has none; default {@link ATTEMPT_TIMEOUT_MS}. */
  readonly attemptTimeoutMs?: number;
}

class TokenBucket {
  tokens: number;
  rate: number;
  private last: number;

  constructor(
    readonly settings: BucketSettings,
    now: number,
  ) {
    this.tokens = settings.burst;
    this.rate = settings.ratePerSecond;
    this.last = now;
  }

  refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.settings.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    }
    this.last = Math.max(this.last, now);
  }

  /** Milliseconds until one whole token is available (0 when one is). */
  msUntilToken(): number {
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}

/** FIFO async mutex: acquisitions within a class are served in arrival order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Name of the pipeline policy a budget installs. */
export const requestBudgetPolicyName = 'opsAutopilotRequestBudget';

/**
 * Token buckets plus a concurrency cap for one throttling scope (a subscription and principal,
 * a registry, a vault). Share one instance across every client of that scope: see
 * {@link BudgetRegistry}.
 */
export class RequestBudget {
  readonly key: string;
  private readonly clock: BudgetClock;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly mutexes = new Map<string, Mutex>();
  private readonly classify: (request: PipelineRequest) => string;
  private readonly maxConcurrency: number;
  private readonly defaultThrottlePauseMs: number;
  private readonly lowHeadroomFraction: number;
  private readonly remainingHeaders: Readonly<Record<string, readonly string[]>>;
  private readonly throttleStatuses: ReadonlySet<number>;
  /** The cap on server-supplied delays, in ms. */
  readonly maxServerDelayMs: number;
  /** The longest a request waits for a slot and a token, in ms. */
  readonly maxWaitMs: number;
  /** Timeout given to an attempt that has none, in ms. */
  readonly attemptTimeoutMs: number;
  private readonly slotWaiters: (() => void)[] = [];
  private pausedUntil = 0;
  private counters = {
    requests: 0,
    waits: 0,
    waitedMs: 0,
    throttledResponses: 0,
    rateReductions: 0,
    inFlight: 0,
    peakInFlight: 0,
  };
  private readonly requestsByClass: Record<string, number> = {};

  constructor(key: string, options: RequestBudgetOptions) {
    this.key = key;
    this.clock = options.clock ?? systemClock;
    const names = Object.keys(options.buckets);
    const only = names[0];
    if (only === undefined) throw new RangeError(`request budget ${key}: expected at least one bucket, found none`);
    for (const [name, settings] of Object.entries(options.buckets)) {
      if (!(settings.ratePerSecond > 0) || !(settings.burst >= 1)) {
        throw new RangeError(
          `request budget ${key}: expected bucket ${name} to have a positive rate and a burst of at least 1, found ${settings.ratePerSecond}/s burst ${settings.burst}`,
        );
      }
      this.buckets.set(name, new TokenBucket(settings, this.clock.now()));
      this.mutexes.set(name, new Mutex());
      this.requestsByClass[name] = 0;
    }
    if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1) {
      throw new RangeError(`request budget ${key}: expected maxConcurrency >= 1, found ${options.maxConcurrency}`);
    }
    this.classify = options.classify ?? (() => only);
    this.maxConcurrency = options.maxConcurrency;
    this.defaultThrottlePauseMs = options.defaultThrottlePauseMs ?? 1000;
    this.lowHeadroomFraction = options.lowHeadroomFraction ?? 0.1;
    this.remainingHeaders = options.remainingHeaders ?? {};
    this.throttleStatuses = new Set(options.throttleStatuses ?? [429]);
    this.maxServerDelayMs = options.maxServerDelayMs ?? MAX_SERVER_DELAY_MS;
    this.maxWaitMs = options.maxWaitMs ?? MAX_BUDGET_WAIT_MS;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS;
    for (const [name, value] of [
      ['maxServerDelayMs', this.maxServerDelayMs],
      ['maxWaitMs', this.maxWaitMs],
      ['attemptTimeoutMs', this.attemptTimeoutMs],
    ] as const) {
      if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`request budget ${key}: expected ${name} > 0, found ${value}`);
    }
  }

  /** A snapshot of the counters. */
  stats(): BudgetStats {
    const ratePerSecond: Record<string, number> = {};
    for (const [name, bucket] of this.buckets) ratePerSecond[name] = bucket.rate;
    return {
      key: this.key,
      ...this.counters,
      requestsByClass: { ...this.requestsByClass },
      ratePerSecond,
      pausedUntil: this.pausedUntil > this.clock.now() ? this.pausedUntil : undefined,
    };
  }

  /**
   * Waits for a concurrency slot and a token of `throttleClass`, then returns a function that
   * gives the slot back. Call it exactly once, after the response arrived.
   */
  async acquire(throttleClass: string, signal?: BudgetAbortSignal): Promise<() => void> {
    const bucket = this.buckets.get(throttleClass);
    const mutex = this.mutexes.get(throttleClass);
    if (bucket === undefined || mutex === undefined) {
      throw new RangeError(`request budget ${this.key}: expected one of ${[...this.buckets.keys()].join(', ')}, found class "${throttleClass}"`);
    }
    const started = this.clock.now();
    const deadline = started + this.maxWaitMs;
    let waited = false;
    // Slot first, token second: a request never holds a token it cannot use yet, so tokens
    // are spent at the moment of sending and the bucket bounds the real send rate.
    if (this.counters.inFlight >= this.maxConcurrency) {
      waited = true;
      await this.waitForSlot(signal, deadline, throttleClass);
    } else {
      this.counters.inFlight += 1;
    }
    try {
      await mutex.run(async () => {
        for (;;) {
          if (signal?.aborted === true) throw abortReason(signal);
          const now = this.clock.now();
          const wait = this.pausedUntil > now ? this.pausedUntil - now : (bucket.refill(now), bucket.msUntilToken());
          if (wait === 0) {
            bucket.tokens -= 1;
            return;
          }
          if (now >= deadline) throw this.waitError(throttleClass, now - started);
          waited = true;
          await this.clock.sleep(Math.min(wait, deadline - now), signal);
        }
      });
    } catch (error) {
      this.releaseSlot();
      throw error;
    }
    this.counters.requests += 1;
    this.requestsByClass[throttleClass] = (this.requestsByClass[throttleClass] ?? 0) + 1;
    this.counters.peakInFlight = Math.max(this.counters.peakInFlight, this.counters.inFlight);
    if (waited) {
      this.counters.waits += 1;
      this.counters.waitedMs += this.clock.now() - started;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.releaseSlot();
    };
  }

  /**
   * Feeds a response back: a 429 (or another of `throttleStatuses`) pauses the whole budget for the service's retry hint, and low
   * remaining-quota headers lower the class's refill rate until headroom returns.
   */
  observe(throttleClass: string, status: number, header: (name: string) => string | undefined): void {
    const now = this.clock.now();
    const bucket = this.buckets.get(throttleClass);
    if (this.throttleStatuses.has(status)) {
      this.counters.throttledResponses += 1;
      // Never longer than the cap: a longer ask fails the request itself (see send).
      const pause = Math.min(parseRetryAfterMs(header, now) ?? this.defaultThrottlePauseMs, this.maxServerDelayMs);
      this.pausedUntil = Math.max(this.pausedUntil, now + pause);
      // The service has just said we are over; starting again with a full burst would
      // earn another 429 straight away.
      if (bucket !== undefined) {
        bucket.refill(now);
        bucket.tokens = Math.min(bucket.tokens, 0);
      }
      return;
    }
    if (bucket === undefined) return;
    let remaining: number | undefined;
    for (const name of this.remainingHeaders[throttleClass] ?? []) {
      const value = header(name);
      if (value === undefined || !/^\s*\d+\s*$/.test(value)) continue;
      const parsed = Number(value);
      remaining = remaining === undefined ? parsed : Math.min(remaining, parsed);
    }
    if (remaining === undefined) return;
    const threshold = bucket.settings.burst * this.lowHeadroomFraction;
    if (remaining < threshold) {
      // Scale the rate with the headroom left, but never below a tenth of the configured
      // rate, so the budget slows down without stalling.
      const floor = bucket.settings.ratePerSecond / 10;
      const scaled = Math.max(floor, bucket.settings.ratePerSecond * (remaining / Math.max(threshold, 1)));
      if (scaled < bucket.rate) {
        bucket.refill(now);
        bucket.rate = scaled;
        this.counters.rateReductions += 1;
      }
      bucket.tokens = Math.min(bucket.tokens, remaining);
    } else if (bucket.rate < bucket.settings.ratePerSecond) {
      bucket.refill(now);
      bucket.rate = bucket.settings.ratePerSecond;
    }
  }

  /**
   * The pipeline policy. Install it per retry (inside the SDK's retry loop), e.g. via
   * `additionalPolicies: [{ policy, position: 'perRetry' }]`.
   */
  policy(): PipelinePolicy {
    return {
      name: requestBudgetPolicyName,
      sendRequest: (request, next) => this.send(request, next),
    };
  }

  /**
   * An `HttpClient` that draws on this budget for every request and sends it with `inner`
   * (e.g. `createDefaultHttpClient()`). For SDKs that rebuild their pipeline per derived client
   * from the same options (storage-blob), where a pipeline policy would be added once per
   * client: the HTTP client is shared, so each request is counted exactly once.
   */
  httpClient(inner: HttpClient): HttpClient {
    return { sendRequest: (request) => this.send(request, (sent) => inner.sendRequest(sent)) };
  }

  private async send(request: PipelineRequest, next: (request: PipelineRequest) => Promise<PipelineResponse>): Promise<PipelineResponse> {
    const throttleClass = this.classify(request);
    const release = await this.acquire(throttleClass, request.abortSignal);
    // The SDK leaves `timeout` at 0 (none). The attempt is bounded here by an abort signal of
    // our own rather than by setting `timeout`: the default HTTP client clears its timeout timer
    // only when a response arrives, so after a refused connection or a reset that timer kept the
    // process alive for the whole timeout (a CLI that had printed its error exited a minute later).
    const ownTimeout = request.timeout === 0;
    const callerSignal = request.abortSignal;
    const attempt = ownTimeout ? new AbortController() : undefined;
    const onCallerAbort = (): void => attempt?.abort();
    const timer =
      attempt === undefined
        ? undefined
        : setTimeout(() => {
            attempt.abort();
          }, this.attemptTimeoutMs);
    // Never the reason a process stays up: the attempt it bounds holds the process open itself.
    timer?.unref();
    if (attempt !== undefined) {
      if (callerSignal?.aborted === true) attempt.abort();
      callerSignal?.addEventListener('abort', onCallerAbort);
      request.abortSignal = attempt.signal;
    }
    try {
      const response = await next(request);
      this.observe(throttleClass, response.status, (name) => response.headers.get(name));
      this.refuseLongDelay(request, response);
      return response;
    } catch (error) {
      // Some policies turn error responses into throws; the response still carries the hints.
      if (isRestError(error) && error.response !== undefined) {
        const response = error.response;
        this.observe(throttleClass, response.status, (name) => response.headers.get(name));
        this.refuseLongDelay(request, response);
      }
      // Our own deadline surfaces as a bare AbortError; make it the network timeout it is,
      // which the SDK retries and toAzureError types as transient.
      // (Our signal aborted but the caller's did not: the timer fired.)
      if (attempt?.signal.aborted === true && callerSignal?.aborted !== true && isAbortError(error)) {
        throw new RestError(`expected a response within ${this.attemptTimeoutMs} ms, found none`, { code: 'ETIMEDOUT', request });
      }
      throw error;
    } finally {
      // Each retry is a new attempt with its own deadline, under the caller's signal.
      if (timer !== undefined) clearTimeout(timer);
      if (attempt !== undefined) {
        callerSignal?.removeEventListener('abort', onCallerAbort);
        request.abortSignal = callerSignal;
      }
      release();
    }
  }

  /**
   * Throws a {@link ServerDelayAboveCapError} when the response asks for a delay above the cap,
   * in any header and on any status: the SDK's retry sleeps for the hint of a 429 or 503, and
   * an LRO poller takes `Retry-After` of a 200/201/202 as its poll interval. Not a RestError, so
   * the SDK's retry policy rethrows it at once instead of sleeping.
   */
  private refuseLongDelay(request: PipelineRequest, response: PipelineResponse): void {
    const asked = longestServerDelay((name) => response.headers.get(name), this.clock.now());
    if (asked === undefined || asked.ms <= this.maxServerDelayMs) return;
    const url = request.url.split('?')[0] ?? request.url;
    const parsed = new URL(url);
    // ARM paths are resource IDs; a data-plane resource is named by host and path.
    const resourceId = parsed.pathname.toLowerCase().startsWith('/subscriptions/') ? parsed.pathname : `${parsed.host}${parsed.pathname}`;
    throw new ServerDelayAboveCapError(
      { resourceId, operation: `${request.method} request` },
      {
        statusCode: response.status,
        requestId: response.headers.get('x-ms-request-id') ?? request.requestId,
        delay: asked,
        capMs: this.maxServerDelayMs,
        request: { method: request.method, url },
      },
    );
  }

  private waitError(throttleClass: string, waitedMs: number): RequestBudgetWaitError {
    return new RequestBudgetWaitError(
      `request budget ${this.key} (${throttleClass}): expected a slot and a token within ${this.maxWaitMs} ms, found none after ${waitedMs} ms (${this.counters.inFlight} in flight, ${this.slotWaiters.length} queued); nothing was sent`,
      { context: { budget: this.key, throttleClass, waitedMs, maxWaitMs: this.maxWaitMs } },
    );
  }

  private waitForSlot(signal: BudgetAbortSignal | undefined, deadline: number, throttleClass: string): Promise<void> {
    const started = this.clock.now();
    const timeout = new AbortController();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const leave = (error: Error): void => {
        if (settled) return;
        settled = true;
        const index = this.slotWaiters.indexOf(grant);
        if (index >= 0) this.slotWaiters.splice(index, 1);
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      const grant = (): void => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        timeout.abort();
        resolve();
      };
      const onAbort = (): void => {
        timeout.abort();
        leave(abortReason(signal));
      };
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      this.slotWaiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
      // The clock's sleep, so a test's fake clock bounds the slot wait like every other wait.
      this.clock.sleep(Math.max(0, deadline - started), timeout.signal).then(
        () => {
          leave(this.waitError(throttleClass, this.clock.now() - started));
        },
        () => undefined,
      );
    });
  }

  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    // Hand the slot straight to the next waiter, so inFlight never dips and lets a newcomer
    // overtake the queue.
    if (next !== undefined) next();
    else this.counters.inFlight -= 1;
  }
}

/** ARM's throttle class of a request: GET and HEAD are reads, everything else writes. */
export function armThrottleClass(request: PipelineRequest): 'read' | 'write' {
  return request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
}

const ARM_REMAINING_HEADERS = {
  read: ['x-ms-ratelimit-remaining-subscription-reads', 'x-ms-ratelimit-remaining-subscription-global-reads'],
  write: [
    'x-ms-ratelimit-remaining-subscription-writes',
    'x-ms-ratelimit-remaining-subscription-deletes',
    'x-ms-ratelimit-remaining-subscription-global-writes',
    'x-ms-ratelimit-remaining-subscription-global-deletes',
  ],
} as const;

/**
 * Hands out one {@link RequestBudget} per throttling scope, the same object for the same key,
 * so every client of a subscription, registry or vault shares one budget.
 */
export class BudgetRegistry {
  private readonly budgets = new Map<string, RequestBudget>();

  constructor(
    readonly settings: RequestBudgetSettings,
    private readonly options: Pick<RequestBudgetOptions, 'clock' | 'defaultThrottlePauseMs' | 'maxServerDelayMs' | 'maxWaitMs' | 'attemptTimeoutMs'> = {},
  ) {}

  /** Budget of ARM calls for one subscription and principal. */
  arm(subscriptionId: string, principal: string): RequestBudget {
    return this.getOrCreate(`arm:${subscriptionId.toLowerCase()}:${principal.toLowerCase()}`, (key) =>
      new RequestBudget(key, {
        ...this.common(),
        buckets: {
          read: { ratePerSecond: this.settings.armReadsPerSecond, burst: this.settings.armReadBurst },
          write: { ratePerSecond: this.settings.armWritesPerSecond, burst: this.settings.armWriteBurst },
        },
        classify: armThrottleClass,
        remainingHeaders: ARM_REMAINING_HEADERS,
      }),
    );
  }

  /** Budget of one container registry's data plane (including its token exchange). */
  acr(registryName: string): RequestBudget {
    return this.getOrCreate(`acr:${registryName.toLowerCase()}`, (key) =>
      new RequestBudget(key, {
        ...this.common(),
        buckets: { all: { ratePerSecond: this.settings.acrPerSecond, burst: this.settings.acrBurst } },
      }),
    );
  }

  /** Budget of one Key Vault's data plane. */
  keyVault(vaultName: string): RequestBudget {
    return this.getOrCreate(`keyvault:${vaultName.toLowerCase()}`, (key) =>
      new RequestBudget(key, {
        ...this.common(),
        buckets: { all: { ratePerSecond: this.settings.keyVaultPerSecond, burst: this.settings.keyVaultBurst } },
      }),
    );
  }

  /**
   * Budget of one storage account's data plane (blob). Azure Storage's scalability target is
   * per account (20,000 requests/s for a standard account); when exceeded it answers 503 Server
   * Busy or 429, which pause this budget like ARM's 429.
   */
  storage(accountName: string): RequestBudget {
    return this.getOrCreate(`storage:${accountName.toLowerCase()}`, (key) =>
      new RequestBudget(key, {
        ...this.common(),
        buckets: { all: { ratePerSecond: this.settings.storagePerSecond, burst: this.settings.storageBurst } },
        throttleStatuses: [429, 503],
      }),
    );
  }

  /** The budget with this key, if one was handed out. */
  get(key: string): RequestBudget | undefined {
    return this.budgets.get(key);
  }

  /** Every budget handed out so far. */
  all(): RequestBudget[] {
    return [...this.budgets.values()];
  }

  private common(): Omit<RequestBudgetOptions, 'buckets'> {
    return { ...this.options, maxConcurrency: this.settings.maxConcurrency };
  }

  private getOrCreate(key: string, create: (key: string) => RequestBudget): RequestBudget {
    let budget = this.budgets.get(key);
    if (budget === undefined) {
      budget = create(key);
      this.budgets.set(key, budget);
    }
    return budget;
  }
}
