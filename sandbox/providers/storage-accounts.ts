/**
 * Microsoft.Storage: storage accounts and their blob service properties (soft delete,
 * versioning). The blob endpoint points at Azurite when the engine runs it.
 */
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, WorldFile, WorldResource } from '../contract.ts';
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
  })
  .strict();

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
}

/** The Microsoft.Storage provider. */
export class StorageAccountsProvider implements SandboxProvider {
  readonly name = 'Microsoft.Storage';
  readonly types = [ACCOUNTS] as const;
  private readonly accounts = new ResourceStore<StorageAccountState>();
  private blobEndpoint: (account: string) => string | undefined = () => undefined;

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    this.blobEndpoint = (account) => context.blobEndpointFor(account);
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(accountSpecSchema, world, resource);
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
      });
    }
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
        allowSharedKeyAccess: false,
        publicNetworkAccess: 'Enabled',
        networkAcls: { bypass: 'AzureServices', virtualNetworkRules: [], ipRules: [], defaultAction: 'Allow' },
        encryption: {
          services: {
            blob: { keyType: 'Account', enabled: true, lastEnabledTime: account.created.toISOString() },
            file: { keyType: 'Account', enabled: true, lastEnabledTime: account.created.toISOString() },
          },
          keySource: 'Microsoft.Storage',
        },
        keyCreationTime: { key1: account.created.toISOString(), key2: account.created.toISOString() },
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
    }));
  }
}
