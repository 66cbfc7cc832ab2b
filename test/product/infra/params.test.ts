/**
 * infra/params/<estate>.bicepparam follow from examples/<estate>.yaml (scripts/infra-params.ts),
 * and the derivation grants only what a configured runbook needs, on what the estate names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { deriveParams, exampleEstates, paramsFileFor, paramsFilePath } from '../../../scripts/infra-params.ts';

const SUB = '11111111-2222-4333-8444-555555555555';
const OTHER_SUB = '99999999-2222-4333-8444-555555555555';
const id = (rg: string, type: string, name: string, sub = SUB): string => `/subscriptions/${sub}/resourceGroups/${rg}/providers/${type}/${name}`;

describe('the committed parameter files', () => {
  it('exist for every example estate and for nothing else', async () => {
    const files = readdirSync('infra/params').filter((f) => f.endsWith('.bicepparam')).map((f) => f.replace(/\.bicepparam$/, ''));
    expect(files.sort()).toEqual(await exampleEstates());
  });

  it('are what npm run infra:params writes from the estate configs (not stale)', async () => {
    for (const estate of await exampleEstates()) {
      expect(readFileSync(paramsFilePath(estate), 'utf8'), `infra/params/${estate}.bicepparam is stale: run npm run infra:params`).toBe(await paramsFileFor(estate));
    }
  });
});

describe('deriving the deployment from an estate config', () => {
  const registry = id('rg-a', 'Microsoft.ContainerRegistry/registries', 'cra');
  const quietRegistry = id('rg-a', 'Microsoft.ContainerRegistry/registries', 'crquiet');
  const vault = id('rg-a', 'Microsoft.KeyVault/vaults', 'kv-a');
  const readOnlyVault = id('rg-a', 'Microsoft.KeyVault/vaults', 'kv-read');
  const backups = id('rg-b', 'Microsoft.Storage/storageAccounts', 'stbackups');
  const foreignApp = id('rg-c', 'Microsoft.App/containerApps', 'ca-other', OTHER_SUB);
  const config = parseConfigText(
    JSON.stringify({
      version: 1,
      estate: 'derive',
      targets: [
        { id: registry, runbooks: { 'image-purge': { inUseScope: [foreignApp] } } },
        { id: quietRegistry },
        { id: vault, runbooks: { 'keyvault-backup': { storageAccountId: backups }, 'secret-expiry': {} } },
        { id: readOnlyVault, runbooks: { 'backup-verify': {} } },
        { id: id('rg-db', 'Microsoft.DBforPostgreSQL/flexibleServers', 'psql-a'), runbooks: { 'backup-verify': {} } },
        { id: id('rg-web', 'Microsoft.Web/sites', 'app-a'), health: { path: '/health' } },
        { id: id('rg-web', 'Microsoft.App/containerApps', 'ca-a'), runbooks: { 'revision-cleanup': {} } },
      ],
    }),
    { source: 'derive.json' },
  );
  const params = deriveParams(config);
  const rolesOn = (scope: string): string[] => params.roleAssignments.filter((a) => a.scope === scope).map((a) => a.role).sort();

  it('gives delete rights on a registry only when image-purge is configured, and reads its subscriptions', () => {
    expect(rolesOn(registry)).toEqual(['AcrDelete', 'AcrPull', 'ContainerRegistryRepositoryCatalogLister', 'ContainerRegistryRepositoryContributor', 'Reader']);
    expect(rolesOn(quietRegistry)).toEqual(['Reader']);
    expect(rolesOn(`/subscriptions/${SUB}`)).toEqual(['Reader']);
    expect(rolesOn(`/subscriptions/${OTHER_SUB}`)).toEqual(['Reader']);
  });

  it('gives Secrets Officer only to a vault it backs up, metadata reads to one whose expiry it checks', () => {
    expect(rolesOn(vault)).toEqual(['KeyVaultReader', 'KeyVaultSecretsOfficer', 'Reader']);
    expect(rolesOn(readOnlyVault)).toEqual(['Reader']);
    expect(rolesOn(backups)).toEqual(['StorageBlobDataContributor']);
    expect(params.keyVaultEventSources).toEqual([vault]);
  });

  it('puts PostgreSQL servers under the custom operator role on their resource group, web and container apps under the template\'s roles and alerts', () => {
    expect(rolesOn(`/subscriptions/${SUB}/resourceGroups/rg-db`)).toEqual(['PostgresOperator']);
    expect(params.postgresServerIds).toHaveLength(1);
    expect(params.webApps).toEqual([{ id: id('rg-web', 'Microsoft.Web/sites', 'app-a'), healthPath: '/health', expectStatus: 200 }]);
    expect(params.containerApps).toEqual([{ id: id('rg-web', 'Microsoft.App/containerApps', 'ca-a') }]);
    expect(params.containerAppEventSources).toEqual([{ resourceGroupId: `/subscriptions/${SUB}/resourceGroups/rg-web`, containerAppIds: [id('rg-web', 'Microsoft.App/containerApps', 'ca-a')] }]);
  });

  it('scopes every assignment to something the config names: a target, its group or subscription, a storage account it names', () => {
    const named = new Set<string>();
    for (const target of config.targets) {
      const parts = target.id.split('/');
      named.add(target.id).add(parts.slice(0, 5).join('/')).add(parts.slice(0, 3).join('/'));
    }
    named.add(backups).add(`/subscriptions/${OTHER_SUB}`);
    for (const a of params.roleAssignments) expect(named.has(a.scope), `${a.role} on ${a.scope}`).toBe(true);
  });
});
