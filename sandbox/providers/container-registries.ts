/**
 * Azure Container Registry: the ARM resource (`Microsoft.ContainerRegistry/registries` get and
 * list, shaped as the 2025-11-01 REST spec: `properties.loginServer` and the rest) and the data
 * plane (host `acr`): the ACR OAuth token exchange and the `/acr/v1` metadata API (catalog,
 * repositories, tags, manifests, locks, deletes). Tag sets can be generated for large
 * benchmark worlds.
 */
import { listedOf, type ListedResource } from './resources.ts';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import {
  armEnvelope,
  baseOf,
  daysBefore,
  hoursBefore,
  json,
  param,
  parseSpec,
  ResourceStore,
  stableHex,
  systemData,
  trackedResourceReads,
  WorldSpecError,
  worldFilePath,
  type ArmResourceBase,
} from './common.ts';

const REGISTRIES = 'Microsoft.ContainerRegistry/registries';
/** AAD audiences ACR accepts in the token exchange. */
const ACR_AUDIENCES = ['https://containerregistry.azure.net', 'https://management.azure.com', 'https://management.core.windows.net'];
const REFRESH_TOKEN_HOURS = 3;
const ACCESS_TOKEN_MINUTES = 75;
const DEFAULT_PAGE = 100;
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const MAX_PAGE = 1000;

const changeableSchema = z
  .object({
    deleteEnabled: z.boolean().default(true),
    writeEnabled: z.boolean().default(true),
    listEnabled: z.boolean().default(true),
    readEnabled: z.boolean().default(true),
  })
  .strict();

const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256: and 64 lower-case hex digits');

/** A platform manifest of a multi-arch image index. */
const platformSpecSchema = z
  .object({
    os: z.string().min(1).default('linux'),
    architecture: z.string().min(1),
    variant: z.string().min(1).optional(),
    /** Fix the platform manifest's digest, so an app in the world can pin it; default: a stable generated one. */
    digest: digestSchema.optional(),
  })
  .strict();

const tagSpecSchema = z
  .object({
    name: z.string().regex(/^[\w][\w.-]{0,127}$/),
    createdDaysAgo: z.number().min(0).optional(),
    createdHoursAgo: z.number().min(0).optional(),
    /** Point this tag at the same manifest as another tag (e.g. `latest`). */
    sameAs: z.string().optional(),
    /** Fix the digest of the tag's manifest (or index), so an app in the world can pin it; default: a stable generated one. */
    digest: digestSchema.optional(),
    /**
     * Make the tag's manifest a multi-arch image index (OCI image index) that references one
     * platform manifest per entry; the platform manifests are untagged manifests of the repository.
     */
    platforms: z.array(platformSpecSchema).min(1).optional(),
    /** Lock: `{ deleteEnabled: false }` etc. applies to the tag and its manifest. */
    lock: changeableSchema.partial().optional(),
  })
  .strict();

const tagGeneratorSchema = z
  .object({
    count: z.number().int().min(1).max(100_000),
    /** `{n}` is replaced by 1..count (oldest is 1), e.g. `v1.0.{n}`; `{sha}` by a commit-like hash. */
    pattern: z.string().min(1),
    newestDaysAgo: z.number().min(0).default(1),
    intervalDays: z.number().positive().default(3),
  })
  .strict();

const repositorySpecSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/),
    tags: z.array(tagSpecSchema).default([]),
    generate: tagGeneratorSchema.optional(),
    /** Manifests without tags (left behind by re-tagging). */
    untaggedManifests: z.number().int().min(0).default(0),
  })
  .strict();

const registrySpecSchema = z
  .object({
    sku: z.enum(['Basic', 'Standard', 'Premium']).default('Standard'),
    createdDaysAgo: z.number().min(0).default(400),
    repositories: z.array(repositorySpecSchema).default([]),
    /** Generated repositories for benchmark worlds: `{prefix}{i}` each with generated tags. */
    generate: z
      .object({
        repositories: z.number().int().min(1).max(10_000),
        tagsPerRepository: z.number().int().min(1).max(10_000),
        prefix: z.string().default('bench/service-'),
        newestDaysAgo: z.number().min(0).default(1),
        intervalDays: z.number().positive().default(1),
      })
      .strict()
      .optional(),
  })
  .strict();

interface Changeable {
  deleteEnabled: boolean;
  writeEnabled: boolean;
  listEnabled: boolean;
  readEnabled: boolean;
}

/** A platform manifest an index references, as ACR lists it (`references`). */
export interface PlatformReference {
  readonly digest: string;
  readonly architecture: string;
  readonly os: string;
}

/** A manifest (image) in a repository: a single-platform image, or a multi-arch index. */
export interface ManifestState {
  readonly digest: string;
  readonly created: Date;
  lastUpdate: Date;
  readonly imageSize: number;
  changeable: Changeable;
  readonly mediaType: string;
  /** The platform of an image manifest; undefined for an index. */
  readonly platform: { readonly architecture: string; readonly os: string; readonly variant?: string } | undefined;
  /** The platform manifests of an index; empty for an image manifest. */
  readonly references: readonly PlatformReference[];
}

/** A tag pointing at a manifest. */
export interface TagState {
  readonly name: string;
  digest: string;
  readonly created: Date;
  lastUpdate: Date;
  changeable: Changeable;
}

/** A repository. */
export interface RepositoryState {
  readonly name: string;
  readonly created: Date;
  lastUpdate: Date;
  changeable: Changeable;
  manifests: Map<string, ManifestState>;
  tags: Map<string, TagState>;
}

/** A registry. */
export interface RegistryState extends ArmResourceBase {
  readonly sku: string;
  readonly created: Date;
  readonly loginServer: string;
  repositories: Map<string, RepositoryState>;
}

interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

const unlocked = (): Changeable => ({ deleteEnabled: true, writeEnabled: true, listEnabled: true, readEnabled: true });

/** The ACR data-plane provider. */
export class ContainerRegistriesProvider implements SandboxProvider {
  readonly name = 'Microsoft.ContainerRegistry';
  readonly types = [REGISTRIES] as const;
  private readonly registries = new Map<string, RegistryState>();
  /** The same registries, by ARM ID (the data plane finds them by name). */
  private readonly arm = new ResourceStore<RegistryState>();
  /** Signs ACR refresh and access tokens; they are JWTs because the SDK reads their `exp`. */
  private readonly signingKey = randomBytes(32);

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return this.arm.all().map((resource) => listedOf(resource, REGISTRIES));
  }

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(registrySpecSchema, world, resource);
      const registry: RegistryState = {
        ...baseOf(world, resource, REGISTRIES),
        sku: spec.sku,
        created: daysBefore(now, spec.createdDaysAgo),
        loginServer: `${resource.name.toLowerCase()}.azurecr.io`,
        repositories: new Map(),
      };
      const repositories = [...spec.repositories];
      if (spec.generate !== undefined) {
        const width = String(spec.generate.repositories).length;
        for (let index = 1; index <= spec.generate.repositories; index += 1) {
          repositories.push({
            name: `${spec.generate.prefix}${String(index).padStart(width, '0')}`,
            tags: [],
            untaggedManifests: 0,
            generate: {
              count: spec.generate.tagsPerRepository,
              pattern: 'v1.{n}.0',
              newestDaysAgo: spec.generate.newestDaysAgo,
              intervalDays: spec.generate.intervalDays,
            },
          });
        }
      }
      for (const repositorySpec of repositories) {
        registry.repositories.set(repositorySpec.name, this.seedRepository(world, resource, registry, repositorySpec, now));
      }
      this.registries.set(resource.name.toLowerCase(), registry);
      this.arm.add(registry);
    }
  }

  private seedRepository(
    world: WorldFile,
    resource: WorldResource,
    registry: RegistryState,
    spec: z.infer<typeof repositorySpecSchema>,
    now: Date,
  ): RepositoryState {
    const repository: RepositoryState = {
      name: spec.name,
      created: now,
      lastUpdate: registry.created,
      changeable: unlocked(),
      manifests: new Map(),
      tags: new Map(),
    };
    const tagSpecs = [...spec.tags];
    if (spec.generate !== undefined) {
      const { count, pattern, newestDaysAgo, intervalDays } = spec.generate;
      for (let n = 1; n <= count; n += 1) {
        const name = pattern.replaceAll('{n}', String(n)).replaceAll('{sha}', stableHex(`${registry.name}/${spec.name}/${String(n)}`, 7));
        tagSpecs.push({ name, createdDaysAgo: newestDaysAgo + (count - n) * intervalDays });
      }
    }
    const fail = (problem: string): never => {
      throw new WorldSpecError(worldFilePath(world), REGISTRIES, resource.name, `repository "${spec.name}": ${problem}`);
    };
    const addManifest = (
      seed: string,
      created: Date,
      shape: { digest?: string; platform?: ManifestState['platform']; references?: readonly PlatformReference[]; mediaType?: string } = {},
    ): ManifestState => {
      const digest = shape.digest ?? `sha256:${stableHex(`${registry.name}/${spec.name}/${seed}`)}`;
      if (repository.manifests.has(digest)) fail(`expected each digest once, found ${digest} twice (point a tag at an existing manifest with sameAs)`);
      const references = shape.references ?? [];
      const manifest: ManifestState = {
        digest,
        created,
        lastUpdate: created,
        // An index is a small JSON document; an image carries layers.
        imageSize: references.length > 0 ? 1_000 + references.length * 500 : 20_000_000 + (Number.parseInt(digest.slice(7, 13), 16) % 80_000_000),
        changeable: unlocked(),
        mediaType: references.length > 0 ? OCI_INDEX : (shape.mediaType ?? DOCKER_MANIFEST),
        platform: references.length > 0 ? undefined : (shape.platform ?? { architecture: 'amd64', os: 'linux' }),
        references,
      };
      repository.manifests.set(digest, manifest);
      return manifest;
    };
    /** A multi-arch index for a tag: one platform manifest per entry, then the index referencing them. */
    const addIndex = (tag: z.infer<typeof tagSpecSchema>, platforms: readonly z.infer<typeof platformSpecSchema>[], created: Date): ManifestState => {
      const references = platforms.map((platform) => {
        const name = `${platform.os}/${platform.architecture}${platform.variant === undefined ? '' : `/${platform.variant}`}`;
        const child = addManifest(`platform:${tag.name}/${name}`, created, {
          ...(platform.digest === undefined ? {} : { digest: platform.digest }),
          mediaType: OCI_MANIFEST,
          platform: { architecture: platform.architecture, os: platform.os, ...(platform.variant === undefined ? {} : { variant: platform.variant }) },
        });
        return { digest: child.digest, architecture: platform.architecture, os: platform.os };
      });
      return addManifest(`tag:${tag.name}`, created, { ...(tag.digest === undefined ? {} : { digest: tag.digest }), references });
    };
    for (const tagSpec of tagSpecs) {
      if (repository.tags.has(tagSpec.name)) fail(`expected unique tag names, found "${tagSpec.name}" twice`);
      const created = hoursBefore(now, tagSpec.createdHoursAgo ?? (tagSpec.createdDaysAgo ?? 30) * 24);
      let manifest: ManifestState | undefined;
      if (tagSpec.sameAs !== undefined && (tagSpec.digest !== undefined || tagSpec.platforms !== undefined)) {
        fail(`tag "${tagSpec.name}": expected sameAs, or digest/platforms, found both`);
      }
      if (tagSpec.platforms !== undefined) {
        manifest = addIndex(tagSpec, tagSpec.platforms, created);
      } else if (tagSpec.sameAs === undefined) {
        manifest = addManifest(`tag:${tagSpec.name}`, created, tagSpec.digest === undefined ? {} : { digest: tagSpec.digest });
      } else {
        const target = repository.tags.get(tagSpec.sameAs);
        if (target === undefined) return fail(`expected tag "${tagSpec.sameAs}" (sameAs of "${tagSpec.name}") to be listed before it, found none`);
        manifest = repository.manifests.get(target.digest);
      }
      if (manifest === undefined) return fail(`internal: no manifest for tag "${tagSpec.name}"`);
      const changeable = { ...unlocked(), ...(tagSpec.lock ?? {}) };
      if (tagSpec.lock !== undefined) manifest.changeable = { ...manifest.changeable, ...tagSpec.lock };
      repository.tags.set(tagSpec.name, { name: tagSpec.name, digest: manifest.digest, created, lastUpdate: created, changeable });
    }
    for (let index = 0; index < spec.untaggedManifests; index += 1) {
      addManifest(`untagged:${String(index)}`, daysBefore(now, 200 + index));
    }
    const times = [...repository.manifests.values()].map((manifest) => manifest.created.getTime());
    if (times.length > 0) {
      (repository as { created: Date }).created = new Date(Math.min(...times));
      repository.lastUpdate = new Date(Math.max(...times));
    }
    return repository;
  }

  /** A registry by name, for tests and future handlers. */
  getRegistry(name: string): RegistryState | undefined {
    return this.registries.get(name.toLowerCase());
  }

  routes(): readonly RouteDefinition[] {
    const route = (
      method: RouteDefinition['method'],
      pattern: string,
      operationId: string,
      handler: (request: SandboxRequest, context: ProviderContext, registry: RegistryState) => SandboxResponse,
      throttle: RouteDefinition['throttle'] = 'read',
    ): RouteDefinition => ({
      host: 'acr',
      method,
      pattern,
      throttle,
      operationId,
      // ACR authenticates with its own tokens (exchanged from AAD), so the provider checks them.
      requiresAuth: false,
      handler: (request, context) => {
        const registry = request.hostName === undefined ? undefined : this.getRegistry(request.hostName);
        if (registry === undefined) {
          return acrError(404, 'NAME_UNKNOWN', `registry "${request.hostName ?? ''}" does not exist in the sandbox`);
        }
        return handler(request, context, registry);
      },
    });
    // `{repository*}`: repository names may contain slashes, sent encoded (`a%2Fb`) or not.
    const repo = '/acr/v1/{repository*}';
    return [
      ...trackedResourceReads(this.arm, REGISTRIES, (registry) => this.registryArmJson(registry)),
      route('POST', '/oauth2/exchange', 'ContainerRegistry.exchangeAadAccessTokenForAcrRefreshToken', (request, context, registry) =>
        this.exchange(request, context, registry),
      ),
      route('POST', '/oauth2/token', 'ContainerRegistry.exchangeAcrRefreshTokenForAcrAccessToken', (request, context, registry) =>
        this.token(request, context, registry),
      ),
      route('GET', '/v2/', 'ContainerRegistry.checkDockerV2Support', (request, context, registry) =>
        this.authorize(request, context, registry, [], () => json(200, {})),
      ),
      route('GET', '/acr/v1/_catalog', 'ContainerRegistry.getRepositories', (request, context, registry) =>
        this.authorize(request, context, registry, [{ type: 'registry', name: 'catalog', actions: ['*'] }], () => {
          const names = [...registry.repositories.values()]
            .filter((repository) => repository.changeable.listEnabled)
            .map((repository) => repository.name)
            .sort();
          return this.page(request, names, (name) => name, '/acr/v1/_catalog', (items, link) => ({ repositories: items, ...link }));
        }),
      ),
      route('GET', repo, 'ContainerRegistry.getProperties', (request, context, registry) =>
        this.withRepository(request, context, registry, 'metadata_read', (repository) => json(200, this.repositoryJson(registry, repository))),
      ),
      route('GET', `${repo}/_tags`, 'ContainerRegistry.getTags', (request, context, registry) =>
        this.withRepository(request, context, registry, 'metadata_read', (repository) => {
          const orderby = request.query.get('orderby') ?? '';
          const digest = request.query.get('digest');
          const tags = [...repository.tags.values()].filter((tag) => digest === null || tag.digest === digest);
          sortByTime(tags, orderby, (tag) => tag.lastUpdate, (tag) => tag.name);
          return this.page(
            request,
            tags,
            (tag) => tag.name,
            `/acr/v1/${encodeURIComponent(repository.name)}/_tags`,
            (items, link) => ({ registry: registry.loginServer, imageName: repository.name, tags: items.map((tag) => tagJson(tag)), ...link }),
          );
        }),
      ),
      route('GET', `${repo}/_tags/{tag}`, 'ContainerRegistry.getTagProperties', (request, context, registry) =>
        this.withRepository(request, context, registry, 'metadata_read', (repository) =>
          withTag(request, repository, (tag) => json(200, { registry: registry.loginServer, imageName: repository.name, tag: tagJson(tag) })),
        ),
      ),
      route(
        'DELETE',
        `${repo}/_tags/{tag}`,
        'ContainerRegistry.deleteTag',
        (request, context, registry) =>
          this.withRepository(request, context, registry, 'delete', (repository) =>
            withTag(request, repository, (tag) => {
              if (!tag.changeable.deleteEnabled || !repository.changeable.deleteEnabled) return locked(`${repository.name}:${tag.name}`);
              repository.tags.delete(tag.name);
              context.event('acr.tagDeleted', { registry: registry.name, repository: repository.name, tag: tag.name });
              return { status: 202 };
            }),
          ),
        'write',
      ),
      route(
        'PATCH',
        `${repo}/_tags/{tag}`,
        'ContainerRegistry.updateTagAttributes',
        (request, context, registry) =>
          this.withRepository(request, context, registry, 'metadata_write', (repository) =>
            withTag(request, repository, (tag) => {
              const update = changeableUpdate(request.body);
              if (update === undefined) return acrError(400, 'TAG_INVALID', 'expected a JSON body of changeable attributes (deleteEnabled, writeEnabled, listEnabled, readEnabled)');
              tag.changeable = { ...tag.changeable, ...update };
              context.event('acr.tagUpdated', { registry: registry.name, repository: repository.name, tag: tag.name });
              return json(200, { registry: registry.loginServer, imageName: repository.name, tag: tagJson(tag) });
            }),
          ),
        'write',
      ),
      route(
        'PATCH',
        `${repo}/_manifests/{digest}`,
        'ContainerRegistry.updateManifestProperties',
        (request, context, registry) =>
          this.withRepository(request, context, registry, 'metadata_write', (repository) =>
            withManifest(request, repository, (manifest) => {
              const update = changeableUpdate(request.body);
              if (update === undefined) return acrError(400, 'MANIFEST_INVALID', 'expected a JSON body of changeable attributes (deleteEnabled, writeEnabled, listEnabled, readEnabled)');
              manifest.changeable = { ...manifest.changeable, ...update };
              context.event('acr.manifestUpdated', { registry: registry.name, repository: repository.name, digest: manifest.digest });
              return json(200, { registry: registry.loginServer, imageName: repository.name, manifest: this.manifestJson(repository, manifest) });
            }),
          ),
        'write',
      ),
      route('GET', `${repo}/_manifests`, 'ContainerRegistry.getManifests', (request, context, registry) =>
        this.withRepository(request, context, registry, 'metadata_read', (repository) => {
          const manifests = [...repository.manifests.values()];
          sortByTime(manifests, request.query.get('orderby') ?? '', (manifest) => manifest.lastUpdate, (manifest) => manifest.digest);
          return this.page(
            request,
            manifests,
            (manifest) => manifest.digest,
            `/acr/v1/${encodeURIComponent(repository.name)}/_manifests`,
            (items, link) => ({
              registry: registry.loginServer,
              imageName: repository.name,
              manifests: items.map((manifest) => this.manifestJson(repository, manifest)),
              ...link,
            }),
          );
        }),
      ),
      route('GET', `${repo}/_manifests/{digest}`, 'ContainerRegistry.getManifestProperties', (request, context, registry) =>
        this.withRepository(request, context, registry, 'metadata_read', (repository) =>
          withManifest(request, repository, (manifest) =>
            json(200, { registry: registry.loginServer, imageName: repository.name, manifest: this.manifestJson(repository, manifest) }),
          ),
        ),
      ),
      route(
        'DELETE',
        '/v2/{repository*}/manifests/{digest}',
        'ContainerRegistry.deleteManifest',
        (request, context, registry) =>
          this.withRepository(request, context, registry, 'delete', (repository) =>
            withManifest(request, repository, (manifest) => {
              const digest = param(request, 'digest');
              const tags = [...repository.tags.values()].filter((tag) => tag.digest === digest);
              if (!manifest.changeable.deleteEnabled || !repository.changeable.deleteEnabled || tags.some((tag) => !tag.changeable.deleteEnabled)) {
                return locked(`${repository.name}@${digest}`);
              }
              // Deleting a manifest deletes every tag that references it, as in ACR.
              for (const tag of tags) repository.tags.delete(tag.name);
              repository.manifests.delete(digest);
              context.event('acr.manifestDeleted', { registry: registry.name, repository: repository.name, digest, tags: tags.map((tag) => tag.name) });
              return { status: 202 };
            }),
          ),
        'write',
      ),
    ];
  }

  // --- authentication -------------------------------------------------------------------------

  private exchange(request: SandboxRequest, context: ProviderContext, registry: RegistryState): SandboxResponse {
    const form = request.form;
    if (form?.get('grant_type') !== 'access_token') {
      return acrError(400, 'UNSUPPORTED', `expected grant_type "access_token", found "${form?.get('grant_type') ?? ''}"`);
    }
    const service = form.get('service') ?? '';
    if (service !== registry.loginServer) {
      return acrError(400, 'UNSUPPORTED', `expected service "${registry.loginServer}", found "${service}"`);
    }
    const principal = context.verifyAccessToken(form.get('access_token') ?? '');
    if (principal === undefined) return acrError(401, 'UNAUTHORIZED', 'the AAD access token is invalid or expired');
    if (!ACR_AUDIENCES.includes(principal.aud.replace(/\/$/, ''))) {
      return acrError(401, 'UNAUTHORIZED', `expected an AAD token for ${ACR_AUDIENCES.join(' or ')}, found audience "${principal.aud}"`);
    }
    const now = unix(tokenClock());
    const refreshToken = this.sign({
      jti: randomUUID(),
      sub: principal.oid,
      nbf: now - 60,
      exp: now + REFRESH_TOKEN_HOURS * 3600,
      iat: now,
      iss: 'Azure Container Registry',
      aud: registry.loginServer,
      version: '1.0',
      grant_type: 'refresh_token',
      tenant: form.get('tenant') ?? principal.tid ?? registry.tenantId,
    });
    return json(200, { refresh_token: refreshToken });
  }

  private token(request: SandboxRequest, context: ProviderContext, registry: RegistryState): SandboxResponse {
    const form = request.form;
    if (form?.get('grant_type') !== 'refresh_token') {
      return acrError(400, 'UNSUPPORTED', `expected grant_type "refresh_token", found "${form?.get('grant_type') ?? ''}"`);
    }
    const service = form.get('service') ?? '';
    const claims = this.verify(form.get('refresh_token') ?? '', tokenClock());
    if (claims?.grant_type !== 'refresh_token' || claims.aud !== service || service !== registry.loginServer) {
      return acrError(401, 'UNAUTHORIZED', 'the refresh token is invalid, expired or issued for another registry');
    }
    const access = parseScopes(form.get('scope') ?? '');
    const now = unix(tokenClock());
    const accessToken = this.sign({
      jti: randomUUID(),
      sub: claims.sub,
      nbf: now - 60,
      exp: now + ACCESS_TOKEN_MINUTES * 60,
      iat: now,
      iss: 'Azure Container Registry',
      aud: registry.loginServer,
      version: '1.0',
      grant_type: 'access_token',
      access,
    });
    return json(200, { access_token: accessToken });
  }

  /** Checks the ACR access token covers `needed`; otherwise answers 401 with ACR's challenge for that scope. */
  private authorize(
    request: SandboxRequest,
    context: ProviderContext,
    registry: RegistryState,
    needed: readonly AccessEntry[],
    handle: () => SandboxResponse,
  ): SandboxResponse {
    const realm = `${context.baseUrl}/registries/${registry.name}/oauth2/token`;
    const scope = needed.map((entry) => `${entry.type}:${entry.name}:${entry.actions.join(',')}`).join(' ');
    const challenge = {
      'www-authenticate': `Bearer realm="${realm}",service="${registry.loginServer}"${scope === '' ? '' : `,scope="${scope}"`}`,
    };
    const header = request.headers.authorization;
    const token = typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : '';
    const claims = token === '' ? undefined : this.verify(token, tokenClock());
    const granted = claims?.grant_type === 'access_token' && claims.aud === registry.loginServer ? (claims.access ?? []) : undefined;
    const covered =
      granted !== undefined &&
      needed.every((entry) =>
        granted.some(
          (grant) =>
            grant.type === entry.type &&
            grant.name === entry.name &&
            entry.actions.every((action) => grant.actions.includes(action) || grant.actions.includes('*')),
        ),
      );
    if (!covered) {
      return {
        status: 401,
        headers: challenge,
        body: {
          errors: [
            {
              code: 'UNAUTHORIZED',
              message: 'authentication required, visit https://aka.ms/acr/authorization for more information.',
              detail: needed.map((entry) => ({ Type: entry.type, Name: entry.name, Action: entry.actions.join(',') })),
            },
          ],
        },
      };
    }
    return handle();
  }

  private withRepository(
    request: SandboxRequest,
    context: ProviderContext,
    registry: RegistryState,
    action: 'metadata_read' | 'metadata_write' | 'delete',
    handle: (repository: RepositoryState) => SandboxResponse,
  ): SandboxResponse {
    const name = param(request, 'repository');
    return this.authorize(request, context, registry, [{ type: 'repository', name, actions: [action] }], () => {
      const repository = registry.repositories.get(name);
      return repository === undefined ? acrError(404, 'NAME_UNKNOWN', `repository name not known to registry: ${name}`) : handle(repository);
    });
  }

  private sign(claims: TokenClaims): string {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signature = createHmac('sha256', this.signingKey).update(`${header}.${payload}`).digest('base64url');
    return `${header}.${payload}.${signature}`;
  }

  private verify(token: string, now: Date): TokenClaims | undefined {
    const [header, payload, signature] = token.split('.');
    if (header === undefined || payload === undefined || signature === undefined) return undefined;
    const expected = createHmac('sha256', this.signingKey).update(`${header}.${payload}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const parsed = tokenClaimsSchema.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
    if (!parsed.success) return undefined;
    const seconds = unix(now);
    return parsed.data.exp > seconds && parsed.data.nbf <= seconds ? parsed.data : undefined;
  }

  // --- shapes ---------------------------------------------------------------------------------

  /**
   * One page, ACR style: `n` items after the item named `last`; a relative `Link` header (the
   * SDK resolves it against the registry endpoint) when more remain.
   */
  private page<T>(
    request: SandboxRequest,
    items: readonly T[],
    keyOf: (item: T) => string,
    path: string,
    build: (page: T[], link: { link?: string }) => unknown,
  ): SandboxResponse {
    const n = Number.parseInt(request.query.get('n') ?? String(DEFAULT_PAGE), 10);
    if (!Number.isFinite(n) || n < 1 || n > MAX_PAGE) {
      return acrError(400, 'PAGINATION_NUMBER_INVALID', `expected n between 1 and ${String(MAX_PAGE)}, found "${request.query.get('n') ?? ''}"`);
    }
    const last = request.query.get('last');
    const start = last === null ? 0 : items.findIndex((item) => keyOf(item) === last) + 1;
    const page = items.slice(start, start + n);
    const lastItem = page[page.length - 1];
    if (start + n >= items.length || lastItem === undefined) return json(200, build(page, {}));
    const next = new URLSearchParams({ last: keyOf(lastItem), n: String(n) });
    const orderby = request.query.get('orderby');
    if (orderby !== null) next.set('orderby', orderby);
    const link = `<${path}?${next.toString()}>; rel="next"`;
    return { status: 200, headers: { link }, body: build(page, { link }) };
  }

  /** The ARM body of a registry (Registries_Get, 2025-11-01): the envelope, sku and properties. */
  private registryArmJson(registry: RegistryState): Record<string, unknown> {
    return {
      ...armEnvelope(registry, REGISTRIES),
      sku: { name: registry.sku, tier: registry.sku },
      systemData: systemData(registry.created, registry.created),
      properties: {
        loginServer: registry.loginServer,
        creationDate: registry.created.toISOString(),
        provisioningState: 'Succeeded',
        adminUserEnabled: false,
        policies: {
          quarantinePolicy: { status: 'disabled' },
          trustPolicy: { type: 'Notary', status: 'disabled' },
          retentionPolicy: { days: 7, status: 'disabled' },
          exportPolicy: { status: 'enabled' },
          azureADAuthenticationAsArmPolicy: { status: 'enabled' },
        },
        encryption: { status: 'disabled' },
        dataEndpointEnabled: false,
        dataEndpointHostNames: [],
        privateEndpointConnections: [],
        publicNetworkAccess: 'Enabled',
        networkRuleBypassOptions: 'AzureServices',
        networkRuleBypassAllowedForTasks: false,
        zoneRedundancy: 'Disabled',
        anonymousPullEnabled: false,
        roleAssignmentMode: 'LegacyRegistryPermissions',
      },
    };
  }

  private repositoryJson(registry: RegistryState, repository: RepositoryState): Record<string, unknown> {
    return {
      registry: registry.loginServer,
      imageName: repository.name,
      createdTime: repository.created.toISOString(),
      lastUpdateTime: repository.lastUpdate.toISOString(),
      manifestCount: repository.manifests.size,
      tagCount: repository.tags.size,
      changeableAttributes: { ...repository.changeable, teleportEnabled: false },
    };
  }

  /**
   * ManifestAttributesBase as ACR lists it: an image manifest carries its platform; an index
   * (`references`: its platform manifests' digests and platforms) carries none.
   */
  private manifestJson(repository: RepositoryState, manifest: ManifestState): Record<string, unknown> {
    const tags = [...repository.tags.values()].filter((tag) => tag.digest === manifest.digest).map((tag) => tag.name).sort();
    const shape =
      manifest.platform === undefined
        ? { references: manifest.references.map((reference) => ({ ...reference })) }
        : { architecture: manifest.platform.architecture, os: manifest.platform.os, configMediaType: 'application/vnd.docker.container.image.v1+json' };
    return {
      digest: manifest.digest,
      imageSize: manifest.imageSize,
      createdTime: manifest.created.toISOString(),
      lastUpdateTime: manifest.lastUpdate.toISOString(),
      mediaType: manifest.mediaType,
      ...shape,
      ...(tags.length > 0 ? { tags } : {}),
      changeableAttributes: { ...manifest.changeable, quarantineState: 'Passed' },
    };
  }

  snapshot(): unknown {
    return [...this.registries.values()].map((registry) => ({
      name: registry.name,
      id: registry.id,
      loginServer: registry.loginServer,
      repositories: registry.repositories.size,
      tags: [...registry.repositories.values()].reduce((sum, repository) => sum + repository.tags.size, 0),
      manifests: [...registry.repositories.values()].reduce((sum, repository) => sum + repository.manifests.size, 0),
      indexes: [...registry.repositories.values()].reduce((sum, repository) => sum + [...repository.manifests.values()].filter((manifest) => manifest.platform === undefined).length, 0),
    }));
  }
}

const tokenClaimsSchema = z.object({
  sub: z.string(),
  aud: z.string(),
  exp: z.number(),
  nbf: z.number(),
  grant_type: z.enum(['refresh_token', 'access_token']),
  access: z.array(z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) })).optional(),
  tenant: z.string().optional(),
});

type TokenClaims = z.infer<typeof tokenClaimsSchema> & Record<string, unknown>;

/**
 * Token lifetimes follow real time, not the sandbox clock, as the engine's identity does: the
 * SDK caches ACR tokens by their `exp` in real time, and tests may shift the sandbox clock by days.
 */
function tokenClock(): Date {
  return new Date();
}

function unix(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** `repository:a/b:pull,delete registry:catalog:*` → access entries (names may contain `/`, never `:`). */
function parseScopes(scope: string): AccessEntry[] {
  return scope
    .split(' ')
    .filter((part) => part !== '')
    .flatMap((part) => {
      const first = part.indexOf(':');
      const lastColon = part.lastIndexOf(':');
      if (first < 0 || lastColon <= first) return [];
      return [{ type: part.slice(0, first), name: part.slice(first + 1, lastColon), actions: part.slice(lastColon + 1).split(',') }];
    });
}

function tagJson(tag: TagState): Record<string, unknown> {
  return {
    name: tag.name,
    digest: tag.digest,
    createdTime: tag.created.toISOString(),
    lastUpdateTime: tag.lastUpdate.toISOString(),
    signed: false,
    changeableAttributes: { ...tag.changeable },
  };
}

function sortByTime<T>(items: T[], orderby: string, timeOf: (item: T) => Date, nameOf: (item: T) => string): void {
  if (orderby === 'timedesc' || orderby === 'timeasc') {
    const sign = orderby === 'timedesc' ? -1 : 1;
    items.sort((a, b) => sign * (timeOf(a).getTime() - timeOf(b).getTime()) || nameOf(a).localeCompare(nameOf(b)));
  } else {
    items.sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  }
}

/** The changeable attributes of an update body (PATCH of a tag or manifest), or undefined when it is not one. */
function changeableUpdate(body: unknown): Partial<Changeable> | undefined {
  const parsed = changeableSchema.partial().safeParse(body);
  return parsed.success ? parsed.data : undefined;
}

/** Hands the tag the route's `{tag}` names to `handle`, or answers ACR's TAG_UNKNOWN. */
function withTag(request: SandboxRequest, repository: RepositoryState, handle: (tag: TagState) => SandboxResponse): SandboxResponse {
  const tag = repository.tags.get(param(request, 'tag'));
  return tag === undefined ? acrError(404, 'TAG_UNKNOWN', `the specified tag does not exist: ${repository.name}:${param(request, 'tag')}`) : handle(tag);
}

/** Hands the manifest the route's `{digest}` names to `handle`, or answers ACR's MANIFEST_UNKNOWN. */
function withManifest(request: SandboxRequest, repository: RepositoryState, handle: (manifest: ManifestState) => SandboxResponse): SandboxResponse {
  const manifest = repository.manifests.get(param(request, 'digest'));
  return manifest === undefined ? acrError(404, 'MANIFEST_UNKNOWN', `manifest ${param(request, 'digest')} is not found in ${repository.name}`) : handle(manifest);
}

function acrError(status: number, code: string, message: string): SandboxResponse {
  return json(status, { errors: [{ code, message }] });
}

function locked(what: string): SandboxResponse {
  return acrError(405, 'DENIED', `The operation is disallowed on this registry, repository or image: ${what} is locked (deleteEnabled is false).`);
}
