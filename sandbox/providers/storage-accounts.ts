/**
 * Microsoft.Storage: storage accounts, their blob service properties (soft delete,
 * versioning) and their access keys. The blob endpoint points at Azurite when the engine runs it,
 * and Azurite accepts exactly the account's current key1 and key2 (when shared-key access is
 * allowed), so a key regenerated through ARM stops authenticating at once, as in Azure.
 */
import { listedOf, type ListedResource } from './resources.ts';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import { BlobServiceClient, StorageSharedKeyCredential, type StoragePipelineOptions } from '@azure/storage-blob';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import { armEnvelope, armPage, armRead, baseOf, daysBefore, json, param, parseSpec, resourceNotFound, ResourceStore, type ArmResourceBase } from './common.ts';

const ACCOUNTS = 'Microsoft.Storage/storageAccounts';

const retentionSchema = z.object({ enabled: z.boolean(), days: z.number().int().min(1).max(365).default(7) }).strict();

const accountSpecSchema = z
  .object({
    sku: z.enum(['Standard_LRS', 'Standard_GRS', 'Standard_RAGRS', 'Standard_ZRS', 'Standard_GZRS', 'Standard_RAGZRS', 'Premium_LRS', 'Premium_ZRS']).default('Standard_LRS'),
    kind: z.enum(['StorageV2', 'Storage', 'BlobStorage', 'BlockBlobStorage', 'FileStorage']).default('StorageV2'),
    accessTier: z.enum(['Hot', 'Cool', 'Cold']).default('Hot'),
    secondaryLocation: z.string().optional(),
    blobSoftDelete: retentionSchema.default({ enabled: true, days: 7 }),
    containerSoftDelete: retentionSchema.default({ enabled: true, days: 7 }),
    versioning: z.boolean().default(false),
    changeFeed: z.boolean().default(false),
    createdDaysAgo: z.number().min(0).default(300),
    /** Whether account keys (shared key, SAS) authenticate; off as in the Bicep template's accounts. */
    allowSharedKeyAccess: z.boolean().default(false),
    /** Days since each key was last regenerated (default: when the account was created). */
    keysRotatedDaysAgo: z.object({ key1: z.number().min(0).optional(), key2: z.number().min(0).optional() }).strict().default({}),
    /**
     * Fixed key values (base64 of 64 bytes), for a world that must link a key to a Key Vault
     * secret holding it (as `StorageAccountKey` does); Azurite's own otherwise.
     */
    keyValues: z
      .object({ key1: z.base64().optional(), key2: z.base64().optional() })
      .strict()
      .default({}),
  })
  .strict();

/** The two access keys' names. */
export type StorageKeyName = 'key1' | 'key2';

/** A storage account. */
export interface StorageAccountState extends ArmResourceBase {
  readonly created: Date;
  sku: string;
  kind: string;
  accessTier: string;
  secondaryLocation: string | undefined;
  blobSoftDelete: { enabled: boolean; days: number };
  containerSoftDelete: { enabled: boolean; days: number };
  versioning: boolean;
  changeFeed: boolean;
  allowSharedKeyAccess: boolean;
  /** Secret values: never in snapshot(). */
  keys: Record<StorageKeyName, { value: string; creationTime: Date }>;
}

/** The outcome of a real shared-key request with a key. */
export type StorageKeyCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** The Microsoft.Storage provider. */
export class StorageAccountsProvider implements SandboxProvider {
  readonly name = 'Microsoft.Storage';
  readonly types = [ACCOUNTS] as const;
  private readonly accounts = new ResourceStore<StorageAccountState>();
  private blobEndpoint: (account: string) => string | undefined = () => undefined;
  private seedContext: ProviderContext | undefined;

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return this.accounts.all().map((resource) => listedOf(resource, ACCOUNTS));
  }

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    this.blobEndpoint = (account) => context.blobEndpointFor(account);
    this.seedContext = context;
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(accountSpecSchema, world, resource);
      const created = daysBefore(now, spec.createdDaysAgo);
      // Azurite starts with a key1 and key2 per account; ARM reports the same ones.
      const key = (name: StorageKeyName, started: string | undefined, rotatedDaysAgo: number | undefined): { value: string; creationTime: Date } => ({
        value: started ?? randomBytes(64).toString('base64'),
        creationTime: rotatedDaysAgo === undefined ? created : daysBefore(now, rotatedDaysAgo),
      });
      this.accounts.add({
        ...baseOf(world, resource, ACCOUNTS),
        created: daysBefore(now, spec.createdDaysAgo),
        sku: spec.sku,
        kind: spec.kind,
        accessTier: spec.accessTier,
        secondaryLocation: spec.secondaryLocation,
        blobSoftDelete: spec.blobSoftDelete,
        containerSoftDelete: spec.containerSoftDelete,
        versioning: spec.versioning,
        changeFeed: spec.changeFeed,
        allowSharedKeyAccess: spec.allowSharedKeyAccess,
        keys: {
          key1: key('key1', spec.keyValues.key1 ?? context.azurite?.accountKeys[resource.name], spec.keysRotatedDaysAgo.key1),
          key2: key('key2', spec.keyValues.key2 ?? context.azurite?.secondaryAccountKeys[resource.name], spec.keysRotatedDaysAgo.key2),
        },
      });
    }
  }

  /** Tells Azurite which keys of every account authenticate, once all worlds are seeded. */
  async afterSeed(context: ProviderContext): Promise<void> {
    for (const account of this.accounts.all()) await this.applyKeys(account, context);
  }

  /**
   * Makes Azurite accept the account's key1 and key2, or, when shared-key access is off, a key
   * nobody holds (so no account key authenticates, while OAuth does).
   */
  private async applyKeys(account: StorageAccountState, context: ProviderContext): Promise<void> {
    await context.azurite?.setAccountKeys(
      account.name,
      account.allowSharedKeyAccess ? [account.keys.key1.value, account.keys.key2.value] : [randomBytes(64).toString('base64')],
    );
  }

  /**
   * Whether `key` authenticates to the account's blob service right now: a real shared-key
   * request to Azurite (`Get Blob Service Properties`). What an emulated consumer holding the
   * key, and a test, use to tell a working key from a revoked one.
   */
  async checkKey(accountName: string, key: string): Promise<StorageKeyCheck> {
    const azurite = this.seedContext?.azurite;
    const endpoint = this.blobEndpoint(accountName);
    if (azurite === undefined || endpoint === undefined) return { ok: false, reason: 'the sandbox runs without Azurite, so no storage key can authenticate' };
    let credential: StorageSharedKeyCredential;
    try {
      credential = new StorageSharedKeyCredential(accountName, key);
    } catch (error) {
      return { ok: false, reason: `the key is not a valid account key: ${error instanceof Error ? error.message : String(error)}` };
    }
    // storage-blob hands `agent` on to the core pipeline, which trusts the sandbox CA with it.
    const options: StoragePipelineOptions & { agent: Agent } = { agent: new Agent({ ca: azurite.caPem, keepAlive: false }), retryOptions: { maxTries: 1 } };
    try {
      await new BlobServiceClient(endpoint, credential, options).getProperties();
      return { ok: true };
    } catch (error) {
      const status = (error as { statusCode?: unknown }).statusCode;
      return { ok: false, reason: `${typeof status === 'number' ? `${String(status)} ` : ''}${error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error)}` };
    }
  }

  /**
   * Whether `key` authenticates to the account now, answered from provider state (Azurite is
   * told exactly these keys, see {@link applyKeys}), so an app's health can depend on it
   * synchronously; {@link checkKey} makes the real request.
   */
  keyAuthenticates(accountName: string, key: string): StorageKeyCheck {
    const account = this.accounts.all().find((candidate) => candidate.name.toLowerCase() === accountName.toLowerCase());
    if (account === undefined) return { ok: false, reason: `no storage account ${accountName}` };
    if (!account.allowSharedKeyAccess) return { ok: false, reason: `storage account ${account.name} does not allow shared key access` };
    if (key !== account.keys.key1.value && key !== account.keys.key2.value) return { ok: false, reason: `403 the key does not authenticate to storage account ${account.name}` };
    return { ok: true };
  }

  /** An account by ARM coordinates. */
  getAccount(subscriptionId: string, resourceGroup: string, name: string): StorageAccountState | undefined {
    return this.accounts.get(subscriptionId, resourceGroup, ACCOUNTS, name);
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.Storage';
    const account = `${rg}/storageAccounts/{name}`;
    const read = armRead;
    return [
      read('/subscriptions/{subscriptionId}/providers/Microsoft.Storage/storageAccounts', `${ACCOUNTS}.list`, (request, context) =>
        armPage(request, context, this.accounts.list(param(request, 'subscriptionId')).map((a) => this.accountJson(a))),
      ),
      read(`${rg}/storageAccounts`, `${ACCOUNTS}.listByResourceGroup`, (request, context) =>
        armPage(request, context, this.accounts.list(param(request, 'subscriptionId'), param(request, 'resourceGroup')).map((a) => this.accountJson(a))),
      ),
      read(account, `${ACCOUNTS}.getProperties`, (request, context) => this.accounts.serve(ACCOUNTS, request, context, (found) => json(200, this.accountJson(found)))),
      // listKeys is a POST because the values are secrets; it only reads, as ARM throttles it.
      read(`${account}/listKeys`, `${ACCOUNTS}.listKeys`, (request, context) => this.accounts.serve(ACCOUNTS, request, context, (found) => json(200, this.keysJson(found))), 'POST'),
      {
        host: 'arm',
        method: 'POST',
        pattern: `${account}/regenerateKey`,
        throttle: 'write',
        operationId: `${ACCOUNTS}.regenerateKey`,
        handler: (request, context) => {
          const found = this.getAccount(param(request, 'subscriptionId'), param(request, 'resourceGroup'), param(request, 'name'));
          return found === undefined ? resourceNotFound(context, ACCOUNTS, param(request, 'name'), param(request, 'resourceGroup')) : this.regenerateKey(found, request, context);
        },
      },
      read(`${account}/blobServices`, `${ACCOUNTS}/blobServices.list`, (request, context) =>
        this.accounts.serve(ACCOUNTS, request, context, (found) => json(200, { value: [this.blobServiceJson(found)] })),
      ),
      read(`${account}/blobServices/{blobServicesName}`, `${ACCOUNTS}/blobServices.getServiceProperties`, (request, context) =>
        this.accounts.serve(ACCOUNTS, request, context, (found) =>
          param(request, 'blobServicesName') === 'default'
            ? json(200, this.blobServiceJson(found))
            : resourceNotFound(context, `${ACCOUNTS}/blobServices`, `${found.name}/${param(request, 'blobServicesName')}`, found.resourceGroup),
        ),
      ),
    ];
  }

  /** `StorageAccountListKeysResult`: both keys with full permissions. */
  private keysJson(account: StorageAccountState): Record<string, unknown> {
    return {
      keys: (['key1', 'key2'] as const).map((keyName) => ({
        keyName,
        value: account.keys[keyName].value,
        permissions: 'Full',
        creationTime: account.keys[keyName].creationTime.toISOString(),
      })),
    };
  }

  /**
   * `StorageAccounts_RegenerateKey` (synchronous 200 with both keys, as in the spec): replaces
   * `key1` or `key2` with a new random key. Azurite stops accepting the old one before the answer
   * is sent; the other key keeps working (the two-key rotation pattern depends on it).
   */
  private async regenerateKey(account: StorageAccountState, request: SandboxRequest, context: ProviderContext): Promise<SandboxResponse> {
    const body = z.object({ keyName: z.string() }).safeParse(request.body);
    const keyName = body.success ? body.data.keyName.toLowerCase() : undefined;
    if (keyName !== 'key1' && keyName !== 'key2') {
      const found = body.success ? `'${body.data.keyName}'` : 'no keyName';
      return context.armError(400, 'InvalidValuesForRequestParameters', `Values for request parameters are invalid: keyName. Expected key1 or key2 (kerb1 and kerb2 need Kerberos, which the sandbox does not serve), found ${found}.`);
    }
    account.keys[keyName] = { value: randomBytes(64).toString('base64'), creationTime: context.now() };
    await this.applyKeys(account, context);
    context.event('storage.key.regenerated', { account: account.id, keyName });
    return json(200, this.keysJson(account));
  }

  /** `primaryEndpoints.blob`, with the trailing slash Azure returns. */
  blobEndpointOf(account: StorageAccountState): string {
    const azurite = this.blobEndpoint(account.name);
    if (azurite === undefined) return `https://${account.name}.blob.core.windows.net/`;
    return azurite.endsWith('/') ? azurite : `${azurite}/`;
  }

  private accountJson(account: StorageAccountState): Record<string, unknown> {
    const geo = /GRS|GZRS/.test(account.sku);
    const endpoint = (service: string): string => `https://${account.name}.${service}.core.windows.net/`;
    return {
      ...armEnvelope(account, ACCOUNTS),
      sku: { name: account.sku, tier: account.sku.startsWith('Premium') ? 'Premium' : 'Standard' },
      kind: account.kind,
      properties: {
        provisioningState: 'Succeeded',
        creationTime: account.created.toISOString(),
        primaryEndpoints: {
          blob: this.blobEndpointOf(account),
          queue: endpoint('queue'),
          table: endpoint('table'),
          file: endpoint('file'),
          web: endpoint('z1.web'),
          dfs: endpoint('dfs'),
        },
        primaryLocation: account.location,
        statusOfPrimary: 'available',
        ...(geo ? { secondaryLocation: account.secondaryLocation ?? 'southafricawest', statusOfSecondary: 'available' } : {}),
        accessTier: account.accessTier,
        supportsHttpsTrafficOnly: true,
        minimumTlsVersion: 'TLS1_2',
        allowBlobPublicAccess: false,
        allowSharedKeyAccess: account.allowSharedKeyAccess,
        publicNetworkAccess: 'Enabled',
        networkAcls: { bypass: 'AzureServices', virtualNetworkRules: [], ipRules: [], defaultAction: 'Allow' },
        encryption: {
          services: {
            blob: { keyType: 'Account', enabled: true, lastEnabledTime: account.created.toISOString() },
            file: { keyType: 'Account', enabled: true, lastEnabledTime: account.created.toISOString() },
          },
          keySource: 'Microsoft.Storage',
        },
        keyCreationTime: { key1: account.keys.key1.creationTime.toISOString(), key2: account.keys.key2.creationTime.toISOString() },
      },
    };
  }

  private blobServiceJson(account: StorageAccountState): Record<string, unknown> {
    return {
      id: `${account.id}/blobServices/default`,
      name: 'default',
      type: `${ACCOUNTS}/blobServices`,
      sku: { name: account.sku, tier: account.sku.startsWith('Premium') ? 'Premium' : 'Standard' },
      properties: {
        cors: { corsRules: [] },
        deleteRetentionPolicy: account.blobSoftDelete.enabled
          ? { enabled: true, days: account.blobSoftDelete.days, allowPermanentDelete: false }
          : { enabled: false, allowPermanentDelete: false },
        containerDeleteRetentionPolicy: account.containerSoftDelete.enabled
          ? { enabled: true, days: account.containerSoftDelete.days }
          : { enabled: false },
        isVersioningEnabled: account.versioning,
        changeFeed: { enabled: account.changeFeed },
      },
    };
  }

  snapshot(): unknown {
    return this.accounts.all().map((account) => ({
      id: account.id,
      sku: account.sku,
      kind: account.kind,
      blobEndpoint: this.blobEndpointOf(account),
      blobSoftDelete: account.blobSoftDelete,
      containerSoftDelete: account.containerSoftDelete,
      versioning: account.versioning,
      allowSharedKeyAccess: account.allowSharedKeyAccess,
      // Key values are secrets; only when each was last regenerated.
      keyCreationTime: { key1: account.keys.key1.creationTime.toISOString(), key2: account.keys.key2.creationTime.toISOString() },
    }));
  }
}
