/**
 * `ops-autopilot config validate` on the guards of issue 7: every URL loopback under the sandbox
 * credential, malformed URL templates reported with path and line (not a bare "Invalid URL"),
 * one entry per registry compared by login server name.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../../support/cli.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-config-guards-'));
const write = (name: string, text: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

const TARGET = '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.Storage/storageAccounts/stlmsprod';

describe('config validate: URLs', () => {
  it('reports a malformed URL template and every non-loopback URL under the sandbox credential, with paths and lines', async () => {
    const file = write(
      'urls.yaml',
      `version: 1
estate: x
azure:
  resourceManagerEndpoint: https://127.0.0.1:8443
  authorityHost: https://127.0.0.1:8443
  keyVaultUrlTemplate: https://127.0.0.1:8443/vaults/{name}
  containerRegistryUrlTemplate: https://127.0.0.1:8443/registries/{name}
  blobUrlTemplate: https://127.0.0.1:8443 x/{name}
  tableUrlTemplate: https://127.0.0.1:10002/{name}
  postgresUrlTemplate: postgresql://127.0.0.1:5432
  appHostUrlTemplate: https://127.0.0.1:8443/_hosts/{host}
  sandboxTokenEndpoint: https://127.0.0.1:8443/t/oauth2/v2.0/token
runRecords:
  blobServiceUrl: https://stx.blob.core.windows.net
notifications:
  webhooks:
    - { name: a, url: "https://hooks.slack.com/services/T0/B0/s3cr3t" }
targets:
  - id: ${TARGET}
`,
    );
    const run = await cli(['config', 'validate', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toMatch(/^error: Invalid URL/m);
    expect(run.stderr.split('\n').slice(1, 4)).toEqual([
      '  azure.blobUrlTemplate: expected an https:// URL template containing {name} that is a valid URL once {name} is filled in (no spaces; {name} in the host or path), found "https://127.0.0.1:8443 x/{name}" (line 8)',
      '  runRecords.blobServiceUrl: expected a loopback address when sandboxTokenEndpoint is set, found "https://stx.blob.core.windows.net" (line 14)',
      '  notifications.webhooks[0].url: expected a loopback address when sandboxTokenEndpoint is set, found "https://hooks.slack.com/…" (line 17)',
    ]);
    expect(run.stderr).not.toContain('s3cr3t');
  });
});

describe('config validate: one entry per resource', () => {
  it('refuses the same registry name under a mistyped subscription with a laxer keep, naming both entries and lines', async () => {
    const registry = (sub: string): string => `/subscriptions/${sub}/resourceGroups/rg-xshopai-prod/providers/Microsoft.ContainerRegistry/registries/crxshopaiprod`;
    const file = write(
      'duplicate-registry.yaml',
      `version: 1
estate: x
targets:
  - id: ${registry('3d3e2c74-9f20-4cae-9c77-3e202d803003')}
    runbooks:
      image-purge: { keep: 10 }
  - id: ${registry('3d3e2c74-9f20-4cae-9c77-3e202d803030')}
    runbooks:
      image-purge: { keep: 1 }
`,
    );
    const run = await cli(['config', 'validate', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'targets[1].id: expected each resource in one entry only (Azure addresses the registry crxshopaiprod by its login server crxshopaiprod.azurecr.io, case-insensitively), found it again after targets[0].id on line 4 (line 7)',
    );
  });
});
