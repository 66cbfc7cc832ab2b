/**
 * One target entry per registry, vault or app, compared the way Azure addresses each: a
 * registry by its login server name (the same name under a mistyped subscription is the same
 * registry), a vault by its name (vault URI), storage accounts and PostgreSQL servers by their
 * global names, apps by ARM ID, all case-insensitively; reported with both paths and lines.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { estateConfigSchema } from '../../../src/config/schema.ts';
import { ConfigError } from '../../../src/errors.ts';

const SUB_A = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const SUB_B = '3d3e2c74-9f20-4cae-9c77-3e202d803004';
const id = (sub: string, rg: string, type: string, name: string): string => `/subscriptions/${sub}/resourceGroups/${rg}/providers/${type}/${name}`;

function linesOf(targets: string, extra = ''): string[] {
  try {
    parseConfigText(`version: 1\nestate: x\n${extra}targets:\n${targets}`, { source: 'inline.yaml' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines();
  }
  return [];
}

describe('one entry per resource', () => {
  it('a registry under a mistyped subscription, with a laxer keep, is the same registry (login server name, any case)', () => {
    const lines = linesOf(
      [
        `  - id: ${id(SUB_A, 'rg-xshopai-prod', 'Microsoft.ContainerRegistry/registries', 'crxshopaiprod')}`,
        '    runbooks:',
        '      image-purge: { keep: 10 }',
        `  - id: ${id(SUB_B, 'rg-other', 'Microsoft.ContainerRegistry/registries', 'CRXshopaiProd')}`,
        '    runbooks:',
        '      image-purge: { keep: 1 }',
        '',
      ].join('\n'),
    );
    expect(lines).toEqual([
      'targets[1].id: expected each resource in one entry only (Azure addresses the registry CRXshopaiProd by its login server crxshopaiprod.azurecr.io, case-insensitively), found it again after targets[0].id on line 4 (line 7)',
    ]);
  });

  it('the login server follows the cloud', () => {
    const lines = linesOf(
      [`  - id: ${id(SUB_A, 'rg', 'Microsoft.ContainerRegistry/registries', 'crx')}`, `  - id: ${id(SUB_B, 'rg', 'Microsoft.ContainerRegistry/registries', 'crx')}`, ''].join('\n'),
      'azure:\n  cloud: AzureUSGovernment\n',
    );
    expect(lines[0]).toContain('by its login server crx.azurecr.us');
  });

  it('vaults by vault name, storage accounts and PostgreSQL servers by name, apps by ARM id', () => {
    const lines = linesOf(
      [
        `  - id: ${id(SUB_A, 'rg', 'Microsoft.KeyVault/vaults', 'kv-x')}`,
        `  - id: ${id(SUB_B, 'rg2', 'Microsoft.KeyVault/vaults', 'KV-X')}`,
        `  - id: ${id(SUB_A, 'rg', 'Microsoft.Storage/storageAccounts', 'stx')}`,
        `  - id: ${id(SUB_B, 'rg', 'Microsoft.Storage/storageAccounts', 'stx')}`,
        `  - id: ${id(SUB_A, 'rg', 'Microsoft.DBforPostgreSQL/flexibleServers', 'psql-x')}`,
        `  - id: ${id(SUB_A, 'rg9', 'Microsoft.DBforPostgreSQL/flexibleServers', 'psql-x')}`,
        `  - id: ${id(SUB_A, 'rg', 'Microsoft.App/containerApps', 'ca-x')}`,
        // Another resource group: another Container App (names are unique per group only).
        `  - id: ${id(SUB_A, 'rg2', 'Microsoft.App/containerApps', 'ca-x')}`,
        `  - id: ${id(SUB_A, 'RG', 'Microsoft.App/containerApps', 'CA-X')}/`,
        `  - id: ${id(SUB_A, 'rg', 'Microsoft.Web/sites', 'app-x')}`,
        `  - id: ${id(SUB_A.toUpperCase(), 'rg', 'Microsoft.Web/sites', 'APP-X')}`,
        '',
      ].join('\n'),
    );
    expect(lines).toEqual([
      'targets[1].id: expected each resource in one entry only (Azure addresses the Key Vault KV-X by its vault URI https://kv-x.vault.azure.net, case-insensitively), found it again after targets[0].id on line 4 (line 5)',
      'targets[3].id: expected each resource in one entry only (Azure addresses the storage account stx by its account name (https://stx.blob.core.windows.net), case-insensitively), found it again after targets[2].id on line 6 (line 7)',
      'targets[5].id: expected each resource in one entry only (Azure addresses the PostgreSQL flexible server psql-x by its server name, a global DNS name, case-insensitively), found it again after targets[4].id on line 8 (line 9)',
      'targets[8].id: expected each resource in one entry only (Azure addresses the Container App CA-X by its ARM ID, case-insensitively), found it again after targets[6].id on line 10 (line 12)',
      'targets[10].id: expected each resource in one entry only (Azure addresses the web app APP-X by its ARM ID, case-insensitively), found it again after targets[9].id on line 13 (line 14)',
    ]);
  });

  it('the schema alone refuses it too', () => {
    const result = estateConfigSchema.safeParse({
      version: 1,
      estate: 'x',
      targets: [{ id: id(SUB_A, 'rg', 'Microsoft.ContainerRegistry/registries', 'crx') }, { id: id(SUB_B, 'rg', 'Microsoft.ContainerRegistry/registries', 'crx') }],
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['targets.1.id']);
  });
});
