/**
 * The `inventory` runbook: every configured target, read-only, as Azure reports it.
 *
 * - PostgreSQL flexible servers: state, version, backup retention, geo-redundancy, earliest
 *   restore point and the newest completed backup;
 * - Container Apps: revisions (active, created, traffic), latest revision, images;
 * - container registries: repository and tag counts, and the images in use by the configured
 *   Container Apps and web apps (plus `image-purge.inUseScope`);
 * - Key Vaults: soft delete, purge protection, secret counts, nearest expiry;
 * - web apps: state, kind, slots, container image, default host name;
 * - storage accounts: replication, blob and container soft delete, versioning.
 *
 * Each target is read on its own: a failure is recorded with the target's ID and never stops
 * the others. The run produces a run record (runbook `inventory`; every action is a read).
 */
import { kindOfType, parseResourceId, type ResourceKind } from '../azure/resource-id.ts';
import type { AzureClients } from '../azure/clients.ts';
import { AzureCredentialError, callAzure } from '../azure/errors.ts';
import type { EstateConfig, TargetConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { startRun, toErrorRecord, type ErrorRecord, type RunRecord, type RunTrigger, type TargetRecorder } from '../runs/run-record.ts';

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

/** Fields every inventory entry has. */
interface InventoryEntryBase {
  /** Full ARM resource ID of the target. */
  readonly targetId: string;
  readonly name: string;
  readonly resourceGroup: string;
  readonly displayName?: string;
  readonly location?: string;
}

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

/** One Container Apps revision. */
export interface RevisionInventory {
  readonly name: string;
  readonly active: boolean;
  readonly createdTime?: string;
  readonly trafficWeight: number;
  readonly replicas?: number;
  readonly healthState?: string;
  readonly runningState?: string;
  /** Images of the revision's containers and init containers. */
  readonly images: readonly string[];
}

/** A Container App. */
export interface ContainerAppInventory extends InventoryEntryBase {
  readonly provisioningState?: string;
  readonly runningStatus?: string;
  readonly activeRevisionsMode?: string;
  readonly fqdn?: string;
  readonly latestRevisionName?: string;
  readonly latestReadyRevisionName?: string;
  /** Images of the current template: containers and init containers. */
  readonly images: readonly string[];
  /** Ingress traffic split, as configured (`latestRevision` or a revision name). */
  readonly traffic: readonly { readonly revisionName?: string; readonly latestRevision: boolean; readonly weight: number; readonly label?: string }[];
  readonly revisionCount: number;
  readonly activeRevisionCount: number;
  /** Newest first. */
  readonly revisions: readonly RevisionInventory[];
}

/** An image reference in use by a configured app. */
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
  readonly image?: string;
}

/** A web app or function app (Microsoft.Web/sites). */
export interface WebAppInventory extends InventoryEntryBase {
  readonly kind?: string;
  readonly state?: string;
  readonly defaultHostName?: string;
  readonly httpsOnly?: boolean;
  readonly linuxFxVersion?: string;
  /** The container image, from `linuxFxVersion` (`DOCKER|image`), when it runs one. */
  readonly image?: string;
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
}

/** Login-server DNS suffix of container registries per cloud. */
export const REGISTRY_SUFFIX: Record<EstateConfig['azure']['cloud'], string> = {
  AzureCloud: 'azurecr.io',
  AzureUSGovernment: 'azurecr.us',
  AzureChinaCloud: 'azurecr.cn',
};

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

function iso(date: Date | string | undefined): string | undefined {
  if (date === undefined) return undefined;
  const value = typeof date === 'string' ? new Date(date) : date;
  return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
}

function roundTo(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Drains an async iterable (an SDK pager) into an array. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Runs `work` over `items` with at most `limit` in flight; never rejects (work handles errors). */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      if (item !== undefined) await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/** Splits `host/repo/path:tag` or `host/repo@sha256:...` into its parts. */
export function parseImageReference(image: string): { host: string | undefined; repository: string; reference: string } {
  let rest = image.trim();
  let host: string | undefined;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    // A registry host has a dot or a port, or is localhost; otherwise it is a Docker Hub path.
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      host = first.toLowerCase();
      rest = rest.slice(slash + 1);
    }
  }
  const at = rest.indexOf('@');
  if (at >= 0) return { host, repository: rest.slice(0, at), reference: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  if (colon > 0) return { host, repository: rest.slice(0, colon), reference: rest.slice(colon + 1) };
  return { host, repository: rest, reference: 'latest' };
}

/** The container image of a `linuxFxVersion` such as `DOCKER|repo/app:1.2`, or undefined. */
export function imageOfLinuxFxVersion(linuxFxVersion: string | undefined): string | undefined {
  if (linuxFxVersion === undefined) return undefined;
  const match = /^(?:DOCKER|COMPOSE|KUBE)\|(.+)$/i.exec(linuxFxVersion.trim());
  return match?.[1];
}

/** Replication of a storage SKU name, e.g. `Standard_RAGRS` → `RAGRS`. */
export function replicationOfSku(sku: string | undefined): string | undefined {
  return sku?.split('_')[1]?.toUpperCase();
}

interface TargetContext {
  readonly target: TargetConfig;
  readonly id: ReturnType<typeof parseResourceId>;
  readonly kind: ResourceKind;
  readonly recorder: TargetRecorder;
  readonly base: InventoryEntryBase;
}

/** One image reference used by an app, revision or slot (also used by `image-purge`). */
export interface ImageUse {
  readonly image: string;
  readonly usedBy: string;
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
  for (const target of config.targets) {
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

  // Registries go last: their "images in use" come from the apps read first.
  const apps = contexts.filter((context) => context.kind !== 'containerRegistry');
  const registries = contexts.filter((context) => context.kind === 'containerRegistry');
  await forEachLimited(apps, concurrency, (context) =>
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
          break;
      }
    }),
  );

  if (registries.length > 0) {
    const uses: ImageUse[] = [
      ...result.containerApps.flatMap((app) => imageUsesOfContainerApp(app)),
      ...result.webApps.flatMap((app) => imageUsesOfWebApp(app)),
    ];
    const readIds = new Set([...result.containerApps, ...result.webApps].map((entry) => entry.targetId.toLowerCase()));
    await forEachLimited(registries, concurrency, (context) =>
      guarded(context, async () => {
        const extra = await readInUseScope(context, clients, readIds);
        result.registries.push(await readRegistry(context, clients, [...uses, ...extra], REGISTRY_SUFFIX[config.azure.cloud]));
      }),
    );
  }

  const byTargetOrder = <T extends { targetId: string }>(entries: T[]): T[] => {
    const order = new Map(config.targets.map((target, index) => [parseResourceId(target.id).id.toLowerCase(), index]));
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

/**
 * Reads a Container App and all its revisions (newest first), read-only, as inventory reports
 * them: traffic split, latest and latest-ready revision, per-revision traffic weight and images.
 * Shared by inventory and the runbooks that act on revisions.
 *
 * @throws AzureOperationError subclasses (from callAzure) naming the app when a read fails.
 */
export async function readContainerAppInventory(
  clients: Pick<AzureClients, 'containerAppsClient'>,
  targetId: string,
  displayName?: string,
): Promise<ContainerAppInventory> {
  const id = parseResourceId(targetId);
  return fetchContainerApp(clients, id, {
    targetId: id.id,
    name: id.name,
    resourceGroup: id.resourceGroup,
    ...(displayName === undefined ? {} : { displayName }),
  });
}

/**
 * Every image a Container Apps template pulls: its containers' and its init containers'. An
 * image used only by an init container is still pulled on every new replica, so deleting it
 * breaks scaling out as surely as deleting the main image.
 */
export function templateImages(
  template: { readonly containers?: readonly { readonly image?: string }[]; readonly initContainers?: readonly { readonly image?: string }[] } | undefined,
): string[] {
  const images = [...(template?.containers ?? []), ...(template?.initContainers ?? [])].flatMap((container) =>
    container.image === undefined || container.image === '' ? [] : [container.image],
  );
  return [...new Set(images)];
}

async function fetchContainerApp(
  clients: Pick<AzureClients, 'containerAppsClient'>,
  id: ReturnType<typeof parseResourceId>,
  base: InventoryEntryBase,
): Promise<ContainerAppInventory> {
  const client = await clients.containerAppsClient(id.subscriptionId);
  const app = await callAzure({ resourceId: id.id, operation: 'get Container App' }, () => client.containerApps.get(id.resourceGroup, id.name));
  const revisions = await callAzure({ resourceId: id.id, operation: 'list Container App revisions' }, () =>
    collect(client.containerAppsRevisions.listRevisions(id.resourceGroup, id.name)),
  );
  const revisionEntries: RevisionInventory[] = revisions
    .map((revision) => {
      const createdTime = iso(revision.createdTime);
      return {
        name: revision.name ?? '(unnamed)',
        active: revision.active === true,
        ...(createdTime === undefined ? {} : { createdTime }),
        trafficWeight: revision.trafficWeight ?? 0,
        ...(revision.replicas === undefined ? {} : { replicas: revision.replicas }),
        ...(revision.healthState === undefined ? {} : { healthState: revision.healthState }),
        ...(revision.runningState === undefined ? {} : { runningState: revision.runningState }),
        images: templateImages(revision.template),
      };
    })
    .sort((a, b) => (b.createdTime ?? '').localeCompare(a.createdTime ?? ''));
  const ingress = app.configuration?.ingress;
  const entry: ContainerAppInventory = {
    ...base,
    ...(app.location === '' ? {} : { location: app.location }),
    ...(app.provisioningState === undefined ? {} : { provisioningState: app.provisioningState }),
    ...(app.runningStatus === undefined ? {} : { runningStatus: app.runningStatus }),
    ...(app.configuration?.activeRevisionsMode === undefined ? {} : { activeRevisionsMode: app.configuration.activeRevisionsMode }),
    ...(ingress?.fqdn === undefined ? {} : { fqdn: ingress.fqdn }),
    ...(app.latestRevisionName === undefined ? {} : { latestRevisionName: app.latestRevisionName }),
    ...(app.latestReadyRevisionName === undefined ? {} : { latestReadyRevisionName: app.latestReadyRevisionName }),
    images: templateImages(app.template),
    traffic: (ingress?.traffic ?? []).map((weight) => ({
      ...(weight.revisionName === undefined ? {} : { revisionName: weight.revisionName }),
      latestRevision: weight.latestRevision === true,
      weight: weight.weight ?? 0,
      ...(weight.label === undefined ? {} : { label: weight.label }),
    })),
    revisionCount: revisionEntries.length,
    activeRevisionCount: revisionEntries.filter((revision) => revision.active).length,
    revisions: revisionEntries,
  };
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
  const slots: SlotInventory[] = [];
  for (const slot of slotSites) {
    // Slot names come back as `app/slot`.
    const slotName = (slot.name ?? '').split('/').at(-1) ?? '';
    const slotConfig = await callAzure({ resourceId: `${id.id}/slots/${slotName}/config/web`, operation: 'get slot configuration' }, () =>
      client.webApps.getConfigurationSlot(id.resourceGroup, id.name, slotName),
    );
    const image = imageOfLinuxFxVersion(slotConfig.linuxFxVersion);
    slots.push({
      name: slotName,
      ...(slot.state === undefined ? {} : { state: slot.state }),
      ...(slot.defaultHostName === undefined ? {} : { defaultHostName: slot.defaultHostName }),
      ...(image === undefined ? {} : { image }),
    });
  }
  const linuxFxVersion = config.linuxFxVersion === '' ? undefined : config.linuxFxVersion;
  const image = imageOfLinuxFxVersion(linuxFxVersion);
  const entry: WebAppInventory = {
    ...context.base,
    ...(site.location === '' ? {} : { location: site.location }),
    ...(site.kind === undefined ? {} : { kind: site.kind }),
    ...(site.state === undefined ? {} : { state: site.state }),
    ...(site.defaultHostName === undefined ? {} : { defaultHostName: site.defaultHostName }),
    ...(site.httpsOnly === undefined ? {} : { httpsOnly: site.httpsOnly }),
    ...(linuxFxVersion === undefined ? {} : { linuxFxVersion }),
    ...(image === undefined ? {} : { image }),
    slots,
  };
  recorder.read('read web app', `state ${entry.state ?? 'unknown'}, ${slots.length} slot(s), image ${image ?? 'none'}`, {
    state: entry.state ?? null,
    slotCount: slots.length,
    image: image ?? null,
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

/**
 * Images a Container App runs: its template's, plus those of every ACTIVE revision (an active
 * revision keeps running its image after the template moved on). Shared with `image-purge`.
 */
export function imageUsesOfContainerApp(
  app: Pick<ContainerAppInventory, 'name' | 'images'> & { readonly revisions: readonly Pick<RevisionInventory, 'name' | 'active' | 'images'>[] },
): ImageUse[] {
  const uses: ImageUse[] = app.images.map((image) => ({ image, usedBy: app.name }));
  // An active revision still runs its image even when the template moved on.
  const template = new Set(app.images);
  for (const revision of app.revisions) {
    if (!revision.active) continue;
    for (const image of revision.images) {
      if (!template.has(image)) uses.push({ image, usedBy: `${app.name} (revision ${revision.name})` });
    }
  }
  return uses;
}

/** Images a web app or function app runs: the site's and every slot's. Shared with `image-purge`. */
export function imageUsesOfWebApp(
  app: Pick<WebAppInventory, 'name' | 'image'> & { readonly slots: readonly Pick<SlotInventory, 'name' | 'image'>[] },
): ImageUse[] {
  const uses: ImageUse[] = app.image === undefined ? [] : [{ image: app.image, usedBy: app.name }];
  for (const slot of app.slots) {
    // A slot's image is one swap away from production: it is in use.
    if (slot.image !== undefined) uses.push({ image: slot.image, usedBy: `${app.name} (slot ${slot.name})` });
  }
  return uses;
}

/** Reads the apps named by `image-purge.inUseScope` that are not targets themselves. */
async function readInUseScope(context: TargetContext, clients: InventoryClients, alreadyRead: ReadonlySet<string>): Promise<ImageUse[]> {
  const scope = context.target.runbooks['image-purge']?.inUseScope ?? [];
  const uses: ImageUse[] = [];
  for (const raw of scope) {
    const id = parseResourceId(raw);
    if (alreadyRead.has(id.id.toLowerCase())) continue;
    const base = { targetId: id.id, name: id.name, resourceGroup: id.resourceGroup };
    const scoped: TargetContext = { ...context, id, base, target: { id: id.id, runbooks: {} } };
    if (id.kind === 'containerApp') {
      uses.push(...imageUsesOfContainerApp(await readContainerApp({ ...scoped, kind: 'containerApp' }, clients)));
    } else if (id.kind === 'webSite') {
      uses.push(...imageUsesOfWebApp(await readWebApp({ ...scoped, kind: 'webSite' }, clients)));
    }
  }
  return uses;
}

async function readRegistry(
  context: TargetContext,
  clients: InventoryClients,
  uses: readonly ImageUse[],
  registrySuffix: string,
): Promise<RegistryInventory> {
  const { id, recorder } = context;
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
  const loginServer = `${id.name.toLowerCase()}.${registrySuffix}`;
  // Group uses by image; an image belongs to this registry when its host is `<registry>.…`.
  const byImage = new Map<string, { image: string; repository: string; reference: string; usedBy: Set<string> }>();
  for (const use of uses) {
    const parsed = parseImageReference(use.image);
    if (parsed.host === undefined || !parsed.host.startsWith(`${id.name.toLowerCase()}.`)) continue;
    const key = use.image.toLowerCase();
    const existing = byImage.get(key);
    if (existing === undefined) byImage.set(key, { image: use.image, repository: parsed.repository, reference: parsed.reference, usedBy: new Set([use.usedBy]) });
    else existing.usedBy.add(use.usedBy);
  }
  const imagesInUse: ImageInUse[] = [...byImage.values()]
    .map((use) => ({
      image: use.image,
      repository: use.repository,
      reference: use.reference,
      usedBy: [...use.usedBy].sort(),
      present: use.reference.startsWith('sha256:')
        ? digestsByRepository.get(use.repository)?.has(use.reference) === true
        : tagsByRepository.get(use.repository)?.has(use.reference) === true,
    }))
    .sort((a, b) => a.image.localeCompare(b.image));
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
