/**
 * The `inventory` runbook: every configured target, read-only, as Azure reports it.
 *
 * - PostgreSQL flexible servers: state, version, backup retention, geo-redundancy, earliest
 *   restore point and the newest completed backup;
 * - Container Apps: revisions (active, created, traffic), latest revision, images;
 * - container registries: repository and tag counts, and the images in use, read as image-purge
 *   reads them (`shared/images-in-use.ts`: by default every Container App, job and web app in
 *   the registry's subscriptions, per the registry's image-purge policy or its defaults);
 * - Key Vaults: soft delete, purge protection, secret counts, nearest expiry;
 * - web apps: state, kind, slots, container images (configuration and sitecontainers), default host name;
 * - storage accounts: replication, blob and container soft delete, versioning.
 *
 * Each target is read on its own: a failure is recorded with the target's ID and never stops
 * the others. The run produces a run record (runbook `inventory`; every action is a read).
 */
import { kindOfType, parseResourceId, type ResourceKind } from '../azure/resource-id.ts';
import type { AzureClients } from '../azure/clients.ts';
import { AzureCredentialError, callAzure } from '../azure/errors.ts';
import { imagePurgePolicySchema, type EstateConfig, type TargetConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { selectionOf, type ExcludedResource, type TargetResolution, type TargetSelection, type UnavailableScope } from '../config/resolve.ts';
import { startRun, toErrorRecord, type ErrorRecord, type RunRecord, type RunTrigger, type TargetRecorder } from '../runs/run-record.ts';
import { collect } from '../util/collect.ts';
import { forEachLimited } from '../util/concurrency.ts';
import { fetchContainerApp, type ContainerAppInventory, type InventoryEntryBase } from './shared/container-apps.ts';
import { loginServerOf } from './shared/image-reference.ts';
import { inUseScopeOf, isDigest, readImagesInUse, siteConfigImages, usesInRegistry, type ImageUse } from './shared/images-in-use.ts';
import { replicationOfSku } from './shared/storage-sku.ts';

export type { ContainerAppInventory, InventoryEntryBase, RevisionInventory } from './shared/container-apps.ts';

/** The client factories inventory uses; a subset of {@link AzureClients}. */
export type InventoryClients = Pick<
  AzureClients,
  | 'webClient'
  | 'containerAppsClient'
  | 'postgresClient'
  | 'storageClient'
  | 'keyVaultManagementClient'
  | 'secretClient'
  | 'registryClient'
>;

/** A PostgreSQL flexible server. */
export interface PostgresInventory extends InventoryEntryBase {
  readonly state?: string;
  readonly version?: string;
  readonly sku?: string;
  readonly backupRetentionDays?: number;
  readonly geoRedundantBackup?: string;
  /** ISO time of the earliest point-in-time restore point. */
  readonly earliestRestoreDate?: string;
  /** Hours between the earliest restore point and now. */
  readonly restoreWindowHours?: number;
  readonly backupCount: number;
  readonly newestBackup?: { readonly name: string; readonly completedTime: string; readonly backupType?: string };
  /** Age of the newest completed backup, in hours. */
  readonly newestBackupAgeHours?: number;
}

/** An image reference in use, as image-purge sees it. */
export interface ImageInUse {
  /** As the app names it, e.g. `crxshopaiprod.azurecr.io/user-service:v1.0.3`. */
  readonly image: string;
  readonly repository: string;
  /** Tag or digest. */
  readonly reference: string;
  /** Names of the apps (and revisions or slots) that use it. */
  readonly usedBy: readonly string[];
  /** Whether the registry still holds the tag or digest. */
  readonly present: boolean;
}

/** A container registry, read through its data plane. */
export interface RegistryInventory extends InventoryEntryBase {
  readonly loginServer: string;
  readonly repositoryCount: number;
  readonly tagCount: number;
  readonly manifestCount: number;
  readonly untaggedManifestCount: number;
  readonly repositories: readonly { readonly name: string; readonly tagCount: number; readonly manifestCount: number; readonly lockedCount: number }[];
  readonly imagesInUse: readonly ImageInUse[];
}

/** A secret named by inventory: name and dates only, never a value. */
export interface SecretExpiry {
  readonly name: string;
  readonly expiresOn: string;
  /** Days until expiry; negative when already expired. */
  readonly days: number;
}

/** A Key Vault. */
export interface KeyVaultInventory extends InventoryEntryBase {
  readonly softDeleteEnabled?: boolean;
  readonly softDeleteRetentionDays?: number;
  readonly purgeProtectionEnabled: boolean;
  readonly secretCount: number;
  readonly enabledSecretCount: number;
  /** Enabled secrets with no expiry date. */
  readonly withoutExpiryCount: number;
  /** Certificate-backed secrets (managed by Key Vault certificates). */
  readonly certificateBackedCount: number;
  /** The enabled secret that expires next (not yet expired). */
  readonly nearestExpiry?: SecretExpiry;
  /** Enabled secrets whose expiry date has passed, oldest first. */
  readonly expired: readonly SecretExpiry[];
}

/** A deployment slot of a web app. */
export interface SlotInventory {
  readonly name: string;
  readonly state?: string;
  readonly defaultHostName?: string;
  /** Container images: from the slot's configuration (each compose service) and its sitecontainers. */
  readonly images: readonly string[];
}

/** A web app or function app (Microsoft.Web/sites). */
export interface WebAppInventory extends InventoryEntryBase {
  readonly kind?: string;
  readonly state?: string;
  readonly defaultHostName?: string;
  readonly httpsOnly?: boolean;
  readonly linuxFxVersion?: string;
  /** Container images: from `linuxFxVersion`/`windowsFxVersion` (`DOCKER|`, each `COMPOSE|` service) and the sitecontainers. */
  readonly images: readonly string[];
  readonly slots: readonly SlotInventory[];
}

/** A storage account. */
export interface StorageAccountInventory extends InventoryEntryBase {
  readonly sku?: string;
  /** Replication from the SKU: LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS. */
  readonly replication?: string;
  readonly kind?: string;
  readonly blobSoftDelete: { readonly enabled: boolean; readonly days?: number };
  readonly containerSoftDelete: { readonly enabled: boolean; readonly days?: number };
  readonly versioning: boolean;
}

/** A target inventory could not read. */
export interface InventoryError {
  readonly targetId: string;
  readonly kind?: ResourceKind;
  readonly error: ErrorRecord;
  /**
   * When no token could be obtained: the reason without the resource (credential kind, scope,
   * cause), identical across targets, so a caller can report one broken credential once.
   */
  readonly credentialFailure?: string;
}

/** What `inventory` returns. */
export interface InventoryResult {
  readonly estate: string;
  readonly runId: string;
  readonly generatedAt: string;
  readonly postgresServers: readonly PostgresInventory[];
  readonly containerApps: readonly ContainerAppInventory[];
  readonly registries: readonly RegistryInventory[];
  readonly keyVaults: readonly KeyVaultInventory[];
  readonly webApps: readonly WebAppInventory[];
  readonly storageAccounts: readonly StorageAccountInventory[];
  /** Targets that could not be read, each with its ID and a clear message. */
  readonly errors: readonly InventoryError[];
  /** Per target, in target order: which scope or entry selected it and which policy won per runbook. */
  readonly selection: readonly TargetSelection[];
  /** Resources a scope or target would have selected that an exclusion (or the ignore tag) left out. */
  readonly excluded: readonly ExcludedResource[];
  /** Scopes whose resources could not be listed (they selected nothing); inventory fails when there is one. */
  readonly unavailable: readonly UnavailableScope[];
  /** E.g. a scope that matched nothing. */
  readonly warnings: readonly string[];
  readonly record: RunRecord;
}


/** Options of {@link runInventory}. */
export interface InventoryOptions {
  readonly trigger?: RunTrigger;
  readonly requestedBy?: string;
  /** Clock for ages; defaults to the system clock. */
  readonly now?: () => Date;
  /** Targets read at once (default 4); the request budget limits the rate in any case. */
  readonly concurrency?: number;
  /**
   * The estate's resolved targets ({@link resolveTargets}), or those of them to read. Without it,
   * the config's explicit targets are read (and no scope): callers with Azure access resolve first.
   */
  readonly resolution?: TargetResolution;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

function roundTo(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

interface TargetContext {
  readonly target: TargetConfig;
  readonly id: ReturnType<typeof parseResourceId>;
  readonly kind: ResourceKind;
  readonly recorder: TargetRecorder;
  readonly base: InventoryEntryBase;
}

/** How many targets the inventory read, across every resource kind. */
export function inventoryEntryCount(result: InventoryResult): number {
  return (
    result.postgresServers.length +
    result.containerApps.length +
    result.registries.length +
    result.keyVaults.length +
    result.webApps.length +
    result.storageAccounts.length
  );
}

/**
 * Runs the inventory over every target of the configuration.
 *
 * Never rejects because of one target: failures are in `errors` and in the run record. It
 * rejects only when the run record itself cannot be produced (a secret slipped into it).
 */
export async function runInventory(config: EstateConfig, clients: InventoryClients, options: InventoryOptions = {}): Promise<InventoryResult> {
  const now = options.now ?? ((): Date => new Date());
  const run = startRun({
    runbook: 'inventory',
    trigger: options.trigger ?? 'cli',
    // Inventory only reads, so it is effectively always dry; the record says what the estate is set to.
    dryRun: config.dryRun,
    estate: config.estate,
    now,
    ...(options.requestedBy === undefined ? {} : { requestedBy: options.requestedBy }),
  });
  const result = {
    postgresServers: [] as PostgresInventory[],
    containerApps: [] as ContainerAppInventory[],
    registries: [] as RegistryInventory[],
    keyVaults: [] as KeyVaultInventory[],
    webApps: [] as WebAppInventory[],
    storageAccounts: [] as StorageAccountInventory[],
    errors: [] as InventoryError[],
  };
  const contexts: TargetContext[] = [];
  const targets: readonly TargetConfig[] = options.resolution?.targets ?? config.targets;
  for (const entry of options.resolution?.unavailable ?? []) run.target(entry.scope).fail(new OpsAutopilotError(entry.reason), 'discover');
  for (const target of targets) {
    const id = parseResourceId(target.id);
    const kind = id.kind ?? kindOfType(id.type);
    if (kind === undefined) {
      // The schema refuses unsupported types; a hand-built config may still hold one.
      const recorder = run.target(target.id);
      recorder.skip(`unsupported resource type ${id.type}`);
      continue;
    }
    contexts.push({
      target,
      id,
      kind,
      recorder: run.target(target.id, kind),
      base: {
        targetId: id.id,
        name: id.name,
        resourceGroup: id.resourceGroup,
        ...(target.displayName === undefined ? {} : { displayName: target.displayName }),
      },
    });
  }
  const concurrency = options.concurrency ?? 4;

  const guarded = async (context: TargetContext, read: () => Promise<void>): Promise<void> => {
    try {
      await read();
    } catch (error) {
      context.recorder.fail(error, `read ${context.kind}`);
      result.errors.push({
        targetId: context.id.id,
        kind: context.kind,
        error: toErrorRecord(error),
        ...(error instanceof AzureCredentialError ? { credentialFailure: error.reason } : {}),
      });
    }
  };

  // Registries whose images-in-use scope is the same share one reading (e.g. two registries in
  // one subscription); each reading is the one image-purge plans with.
  const inUseReadings = new Map<string, Promise<ImageUse[]>>();
  const imagesInUse = (context: TargetContext): Promise<ImageUse[]> => {
    const policy = context.target.runbooks['image-purge'] ?? imagePurgePolicySchema.parse({});
    const scope = inUseScopeOf(config, context.id.id, policy, targets);
    const key = JSON.stringify(scope);
    let reading = inUseReadings.get(key);
    if (reading === undefined) {
      reading = readImagesInUse(clients, scope, { concurrency, registry: context.id.id });
      // Every registry sharing the reading awaits it; this keeps an unawaited copy from being reported as unhandled.
      reading.catch(() => undefined);
      inUseReadings.set(key, reading);
    }
    return reading;
  };

  await forEachLimited(contexts, concurrency, (context) =>
    guarded(context, async () => {
      switch (context.kind) {
        case 'postgresFlexibleServer':
          result.postgresServers.push(await readPostgres(context, clients, now()));
          break;
        case 'containerApp':
          result.containerApps.push(await readContainerApp(context, clients));
          break;
        case 'keyVault':
          result.keyVaults.push(await readKeyVault(context, clients, now()));
          break;
        case 'webSite':
          result.webApps.push(await readWebApp(context, clients));
          break;
        case 'storageAccount':
          result.storageAccounts.push(await readStorage(context, clients));
          break;
        case 'containerRegistry':
          result.registries.push(await readRegistry(context, clients, await imagesInUse(context), config.azure.cloud));
          break;
      }
    }),
  );

  const byTargetOrder = <T extends { targetId: string }>(entries: T[]): T[] => {
    const order = new Map(targets.map((target, index) => [parseResourceId(target.id).id.toLowerCase(), index]));
    return entries.sort((a, b) => (order.get(a.targetId.toLowerCase()) ?? 0) - (order.get(b.targetId.toLowerCase()) ?? 0));
  };
  const record = run.finish();
  return {
    estate: config.estate,
    runId: record.runId,
    generatedAt: record.endedAt,
    postgresServers: byTargetOrder(result.postgresServers),
    containerApps: byTargetOrder(result.containerApps),
    registries: byTargetOrder(result.registries),
    keyVaults: byTargetOrder(result.keyVaults),
    webApps: byTargetOrder(result.webApps),
    storageAccounts: byTargetOrder(result.storageAccounts),
    errors: byTargetOrder(result.errors),
    selection: selectionOf(targets),
    excluded: options.resolution?.excluded ?? [],
    unavailable: options.resolution?.unavailable ?? [],
    warnings: options.resolution?.warnings ?? [],
    record,
  };
}

async function readPostgres(context: TargetContext, clients: InventoryClients, now: Date): Promise<PostgresInventory> {
  const { id, recorder } = context;
  const client = await clients.postgresClient(id.subscriptionId);
  const server = await callAzure({ resourceId: id.id, operation: 'get PostgreSQL flexible server' }, () =>
    client.servers.get(id.resourceGroup, id.name),
  );
  const backups = await callAzure({ resourceId: id.id, operation: 'list PostgreSQL backups' }, () =>
    collect(client.backupsAutomaticAndOnDemand.listByServer(id.resourceGroup, id.name)),
  );
  let newest: (typeof backups)[number] | undefined;
  for (const backup of backups) {
    if (backup.completedTime === undefined) continue;
    if (newest?.completedTime === undefined || backup.completedTime > newest.completedTime) newest = backup;
  }
  const earliest = server.backup?.earliestRestoreDate;
  const entry: PostgresInventory = {
    ...context.base,
    ...(server.location === '' ? {} : { location: server.location }),
    ...(server.state === undefined ? {} : { state: server.state }),
    ...(server.version === undefined ? {} : { version: server.version }),
    ...(server.sku?.name === undefined ? {} : { sku: server.sku.name }),
    ...(server.backup?.backupRetentionDays === undefined ? {} : { backupRetentionDays: server.backup.backupRetentionDays }),
    ...(server.backup?.geoRedundantBackup === undefined ? {} : { geoRedundantBackup: server.backup.geoRedundantBackup }),
    ...(earliest === undefined
      ? {}
      : { earliestRestoreDate: earliest.toISOString(), restoreWindowHours: roundTo((now.getTime() - earliest.getTime()) / HOUR_MS, 1) }),
    backupCount: backups.length,
    ...(newest?.completedTime === undefined
      ? {}
      : {
          newestBackup: {
            name: newest.name ?? '(unnamed)',
            completedTime: newest.completedTime.toISOString(),
            ...(newest.backupType === undefined ? {} : { backupType: newest.backupType }),
          },
          newestBackupAgeHours: roundTo((now.getTime() - newest.completedTime.getTime()) / HOUR_MS, 1),
        }),
  };
  recorder.read('read PostgreSQL server', `state ${entry.state ?? 'unknown'}, retention ${String(entry.backupRetentionDays ?? '?')} days, ${backups.length} backups, newest ${entry.newestBackup?.completedTime ?? 'none'}`, {
    state: entry.state ?? null,
    backupRetentionDays: entry.backupRetentionDays ?? null,
    earliestRestoreDate: entry.earliestRestoreDate ?? null,
    newestBackupAgeHours: entry.newestBackupAgeHours ?? null,
  });
  return entry;
}

async function readContainerApp(context: TargetContext, clients: InventoryClients): Promise<ContainerAppInventory> {
  const entry = await fetchContainerApp(clients, context.id, context.base);
  context.recorder.read(
    'read Container App',
    `${entry.revisionCount} revisions (${entry.activeRevisionCount} active), latest ${entry.latestRevisionName ?? 'unknown'}`,
    { revisionCount: entry.revisionCount, activeRevisionCount: entry.activeRevisionCount, latestRevisionName: entry.latestRevisionName ?? null },
  );
  return entry;
}

async function readKeyVault(context: TargetContext, clients: InventoryClients, now: Date): Promise<KeyVaultInventory> {
  const { id, recorder } = context;
  const management = await clients.keyVaultManagementClient(id.subscriptionId);
  const vault = await callAzure({ resourceId: id.id, operation: 'get Key Vault' }, () => management.vaults.get(id.resourceGroup, id.name));
  const secrets = await clients.secretClient(id.name);
  // Properties only: inventory never reads a secret value.
  const properties = await callAzure({ resourceId: `${id.id}/secrets`, operation: 'list secret properties' }, () =>
    collect(secrets.listPropertiesOfSecrets()),
  );
  const enabled = properties.filter((secret) => secret.enabled !== false);
  const withExpiry = enabled
    .filter((secret) => secret.expiresOn !== undefined)
    .map((secret) => {
      const expiresOn = secret.expiresOn ?? now;
      return { name: secret.name, expiresOn: expiresOn.toISOString(), days: roundTo((expiresOn.getTime() - now.getTime()) / DAY_MS, 1) };
    })
    .sort((a, b) => a.expiresOn.localeCompare(b.expiresOn));
  const nearest = withExpiry.find((secret) => secret.days >= 0);
  const entry: KeyVaultInventory = {
    ...context.base,
    ...(vault.location === undefined ? {} : { location: vault.location }),
    ...(vault.properties.enableSoftDelete === undefined ? {} : { softDeleteEnabled: vault.properties.enableSoftDelete }),
    ...(vault.properties.softDeleteRetentionInDays === undefined ? {} : { softDeleteRetentionDays: vault.properties.softDeleteRetentionInDays }),
    purgeProtectionEnabled: vault.properties.enablePurgeProtection === true,
    secretCount: properties.length,
    enabledSecretCount: enabled.length,
    withoutExpiryCount: enabled.length - withExpiry.length,
    certificateBackedCount: properties.filter((secret) => secret.managed === true).length,
    ...(nearest === undefined ? {} : { nearestExpiry: nearest }),
    expired: withExpiry.filter((secret) => secret.days < 0),
  };
  recorder.read(
    'read Key Vault',
    `${entry.secretCount} secrets; nearest expiry ${nearest === undefined ? 'none' : `${nearest.name} on ${nearest.expiresOn}`}; ${entry.expired.length} expired`,
    { secretCount: entry.secretCount, expiredCount: entry.expired.length, purgeProtectionEnabled: entry.purgeProtectionEnabled },
  );
  return entry;
}

async function readWebApp(context: TargetContext, clients: InventoryClients): Promise<WebAppInventory> {
  const { id, recorder } = context;
  const client = await clients.webClient(id.subscriptionId);
  const site = await callAzure({ resourceId: id.id, operation: 'get web app' }, () => client.webApps.get(id.resourceGroup, id.name));
  const config = await callAzure({ resourceId: `${id.id}/config/web`, operation: 'get web app configuration' }, () =>
    client.webApps.getConfiguration(id.resourceGroup, id.name),
  );
  const slotSites = await callAzure({ resourceId: `${id.id}/slots`, operation: 'list web app slots' }, () =>
    collect(client.webApps.listSlots(id.resourceGroup, id.name)),
  );
  const imagesOf = async (siteConfig: Parameters<typeof siteConfigImages>[2], slot?: string): Promise<string[]> =>
    [...new Set((await siteConfigImages(client, id, siteConfig, slot)).map((image) => image.image))];
  const slots: SlotInventory[] = [];
  for (const slot of slotSites) {
    // Slot names come back as `app/slot`.
    const slotName = (slot.name ?? '').split('/').at(-1) ?? '';
    const slotConfig = await callAzure({ resourceId: `${id.id}/slots/${slotName}/config/web`, operation: 'get slot configuration' }, () =>
      client.webApps.getConfigurationSlot(id.resourceGroup, id.name, slotName),
    );
    slots.push({
      name: slotName,
      ...(slot.state === undefined ? {} : { state: slot.state }),
      ...(slot.defaultHostName === undefined ? {} : { defaultHostName: slot.defaultHostName }),
      images: await imagesOf(slotConfig, slotName),
    });
  }
  const linuxFxVersion = config.linuxFxVersion === '' ? undefined : config.linuxFxVersion;
  const images = await imagesOf(config);
  const entry: WebAppInventory = {
    ...context.base,
    ...(site.location === '' ? {} : { location: site.location }),
    ...(site.kind === undefined ? {} : { kind: site.kind }),
    ...(site.state === undefined ? {} : { state: site.state }),
    ...(site.defaultHostName === undefined ? {} : { defaultHostName: site.defaultHostName }),
    ...(site.httpsOnly === undefined ? {} : { httpsOnly: site.httpsOnly }),
    ...(linuxFxVersion === undefined ? {} : { linuxFxVersion }),
    images,
    slots,
  };
  recorder.read('read web app', `state ${entry.state ?? 'unknown'}, ${slots.length} slot(s), image(s) ${images.length === 0 ? 'none' : images.join(', ')}`, {
    state: entry.state ?? null,
    slotCount: slots.length,
    images: images.length === 0 ? null : images.join(', '),
  });
  return entry;
}

async function readStorage(context: TargetContext, clients: InventoryClients): Promise<StorageAccountInventory> {
  const { id, recorder } = context;
  const client = await clients.storageClient(id.subscriptionId);
  const account = await callAzure({ resourceId: id.id, operation: 'get storage account' }, () =>
    client.storageAccounts.getProperties(id.resourceGroup, id.name),
  );
  const blob = await callAzure({ resourceId: `${id.id}/blobServices/default`, operation: 'get blob service properties' }, () =>
    client.blobServices.getServiceProperties(id.resourceGroup, id.name),
  );
  const replication = replicationOfSku(account.sku?.name);
  const days = (policy: { enabled?: boolean; days?: number } | undefined): { enabled: boolean; days?: number } => ({
    enabled: policy?.enabled === true,
    ...(policy?.enabled === true && policy.days !== undefined ? { days: policy.days } : {}),
  });
  const entry: StorageAccountInventory = {
    ...context.base,
    ...(account.location === '' ? {} : { location: account.location }),
    ...(account.sku?.name === undefined ? {} : { sku: account.sku.name }),
    ...(replication === undefined ? {} : { replication }),
    ...(account.kind === undefined ? {} : { kind: account.kind }),
    blobSoftDelete: days(blob.deleteRetentionPolicy),
    containerSoftDelete: days(blob.containerDeleteRetentionPolicy),
    versioning: blob.isVersioningEnabled === true,
  };
  recorder.read(
    'read storage account',
    `${entry.sku ?? 'unknown SKU'}; blob soft delete ${entry.blobSoftDelete.enabled ? `${String(entry.blobSoftDelete.days ?? '?')} days` : 'off'}; versioning ${entry.versioning ? 'on' : 'off'}`,
    { sku: entry.sku ?? null, blobSoftDelete: entry.blobSoftDelete.enabled, versioning: entry.versioning },
  );
  return entry;
}

async function readRegistry(
  context: TargetContext,
  clients: InventoryClients,
  uses: readonly ImageUse[],
  cloud: EstateConfig['azure']['cloud'],
): Promise<RegistryInventory> {
  const { id, recorder } = context;
  // The same filter image-purge applies; a reference that cannot be read fails the registry's entry.
  const inUse = usesInRegistry(uses, id.name, cloud, { registry: id.id });
  const client = await clients.registryClient(id.name);
  const names = await callAzure({ resourceId: id.id, operation: 'list repositories' }, () => collect(client.listRepositoryNames()));
  const repositories: { name: string; tagCount: number; manifestCount: number; lockedCount: number }[] = [];
  const tagsByRepository = new Map<string, Set<string>>();
  const digestsByRepository = new Map<string, Set<string>>();
  let untagged = 0;
  for (const name of names.sort()) {
    const manifests = await callAzure({ resourceId: `${id.id}/repositories/${name}`, operation: 'list manifests' }, () =>
      collect(client.getRepository(name).listManifestProperties()),
    );
    const tags = new Set<string>();
    const digests = new Set<string>();
    let locked = 0;
    for (const manifest of manifests) {
      digests.add(manifest.digest);
      for (const tag of manifest.tags) tags.add(tag);
      if (manifest.tags.length === 0) untagged += 1;
      if (manifest.canDelete === false || manifest.canWrite === false) locked += 1;
    }
    tagsByRepository.set(name, tags);
    digestsByRepository.set(name, digests);
    repositories.push({ name, tagCount: tags.size, manifestCount: manifests.length, lockedCount: locked });
  }
  const loginServer = loginServerOf(id.name, cloud);
  const imagesInUse: ImageInUse[] = inUse.map((use) => ({
    ...use,
    present: isDigest(use.reference)
      ? digestsByRepository.get(use.repository)?.has(use.reference) === true
      : tagsByRepository.get(use.repository)?.has(use.reference) === true,
  }));
  const entry: RegistryInventory = {
    ...context.base,
    loginServer,
    repositoryCount: repositories.length,
    tagCount: repositories.reduce((sum, repository) => sum + repository.tagCount, 0),
    manifestCount: repositories.reduce((sum, repository) => sum + repository.manifestCount, 0),
    untaggedManifestCount: untagged,
    repositories,
    imagesInUse,
  };
  const missing = imagesInUse.filter((image) => !image.present);
  recorder.read(
    'read container registry',
    `${entry.repositoryCount} repositories, ${entry.tagCount} tags; ${imagesInUse.length} image(s) in use${missing.length > 0 ? `, ${missing.length} missing from the registry` : ''}`,
    { repositoryCount: entry.repositoryCount, tagCount: entry.tagCount, imagesInUse: imagesInUse.length },
  );
  return entry;
}

/** A one-line reason for a failed target, for human output. */
export function describeInventoryError(error: InventoryError): string {
  return `${error.targetId}: ${error.error.message || errorMessage(error.error)}`;
}
