/**
 * Images pulled only by init containers count as in use: inventory reads `initContainers` of
 * the Container App template and of every revision (served by the sandbox as ARM does), so the
 * registry lists them in use and image-purge (which shares these functions) keeps them.
 */
import { describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { runInventory } from '../../../src/runbooks/inventory.ts';
import { imageUsesOfContainerApp } from '../../../src/runbooks/shared/images-in-use.ts';
import { worldConfig, writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SUB = '6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c06';
const RG = 'rg-initc';
const REGISTRY = 'crinitc';
const LOGIN = `${REGISTRY}.azurecr.io`;

const worldFile = writeWorldFile(
  'init-containers',
  `name: init-containers
description: A Container App whose revisions run init containers (migrations) from the same registry.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
  - type: Microsoft.App/containerApps
    resourceGroup: ${RG}
    name: ca-initc
    location: eastus
    spec:
      environment: cae-initc
      environmentDomain: quietbay-1a2b3c4d.eastus.azurecontainerapps.io
      activeRevisionsMode: Multiple
      registryServer: ${LOGIN}
      revisions:
        - { suffix: v1, image: ${LOGIN}/api:v1, initImages: [${LOGIN}/migrate:v1], createdDaysAgo: 10, active: true }
        - { suffix: v2, image: ${LOGIN}/api:v2, initImages: [${LOGIN}/migrate:v2, ${LOGIN}/seed:v2], createdDaysAgo: 1, active: true }
        - { suffix: v0, image: ${LOGIN}/api:v0, initImages: [${LOGIN}/migrate:v0], createdDaysAgo: 20, active: false }
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: ${RG}
    name: ${REGISTRY}
    location: eastus
    spec:
      repositories:
        - name: api
          tags: [{ name: v0, createdDaysAgo: 20 }, { name: v1, createdDaysAgo: 10 }, { name: v2, createdDaysAgo: 1 }]
        - name: migrate
          tags: [{ name: v0, createdDaysAgo: 20 }, { name: v1, createdDaysAgo: 10 }, { name: v2, createdDaysAgo: 1 }]
        - name: seed
          tags: [{ name: v2, createdDaysAgo: 1 }]
`,
);

describe('init container images are in use', () => {
  const sandbox = useSandbox({ worlds: [worldFile], postgres: false, azurite: false });

  it('inventory reads init images of the template and of every revision, and the registry lists them in use', async () => {
    const config = await worldConfig(sandbox(), 'init-containers');
    const clients = createAzureClients(config.azure);
    const result = await runInventory(config, clients, { trigger: 'cli' }).finally(() => clients.close());
    expect(result.errors).toEqual([]);
    const app = result.containerApps.find((candidate) => candidate.name === 'ca-initc');
    if (app === undefined) throw new Error('expected ca-initc in the inventory');
    expect(app.images).toEqual([`${LOGIN}/api:v2`, `${LOGIN}/migrate:v2`, `${LOGIN}/seed:v2`]);
    expect(app.revisions.map((revision) => [revision.name, revision.images])).toEqual([
      ['ca-initc--v2', [`${LOGIN}/api:v2`, `${LOGIN}/migrate:v2`, `${LOGIN}/seed:v2`]],
      ['ca-initc--v1', [`${LOGIN}/api:v1`, `${LOGIN}/migrate:v1`]],
      ['ca-initc--v0', [`${LOGIN}/api:v0`, `${LOGIN}/migrate:v0`]],
    ]);
    const inUse = (inactiveRevisions: number): string[] =>
      imageUsesOfContainerApp({ ...app, resourceId: app.targetId }, inactiveRevisions)
        .map((use) => use.image)
        .sort();
    expect(inUse(0)).toEqual([`${LOGIN}/api:v1`, `${LOGIN}/api:v2`, `${LOGIN}/migrate:v1`, `${LOGIN}/migrate:v2`, `${LOGIN}/seed:v2`].sort());
    // The inactive revision is a rollback target: with keepInactiveRevisions >= 1 its images count too.
    expect(inUse(1)).toEqual([`${LOGIN}/api:v0`, `${LOGIN}/api:v1`, `${LOGIN}/api:v2`, `${LOGIN}/migrate:v0`, `${LOGIN}/migrate:v1`, `${LOGIN}/migrate:v2`, `${LOGIN}/seed:v2`].sort());

    const registry = result.registries.find((candidate) => candidate.name === REGISTRY);
    expect(registry?.imagesInUse.map((image) => [image.image, image.usedBy, image.present])).toEqual([
      [`${LOGIN}/api:v0`, ['ca-initc (inactive revision ca-initc--v0, kept for rollback)'], true],
      [`${LOGIN}/api:v1`, ['ca-initc (revision ca-initc--v1)'], true],
      [`${LOGIN}/api:v2`, ['ca-initc'], true],
      [`${LOGIN}/migrate:v0`, ['ca-initc (inactive revision ca-initc--v0, kept for rollback)'], true],
      [`${LOGIN}/migrate:v1`, ['ca-initc (revision ca-initc--v1)'], true],
      [`${LOGIN}/migrate:v2`, ['ca-initc'], true],
      [`${LOGIN}/seed:v2`, ['ca-initc'], true],
    ]);
  });
});
