/**
 * The sandbox routes and world fields for consumers of registry images, through the real SDK
 * clients: Container Apps jobs (paged by subscription, get, executions), App Service
 * sitecontainers (site and slot), compose and Windows container configurations, and ACR image
 * indexes with their platform manifests. Bad specs fail start-up naming the world file.
 */
import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { ContainerRegistryClient, KnownContainerRegistryAudience } from '@azure/container-registry';
import { describe, expect, it } from 'vitest';
import { startSandbox } from '../../../sandbox/index.ts';
import { collect } from '../../../src/util/collect.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { sandboxCredential, useSandbox } from '../../support/sandbox.ts';

const SUB = '0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c016';
const RG = 'rg-consumers';
const ARM64 = `sha256:${'c4'.repeat(32)}`;
const COMPOSE = 'services:\n  web:\n    image: crcons.azurecr.io/web:v1\n';

const jobs = Array.from({ length: 12 }, (_, index) => `  - type: Microsoft.App/jobs
    resourceGroup: ${RG}
    name: job-${String(index + 1).padStart(2, '0')}
    location: eastus
    spec: { environment: cae, image: "crcons.azurecr.io/job:v${String(index + 1)}" }`).join('\n');

const world = writeWorldFile(
  'consumers',
  `name: consumers
description: Consumers of registry images.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
${jobs}
  - type: Microsoft.App/jobs
    resourceGroup: ${RG}
    name: job-nightly
    location: eastus
    spec:
      environment: cae
      triggerType: Schedule
      cronExpression: "0 2 * * *"
      image: crcons.azurecr.io/nightly:v3
      initImages: [crcons.azurecr.io/migrate:v3]
      executions:
        - { suffix: a, status: Running, startedMinutesAgo: 3, image: crcons.azurecr.io/nightly:v2 }
        - { suffix: b, status: Failed, startedMinutesAgo: 1500 }
  - type: Microsoft.Web/serverfarms
    resourceGroup: ${RG}
    name: asp
    location: eastus
    spec: { sku: { name: P1v3, tier: PremiumV3 } }
  - type: Microsoft.Web/sites
    resourceGroup: ${RG}
    name: app-sidecar
    location: eastus
    spec:
      serverFarm: asp
      linuxFxVersion: SITECONTAINERS
      sitecontainers:
        - { name: main, image: crcons.azurecr.io/main:v1, isMain: true, targetPort: "8080" }
        - { name: otel, image: crcons.azurecr.io/otel:v1 }
      slots:
        - { name: staging, sitecontainers: [{ name: main, image: crcons.azurecr.io/main:v2, isMain: true }] }
  - type: Microsoft.Web/sites
    resourceGroup: ${RG}
    name: app-compose
    location: eastus
    spec: { serverFarm: asp, compose: ${JSON.stringify(COMPOSE)} }
  - type: Microsoft.Web/sites
    resourceGroup: ${RG}
    name: app-windows
    location: eastus
    spec: { kind: "app,container,windows", serverFarm: asp, windowsFxVersion: "DOCKER|crcons.azurecr.io/win:ltsc2022" }
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: ${RG}
    name: crcons
    location: eastus
    spec:
      repositories:
        - name: app
          tags:
            - { name: multi, createdDaysAgo: 10, platforms: [{ architecture: amd64 }, { architecture: arm64, variant: v8, digest: "${ARM64}" }] }
            - { name: same-index, sameAs: multi }
`,
);

describe('consumers of images through the SDK clients', () => {
  const sandbox = useSandbox({ worlds: [world], postgres: false, azurite: false });
  const options = (): { endpoint: string; tlsOptions: { ca: string } } => ({ endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });

  it('lists Container Apps jobs by subscription over pages, gets one, lists its executions', async () => {
    const client = new ContainerAppsAPIClient(sandboxCredential(sandbox()), SUB, options());
    const pages: number[] = [];
    for await (const page of client.jobs.listBySubscription().byPage()) pages.push(page.length);
    expect(pages).toEqual([10, 3]);
    const nightly = await client.jobs.get(RG, 'job-nightly');
    expect(nightly.configuration).toMatchObject({ triggerType: 'Schedule', scheduleTriggerConfig: { cronExpression: '0 2 * * *' } });
    expect(nightly.template?.containers?.map((container) => container.image)).toEqual(['crcons.azurecr.io/nightly:v3']);
    expect(nightly.template?.initContainers?.map((container) => container.image)).toEqual(['crcons.azurecr.io/migrate:v3']);
    const executions = await collect(client.jobsExecutions.list(RG, 'job-nightly'));
    expect(executions.map((execution) => [execution.name, execution.status, execution.template?.containers?.[0]?.image, execution.endTime === undefined])).toEqual([
      ['job-nightly-a', 'Running', 'crcons.azurecr.io/nightly:v2', true],
      ['job-nightly-b', 'Failed', 'crcons.azurecr.io/nightly:v3', false],
    ]);
    await expect(client.jobs.get(RG, 'job-missing')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('serves sitecontainers of a site and a slot, a compose file as COMPOSE|base64, and windowsFxVersion', async () => {
    const client = new WebSiteManagementClient(sandboxCredential(sandbox()), SUB, options());
    const site = await collect(client.webApps.listSiteContainers(RG, 'app-sidecar'));
    expect(site.map((container) => [container.name, container.image, container.isMain, container.targetPort])).toEqual([
      ['main', 'crcons.azurecr.io/main:v1', true, '8080'],
      ['otel', 'crcons.azurecr.io/otel:v1', false, undefined],
    ]);
    expect((await client.webApps.getSiteContainer(RG, 'app-sidecar', 'otel')).image).toBe('crcons.azurecr.io/otel:v1');
    const slot = await collect(client.webApps.listSiteContainersSlot(RG, 'app-sidecar', 'staging'));
    expect(slot.map((container) => container.image)).toEqual(['crcons.azurecr.io/main:v2']);
    expect((await client.webApps.getConfigurationSlot(RG, 'app-sidecar', 'staging')).linuxFxVersion).toBe('SITECONTAINERS');
    const compose = await client.webApps.getConfiguration(RG, 'app-compose');
    expect(compose.linuxFxVersion?.startsWith('COMPOSE|')).toBe(true);
    expect(Buffer.from(compose.linuxFxVersion?.slice('COMPOSE|'.length) ?? '', 'base64').toString('utf8')).toBe(COMPOSE);
    expect(await collect(client.webApps.listSiteContainers(RG, 'app-compose'))).toEqual([]);
    const windows = await client.webApps.getConfiguration(RG, 'app-windows');
    expect([windows.linuxFxVersion, windows.windowsFxVersion]).toEqual(['', 'DOCKER|crcons.azurecr.io/win:ltsc2022']);
    await expect(client.webApps.getSiteContainer(RG, 'app-sidecar', 'missing')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('serves a multi-arch index with its platform manifests, as ACR lists them', async () => {
    const client = new ContainerRegistryClient(`${sandbox().baseUrl}/registries/crcons`, sandboxCredential(sandbox()), {
      audience: KnownContainerRegistryAudience.AzureResourceManagerPublicCloud,
      tlsOptions: { ca: sandbox().caPem },
    });
    const index = await client.getArtifact('app', 'multi').getManifestProperties();
    expect(index.tags.sort()).toEqual(['multi', 'same-index']);
    expect(index.architecture).toBeUndefined();
    expect(index.relatedArtifacts.map((platform) => [platform.architecture, platform.operatingSystem])).toEqual([
      ['amd64', 'linux'],
      ['arm64', 'linux'],
    ]);
    expect(index.relatedArtifacts[1]?.digest).toBe(ARM64);
    const manifests = await collect(client.getRepository('app').listManifestProperties());
    expect(manifests).toHaveLength(3);
    const arm = manifests.find((manifest) => manifest.digest === ARM64);
    expect(arm).toMatchObject({ architecture: 'arm64', operatingSystem: 'linux', tags: [], relatedArtifacts: [] });
  });
});

describe('consumer world specs are checked', () => {
  const start = (name: string, resource: string): Promise<unknown> =>
    startSandbox({
      postgres: false,
      azurite: false,
      worlds: [writeWorldFile(name, `name: ${name}\ndescription: x\ntenantId: 72f988bf-0000-4000-8000-00000000a001\nsubscriptionId: ${SUB}\nresources:\n${resource}`)],
    }).then((handle) => handle.stop());

  it.each([
    ['bad-job', '  - { type: Microsoft.App/jobs, resourceGroup: rg, name: j, location: eastus, spec: { environment: e, image: x, triggerType: Schedule } }', /expected cronExpression for triggerType Schedule/],
    [
      'bad-site',
      '  - { type: Microsoft.Web/serverfarms, resourceGroup: rg, name: p, location: eastus, spec: { sku: { name: B1, tier: Basic } } }\n  - { type: Microsoft.Web/sites, resourceGroup: rg, name: s, location: eastus, spec: { serverFarm: p, linuxFxVersion: "DOCKER|x", compose: "services: {}" } }',
      /expected compose or linuxFxVersion, found both/,
    ],
    [
      'bad-digest',
      `  - type: Microsoft.ContainerRegistry/registries\n    resourceGroup: rg\n    name: cr\n    location: eastus\n    spec: { repositories: [{ name: a, tags: [{ name: x, digest: "${ARM64}" }, { name: y, digest: "${ARM64}" }] }] }`,
      /expected each digest once/,
    ],
  ])('%s', async (name, resource, problem) => {
    await expect(start(name, resource)).rejects.toThrow(problem);
  });
});
