import { createHttpHeaders, createPipelineRequest, RestError } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { OpsAutopilotError } from '../../../src/errors.ts';
import { labelCredentialFailures, TokenRequestError } from '../../../src/azure/credential.ts';
import {
  AuthorizationFailedError,
  AzureCredentialError,
  AzureOperationError,
  callAzure,
  parseRetryAfterMs,
  redactSecrets,
  ResourceConflictError,
  ResourceNotFoundError,
  toAzureError,
  TransientAzureError,
} from '../../../src/azure/errors.ts';

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

/** The error as an AzureCredentialError, failing the test when it is not one. */
function asCredentialError(error: unknown): AzureCredentialError {
  if (!(error instanceof AzureCredentialError)) throw new Error(`expected an AzureCredentialError, found ${String(error)}`);
  return error;
}

describe('credential failures', () => {
  const scope = 'https://management.azure.com/.default';

  it('maps a DefaultAzureCredential chain failure (by name) to one line: kind, scope, credentials tried', async () => {
    const identity = await import('@azure/identity');
    const chain = new identity.AggregateAuthenticationError(
      [
        new identity.CredentialUnavailableError('EnvironmentCredential is unavailable. No underlying credential could be used.\nTo troubleshoot, visit https://aka.ms/x.'),
        new identity.CredentialUnavailableError('ManagedIdentityCredential: Authentication failed. Message Attempted to use the IMDS endpoint, but it is not available.'),
        new identity.CredentialUnavailableError('AzureCliCredential: Please run \'az login\' from a command prompt to authenticate before using this credential.'),
      ],
      'ChainedTokenCredential authentication failed.',
    );
    const mapped = toAzureError(new TokenRequestError('DefaultAzureCredential', scope, chain), ctx);
    expect(mapped).toBeInstanceOf(AzureOperationError);
    const credential = asCredentialError(mapped);
    // In words, with what to do; no SDK class names (issue 8).
    expect(credential.reason).toBe(
      `expected a token from the local credentials (environment, managed identity, Azure CLI, ...) for scope "${scope}", found no token from any: tried service principal in environment variables (not set), managed identity (no managed identity endpoint answered), Azure CLI (not signed in); to fix: sign in with \`az login\` (or \`azd auth login\`), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal; in Azure, the app uses its managed identity (a user-assigned one needs its client id in azure.managedIdentityClientId or the AZURE_CLIENT_ID app setting)`,
    );
    expect(credential.reason).not.toMatch(/[A-Z]\w+Credential\b|AggregateAuthenticationError|CredentialUnavailableError|aka\.ms|troubleshoot/);
    expect(credential.message).toBe(`get server on ${resourceId} failed: ${credential.reason}`);
    expect(credential.message).not.toContain('\n');
    expect(credential).toMatchObject({ credentialKind: 'DefaultAzureCredential', scope, code: 'AggregateAuthenticationError', statusCode: undefined, resourceId });
    expect(credential.cause).toBeInstanceOf(TokenRequestError);

    // Unlabelled (thrown by a credential the client layer did not wrap): the kind is inferred.
    expect(asCredentialError(toAzureError(chain, ctx)).credentialKind).toBe('DefaultAzureCredential');
  });

  it('maps managed identity failures and AuthenticationError, first line only, secrets redacted', async () => {
    const identity = await import('@azure/identity');
    const unavailable = new identity.CredentialUnavailableError('ManagedIdentityCredential: no managed identity endpoint found.\nMore details at https://aka.ms/x');
    const fromUnavailable = asCredentialError(toAzureError(unavailable, ctx));
    expect(fromUnavailable).toBeInstanceOf(AzureCredentialError);
    expect(fromUnavailable.reason).toBe(
      'expected a token from managed identity, found no managed identity endpoint found; to fix: give the app a managed identity with access to the resource; for a user-assigned identity set its client id in azure.managedIdentityClientId (estate config) or the AZURE_CLIENT_ID app setting',
    );

    const refused = new identity.AuthenticationError(401, {
      error: 'invalid_client client_secret=hunter2-secret-value',
      error_description: 'AADSTS7000215: Invalid client secret provided.',
    });
    const labelled = asCredentialError(toAzureError(new TokenRequestError('managed identity', scope, refused), ctx));
    expect(labelled).toBeInstanceOf(AzureCredentialError);
    expect(labelled.reason).toMatch(new RegExp(`^expected a token from managed identity for scope "${scope.replaceAll('.', '\\.')}", found invalid_client client_secret=REDACTED Status code: 401; to fix: give the app a managed identity`));
    expect(labelled.message).not.toContain('hunter2');

    const required = toAzureError(new identity.AuthenticationRequiredError({ scopes: [scope], message: 'interactive login required' }), ctx);
    expect(required).toBeInstanceOf(AzureCredentialError);
  });

  it('labels a failing credential with kind and scope, passing tokens and aborts through', async () => {
    const failing = labelCredentialFailures(
      { getToken: () => Promise.reject(new Error('no token today')) },
      'sandbox credential',
    );
    const error = await failing.getToken([scope]).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(TokenRequestError);
    expect(error).toMatchObject({ credentialKind: 'sandbox credential', scope, message: `sandbox credential could not get a token for scope "${scope}": no token today` });
    const token = { token: 't', expiresOnTimestamp: 1 };
    await expect(labelCredentialFailures({ getToken: () => Promise.resolve(token) }, 'managed identity').getToken(scope)).resolves.toBe(token);
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    await expect(labelCredentialFailures({ getToken: () => Promise.reject(abort) }, 'managed identity').getToken(scope)).rejects.toBe(abort);
  });

  it('leaves HTTP failures alone: a 401 from the service is still AuthorizationFailedError', () => {
    expect(toAzureError(restError(401, { error: { code: 'InvalidAuthenticationToken', message: 'expired' } }), ctx)).not.toBeInstanceOf(AzureCredentialError);
  });
});
