/**
 * The `backup-verify` runbook: checks that the estate can be restored, and changes nothing.
 *
 * Its plans hold checks only (no action ever), one set per target kind. Every check carries a
 * stable code, the expected and the found value; the code names the check, the status its result.
 *
 * PostgreSQL flexible server (policy `postgresBackupPolicySchema`):
 * | code | ok | warn | fail |
 * |---|---|---|---|
 * | `postgres.state` | `Ready` | `Starting`, `Stopping`, `Updating` (transient) | any other state (`Stopped`, `Disabled`, ...) or none |
 * | `postgres.backup.retention` | `backupRetentionDays` ≥ `minRetentionDays` | – | below, or not reported |
 * | `postgres.backup.geo-redundancy` | `Enabled`, or not required | – | required and not `Enabled` |
 * | `postgres.backup.newest-age` | newest completed backup ≤ `maxBackupAgeHours` old | – | older, or no completed backup at all |
 * | `postgres.pitr.window` | `earliestRestoreDate` ≤ now − `minRetentionDays` + 1 day | – | later, or not reported |
 *
 * There is deliberately no warn band on backup age: the limit (26 h by default for daily
 * backups) already holds the slack, and an "80 % of the limit" warning would fire every day on
 * a healthy server whose last daily backup is 21 h old. The PITR check measures against the
 * promised retention (`minRetentionDays`), with one day of grace because the earliest restore
 * point is the oldest full backup still kept, and full backups are daily.
 *
 * Storage account (policy `storageProtectionPolicySchema`):
 * | code | fail when |
 * |---|---|
 * | `storage.blob-soft-delete` | blob soft delete off, or fewer days than `minBlobSoftDeleteDays` |
 * | `storage.container-soft-delete` | `requireContainerSoftDelete` and off, or fewer days than `minContainerSoftDeleteDays` |
 * | `storage.versioning` | `requireVersioning` and blob versioning off |
 * | `storage.replication` | `requireGeoRedundancy` and the SKU is not GRS, RAGRS, GZRS or RAGZRS |
 *
 * Key Vault (policy `keyVaultProtectionPolicySchema`):
 * | code | fail when |
 * |---|---|
 * | `keyvault.soft-delete` | `requireSoftDelete` and `enableSoftDelete` is not true |
 * | `keyvault.purge-protection` | `requirePurgeProtection` and `enablePurgeProtection` is not true (ARM omits it when off) |
 *
 * A requirement the policy turns off still yields an `ok` check (expected "not required") so
 * that the run record shows what was found.
 */
import type { z } from 'zod';
import { parseResourceId, type ResourceId } from '../azure/resource-id.ts';
import { callAzure } from '../azure/errors.ts';
import {
  keyVaultProtectionPolicySchema,
  postgresBackupPolicySchema,
  RUNBOOK_KINDS,
  storageProtectionPolicySchema,
  type TargetConfig,
} from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { ChecksOnlyApplyError, DAY_MS, formatHours, formatInstant, HOUR_MS, UnsupportedTargetKindError } from './checks-only.ts';
import { collect } from '../util/collect.ts';
import { replicationOfSku } from './shared/storage-sku.ts';
import type { Check, CheckStatus, Runbook, RunbookContext, TargetPlan } from './runbook.ts';

/** `backup-verify` policy of a PostgreSQL flexible server. */
export type PostgresBackupPolicy = z.output<typeof postgresBackupPolicySchema>;
/** `backup-verify` policy of a storage account. */
export type StorageProtectionPolicy = z.output<typeof storageProtectionPolicySchema>;
/** `backup-verify` policy of a Key Vault. */
export type KeyVaultProtectionPolicy = z.output<typeof keyVaultProtectionPolicySchema>;
/** Any `backup-verify` policy; which one applies follows from the target's kind. */
export type BackupVerifyPolicy = PostgresBackupPolicy | StorageProtectionPolicy | KeyVaultProtectionPolicy;

/** The check codes of `backup-verify`, stable for alert routing and dashboards. */
export const BACKUP_VERIFY_CODES = {
  postgresState: 'postgres.state',
  postgresRetention: 'postgres.backup.retention',
  postgresGeoRedundancy: 'postgres.backup.geo-redundancy',
  postgresNewestBackupAge: 'postgres.backup.newest-age',
  postgresPitrWindow: 'postgres.pitr.window',
  storageBlobSoftDelete: 'storage.blob-soft-delete',
  storageContainerSoftDelete: 'storage.container-soft-delete',
  storageVersioning: 'storage.versioning',
  storageReplication: 'storage.replication',
  keyVaultSoftDelete: 'keyvault.soft-delete',
  keyVaultPurgeProtection: 'keyvault.purge-protection',
} as const;

/** PostgreSQL states in which the service is busy with a change and backups resume by themselves. */
const TRANSIENT_POSTGRES_STATES = new Set(['Starting', 'Stopping', 'Updating']);
/** Storage replications that keep a copy in the paired region. */
const GEO_REDUNDANT_REPLICATIONS = new Set(['GRS', 'RAGRS', 'GZRS', 'RAGZRS']);

/** A target's `backup-verify` policy does not fit the target's kind, or the kind is not checked. */
export class BackupVerifyPolicyError extends OpsAutopilotError {
  override readonly name: string = 'BackupVerifyPolicyError';

  constructor(targetId: string, expected: string, found: string) {
    super(`backup-verify on ${targetId}: expected ${expected}, found ${found}`, {
      context: { runbook: 'backup-verify', resourceId: targetId },
    });
  }
}

function check(status: CheckStatus, code: string, message: string, expected: string, found: string): Check {
  return { status, code, message, expected, found };
}

/** Validates a policy against the schema of the target's kind; the config union cannot tell them apart. */
function policyFor<S extends z.ZodType>(schema: S, target: TargetConfig, policy: BackupVerifyPolicy, kind: string): z.output<S> {
  const parsed = schema.safeParse(policy);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(policy)'}: ${issue.message}`).join('; ');
    throw new BackupVerifyPolicyError(target.id, `a ${kind} backup-verify policy`, issues);
  }
  return parsed.data;
}

/**
 * Checks of one PostgreSQL flexible server, given what ARM reports. Pure, so every threshold
 * can be reasoned about without the network.
 */
export function postgresChecks(
  name: string,
  facts: {
    readonly state: string | undefined;
    readonly backupRetentionDays: number | undefined;
    readonly geoRedundantBackup: string | undefined;
    readonly earliestRestoreDate: Date | undefined;
    /** Completion times of the completed backups (any order). */
    readonly completedBackups: readonly { readonly name: string; readonly completedTime: Date }[];
    /** Backups listed, completed or not. */
    readonly backupCount: number;
  },
  policy: PostgresBackupPolicy,
  now: Date,
): Check[] {
  const codes = BACKUP_VERIFY_CODES;
  const checks: Check[] = [];

  const state = facts.state;
  const stateStatus: CheckStatus = state === 'Ready' ? 'ok' : state !== undefined && TRANSIENT_POSTGRES_STATES.has(state) ? 'warn' : 'fail';
  checks.push(
    check(
      stateStatus,
      codes.postgresState,
      stateStatus === 'ok' ? `${name} is Ready` : `${name} is ${state ?? 'in an unreported state'}, not Ready`,
      'state Ready',
      state === undefined ? 'no state reported' : `state ${state}`,
    ),
  );

  const retention = facts.backupRetentionDays;
  const retentionOk = retention !== undefined && retention >= policy.minRetentionDays;
  checks.push(
    check(
      retentionOk ? 'ok' : 'fail',
      codes.postgresRetention,
      retentionOk
        ? `${name} keeps backups for ${String(retention)} days`
        : `${name} keeps backups for ${retention === undefined ? 'an unreported number of' : String(retention)} days, fewer than the ${String(policy.minRetentionDays)} promised`,
      `backup retention ≥ ${String(policy.minRetentionDays)} days`,
      retention === undefined ? 'no backup retention reported' : `${String(retention)} days`,
    ),
  );

  const geo = facts.geoRedundantBackup;
  const geoFound = `geo-redundant backup ${geo ?? 'not reported'}`;
  if (policy.requireGeoRedundantBackup) {
    const geoOk = geo === 'Enabled';
    checks.push(
      check(
        geoOk ? 'ok' : 'fail',
        codes.postgresGeoRedundancy,
        geoOk ? `${name} has geo-redundant backup` : `${name} has no geo-redundant backup, which the policy requires`,
        'geo-redundant backup Enabled',
        geoFound,
      ),
    );
  } else {
    checks.push(check('ok', codes.postgresGeoRedundancy, `${name}: geo-redundant backup not required`, 'not required', geoFound));
  }

  const limitText = `newest backup ≤ ${String(policy.maxBackupAgeHours)} h old`;
  let newest: { readonly name: string; readonly completedTime: Date } | undefined;
  for (const backup of facts.completedBackups) {
    if (newest === undefined || backup.completedTime > newest.completedTime) newest = backup;
  }
  if (newest === undefined) {
    checks.push(
      check(
        'fail',
        codes.postgresNewestBackupAge,
        `${name} has no completed backup`,
        limitText,
        `no completed backup (${String(facts.backupCount)} listed)`,
      ),
    );
  } else {
    const ageMs = now.getTime() - newest.completedTime.getTime();
    const fresh = ageMs <= policy.maxBackupAgeHours * HOUR_MS;
    checks.push(
      check(
        fresh ? 'ok' : 'fail',
        codes.postgresNewestBackupAge,
        fresh
          ? `${name}: newest backup ${newest.name} is ${formatHours(ageMs)} old`
          : `${name}: newest backup ${newest.name} is ${formatHours(ageMs)} old, over the ${String(policy.maxBackupAgeHours)} h limit`,
        limitText,
        `${formatHours(ageMs)} (completed ${formatInstant(newest.completedTime)})`,
      ),
    );
  }

  const promisedFrom = new Date(now.getTime() - policy.minRetentionDays * DAY_MS + DAY_MS);
  const pitrExpected = `earliest restore point ≤ ${formatInstant(promisedFrom)} (now − ${String(policy.minRetentionDays)} days + 1 day)`;
  const earliest = facts.earliestRestoreDate;
  if (earliest === undefined) {
    checks.push(check('fail', codes.postgresPitrWindow, `${name} reports no earliest restore point`, pitrExpected, 'no earliestRestoreDate reported'));
  } else {
    const windowMs = now.getTime() - earliest.getTime();
    const covered = earliest.getTime() <= promisedFrom.getTime();
    checks.push(
      check(
        covered ? 'ok' : 'fail',
        codes.postgresPitrWindow,
        covered
          ? `${name}: point-in-time restore reaches back ${formatHours(windowMs)}`
          : `${name}: point-in-time restore reaches back only ${formatHours(windowMs)}, not the ${String(policy.minRetentionDays)} days promised`,
        pitrExpected,
        `earliest restore point ${formatInstant(earliest)} (window ${formatHours(windowMs)}, ${(windowMs / DAY_MS).toFixed(1)} days)`,
      ),
    );
  }
  return checks;
}

/** Checks of one storage account's blob service protection and replication. Pure. */
export function storageChecks(
  name: string,
  facts: {
    readonly skuName: string | undefined;
    readonly blobSoftDelete: { readonly enabled: boolean; readonly days: number | undefined };
    readonly containerSoftDelete: { readonly enabled: boolean; readonly days: number | undefined };
    readonly versioning: boolean;
  },
  policy: StorageProtectionPolicy,
): Check[] {
  const codes = BACKUP_VERIFY_CODES;
  const describe = (protection: { enabled: boolean; days: number | undefined }): string =>
    protection.enabled ? `on, ${protection.days === undefined ? 'days not reported' : `${String(protection.days)} days`}` : 'off';
  const softDelete = (what: string, code: string, protection: { enabled: boolean; days: number | undefined }, minDays: number): Check => {
    const ok = protection.enabled && protection.days !== undefined && protection.days >= minDays;
    return check(
      ok ? 'ok' : 'fail',
      code,
      ok
        ? `${name}: ${what} soft delete keeps ${String(protection.days)} days`
        : protection.enabled
          ? `${name}: ${what} soft delete keeps ${protection.days === undefined ? 'an unreported number of' : String(protection.days)} days, fewer than ${String(minDays)}`
          : `${name}: ${what} soft delete is off`,
      `${what} soft delete on, ≥ ${String(minDays)} days`,
      describe(protection),
    );
  };

  const checks: Check[] = [softDelete('blob', codes.storageBlobSoftDelete, facts.blobSoftDelete, policy.minBlobSoftDeleteDays)];
  checks.push(
    policy.requireContainerSoftDelete
      ? softDelete('container', codes.storageContainerSoftDelete, facts.containerSoftDelete, policy.minContainerSoftDeleteDays)
      : check('ok', codes.storageContainerSoftDelete, `${name}: container soft delete not required`, 'not required', describe(facts.containerSoftDelete)),
  );
  const versioningFound = facts.versioning ? 'versioning on' : 'versioning off';
  checks.push(
    policy.requireVersioning
      ? check(
          facts.versioning ? 'ok' : 'fail',
          codes.storageVersioning,
          facts.versioning ? `${name}: blob versioning is on` : `${name}: blob versioning is off, which the policy requires`,
          'versioning on',
          versioningFound,
        )
      : check('ok', codes.storageVersioning, `${name}: blob versioning not required`, 'not required', versioningFound),
  );
  const replication = replicationOfSku(facts.skuName);
  const replicationFound = facts.skuName === undefined ? 'no SKU reported' : `${facts.skuName} (${replication ?? 'unknown replication'})`;
  if (policy.requireGeoRedundancy) {
    const geo = replication !== undefined && GEO_REDUNDANT_REPLICATIONS.has(replication);
    checks.push(
      check(
        geo ? 'ok' : 'fail',
        codes.storageReplication,
        geo ? `${name} is geo-redundant (${replication})` : `${name} is not geo-redundant (${replication ?? 'unknown'})`,
        'geo-redundant replication (GRS, RAGRS, GZRS or RAGZRS)',
        replicationFound,
      ),
    );
  } else {
    checks.push(check('ok', codes.storageReplication, `${name}: geo-redundancy not required`, 'not required', replicationFound));
  }
  return checks;
}

/** Checks of one Key Vault's recovery settings. Pure. */
export function keyVaultChecks(
  name: string,
  facts: { readonly enableSoftDelete: boolean | undefined; readonly softDeleteRetentionInDays: number | undefined; readonly enablePurgeProtection: boolean | undefined },
  policy: KeyVaultProtectionPolicy,
): Check[] {
  const codes = BACKUP_VERIFY_CODES;
  // Both flags absent mean off: ARM omits enablePurgeProtection unless it was turned on, and a
  // vault without enableSoftDelete predates soft delete by default.
  const softDeleteOn = facts.enableSoftDelete === true;
  const softDeleteFound =
    facts.enableSoftDelete === undefined
      ? 'enableSoftDelete not set (off)'
      : softDeleteOn
        ? `soft delete on${facts.softDeleteRetentionInDays === undefined ? '' : `, ${String(facts.softDeleteRetentionInDays)} days`}`
        : 'soft delete off';
  const purgeOn = facts.enablePurgeProtection === true;
  const purgeFound = facts.enablePurgeProtection === undefined ? 'enablePurgeProtection not set (off)' : purgeOn ? 'purge protection on' : 'purge protection off';
  return [
    policy.requireSoftDelete
      ? check(
          softDeleteOn ? 'ok' : 'fail',
          codes.keyVaultSoftDelete,
          softDeleteOn ? `${name} has soft delete on` : `${name} has soft delete off`,
          'soft delete on',
          softDeleteFound,
        )
      : check('ok', codes.keyVaultSoftDelete, `${name}: soft delete not required`, 'not required', softDeleteFound),
    policy.requirePurgeProtection
      ? check(
          purgeOn ? 'ok' : 'fail',
          codes.keyVaultPurgeProtection,
          purgeOn ? `${name} has purge protection on` : `${name} has purge protection off: a deleted secret can be purged before anyone notices`,
          'purge protection on',
          purgeFound,
        )
      : check('ok', codes.keyVaultPurgeProtection, `${name}: purge protection not required`, 'not required', purgeFound),
  ];
}

async function planPostgres(context: RunbookContext, id: ResourceId, policy: PostgresBackupPolicy): Promise<Check[]> {
  const client = await context.clients.postgresClient(id.subscriptionId);
  const server = await callAzure({ resourceId: id.id, operation: 'get PostgreSQL flexible server' }, () =>
    client.servers.get(id.resourceGroup, id.name),
  );
  const backups = await callAzure({ resourceId: `${id.id}/backups`, operation: 'list PostgreSQL backups' }, () =>
    collect(client.backupsAutomaticAndOnDemand.listByServer(id.resourceGroup, id.name)),
  );
  const completedBackups = backups.flatMap((backup) =>
    backup.completedTime === undefined ? [] : [{ name: backup.name ?? '(unnamed)', completedTime: backup.completedTime }],
  );
  return postgresChecks(
    id.name,
    {
      state: server.state,
      backupRetentionDays: server.backup?.backupRetentionDays,
      geoRedundantBackup: server.backup?.geoRedundantBackup,
      earliestRestoreDate: server.backup?.earliestRestoreDate,
      completedBackups,
      backupCount: backups.length,
    },
    policy,
    context.now(),
  );
}

async function planStorage(context: RunbookContext, id: ResourceId, policy: StorageProtectionPolicy): Promise<Check[]> {
  const client = await context.clients.storageClient(id.subscriptionId);
  const account = await callAzure({ resourceId: id.id, operation: 'get storage account' }, () =>
    client.storageAccounts.getProperties(id.resourceGroup, id.name),
  );
  const blob = await callAzure({ resourceId: `${id.id}/blobServices/default`, operation: 'get blob service properties' }, () =>
    client.blobServices.getServiceProperties(id.resourceGroup, id.name),
  );
  const protection = (value: { enabled?: boolean; days?: number } | undefined): { enabled: boolean; days: number | undefined } => ({
    enabled: value?.enabled === true,
    days: value?.days,
  });
  return storageChecks(
    id.name,
    {
      skuName: account.sku?.name,
      blobSoftDelete: protection(blob.deleteRetentionPolicy),
      containerSoftDelete: protection(blob.containerDeleteRetentionPolicy),
      versioning: blob.isVersioningEnabled === true,
    },
    policy,
  );
}

async function planKeyVault(context: RunbookContext, id: ResourceId, policy: KeyVaultProtectionPolicy): Promise<Check[]> {
  const client = await context.clients.keyVaultManagementClient(id.subscriptionId);
  const vault = await callAzure({ resourceId: id.id, operation: 'get Key Vault' }, () => client.vaults.get(id.resourceGroup, id.name));
  return keyVaultChecks(
    id.name,
    {
      enableSoftDelete: vault.properties.enableSoftDelete,
      softDeleteRetentionInDays: vault.properties.softDeleteRetentionInDays,
      enablePurgeProtection: vault.properties.enablePurgeProtection,
    },
    policy,
  );
}

/**
 * `backup-verify`: read-only checks of PostgreSQL backups and PITR, storage soft delete,
 * versioning and replication, and Key Vault soft delete and purge protection.
 *
 * `plan` makes only GET calls and returns checks, never actions; `apply` always throws
 * {@link ChecksOnlyApplyError}. Read failures are typed `AzureOperationError`s naming the
 * resource (e.g. `ResourceNotFoundError` for a configured server that does not exist).
 */
export const backupVerifyRunbook: Runbook<BackupVerifyPolicy> = {
  name: 'backup-verify',
  description: 'Check PostgreSQL backups and point-in-time restore, storage soft delete and redundancy, Key Vault soft delete and purge protection',
  policyOf(target) {
    return target.runbooks['backup-verify'];
  },
  async plan(context, target, policy): Promise<TargetPlan> {
    const id = parseResourceId(target.id);
    let checks: Check[];
    switch (id.kind) {
      case 'postgresFlexibleServer':
        checks = await planPostgres(context, id, policyFor(postgresBackupPolicySchema, target, policy, 'PostgreSQL'));
        break;
      case 'storageAccount':
        checks = await planStorage(context, id, policyFor(storageProtectionPolicySchema, target, policy, 'storage account'));
        break;
      case 'keyVault':
        checks = await planKeyVault(context, id, policyFor(keyVaultProtectionPolicySchema, target, policy, 'Key Vault'));
        break;
      default:
        throw new UnsupportedTargetKindError('backup-verify', target.id, RUNBOOK_KINDS['backup-verify'], id.kind ?? id.type);
    }
    return { targetId: id.id, kind: id.kind, actions: [], checks, kept: [] };
  },
  apply(_context, target, _policy, action) {
    return Promise.reject(new ChecksOnlyApplyError('backup-verify', target, action));
  },
};
