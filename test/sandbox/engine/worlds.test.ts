/**
 * World files: validation errors naming the file and field, dispatch of resources to
 * providers, and the estate config generated per world (validated by the estate schema).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { estateConfigSchema } from '../../../src/config/schema.ts';
import { GeneratedConfigError, startSandbox, WorldValidationError } from '../../../sandbox/index.ts';
import { sandboxRequest, sandboxToken } from '../../support/sandbox.ts';
import { createWidgetsProvider } from '../../support/widgets-provider.ts';

const SUB = '1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001';
const TENANT = '72f988bf-0000-4000-8000-00000000a001';
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-worlds-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cheap = { postgres: false, azurite: false } as const;

function worldYaml(extra: { resources?: string; exampleConfig?: string; subscription?: string } = {}): string {
  return [
    'name: widgets-world',
    'description: Widgets for the engine tests.',
    `tenantId: ${TENANT}`,
    `subscriptionId: ${extra.subscription ?? SUB}`,
    ...(extra.exampleConfig === undefined ? [] : [`exampleConfig: ${extra.exampleConfig}`]),
    'plantedProblems: []',
    'resources:',
    extra.resources ??
      [
        '  - { type: Test.Widgets/widgets, resourceGroup: rg-w, name: w1, location: West Europe, spec: { size: 3 } }',
        '  - { type: Microsoft.Web/sites, resourceGroup: rg-w, name: func-w, location: westeurope, spec: {} }',
      ].join('\n'),
  ].join('\n');
}

async function writeWorld(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('world validation', () => {
  it('names the file and every bad field', async () => {
    const file = await writeWorld(
      'bad-fields.yaml',
      worldYaml({ subscription: 'not-a-guid', resources: '  - { type: Test.Widgets/widgets, resourceGroup: rg, name: "-bad", location: x }' }),
    );
    const failure = startSandbox({ ...cheap, worlds: [file], providers: [createWidgetsProvider()] });
    await expect(failure).rejects.toBeInstanceOf(WorldValidationError);
    await expect(failure).rejects.toThrow(file);
    await expect(failure).rejects.toThrow(/subscriptionId: expected a GUID/);
    await expect(failure).rejects.toThrow(/resources\[0\]\.name: expected a resource name/);
  });

  it('names the file and index of a resource type no provider serves', async () => {
    const file = await writeWorld(
      'unknown-type.yaml',
      worldYaml({
        resources: [
          '  - { type: Test.Widgets/widgets, resourceGroup: rg, name: w1, location: x, spec: { size: 1 } }',
          '  - { type: Microsoft.Sql/servers, resourceGroup: rg, name: sql1, location: x }',
        ].join('\n'),
      }),
    );
    await expect(startSandbox({ ...cheap, worlds: [file], providers: [createWidgetsProvider()] })).rejects.toThrow(
      /unknown-type\.yaml[\s\S]*resources\[1\]\.type: expected a type served by a provider .*found "Microsoft\.Sql\/servers"/,
    );
  });

  it('fails loudly when the generated estate config is invalid', async () => {
    const example = path.join(dir, 'bad-example.yaml');
    await writeFile(example, 'version: 1\nestate: Widgets!\ntargets: []\n');
    const file = await writeWorld('bad-example-world.yaml', worldYaml({ exampleConfig: example }));
    const failure = startSandbox({ ...cheap, worlds: [file], providers: [createWidgetsProvider(['Microsoft.Web/sites'])] });
    await expect(failure).rejects.toBeInstanceOf(GeneratedConfigError);
    await expect(failure).rejects.toThrow(/estate: expected lower-case letters/);
  });
});

describe('a loaded world', () => {
  it('seeds its provider and generates a schema-valid estate config pointing at the sandbox', async () => {
    const example = path.join(dir, 'example.yaml');
    await writeFile(
      example,
      [
        '# Widgets estate',
        'version: 1',
        'estate: widgets',
        'azure:',
        '  requestBudget: { armReadsPerSecond: 5 }',
        'notifications:',
        '  webhooks:',
        '    - { name: ops-teams, url: "https://example.webhook.office.com/abc", format: teams }',
        'targets:',
        `  - id: /subscriptions/${SUB}/resourceGroups/rg-w/providers/Microsoft.Web/sites/func-w`,
        '    health: { path: /api/health }',
      ].join('\n'),
    );
    const file = await writeWorld('good.yaml', worldYaml({ exampleConfig: example }));
    const provider = createWidgetsProvider(['Microsoft.Web/sites']);
    const sandbox = await startSandbox({ ...cheap, worlds: [file], providers: [provider], lroDurationMs: 50 });
    try {
      expect(sandbox.tenantId).toBe(TENANT);
      expect(sandbox.worlds).toEqual([{ name: 'widgets-world', file, configFile: expect.stringMatching(/widgets-world\.estate\.yaml$/) as string }]);
      const configFile = sandbox.worlds[0]?.configFile ?? '';
      const text = await readFile(configFile, 'utf8');
      expect(text).toContain('# Widgets estate');
      const config = estateConfigSchema.parse(parseYaml(text));
      expect(config.azure).toMatchObject({
        ...sandbox.azureSettings(),
        requestBudget: { armReadsPerSecond: 5 },
        keyVaultChallengeResourceVerification: false,
      });
      expect(config.azure.resourceManagerEndpoint).toBe(sandbox.baseUrl);
      expect(config.notifications.webhooks[0]?.url).toBe(`${sandbox.baseUrl}/_sandbox/webhooks/ops-teams`);
      expect(config.runRecords.blobServiceUrl).toBeUndefined();

      const token = await sandboxToken(sandbox, 'https://management.azure.com/.default');
      const url = `/subscriptions/${SUB}/resourceGroups/rg-w/providers/Test.Widgets/widgets/w1`;
      const seeded = await sandboxRequest(sandbox, { url: `${url}?api-version=2024-01-01`, token });
      expect(seeded.json()).toMatchObject({ properties: { size: 3 } });
      const accepted = await sandboxRequest(sandbox, { method: 'POST', url: `${url}/resize?size=4&api-version=2024-01-01`, token });
      // Operation URLs carry the resource's normalised location from the world.
      expect(accepted.headers['azure-asyncoperation']).toContain('/providers/Test.Widgets/locations/westeurope/operationStatuses/');
    } finally {
      await sandbox.stop();
    }
  });

  it('writes a minimal config listing every supported resource when there is no example', async () => {
    const file = await writeWorld('minimal.yaml', worldYaml());
    const sandbox = await startSandbox({ ...cheap, worlds: [file], providers: [createWidgetsProvider(['Microsoft.Web/sites'])] });
    try {
      const config = estateConfigSchema.parse(parseYaml(await readFile(sandbox.worlds[0]?.configFile ?? '', 'utf8')));
      expect(config.estate).toBe('widgets-world');
      expect(config.targets.map((target) => target.id)).toEqual([`/subscriptions/${SUB}/resourceGroups/rg-w/providers/Microsoft.Web/sites/func-w`]);
    } finally {
      await sandbox.stop();
    }
  });
});
