/**
 * The `keyvault-backup` runbook: backs up every secret of a Key Vault with Key Vault's own
 * backup operation into blob storage, and deletes backups older than the retention.
 *
 * Layout: container `policy.container` of the storage account `policy.storageAccountId`, one
 * blob per secret and day at `<vault>/<yyyy-mm-dd>/<secret>` (UTC date of the run). The blob is
 * Key Vault's opaque, encrypted backup of all versions of the secret; its metadata names the
 * secret, its latest version at backup time and the backup time. No secret value is ever read.
 *
 * Plan (read-only: list secret properties, list blobs under `<vault>/`):
 * - `backup-secret` for each enabled secret whose blob for today is missing;
 * - kept: today's backups already present (a second run on the same day plans nothing),
 *   certificate-backed secrets when `skipCertificateBackedSecrets`, secrets whose latest
 *   version is disabled;
 * - `delete-backup` (destructive) for each backup whose date folder is more than
 *   `retentionDays` before today, except the newest backup of each secret, which retention
 *   never takes (a failing backup job must not eat its last good copy).
 *
 * Apply: `backup-secret` skips a blob that already exists and uploads with `If-None-Match: *`;
 * `delete-backup` deletes if it still exists, else `skipped`.
 */
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceConflictError, ResourceNotFoundError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { TargetConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { collect } from '../util/collect.ts';
import type { ApplyResult, Check, KeptItem, PlannedAction, Runbook, RunbookContext, TargetPlan } from './runbook.ts';
import { readVaultResource } from './shared/target-resource.ts';

/** The `keyvault-backup` policy of a target, as the config schema parses it. */
export type KeyVaultBackupPolicy = NonNullable<TargetConfig['runbooks']['keyvault-backup']>;

const DAY_MS = 24 * 3_600_000;
const BACKUP = 'backup-secret';
const DELETE = 'delete-backup';

/** Key Vault returned no backup blob for a secret (the service answered 200 without `value`). */
export class EmptySecretBackupError extends OpsAutopilotError {
  override readonly name: string = 'EmptySecretBackupError';
}

/** A planned action whose details apply cannot use (a hand-edited or foreign plan). */
export class InvalidBackupActionError extends OpsAutopilotError {
  override readonly name: string = 'InvalidBackupActionError';
}

/** The UTC calendar day of a time, `yyyy-mm-dd`. */
export function backupDay(time: Date): string {
  return time.toISOString().slice(0, 10);
}

/** The blob name of a secret's backup on a day: `<vault>/<yyyy-mm-dd>/<secret>`. */
export function backupBlobName(vault: string, day: string, secret: string): string {
  return `${vault}/${day}/${secret}`;
}

/** Parses `<vault>/<yyyy-mm-dd>/<secret>`; undefined for any other blob under the prefix. */
export function parseBackupBlobName(vault: string, blobName: string): { day: string; secret: string } | undefined {
  const prefix = `${vault}/`;
  if (!blobName.startsWith(prefix)) return undefined;
  const match = /^(\d{4}-\d{2}-\d{2})\/([0-9a-zA-Z-]{1,127})$/.exec(blobName.slice(prefix.length));
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  const day = match[1];
  // Reject impossible dates such as 2025-02-30, which Date would roll over.
  if (Number.isNaN(Date.parse(`${day}T00:00:00Z`)) || backupDay(new Date(`${day}T00:00:00Z`)) !== day) return undefined;
  return { day, secret: match[2] };
}

/** Whole days between two `yyyy-mm-dd` days (later minus earlier). */
function daysBetween(earlier: string, later: string): number {
  return Math.round((Date.parse(`${later}T00:00:00Z`) - Date.parse(`${earlier}T00:00:00Z`)) / DAY_MS);
}

interface Destination {
  readonly storageAccountId: string;
  readonly accountName: string;
  readonly container: string;
  /** For error messages: `<storage account ID>/blobServices/default/containers/<container>`. */
  readonly containerId: string;
}

function destinationOf(policy: KeyVaultBackupPolicy): Destination {
  const account = parseResourceId(policy.storageAccountId);
  return {
    storageAccountId: account.id,
    accountName: account.name,
    container: policy.container,
    containerId: `${account.id}/blobServices/default/containers/${policy.container}`,
  };
}

async function containerOf(clients: AzureClients, destination: Destination): Promise<ContainerClient> {
  const service: BlobServiceClient = await clients.blobServiceClient(destination.accountName);
  return service.getContainerClient(destination.container);
}

/** Blob names under `<vault>/`; none when the container does not exist yet (first run). */
async function listBackups(container: ContainerClient, destination: Destination, vault: string): Promise<string[]> {
  try {
    const items = await callAzure({ resourceId: destination.containerId, operation: `list backup blobs under ${vault}/` }, () =>
      collect(container.listBlobsFlat({ prefix: `${vault}/` })),
    );
    return items.map((item) => item.name);
  } catch (error) {
    if (error instanceof ResourceNotFoundError && error.code === 'ContainerNotFound') return [];
    throw error;
  }
}

function detail(action: PlannedAction, key: string): string {
  const value = action.details[key];
  if (typeof value !== 'string' || value === '') {
    throw new InvalidBackupActionError(`${action.kind} ${action.id}: expected details.${key} to be a non-empty string, found ${JSON.stringify(value ?? null)}`, {
      context: { actionId: action.id, field: key },
    });
  }
  return value;
}

async function plan(context: RunbookContext, target: TargetConfig, policy: KeyVaultBackupPolicy): Promise<TargetPlan> {
  const vaultId = parseResourceId(target.id);
  const vault = vaultId.name;
  const destination = destinationOf(policy);
  const today = backupDay(context.now());

  // The vault from ARM at the configured ID first: the data plane is reached by vault name only.
  await readVaultResource(context.clients, vaultId.id, context.config.azure.cloud);
  const secretClient = await context.clients.secretClient(vault);
  const secrets = await callAzure({ resourceId: `${vaultId.id}/secrets`, operation: 'list secret properties' }, () =>
    collect(secretClient.listPropertiesOfSecrets()),
  );
  const container = await containerOf(context.clients, destination);
  const blobs = await listBackups(container, destination, vault);
  const existing = new Set(blobs);

  const actions: PlannedAction[] = [];
  const kept: KeptItem[] = [];
  let present = 0;
  let skipped = 0;
  for (const secret of [...secrets].sort((a, b) => a.name.localeCompare(b.name))) {
    const blobName = backupBlobName(vault, today, secret.name);
    if (secret.managed === true && policy.skipCertificateBackedSecrets) {
      skipped += 1;
      kept.push({ resource: secret.name, reason: 'certificate-backed secret (managed by a Key Vault certificate); skipped by policy skipCertificateBackedSecrets' });
    } else if (secret.enabled === false) {
      skipped += 1;
      kept.push({ resource: secret.name, reason: 'latest version is disabled; only enabled secrets are backed up' });
    } else if (existing.has(blobName)) {
      present += 1;
      kept.push({ resource: secret.name, reason: `already backed up today at ${destination.container}/${blobName}` });
    } else {
      actions.push({
        id: `${BACKUP}:${vault}:${today}:${secret.name}`,
        kind: BACKUP,
        resource: `${vaultId.id}/secrets/${secret.name}`,
        description: `back up secret ${secret.name} of ${vault} to ${destination.accountName}/${destination.container}/${blobName}`,
        destructive: false,
        details: {
          vault,
          secret: secret.name,
          storageAccountId: destination.storageAccountId,
          container: destination.container,
          blob: blobName,
          day: today,
        },
      });
    }
  }

  // Retention: per secret, every expired backup except the newest one of that secret.
  const bySecret = new Map<string, { name: string; day: string }[]>();
  for (const name of blobs) {
    const parsed = parseBackupBlobName(vault, name);
    if (parsed === undefined) {
      kept.push({ resource: `${destination.container}/${name}`, reason: `not a backup of this runbook (expected ${vault}/<yyyy-mm-dd>/<secret>); left alone` });
      continue;
    }
    const list = bySecret.get(parsed.secret) ?? [];
    list.push({ name, day: parsed.day });
    bySecret.set(parsed.secret, list);
  }
  let expired = 0;
  for (const [secret, backups] of [...bySecret.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    backups.sort((a, b) => b.day.localeCompare(a.day));
    backups.forEach((backup, index) => {
      const age = daysBetween(backup.day, today);
      if (age <= policy.retentionDays) return;
      if (index === 0) {
        kept.push({
          resource: `${destination.container}/${backup.name}`,
          reason: `${String(age)} days old, beyond the ${String(policy.retentionDays)}-day retention, but the newest backup of ${secret}; kept until a newer one exists`,
        });
        return;
      }
      expired += 1;
      actions.push({
        id: `${DELETE}:${backup.name}`,
        kind: DELETE,
        resource: `${destination.containerId}/blobs/${backup.name}`,
        description: `delete backup ${destination.container}/${backup.name} (${String(age)} days old, retention ${String(policy.retentionDays)} days)`,
        destructive: true,
        details: {
          vault,
          secret,
          storageAccountId: destination.storageAccountId,
          container: destination.container,
          blob: backup.name,
          day: backup.day,
          retentionDays: policy.retentionDays,
        },
      });
    });
  }

  const toBackUp = actions.filter((action) => action.kind === BACKUP).length;
  const checks: Check[] = [
    {
      status: 'ok',
      code: 'keyvault-backup.coverage',
      message: `${vault}: ${String(present)} secret(s) already backed up today, ${String(toBackUp)} to back up, ${String(skipped)} skipped; ${String(expired)} expired backup(s) to delete`,
      expected: `a backup from ${today} of each of the ${String(secrets.length - skipped)} secret(s) in scope in ${destination.accountName}/${destination.container}`,
      found: `${String(present)} present, ${String(toBackUp)} missing`,
    },
  ];
  return { targetId: vaultId.id, kind: 'keyVault', actions, checks, kept };
}

async function applyBackup(context: RunbookContext, target: TargetConfig, policy: KeyVaultBackupPolicy, action: PlannedAction): Promise<ApplyResult> {
  const vault = parseResourceId(target.id).name;
  const secret = detail(action, 'secret');
  const blobName = detail(action, 'blob');
  const destination = destinationOf(policy);
  if (detail(action, 'vault') !== vault || blobName !== backupBlobName(vault, detail(action, 'day'), secret) || detail(action, 'container') !== destination.container) {
    throw new InvalidBackupActionError(`${action.id}: expected a backup of ${vault} into ${destination.container}/${vault}/<day>/${secret}, found blob ${blobName}`, {
      context: { resourceId: target.id, actionId: action.id },
    });
  }
  const blobId = `${destination.containerId}/blobs/${blobName}`;
  const container = await containerOf(context.clients, destination);
  await callAzure({ resourceId: destination.containerId, operation: 'create backup container' }, () => container.createIfNotExists());
  const blob = container.getBlockBlobClient(blobName);
  if (await callAzure({ resourceId: blobId, operation: 'check backup blob' }, () => blob.exists())) {
    return { outcome: 'skipped', message: `backup ${blobName} already exists` };
  }
  const secretClient = await context.clients.secretClient(vault);
  // Listing secrets gives no version; the versions list does, without reading any value.
  const versions = await callAzure({ resourceId: `${target.id}/secrets/${secret}`, operation: 'list secret versions' }, () =>
    collect(secretClient.listPropertiesOfSecretVersions(secret)),
  );
  const latest = versions.reduce<(typeof versions)[number] | undefined>(
    (newest, candidate) => (newest === undefined || (candidate.createdOn?.getTime() ?? 0) > (newest.createdOn?.getTime() ?? 0) ? candidate : newest),
    undefined,
  );
  const backup = await callAzure({ resourceId: `${target.id}/secrets/${secret}`, operation: 'back up secret' }, () => secretClient.backupSecret(secret));
  if (backup === undefined || backup.length === 0) {
    throw new EmptySecretBackupError(`back up secret ${secret} of ${vault}: expected a backup blob from Key Vault, found none`, {
      context: { resourceId: target.id, secret },
    });
  }
  const version = latest?.version;
  try {
    await callAzure({ resourceId: blobId, operation: 'upload secret backup' }, () =>
      blob.uploadData(backup, {
        blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
        metadata: {
          vault,
          secretname: secret,
          ...(version === undefined || version === '' ? {} : { secretversion: version }),
          backuptime: context.now().toISOString(),
        },
        // Another run may have written today's blob since the check above: never overwrite it.
        conditions: { ifNoneMatch: '*' },
      }),
    );
  } catch (error) {
    if (error instanceof ResourceConflictError) return { outcome: 'skipped', message: `backup ${blobName} was written concurrently` };
    throw error;
  }
  return { outcome: 'applied', message: `backed up ${secret} to ${destination.container}/${blobName} (${String(backup.length)} bytes)` };
}

async function applyDelete(context: RunbookContext, target: TargetConfig, policy: KeyVaultBackupPolicy, action: PlannedAction): Promise<ApplyResult> {
  const vault = parseResourceId(target.id).name;
  const blobName = detail(action, 'blob');
  const destination = destinationOf(policy);
  const parsed = parseBackupBlobName(vault, blobName);
  const today = backupDay(context.now());
  // Apply deletes only what the rules allow now, whatever the action says.
  if (parsed === undefined || daysBetween(parsed.day, today) <= policy.retentionDays || detail(action, 'container') !== destination.container) {
    throw new InvalidBackupActionError(
      `${action.id}: expected a backup of ${vault} in ${destination.container} older than ${String(policy.retentionDays)} days on ${today}, found ${detail(action, 'container')}/${blobName}`,
      { context: { resourceId: target.id, actionId: action.id } },
    );
  }
  const blobId = `${destination.containerId}/blobs/${blobName}`;
  const container = await containerOf(context.clients, destination);
  let deleted: boolean;
  try {
    const response = await callAzure({ resourceId: blobId, operation: 'delete expired backup' }, () => container.getBlobClient(blobName).deleteIfExists());
    deleted = response.succeeded;
  } catch (error) {
    if (error instanceof ResourceNotFoundError) return { outcome: 'skipped', message: `backup ${blobName} no longer exists` };
    throw error;
  }
  return deleted
    ? { outcome: 'applied', message: `deleted expired backup ${destination.container}/${blobName}` }
    : { outcome: 'skipped', message: `backup ${blobName} no longer exists` };
}

/** The `keyvault-backup` runbook. */
export const keyVaultBackupRunbook: Runbook<KeyVaultBackupPolicy> = {
  name: 'keyvault-backup',
  description: 'Back up every Key Vault secret (Key Vault backup blobs) to blob storage by day, and delete backups beyond the retention',
  policyOf: (target) => target.runbooks['keyvault-backup'],
  plan,
  apply(context, target, policy, action) {
    if (action.kind === BACKUP) return applyBackup(context, target, policy, action);
    if (action.kind === DELETE) return applyDelete(context, target, policy, action);
    return Promise.reject(
      new InvalidBackupActionError(`keyvault-backup on ${target.id}: expected an action of kind ${BACKUP} or ${DELETE}, found ${action.kind}`, {
        context: { resourceId: target.id, actionId: action.id },
      }),
    );
  },
};
