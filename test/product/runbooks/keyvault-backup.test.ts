/**
 * The `keyvault-backup` runbook against the sandbox (xshopai's kv-xshopai-prod, 31 secrets of
 * which one is certificate-backed) and Azurite (stxshopaiprod), through the real client layer:
 * blob paths and metadata read back from Azurite, certificate-backed secrets skipped, a second
 * run on the same day planning nothing, retention (never the newest backup of a secret), a
 * read-only plan, a failing vault not stopping the other, and the backups restoring in another
 * vault through the sandbox's restore route.
 */
import { describe, expect, it } from 'vitest';
import { isRestError } from '@azure/core-rest-pipeline';
import { ResourceNotFoundError } from '../../../src/azure/errors.ts';
import type { EstateConfig, TargetConfig } from '../../../src/config/schema.ts';
import { collect } from '../../../src/util/collect.ts';
import { backupDay, keyVaultBackupRunbook, parseBackupBlobName, type KeyVaultBackupPolicy } from '../../../src/runbooks/keyvault-backup.ts';
import type { PlannedAction, TargetPlan } from '../../../src/runbooks/runbook.ts';
import { mutatingRequests, runbookContextFor, type TestRunbookContext } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SUBSCRIPTION = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const VAULT = 'kv-xshopai-prod';
const VAULT_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-xshopai-prod/providers/Microsoft.KeyVault/vaults/${VAULT}`;
const MISSING_VAULT_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-xshopai-prod/providers/Microsoft.KeyVault/vaults/kv-xshopai-missing`;
const ACCOUNT = 'stxshopaiprod';
const CONTAINER = 'keyvault-backups';
const CERTIFICATE_BACKED = 'api-xshopai-com';
const DAY_MS = 24 * 3_600_000;

/** The xshopai config plus a second keyvault-backup target for a vault the sandbox does not have. */
function withMissingVault(config: EstateConfig): EstateConfig {
  const existing = config.targets.find((target) => target.id === VAULT_ID);
  const policy = existing?.runbooks['keyvault-backup'];
  if (policy === undefined) throw new Error('xshopai config: expected a keyvault-backup policy on kv-xshopai-prod, found none');
  return { ...config, targets: [{ id: MISSING_VAULT_ID, runbooks: { 'keyvault-backup': policy } }, ...config.targets] };
}

describe('keyvault-backup runbook', () => {
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml', 'sandbox/worlds/limpopo-connect.yaml'], postgres: false, azurite: true });
  // One clock for the whole file, so a run across midnight UTC cannot split "today".
  const NOW = new Date();
  const today = backupDay(NOW);

  async function withContext<T>(work: (ctx: TestRunbookContext) => Promise<T>): Promise<T> {
    const ctx = await runbookContextFor(sandbox(), 'xshopai', { edit: withMissingVault, now: () => NOW });
    try {
      return await work(ctx);
    } finally {
      await ctx.close();
    }
  }

  function targetOf(config: EstateConfig, id: string): { target: TargetConfig; policy: KeyVaultBackupPolicy } {
    const target = config.targets.find((candidate) => candidate.id === id);
    const policy = target === undefined ? undefined : keyVaultBackupRunbook.policyOf(target);
    if (target === undefined || policy === undefined) throw new Error(`config: expected a keyvault-backup target ${id}, found none`);
    return { target, policy };
  }

  async function planVault(): Promise<{ plan: TargetPlan; policy: KeyVaultBackupPolicy }> {
    return withContext(async ({ context, config }) => {
      const { target, policy } = targetOf(config, VAULT_ID);
      return { plan: await keyVaultBackupRunbook.plan(context, target, policy), policy };
    });
  }

  async function applyAll(actions: readonly PlannedAction[]): Promise<string[]> {
    return withContext(async ({ context, config }) => {
      const { target, policy } = targetOf(config, VAULT_ID);
      const outcomes: string[] = [];
      for (const action of actions) outcomes.push((await keyVaultBackupRunbook.apply(context, target, policy, action)).outcome);
      return outcomes;
    });
  }

  async function blobNames(prefix: string): Promise<string[]> {
    return withContext(async ({ clients }) => {
      const container = (await clients.blobServiceClient(ACCOUNT)).getContainerClient(CONTAINER);
      return (await collect(container.listBlobsFlat({ prefix }))).map((item) => item.name).sort();
    });
  }

  let secretNames: string[] = [];

  it('plans a backup of every enabled secret, skips the certificate-backed one, with zero mutating calls', async () => {
    await sandbox().clearRequests();
    const { plan } = await planVault();
    expect(mutatingRequests(await sandbox().requests())).toEqual([]);
    // Nothing was created in Azurite either: the container does not exist yet.
    const containerExists = await withContext(async ({ clients }) => (await clients.blobServiceClient(ACCOUNT)).getContainerClient(CONTAINER).exists());
    expect(containerExists).toBe(false);

    expect(plan.actions).toHaveLength(30);
    expect(plan.actions.every((action) => action.kind === 'backup-secret' && !action.destructive)).toBe(true);
    secretNames = plan.actions.map((action) => String(action.details.secret)).sort();
    expect(secretNames).toContain('JWT-SECRET');
    expect(secretNames).not.toContain(CERTIFICATE_BACKED);
    const jwt = plan.actions.find((action) => action.details.secret === 'JWT-SECRET');
    expect(jwt?.details).toMatchObject({ vault: VAULT, container: CONTAINER, blob: `${VAULT}/${today}/JWT-SECRET`, day: today });
    expect(plan.kept).toEqual([{ resource: CERTIFICATE_BACKED, reason: expect.stringContaining('certificate-backed') as unknown }]);
    expect(plan.checks[0]).toMatchObject({ status: 'ok', code: 'keyvault-backup.coverage', found: '0 present, 30 missing' });
  });

  it('includes certificate-backed secrets when the policy does not skip them', async () => {
    const plan = await withContext(async ({ context, config }) => {
      const { target, policy } = targetOf(config, VAULT_ID);
      return keyVaultBackupRunbook.plan(context, target, { ...policy, skipCertificateBackedSecrets: false });
    });
    expect(plan.actions.map((action) => action.details.secret)).toContain(CERTIFICATE_BACKED);
    expect(plan.kept).toEqual([]);
  });

  it('apply backs every secret up to <vault>/<date>/<secret> with metadata and no secret value; Azurite reads it back', async () => {
    const { plan } = await planVault();
    expect(await applyAll(plan.actions)).toEqual(plan.actions.map(() => 'applied'));
    expect(await blobNames(`${VAULT}/`)).toEqual(secretNames.map((name) => `${VAULT}/${today}/${name}`).sort());

    await withContext(async ({ clients }) => {
      const container = (await clients.blobServiceClient(ACCOUNT)).getContainerClient(CONTAINER);
      const blob = container.getBlobClient(`${VAULT}/${today}/JWT-SECRET`);
      const properties = await blob.getProperties();
      const secrets = await clients.secretClient(VAULT);
      const versions = await collect(secrets.listPropertiesOfSecretVersions('JWT-SECRET'));
      const latestVersion = versions.sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0))[0]?.version;
      expect(latestVersion).toMatch(/^[0-9a-f]{32}$/);
      expect(properties.metadata).toEqual({ vault: VAULT, secretname: 'JWT-SECRET', secretversion: latestVersion, backuptime: expect.any(String) as unknown });
      expect(Number.isNaN(Date.parse(properties.metadata?.backuptime ?? ''))).toBe(false);
      const content = await blob.downloadToBuffer();
      // Key Vault's opaque backup (the sandbox's sealed format), never the value itself.
      expect(content.subarray(0, 8).toString('ascii')).toBe('SBXKVBK1');
      const value = (await secrets.getSecret('JWT-SECRET')).value ?? '';
      expect(value.length).toBeGreaterThan(10);
      expect(content.includes(Buffer.from(value))).toBe(false);
      expect(JSON.stringify(properties.metadata)).not.toContain(value);

      // The backup is a real one: it restores in another vault with the same value.
      const other = await clients.secretClient('kv-limpopo-connect');
      await other.restoreSecretBackup(new Uint8Array(content));
      expect((await other.getSecret('JWT-SECRET')).value).toBe(value);
      // Restoring over an existing secret is a conflict, as in Key Vault.
      const conflict = await other.restoreSecretBackup(new Uint8Array(content)).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isRestError(conflict) && conflict.statusCode).toBe(409);
    });
  });

  it('a second run on the same day plans nothing, and apply of a done backup is skipped', async () => {
    const { plan } = await planVault();
    expect(plan.actions).toEqual([]);
    expect(plan.kept.filter((item) => item.reason.startsWith('already backed up today'))).toHaveLength(30);
    expect(plan.checks[0]).toMatchObject({ found: '30 present, 0 missing' });
    const replay: PlannedAction = {
      id: `backup-secret:${VAULT}:${today}:JWT-SECRET`,
      kind: 'backup-secret',
      resource: `${VAULT_ID}/secrets/JWT-SECRET`,
      description: 'replay',
      destructive: false,
      details: { vault: VAULT, secret: 'JWT-SECRET', storageAccountId: '', container: CONTAINER, blob: `${VAULT}/${today}/JWT-SECRET`, day: today },
    };
    expect(await applyAll([replay])).toEqual(['skipped']);
  });

  it('deletes backups beyond the retention, except the newest backup of a secret; apply again is skipped', async () => {
    const dayAgo = (days: number): string => backupDay(new Date(NOW.getTime() - days * DAY_MS));
    const old = `${VAULT}/${dayAgo(91)}/SMTP-PASSWORD`;
    const withinRetention = `${VAULT}/${dayAgo(90)}/SMTP-PASSWORD`;
    const onlyBackupOfGoneSecret = `${VAULT}/${dayAgo(200)}/GONE-SECRET`;
    const olderOfGoneSecret = `${VAULT}/${dayAgo(300)}/GONE-SECRET`;
    const foreign = `${VAULT}/notes.txt`;
    await withContext(async ({ clients }) => {
      const container = (await clients.blobServiceClient(ACCOUNT)).getContainerClient(CONTAINER);
      for (const name of [old, withinRetention, onlyBackupOfGoneSecret, olderOfGoneSecret, foreign]) {
        await container.getBlockBlobClient(name).uploadData(Buffer.from('seeded'));
      }
    });

    // Azurite's traffic is not in the sandbox request log: prove the plan read-only from the
    // container itself (every blob with its ETag, and the container's own ETag, unchanged).
    const snapshot = (): Promise<string[]> =>
      withContext(async ({ clients }) => {
        const container = (await clients.blobServiceClient(ACCOUNT)).getContainerClient(CONTAINER);
        const lines = [`container ${String((await container.getProperties()).etag)}`];
        for await (const blob of container.listBlobsFlat({ includeMetadata: true })) lines.push(`${blob.name} ${blob.properties.etag}`);
        return lines;
      });
    const before = await snapshot();
    const { plan } = await planVault();
    expect(await snapshot()).toEqual(before);
    expect(plan.actions.map((action) => [action.kind, action.details.blob, action.destructive])).toEqual([
      ['delete-backup', olderOfGoneSecret, true],
      ['delete-backup', old, true],
    ]);
    expect(plan.kept.find((item) => item.resource === `${CONTAINER}/${onlyBackupOfGoneSecret}`)?.reason).toContain('newest backup of GONE-SECRET');
    expect(plan.kept.find((item) => item.resource === `${CONTAINER}/${foreign}`)?.reason).toContain('not a backup of this runbook');
    expect(plan.kept.some((item) => item.resource.endsWith(withinRetention))).toBe(false);

    expect(await applyAll(plan.actions)).toEqual(['applied', 'applied']);
    const remaining = await blobNames(`${VAULT}/`);
    expect(remaining).toEqual(expect.arrayContaining([withinRetention, onlyBackupOfGoneSecret, foreign]));
    expect(remaining).not.toContain(old);
    expect(remaining).not.toContain(olderOfGoneSecret);
    expect(await applyAll(plan.actions)).toEqual(['skipped', 'skipped']);
    expect((await planVault()).plan.actions).toEqual([]);
  });

  it('apply refuses a delete that the retention does not allow', async () => {
    const action: PlannedAction = {
      id: `delete-backup:${VAULT}/${today}/JWT-SECRET`,
      kind: 'delete-backup',
      resource: 'x',
      description: 'hand-made',
      destructive: true,
      details: { vault: VAULT, secret: 'JWT-SECRET', storageAccountId: '', container: CONTAINER, blob: `${VAULT}/${today}/JWT-SECRET`, day: today, retentionDays: 90 },
    };
    await expect(applyAll([action])).rejects.toThrow(/expected a backup of kv-xshopai-prod in keyvault-backups older than 90 days/);
    expect(await blobNames(`${VAULT}/${today}/JWT-SECRET`)).toEqual([`${VAULT}/${today}/JWT-SECRET`]);
  });

  it('a failing vault does not stop the plan of the other vault', async () => {
    await withContext(async ({ context, config }) => {
      const results = await Promise.allSettled(
        [MISSING_VAULT_ID, VAULT_ID].map((id) => {
          const { target, policy } = targetOf(config, id);
          return keyVaultBackupRunbook.plan(context, target, policy);
        }),
      );
      const [missing, present] = results;
      expect(missing?.status).toBe('rejected');
      const reason: unknown = missing?.status === 'rejected' ? missing.reason : undefined;
      expect(reason).toBeInstanceOf(ResourceNotFoundError);
      expect((reason as Error).message).toContain('kv-xshopai-missing');
      expect(present?.status).toBe('fulfilled');
      expect(present?.status === 'fulfilled' ? present.value.targetId : undefined).toBe(VAULT_ID);
    });
  });

  it('parses only <vault>/<yyyy-mm-dd>/<secret> blob names with real dates', () => {
    expect(parseBackupBlobName(VAULT, `${VAULT}/2025-01-31/JWT-SECRET`)).toEqual({ day: '2025-01-31', secret: 'JWT-SECRET' });
    expect(parseBackupBlobName(VAULT, `${VAULT}/2025-02-30/JWT-SECRET`)).toBeUndefined();
    expect(parseBackupBlobName(VAULT, `${VAULT}/2025-01-31/a/b`)).toBeUndefined();
    expect(parseBackupBlobName(VAULT, `other/2025-01-31/JWT-SECRET`)).toBeUndefined();
  });
});
