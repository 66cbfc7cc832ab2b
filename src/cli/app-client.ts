/**
 * The CLI's client of the app's HTTP API. Long work (a manual run, a remediation, a restore,
 * a rotation) runs in the app, durably; the CLI starts it, follows it and raises events to it
 * over HTTP, and never runs it in its own process, so the work survives the operator's laptop.
 * Every command that talks to the app uses this module:
 *
 * ```ts
 * const client = new AppClient(resolveAppConnection({ app: options.app, key: options.key, appCa: options.appCa }));
 * const started = await client.start('runs/image-purge', { mode: 'apply' });       // 202 + statusUrl
 * const final = await client.follow(started.statusUrl, { onProgress, signal });    // until done: true
 * await client.raiseEvent(`restores/${id}/approve`, { by: 'alice' });               // POST, 2xx
 * ```
 *
 * Where the app is: `--app <url>` or `OPS_AUTOPILOT_APP_URL` (`https://<app>.azurewebsites.net`;
 * the `/api` route prefix is added unless the URL has a path; `http://` only on a loopback host,
 * as the local host `npm run dev` serves it). The key: `--key` or `OPS_AUTOPILOT_APP_KEY`, sent
 * in the `x-functions-key` header (never in a URL, so it stays out of logs). Extra CA: `--app-ca
 * <pem>` or `OPS_AUTOPILOT_APP_CA_FILE`, trusted in addition to the system roots; TLS verification
 * is never turned off.
 *
 * The status contract (every start route and status route of the app follows it): a start
 * answers 202 with `{ id, statusUrl, status, done: false }` and a `Location` header; a status
 * route answers 200 with `{ id, status, done, ... }` and, while not done, may send `Retry-After`.
 * {@link AppClient.follow} polls until `done` is true, within bounds.
 *
 * Errors are typed and say what to do: {@link AppUnauthorizedError} (401/403: the key),
 * {@link AppNotFoundError} (404: the URL, the id, or an app without this route),
 * {@link AppUnreachableError} (no answer), {@link AppRequestError} (any other non-2xx, with the
 * app's `{ error: { code, message } }`), {@link AppFollowTimeoutError}.
 */
import { readFile } from 'node:fs/promises';
import { delay } from '@azure/core-util';
import { httpsExchange, HttpsExchangeError, isLoopbackHost, tlsSettingsWithCa } from '../azure/https-exchange.ts';
import { errorCode, errorMessage, OpsAutopilotError } from '../errors.ts';

/** Environment variables the client reads. */
export const APP_ENV = { url: 'OPS_AUTOPILOT_APP_URL', key: 'OPS_AUTOPILOT_APP_KEY', caFile: 'OPS_AUTOPILOT_APP_CA_FILE' } as const;

/** Deadline of one request to the app (the app answers starts and status quickly; work runs behind them). */
export const APP_REQUEST_TIMEOUT_MS = 60_000;
/** Largest response body read (a run record with many actions fits). */
export const APP_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Poll interval bounds of {@link AppClient.follow}. */
export const MIN_POLL_MS = 500;
export const MAX_POLL_MS = 15_000;
/** Default longest {@link AppClient.follow}: an hour; callers with longer work pass theirs. */
export const DEFAULT_FOLLOW_MS = 60 * 60 * 1000;
/** Longest a follow may be asked to wait: one day. */
export const MAX_FOLLOW_MS = 24 * 60 * 60 * 1000;

/** `--app`, `--key`, `--app-ca` as given on the command line. */
export interface AppConnectionOptions {
  readonly app?: string | undefined;
  readonly key?: string | undefined;
  readonly appCa?: string | undefined;
}

/** Where and how to reach the app, resolved from options and environment. */
export interface AppConnection {
  /** The API base, e.g. `https://func-x.azurewebsites.net/api` (no trailing slash). */
  readonly baseUrl: string;
  readonly key: string | undefined;
  readonly caFile: string | undefined;
}

/** Base of the client's errors. */
export class AppClientError extends OpsAutopilotError {
  override readonly name: string = 'AppClientError';
}

/** No app URL, or an unusable one: a usage error (exit 2). */
export class AppConnectionError extends AppClientError {
  override readonly name: string = 'AppConnectionError';
}

/** The app answered 401 or 403: no key, or the wrong one. */
export class AppUnauthorizedError extends AppClientError {
  override readonly name: string = 'AppUnauthorizedError';
}

/** The app answered 404: a wrong URL, an unknown id, or an app without this route. */
export class AppNotFoundError extends AppClientError {
  override readonly name: string = 'AppNotFoundError';
}

/** No answer from the app: refused, TLS failure, timeout. */
export class AppUnreachableError extends AppClientError {
  override readonly name: string = 'AppUnreachableError';
}

/** A non-2xx answer other than 401/403/404, with the app's error code and message. */
export class AppRequestError extends AppClientError {
  override readonly name: string = 'AppRequestError';
  constructor(
    message: string,
    readonly status: number,
    /** The app's `error.code`, e.g. `InvalidBody`, `UnknownTarget`, `NotReady`. */
    readonly code: string | undefined,
    /** The parsed body, for callers that show more (e.g. `problems` of a 503). */
    readonly body: unknown,
  ) {
    super(message, { context: { status, code } });
  }
}

/** {@link AppClient.follow} gave up waiting; the work continues in the app. */
export class AppFollowTimeoutError extends AppClientError {
  override readonly name: string = 'AppFollowTimeoutError';
  constructor(
    message: string,
    /** The last status seen. */
    readonly last: OperationStatus,
  ) {
    super(message, { context: { statusUrl: last.statusUrl } });
  }
}

/** A status as the app reports it (`{ id, status, done, ... }`), with the rest of its body. */
export interface OperationStatus {
  readonly id: string;
  readonly status: string;
  readonly done: boolean;
  readonly statusUrl: string;
  /** The whole body, for callers that read more (`outcome`, `record`, `ladder`, ...). */
  readonly body: Readonly<Record<string, unknown>>;
}

/** A response of {@link AppClient.request}. */
export interface AppResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/** Options of {@link AppClient.follow}. */
export interface FollowOptions {
  /** Called after every poll (e.g. to draw progress on a terminal). */
  readonly onProgress?: (status: OperationStatus, elapsedMs: number) => void;
  /** Stops following (Ctrl-C); the promise rejects with the signal's reason. The work goes on in the app. */
  readonly signal?: AbortSignal;
  /** Longest wait (default {@link DEFAULT_FOLLOW_MS}, at most {@link MAX_FOLLOW_MS}). */
  readonly maxWaitMs?: number;
  /** First poll interval (default 1 s; grows to {@link MAX_POLL_MS}; a `Retry-After` within bounds wins). */
  readonly intervalMs?: number;
}

/**
 * Resolves where the app is from options, then the environment.
 *
 * @throws {@link AppConnectionError} without an app URL, or for a URL that would leak the key
 * (plain http to a non-loopback host, credentials or a query in the URL).
 */
export function resolveAppConnection(options: AppConnectionOptions, env: NodeJS.ProcessEnv = process.env): AppConnection {
  const raw = options.app ?? env[APP_ENV.url];
  if (raw === undefined || raw.trim() === '') {
    throw new AppConnectionError(`expected the app's URL in --app <url> or ${APP_ENV.url}, found neither (against the sandbox, npm run dev prints it)`);
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new AppConnectionError(`--app: expected a URL such as https://<app>.azurewebsites.net, found "${raw}"`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new AppConnectionError(`--app: expected an https:// URL (http:// only on a loopback host, e.g. the local host), found ${url.protocol}//${url.host}: the key would travel in clear`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new AppConnectionError(`--app: expected a URL without credentials, query or fragment (pass the key with --key or ${APP_ENV.key}), found ${url.origin}/…`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  const baseUrl = `${url.origin}${path === '' ? '/api' : path}`;
  const key = options.key ?? env[APP_ENV.key];
  const caFile = options.appCa ?? env[APP_ENV.caFile];
  return { baseUrl, key: key === undefined || key === '' ? undefined : key, caFile: caFile === undefined || caFile === '' ? undefined : caFile };
}

function errorOf(body: unknown): { code: string | undefined; message: string | undefined } {
  if (body === null || typeof body !== 'object' || !('error' in body)) return { code: undefined, message: undefined };
  const error = (body).error;
  if (error === null || typeof error !== 'object') return { code: undefined, message: undefined };
  const { code, message } = error as { code?: unknown; message?: unknown };
  return { code: typeof code === 'string' ? code : undefined, message: typeof message === 'string' ? message : undefined };
}

function toStatus(body: unknown, fallbackUrl: string): OperationStatus {
  const record = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const id = typeof record.id === 'string' ? record.id : '';
  const status = typeof record.status === 'string' ? record.status : 'unknown';
  const statusUrl = typeof record.statusUrl === 'string' ? record.statusUrl : fallbackUrl;
  return { id, status, done: record.done === true, statusUrl, body: record };
}

/** The app's HTTP API; see the module comment. */
export class AppClient {
  private tls: Promise<ReturnType<typeof tlsSettingsWithCa> | undefined> | undefined;

  constructor(readonly connection: AppConnection) {}

  /** The URL of an API path (`runs/x`), or an absolute URL the app returned (same origin only). */
  url(pathOrUrl: string): string {
    const base = new URL(`${this.connection.baseUrl}/`);
    const url = /^https?:\/\//.test(pathOrUrl) ? new URL(pathOrUrl) : new URL(pathOrUrl.replace(/^\/+/, ''), base);
    // The key goes only to the app: a status URL on another origin is refused.
    if (url.origin !== base.origin) {
      throw new AppClientError(`expected a URL of the app ${base.origin}, found one on ${url.origin}; not sending the key there`, { context: { origin: url.origin } });
    }
    return url.href;
  }

  /**
   * Sends one request and returns any 2xx answer.
   *
   * @throws the typed errors of the module comment for anything else.
   */
  async request(method: 'GET' | 'POST', pathOrUrl: string, options: { readonly body?: unknown; readonly signal?: AbortSignal } = {}): Promise<AppResponse> {
    const url = this.url(pathOrUrl);
    const shown = url.split('?')[0] ?? url;
    const tlsSettings = await this.tlsSettings();
    let result;
    try {
      result = await httpsExchange(url, {
        method,
        timeoutMs: APP_REQUEST_TIMEOUT_MS,
        allowLoopbackHttp: true,
        maxBodyBytes: APP_MAX_BODY_BYTES,
        headers: {
          accept: 'application/json',
          'user-agent': 'ops-autopilot-cli',
          ...(this.connection.key === undefined ? {} : { 'x-functions-key': this.connection.key }),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        ...(tlsSettings === undefined ? {} : { tlsSettings }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (error) {
      if (error instanceof HttpsExchangeError && error.reason === 'aborted') throw error;
      throw new AppUnreachableError(`${method} ${shown}: expected an answer from the app, found none (${error instanceof HttpsExchangeError ? error.detail : errorMessage(error)}); is --app right and the app running?`, {
        context: { url: shown },
        cause: error,
      });
    }
    if (result.truncated) {
      throw new AppRequestError(`${method} ${shown}: expected a response of at most ${String(APP_MAX_BODY_BYTES)} bytes, found more`, result.status, undefined, undefined);
    }
    let body: unknown = undefined;
    if (result.body.trim() !== '') {
      try {
        body = JSON.parse(result.body);
      } catch {
        body = result.body;
      }
    }
    if (result.status >= 200 && result.status < 300) return { status: result.status, headers: result.headers, body };
    const { code, message } = errorOf(body);
    const said = message === undefined ? '' : `: ${message}`;
    if (result.status === 401 || result.status === 403) {
      throw new AppUnauthorizedError(
        `${method} ${shown}: the app answered ${String(result.status)}${this.connection.key === undefined ? `; expected a function key in --key or ${APP_ENV.key}, found none` : `; the key in --key or ${APP_ENV.key} is not one of the app's function keys`}`,
        { context: { url: shown, status: result.status } },
      );
    }
    if (result.status === 404) {
      throw new AppNotFoundError(`${method} ${shown}: the app answered 404${said || ' (is --app the right app, and does it have this route?)'}`, { context: { url: shown, code } });
    }
    throw new AppRequestError(`${method} ${shown}: the app answered ${String(result.status)}${said}`, result.status, code, body);
  }

  /**
   * Starts an operation: POSTs `body` to `path` and returns its status (202 with `statusUrl`;
   * a 200 is returned as it is, `done` as the app says).
   */
  async start(path: string, body: unknown, signal?: AbortSignal): Promise<OperationStatus> {
    const response = await this.request('POST', path, { body, ...(signal === undefined ? {} : { signal }) });
    const fallback = response.headers.location ?? this.url(path);
    return toStatus(response.body, fallback);
  }

  /** The status of an operation (GET of its status URL). */
  async status(statusUrl: string, signal?: AbortSignal): Promise<OperationStatus & { retryAfterMs: number | undefined }> {
    const response = await this.request('GET', statusUrl, signal === undefined ? {} : { signal });
    const retryAfter = Number(response.headers['retry-after']);
    return { ...toStatus(response.body, statusUrl), retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined };
  }

  /**
   * Polls `statusUrl` until `done`, waiting between polls (the app's `Retry-After` when it is
   * within [{@link MIN_POLL_MS}, {@link MAX_POLL_MS}], else a growing interval), at most
   * `maxWaitMs`. A poll that fails for a passing reason (unreachable, 5xx) is tried again up to
   * three times in a row; any other error ends the follow.
   *
   * @throws {@link AppFollowTimeoutError} after `maxWaitMs`; the signal's reason when aborted.
   */
  async follow(statusUrl: string, options: FollowOptions = {}): Promise<OperationStatus> {
    try {
      return await this.poll(statusUrl, options);
    } catch (error) {
      // Whether the abort came during a request or a wait, the caller sees its own reason.
      const { signal } = options;
      if (signal?.aborted === true) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
      throw error;
    }
  }

  private async poll(statusUrl: string, options: FollowOptions): Promise<OperationStatus> {
    const maxWaitMs = Math.min(Math.max(options.maxWaitMs ?? DEFAULT_FOLLOW_MS, 1), MAX_FOLLOW_MS);
    const started = Date.now();
    let interval = Math.min(Math.max(options.intervalMs ?? 1000, MIN_POLL_MS), MAX_POLL_MS);
    let failures = 0;
    let last: OperationStatus = { id: '', status: 'unknown', done: false, statusUrl, body: {} };
    for (;;) {
      options.signal?.throwIfAborted();
      let retryAfterMs: number | undefined;
      try {
        const current = await this.status(statusUrl, options.signal);
        retryAfterMs = current.retryAfterMs;
        last = current;
        failures = 0;
      } catch (error) {
        const passing = error instanceof AppUnreachableError || (error instanceof AppRequestError && error.status >= 500);
        if (!passing || failures >= 3) throw error;
        failures += 1;
      }
      const elapsed = Date.now() - started;
      options.onProgress?.(last, elapsed);
      if (last.done) return last;
      if (elapsed >= maxWaitMs) {
        throw new AppFollowTimeoutError(
          `${last.id === '' ? statusUrl : last.id}: still ${last.status} after ${formatDuration(elapsed)} (the limit); it goes on in the app, follow it at ${last.statusUrl}`,
          last,
        );
      }
      const wait = retryAfterMs !== undefined && retryAfterMs >= MIN_POLL_MS && retryAfterMs <= MAX_POLL_MS ? retryAfterMs : interval;
      await delay(Math.min(wait, maxWaitMs - elapsed), options.signal === undefined ? {} : { abortSignal: options.signal });
      interval = Math.min(Math.round(interval * 1.5), MAX_POLL_MS);
    }
  }

  /** Raises an event on an operation (e.g. `restores/{id}/approve`): a POST answered 2xx. */
  async raiseEvent(path: string, body: unknown = {}, signal?: AbortSignal): Promise<AppResponse> {
    return this.request('POST', path, { body, ...(signal === undefined ? {} : { signal }) });
  }

  private tlsSettings(): Promise<ReturnType<typeof tlsSettingsWithCa> | undefined> {
    const { caFile } = this.connection;
    this.tls ??=
      caFile === undefined
        ? Promise.resolve(undefined)
        : readFile(caFile).then(
            (pem) => tlsSettingsWithCa(pem),
            (error: unknown) => {
              throw new AppConnectionError(`--app-ca: expected a readable PEM file at ${caFile}, found ${errorCode(error) ?? errorMessage(error)}`, { context: { caFile } });
            },
          );
    return this.tls;
  }
}

/** `850 ms`, `12 s`, `3 min 20 s`, `1 h 5 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${String(Math.round(ms))} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${String(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${String(minutes)} min${seconds % 60 === 0 ? '' : ` ${String(seconds % 60)} s`}`;
  return `${String(Math.floor(minutes / 60))} h${minutes % 60 === 0 ? '' : ` ${String(minutes % 60)} min`}`;
}

/**
 * Progress of a follow on a terminal: one line on stderr, redrawn in place; nothing when stderr
 * is not a terminal (a pipe or a log gets only the final result). Call `done()` at the end.
 */
export function followProgress(label: string, stream: NodeJS.WriteStream = process.stderr): { onProgress: NonNullable<FollowOptions['onProgress']>; done: () => void } {
  const tty = stream.isTTY;
  let drawn = false;
  return {
    onProgress(status, elapsedMs) {
      if (!tty) return;
      stream.write(`\r\x1b[2K${label}: ${status.status} (${formatDuration(elapsedMs)})`);
      drawn = true;
    },
    done() {
      if (tty && drawn) stream.write('\r\x1b[2K');
    },
  };
}
