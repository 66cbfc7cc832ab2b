/**
 * Typed errors for Azure calls.
 *
 * Every SDK failure that leaves the client layer is an {@link AzureOperationError} (or one of
 * its subclasses) carrying the resource ID and the operation, so a runbook can decide by type
 * (missing, conflicting, throttled, forbidden) instead of by parsing messages. Messages never
 * carry request bodies, tokens or signatures: only the operation, the resource ID, the status,
 * the Azure error code and the service's own (sanitised) message.
 */
import { isRestError, type RestError } from '@azure/core-rest-pipeline';
import { credentialAdvice, credentialFailureInWords, credentialInWords } from './credential-advice.ts';
import { OpsAutopilotError } from '../errors.ts';

/** What was being attempted when an Azure call failed. */
export interface AzureCallContext {
  /** ARM resource ID, or a data-plane name such as `kv-xshopai-prod/secrets/JWT-SECRET`. */
  readonly resourceId: string;
  /** Short operation name, e.g. `get web app` or `Microsoft.Web/sites.restart`. */
  readonly operation: string;
  /** What a successful call would have shown, e.g. `the server to exist`; defaults per status. */
  readonly expected?: string;
}

interface AzureErrorDetails {
  readonly resourceId: string;
  readonly operation: string;
  readonly statusCode: number | undefined;
  readonly code: string | undefined;
  readonly requestId: string | undefined;
  readonly cause?: unknown;
}

/** Base class of every failed Azure call. */
export class AzureOperationError extends OpsAutopilotError {
  override readonly name: string = 'AzureOperationError';
  /** The resource the call was about. */
  readonly resourceId: string;
  /** What was attempted. */
  readonly operation: string;
  /** HTTP status, or undefined when no response arrived (network error, abort). */
  readonly statusCode: number | undefined;
  /** Azure error code from the response body (`ResourceNotFound`) or the network error code (`ECONNRESET`). */
  readonly code: string | undefined;
  /** `x-ms-request-id` of the failed response, or the client request ID; for support tickets. */
  readonly requestId: string | undefined;

  constructor(message: string, details: AzureErrorDetails) {
    super(message, {
      context: {
        resourceId: details.resourceId,
        operation: details.operation,
        statusCode: details.statusCode,
        code: details.code,
        requestId: details.requestId,
      },
      cause: details.cause,
    });
    this.resourceId = details.resourceId;
    this.operation = details.operation;
    this.statusCode = details.statusCode;
    this.code = details.code;
    this.requestId = details.requestId;
  }
}

/** HTTP 404: the resource (or the parent it lives in) does not exist. */
export class ResourceNotFoundError extends AzureOperationError {
  override readonly name: string = 'ResourceNotFoundError';
}

/** HTTP 409 or 412: the resource is in a state that does not allow the operation, or changed meanwhile. */
export class ResourceConflictError extends AzureOperationError {
  override readonly name: string = 'ResourceConflictError';
}

/** HTTP 401 or 403: the identity may not do this. Retrying will not help. */
export class AuthorizationFailedError extends AzureOperationError {
  override readonly name: string = 'AuthorizationFailedError';
}

/** HTTP 408, 429, 5xx or a network failure, still failing after the SDK's own retries. */
export class TransientAzureError extends AzureOperationError {
  override readonly name: string = 'TransientAzureError';
  /** How long the service asked us to wait, when it said so. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: AzureErrorDetails & { retryAfterMs: number | undefined }) {
    super(message, details);
    this.retryAfterMs = details.retryAfterMs;
  }
}

/**
 * No token could be obtained: the credential is unavailable (no managed identity, no Azure CLI
 * login), refused, or its token endpoint unreachable. The same for every resource of a run, so
 * {@link reason} is phrased without the resource and callers can report it once.
 */
export class AzureCredentialError extends AzureOperationError {
  override readonly name: string = 'AzureCredentialError';
  /** Which credential was tried: `managed identity`, `DefaultAzureCredential`, `sandbox credential`, ... */
  readonly credentialKind: string;
  /** The scope the token was for, when known. */
  readonly scope: string | undefined;
  /** One line without the resource: kind, scope and the first line of the cause, redacted. */
  readonly reason: string;

  constructor(message: string, details: AzureErrorDetails & { credentialKind: string; scope: string | undefined; reason: string }) {
    super(message, details);
    this.credentialKind = details.credentialKind;
    this.scope = details.scope;
    this.reason = details.reason;
  }
}

/**
 * The service asked for a delay above the client layer's cap (`Retry-After: 86400`, or an
 * operation's poll interval of an hour). The request fails at once instead of stalling its
 * budget and the run past the Functions timeout; {@link askedDelayMs} says what was asked.
 * It is transient (asking again later may work), so it extends {@link TransientAzureError}.
 */
export class ServerDelayAboveCapError extends TransientAzureError {
  override readonly name: string = 'ServerDelayAboveCapError';
  /** The delay the service asked for, in milliseconds. */
  readonly askedDelayMs: number;
  /** The cap it exceeded, in milliseconds. */
  readonly capMs: number;
  /** Which header asked, and its value as sent. */
  readonly delay: ServerDelay;
  /** The request's method and URL without its query (which may hold a SAS). */
  readonly request: { readonly method: string; readonly url: string };

  constructor(
    ctx: AzureCallContext,
    details: { statusCode: number; requestId: string | undefined; delay: ServerDelay; capMs: number; request: { method: string; url: string } },
  ) {
    const accepted = details.statusCode >= 200 && details.statusCode < 300;
    const header = details.delay.header === 'retry-after' ? 'Retry-After' : details.delay.header;
    const message =
      `${ctx.operation} on ${ctx.resourceId} failed: expected a server-supplied delay of at most ${formatDelay(details.capMs)}, ` +
      `found HTTP ${details.statusCode} with ${header}: ${details.delay.value} (${formatDelay(details.delay.ms)}); not waiting` +
      (accepted ? ' (the service accepted the request: the operation may still be running)' : '');
    super(message, {
      resourceId: ctx.resourceId,
      operation: ctx.operation,
      statusCode: details.statusCode,
      code: 'ServerDelayAboveCap',
      requestId: details.requestId,
      retryAfterMs: details.delay.ms,
    });
    this.askedDelayMs = details.delay.ms;
    this.capMs = details.capMs;
    this.delay = details.delay;
    this.request = details.request;
  }

  /** The same failure described by the caller's resource and operation (see {@link toAzureError}). */
  withContext(ctx: AzureCallContext): ServerDelayAboveCapError {
    if (ctx.resourceId === this.resourceId && ctx.operation === this.operation) return this;
    return new ServerDelayAboveCapError(ctx, {
      statusCode: this.statusCode ?? 0,
      requestId: this.requestId,
      delay: this.delay,
      capMs: this.capMs,
      request: this.request,
    });
  }
}

/**
 * `Error.name` of credential failures: @azure/identity's (matched by name, so identity is not
 * imported for the check) and the client layer's own (`CredentialError`, `TokenRequestError`).
 */
const CREDENTIAL_ERROR_NAMES = new Set([
  'CredentialUnavailableError',
  'AggregateAuthenticationError',
  'AuthenticationError',
  'AuthenticationRequiredError',
  'CredentialError',
  'TokenRequestError',
]);

function stringProperty(value: object, key: string): string | undefined {
  const found: unknown = (value as Record<string, unknown>)[key];
  return typeof found === 'string' ? found : undefined;
}

/** Which credential produced an error that was not labelled by the client layer. */
function inferCredentialKind(error: Error): string {
  if (error.name === 'CredentialError' && error.message.startsWith('sandbox token request')) return 'sandbox credential';
  if (error.name === 'AggregateAuthenticationError' || error.message.includes('ChainedTokenCredential')) return 'DefaultAzureCredential';
  if (error.message.includes('ManagedIdentityCredential')) return 'managed identity';
  return 'Azure credential';
}

function credentialError(error: Error, ctx: AzureCallContext): AzureCredentialError {
  // The client layer's TokenRequestError names kind and scope; the failure itself is its cause.
  const labelled = error.name === 'TokenRequestError';
  const cause: unknown = labelled ? error.cause : error;
  const credentialKind = (labelled ? stringProperty(error, 'credentialKind') : undefined) ?? inferCredentialKind(cause instanceof Error ? cause : error);
  const context: unknown = 'context' in error ? error.context : undefined;
  const scope =
    (labelled ? stringProperty(error, 'scope') : undefined) ??
    (typeof context === 'object' && context !== null ? stringProperty(context, 'scope') : undefined);
  // In words, with what to do: the credentials tried and what became of each, not class names.
  const advice = credentialAdvice(credentialKind);
  const reason = redactSecrets(
    `expected a token from ${credentialInWords(credentialKind)}${scope === undefined ? '' : ` for scope "${scope}"`}, found ${credentialFailureInWords(cause, firstLineOf(cause))}${advice === undefined ? '' : `; ${advice}`}`,
  );
  return new AzureCredentialError(`${ctx.operation} on ${ctx.resourceId} failed: ${reason}`, {
    resourceId: ctx.resourceId,
    operation: ctx.operation,
    statusCode: undefined,
    code: error.name === 'TokenRequestError' && cause instanceof Error ? cause.name : error.name,
    requestId: undefined,
    cause: error,
    credentialKind,
    scope,
    reason,
  });
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
]);

/** One delay a response asks for, as one header states it. */
export interface ServerDelay {
  /** The header, lower-case: `retry-after-ms`, `x-ms-retry-after-ms` or `retry-after`. */
  readonly header: string;
  /** The header's value as sent (trimmed, at most 64 characters). */
  readonly value: string;
  /** The delay in milliseconds (0 for a date in the past). */
  readonly ms: number;
}

/** The headers Azure states a delay in: milliseconds, milliseconds, seconds or an HTTP date. */
const DELAY_HEADERS = ['retry-after-ms', 'x-ms-retry-after-ms', 'retry-after'] as const;

/**
 * Every delay a response's headers ask for, read as liberally as any consumer reads them:
 * the SDK's throttling retry (`Number()`, so `1e6` is a million), core-lro's poll interval
 * (`parseInt`, so `60abc` is 60 s) and `Retry-After` as an HTTP date. The cap must hold for the
 * longest of them, since each consumer picks its own.
 */
export function serverDelays(get: (name: string) => string | undefined, nowMs: number = Date.now()): ServerDelay[] {
  const delays: ServerDelay[] = [];
  for (const header of DELAY_HEADERS) {
    const raw = get(header);
    if (raw === undefined || raw.trim() === '') continue;
    const value = raw.trim().slice(0, 64);
    const factor = header === 'retry-after' ? 1000 : 1;
    const candidates = [Number(value), header === 'retry-after' ? Number.parseInt(value, 10) : Number.NaN]
      .filter((n) => Number.isFinite(n))
      .map((n) => Math.max(0, Math.ceil(n * factor)));
    if (header === 'retry-after' && candidates.length === 0) {
      const date = Date.parse(value);
      if (Number.isFinite(date)) candidates.push(Math.max(0, date - nowMs));
    }
    if (candidates.length > 0) delays.push({ header, value, ms: Math.max(...candidates) });
  }
  return delays;
}

/** The longest delay a response asks for (see {@link serverDelays}), or undefined when it asks for none. */
export function longestServerDelay(get: (name: string) => string | undefined, nowMs: number = Date.now()): ServerDelay | undefined {
  let longest: ServerDelay | undefined;
  for (const delay of serverDelays(get, nowMs)) if (longest === undefined || delay.ms > longest.ms) longest = delay;
  return longest;
}

/**
 * Parses the retry hint the way the SDK's throttling retry picks it: `retry-after-ms`, then
 * `x-ms-retry-after-ms` (milliseconds), then `Retry-After` (seconds or an HTTP date). Returns
 * undefined when none is valid.
 */
export function parseRetryAfterMs(get: (name: string) => string | undefined, nowMs: number = Date.now()): number | undefined {
  return serverDelays(get, nowMs)[0]?.ms;
}

/** `90 s`, `1.5 s`, `24 h` — a delay as a person reads it. */
export function formatDelay(ms: number): string {
  if (ms >= 2 * 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  if (ms >= 2 * 60_000) return `${Math.round(ms / 60_000)} min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

/**
 * Removes anything credential-shaped from a service message before it goes into an error:
 * SAS signatures, bearer tokens, JWTs, `password=` and `AccountKey=` pairs.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/\b(sig|se|skoid|sktid|skt|ske|sks|skv|code|client_secret|access_token|refresh_token)=[^&\s"']+/gi, '$1=REDACTED')
    .replace(/\bBearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer REDACTED')
    .replace(/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, 'REDACTED_JWT')
    .replace(/\b(AccountKey|Password|Pwd|SharedAccessKey)=[^;\s"']+/gi, '$1=REDACTED');
}

/**
 * The first meaningful line of a credential failure, secrets redacted: @azure/identity's
 * messages run to dozens of lines (a troubleshooting link per chained credential).
 */
export function firstLineOf(error: unknown): string {
  if (!(error instanceof Error)) return redactSecrets(typeof error === 'string' ? error : 'non-error value thrown');
  const detail = error instanceof OpsAutopilotError ? error.context.detail : undefined;
  const text = typeof detail === 'string' ? detail : error.message;
  const first = text.split('\n').map((line) => line.trim()).find((line) => line !== '') ?? error.name;
  let line = first;
  if (error.name === 'AggregateAuthenticationError' && 'errors' in error && Array.isArray(error.errors)) {
    // The chain's own first line says only that it failed; which credentials it tried is the news.
    const inner: unknown[] = error.errors;
    const tried = inner.map((item) => (item instanceof Error ? (/^(\w+Credential)\b/.exec(item.message)?.[1] ?? item.name) : 'unknown'));
    const unavailable = inner.every((item) => item instanceof Error && item.name === 'CredentialUnavailableError');
    line = `${first.replace(/\.$/, '')} (tried ${tried.join(', ')}${unavailable ? '; none available' : ''})`;
  }
  const oneLine = redactSecrets(line).replace(/\s+/g, ' ');
  return oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine;
}

/** Service messages can be long (ARM includes whole policy documents); keep errors one screen long. */
function shorten(text: string, max = 500): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

function defaultExpectation(status: number | undefined): string {
  if (status === 404) return 'the resource to exist';
  if (status === 409 || status === 412) return 'the resource to accept the change';
  if (status === 401 || status === 403) return 'the identity to be authorised';
  return 'a successful response';
}

function headerOf(error: RestError, name: string): string | undefined {
  return error.response?.headers.get(name) ?? undefined;
}

/** Reads an Azure `{ error: { code, message } }` or `{ code, message }` body, if the SDK did not. */
function bodyError(error: RestError): { code?: string; message?: string } {
  const text = error.response?.bodyAsText;
  if (text === undefined || text === null || text === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return {};
    const inner: unknown = 'error' in parsed ? parsed.error : parsed;
    if (typeof inner !== 'object' || inner === null) return {};
    const code = 'code' in inner && typeof inner.code === 'string' ? inner.code : undefined;
    const message = 'message' in inner && typeof inner.message === 'string' ? inner.message : undefined;
    return { ...(code === undefined ? {} : { code }), ...(message === undefined ? {} : { message }) };
  } catch {
    // Not JSON (an HTML gateway page, XML from storage): the SDK's own message is all we have.
    return {};
  }
}

function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function build(
  ctx: AzureCallContext,
  statusCode: number | undefined,
  code: string | undefined,
  serviceMessage: string,
  requestId: string | undefined,
  retryAfterMs: number | undefined,
  cause: unknown,
): AzureOperationError {
  const network = statusCode === undefined && code !== undefined && NETWORK_ERROR_CODES.has(code);
  const suffix = code === undefined ? '' : ` ${code}`;
  const found = statusCode !== undefined ? `HTTP ${statusCode}${suffix}` : network ? `network error${suffix}` : `error${suffix}`;
  const detail = shorten(redactSecrets(serviceMessage));
  const message = `${ctx.operation} on ${ctx.resourceId} failed: expected ${ctx.expected ?? defaultExpectation(statusCode)}, found ${found}${detail === '' ? '' : `: ${detail}`}`;
  const details = { resourceId: ctx.resourceId, operation: ctx.operation, statusCode, code, requestId, cause };
  if (statusCode === 404) return new ResourceNotFoundError(message, details);
  if (statusCode === 409 || statusCode === 412) return new ResourceConflictError(message, details);
  if (statusCode === 401 || statusCode === 403) return new AuthorizationFailedError(message, details);
  if (
    statusCode === 408 ||
    statusCode === 429 ||
    (statusCode !== undefined && statusCode >= 500) ||
    network
  ) {
    return new TransientAzureError(message, { ...details, retryAfterMs });
  }
  return new AzureOperationError(message, details);
}

/**
 * Maps anything an Azure SDK call threw to a typed {@link AzureOperationError}.
 * An error that already is one is returned unchanged.
 */
export function toAzureError(error: unknown, ctx: AzureCallContext): AzureOperationError {
  // Raised inside the pipeline, which knows the URL only: name the caller's resource instead.
  if (error instanceof ServerDelayAboveCapError) return error.withContext(ctx);
  if (error instanceof AzureOperationError) return error;
  if (error instanceof Error && CREDENTIAL_ERROR_NAMES.has(error.name)) return credentialError(error, ctx);
  if (isRestError(error)) {
    const statusCode = error.statusCode ?? error.response?.status;
    const fromBody = bodyError(error);
    // core-client puts the body's code in `code`; the modular clients sometimes leave the
    // generic REQUEST_SEND_ERROR there even for HTTP failures, so prefer the body when present.
    const code =
      fromBody.code ??
      (error.code !== undefined && !(statusCode !== undefined && error.code === 'REQUEST_SEND_ERROR') ? error.code : undefined) ??
      headerOf(error, 'x-ms-error-code');
    const causeCode = errorCodeOf(error.cause);
    const requestId = headerOf(error, 'x-ms-request-id') ?? error.request?.requestId;
    const retryAfterMs = error.response === undefined ? undefined : parseRetryAfterMs((name) => headerOf(error, name));
    const networkCode = statusCode === undefined ? (causeCode ?? code) : code;
    return build(ctx, statusCode, networkCode, fromBody.message ?? error.message, requestId, retryAfterMs, error);
  }
  if (error instanceof Error) {
    const code = errorCodeOf(error);
    // LRO pollers report a failed operation as a plain Error; it still carries a code when the
    // operation status body had one.
    return build(ctx, undefined, code, error.message, undefined, undefined, error);
  }
  return build(ctx, undefined, undefined, typeof error === 'string' ? error : 'non-error value thrown', undefined, undefined, error);
}

/**
 * Runs an Azure SDK call and rethrows its failure as a typed {@link AzureOperationError}.
 *
 * @example
 * const site = await callAzure({ resourceId, operation: 'get web app' }, () => web.webApps.get(rg, name));
 */
export async function callAzure<T>(ctx: AzureCallContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toAzureError(error, ctx);
  }
}
