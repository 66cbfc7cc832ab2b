/**
 * Test helpers for the local Azure sandbox.
 *
 * `useSandbox(options)` starts one sandbox per test file (beforeAll) and stops it (afterAll).
 * Start-up cost, measured on 2 cores: the HTTPS server alone ~0.6 s (certificate generation);
 * Azurite adds ~1-1.5 s, embedded PostgreSQL ~1-2 s (they start in parallel). Pass
 * `postgres: false` / `azurite: false` when a file does not need them, and `worlds: []` with
 * your own `providers` to skip the shipped worlds.
 */
import https from 'node:https';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { isRestError, type RestError } from '@azure/core-rest-pipeline';
import { afterAll, beforeAll } from 'vitest';
import { startSandbox, type SandboxHandle, type SandboxOptions } from '../../sandbox/index.ts';

/**
 * Starts a sandbox before the file's tests and stops it after them. Returns a getter, since
 * the sandbox only exists once `beforeAll` has run.
 */
export function useSandbox(options: SandboxOptions = {}): () => SandboxHandle {
  let sandbox: SandboxHandle | undefined;
  beforeAll(async () => {
    sandbox = await startSandbox(options);
  });
  afterAll(async () => {
    await sandbox?.stop();
  });
  return () => {
    if (sandbox === undefined) throw new Error('the sandbox is not running: call the getter inside a test, after beforeAll');
    return sandbox;
  };
}

/** An https agent that trusts the sandbox CA (and nothing else). */
export function sandboxAgent(sandbox: SandboxHandle): https.Agent {
  return new https.Agent({ ca: sandbox.caPem, keepAlive: false });
}

/** A response read in full. */
export interface SandboxHttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  /** The body parsed as JSON (throws when it is not JSON), typed as the caller expects. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller states the shape it expects; JSON.parse cannot know it
  json<T = unknown>(): T;
}

/** Sends one HTTPS request to the sandbox (or any loopback URL it serves), trusting its CA. */
export function sandboxRequest(
  sandbox: SandboxHandle,
  request: { method?: string; url: string; headers?: Record<string, string>; body?: unknown; form?: Record<string, string>; token?: string },
): Promise<SandboxHttpResponse> {
  const url = new URL(request.url, sandbox.baseUrl);
  let payload: string | undefined;
  const headers: Record<string, string> = { ...request.headers };
  if (request.form !== undefined) {
    payload = new URLSearchParams(request.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (request.body !== undefined) {
    payload = JSON.stringify(request.body);
    headers['content-type'] = 'application/json';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  return new Promise((resolve, reject) => {
    const outgoing = https.request(url, { method: request.method ?? 'GET', headers, ca: sandbox.caPem }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text,
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- see SandboxHttpResponse.json
          json: <T,>() => JSON.parse(text) as T,
        });
      });
    });
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

/** Fetches an access token from the sandbox token endpoint (client credentials). */
export async function sandboxToken(sandbox: SandboxHandle, scope: string, clientId = 'ops-autopilot-tests'): Promise<string> {
  const response = await sandboxRequest(sandbox, {
    method: 'POST',
    url: sandbox.tokenEndpoint,
    form: { grant_type: 'client_credentials', client_id: clientId, client_secret: 'sandbox-secret', scope },
  });
  if (response.status !== 200) throw new Error(`token request for ${scope}: expected 200, found ${String(response.status)}: ${response.text}`);
  return response.json<{ access_token: string }>().access_token;
}

/** A TokenCredential for Azure SDK clients that gets its tokens from the sandbox. */
export function sandboxCredential(sandbox: SandboxHandle, clientId = 'ops-autopilot-tests'): TokenCredential {
  return {
    async getToken(scopes: string | string[]): Promise<AccessToken> {
      const scope = Array.isArray(scopes) ? scopes.join(' ') : scopes;
      const token = await sandboxToken(sandbox, scope, clientId);
      return { token, expiresOnTimestamp: Date.now() + 55 * 60 * 1000 };
    },
  };
}

/** The generated estate config of a loaded world; throws naming the world when it is not loaded. */
export function worldConfigFile(sandbox: SandboxHandle, world: string): string {
  const entry = sandbox.worlds.find((candidate) => candidate.name === world);
  if (entry === undefined) throw new Error(`world ${world} not loaded (loaded: ${sandbox.worlds.map((candidate) => candidate.name).join(', ')})`);
  return entry.configFile;
}

/**
 * True for a request that changes something: not a read, not a token exchange, and not one of
 * the POST operations that only read (list secrets, list app settings, ACR's list).
 */
export function isMutatingRequest(entry: { readonly method: string; readonly path: string }): boolean {
  return entry.method !== 'GET' && !/\/oauth2\/|\/token$|\/listSecrets|\/list$|config\/appsettings\/list/.test(entry.path);
}

/** The RestError a call to an SDK client rejects with (fails the test when it resolves or rejects otherwise). */
export async function restErrorOf(promise: Promise<unknown>): Promise<RestError> {
  const outcome = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isRestError(outcome)) throw new Error(`expected the call to fail with a RestError, found ${outcome === undefined ? 'success' : outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : JSON.stringify(outcome)}`);
  return outcome;
}
