/**
 * The action group's Secure Webhook: Azure Monitor gets an Entra ID token for the webhook's app
 * registration and sends it as `Authorization: Bearer ...`. {@link SecureWebhookVerifier} checks
 * it against the tenant's signing keys with `jose` (RS256 only): signature, issuer (the tenant's
 * v2 issuer from its OpenID configuration, or the v1 `https://sts.windows.net/{tenant}/`),
 * audience (the webhook app's identifier URI or client id), lifetime, tenant, the calling
 * application (Azure Monitor action groups by default) and the app role its service principal
 * holds (`ActionGroupsSecureWebhook` by default).
 *
 * The keys come from the tenant's OpenID configuration (`jwks_uri`), fetched through the client
 * layer's HTTPS exchange (the configured CA, a deadline, a body limit), cached, and refreshed at
 * most once per {@link SecureWebhookOptions.minRefreshIntervalMs} when a token names a key the
 * cache does not hold (Entra rolls its keys). When a refresh fails the keys already held keep
 * serving; with none at all, verification fails closed with {@link SecureWebhookError} reason
 * `keys-unavailable` (answer 503, so the action group retries). Pure of `@azure/functions`.
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { TlsSettings } from '@azure/core-rest-pipeline';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { httpsExchange, HttpsExchangeError } from '../azure/https-exchange.ts';
import { OpsAutopilotError } from '../errors.ts';

/** Azure Monitor action groups' application (client) id: the caller of a Secure Webhook. */
export const ACTION_GROUPS_APP_ID = '461e8683-5575-4561-ac7f-899cc907d62a';
/** The app role Microsoft's Secure Webhook setup script creates and assigns to the action groups' service principal. */
export const DEFAULT_SECURE_WEBHOOK_ROLE = 'ActionGroupsSecureWebhook';

/** How a Secure Webhook token is checked. */
export interface SecureWebhookOptions {
  /** The tenant whose tokens are accepted (the webhook app's tenant). */
  readonly tenantId: string;
  /** Accepted `aud` values: the webhook app's identifier URI (`api://...`) and/or its client id. */
  readonly audiences: readonly string[];
  /** The app role the caller must hold. Default {@link DEFAULT_SECURE_WEBHOOK_ROLE}. */
  readonly requiredRole?: string;
  /** Accepted callers (`appid` in v1 tokens, `azp` in v2). Default: Azure Monitor action groups. */
  readonly allowedAppIds?: readonly string[];
  /** The Entra authority host, e.g. `https://login.microsoftonline.com/` (the estate's `azure.authorityHost`). */
  readonly authorityHost: string;
  /** Allowed clock skew for `exp` and `nbf`. Default 300 s. */
  readonly clockToleranceSeconds?: number;
  /** Deadline of each key fetch (OpenID configuration, then JWKS). Default 5,000 ms. */
  readonly fetchTimeoutMs?: number;
  /** How long fetched keys are used before they are fetched again. Default 24 h. */
  readonly cacheTtlMs?: number;
  /** The least time between two fetches for an unknown key id. Default 5 min. */
  readonly minRefreshIntervalMs?: number;
  /** Agent carrying the trusted CAs (`AzureClients.agent()`), or TLS settings; default: the system roots. */
  readonly agent?: HttpsAgent;
  readonly tlsSettings?: TlsSettings;
  /** The clock, for tests of the cache. Default `Date.now`. */
  readonly now?: () => number;
}

/** Why a Secure Webhook request was refused. */
export type SecureWebhookFailure =
  | 'missing'
  | 'malformed'
  | 'algorithm'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'tenant'
  | 'caller'
  | 'role'
  | 'keys-unavailable';

/**
 * A Secure Webhook token that is not accepted. {@link status} is what to answer: 401 for a bad
 * token (with `WWW-Authenticate`), 503 when the signing keys could not be read.
 */
export class SecureWebhookError extends OpsAutopilotError {
  override readonly name: string = 'SecureWebhookError';
  readonly status: 401 | 503;

  constructor(
    readonly reason: SecureWebhookFailure,
    message: string,
  ) {
    super(message, { context: { reason } });
    this.status = reason === 'keys-unavailable' ? 503 : 401;
  }

  /** The `WWW-Authenticate` header of a 401 (RFC 6750), without the token or its claims. */
  wwwAuthenticate(): string {
    return `Bearer error="invalid_token", error_description="${this.reason}"`;
  }
}

/** Who called, once the token is verified. */
export interface VerifiedCaller {
  /** `appid` (v1) or `azp` (v2). */
  readonly appId: string;
  readonly objectId: string | undefined;
  readonly tenantId: string;
  readonly roles: readonly string[];
  readonly audience: string;
  readonly issuer: string;
  readonly expiresAt: Date;
  readonly tokenVersion: string | undefined;
}

const openIdConfigurationSchema = z.object({ issuer: z.string().min(1), jwks_uri: z.url() }).loose();
const jwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) });

interface KeyCache {
  readonly issuer: string;
  readonly keys: ReturnType<typeof createLocalJWKSet>;
  readonly kids: ReadonlySet<string>;
  readonly fetchedAt: number;
}

/** Most a key document may be; Entra's JWKS is a few KiB. */
const MAX_KEY_DOCUMENT_BYTES = 256 * 1024;

/** Verifies Secure Webhook bearer tokens; one per tenant, kept for the life of the process (it caches the keys). */
export class SecureWebhookVerifier {
  private cache: KeyCache | undefined;
  private refreshing: Promise<KeyCache> | undefined;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly options: SecureWebhookOptions) {
    if (options.audiences.length === 0) throw new OpsAutopilotError('Secure Webhook: expected at least one accepted audience (the webhook app), found none');
    this.now = options.now ?? Date.now;
  }

  /**
   * Verifies the `Authorization` header of a webhook call.
   *
   * @throws {@link SecureWebhookError} saying what was expected and what was found (never the token)
   */
  async verify(authorization: string | undefined): Promise<VerifiedCaller> {
    const token = bearerToken(authorization);
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new SecureWebhookError('malformed', 'Secure Webhook: expected a JWT bearer token (three base64url parts), found something else');
    }
    if (header.alg !== 'RS256') throw new SecureWebhookError('algorithm', `Secure Webhook: expected a token signed with RS256, found alg ${JSON.stringify(header.alg ?? null)}`);
    let keys = await this.keysFor(header.kid);
    if (header.kid !== undefined && !keys.kids.has(header.kid) && this.mayRefresh()) {
      // A key the cache does not hold: Entra may have rolled its keys since the last fetch.
      keys = await this.refresh();
    }
    try {
      return this.caller(await this.verifyWith(token, keys), keys.issuer);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey) {
        throw new SecureWebhookError('signature', `Secure Webhook: expected a token signed by one of the tenant's published keys, found key id ${JSON.stringify(header.kid ?? null)}, which the tenant does not publish`);
      }
      throw error;
    }
  }

  private async verifyWith(token: string, keys: KeyCache): Promise<JWTPayload> {
    const { tenantId } = this.options;
    try {
      const { payload } = await jwtVerify(token, keys.keys, {
        algorithms: ['RS256'],
        issuer: [keys.issuer, `https://sts.windows.net/${tenantId}/`],
        audience: [...this.options.audiences],
        clockTolerance: this.options.clockToleranceSeconds ?? 300,
        requiredClaims: ['exp', 'iss', 'aud', 'tid'],
      });
      return payload;
    } catch (error) {
      throw this.translate(error);
    }
  }

  /** jose's errors in the project's expected/found wording. */
  private translate(error: unknown): unknown {
    if (error instanceof errors.JWKSNoMatchingKey) return error;
    if (error instanceof errors.JWTExpired) return new SecureWebhookError('expired', `Secure Webhook: expected an unexpired token, found one that expired at ${claimTime(error.payload.exp)}`);
    if (error instanceof errors.JWTClaimValidationFailed) {
      const found = JSON.stringify(error.payload[error.claim] ?? null);
      if (error.claim === 'aud') return new SecureWebhookError('audience', `Secure Webhook: expected audience ${this.options.audiences.join(' or ')}, found ${found}`);
      if (error.claim === 'iss') return new SecureWebhookError('issuer', `Secure Webhook: expected a token issued by tenant ${this.options.tenantId}, found issuer ${found}`);
      if (error.claim === 'nbf') return new SecureWebhookError('not-yet-valid', `Secure Webhook: expected a token valid now, found one valid from ${claimTime(error.payload.nbf)}`);
      return new SecureWebhookError('malformed', `Secure Webhook: expected claim ${error.claim} (${error.reason}), found ${found}`);
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) return new SecureWebhookError('signature', 'Secure Webhook: expected a token signed by one of the tenant\'s keys, found a signature that does not verify');
    if (error instanceof errors.JOSEAlgNotAllowed) return new SecureWebhookError('algorithm', 'Secure Webhook: expected a token signed with RS256, found another algorithm');
    if (error instanceof errors.JOSEError) return new SecureWebhookError('malformed', `Secure Webhook: expected a well-formed JWT, found one jose refuses (${error.code})`);
    return error;
  }

  private caller(payload: JWTPayload, issuer: string): VerifiedCaller {
    const { tenantId } = this.options;
    const claims = payload as JWTPayload & { tid?: unknown; appid?: unknown; azp?: unknown; oid?: unknown; roles?: unknown; ver?: unknown };
    if (typeof claims.tid !== 'string' || claims.tid.toLowerCase() !== tenantId.toLowerCase()) {
      throw new SecureWebhookError('tenant', `Secure Webhook: expected a token of tenant ${tenantId}, found tenant ${JSON.stringify(claims.tid ?? null)}`);
    }
    const appId = typeof claims.appid === 'string' ? claims.appid : typeof claims.azp === 'string' ? claims.azp : undefined;
    const allowed = this.options.allowedAppIds ?? [ACTION_GROUPS_APP_ID];
    if (appId === undefined || !allowed.some((candidate) => candidate.toLowerCase() === appId.toLowerCase())) {
      throw new SecureWebhookError('caller', `Secure Webhook: expected a token of ${allowed.join(' or ')} (Azure Monitor action groups), found caller ${JSON.stringify(appId ?? null)}`);
    }
    const roles = Array.isArray(claims.roles) ? claims.roles.filter((role): role is string => typeof role === 'string') : [];
    const required = this.options.requiredRole ?? DEFAULT_SECURE_WEBHOOK_ROLE;
    if (!roles.includes(required)) {
      throw new SecureWebhookError('role', `Secure Webhook: expected the caller to hold app role ${required}, found ${roles.length === 0 ? 'no roles' : `roles ${roles.join(', ')}`}`);
    }
    const audience = Array.isArray(payload.aud) ? (payload.aud[0] ?? '') : (payload.aud ?? '');
    return {
      appId,
      objectId: typeof claims.oid === 'string' ? claims.oid : undefined,
      tenantId: claims.tid,
      roles,
      audience,
      issuer: payload.iss ?? issuer,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
      tokenVersion: typeof claims.ver === 'string' ? claims.ver : undefined,
    };
  }

  /** The cached keys, fetched first when there are none or they are older than the TTL. */
  private async keysFor(kid: string | undefined): Promise<KeyCache> {
    const cached = this.cache;
    const fresh = cached !== undefined && this.now() - cached.fetchedAt < (this.options.cacheTtlMs ?? 24 * 3_600_000);
    if (cached !== undefined && fresh) return cached;
    if (cached !== undefined && !this.mayRefresh()) return cached;
    try {
      return await this.refresh();
    } catch (error) {
      // Stale keys still verify what they signed; a token with a new kid fails on its own.
      if (cached !== undefined && error instanceof SecureWebhookError && error.reason === 'keys-unavailable' && (kid === undefined || cached.kids.has(kid))) return cached;
      throw error;
    }
  }

  private mayRefresh(): boolean {
    return this.now() - this.lastAttempt >= (this.options.minRefreshIntervalMs ?? 5 * 60_000);
  }

  /** Fetches the OpenID configuration and the JWKS once, however many verifications wait for it. */
  private refresh(): Promise<KeyCache> {
    this.refreshing ??= this.fetchKeys().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async fetchKeys(): Promise<KeyCache> {
    this.lastAttempt = this.now();
    const authority = `${this.options.authorityHost.replace(/\/+$/, '')}/${this.options.tenantId}`;
    const configuration = openIdConfigurationSchema.safeParse(await this.fetchJson(`${authority}/v2.0/.well-known/openid-configuration`, 'OpenID configuration'));
    if (!configuration.success) throw new SecureWebhookError('keys-unavailable', `Secure Webhook: expected the tenant's OpenID configuration with issuer and jwks_uri at ${authority}, found a document without them`);
    const jwks = jwksSchema.safeParse(await this.fetchJson(configuration.data.jwks_uri, 'signing keys (JWKS)'));
    if (!jwks.success) throw new SecureWebhookError('keys-unavailable', `Secure Webhook: expected a JSON Web Key Set at ${configuration.data.jwks_uri}, found a document without keys`);
    const keySet = jwks.data;
    const cache: KeyCache = {
      issuer: configuration.data.issuer.replace('{tenantid}', this.options.tenantId),
      keys: createLocalJWKSet(keySet),
      kids: new Set(jwks.data.keys.map((key) => key.kid).filter((kid): kid is string => typeof kid === 'string')),
      fetchedAt: this.now(),
    };
    this.cache = cache;
    return cache;
  }

  private async fetchJson(url: string, what: string): Promise<unknown> {
    let response;
    try {
      response = await httpsExchange(url, {
        method: 'GET',
        timeoutMs: this.options.fetchTimeoutMs ?? 5000,
        headers: { accept: 'application/json' },
        maxBodyBytes: MAX_KEY_DOCUMENT_BYTES,
        ...(this.options.agent === undefined ? {} : { agent: this.options.agent }),
        ...(this.options.tlsSettings === undefined ? {} : { tlsSettings: this.options.tlsSettings }),
      });
    } catch (error) {
      const detail = error instanceof HttpsExchangeError ? error.detail : 'the request failed';
      throw new SecureWebhookError('keys-unavailable', `Secure Webhook: expected the tenant's ${what} from ${new URL(url).origin}, found no answer (${detail})`);
    }
    if (response.status !== 200 || response.truncated) {
      throw new SecureWebhookError('keys-unavailable', `Secure Webhook: expected the tenant's ${what} (200), found ${response.truncated ? `more than ${String(MAX_KEY_DOCUMENT_BYTES)} bytes` : `status ${String(response.status)}`} from ${new URL(url).origin}`);
    }
    try {
      return JSON.parse(response.body) as unknown;
    } catch {
      throw new SecureWebhookError('keys-unavailable', `Secure Webhook: expected the tenant's ${what} as JSON, found text that is not JSON`);
    }
  }
}

function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw new SecureWebhookError('missing', 'Secure Webhook: expected an Authorization header with a bearer token, found none');
  }
  const match = /^Bearer\s+([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*)\s*$/i.exec(authorization);
  if (match?.[1] === undefined) {
    const scheme = authorization.trim().split(/\s+/)[0] ?? '';
    throw new SecureWebhookError('malformed', `Secure Webhook: expected "Bearer <JWT>", found ${/^bearer$/i.test(scheme) ? 'a bearer value that is not a JWT' : `scheme ${JSON.stringify(scheme.slice(0, 20))}`}`);
  }
  return match[1];
}

function claimTime(seconds: unknown): string {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : 'an unknown time';
}
