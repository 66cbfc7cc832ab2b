/**
 * The `secret-expiry` runbook against the sandbox through the real client layer: xshopai's
 * JWT-SECRET (5 days left) warns, limpopo's StorageAccountKey (expired 12 days ago) fails,
 * secrets without expiry under `requireExpiry`, certificate-backed secrets, disabled secrets
 * kept, thresholds through config edits, no secret value ever read (request log), a read-only
 * plan, per-vault independence, and `apply` refusing any action. An extra "edge" world holds
 * what the seed worlds lack: a disabled latest version, an expired certificate-backed secret.
 */
import { describe, expect, it } from 'vitest';
import { ResourceNotFoundError } from '../../../src/azure/errors.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { ChecksOnlyApplyError, DAY_MS, formatInstant, UnsupportedTargetKindError } from '../../../src/runbooks/checks-only.ts';
import { targetsFor, type Check, type TargetPlan } from '../../../src/runbooks/runbook.ts';
import { SECRET_EXPIRY_CODES, secretExpiryChecks, secretExpiryRunbook, type SecretExpiryPolicy } from '../../../src/runbooks/secret-expiry.ts';
import { mutatingRequests, runbookContextFor, withRunbookPolicy, writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const codes = SECRET_EXPIRY_CODES;

function writeEdgeWorld(): string {
  return writeWorldFile(
    'secret-edge',
    `name: secret-edge
description: secret-expiry edge cases
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: 7b726ab8-1c2d-4e3f-9a41-5b6c7d8e9f02
plantedProblems: []
resources:
  - type: Microsoft.KeyVault/vaults
    resourceGroup: rg-edge
    name: kv-edge-secrets
    location: westeurope
    spec:
      secrets:
        - name: Retired-Key
          versions:
            - { createdDaysAgo: 100, expiresInDays: 30 }
            - { createdDaysAgo: 50, expiresInDays: -10, enabled: false }
        - name: tls-edge-example-com
          certificateBacked: true
          versions:
            - { createdDaysAgo: 400, expiresInDays: -1 }
        - name: tls-later-example-com
          certificateBacked: true
          versions:
            - { createdDaysAgo: 10, expiresInDays: 355 }
        - name: Untimed
          versions:
            - { createdDaysAgo: 10 }
`,
  );
}

/** A config edit setting a vault's secret-expiry policy. */
const withPolicy = (name: string, policy: SecretExpiryPolicy): ((config: EstateConfig) => EstateConfig) => withRunbookPolicy('secret-expiry', name, policy);

function checkFor(plan: TargetPlan, secret: string): Check {
  const found = plan.checks.find((check) => check.resource?.endsWith(`/secrets/${secret}`) === true);
  if (found === undefined) throw new Error(`plan of ${plan.targetId}: expected a check of ${secret}, found none`);
  return found;
}

describe('secret-expiry runbook', () => {
  const sandbox = useSandbox({
    worlds: ['sandbox/worlds/limpopo-connect.yaml', 'sandbox/worlds/kilometers.yaml', 'sandbox/worlds/xshopai.yaml', writeEdgeWorld()],
    postgres: false,
    azurite: false,
  });

  /** Plans the single opted-in vault of a world with a fixed `now`. */
  async function planVault(world: string, edit?: (config: EstateConfig) => EstateConfig): Promise<{ plan: TargetPlan; now: Date }> {
    const now = new Date();
    const ctx = await runbookContextFor(sandbox(), world, { ...(edit === undefined ? {} : { edit }), now: () => now });
    try {
      const selected = targetsFor(secretExpiryRunbook, ctx.config);
      expect(selected).toHaveLength(1);
      const [{ target, policy }] = selected as [(typeof selected)[number]];
      const plan = await secretExpiryRunbook.plan(ctx.context, target, policy);
      expect(plan.actions).toEqual([]);
      expect(plan.kind).toBe('keyVault');
      return { plan, now };
    } finally {
      await ctx.close();
    }
  }

  it('xshopai: JWT-SECRET, 5 days from expiry, warns with its date; the rest is fine', async () => {
    const { plan, now } = await planVault('xshopai');
    const jwt = checkFor(plan, 'JWT-SECRET');
    expect(jwt).toMatchObject({
      status: 'warn',
      code: codes.secretExpiry,
      resource: 'kv-xshopai-prod/secrets/JWT-SECRET',
      expected: `expiry after ${formatInstant(new Date(now.getTime() + 14 * DAY_MS))} (more than 14 days away)`,
    });
    expect(jwt.found).toMatch(/^expires \d{4}-\d\d-\d\dT\d\d:\d\dZ \(in 5\.0 days\)$/);
    expect(jwt.message).toContain('kv-xshopai-prod');
    // Every enabled secret has a check; only JWT-SECRET is a finding (no requireExpiry in xshopai).
    expect(plan.checks).toHaveLength(31);
    expect(plan.checks.filter((check) => check.status !== 'ok').map((check) => check.resource)).toEqual(['kv-xshopai-prod/secrets/JWT-SECRET']);
    expect(checkFor(plan, 'REDIS-CONNECTION-STRING')).toMatchObject({ status: 'ok', code: codes.noExpiry, found: 'no expiry date' });
    expect(checkFor(plan, 'api-xshopai-com')).toMatchObject({ status: 'ok', code: codes.certificateExpiry });
    expect(plan.kept).toEqual([]);
  });

  it('limpopo: StorageAccountKey, expired 12 days ago, fails; DatabaseUrl without expiry warns under requireExpiry', async () => {
    const { plan } = await planVault('limpopo-connect');
    const key = checkFor(plan, 'StorageAccountKey');
    expect(key).toMatchObject({ status: 'fail', code: codes.secretExpiry, resource: 'kv-limpopo-connect/secrets/StorageAccountKey' });
    expect(key.found).toMatch(/^expired \d{4}-\d\d-\d\dT\d\d:\d\dZ \(12\.0 days ago\)$/);
    expect(checkFor(plan, 'DatabaseUrl')).toMatchObject({
      status: 'warn',
      code: codes.noExpiry,
      expected: 'an expiry date (requireExpiry)',
      found: 'no expiry date',
    });
    // JwtSecret's disabled old version is not what counts: the latest (160 days left) is fine.
    expect(checkFor(plan, 'JwtSecret')).toMatchObject({ status: 'ok', code: codes.secretExpiry });
    expect(plan.checks.map((check) => [check.resource?.split('/').at(-1), check.status])).toEqual([
      ['DatabaseUrl', 'warn'],
      ['JwtSecret', 'ok'],
      ['PostgresAdminPassword', 'ok'],
      ['StorageAccountKey', 'fail'],
    ]);
  });

  it('kilometers: requireExpiry flags the secrets without expiry; ApiKey-Payments (20 days) is outside its 7-day window', async () => {
    const { plan } = await planVault('kilometers');
    expect(plan.checks.map((check) => [check.resource?.split('/').at(-1), check.code, check.status])).toEqual([
      ['ApiKey-Maps', codes.noExpiry, 'warn'],
      ['ApiKey-Payments', codes.secretExpiry, 'ok'],
      ['DatabaseConnectionString', codes.noExpiry, 'warn'],
      // The drill's admin password expires in 70 days: outside every window here.
      ['PostgresAdminPassword', codes.secretExpiry, 'ok'],
    ]);
    // A wider window from a config edit catches it.
    const wider = await planVault('kilometers', withPolicy('kv-kilometers-k7x2', { warnWithinDays: 30, requireExpiry: false }));
    expect(checkFor(wider.plan, 'ApiKey-Payments')).toMatchObject({ status: 'warn' });
    expect(checkFor(wider.plan, 'ApiKey-Maps')).toMatchObject({ status: 'ok', code: codes.noExpiry, expected: 'an expiry date is optional' });
  });

  it('certificate-backed secrets have their own code; a disabled latest version is kept, not checked', async () => {
    const { plan } = await planVault('secret-edge', withPolicy('kv-edge-secrets', { warnWithinDays: 30, requireExpiry: true }));
    expect(checkFor(plan, 'tls-edge-example-com')).toMatchObject({ status: 'fail', code: codes.certificateExpiry });
    expect(checkFor(plan, 'tls-edge-example-com').message).toContain('certificate-backed secret tls-edge-example-com expired 1.0 days ago');
    expect(checkFor(plan, 'tls-later-example-com')).toMatchObject({ status: 'ok', code: codes.certificateExpiry });
    expect(checkFor(plan, 'Untimed')).toMatchObject({ status: 'warn', code: codes.noExpiry });
    expect(plan.checks.some((check) => check.resource?.endsWith('/Retired-Key') === true)).toBe(false);
    expect(plan.kept).toEqual([{ resource: 'kv-edge-secrets/secrets/Retired-Key', reason: 'disabled: no application can read it, so its expiry is not checked' }]);
    // xshopai's certificate (65 days left) warns once the window is wider than that.
    const xshopai = await planVault('xshopai', withPolicy('kv-xshopai-prod', { warnWithinDays: 90, requireExpiry: false }));
    expect(checkFor(xshopai.plan, 'api-xshopai-com')).toMatchObject({ status: 'warn', code: codes.certificateExpiry });
  });

  it('thresholds: expiring exactly now fails, at the window edge warns, just beyond it is ok', () => {
    const now = new Date('2026-11-23T16:00:00Z');
    const at = (ms: number): Date => new Date(now.getTime() + ms);
    const { checks } = secretExpiryChecks(
      'kv-x',
      [
        { name: 'a-now', enabled: true, expiresOn: at(0) },
        { name: 'b-edge', enabled: true, expiresOn: at(30 * DAY_MS) },
        { name: 'c-beyond', enabled: true, expiresOn: at(30 * DAY_MS + 60_000) },
        { name: 'd-cert-kid', enabled: true, expiresOn: at(-DAY_MS), certificateKeyId: 'https://kv-x.vault.azure.net/keys/d-cert-kid/1' },
      ],
      { warnWithinDays: 30, requireExpiry: false },
      now,
    );
    expect(checks.map((check) => [check.resource, check.code, check.status, check.found])).toEqual([
      ['kv-x/secrets/a-now', codes.secretExpiry, 'fail', 'expired 2026-11-23T16:00Z (0.0 days ago)'],
      ['kv-x/secrets/b-edge', codes.secretExpiry, 'warn', 'expires 2026-12-23T16:00Z (in 30.0 days)'],
      ['kv-x/secrets/c-beyond', codes.secretExpiry, 'ok', 'expires 2026-12-23T16:01Z (in 30.0 days)'],
      ['kv-x/secrets/d-cert-kid', codes.certificateExpiry, 'fail', 'expired 2026-11-22T16:00Z (1.0 days ago)'],
    ]);
  });

  it('plan reads properties only: one list per vault, no secret value, no mutating call', async () => {
    await sandbox().clearRequests();
    for (const world of ['limpopo-connect', 'kilometers', 'xshopai']) await planVault(world);
    const log = await sandbox().requests();
    expect(mutatingRequests(log)).toEqual([]);
    const vaultCalls = log.filter((entry) => entry.path.startsWith('/vaults/'));
    // xshopai has 31 secrets: two pages of 25. No GET of a single secret (which returns its value).
    expect(vaultCalls.filter((entry) => entry.status === 200).map((entry) => entry.operationId)).toEqual([
      'KeyVault.getSecrets',
      'KeyVault.getSecrets',
      'KeyVault.getSecrets',
      'KeyVault.getSecrets',
    ]);
    expect(log.some((entry) => entry.operationId === 'KeyVault.getSecret')).toBe(false);
  });

  it('a vault that does not exist fails its own plan with a typed error naming it; the configured vault plans independently', async () => {
    const missing = '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-prod/providers/Microsoft.KeyVault/vaults/kv-xshopai-missing';
    const ctx = await runbookContextFor(sandbox(), 'xshopai', {
      edit: (config) => ({ ...config, targets: [...config.targets, { id: missing, runbooks: { 'secret-expiry': { warnWithinDays: 14, requireExpiry: false } } }] }),
    });
    try {
      const selected = targetsFor(secretExpiryRunbook, ctx.config);
      expect(selected.map(({ target }) => target.id.split('/').at(-1))).toEqual(['kv-xshopai-prod', 'kv-xshopai-missing']);
      const [present, absent] = await Promise.allSettled(selected.map(({ target, policy }) => secretExpiryRunbook.plan(ctx.context, target, policy)));
      expect(absent?.status).toBe('rejected');
      const error: unknown = absent?.status === 'rejected' ? absent.reason : undefined;
      expect(error).toBeInstanceOf(ResourceNotFoundError);
      expect((error as Error).message).toContain('kv-xshopai-missing');
      expect(present?.status).toBe('fulfilled');
      const plan = present?.status === 'fulfilled' ? present.value : undefined;
      expect(plan === undefined ? undefined : checkFor(plan, 'JWT-SECRET').status).toBe('warn');
    } finally {
      await ctx.close();
    }
  });

  it('apply refuses any action; a non-vault target is a typed error', async () => {
    const ctx = await runbookContextFor(sandbox(), 'xshopai');
    try {
      const [{ target, policy }] = targetsFor(secretExpiryRunbook, ctx.config) as [{ target: (typeof ctx.config.targets)[number]; policy: SecretExpiryPolicy }];
      const action = { id: 'rotate:JWT-SECRET', kind: 'rotate-secret', resource: 'kv-xshopai-prod/secrets/JWT-SECRET', description: 'not planned', destructive: false, details: {} };
      await expect(secretExpiryRunbook.apply(ctx.context, target, policy, action)).rejects.toBeInstanceOf(ChecksOnlyApplyError);
      const app = ctx.config.targets.find((candidate) => candidate.id.endsWith('/ca-user-service'));
      if (app === undefined) throw new Error('xshopai config: expected ca-user-service');
      await expect(secretExpiryRunbook.plan(ctx.context, app, policy)).rejects.toBeInstanceOf(UnsupportedTargetKindError);
    } finally {
      await ctx.close();
    }
  });
});
