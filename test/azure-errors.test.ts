import { createHttpHeaders, createPipelineRequest, RestError } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { OpsAutopilotError } from '../src/errors.ts';
import {
  AuthorizationFailedError,
  AzureOperationError,
  callAzure,
  parseRetryAfterMs,
  redactSecrets,
  ResourceConflictError,
  ResourceNotFoundError,
  toAzureError,
  TransientAzureError,
} from '../src/azure/errors.ts';

const resourceId = '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-lms-prod';
const ctx = { resourceId, operation: 'get server' };

function restError(status: number, body: unknown, headers: Record<string, string> = {}, code?: string): RestError {
  const request = createPipelineRequest({ url: `https://management.azure.com${resourceId}?api-version=2024-08-01`, method: 'GET' });
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new RestError(typeof body === 'object' && body !== null ? 'service message' : text, {
    statusCode: status,
    ...(code === undefined ? {} : { code }),
    request,
    response: { request, status, headers: createHttpHeaders(headers), bodyAsText: text },
  });
}

describe('toAzureError', () => {
  it('maps 404 to ResourceNotFoundError carrying resource, operation, code and request id', () => {
    const error = toAzureError(
      restError(404, { error: { code: 'ResourceNotFound', message: "The Resource 'psql-lms-prod' was not found." } }, { 'x-ms-request-id': 'req-1' }),
      ctx,
    );
    expect(error).toBeInstanceOf(ResourceNotFoundError);
    expect(error).toBeInstanceOf(AzureOperationError);
    expect(error).toBeInstanceOf(OpsAutopilotError);
    expect(error.resourceId).toBe(resourceId);
    expect(error.operation).toBe('get server');
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe('ResourceNotFound');
    expect(error.requestId).toBe('req-1');
    expect(error.message).toBe(
      `get server on ${resourceId} failed: expected the resource to exist, found HTTP 404 ResourceNotFound: The Resource 'psql-lms-prod' was not found.`,
    );
    expect(error.context).toMatchObject({ resourceId, operation: 'get server', statusCode: 404, code: 'ResourceNotFound' });
  });

  it('maps 409 and 412 to ResourceConflictError and 401/403 to AuthorizationFailedError', () => {
    expect(toAzureError(restError(409, { error: { code: 'Conflict', message: 'busy' } }), ctx)).toBeInstanceOf(ResourceConflictError);
    expect(toAzureError(restError(412, { error: { code: 'PreconditionFailed', message: 'etag' } }), ctx)).toBeInstanceOf(ResourceConflictError);
    const forbidden = toAzureError(restError(403, { error: { code: 'AuthorizationFailed', message: 'no' } }), ctx);
    expect(forbidden).toBeInstanceOf(AuthorizationFailedError);
    expect(forbidden.message).toContain('expected the identity to be authorised, found HTTP 403 AuthorizationFailed');
    expect(toAzureError(restError(401, { error: { code: 'InvalidAuthenticationToken', message: 'x' } }), ctx)).toBeInstanceOf(
      AuthorizationFailedError,
    );
  });

  it('maps 429 and 5xx to TransientAzureError with the retry hint', () => {
    const throttled = toAzureError(restError(429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'retry-after': '7' }), ctx);
    if (!(throttled instanceof TransientAzureError)) throw new Error(`expected TransientAzureError, found ${throttled.name}`);
    expect(throttled.retryAfterMs).toBe(7000);
    const unavailable = toAzureError(restError(503, { error: { code: 'ServiceUnavailable', message: 'down' } }), ctx);
    if (!(unavailable instanceof TransientAzureError)) throw new Error(`expected TransientAzureError, found ${unavailable.name}`);
    expect(unavailable.retryAfterMs).toBeUndefined();
    expect(toAzureError(restError(400, { error: { code: 'InvalidParameter', message: 'bad' } }), ctx).constructor).toBe(AzureOperationError);
  });

  it('maps network failures to TransientAzureError without a status', () => {
    const network = new RestError('read ECONNRESET', { code: 'ECONNRESET' });
    const error = toAzureError(network, ctx);
    expect(error).toBeInstanceOf(TransientAzureError);
    expect(error.statusCode).toBeUndefined();
    expect(error.message).toBe(`get server on ${resourceId} failed: expected a successful response, found network error ECONNRESET: read ECONNRESET`);
  });

  it('uses the caller expectation and keeps the cause', () => {
    const cause = restError(404, { error: { code: 'ResourceNotFound', message: 'gone' } });
    const error = toAzureError(cause, { ...ctx, expected: 'the server to exist before restoring' });
    expect(error.message).toContain('expected the server to exist before restoring, found HTTP 404');
    expect(error.cause).toBe(cause);
  });

  it('never puts tokens, signatures or passwords into the message', () => {
    const leaky = restError(400, {
      error: {
        code: 'BadRequest',
        message:
          'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl failed for https://st.blob.core.windows.net/c?sv=2024&sig=abc%2Fdef; Password=hunter2;',
      },
    });
    const message = toAzureError(leaky, ctx).message;
    expect(message).not.toContain('eyJhbGciOiJSUzI1NiJ9');
    expect(message).not.toContain('abc%2Fdef');
    expect(message).not.toContain('hunter2');
    expect(message).toContain('sig=REDACTED');
    expect(redactSecrets('client_secret=s3cret&x=1')).toBe('client_secret=REDACTED&x=1');
  });

  it('wraps plain errors (e.g. a failed LRO) and passes typed errors through', () => {
    const lro = Object.assign(new Error('The long-running operation has failed'), { code: 'OperationFailed' });
    const error = toAzureError(lro, ctx);
    expect(error.constructor).toBe(AzureOperationError);
    expect(error.message).toBe(`get server on ${resourceId} failed: expected a successful response, found error OperationFailed: The long-running operation has failed`);
    expect(toAzureError(error, { resourceId: 'other', operation: 'other' })).toBe(error);
  });
});

describe('callAzure', () => {
  it('returns the value and rethrows failures typed', async () => {
    await expect(callAzure(ctx, () => Promise.resolve(42))).resolves.toBe(42);
    await expect(
      callAzure(ctx, () => Promise.reject(restError(404, { error: { code: 'ResourceNotFound', message: 'nope' } }))),
    ).rejects.toBeInstanceOf(ResourceNotFoundError);
  });
});

describe('parseRetryAfterMs', () => {
  const headers = (values: Record<string, string>) => (name: string) => values[name];
  it('prefers the millisecond headers, then Retry-After seconds or date', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    expect(parseRetryAfterMs(headers({ 'x-ms-retry-after-ms': '1500' }))).toBe(1500);
    expect(parseRetryAfterMs(headers({ 'retry-after': '3' }))).toBe(3000);
    expect(parseRetryAfterMs(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:28:10 GMT' }), Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfterMs(headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfterMs(headers({}))).toBeUndefined();
  });
});
