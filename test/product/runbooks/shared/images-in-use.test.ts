/**
 * The pure parts of "which images are in use": reading site configurations (DOCKER|, COMPOSE|,
 * KUBE|, Windows containers, built-in stacks; undecodable payloads fail), the uses of a
 * Container App (active and newest inactive revisions), grouping by registry (`tag@digest`
 * under both; an unreadable reference fails closed), and the digests a multi-arch index keeps.
 */
import { describe, expect, it } from 'vitest';
import {
  imageUsesOfContainerApp,
  inUseScopeOf,
  InUseResolutionError,
  protectedDigests,
  usesInRegistry,
  type ImageUse,
} from '../../../../src/runbooks/shared/images-in-use.ts';
import { imagesOfFxVersion, imagesOfSiteConfig, SiteImageError } from '../../../../src/runbooks/shared/site-images.ts';
import { estateConfigSchema } from '../../../../src/config/schema.ts';

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const digest = (char: string): string => `sha256:${char.repeat(64)}`;

describe('imagesOfFxVersion', () => {
  it('reads DOCKER|, every COMPOSE| service and every KUBE| image; built-in stacks have none', () => {
    expect(imagesOfFxVersion('DOCKER|crx.azurecr.io/app:v1', 'linuxFxVersion')).toEqual([{ image: 'crx.azurecr.io/app:v1' }]);
    expect(imagesOfFxVersion('docker|crx.azurecr.io/app:v1', 'linuxFxVersion')).toEqual([{ image: 'crx.azurecr.io/app:v1' }]);
    const compose = 'services:\n  web:\n    image: crx.azurecr.io/web:v1\n    ports: ["80:80"]\n  worker:\n    image: "CRX.azurecr.io:443/worker:v2"\n  cache:\n    image: redis:7\n';
    expect(imagesOfFxVersion(`COMPOSE|${b64(compose)}`, 'linuxFxVersion')).toEqual([
      { image: 'crx.azurecr.io/web:v1', via: 'compose service web' },
      { image: 'CRX.azurecr.io:443/worker:v2', via: 'compose service worker' },
      { image: 'redis:7', via: 'compose service cache' },
    ]);
    // Anchors resolve; line breaks inside the base64 are tolerated.
    const anchored = 'x-base: &base\n  image: crx.azurecr.io/base:v1\nservices:\n  a: *base\n  b:\n    <<: *base\n';
    expect(imagesOfFxVersion(`COMPOSE|${b64(anchored).replace(/(.{20})/g, '$1\n')}`, 'linuxFxVersion').map((use) => use.image)).toEqual([
      'crx.azurecr.io/base:v1',
      'crx.azurecr.io/base:v1',
    ]);
    const kube = 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: crx.azurecr.io/a:1\n  initContainers:\n    - name: b\n      image: crx.azurecr.io/b:1\n---\nkind: Pod\nspec:\n  containers: [{ name: c, image: crx.azurecr.io/c:1 }]\n';
    expect(imagesOfFxVersion(`KUBE|${b64(kube)}`, 'linuxFxVersion').map((use) => use.image)).toEqual(['crx.azurecr.io/a:1', 'crx.azurecr.io/b:1', 'crx.azurecr.io/c:1']);
    for (const value of ['NODE|20-lts', 'PYTHON|3.12', 'DOTNETCORE|8.0', 'sitecontainers', 'SITECONTAINERS', '', undefined, null]) {
      expect(imagesOfFxVersion(value, 'linuxFxVersion')).toEqual([]);
    }
    expect(imagesOfSiteConfig({ linuxFxVersion: '', windowsFxVersion: 'DOCKER|crx.azurecr.io/win:ltsc2022' })).toEqual([{ image: 'crx.azurecr.io/win:ltsc2022' }]);
  });

  it.each([
    ['COMPOSE|', /expected base64 content/],
    ['COMPOSE|not base64!', /expected base64 content/],
    [`COMPOSE|${Buffer.from([0xff, 0xfe, 0x00]).toString('base64')}`, /expected UTF-8/],
    [`COMPOSE|${b64('services: [unclosed')}`, /expected YAML/],
    [`COMPOSE|${b64('just a string')}`, /services mapping/],
    [`COMPOSE|${b64('services:\n  web:\n    build: .\n')}`, /at least one service with an image/],
    [`COMPOSE|${b64('services:\n  web:\n    image: [a, b]\n')}`, /service "web" to name its image as a string/],
    [`COMPOSE|${b64('a: 1\n---\nservices: {}\n')}`, /one Docker Compose document/],
    [`KUBE|${b64('kind: Pod\n')}`, /at least one image field/],
    [`KUBE|${b64('spec:\n  containers:\n    - image: 3\n')}`, /spec.containers\[0\].image to be an image reference/],
    ['DOCKER|', /expected an image after "DOCKER\|"/],
  ])('fails on %j rather than report no images', (value, problem) => {
    expect(() => imagesOfFxVersion(value, 'linuxFxVersion')).toThrow(SiteImageError);
    expect(() => imagesOfFxVersion(value, 'linuxFxVersion')).toThrow(problem);
  });
});

describe('imageUsesOfContainerApp', () => {
  const app = {
    name: 'ca',
    resourceId: '/x/ca',
    images: ['cr.azurecr.io/api:v5'],
    revisions: [
      { name: 'ca--v5', active: true, createdTime: '2026-01-05T00:00:00.000Z', images: ['cr.azurecr.io/api:v5'] },
      { name: 'ca--v4', active: false, createdTime: '2026-01-04T00:00:00.000Z', images: ['cr.azurecr.io/api:v4'] },
      { name: 'ca--v2', active: true, createdTime: '2026-01-02T00:00:00.000Z', images: ['cr.azurecr.io/api:v2'] },
      { name: 'ca--v3', active: false, createdTime: '2026-01-03T00:00:00.000Z', images: ['cr.azurecr.io/api:v3'] },
      { name: 'ca--v1', active: false, createdTime: '2026-01-01T00:00:00.000Z', images: ['cr.azurecr.io/api:v1', 'cr.azurecr.io/migrate:v1'] },
      { name: 'ca--v0', active: false, images: ['cr.azurecr.io/api:v0'] },
    ],
  };
  it('counts the template, every active revision and the newest N inactive ones (undated counts as newest)', () => {
    const images = (n: number): string[] => imageUsesOfContainerApp(app, n).map((use) => use.image);
    expect(images(0)).toEqual(['cr.azurecr.io/api:v5', 'cr.azurecr.io/api:v2']);
    expect(images(2)).toEqual(['cr.azurecr.io/api:v5', 'cr.azurecr.io/api:v2', 'cr.azurecr.io/api:v0', 'cr.azurecr.io/api:v4']);
    expect(images(4)).toEqual([
      'cr.azurecr.io/api:v5',
      'cr.azurecr.io/api:v2',
      'cr.azurecr.io/api:v0',
      'cr.azurecr.io/api:v4',
      'cr.azurecr.io/api:v3',
      'cr.azurecr.io/api:v1',
      'cr.azurecr.io/migrate:v1',
    ]);
    expect(imageUsesOfContainerApp(app, 2).find((use) => use.image.endsWith(':v4'))?.usedBy).toBe('ca (inactive revision ca--v4, kept for rollback)');
  });
});

describe('usesInRegistry', () => {
  const use = (image: string, usedBy = 'app'): ImageUse => ({ image, usedBy, resourceId: `/x/${usedBy}` });
  it('groups the uses of one registry by repository and reference, however the reference is written', () => {
    const uses = [
      use('crx.azurecr.io/api:v1', 'a'),
      use('CRX.AzureCR.io:443/API:v1', 'b'),
      use(`crx.azurecr.io/api:v2@${digest('c')}`, 'c'),
      use('crx.azurecr.io/web', 'd'),
      use('crother.azurecr.io/api:v1', 'e'),
      use('nginx:1', 'f'),
    ];
    expect(usesInRegistry(uses, 'crx', 'AzureCloud')).toEqual([
      { image: 'crx.azurecr.io/api:v1', repository: 'api', reference: 'v1', usedBy: ['a', 'b'] },
      { image: `crx.azurecr.io/api:v2@${digest('c')}`, repository: 'api', reference: digest('c'), usedBy: ['c'] },
      { image: `crx.azurecr.io/api:v2@${digest('c')}`, repository: 'api', reference: 'v2', usedBy: ['c'] },
      { image: 'crx.azurecr.io/web', repository: 'web', reference: 'latest', usedBy: ['d'] },
    ]);
  });

  it('fails closed on a reference that cannot be read, naming the consumer', () => {
    expect(() => usesInRegistry([use('${ACR}/api:v1', 'ca-broken')], 'crx', 'AzureCloud', { registry: '/x/crx' })).toThrow(InUseResolutionError);
    expect(() => usesInRegistry([use('${ACR}/api:v1', 'ca-broken')], 'crx', 'AzureCloud')).toThrow(/ca-broken runs an image whose registry cannot be told/);
  });
});

describe('protectedDigests', () => {
  const index = digest('1');
  const amd64 = digest('2');
  const arm64 = digest('3');
  const nested = digest('4');
  const other = digest('5');
  const manifests = [
    { digest: nested, related: [index] },
    { digest: index, related: [amd64, arm64] },
    { digest: amd64, related: [] },
    { digest: arm64, related: [] },
    { digest: other, related: [] },
  ];
  const inUse = (reference: string) => [{ image: `cr.azurecr.io/app@${reference}`, repository: 'app', reference, usedBy: ['ca-app'] }];

  it('an in-use platform manifest keeps its index (and the index of that index) and its siblings', () => {
    const result = protectedDigests(inUse(arm64), new Map(), manifests);
    expect([...result.protected.keys()].sort()).toEqual([index, amd64, arm64, nested].sort());
    expect(result.protected.get(arm64)).toEqual({ users: [`ca-app (cr.azurecr.io/app@${arm64})`] });
    expect(result.protected.get(index)?.relation).toBe(`multi-arch index of the in-use platform image ${arm64}`);
    expect(result.protected.get(amd64)?.relation).toBe(`platform image of the in-use multi-arch index ${index}`);
    expect(result.protected.has(other)).toBe(false);
  });

  it('an in-use index, named by tag, keeps its platform manifests; a missing tag or digest is reported', () => {
    const tagged = [{ image: 'cr.azurecr.io/app:multi', repository: 'app', reference: 'multi', usedBy: ['site'] }];
    const result = protectedDigests(tagged, new Map([['multi', index]]), manifests);
    expect([...result.protected.keys()].sort()).toEqual([index, amd64, arm64, nested].sort());
    const missing = protectedDigests([...inUse(digest('9')), { image: 'x', repository: 'app', reference: 'gone', usedBy: ['y'] }], new Map(), manifests);
    expect(missing.protected.size).toBe(0);
    expect(missing.missing.map((use) => use.reference)).toEqual([digest('9'), 'gone']);
  });
});

describe('inUseScopeOf', () => {
  const registryId = '/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/crx';
  const appId = '/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/rg/providers/Microsoft.App/containerApps/ca';
  const jobId = '/subscriptions/44444444-4444-4444-8444-444444444444/resourceGroups/rg/providers/Microsoft.App/jobs/job';
  const config = estateConfigSchema.parse({ version: 1, estate: 'x', targets: [{ id: registryId }, { id: appId }] });
  const policy = { inUseDiscovery: 'subscriptions' as const, inUseSubscriptions: ['33333333-3333-4333-8333-333333333333'], inUseScope: [jobId], keepInactiveRevisions: 2 };

  it('by default covers the registry\'s subscription, every target\'s, inUseScope\'s and inUseSubscriptions', () => {
    expect(inUseScopeOf(config, registryId, policy)).toEqual({
      subscriptions: ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333', '44444444-4444-4444-8444-444444444444'],
      resources: [appId, jobId],
      inactiveRevisions: 2,
    });
  });

  it('listed: only the configured apps and inUseScope', () => {
    expect(inUseScopeOf(config, registryId, { ...policy, inUseDiscovery: 'listed' })).toEqual({ subscriptions: [], resources: [appId, jobId], inactiveRevisions: 2 });
  });
});
