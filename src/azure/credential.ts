/**
 * The one place that decides how Ops Autopilot authenticates to Azure.
 *
 * - In Azure (Functions, App Service, Container Apps): the managed identity.
 * - On a developer machine: `DefaultAzureCredential` (Azure CLI, VS Code, environment, ...).
 * - Against the local sandbox, and only there: {@link SandboxCredential}, a client-credentials
 *   flow against the sandbox's token endpoint over HTTPS that trusts the sandbox CA.
 *
 * `@azure/identity` is imported lazily, so the sandbox path and functions that never touch
 * Azure do not load it.
 */
import { readFile } from 'node:fs/promises';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { TlsSettings } from '@azure/core-rest-pipeline';
import { endpointOverrides, type AzureSettings } from '../config/schema.ts';
import { errorCode, errorMessage, OpsAutopilotError } from '../errors.ts';
import { cloudEndpoints } from './cloud.ts';
import { firstLineOf, redactSecrets } from './errors.ts';
import { httpsExchange, HttpsExchangeError, isLoopbackHost, tlsSettingsWithCa, type HttpsExchangeResult } from './https-exchange.ts';

/** Thrown when no credential can be built or a token cannot be obtained. */
export class CredentialError extends OpsAutopilotError {
  override readonly name: string = 'CredentialError';
}

/** How {@link createCredential} authenticates, as people name it in a message. */
export type CredentialKindLabel = 'managed identity' | 'DefaultAzureCredential' | 'sandbox credential' | 'supplied credential';

/** The label of a {@link credentialKind}. */
export function credentialKindLabel(kind: 'sandbox' | 'managedIdentity' | 'default'): CredentialKindLabel {
  if (kind === 'sandbox') return 'sandbox credential';
  return kind === 'managedIdentity' ? 'managed identity' : 'DefaultAzureCredential';
}

/**
 * A token request failed. Carries which credential was tried and for which scope, so the
 * client layer can report it in one line (see `toAzureError`); the original error is the cause.
 */
export class TokenRequestError extends CredentialError {
  override readonly name: string = 'TokenRequestError';

  constructor(
    readonly credentialKind: CredentialKindLabel,
    readonly scope: string,
    cause: unknown,
  ) {
    super(`${credentialKind} could not get a token for scope "${scope}": ${firstLineOf(cause)}`, { context: { credentialKind, scope }, cause });
  }
}

/**
 * Wraps a credential so a failed `getToken` throws a {@link TokenRequestError} naming the
 * credential kind and the scope; tokens pass through unchanged.
 */
export function labelCredentialFailures(credential: TokenCredential, kind: CredentialKindLabel): TokenCredential {
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      try {
        return await credential.getToken(scopes, options);
      } catch (error) {
        // An abort is the caller's decision, not a credential failure.
        if (error instanceof Error && error.name === 'AbortError') throw error;
        throw new TokenRequestError(kind, (Array.isArray(scopes) ? scopes : [scopes]).join(' '), error);
      }
    },
  };
}

export { isLoopbackHost } from './https-exchange.ts';

/**
 * True when a URL or URL template (with `{name}`/`{host}` placeholders) points at loopback with
 * `protocol` (https, or `postgresql:` for `postgresUrlTemplate`).
 */
export function isLoopbackUrl(urlOrTemplate: string, protocol: 'https:' | 'postgresql:' = 'https:'): boolean {
  try {
    const url = new URL(urlOrTemplate.replaceAll('{name}', 'x').replaceAll('{host}', 'x'));
    return url.protocol === protocol && isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

/**
 * Whether this process runs in an Azure compute service that offers a managed identity:
 * App Service and Functions set `IDENTITY_ENDPOINT` (older hosts `MSI_ENDPOINT`) and
 * `WEBSITE_INSTANCE_ID`.
 */
export function isRunningInAzure(env: NodeJS.ProcessEnv = process.env): boolean {
  const set = (name: string): boolean => (env[name] ?? '') !== '';
  return set('IDENTITY_ENDPOINT') || set('MSI_ENDPOINT') || set('WEBSITE_INSTANCE_ID');
}

/**
 * Verifies that every endpoint is loopback when the sandbox credential is in use. The schema
 * already enforces this; checking again here means a settings object built by hand (tests,
 * scripts) can never send a sandbox credential's traffic to real Azure.
 *
 * @throws {@link CredentialError} naming each offending setting.
 */
export function assertSandboxSettingsAreLoopback(settings: AzureSettings): void {
  const checks: [string, string | undefined][] = [['sandboxTokenEndpoint', settings.sandboxTokenEndpoint], ...endpointOverrides(settings)];
  const problems = checks
    .filter(([field, value]) => value === undefined || !(field === 'postgresUrlTemplate' ? isLoopbackUrl(value, 'postgresql:') : isLoopbackUrl(value)))
    .map(([field, value]) => `${field}: expected ${field === 'postgresUrlTemplate' ? 'a postgresql://' : 'an https'} loopback address, found ${value === undefined ? 'none (it would default to real Azure)' : `"${value}"`}`);
  if (problems.length > 0) {
    throw new CredentialError(`refusing the sandbox credential: ${problems.join('; ')}`, {
      context: { fields: problems.map((problem) => problem.split(':')[0] ?? problem) },
    });
  }
}

/** Options of {@link SandboxCredential}. */
export interface SandboxCredentialOptions {
  /** `https://127.0.0.1:{port}/{tenantId}/oauth2/v2.0/token`. Must be loopback. */
  readonly tokenEndpoint: string;
  /** PEM of the CA that signed the sandbox's certificate; trusted in addition to the system roots. */
  readonly ca?: string | Buffer;
  /** Client id presented to the sandbox; it becomes the token's `appid` and derives its `oid`. */
  readonly clientId?: string;
  /** The sandbox accepts any non-empty secret; this is not a real secret. */
  readonly clientSecret?: string;
  /** Tokens are refreshed this long before they expire. Default 5 minutes. */
  readonly refreshMarginMs?: number;
  /** Deadline of one token request, the response body included. Default 10 s. */
  readonly timeoutMs?: number;
  /** Clock for the token cache; tests inject one. */
  readonly now?: () => number;
}

/** Client id the autopilot presents to the sandbox unless told otherwise. */
export const DEFAULT_SANDBOX_CLIENT_ID = 'ops-autopilot';

/**
 * A `TokenCredential` for the local sandbox: posts a client-credentials request to the sandbox
 * token endpoint and caches one token per scope until shortly before it expires. Concurrent
 * requests for the same scope share one token request.
 */
export class SandboxCredential implements TokenCredential {
  private readonly endpoint: URL;
  private readonly tlsSettings: TlsSettings | undefined;
  private readonly clientId: string;
  private readonly clientSecret: string;
  private readonly refreshMarginMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, AccessToken>();
  private readonly pending = new Map<string, Promise<AccessToken>>();
  /** Token requests actually sent, for tests. */
  tokenRequests = 0;

  constructor(options: SandboxCredentialOptions) {
    if (!isLoopbackUrl(options.tokenEndpoint)) {
      throw new CredentialError(
        `refusing the sandbox credential: expected an https loopback token endpoint, found "${options.tokenEndpoint}"`,
        { context: { tokenEndpoint: options.tokenEndpoint } },
      );
    }
    this.endpoint = new URL(options.tokenEndpoint);
    // The sandbox CA is trusted in addition to, not instead of, the public roots; one settings
    // object per credential, so the SDK's HTTP client reuses one agent for it.
    this.tlsSettings = options.ca === undefined ? undefined : tlsSettingsWithCa(options.ca);
    this.clientId = options.clientId ?? DEFAULT_SANDBOX_CLIENT_ID;
    this.clientSecret = options.clientSecret ?? 'sandbox-client-secret';
    this.refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Returns a cached token for the scope or requests a new one. */
  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    const scope = (Array.isArray(scopes) ? scopes : [scopes]).join(' ');
    const cached = this.cache.get(scope);
    if (cached !== undefined && cached.expiresOnTimestamp - this.refreshMarginMs > this.now()) return cached;
    const inFlight = this.pending.get(scope);
    if (inFlight !== undefined) return inFlight;
    const fetching = this.requestToken(scope, options?.abortSignal).finally(() => this.pending.delete(scope));
    this.pending.set(scope, fetching);
    const token = await fetching;
    this.cache.set(scope, token);
    return token;
  }

  private async requestToken(scope: string, signal: GetTokenOptions['abortSignal']): Promise<AccessToken> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.clientId,
      client_secret: this.clientSecret,
      scope,
    }).toString();
    this.tokenRequests += 1;
    const where = `${this.endpoint.origin}${this.endpoint.pathname}`;
    const fail = (message: string, cause?: unknown): CredentialError =>
      new CredentialError(`sandbox token request for scope "${scope}" to ${where} failed: ${message}`, {
        // What went wrong, without the scope (callers name it): for one-line credential errors.
        context: { scope, tokenEndpoint: where, detail: `${message.replace(/^expected [^,]*, found /, '')} from ${where}` },
        cause,
      });
    let response: HttpsExchangeResult;
    try {
      response = await httpsExchange(this.endpoint.href, {
        method: 'POST',
        timeoutMs: this.timeoutMs,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
        ...(this.tlsSettings === undefined ? {} : { tlsSettings: this.tlsSettings }),
        ...(signal === undefined ? {} : { signal: abortSignalOf(signal) }),
      });
    } catch (error) {
      throw fail(`expected a response, found ${error instanceof HttpsExchangeError ? error.detail : errorMessage(error)}`, error);
    }
    const status = response.status;
    let body: unknown;
    try {
      if (response.truncated) throw new RangeError('truncated');
      body = JSON.parse(response.body);
    } catch {
      throw fail(`expected a JSON body, found HTTP ${status} with ${response.body.length}${response.truncated ? '+' : ''} bytes of non-JSON`);
    }
    const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    if (status !== 200) {
      const code = typeof record.error === 'string' ? record.error : 'unknown_error';
      const description = typeof record.error_description === 'string' ? redactSecrets(record.error_description) : '';
      throw fail(`expected HTTP 200 with a token, found HTTP ${status} ${code}${description === '' ? '' : `: ${description}`}`);
    }
    const accessToken = record.access_token;
    const expiresIn = record.expires_in;
    if (typeof accessToken !== 'string' || accessToken === '' || (typeof expiresIn !== 'number' && typeof expiresIn !== 'string')) {
      throw fail('expected access_token and expires_in in the response, found neither or only one');
    }
    const expiresOnTimestamp = this.now() + Number(expiresIn) * 1000;
    return {
      token: accessToken,
      expiresOnTimestamp,
      refreshAfterTimestamp: expiresOnTimestamp - this.refreshMarginMs,
      tokenType: 'Bearer',
    };
  }
}

/** An AbortSignal that follows an SDK `AbortSignalLike` (what `GetTokenOptions` carries). */
function abortSignalOf(signal: NonNullable<GetTokenOptions['abortSignal']>): AbortSignal {
  if (signal instanceof AbortSignal) return signal;
  const controller = new AbortController();
  const follow = (): void => {
    controller.abort();
  };
  if (signal.aborted) follow();
  else signal.addEventListener('abort', follow, { once: true });
  return controller.signal;
}

/** Options of {@link createCredential}. */
export interface CreateCredentialOptions {
  /** Environment used to decide "in Azure"; defaults to `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The CA PEM already read from `settings.caFile`; read from the file when omitted. */
  readonly ca?: string | Buffer;
  /** Client id for the sandbox credential. */
  readonly sandboxClientId?: string;
}

/** Which kind of credential {@link createCredential} picks for these settings and environment. */
export function credentialKind(settings: AzureSettings, env: NodeJS.ProcessEnv = process.env): 'sandbox' | 'managedIdentity' | 'default' {
  if (settings.sandboxTokenEndpoint !== undefined) return 'sandbox';
  return isRunningInAzure(env) ? 'managedIdentity' : 'default';
}

/**
 * Client id of the user-assigned managed identity to use: `azure.managedIdentityClientId`, else
 * the `AZURE_CLIENT_ID` app setting (infra/main.bicep sets it to the app's identity, which is
 * known only once the app is deployed, after the estate configuration is packaged), else none:
 * the system-assigned identity.
 */
export function managedIdentityClientId(settings: Pick<AzureSettings, 'managedIdentityClientId'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.AZURE_CLIENT_ID?.trim();
  return settings.managedIdentityClientId ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
}

/**
 * Builds the credential for these settings: the sandbox credential when
 * `sandboxTokenEndpoint` is set (and every endpoint is loopback), else the managed identity in
 * Azure, else `DefaultAzureCredential`.
 *
 * @throws {@link CredentialError} when the sandbox endpoint is set but an endpoint is not loopback.
 */
export async function createCredential(settings: AzureSettings, options: CreateCredentialOptions = {}): Promise<TokenCredential> {
  const kind = credentialKind(settings, options.env);
  if (kind === 'sandbox' && settings.sandboxTokenEndpoint !== undefined) {
    assertSandboxSettingsAreLoopback(settings);
    const ca = options.ca ?? (settings.caFile === undefined ? undefined : await readCaFile(settings.caFile));
    return new SandboxCredential({
      tokenEndpoint: settings.sandboxTokenEndpoint,
      ...(ca === undefined ? {} : { ca }),
      ...(options.sandboxClientId === undefined ? {} : { clientId: options.sandboxClientId }),
    });
  }
  const identity = await import('@azure/identity');
  const authorityHost = settings.authorityHost ?? cloudEndpoints(settings.cloud).authorityHost;
  if (kind === 'managedIdentity') {
    const clientId = managedIdentityClientId(settings, options.env);
    return clientId === undefined ? new identity.ManagedIdentityCredential() : new identity.ManagedIdentityCredential({ clientId });
  }
  return new identity.DefaultAzureCredential({
    authorityHost,
    ...(settings.managedIdentityClientId === undefined ? {} : { managedIdentityClientId: settings.managedIdentityClientId }),
  });
}

/**
 * Reads a PEM CA bundle, failing with a message that names the setting and the path.
 *
 * @throws {@link CredentialError}
 */
export async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CredentialError(`azure.caFile: expected a readable PEM file at ${path}, found ${errorCode(error) ?? 'an unreadable file'}`, {
      context: { caFile: path },
      cause: error,
    });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CredentialError(`azure.caFile: expected a PEM certificate in ${path}, found no BEGIN CERTIFICATE block`, { context: { caFile: path } });
  }
  return text;
}
