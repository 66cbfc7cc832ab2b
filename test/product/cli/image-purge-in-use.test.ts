/**
 * image-purge never deletes an image in use, through the CLI as an operator runs it, against
 * sandbox worlds that plant every way an image can be in use. Each repository of `crinuse`
 * holds the tag(s) something pulls, an old tag nothing pulls (`unused`, which must go, so the
 * purge demonstrably ran) and a new tag (kept as the newest):
 * - `compose/*`: services of a Docker Compose web app (`COMPOSE|<base64>`), one of them written
 *   with an upper-case host and a port;
 * - `port/*`: a Container App revision and a slot naming the registry with `:443` and odd case;
 * - `pinned/app` (`tag@digest`: both stay), `latest/app` (no tag: `latest` stays);
 * - `unlisted/api`, `job/migrate`, `sidecar/*`: a Container App, a Container Apps job (template
 *   and a running execution; a finished one does not count) and a sidecar-enabled web app
 *   (sitecontainers of the site and of a slot) that the config does not list;
 * - `rollback/api`: the two newest inactive revisions stay (rollback targets), an older one goes;
 * - `multi/app`: an app pins the arm64 platform manifest of a multi-arch index; the index, its
 *   tag and its amd64 sibling stay, while an unused index goes whole;
 * - `cross/*`: apps in a second subscription the config names (a target there) and in a third
 *   one named by `inUseSubscriptions`.
 * And it fails closed, deleting nothing and naming the cause, when a compose payload cannot be
 * decoded, an image reference cannot be read, or a subscription's job list cannot be read.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ContainerRegistriesProvider, defaultProviders } from '../../../sandbox/providers/index.ts';
import { cli } from '../../support/cli.ts';
import { providerOf, writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const TENANT = '72f988bf-0000-4000-8000-00000000a001';
const SUB_A = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1011';
const SUB_B = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1012';
const SUB_C = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1013';
const SUB_BROKEN = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1014';
const SUB_BADREF = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1015';
const ACR = 'crinuse.azurecr.io';
const idIn = (subscription: string, type: string, name: string): string => `/subscriptions/${subscription}/resourceGroups/rg-in-use/providers/${type}/${name}`;
const REGISTRY_ID = idIn(SUB_A, 'Microsoft.ContainerRegistry/registries', 'crinuse');
const PINNED = `sha256:${'d1'.repeat(32)}`;
const ARM64 = `sha256:${'a6'.repeat(32)}`;

/** A repository with the given old tags (100 days) plus `unused` (100 days) and `new` (1 day). */
const repository = (name: string, tags: readonly (string | { name: string; extra: string })[]): string =>
  [
    `        - name: ${name}`,
    '          tags:',
    ...tags.map((tag) => (typeof tag === 'string' ? `            - { name: ${tag}, createdDaysAgo: 100 }` : `            - { name: ${tag.name}, createdDaysAgo: 100, ${tag.extra} }`)),
    '            - { name: unused, createdDaysAgo: 100 }',
    '            - { name: new, createdDaysAgo: 1 }',
  ].join('\n');

const COMPOSE = [
  'services:',
  '  web:',
  `    image: ${ACR}/compose/web:used`,
  '  worker:',
  '    image: CRINUSE.AzureCR.io:443/compose/worker:used',
  '  cache:',
  '    image: redis:7',
].join('\n');

const header = (name: string, subscription: string, description: string): string =>
  `name: ${name}\ndescription: ${description}\ntenantId: ${TENANT}\nsubscriptionId: ${subscription}\nresources:\n`;
const plan = `  - type: Microsoft.Web/serverfarms
    resourceGroup: rg-in-use
    name: asp-in-use
    location: eastus
    spec: { kind: linux, sku: { name: P1v3, tier: PremiumV3 } }
`;
const containerApp = (name: string, revisions: readonly string[]): string => `  - type: Microsoft.App/containerApps
    resourceGroup: rg-in-use
    name: ${name}
    location: eastus
    spec:
      environment: cae-in-use
      environmentDomain: mildfield-0a1b2c3d.eastus.azurecontainerapps.io
      activeRevisionsMode: Multiple
      revisions:
${revisions.map((revision) => `        - ${revision}`).join('\n')}
`;

const WORLD_A =
  header('in-use-lab', SUB_A, 'Every way an image of crinuse can be in use.') +
  plan +
  `  - type: Microsoft.Web/sites
    resourceGroup: rg-in-use
    name: app-compose
    location: eastus
    spec:
      kind: app,linux,container
      serverFarm: asp-in-use
      compose: ${JSON.stringify(COMPOSE)}
      slots:
        - { name: staging, linuxFxVersion: "DOCKER|CrInUse.AzureCR.io:443/port/slot:used" }
  - type: Microsoft.Web/sites
    resourceGroup: rg-in-use
    name: app-sidecar
    location: eastus
    spec:
      kind: app,linux,container
      serverFarm: asp-in-use
      linuxFxVersion: SITECONTAINERS
      sitecontainers:
        - { name: main, image: ${ACR}/sidecar/main:used, isMain: true, targetPort: "8080" }
        - { name: otel, image: ${ACR}/sidecar/otel:used }
      slots:
        - name: staging
          sitecontainers:
            - { name: main, image: ${ACR}/sidecar/main:used, isMain: true }
            - { name: otel, image: ${ACR}/sidecar/otel:slotused }
` +
  containerApp('ca-port', [
    `{ suffix: v1, image: "${ACR}:443/port/api:used", initImages: ["${ACR}/pinned/app:label@${PINNED}", "${ACR}/latest/app"], createdDaysAgo: 3, active: true }`,
  ]) +
  containerApp('ca-unlisted', [`{ suffix: v1, image: ${ACR}/unlisted/api:used, initImages: ["${ACR}/multi/app@${ARM64}"], createdDaysAgo: 3, active: true }`]) +
  containerApp('ca-rollback', [
    `{ suffix: r1, image: ${ACR}/rollback/api:r1, createdDaysAgo: 60, active: false }`,
    `{ suffix: r2, image: ${ACR}/rollback/api:r2, createdDaysAgo: 50, active: false }`,
    `{ suffix: r3, image: ${ACR}/rollback/api:r3, createdDaysAgo: 40, active: false }`,
    `{ suffix: r4, image: ${ACR}/rollback/api:new, createdDaysAgo: 1, active: true }`,
  ]) +
  `  - type: Microsoft.App/jobs
    resourceGroup: rg-in-use
    name: job-migrate
    location: eastus
    spec:
      environment: cae-in-use
      triggerType: Schedule
      cronExpression: "0 3 * * *"
      image: ${ACR}/job/migrate:used
      executions:
        - { suffix: running, status: Running, startedMinutesAgo: 10, image: "${ACR}/job/migrate:running" }
        - { suffix: done, status: Succeeded, startedMinutesAgo: 2000, image: "${ACR}/job/migrate:finished" }
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-in-use
    name: crinuse
    location: eastus
    spec:
      repositories:
${[
  repository('compose/web', ['used']),
  repository('compose/worker', ['used']),
  repository('port/api', ['used']),
  repository('port/slot', ['used']),
  repository('pinned/app', [{ name: 'used', extra: `digest: "${PINNED}"` }, 'label']),
  repository('latest/app', ['latest']),
  repository('unlisted/api', ['used']),
  repository('job/migrate', ['used', 'running', 'finished']),
  repository('sidecar/main', ['used']),
  repository('sidecar/otel', ['used', 'slotused']),
  repository('rollback/api', ['r1', 'r2', 'r3']),
  repository('multi/app', [
    { name: 'multi', extra: `platforms: [{ architecture: amd64 }, { architecture: arm64, digest: "${ARM64}" }]` },
    { name: 'old-multi', extra: 'platforms: [{ architecture: amd64 }, { architecture: arm64 }]' },
  ]),
  repository('cross/b', ['used']),
  repository('cross/c', ['used']),
].join('\n')}
`;

const WORLD_B =
  header('in-use-lab-b', SUB_B, 'A subscription the config names (a target lives here).') +
  containerApp('ca-other-sub', [`{ suffix: v1, image: ${ACR}/cross/b:used, createdDaysAgo: 3, active: true }`]) +
  `  - type: Microsoft.KeyVault/vaults
    resourceGroup: rg-in-use
    name: kv-in-use-b
    location: eastus
    spec: {}
`;
const WORLD_C =
  header('in-use-lab-c', SUB_C, 'A subscription named only by inUseSubscriptions, with a registry of its own.') +
  containerApp('ca-third-sub', [`{ suffix: v1, image: ${ACR}/cross/c:used, createdDaysAgo: 3, active: true }`]) +
  `  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-in-use
    name: crthird
    location: eastus
    spec:
      repositories:
${repository('api', [])}
`;
const WORLD_BROKEN =
  header('in-use-broken', SUB_BROKEN, 'A compose app whose payload is not base64.') +
  plan +
  `  - type: Microsoft.Web/sites
    resourceGroup: rg-in-use
    name: app-broken-compose
    location: eastus
    spec: { kind: "app,linux,container", serverFarm: asp-in-use, linuxFxVersion: "COMPOSE|c2VydmljZXM6!!not-base64" }
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-in-use
    name: crbroken
    location: eastus
    spec:
      repositories:
${repository('api', [])}
`;
const WORLD_BADREF =
  header('in-use-badref', SUB_BADREF, 'A Container App whose image reference has an unexpanded variable.') +
  containerApp('ca-badref', ['{ suffix: v1, image: "${REGISTRY}/api:v1", createdDaysAgo: 3, active: true }']) +
  `  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-in-use
    name: crbadref
    location: eastus
    spec:
      repositories:
${repository('api', [])}
`;

const providers = defaultProviders();
const registries = providerOf(providers, ContainerRegistriesProvider);
const sandbox = useSandbox({
  worlds: [
    writeWorldFile('in-use-lab', WORLD_A),
    writeWorldFile('in-use-lab-b', WORLD_B),
    writeWorldFile('in-use-lab-c', WORLD_C),
    writeWorldFile('in-use-broken', WORLD_BROKEN),
    writeWorldFile('in-use-badref', WORLD_BADREF),
  ],
  postgres: false,
  azurite: false,
  providers,
  throttling: { acrPerSecond: 200, acrBurst: 200 },
});
const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-purge-in-use-'));

/** An estate config written by hand, as an operator would: the registry, and only the targets given. */
function configFile(name: string, registryId: string, policy: Record<string, unknown>, others: readonly string[] = []): string {
  const file = path.join(dir, `${name}.yaml`);
  const config = {
    version: 1,
    estate: name,
    dryRun: false,
    azure: { ...sandbox().azureSettings(), requestBudget: { acrPerSecond: 150, acrBurst: 50 } },
    targets: [
      { id: registryId, runbooks: { 'image-purge': { repositories: ['.*'], keep: 1, olderThanDays: 30, deleteUntaggedManifests: true, maxDeletionsPerRun: 1000, ...policy } } },
      ...others.map((id) => ({ id })),
    ],
  };
  writeFileSync(file, stringify(config));
  return file;
}

function tagsOf(registry: string, name: string): string[] {
  return [...(registries.getRegistry(registry)?.repositories.get(name)?.tags.keys() ?? [])].sort();
}

function manifestsOf(registry: string, name: string): string[] {
  return [...(registries.getRegistry(registry)?.repositories.get(name)?.manifests.keys() ?? [])].sort();
}

interface RunJson {
  exit: string;
  plans: { actions: { id: string }[]; kept: { resource: string; reason: string }[]; checks: { code: string; message: string; found: string }[] }[];
  record: { targets: { status: string; error?: { name: string; message: string } }[] };
}

describe('image-purge keeps every image in use (CLI, sandbox)', () => {
  const labConfig = (name: string, policy: Record<string, unknown> = {}): string =>
    configFile(name, REGISTRY_ID, { inUseSubscriptions: [SUB_C], ...policy }, [idIn(SUB_A, 'Microsoft.Web/sites', 'app-compose'), idIn(SUB_A, 'Microsoft.App/containerApps', 'ca-port'), idIn(SUB_B, 'Microsoft.KeyVault/vaults', 'kv-in-use-b')]);

  it('listed consumers only (an explicit opt-in) would delete the images of unlisted apps, jobs, sidecars and other subscriptions', { timeout: 120_000 }, async () => {
    await sandbox().clearRequests();
    const run = await cli(['plan', 'image-purge', '--config', labConfig('listed', { inUseDiscovery: 'listed', deleteUntaggedManifests: false }), '--json'], { timeoutMs: 100_000 });
    expect(run.code, run.stderr).toBe(0);
    const ids = (JSON.parse(run.stdout) as RunJson).plans[0]?.actions.map((action) => action.id) ?? [];
    for (const id of ['delete-tag:unlisted/api:used', 'delete-tag:job/migrate:used', 'delete-tag:sidecar/otel:used', 'delete-tag:cross/b:used', 'delete-tag:cross/c:used']) {
      expect(ids).toContain(id);
    }
    // Listed apps still count, whatever way they write their images.
    expect(ids).not.toContain('delete-tag:compose/worker:used');
    expect(ids).not.toContain('delete-tag:port/api:used');
    expect((await sandbox().requests()).filter((entry) => entry.method === 'DELETE')).toEqual([]);
  });

  it('by default, applies and deletes only what nothing pulls', { timeout: 180_000 }, async () => {
    const file = labConfig('default');
    const planned = await cli(['plan', 'image-purge', '--config', file, '--json'], { timeoutMs: 100_000 });
    expect(planned.code, planned.stderr).toBe(0);
    const doc = JSON.parse(planned.stdout) as RunJson;
    const check = doc.plans[0]?.checks.find((candidate) => candidate.code === 'acr.purge.inUse');
    expect(check?.message).toMatch(new RegExp(`every Container App, job and web app in subscription\\(s\\) .*${SUB_A}.*${SUB_B}.*${SUB_C}`));
    const reasons = new Map(doc.plans[0]?.kept.map((kept) => [kept.resource, kept.reason]));
    expect(reasons.get('crinuse/compose/worker:used')).toContain('app-compose (compose service worker)');
    expect(reasons.get('crinuse/port/slot:used')).toContain('app-compose (slot staging)');
    expect(reasons.get('crinuse/sidecar/otel:slotused')).toContain('app-sidecar (slot staging, sidecar otel)');
    expect(reasons.get('crinuse/job/migrate:running')).toContain('job-migrate (job execution job-migrate-running)');
    expect(reasons.get('crinuse/rollback/api:r3')).toContain('ca-rollback (inactive revision ca-rollback--r3, kept for rollback)');
    expect(reasons.get('crinuse/multi/app:multi')).toContain(`multi-arch index of the in-use platform image ${ARM64}`);

    const run = await cli(['run', 'image-purge', '--config', file, '--yes'], { timeoutMs: 150_000 });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const kept = (name: string, ...tags: string[]): void => {
      expect(tagsOf('crinuse', name), name).toEqual([...tags, 'new'].sort());
    };
    kept('compose/web', 'used');
    kept('compose/worker', 'used');
    kept('port/api', 'used');
    kept('port/slot', 'used');
    kept('pinned/app', 'label', 'used');
    kept('latest/app', 'latest');
    kept('unlisted/api', 'used');
    kept('job/migrate', 'running', 'used');
    kept('sidecar/main', 'used');
    kept('sidecar/otel', 'slotused', 'used');
    kept('rollback/api', 'r2', 'r3');
    kept('multi/app', 'multi');
    kept('cross/b', 'used');
    kept('cross/c', 'used');
    // The index in use, both its platform manifests and `new`; the unused index went whole.
    const multi = registries.getRegistry('crinuse')?.repositories.get('multi/app');
    const index = multi?.tags.get('multi')?.digest ?? '';
    const platforms = multi?.manifests.get(index)?.references.map((reference) => reference.digest) ?? [];
    expect(platforms).toContain(ARM64);
    expect(manifestsOf('crinuse', 'multi/app')).toEqual([index, ...platforms, multi?.tags.get('new')?.digest ?? ''].sort());
  });
});

describe('image-purge fails closed when a consumer cannot be read (CLI, sandbox)', () => {
  const expectRefused = async (file: string, message: RegExp): Promise<void> => {
    await sandbox().clearRequests();
    const run = await cli(['run', 'image-purge', '--config', file, '--yes', '--json'], { timeoutMs: 100_000 });
    expect(run.code, run.stderr).toBe(1);
    const doc = JSON.parse(run.stdout) as RunJson;
    expect(doc.record.targets[0]?.status).toBe('failed');
    expect(doc.record.targets[0]?.error?.name).toBe('InUseResolutionError');
    expect(doc.record.targets[0]?.error?.message).toMatch(message);
    expect((await sandbox().requests()).filter((entry) => entry.method === 'DELETE')).toEqual([]);
  };

  it('a compose payload that is not base64', { timeout: 120_000 }, async () => {
    await expectRefused(
      configFile('broken-compose', idIn(SUB_BROKEN, 'Microsoft.ContainerRegistry/registries', 'crbroken'), {}),
      /app-broken-compose\/config\/web.*linuxFxVersion COMPOSE\|…: expected base64 content/,
    );
    expect(tagsOf('crbroken', 'api')).toEqual(['new', 'unused']);
  });

  it('an image reference whose registry cannot be told', { timeout: 120_000 }, async () => {
    await expectRefused(configFile('bad-reference', idIn(SUB_BADREF, 'Microsoft.ContainerRegistry/registries', 'crbadref'), {}), /ca-badref runs an image whose registry cannot be told: .*\$\{REGISTRY\}\/api:v1/);
    expect(tagsOf('crbadref', 'api')).toEqual(['new', 'unused']);
  });

  it('a subscription whose Container Apps jobs cannot be listed', { timeout: 120_000 }, async () => {
    const file = configFile('jobs-unreadable', idIn(SUB_C, 'Microsoft.ContainerRegistry/registries', 'crthird'), {});
    await sandbox().injectFault({ pathPattern: `/subscriptions/${SUB_C}/providers/Microsoft.App/jobs`, status: 403, errorCode: 'AuthorizationFailed', count: 1000 });
    try {
      await expectRefused(file, new RegExp(`could not determine the images in use by /subscriptions/${SUB_C}/providers/Microsoft.App/jobs \\(needed before purging .*crthird\\): .*AuthorizationFailed`));
    } finally {
      await sandbox().clearFaults();
    }
    expect(tagsOf('crthird', 'api')).toEqual(['new', 'unused']);
    // Readable again, the same purge goes ahead: nothing pulls from crthird.
    const run = await cli(['run', 'image-purge', '--config', file, '--yes'], { timeoutMs: 100_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(tagsOf('crthird', 'api')).toEqual(['new']);
  });
});
