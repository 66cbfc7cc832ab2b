/**
 * Identity emulation: an OAuth 2.0 client-credentials token endpoint that mints RS256 JWTs
 * shaped like Entra ID v1 access tokens, and verification of those tokens for the router.
 * Tests also mint tokens with chosen claims (audience, app roles, lifetime, v1 or v2 shape)
 * through {@link SandboxIdentity.mint}, e.g. the Secure Webhook tokens an action group sends,
 * and rotate the signing key to exercise a verifier's JWKS refresh.
 *
 * Token lifetimes use the real clock, not the sandbox clock: Azurite validates `nbf`/`exp`
 * against real time, and clients cache tokens by real time too.
 */
import { createHash, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';

/** The verified claims the engine hands to providers as `request.principal`. */
export interface VerifiedPrincipal {
  readonly oid: string;
  readonly aud: string;
  readonly appid: string;
  readonly tid: string;
  readonly scp?: string;
}

/** A successful token response, as Entra ID returns it. */
export interface TokenResponse {
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly ext_expires_in: number;
  readonly access_token: string;
}

/** An OAuth error response body (`error`, `error_description`, ...). */
export interface OAuthErrorBody {
  readonly error: string;
  readonly error_description: string;
  readonly error_codes: readonly number[];
  readonly timestamp: string;
  readonly trace_id: string;
  readonly correlation_id: string;
}

const TOKEN_LIFETIME_SECONDS = 3600;

/** Claims and shape of a token minted by {@link SandboxIdentity.mint} (`POST /_sandbox/identity/tokens`). */
export interface MintTokenOptions {
  /** Default: the first tenant of the loaded worlds. Must be one of them. */
  readonly tenantId?: string;
  /** `aud`, e.g. `api://ops-autopilot` or an application (client) id. */
  readonly audience: string;
  /** The calling application: `appid` (v1) or `azp` (v2). Default: Azure Monitor action groups' `461e8683-5575-4561-ac7f-899cc907d62a`. */
  readonly appId?: string;
  /** `roles`: app roles assigned to the caller; omitted when empty. */
  readonly roles?: readonly string[];
  /** `scp`, delegated scopes (none by default: an application token). */
  readonly scp?: string;
  /** `1.0` (issuer `https://sts.windows.net/{tenant}/`, the default) or `2.0` (issuer `{base}/{tenant}/v2.0`). */
  readonly version?: '1.0' | '2.0';
  /** Lifetime from now in seconds; negative gives an already expired token. Default 3600. */
  readonly expiresInSeconds?: number;
  /** `nbf` relative to now in seconds (positive: not valid yet). Default 0. */
  readonly notBeforeInSeconds?: number;
  /** Overrides `iss`, e.g. another tenant's issuer. */
  readonly issuer?: string;
  /** `foreign` signs with a key the JWKS does not publish (a forged token). Default `sandbox`. */
  readonly signWith?: 'sandbox' | 'foreign';
}

/** Azure Monitor action groups' application id: the caller of a Secure Webhook. */
export const ACTION_GROUPS_APP_ID = '461e8683-5575-4561-ac7f-899cc907d62a';

interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

function newSigningKey(): SigningKey {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = createHash('sha256').update(pair.publicKey.export({ type: 'spki', format: 'der' })).digest('base64url').slice(0, 27);
  return { kid, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

const base64url = (input: Buffer | string): string => Buffer.from(input).toString('base64url');

/** Derives a stable GUID from a string, so a client id always maps to the same object id. */
export function stableGuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  const variant = ((parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Mints and verifies sandbox access tokens for a set of tenants. */
export class SandboxIdentity {
  /** Published in the JWKS, oldest first; the last one signs. */
  private readonly keys: SigningKey[] = [newSigningKey()];
  /** Signs forged tokens; never published. Made on first use. */
  private foreignKey: SigningKey | undefined;

  constructor(readonly tenantIds: readonly string[]) {}

  /** Key id of the current signing key, in the JWT header and the JWKS document. */
  get keyId(): string {
    return this.signingKey().kid;
  }

  private signingKey(): SigningKey {
    const key = this.keys[this.keys.length - 1];
    if (key === undefined) throw new Error('the sandbox identity has no signing key');
    return key;
  }

  /**
   * Starts signing with a new key, as Entra ID rolls its keys. The JWKS keeps publishing the
   * previous ones (at most two), so tokens already issued stay valid.
   */
  rotateSigningKey(): string {
    this.keys.push(newSigningKey());
    if (this.keys.length > 3) this.keys.splice(0, this.keys.length - 3);
    return this.keyId;
  }

  /** The issuer Entra ID puts in v1 tokens, which is also what Azurite accepts. */
  issuer(tenantId: string): string {
    return `https://sts.windows.net/${tenantId}/`;
  }

  /**
   * Handles a client-credentials token request. Returns the HTTP status and body to send.
   */
  token(tenantId: string, form: URLSearchParams): { status: number; body: TokenResponse | OAuthErrorBody } {
    if (!this.tenantIds.includes(tenantId)) {
      return {
        status: 400,
        body: this.oauthError('invalid_tenant', 90002, `Tenant '${tenantId}' not found. Expected one of: ${this.tenantIds.join(', ')}.`),
      };
    }
    const grantType = form.get('grant_type');
    if (grantType !== 'client_credentials') {
      return {
        status: 400,
        body: this.oauthError(
          'unsupported_grant_type',
          70003,
          `The app requested an unsupported grant type: expected 'client_credentials', found '${grantType ?? '(none)'}'.`,
        ),
      };
    }
    const clientId = form.get('client_id') ?? '';
    if (clientId === '') {
      return { status: 400, body: this.oauthError('invalid_request', 900144, "The request body must contain the parameter 'client_id'.") };
    }
    const secret = form.get('client_secret') ?? form.get('client_assertion') ?? '';
    if (secret === '') {
      return {
        status: 401,
        body: this.oauthError('invalid_client', 7000218, "The request body must contain 'client_secret' or 'client_assertion'."),
      };
    }
    const scope = form.get('scope') ?? '';
    const scopes = scope.split(' ').filter((entry) => entry !== '');
    const resourceScope = scopes.find((entry) => entry.endsWith('/.default'));
    if (resourceScope === undefined || scopes.length !== 1) {
      return {
        status: 400,
        body: this.oauthError(
          'invalid_scope',
          1002012,
          `The provided value for scope '${scope}' is not valid. Client credential flows must have exactly one scope value with /.default suffixed to the resource identifier.`,
        ),
      };
    }
    const aud = resourceScope.slice(0, -'/.default'.length);
    const nowSeconds = Math.floor(Date.now() / 1000);
    const oid = stableGuid(`oid:${tenantId}:${clientId}`);
    const claims = {
      aud,
      iss: this.issuer(tenantId),
      iat: nowSeconds,
      nbf: nowSeconds,
      exp: nowSeconds + TOKEN_LIFETIME_SECONDS,
      aio: base64url(randomUUID()),
      appid: clientId,
      appidacr: '1',
      idp: this.issuer(tenantId),
      idtyp: 'app',
      oid,
      rh: base64url(randomUUID()),
      sub: oid,
      tid: tenantId,
      uti: base64url(randomUUID()).slice(0, 22),
      ver: '1.0',
    };
    return {
      status: 200,
      body: {
        token_type: 'Bearer',
        expires_in: TOKEN_LIFETIME_SECONDS - 1,
        ext_expires_in: TOKEN_LIFETIME_SECONDS - 1,
        access_token: this.signJwt(claims),
      },
    };
  }

  /**
   * Verifies a bearer token minted by this sandbox: signature, issuer and lifetime. Returns
   * undefined (and a reason) for anything else, including tokens from other sandboxes.
   */
  verifyBearer(authorization: string | undefined): { principal: VerifiedPrincipal } | { reason: string } {
    if (authorization === undefined || authorization === '') return { reason: 'no Authorization header' };
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (match?.[1] === undefined) return { reason: 'expected "Bearer <token>"' };
    const parts = match[1].split('.');
    if (parts.length !== 3) return { reason: 'the token is not a JWT' };
    const [header, payload, signature] = parts as [string, string, string];
    const valid = this.keys.some((key) => verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), key.publicKey, Buffer.from(signature, 'base64url')));
    if (!valid) return { reason: 'the token signature is invalid' };
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return { reason: 'the token payload is not JSON' };
    }
    if (!isRecord(claims)) return { reason: 'the token payload is not an object' };
    const { oid, aud, appid, tid, exp, nbf, iss, scp } = claims;
    if (typeof oid !== 'string' || typeof aud !== 'string' || typeof appid !== 'string' || typeof tid !== 'string') {
      return { reason: 'the token lacks oid, aud, appid or tid' };
    }
    if (iss !== this.issuer(tid)) return { reason: `the token issuer is not ${this.issuer(tid)}` };
    const nowSeconds = Date.now() / 1000;
    if (typeof exp !== 'number' || exp < nowSeconds) return { reason: 'the token is expired' };
    if (typeof nbf !== 'number' || nbf > nowSeconds + 300) return { reason: 'the token is not yet valid' };
    return { principal: typeof scp === 'string' ? { oid, aud, appid, tid, scp } : { oid, aud, appid, tid } };
  }

  /** The JSON Web Key Set publishing the signing keys (current and previous). */
  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: this.keys.map((key) => ({ ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, use: 'sig', alg: 'RS256' })) };
  }

  /**
   * Mints an access token with the claims a test chooses, e.g. the Secure Webhook token an
   * action group sends (`aud` = the webhook's app, `roles` = the app role its service
   * principal holds). `baseUrl` makes the v2 issuer.
   *
   * @throws Error naming the problem when the tenant is not one of the sandbox's.
   */
  mint(options: MintTokenOptions, baseUrl: string): string {
    const tenantId = options.tenantId ?? this.tenantIds[0] ?? '';
    if (!this.tenantIds.includes(tenantId)) throw new Error(`expected tenantId to be one of ${this.tenantIds.join(', ')}, found ${tenantId}`);
    const version = options.version ?? '1.0';
    const appId = options.appId ?? ACTION_GROUPS_APP_ID;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const expiresIn = options.expiresInSeconds ?? TOKEN_LIFETIME_SECONDS;
    const notBefore = nowSeconds + (options.notBeforeInSeconds ?? 0);
    const oid = stableGuid(`oid:${tenantId}:${appId}`);
    const issuer = options.issuer ?? (version === '2.0' ? `${baseUrl}/${tenantId}/v2.0` : this.issuer(tenantId));
    const claims: Record<string, unknown> = {
      aud: options.audience,
      iss: issuer,
      // A token expired an hour ago was also issued before that.
      iat: Math.min(nowSeconds, nowSeconds + expiresIn - 60),
      nbf: Math.min(notBefore, nowSeconds + expiresIn - 60),
      exp: nowSeconds + expiresIn,
      aio: base64url(randomUUID()),
      ...(version === '2.0' ? { azp: appId, azpacr: '2' } : { appid: appId, appidacr: '2', idp: this.issuer(tenantId) }),
      idtyp: 'app',
      oid,
      rh: base64url(randomUUID()),
      ...(options.roles === undefined || options.roles.length === 0 ? {} : { roles: [...options.roles] }),
      ...(options.scp === undefined ? {} : { scp: options.scp }),
      sub: oid,
      tid: tenantId,
      uti: base64url(randomUUID()).slice(0, 22),
      ver: version,
    };
    if (options.signWith === 'foreign') {
      this.foreignKey ??= newSigningKey();
      return this.signJwt(claims, this.foreignKey);
    }
    return this.signJwt(claims);
  }

  private signJwt(claims: Record<string, unknown>, key: SigningKey = this.signingKey()): string {
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: key.kid, x5t: key.kid }));
    const payload = base64url(JSON.stringify(claims));
    const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), key.privateKey).toString('base64url');
    return `${header}.${payload}.${signature}`;
  }

  private oauthError(error: string, code: number, description: string): OAuthErrorBody {
    const traceId = randomUUID();
    const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    return {
      error,
      error_description: `AADSTS${String(code)}: ${description} Trace ID: ${traceId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: randomUUID(),
    };
  }
}
