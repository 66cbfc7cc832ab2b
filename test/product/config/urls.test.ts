/**
 * URLs in the estate configuration: with the sandbox credential every URL anywhere in the file
 * must be loopback (run-record store, webhooks, and whatever URL field comes later), and a
 * malformed URL template is a config issue with its path and line, never a bare `Invalid URL`.
 */
import { describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { CredentialError } from '../../../src/azure/credential.ts';
import { parseConfigText } from '../../../src/config/load.ts';
import { azureSettingsSchema, estateConfigSchema } from '../../../src/config/schema.ts';
import { ConfigError } from '../../../src/errors.ts';

const TARGET = '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.Storage/storageAccounts/stlmsprod';
const SANDBOX_AZURE = `azure:
  resourceManagerEndpoint: https://127.0.0.1:8443
  authorityHost: https://127.0.0.1:8443
  keyVaultUrlTemplate: https://127.0.0.1:8443/vaults/{name}
  containerRegistryUrlTemplate: https://127.0.0.1:8443/registries/{name}
  blobUrlTemplate: https://127.0.0.1:10000/{name}
  tableUrlTemplate: https://127.0.0.1:10002/{name}
  postgresUrlTemplate: postgresql://127.0.0.1:5432
  appHostUrlTemplate: https://127.0.0.1:8443/_hosts/{host}
  sandboxTokenEndpoint: https://127.0.0.1:8443/72f988bf-0000-4000-8000-00000000a001/oauth2/v2.0/token
`;

function linesOf(text: string): string[] {
  try {
    parseConfigText(text, { source: 'inline.yaml' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines();
  }
  return [];
}

describe('with the sandbox credential every URL is loopback', () => {
  it('refuses a non-loopback run-record store and webhook, showing only the webhook origin', () => {
    const lines = linesOf(`version: 1
estate: x
${SANDBOX_AZURE}runRecords:
  blobServiceUrl: https://stlmsprod.blob.core.windows.net
notifications:
  webhooks:
    - { name: ok, url: "https://127.0.0.1:8443/_sandbox/webhooks/ok" }
    - { name: out, url: "https://hooks.slack.com/services/T0/B0/s3cr3t" }
targets:
  - id: ${TARGET}
`);
    expect(lines).toEqual([
      'runRecords.blobServiceUrl: expected a loopback address when sandboxTokenEndpoint is set, found "https://stlmsprod.blob.core.windows.net" (line 14)',
      'notifications.webhooks[1].url: expected a loopback address when sandboxTokenEndpoint is set, found "https://hooks.slack.com/…" (line 18)',
    ]);
    expect(lines.join('\n')).not.toContain('s3cr3t');
  });

  it('accepts loopback URLs (localhost, 127.x, [::1]) and puts no such rule on a config without the sandbox credential', () => {
    expect(
      linesOf(`version: 1
estate: x
${SANDBOX_AZURE}runRecords:
  blobServiceUrl: https://localhost:10000/stautopilotruns
notifications:
  webhooks:
    - { name: a, url: "https://127.0.0.2:9/x" }
    - { name: b, url: "https://[::1]:9/x" }
targets:
  - id: ${TARGET}
`),
    ).toEqual([]);
    expect(
      linesOf(`version: 1
estate: x
runRecords:
  blobServiceUrl: https://stlmsprod.blob.core.windows.net
notifications:
  webhooks:
    - { name: out, url: "https://hooks.slack.com/services/T0/B0/s3cr3t" }
targets:
  - id: ${TARGET}
`),
    ).toEqual([]);
  });

  it('the schema alone refuses it too (code that parses without the loader, e.g. the sandbox)', () => {
    const parsed = estateConfigSchema.safeParse({
      version: 1,
      estate: 'x',
      azure: azureSettingsSchema.parse({
        resourceManagerEndpoint: 'https://127.0.0.1:8443',
        keyVaultUrlTemplate: 'https://127.0.0.1:8443/vaults/{name}',
        containerRegistryUrlTemplate: 'https://127.0.0.1:8443/registries/{name}',
        blobUrlTemplate: 'https://127.0.0.1:10000/{name}',
        tableUrlTemplate: 'https://127.0.0.1:10002/{name}',
        postgresUrlTemplate: 'postgresql://127.0.0.1:5432',
        appHostUrlTemplate: 'https://127.0.0.1:8443/_hosts/{host}',
        sandboxTokenEndpoint: 'https://127.0.0.1:8443/t/oauth2/v2.0/token',
      }),
      runRecords: { blobServiceUrl: 'https://stx.blob.core.windows.net' },
      targets: [{ id: TARGET }],
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['runRecords.blobServiceUrl']);
  });

  it('the client layer refuses a sandbox-credential blob client for a non-loopback URL built by hand', async () => {
    const settings = azureSettingsSchema.parse({
      resourceManagerEndpoint: 'https://127.0.0.1:8443',
      keyVaultUrlTemplate: 'https://127.0.0.1:8443/vaults/{name}',
      containerRegistryUrlTemplate: 'https://127.0.0.1:8443/registries/{name}',
      blobUrlTemplate: 'https://127.0.0.1:10000/{name}',
      tableUrlTemplate: 'https://127.0.0.1:10002/{name}',
      postgresUrlTemplate: 'postgresql://127.0.0.1:5432',
      appHostUrlTemplate: 'https://127.0.0.1:8443/_hosts/{host}',
      sandboxTokenEndpoint: 'https://127.0.0.1:8443/t/oauth2/v2.0/token',
    });
    const clients = createAzureClients(settings);
    await expect(clients.blobServiceClient('https://stx.blob.core.windows.net')).rejects.toThrow(CredentialError);
    await expect(clients.blobServiceClient('https://stx.blob.core.windows.net')).rejects.toThrow(/refusing the sandbox credential for blob service https:\/\/stx\.blob\.core\.windows\.net/);
    await clients.close();
  });
});

describe('malformed URL templates', () => {
  it.each([
    ['blobUrlTemplate', 'https://127.0.0.1:8443 x/{name}', '{name}'],
    ['keyVaultUrlTemplate', 'https://[{name}].vault.azure.net', '{name}'],
    ['containerRegistryUrlTemplate', 'https://host:{name}/', '{name}'],
    ['appHostUrlTemplate', 'https://{host}:port', '{host}'],
  ])('%s: %s is reported with its path and line, with or without the sandbox credential', (field, template, placeholder) => {
    const expected = `azure.${field}: expected an https:// URL template containing ${placeholder} that is a valid URL once ${placeholder} is filled in (no spaces; ${placeholder} in the host or path), found ${JSON.stringify(template)}`;
    const withSandbox = SANDBOX_AZURE.replace(new RegExp(`  ${field}: .*\\n`), `  ${field}: "${template}"\n`);
    const sandboxLines = linesOf(`version: 1\nestate: x\n${withSandbox}targets:\n  - id: ${TARGET}\n`);
    expect(sandboxLines).toHaveLength(1);
    expect(sandboxLines[0]).toMatch(new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(line \\d+\\)$`));
    expect(linesOf(`version: 1\nestate: x\nazure:\n  ${field}: "${template}"\ntargets:\n  - id: ${TARGET}\n`)).toEqual([`${expected} (line 4)`]);
  });

  it('refuses credentials, a query or a fragment in a template', () => {
    expect(linesOf(`version: 1\nestate: x\nazure:\n  keyVaultUrlTemplate: "https://u:p@{name}.vault.azure.net"\ntargets:\n  - id: ${TARGET}\n`)).toEqual([
      'azure.keyVaultUrlTemplate: expected an https:// URL template containing {name}, with no user name, password, query or fragment, found "https://[redacted]@{name}.vault.azure.net" (line 4)',
    ]);
  });
});
