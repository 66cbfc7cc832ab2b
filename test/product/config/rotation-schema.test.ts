/**
 * The rotation block of a Key Vault target (src/config/rotation-schema.ts) through the estate
 * schema: a valid policy of each kind with its defaults, and the refusals with their paths.
 */
import { describe, expect, it } from 'vitest';
import { estateConfigSchema } from '../../../src/config/schema.ts';

const S = '/subscriptions/6a6b6c6d-0000-4000-8000-000000000011/resourceGroups/rg/providers';
const APP = `${S}/Microsoft.Web/sites/app`;
const VAULT = `${S}/Microsoft.KeyVault/vaults/kv-app`;
const SERVER = `${S}/Microsoft.DBforPostgreSQL/flexibleServers/psql-app`;
const ACCOUNT = `${S}/Microsoft.Storage/storageAccounts/stapp`;

function config(rotation: unknown, extra: unknown[] = [{ id: APP }]): unknown {
  return { version: 1, estate: 'rotation-schema', targets: [...extra, { id: VAULT, rotation }] };
}

function issues(input: unknown): string[] {
  const parsed = estateConfigSchema.safeParse(input);
  return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('rotation policies', () => {
  it('accepts one of each kind and fills in the defaults', () => {
    const parsed = estateConfigSchema.parse(
      config({
        secrets: [
          { secret: 'JwtSecret', kind: 'random', consumers: [{ id: APP }] },
          { secret: 'PostgresAdminPassword', kind: 'postgresAdminPassword', server: SERVER, derived: [{ secret: 'DatabaseUrl' }] },
          { secret: 'StorageAccountKey', kind: 'storageAccountKey', storageAccount: ACCOUNT },
        ],
      }),
    );
    const secrets = parsed.targets[1]?.rotation?.secrets ?? [];
    expect(secrets[0]).toMatchObject({ kind: 'random', length: 48, alphabet: 'alphanumeric', validityDays: 90, rotateBeforeExpiryDays: 30, graceHours: 24, consumers: [{ pickUp: 'restart' }] });
    expect(secrets[1]).toMatchObject({ database: 'postgres', length: 32, derived: [{ secret: 'DatabaseUrl', format: 'postgresql-url' }] });
    expect(secrets[2]).toMatchObject({ kind: 'storageAccountKey', verify: { consecutive: 2 } });
  });

  it('refuses a policy on another kind of target, a consumer that is no target, a wrong resource, a URL format without a server, duplicates', () => {
    expect(issues({ version: 1, estate: 'x', targets: [{ id: APP, rotation: { secrets: [{ secret: 'A', kind: 'random' }] } }] })).toContain('targets.0.rotation: expected a Key Vault for a rotation policy, found webSite');
    expect(issues(config({ secrets: [{ secret: 'A', kind: 'random', consumers: [{ id: `${S}/Microsoft.Web/sites/other` }] }] }))).toEqual([
      `targets.1.rotation.secrets.0.consumers.0.id: expected a target of this file (its health is verified after the rotation), found ${S}/Microsoft.Web/sites/other, which no target names`,
    ]);
    expect(issues(config({ secrets: [{ secret: 'P', kind: 'postgresAdminPassword', server: ACCOUNT }] }))).toEqual(['targets.1.rotation.secrets.0.server: expected the ARM id of a postgresFlexibleServer, found storageAccount']);
    expect(issues(config({ secrets: [{ secret: 'A', kind: 'random', derived: [{ secret: 'B' }] }] }))[0]).toMatch(/derived\.0\.format: expected value or template/);
    expect(issues(config({ secrets: [{ secret: 'A', kind: 'random' }, { secret: 'a', kind: 'random' }] }))[0]).toMatch(/secrets\.1\.secret: expected each secret once/);
    expect(issues(config({ secrets: [{ secret: 'A', kind: 'random', derived: [{ secret: 'B', format: 'template' }] }] }))[0]).toMatch(/template: expected a template/);
  });
});
