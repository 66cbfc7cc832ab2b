/**
 * The `backup-verify` runbook against the sandbox through the real client layer: every check of
 * every kind over the seed worlds and their planted problems (kilometers' short PITR window and
 * 3-day retention, lms' stale backup, limpopo's unprotected storage and vault), policy variations
 * through config edits, an extra "edge" world for states the seed worlds do not have (stopped and
 * updating servers, no backups, short soft delete, a vault without soft delete), a read-only plan
 * proven by the request log, per-target independence, and `apply` refusing any action.
 */
import { describe, expect, it } from 'vitest';
import { ResourceNotFoundError } from '../../../src/azure/errors.ts';
import type { EstateConfig, TargetConfig } from '../../../src/config/schema.ts';
import {
  BACKUP_VERIFY_CODES,
  BackupVerifyPolicyError,
  backupVerifyRunbook,
  postgresChecks,
  type BackupVerifyPolicy,
} from '../../../src/runbooks/backup-verify.ts';
import { ChecksOnlyApplyError, DAY_MS, formatInstant, HOUR_MS, UnsupportedTargetKindError } from '../../../src/runbooks/checks-only.ts';
import { targetsFor, type Check, type TargetPlan } from '../../../src/runbooks/runbook.ts';
import { mutatingRequests, runbookContextFor, withRunbookPolicy, writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const codes = BACKUP_VERIFY_CODES;
const EDGE_SUBSCRIPTION = '6a615fa7-0b1c-4d2e-8f30-4a5b6c7d8e01';

/** States the seed worlds do not have; written to a temp file because worlds are files. */
function writeEdgeWorld(): string {
  return writeWorldFile(
    'backup-edge',
    `name: backup-edge
description: backup-verify edge cases
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${EDGE_SUBSCRIPTION}
plantedProblems: []
resources:
  - type: Microsoft.DBforPostgreSQL/flexibleServers
    resourceGroup: rg-edge
    name: psql-edge-stopped
    location: westeurope
    spec: { administratorLogin: edgeadmin, state: Stopped, backupRetentionDays: 7, backups: { newestHoursAgo: 1, intervalHours: 24, count: 0 } }
  - type: Microsoft.DBforPostgreSQL/flexibleServers
    resourceGroup: rg-edge
    name: psql-edge-updating
    location: westeurope
    spec: { administratorLogin: edgeadmin, state: Updating, backupRetentionDays: 14, geoRedundantBackup: Enabled, backups: { newestHoursAgo: 2, intervalHours: 24 } }
  - type: Microsoft.Storage/storageAccounts
    resourceGroup: rg-edge
    name: stedgeshort
    location: westeurope
    spec: { sku: Standard_RAGZRS, blobSoftDelete: { enabled: true, days: 3 }, containerSoftDelete: { enabled: true, days: 2 }, versioning: true }
  - type: Microsoft.KeyVault/vaults
    resourceGroup: rg-edge
    name: kv-edge-nosoftdelete
    location: westeurope
    spec: { enableSoftDelete: false, enablePurgeProtection: true }
`,
  );
}

/** A config edit that sets a target's backup-verify policy. */
const withPolicy = (name: string, policy: BackupVerifyPolicy): ((config: EstateConfig) => EstateConfig) => withRunbookPolicy('backup-verify', name, policy);

function checkOf(plan: TargetPlan | undefined, code: string): Check {
  const found = plan?.checks.find((candidate) => candidate.code === code);
  if (found === undefined) throw new Error(`plan of ${plan?.targetId ?? '(no plan)'}: expected a ${code} check, found none`);
  return found;
}

describe('backup-verify runbook', () => {
  const sandbox = useSandbox({
    worlds: ['sandbox/worlds/limpopo-connect.yaml', 'sandbox/worlds/kilometers.yaml', 'sandbox/worlds/lms.yaml', 'sandbox/worlds/xshopai.yaml', writeEdgeWorld()],
    postgres: false,
    azurite: false,
  });

  /** Plans every opted-in target of a world, keyed by resource name; one fixed `now` for exact evidence. */
  async function planWorld(world: string, edit?: (config: EstateConfig) => EstateConfig): Promise<{ plans: Map<string, TargetPlan>; now: Date }> {
    const now = new Date();
    const ctx = await runbookContextFor(sandbox(), world, { ...(edit === undefined ? {} : { edit }), now: () => now });
    try {
      const plans = new Map<string, TargetPlan>();
      for (const { target, policy } of targetsFor(backupVerifyRunbook, ctx.config)) {
        const plan = await backupVerifyRunbook.plan(ctx.context, target, policy);
        expect(plan.actions).toEqual([]);
        expect(plan.kept).toEqual([]);
        plans.set(target.id.split('/').at(-1) ?? '', plan);
      }
      return { plans, now };
    } finally {
      await ctx.close();
    }
  }

  /** The edge world has no example config: give each of its resources a policy. */
  const edgePolicies = (config: EstateConfig): EstateConfig =>
    [
      withPolicy('psql-edge-stopped', { minRetentionDays: 7, maxBackupAgeHours: 26, requireGeoRedundantBackup: false }),
      withPolicy('psql-edge-updating', { minRetentionDays: 14, maxBackupAgeHours: 26, requireGeoRedundantBackup: true }),
      withPolicy('stedgeshort', { minBlobSoftDeleteDays: 7, requireContainerSoftDelete: true, minContainerSoftDeleteDays: 7, requireVersioning: true, requireGeoRedundancy: true }),
      withPolicy('kv-edge-nosoftdelete', { requireSoftDelete: true, requirePurgeProtection: true }),
    ].reduce((edited, edit) => edit(edited), config);

  describe('PostgreSQL flexible servers', () => {
    it('kilometers: a 3-day retention and a 30-hour PITR window fail against the 7 days promised', async () => {
      const { plans, now } = await planWorld('kilometers');
      const server = plans.get('psql-kilometers-prod-k7x2');
      expect(checkOf(server, codes.postgresRetention)).toMatchObject({ status: 'fail', expected: 'backup retention ≥ 7 days', found: '3 days' });
      const pitr = checkOf(server, codes.postgresPitrWindow);
      expect(pitr.status).toBe('fail');
      expect(pitr.expected).toBe(`earliest restore point ≤ ${formatInstant(new Date(now.getTime() - 6 * DAY_MS))} (now − 7 days + 1 day)`);
      expect(pitr.found).toMatch(/^earliest restore point \d{4}-\d\d-\d\dT\d\d:\d\dZ \(window 30\.0 h, 1\.3 days\)$/);
      expect(pitr.message).toContain('psql-kilometers-prod-k7x2');
      // The rest of the server is healthy: the failures are exactly the planted ones.
      expect(checkOf(server, codes.postgresNewestBackupAge)).toMatchObject({ status: 'ok', expected: 'newest backup ≤ 26 h old' });
      expect(checkOf(server, codes.postgresNewestBackupAge).found).toMatch(/^4\.0 h \(completed /);
      expect(checkOf(server, codes.postgresState)).toMatchObject({ status: 'ok', found: 'state Ready' });
      expect(checkOf(server, codes.postgresGeoRedundancy)).toMatchObject({ status: 'ok', expected: 'not required', found: 'geo-redundant backup Disabled' });
    });

    it('lms: the newest backup, 74 hours old, fails the 26-hour limit with its completion time', async () => {
      const { plans, now } = await planWorld('lms');
      const age = checkOf(plans.get('psql-lms-prod'), codes.postgresNewestBackupAge);
      expect(age.status).toBe('fail');
      expect(age.expected).toBe('newest backup ≤ 26 h old');
      expect(age.found).toBe(`74.0 h (completed ${formatInstant(new Date(now.getTime() - 74 * HOUR_MS))})`);
      // Four daily backups from 74 h back reach 146 h: the 7-day PITR promise (144 h) still holds.
      expect(checkOf(plans.get('psql-lms-prod'), codes.postgresPitrWindow).status).toBe('ok');
      expect(checkOf(plans.get('psql-lms-prod'), codes.postgresRetention)).toMatchObject({ status: 'ok', found: '7 days' });
    });

    it('limpopo and xshopai: healthy servers pass every check', async () => {
      for (const [world, name] of [['limpopo-connect', 'psql-limpopo-connect-prod'], ['xshopai', 'psql-xshopai-prod']] as const) {
        const { plans } = await planWorld(world);
        const server = plans.get(name);
        expect(server?.kind).toBe('postgresFlexibleServer');
        expect(server?.checks.map((check) => [check.code, check.status])).toEqual([
          [codes.postgresState, 'ok'],
          [codes.postgresRetention, 'ok'],
          [codes.postgresGeoRedundancy, 'ok'],
          [codes.postgresNewestBackupAge, 'ok'],
          [codes.postgresPitrWindow, 'ok'],
        ]);
      }
    });

    it('geo-redundant backup: required and Disabled fails, required and Enabled passes', async () => {
      const policy = { minRetentionDays: 7, maxBackupAgeHours: 26, requireGeoRedundantBackup: true };
      const limpopo = await planWorld('limpopo-connect', withPolicy('psql-limpopo-connect-prod', policy));
      expect(checkOf(limpopo.plans.get('psql-limpopo-connect-prod'), codes.postgresGeoRedundancy)).toMatchObject({
        status: 'fail',
        expected: 'geo-redundant backup Enabled',
        found: 'geo-redundant backup Disabled',
      });
      const xshopai = await planWorld('xshopai', withPolicy('psql-xshopai-prod', { ...policy, minRetentionDays: 35 }));
      expect(checkOf(xshopai.plans.get('psql-xshopai-prod'), codes.postgresGeoRedundancy)).toMatchObject({ status: 'ok', found: 'geo-redundant backup Enabled' });
    });

    it('a stricter policy turns a healthy server into findings (retention, backup age)', async () => {
      const { plans } = await planWorld('xshopai', withPolicy('psql-xshopai-prod', { minRetentionDays: 35, maxBackupAgeHours: 2, requireGeoRedundantBackup: false }));
      const age = checkOf(plans.get('psql-xshopai-prod'), codes.postgresNewestBackupAge);
      expect(age).toMatchObject({ status: 'fail', expected: 'newest backup ≤ 2 h old' });
      expect(age.found).toMatch(/^6\.0 h \(completed /); // xshopai's newest backup is 6 h old
      const limpopo = await planWorld('limpopo-connect', withPolicy('psql-limpopo-connect-prod', { minRetentionDays: 14, maxBackupAgeHours: 26, requireGeoRedundantBackup: false }));
      const server = limpopo.plans.get('psql-limpopo-connect-prod');
      expect(checkOf(server, codes.postgresRetention)).toMatchObject({ status: 'fail', expected: 'backup retention ≥ 14 days', found: '7 days' });
      // Seven daily backups reach back 149 h, short of the 13 days a 14-day promise needs.
      expect(checkOf(server, codes.postgresPitrWindow).status).toBe('fail');
    });

    it('edge: a stopped server without backups fails state, age and PITR; an updating one warns', async () => {
      const { plans } = await planWorld('backup-edge', edgePolicies);
      const stopped = plans.get('psql-edge-stopped');
      expect(checkOf(stopped, codes.postgresState)).toMatchObject({ status: 'fail', expected: 'state Ready', found: 'state Stopped' });
      expect(checkOf(stopped, codes.postgresNewestBackupAge)).toMatchObject({ status: 'fail', found: 'no completed backup (0 listed)' });
      expect(checkOf(stopped, codes.postgresPitrWindow).status).toBe('fail');
      const updating = plans.get('psql-edge-updating');
      expect(checkOf(updating, codes.postgresState)).toMatchObject({ status: 'warn', found: 'state Updating' });
      expect(updating?.checks.filter((check) => check.status !== 'ok').map((check) => check.code)).toEqual([codes.postgresState]);
    });

    it('backup age: exactly at the limit passes, beyond it fails; the newest completed backup counts', () => {
      const now = new Date('2026-11-23T16:00:00Z');
      const policy = { minRetentionDays: 7, maxBackupAgeHours: 26, requireGeoRedundantBackup: false };
      const facts = (newestHoursAgo: number) => ({
        state: 'Ready',
        backupRetentionDays: 7,
        geoRedundantBackup: 'Disabled',
        earliestRestoreDate: new Date(now.getTime() - 6 * DAY_MS),
        completedBackups: [
          { name: 'older', completedTime: new Date(now.getTime() - (newestHoursAgo + 24) * HOUR_MS) },
          { name: 'newest', completedTime: new Date(now.getTime() - newestHoursAgo * HOUR_MS) },
        ],
        backupCount: 3,
      });
      const age = (hours: number): Check => checkOf({ targetId: 'x', kind: 'postgresFlexibleServer', actions: [], kept: [], checks: postgresChecks('psql-x', facts(hours), policy, now) }, codes.postgresNewestBackupAge);
      expect(age(26)).toMatchObject({ status: 'ok', found: '26.0 h (completed 2026-11-22T14:00Z)' });
      expect(age(26.05)).toMatchObject({ status: 'fail', found: '26.1 h (completed 2026-11-22T13:57Z)' });
      expect(age(26).message).toContain('newest');
      const pitr = checkOf({ targetId: 'x', kind: 'postgresFlexibleServer', actions: [], kept: [], checks: postgresChecks('psql-x', facts(1), policy, now) }, codes.postgresPitrWindow);
      expect(pitr).toMatchObject({ status: 'ok', expected: 'earliest restore point ≤ 2026-11-17T16:00Z (now − 7 days + 1 day)' });
    });
  });

  describe('storage accounts', () => {
    it('limpopo: blob and container soft delete off and LRS fail', async () => {
      const { plans } = await planWorld('limpopo-connect');
      const account = plans.get('stlimpopoconnect');
      expect(account?.kind).toBe('storageAccount');
      expect(checkOf(account, codes.storageBlobSoftDelete)).toMatchObject({ status: 'fail', expected: 'blob soft delete on, ≥ 7 days', found: 'off' });
      expect(checkOf(account, codes.storageContainerSoftDelete)).toMatchObject({ status: 'fail', expected: 'container soft delete on, ≥ 7 days', found: 'off' });
      expect(checkOf(account, codes.storageReplication)).toMatchObject({
        status: 'fail',
        expected: 'geo-redundant replication (GRS, RAGRS, GZRS or RAGZRS)',
        found: 'Standard_LRS (LRS)',
      });
      expect(checkOf(account, codes.storageVersioning)).toMatchObject({ status: 'ok', expected: 'not required', found: 'versioning off' });
    });

    it('kilometers: versioned GRS account passes, also when geo-redundancy is required', async () => {
      const { plans } = await planWorld('kilometers');
      expect(plans.get('stkilometersk7x2')?.checks.every((check) => check.status === 'ok')).toBe(true);
      expect(checkOf(plans.get('stkilometersk7x2'), codes.storageVersioning)).toMatchObject({ expected: 'versioning on', found: 'versioning on' });
      const strict = await planWorld(
        'kilometers',
        withPolicy('stkilometersk7x2', { minBlobSoftDeleteDays: 7, requireContainerSoftDelete: true, minContainerSoftDeleteDays: 7, requireVersioning: true, requireGeoRedundancy: true }),
      );
      expect(checkOf(strict.plans.get('stkilometersk7x2'), codes.storageReplication)).toMatchObject({ status: 'ok', found: 'Standard_GRS (GRS)' });
    });

    it('lms: fewer soft-delete days than the policy fail; versioning required and off fails; container soft delete can be waived', async () => {
      const { plans } = await planWorld(
        'lms',
        withPolicy('stlmsprod', { minBlobSoftDeleteDays: 14, requireContainerSoftDelete: false, minContainerSoftDeleteDays: 7, requireVersioning: true, requireGeoRedundancy: false }),
      );
      const account = plans.get('stlmsprod');
      expect(checkOf(account, codes.storageBlobSoftDelete)).toMatchObject({ status: 'fail', expected: 'blob soft delete on, ≥ 14 days', found: 'on, 7 days' });
      expect(checkOf(account, codes.storageContainerSoftDelete)).toMatchObject({ status: 'ok', expected: 'not required', found: 'on, 7 days' });
      expect(checkOf(account, codes.storageVersioning)).toMatchObject({ status: 'fail', expected: 'versioning on', found: 'versioning off' });
      expect(checkOf(account, codes.storageReplication)).toMatchObject({ status: 'ok', expected: 'not required', found: 'Standard_ZRS (ZRS)' });
    });

    it('edge: short container soft delete fails; RAGZRS counts as geo-redundant', async () => {
      const { plans } = await planWorld('backup-edge', edgePolicies);
      const account = plans.get('stedgeshort');
      expect(checkOf(account, codes.storageBlobSoftDelete)).toMatchObject({ status: 'fail', found: 'on, 3 days' });
      expect(checkOf(account, codes.storageContainerSoftDelete)).toMatchObject({ status: 'fail', found: 'on, 2 days' });
      expect(checkOf(account, codes.storageReplication)).toMatchObject({ status: 'ok', found: 'Standard_RAGZRS (RAGZRS)' });
      expect(checkOf(account, codes.storageVersioning)).toMatchObject({ status: 'ok', found: 'versioning on' });
    });
  });

  describe('Key Vaults', () => {
    it('limpopo: purge protection off (ARM omits the flag) fails; soft delete on passes', async () => {
      const { plans } = await planWorld('limpopo-connect');
      const vault = plans.get('kv-limpopo-connect');
      expect(vault?.kind).toBe('keyVault');
      expect(checkOf(vault, codes.keyVaultPurgeProtection)).toMatchObject({
        status: 'fail',
        expected: 'purge protection on',
        found: 'enablePurgeProtection not set (off)',
      });
      expect(checkOf(vault, codes.keyVaultSoftDelete)).toMatchObject({ status: 'ok', found: 'soft delete on, 90 days' });
    });

    it('a policy that does not require purge protection reports it without failing', async () => {
      const { plans } = await planWorld('limpopo-connect', withPolicy('kv-limpopo-connect', { requireSoftDelete: true, requirePurgeProtection: false }));
      expect(checkOf(plans.get('kv-limpopo-connect'), codes.keyVaultPurgeProtection)).toMatchObject({ status: 'ok', expected: 'not required' });
    });

    it('xshopai passes; edge: a vault without soft delete fails', async () => {
      const { plans } = await planWorld('xshopai');
      expect(plans.get('kv-xshopai-prod')?.checks.map((check) => [check.code, check.status, check.found])).toEqual([
        [codes.keyVaultSoftDelete, 'ok', 'soft delete on, 90 days'],
        [codes.keyVaultPurgeProtection, 'ok', 'purge protection on'],
      ]);
      const edge = await planWorld('backup-edge', edgePolicies);
      expect(checkOf(edge.plans.get('kv-edge-nosoftdelete'), codes.keyVaultSoftDelete)).toMatchObject({ status: 'fail', expected: 'soft delete on', found: 'soft delete off' });
    });
  });

  it('plan makes no mutating call (request log) over every world and kind', async () => {
    await sandbox().clearRequests();
    for (const world of ['limpopo-connect', 'kilometers', 'lms', 'xshopai']) await planWorld(world);
    await planWorld('backup-edge', edgePolicies);
    const log = await sandbox().requests();
    const operations = new Set(log.map((entry) => entry.operationId));
    // The log really covers the reads of all three kinds.
    expect(operations).toContain('Microsoft.DBforPostgreSQL/flexibleServers/backups.listByServer');
    expect([...operations].some((operation) => operation?.includes('blobServices') === true)).toBe(true);
    expect([...operations].some((operation) => operation?.includes('KeyVault/vaults') === true)).toBe(true);
    expect(mutatingRequests(log)).toEqual([]);
  });

  it('a missing server fails its own plan with a typed error naming it; the other targets plan independently', async () => {
    const missing = '/subscriptions/5f504e96-b142-4ec0-8e99-50424fa25005/resourceGroups/rg-kilometers-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-kilometers-missing';
    const addMissing = (config: EstateConfig): EstateConfig => ({
      ...config,
      targets: [{ id: missing, runbooks: { 'backup-verify': { minRetentionDays: 7, maxBackupAgeHours: 26, requireGeoRedundantBackup: false } } }, ...config.targets],
    });
    const ctx = await runbookContextFor(sandbox(), 'kilometers', { edit: addMissing });
    try {
      const selected = targetsFor(backupVerifyRunbook, ctx.config);
      expect(selected.map(({ target }) => target.id.split('/').at(-1))).toEqual(['psql-kilometers-missing', 'psql-kilometers-prod-k7x2', 'kv-kilometers-k7x2', 'stkilometersk7x2']);
      // Each plan on its own, as the executor calls them: the first one failing changes nothing for the others.
      const results = await Promise.allSettled(selected.map(({ target, policy }) => backupVerifyRunbook.plan(ctx.context, target, policy)));
      const [first, ...rest] = results;
      expect(first?.status).toBe('rejected');
      const error: unknown = first?.status === 'rejected' ? first.reason : undefined;
      expect(error).toBeInstanceOf(ResourceNotFoundError);
      expect((error as ResourceNotFoundError).resourceId).toBe(missing);
      expect((error as Error).message).toContain('psql-kilometers-missing');
      expect((error as Error).message).toMatch(/expected the resource to exist, found HTTP 404/);
      expect(rest.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      const server = rest[0]?.status === 'fulfilled' ? rest[0].value : undefined;
      expect(checkOf(server, codes.postgresPitrWindow).status).toBe('fail');
    } finally {
      await ctx.close();
    }
  });

  it('apply refuses any action with a typed error; a policy of the wrong kind and an unsupported kind are typed errors', async () => {
    const ctx = await runbookContextFor(sandbox(), 'lms');
    try {
      const [{ target, policy }] = targetsFor(backupVerifyRunbook, ctx.config) as [{ target: TargetConfig; policy: BackupVerifyPolicy }];
      const action = { id: 'x:1', kind: 'delete-backup', resource: 'psql-lms-prod/backups/x', description: 'not planned', destructive: true, details: {} };
      await expect(backupVerifyRunbook.apply(ctx.context, target, policy, action)).rejects.toBeInstanceOf(ChecksOnlyApplyError);
      await expect(backupVerifyRunbook.apply(ctx.context, target, policy, action)).rejects.toThrow(/expected no action to apply .* found action x:1/);

      const storage = ctx.config.targets.find((candidate) => candidate.id.endsWith('/stlmsprod'));
      if (storage === undefined) throw new Error('lms config: expected stlmsprod');
      const wrong = backupVerifyRunbook.plan(ctx.context, storage, { minRetentionDays: 7, maxBackupAgeHours: 26, requireGeoRedundantBackup: false });
      await expect(wrong).rejects.toBeInstanceOf(BackupVerifyPolicyError);
      await expect(wrong).rejects.toThrow(/stlmsprod: expected a storage account backup-verify policy, found/);

      const site: TargetConfig = { id: '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.Web/sites/app-lms', runbooks: {} };
      await expect(backupVerifyRunbook.plan(ctx.context, site, policy)).rejects.toBeInstanceOf(UnsupportedTargetKindError);
    } finally {
      await ctx.close();
    }
  });
});
