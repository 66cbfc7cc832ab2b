/**
 * Microsoft.KeyVault: vaults (ARM) and the secrets data plane (host `keyvault`), including
 * Key Vault's challenge authentication, paging, versions and opaque secret backups.
 */
import { listedOf, type ListedResource } from './resources.ts';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import {
  armEnvelope,
  armPage,
  baseOf,
  daysBefore,
  json,
  param,
  parseSpec,
  ResourceStore,
  stableHex,
  stringMap,
  systemData,
  unixSeconds,
  type ArmResourceBase,
} from './common.ts';

const VAULTS = 'Microsoft.KeyVault/vaults';
/** The resource Key Vault names in its challenge; tokens must carry it as audience. */
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
const MAX_PAGE = 25;
/** Key Vault sends `SecretNearExpiry` 30 days before `exp`. */
const NEAR_EXPIRY_MS = 30 * 24 * 3_600_000;

const versionSpecSchema = z
  .object({
    createdDaysAgo: z.number().min(0).default(30),
    /** Days until expiry; negative means already expired; omit for no expiry. */
    expiresInDays: z.number().optional(),
    /** Days since the not-before date. */
    notBeforeDaysAgo: z.number().optional(),
    enabled: z.boolean().default(true),
    /**
     * The value, for a world that must link a secret to another resource (e.g. the admin
     * password a PostgreSQL server's `administratorPassword` also sets). Random otherwise.
     */
    value: z.string().min(1).optional(),
  })
  .strict();

const secretSpecSchema = z
  .object({
    name: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/),
    contentType: z.string().optional(),
    tags: stringMap.optional(),
    /** Certificate-backed secrets carry `kid` and `managed: true`. */
    certificateBacked: z.boolean().default(false),
    /** Oldest first. */
    versions: z.array(versionSpecSchema).min(1).default([{ createdDaysAgo: 30, enabled: true }]),
  })
  .strict();

const vaultSpecSchema = z
  .object({
    sku: z.enum(['standard', 'premium']).default('standard'),
    enableSoftDelete: z.boolean().default(true),
    softDeleteRetentionInDays: z.number().int().min(7).max(90).default(90),
    enablePurgeProtection: z.boolean().default(false),
    enableRbacAuthorization: z.boolean().default(true),
    createdDaysAgo: z.number().min(0).default(300),
    secrets: z.array(secretSpecSchema).default([]),
  })
  .strict();

/** One version of a secret. */
export interface SecretVersionState {
  readonly version: string;
  /** Secret: never in snapshot(). */
  value: string;
  readonly created: Date;
  updated: Date;
  expires: Date | undefined;
  notBefore: Date | undefined;
  enabled: boolean;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
}

/** A secret and its versions (oldest first). */
export interface SecretState {
  readonly name: string;
  readonly certificateBacked: boolean;
  versions: SecretVersionState[];
}

/** A vault. */
export interface VaultState extends ArmResourceBase {
  readonly created: Date;
  sku: 'standard' | 'premium';
  enableSoftDelete: boolean;
  softDeleteRetentionInDays: number;
  enablePurgeProtection: boolean;
  enableRbacAuthorization: boolean;
  secrets: Map<string, SecretState>;
}

/** The Microsoft.KeyVault provider: ARM vaults and the secrets data plane. */
export class KeyVaultsProvider implements SandboxProvider {
  readonly name = 'Microsoft.KeyVault';
  readonly types = [VAULTS] as const;
  private readonly vaults = new ResourceStore<VaultState>();
  /** Per version: the expiry notices already sent (`near`, `expired`). */
  private readonly notified = new Map<string, Set<string>>();
  /** Encrypts backups so they are opaque, as Key Vault's are. */
  private readonly backupKey = randomBytes(32);

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return this.vaults.all().map((resource) => listedOf(resource, VAULTS));
  }

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(vaultSpecSchema, world, resource);
      const secrets = new Map<string, SecretState>();
      for (const secret of spec.secrets) {
        secrets.set(secret.name.toLowerCase(), {
          name: secret.name,
          certificateBacked: secret.certificateBacked,
          versions: secret.versions.map((version, index) => {
            const created = daysBefore(now, version.createdDaysAgo);
            return {
              version: stableHex(`${world.subscriptionId}/${resource.name}/${secret.name}/${String(index)}`, 32),
              value: version.value ?? randomBytes(32).toString('base64url'),
              created,
              updated: created,
              expires: version.expiresInDays === undefined ? undefined : daysBefore(now, -version.expiresInDays),
              notBefore: version.notBeforeDaysAgo === undefined ? undefined : daysBefore(now, version.notBeforeDaysAgo),
              enabled: version.enabled,
              contentType: secret.contentType ?? (secret.certificateBacked ? 'application/x-pkcs12' : undefined),
              tags: secret.tags === undefined ? undefined : { ...secret.tags },
            };
          }),
        });
      }
      for (const secret of secrets.values()) {
        for (const version of secret.versions) {
          if (version.expires === undefined) continue;
          const sent = new Set<string>();
          if (now.getTime() >= version.expires.getTime() - NEAR_EXPIRY_MS) sent.add('near');
          if (now.getTime() >= version.expires.getTime()) sent.add('expired');
          this.notified.set(version.version, sent);
        }
      }
      this.vaults.add({
        ...baseOf(world, resource, VAULTS),
        created: daysBefore(now, spec.createdDaysAgo),
        sku: spec.sku,
        enableSoftDelete: spec.enableSoftDelete,
        softDeleteRetentionInDays: spec.softDeleteRetentionInDays,
        enablePurgeProtection: spec.enablePurgeProtection,
        enableRbacAuthorization: spec.enableRbacAuthorization,
        secrets,
      });
    }
  }

  /** A vault by name (vault names are globally unique). */
  getVaultByName(name: string): VaultState | undefined {
    return this.vaults.all().find((vault) => vault.name.toLowerCase() === name.toLowerCase());
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault';
    const arm = (pattern: string, operationId: string, handler: RouteDefinition['handler']): RouteDefinition => ({
      host: 'arm',
      method: 'GET',
      pattern,
      throttle: 'read',
      operationId,
      handler,
    });
    const data = (method: RouteDefinition['method'], pattern: string, operationId: string, handler: DataHandler): RouteDefinition => ({
      host: 'keyvault',
      method,
      pattern,
      throttle: 'read',
      operationId,
      // Key Vault answers an unauthenticated request with its own challenge, so the provider authenticates.
      requiresAuth: false,
      handler: (request, context) => this.authenticated(request, context, handler),
    });
    return [
      arm('/subscriptions/{subscriptionId}/providers/Microsoft.KeyVault/vaults', `${VAULTS}.listBySubscription`, (request, context) =>
        armPage(request, context, this.vaults.list(param(request, 'subscriptionId')).map((v) => this.vaultJson(v, context))),
      ),
      arm(`${rg}/vaults`, `${VAULTS}.listByResourceGroup`, (request, context) =>
        armPage(request, context, this.vaults.list(param(request, 'subscriptionId'), param(request, 'resourceGroup')).map((v) => this.vaultJson(v, context))),
      ),
      arm(`${rg}/vaults/{name}`, `${VAULTS}.get`, (request, context) =>
        this.vaults.serve(VAULTS, request, context, (vault) => json(200, this.vaultJson(vault, context))),
      ),
      data('GET', '/secrets', 'KeyVault.getSecrets', (request, context, vault) => {
        const items = [...vault.secrets.values()]
          .sort((a, b) => a.name.localeCompare(b.name))
          .flatMap((secret) => {
            const latest = secret.versions[secret.versions.length - 1];
            return latest === undefined ? [] : [this.itemJson(context, vault, secret, latest, false)];
          });
        return this.page(request, context, vault, '/secrets', items);
      }),
      data('GET', '/secrets/{secretName}/versions', 'KeyVault.getSecretVersions', (request, context, vault) =>
        this.withSecret(request, vault, (secret) =>
          this.page(
            request,
            context,
            vault,
            `/secrets/${secret.name}/versions`,
            secret.versions.map((version) => this.itemJson(context, vault, secret, version, true)),
          ),
        ),
      ),
      data('GET', '/secrets/{secretName}', 'KeyVault.getSecret', (request, context, vault) =>
        this.withSecret(request, vault, (secret) => this.bundle(context, vault, secret, undefined)),
      ),
      data('GET', '/secrets/{secretName}/{version}', 'KeyVault.getSecret', (request, context, vault) =>
        this.withSecret(request, vault, (secret) => this.bundle(context, vault, secret, param(request, 'version'))),
      ),
      data('POST', '/secrets/{secretName}/backup', 'KeyVault.backupSecret', (request, context, vault) =>
        this.withSecret(request, vault, (secret) => {
          context.event('keyvault.backup', { vault: vault.name, secret: secret.name, versions: secret.versions.length });
          return json(200, { value: this.backupBlob(vault, secret) });
        }),
      ),
      data('PUT', '/secrets/{secretName}', 'KeyVault.setSecret', (request, context, vault) => this.setSecret(request, context, vault)),
      data('PATCH', '/secrets/{secretName}/{version}', 'KeyVault.updateSecret', (request, context, vault) =>
        this.withSecret(request, vault, (secret) => this.updateSecret(request, context, vault, secret)),
      ),
      data('POST', '/secrets/restore', 'KeyVault.restoreSecret', (request, context, vault) => this.restore(request, context, vault)),
    ];
  }

  /** Key Vault's challenge flow: no or unusable token → 401 with the authority and resource. */
  private authenticated(request: SandboxRequest, context: ProviderContext, handler: DataHandler): SandboxResponse | Promise<SandboxResponse> {
    const vault = request.hostName === undefined ? undefined : this.getVaultByName(request.hostName);
    if (vault === undefined) {
      return json(404, { error: { code: 'VaultNotFound', message: `No vault named "${request.hostName ?? ''}" exists in the sandbox` } });
    }
    const challenge = {
      'www-authenticate': `Bearer authorization="${context.baseUrl}/${vault.tenantId}", resource="${KEY_VAULT_RESOURCE}"`,
    };
    const header = request.headers.authorization;
    const token = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : undefined;
    if (token === undefined || token === '') {
      return json(401, { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } }, challenge);
    }
    const principal = request.principal ?? context.verifyAccessToken(token);
    if (principal === undefined) {
      return json(401, { error: { code: 'Unauthorized', message: 'AKV10032: Invalid issuer or signature, or the token has expired.' } }, challenge);
    }
    if (principal.aud.replace(/\/$/, '') !== KEY_VAULT_RESOURCE) {
      return json(
        401,
        { error: { code: 'Unauthorized', message: `AKV10022: Invalid audience. Expected ${KEY_VAULT_RESOURCE}, found: ${principal.aud}.` } },
        challenge,
      );
    }
    return handler(request, context, vault);
  }

  private withSecret(request: SandboxRequest, vault: VaultState, handle: (secret: SecretState) => SandboxResponse): SandboxResponse {
    const name = param(request, 'secretName');
    const secret = vault.secrets.get(name.toLowerCase());
    if (secret === undefined) {
      return json(404, {
        error: { code: 'SecretNotFound', message: `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182` },
      });
    }
    return handle(secret);
  }

  /** Secret identifiers: the Key Vault SDKs parse `{origin}/secrets/{name}[/{version}]`, so IDs carry no vault path prefix. */
  private secretId(context: ProviderContext, secret: SecretState, version?: SecretVersionState): string {
    return `${context.baseUrl}/secrets/${secret.name}${version === undefined ? '' : `/${version.version}`}`;
  }

  private attributes(vault: VaultState, version: SecretVersionState): Record<string, unknown> {
    let recoveryLevel = 'Purgeable';
    if (vault.enableSoftDelete) recoveryLevel = vault.enablePurgeProtection ? 'Recoverable' : 'Recoverable+Purgeable';
    if (vault.enableSoftDelete && vault.softDeleteRetentionInDays < 90) recoveryLevel = `Customized${recoveryLevel}`;
    return {
      enabled: version.enabled,
      ...(version.notBefore === undefined ? {} : { nbf: unixSeconds(version.notBefore) }),
      ...(version.expires === undefined ? {} : { exp: unixSeconds(version.expires) }),
      created: unixSeconds(version.created),
      updated: unixSeconds(version.updated),
      recoveryLevel,
      ...(vault.enableSoftDelete ? { recoverableDays: vault.softDeleteRetentionInDays } : {}),
    };
  }

  private itemJson(context: ProviderContext, vault: VaultState, secret: SecretState, version: SecretVersionState, withVersion: boolean): Record<string, unknown> {
    return {
      id: this.secretId(context, secret, withVersion ? version : undefined),
      attributes: this.attributes(vault, version),
      ...(version.tags === undefined ? {} : { tags: version.tags }),
      ...(version.contentType === undefined ? {} : { contentType: version.contentType }),
      ...(secret.certificateBacked ? { managed: true } : {}),
    };
  }

  private bundle(context: ProviderContext, vault: VaultState, secret: SecretState, versionId: string | undefined): SandboxResponse {
    const version =
      versionId === undefined || versionId === ''
        ? secret.versions[secret.versions.length - 1]
        : secret.versions.find((candidate) => candidate.version === versionId.toLowerCase());
    if (version === undefined) {
      return json(404, { error: { code: 'SecretNotFound', message: `A secret with (name/id) ${secret.name}/${versionId ?? ''} was not found in this key vault.` } });
    }
    if (!version.enabled) {
      return json(403, {
        error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.', innererror: { code: 'SecretDisabled' } },
      });
    }
    return json(200, {
      value: version.value,
      id: this.secretId(context, secret, version),
      attributes: this.attributes(vault, version),
      ...(version.tags === undefined ? {} : { tags: version.tags }),
      ...(version.contentType === undefined ? {} : { contentType: version.contentType }),
      ...(secret.certificateBacked
        ? { kid: `${context.baseUrl}/keys/${secret.name}/${version.version}`, managed: true }
        : {}),
    });
  }

  /** Key Vault pages hold at most 25 items; `maxresults` lowers that; `nextLink` is absolute and routable. */
  private page(request: SandboxRequest, context: ProviderContext, vault: VaultState, path: string, items: readonly unknown[]): SandboxResponse {
    const requested = Number.parseInt(request.query.get('maxresults') ?? String(MAX_PAGE), 10);
    if (!Number.isFinite(requested) || requested < 1 || requested > MAX_PAGE) {
      return json(400, { error: { code: 'BadParameter', message: `maxresults must be between 1 and ${String(MAX_PAGE)}, found "${request.query.get('maxresults') ?? ''}"` } });
    }
    const skip = Number.parseInt(request.query.get('$skiptoken') ?? '0', 10);
    const start = Number.isFinite(skip) && skip > 0 ? skip : 0;
    const body: { value: unknown[]; nextLink: string | null } = { value: items.slice(start, start + requested), nextLink: null };
    if (start + requested < items.length) {
      const next = new URLSearchParams({ 'api-version': request.query.get('api-version') ?? '7.6', $skiptoken: String(start + requested), maxresults: String(requested) });
      body.nextLink = `${context.baseUrl}/vaults/${vault.name}${path}?${next.toString()}`;
    }
    return json(200, body);
  }

  /** An opaque, encrypted blob of every version of a secret, like Key Vault's backups. */
  private backupBlob(vault: VaultState, secret: SecretState): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.backupKey, iv);
    const payload = JSON.stringify({
      vault: vault.name,
      name: secret.name,
      versions: secret.versions.map((version) => ({ ...version, created: version.created.toISOString(), updated: version.updated.toISOString(), expires: version.expires?.toISOString(), notBefore: version.notBefore?.toISOString() })),
    });
    const sealed = Buffer.concat([cipher.update(payload, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from('SBXKVBK1'), iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /**
   * `SetSecret` (`PUT /secrets/{name}`, body `{ value, contentType?, tags?, attributes? }`): adds
   * a new version (creating the secret when it is new), which becomes the latest; answers 200
   * with the bundle, value included, as Key Vault does. Writes go through the vault's bucket.
   */
  private setSecret(request: SandboxRequest, context: ProviderContext, vault: VaultState): SandboxResponse {
    const name = param(request, 'secretName');
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(name)) {
      return json(400, { error: { code: 'BadParameter', message: `The secret name '${name}' is invalid: expected 1-127 letters, digits and dashes.` } });
    }
    const body = setSecretBodySchema.safeParse(request.body);
    if (!body.success) {
      return json(400, { error: { code: 'BadParameter', message: 'Property value is required: expected a JSON body { "value": "<secret value>", "contentType"?, "tags"?, "attributes"? }' } });
    }
    const existing = vault.secrets.get(name.toLowerCase());
    if (existing?.certificateBacked === true) {
      return json(403, { error: { code: 'Forbidden', message: `Secret ${name} is managed by a certificate; set a new version through the certificate instead.` } });
    }
    const secret: SecretState = existing ?? { name, certificateBacked: false, versions: [] };
    const now = context.now();
    const attributes = body.data.attributes;
    const version: SecretVersionState = {
      version: randomBytes(16).toString('hex'),
      value: body.data.value,
      created: now,
      updated: now,
      expires: attributes?.exp === undefined ? undefined : new Date(attributes.exp * 1000),
      notBefore: attributes?.nbf === undefined ? undefined : new Date(attributes.nbf * 1000),
      enabled: attributes?.enabled ?? true,
      contentType: body.data.contentType,
      tags: body.data.tags === undefined ? undefined : { ...body.data.tags },
    };
    secret.versions.push(version);
    vault.secrets.set(name.toLowerCase(), secret);
    context.event('keyvault.set', { vault: vault.name, secret: secret.name, version: version.version });
    this.publishSecretEvent(context, vault, secret, version, 'SecretNewVersionCreated');
    return this.bundle(context, vault, secret, version.version);
  }

  /**
   * `UpdateSecret` (`PATCH /secrets/{name}/{version}`, body `{ contentType?, tags?, attributes?:
   * { enabled?, exp?, nbf? } }`): changes a version's properties, never its value. Answers 200
   * with the bundle without `value`, as Key Vault does. Tags, when given, replace the version's
   * tags; an attribute left out keeps its value; `exp`/`nbf` set to null clear it.
   */
  private updateSecret(request: SandboxRequest, context: ProviderContext, vault: VaultState, secret: SecretState): SandboxResponse {
    const versionId = param(request, 'version').toLowerCase();
    const version = secret.versions.find((candidate) => candidate.version === versionId);
    if (version === undefined) {
      return json(404, { error: { code: 'SecretNotFound', message: `A secret with (name/id) ${secret.name}/${versionId} was not found in this key vault.` } });
    }
    const body = updateSecretBodySchema.safeParse(request.body ?? {});
    if (!body.success) {
      return json(400, { error: { code: 'BadParameter', message: 'expected a JSON body { "contentType"?, "tags"?: { string: string }, "attributes"?: { "enabled"?: boolean, "exp"?: seconds, "nbf"?: seconds } }' } });
    }
    if (secret.certificateBacked) {
      return json(403, { error: { code: 'Forbidden', message: `Secret ${secret.name} is managed by a certificate; update the certificate instead.` } });
    }
    const { attributes, tags, contentType } = body.data;
    if (attributes?.enabled !== undefined) version.enabled = attributes.enabled;
    if (attributes?.exp !== undefined) version.expires = attributes.exp === null ? undefined : new Date(attributes.exp * 1000);
    if (attributes?.nbf !== undefined) version.notBefore = attributes.nbf === null ? undefined : new Date(attributes.nbf * 1000);
    if (tags !== undefined) version.tags = { ...tags };
    if (contentType !== undefined) version.contentType = contentType;
    version.updated = context.now();
    // A changed expiry starts its own near-expiry and expiry notices.
    if (attributes?.exp !== undefined) this.notified.delete(version.version);
    context.event('keyvault.update', { vault: vault.name, secret: secret.name, version: version.version, enabled: version.enabled });
    return json(200, {
      id: this.secretId(context, secret, version),
      attributes: this.attributes(vault, version),
      ...(version.tags === undefined ? {} : { tags: version.tags }),
      ...(version.contentType === undefined ? {} : { contentType: version.contentType }),
    });
  }

  /**
   * Key Vault's Event Grid events (schema: `Id`, `VaultName`, `ObjectType`, `ObjectName`,
   * `Version`, `NBF`, `EXP`), published to the vault's system topic and delivered to the
   * sandbox's Event Grid subscriptions.
   */
  private publishSecretEvent(context: ProviderContext, vault: VaultState, secret: SecretState, version: SecretVersionState, type: 'SecretNewVersionCreated' | 'SecretNearExpiry' | 'SecretExpired'): void {
    context.publishEvent?.({
      topic: vault.id,
      subject: secret.name,
      eventType: `Microsoft.KeyVault.${type}`,
      dataVersion: '1',
      data: {
        Id: `https://${vault.name}.vault.azure.net/secrets/${secret.name}/${version.version}`,
        VaultName: vault.name,
        ObjectType: 'Secret',
        ObjectName: secret.name,
        Version: version.version,
        NBF: version.notBefore === undefined ? null : unixSeconds(version.notBefore),
        EXP: version.expires === undefined ? null : unixSeconds(version.expires),
      },
    });
  }

  /**
   * Near-expiry and expiry notices, as Key Vault sends them for the current version of a secret:
   * `SecretNearExpiry` once the clock reaches 30 days before `exp`, `SecretExpired` once it
   * reaches `exp`; each once per version (a changed `exp` re-arms them). Thresholds already
   * passed when the world was seeded count as sent long ago, so seeding alone publishes nothing.
   */
  onClock(now: Date, context: ProviderContext): void {
    for (const vault of this.vaults.all()) {
      for (const secret of vault.secrets.values()) {
        const current = secret.versions[secret.versions.length - 1];
        if (current?.expires === undefined || !current.enabled) continue;
        const sent = this.notified.get(current.version) ?? new Set<string>();
        const nearAt = current.expires.getTime() - NEAR_EXPIRY_MS;
        if (now.getTime() >= nearAt && !sent.has('near')) {
          sent.add('near');
          this.publishSecretEvent(context, vault, secret, current, 'SecretNearExpiry');
        }
        if (now.getTime() >= current.expires.getTime() && !sent.has('expired')) {
          sent.add('expired');
          this.publishSecretEvent(context, vault, secret, current, 'SecretExpired');
        }
        this.notified.set(current.version, sent);
      }
    }
  }

  /** The value of a secret version by its identifier (`…/secrets/{name}[/{version}]`), for emulated apps resolving Key Vault references; undefined when it does not resolve. */
  resolveSecretUri(vaultName: string, name: string, version: string | undefined): string | undefined {
    const secret = this.getVaultByName(vaultName)?.secrets.get(name.toLowerCase());
    if (secret === undefined) return undefined;
    const found = version === undefined || version === '' ? secret.versions[secret.versions.length - 1] : secret.versions.find((candidate) => candidate.version === version.toLowerCase());
    return found?.enabled === true ? found.value : undefined;
  }

  /**
   * Key Vault's restore: recreates a secret with every version from a backup blob of this
   * sandbox. A name that already exists is a 409, as in Key Vault; the answer carries no value.
   */
  private restore(request: SandboxRequest, context: ProviderContext, vault: VaultState): SandboxResponse {
    const body = restoreBodySchema.safeParse(request.body);
    if (!body.success) {
      return json(400, { error: { code: 'BadParameter', message: 'Property value is required: expected a JSON body { "value": "<base64url backup blob>" }' } });
    }
    const restored = this.openBackup(body.data.value);
    if (restored === undefined) {
      return json(400, { error: { code: 'BadParameter', message: 'The backup blob is corrupt or was not produced by this sandbox\'s Key Vault.' } });
    }
    if (vault.secrets.has(restored.name.toLowerCase())) {
      return json(409, { error: { code: 'Conflict', message: `Secret ${restored.name} already exists in vault ${vault.name}; restore only recreates missing secrets.` } });
    }
    const secret: SecretState = {
      name: restored.name,
      certificateBacked: false,
      versions: restored.versions.map((version) => ({
        version: version.version,
        value: version.value,
        created: new Date(version.created),
        updated: new Date(version.updated),
        expires: version.expires === undefined ? undefined : new Date(version.expires),
        notBefore: version.notBefore === undefined ? undefined : new Date(version.notBefore),
        enabled: version.enabled,
        contentType: version.contentType,
        tags: version.tags,
      })),
    };
    const latest = secret.versions[secret.versions.length - 1];
    if (latest === undefined) {
      return json(400, { error: { code: 'BadParameter', message: `The backup blob of ${restored.name} holds no version.` } });
    }
    vault.secrets.set(secret.name.toLowerCase(), secret);
    context.event('keyvault.restore', { vault: vault.name, secret: secret.name, versions: secret.versions.length });
    return json(200, {
      id: this.secretId(context, secret, latest),
      attributes: this.attributes(vault, latest),
      ...(latest.tags === undefined ? {} : { tags: latest.tags }),
      ...(latest.contentType === undefined ? {} : { contentType: latest.contentType }),
    });
  }

  /** Decrypts a backup blob made by {@link backupBlob}, or undefined when it is not one. */
  private openBackup(value: string): z.infer<typeof backupPayloadSchema> | undefined {
    const blob = Buffer.from(value, 'base64url');
    const magic = Buffer.from('SBXKVBK1');
    if (blob.length < magic.length + 28 || !blob.subarray(0, magic.length).equals(magic)) return undefined;
    const iv = blob.subarray(magic.length, magic.length + 12);
    const tag = blob.subarray(magic.length + 12, magic.length + 28);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.backupKey, iv);
      decipher.setAuthTag(tag);
      const plain = Buffer.concat([decipher.update(blob.subarray(magic.length + 28)), decipher.final()]).toString('utf8');
      const parsed = backupPayloadSchema.safeParse(JSON.parse(plain));
      return parsed.success ? parsed.data : undefined;
    } catch {
      // A tampered or foreign blob fails authentication: the caller answers 400, as Key Vault does.
      return undefined;
    }
  }

  private vaultJson(vault: VaultState, context: ProviderContext): Record<string, unknown> {
    return {
      ...armEnvelope(vault, VAULTS),
      systemData: systemData(vault.created, vault.created),
      properties: {
        sku: { family: 'A', name: vault.sku },
        tenantId: vault.tenantId,
        accessPolicies: [],
        enabledForDeployment: false,
        enabledForDiskEncryption: false,
        enabledForTemplateDeployment: false,
        enableSoftDelete: vault.enableSoftDelete,
        softDeleteRetentionInDays: vault.softDeleteRetentionInDays,
        enableRbacAuthorization: vault.enableRbacAuthorization,
        // ARM omits enablePurgeProtection entirely until it has been turned on.
        ...(vault.enablePurgeProtection ? { enablePurgeProtection: true } : {}),
        vaultUri: `${context.baseUrl}/vaults/${vault.name}/`,
        provisioningState: 'Succeeded',
        publicNetworkAccess: 'Enabled',
      },
    };
  }

  snapshot(): unknown {
    return this.vaults.all().map((vault) => ({
      id: vault.id,
      enableSoftDelete: vault.enableSoftDelete,
      softDeleteRetentionInDays: vault.softDeleteRetentionInDays,
      enablePurgeProtection: vault.enablePurgeProtection,
      // Metadata only: secret values never leave provider state.
      secrets: [...vault.secrets.values()].map((secret) => ({
        name: secret.name,
        certificateBacked: secret.certificateBacked,
        versions: secret.versions.map((version) => ({
          version: version.version,
          enabled: version.enabled,
          created: version.created.toISOString(),
          expires: version.expires?.toISOString() ?? null,
        })),
      })),
    }));
  }
}

const restoreBodySchema = z.object({ value: z.string().min(1) });
const updateSecretBodySchema = z.object({
  contentType: z.string().optional(),
  tags: stringMap.optional(),
  attributes: z.object({ enabled: z.boolean().optional(), exp: z.number().nullable().optional(), nbf: z.number().nullable().optional() }).loose().optional(),
});
const setSecretBodySchema = z.object({
  value: z.string(),
  contentType: z.string().optional(),
  tags: stringMap.optional(),
  attributes: z.object({ enabled: z.boolean().optional(), exp: z.number().optional(), nbf: z.number().optional() }).loose().optional(),
});

/** What {@link KeyVaultsProvider} seals into a backup blob. */
const backupPayloadSchema = z.object({
  vault: z.string(),
  name: z.string(),
  versions: z.array(
    z.object({
      version: z.string(),
      value: z.string(),
      created: z.string(),
      updated: z.string(),
      expires: z.string().optional(),
      notBefore: z.string().optional(),
      enabled: z.boolean(),
      contentType: z.string().optional(),
      tags: z.record(z.string(), z.string()).optional(),
    }),
  ),
});

type DataHandler = (request: SandboxRequest, context: ProviderContext, vault: VaultState) => SandboxResponse;
