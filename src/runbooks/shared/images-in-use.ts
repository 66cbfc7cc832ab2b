/**
 * Which container images are in use: the one reading that `image-purge` (plan and apply's
 * re-check) and inventory share, so both see the same consumers.
 *
 * Consumers, by default every one the identity can read in the registry's subscriptions (the
 * registry's own, every subscription a target of the config lives in, and the policy's
 * `inUseSubscriptions`), found with ARM list operations (paged, through the request budget):
 * - Container Apps: the template (containers and init containers), every ACTIVE revision, and
 *   the newest `keepInactiveRevisions` INACTIVE revisions per app (a rollback reactivates them);
 * - Container Apps jobs: the template, and every execution that has not finished (its replicas
 *   may still pull the image it started with);
 * - web apps and function apps, site and every slot: `linuxFxVersion` / `windowsFxVersion`
 *   (`DOCKER|`, each service of `COMPOSE|`, each image of `KUBE|`) and, on Linux, every
 *   `sitecontainers` entry (the main container and its sidecars).
 * With the policy's `inUseDiscovery: listed` (an explicit opt-in), only the config's Container
 * App and web app targets and `inUseScope` count. Those listed resources are read one by one in
 * both modes, so one that does not exist fails the reading too.
 *
 * Strict by design: if any list, any consumer, or any image reference cannot be read, the whole
 * reading fails with an {@link InUseResolutionError} naming the resource. A purge never runs on
 * incomplete knowledge.
 */
import type { ContainerApp, ContainerAppsAPIClient, Job } from '@azure/arm-appcontainers';
import type { SiteConfigResource, WebSiteManagementClient } from '@azure/arm-appservice';
import type { AzureClients } from '../../azure/clients.ts';
import type { AzureCloudName } from '../../azure/cloud.ts';
import { callAzure } from '../../azure/errors.ts';
import { parseResourceId, RESOURCE_TYPES, type ResourceId } from '../../azure/resource-id.ts';
import type { EstateConfig } from '../../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../../errors.ts';
import { collect } from '../../util/collect.ts';
import { mapLimited } from '../../util/concurrency.ts';
import { fetchContainerApp, templateImages, type ContainerAppInventory, type RevisionInventory } from './container-apps.ts';
import { ImageReferenceError, parseImageReference, pullsFromRegistry } from './image-reference.ts';
import { imagesOfSiteConfig, type SiteImage } from './site-images.ts';

/** The ARM type of Container Apps jobs (consumers of images, never targets). */
export const CONTAINER_APP_JOBS = 'Microsoft.App/jobs';

/** One image reference used by an app, job, revision, slot or sidecar. */
export interface ImageUse {
  /** As the consumer writes it, e.g. `crxshopaiprod.azurecr.io/user-service:v1.0.3`. */
  readonly image: string;
  /** Who uses it, e.g. `ca-user-service (revision ca-user-service--v1-0-3)`. */
  readonly usedBy: string;
  /** ARM ID of the consuming resource. */
  readonly resourceId: string;
}

/** An image in use that lives in a given registry, with its repository and tag or digest. */
export interface RegistryImageUse {
  /** As the app names it, e.g. `crxshopaiprod.azurecr.io/user-service:v1.0.3`. */
  readonly image: string;
  readonly repository: string;
  /** A tag, or a digest (`sha256:...`). */
  readonly reference: string;
  /** Apps (and revisions or slots) that use it. */
  readonly usedBy: readonly string[];
}

/**
 * The images in use could not be determined for one consumer (or one listing). A purge plan
 * must fail on it: deleting images on incomplete knowledge could remove a running app's image.
 */
export class InUseResolutionError extends OpsAutopilotError {
  override readonly name: string = 'InUseResolutionError';
  /** The resource (or the listing's scope) that could not be read. */
  readonly resourceId: string;

  constructor(resourceId: string, problem: string, options: { cause?: unknown; registry?: string } = {}) {
    super(
      `could not determine the images in use by ${resourceId}${options.registry === undefined ? '' : ` (needed before purging ${options.registry})`}: ${problem}`,
      { context: { resourceId, registry: options.registry }, cause: options.cause },
    );
    this.resourceId = resourceId;
  }
}

/** The policy fields that decide who counts as a user of a registry's images. */
export interface InUsePolicy {
  readonly inUseDiscovery: 'subscriptions' | 'listed';
  readonly inUseSubscriptions: readonly string[];
  readonly inUseScope: readonly string[];
  readonly keepInactiveRevisions: number;
}

/** Who counts as a user of one registry's images. */
export interface InUseScope {
  /** Subscriptions whose every Container App, job and web app is read (lower-case, sorted). Empty when listed. */
  readonly subscriptions: readonly string[];
  /** Resources read one by one: the config's Container App and web app targets and `inUseScope`. */
  readonly resources: readonly string[];
  /** Inactive revisions per Container App whose images count as in use, newest first. */
  readonly inactiveRevisions: number;
}

const keyOf = (id: string): string => id.toLowerCase().replace(/\/+$/, '');

/**
 * The consumers of the registry `registryId`'s images under a policy (see the module comment).
 * `targets` are the estate's resolved targets (scope matches included); default: the explicit ones.
 */
export function inUseScopeOf(config: EstateConfig, registryId: string, policy: InUsePolicy, targets: readonly { readonly id: string }[] = config.targets): InUseScope {
  const resources = new Map<string, string>();
  for (const target of targets) {
    const kind = parseResourceId(target.id).kind;
    if (kind === 'containerApp' || kind === 'webSite') resources.set(keyOf(target.id), target.id);
  }
  for (const id of policy.inUseScope) resources.set(keyOf(id), id);
  const subscriptions = new Set<string>();
  if (policy.inUseDiscovery === 'subscriptions') {
    const subscriptionOf = (id: string): string | undefined => {
      try {
        return parseResourceId(id).subscriptionId;
      } catch {
        return undefined;
      }
    };
    for (const id of [registryId, ...targets.map((target) => target.id), ...policy.inUseScope]) {
      const subscription = subscriptionOf(id);
      if (subscription !== undefined) subscriptions.add(subscription);
    }
    // A scope's subscription counts even when the scope matched nothing (or could not be listed).
    for (const scope of config.scopes) subscriptions.add(scope.subscription.toLowerCase());
    for (const subscription of policy.inUseSubscriptions) subscriptions.add(subscription.toLowerCase());
  }
  return { subscriptions: [...subscriptions].sort(), resources: [...resources.values()], inactiveRevisions: policy.keepInactiveRevisions };
}

type InUseClients = Pick<AzureClients, 'containerAppsClient' | 'webClient'>;

/** A consumer to read: what kind, where, and what a listing already returned about it. */
type Consumer =
  | { readonly kind: 'containerApp'; readonly id: ResourceId; readonly listed?: ContainerApp }
  | { readonly kind: 'job'; readonly id: ResourceId; readonly listed?: Job }
  | { readonly kind: 'webSite'; readonly id: ResourceId };

/**
 * Reads the images used by every consumer of `scope`, at most `concurrency` reads at a time
 * (the ARM budget paces the requests in any case).
 *
 * @throws InUseResolutionError naming the first listing or consumer that could not be read, or
 *   a listed resource that is not a Container App, a job or a web app.
 */
export async function readImagesInUse(
  clients: InUseClients,
  scope: InUseScope,
  options: { readonly concurrency?: number; readonly registry?: string; readonly signal?: AbortSignal } = {},
): Promise<ImageUse[]> {
  const concurrency = options.concurrency ?? 4;
  const registry = options.registry === undefined ? {} : { registry: options.registry };
  const resolution = (resourceId: string, error: unknown): InUseResolutionError =>
    error instanceof InUseResolutionError ? error : new InUseResolutionError(resourceId, errorMessage(error), { cause: error, ...registry });

  const consumers = new Map<string, Consumer>();
  for (const raw of scope.resources) {
    const consumer = consumerOf(raw, registry);
    // A listing may add what it returned about the same resource below.
    consumers.set(keyOf(consumer.id.id), consumer);
  }
  const listings = scope.subscriptions.flatMap((subscription) => [
    { subscription, kind: 'containerApp' as const },
    { subscription, kind: 'job' as const },
    { subscription, kind: 'webSite' as const },
  ]);
  const discovered = await mapLimited(listings, concurrency, async ({ subscription, kind }) => {
    const scopeId = `/subscriptions/${subscription}/providers/${kind === 'containerApp' ? RESOURCE_TYPES.containerApp : kind === 'job' ? CONTAINER_APP_JOBS : RESOURCE_TYPES.webSite}`;
    try {
      return await listConsumers(clients, subscription, kind, scopeId, options.signal);
    } catch (error) {
      throw resolution(scopeId, error);
    }
  });
  for (const consumer of discovered.flat()) consumers.set(keyOf(consumer.id.id), consumer);

  const uses = await mapLimited([...consumers.values()], concurrency, async (consumer) => {
    options.signal?.throwIfAborted();
    try {
      return await usesOf(clients, consumer, scope.inactiveRevisions, options.signal);
    } catch (error) {
      throw resolution(consumer.id.id, error);
    }
  });
  return uses.flat();
}

function consumerOf(raw: string, registry: { registry?: string }): Consumer {
  let id: ResourceId;
  try {
    id = parseResourceId(raw);
  } catch (error) {
    throw new InUseResolutionError(raw, `expected an ARM resource ID, found "${raw}"`, { cause: error, ...registry });
  }
  if (id.kind === 'containerApp') return { kind: 'containerApp', id };
  if (id.kind === 'webSite') return { kind: 'webSite', id };
  if (id.type.toLowerCase() === CONTAINER_APP_JOBS.toLowerCase()) return { kind: 'job', id };
  throw new InUseResolutionError(raw, `expected a Container App, a Container Apps job or a web app (${RESOURCE_TYPES.containerApp}, ${CONTAINER_APP_JOBS}, ${RESOURCE_TYPES.webSite}), found ${id.type}`, registry);
}

/** Every consumer of one kind in a subscription, from its list operation (every page). */
async function listConsumers(clients: InUseClients, subscription: string, kind: Consumer['kind'], scopeId: string, signal: AbortSignal | undefined): Promise<Consumer[]> {
  const parse = (id: string | undefined): ResourceId => {
    if (id === undefined) throw new InUseResolutionError(scopeId, 'expected every listed resource to carry its id, found one without');
    return parseResourceId(id);
  };
  if (kind === 'webSite') {
    const client = await clients.webClient(subscription);
    const sites = await callAzure({ resourceId: scopeId, operation: 'list web apps in the subscription' }, () => collect(client.webApps.list(), signal));
    return sites.map((site) => ({ kind, id: parse(site.id) }));
  }
  const client = await clients.containerAppsClient(subscription);
  if (kind === 'job') {
    const jobs = await callAzure({ resourceId: scopeId, operation: 'list Container Apps jobs in the subscription' }, () => collect(client.jobs.listBySubscription(), signal));
    return jobs.map((job) => ({ kind, id: parse(job.id), listed: job }));
  }
  const apps = await callAzure({ resourceId: scopeId, operation: 'list Container Apps in the subscription' }, () =>
    collect(client.containerApps.listBySubscription(), signal),
  );
  return apps.map((app) => ({ kind, id: parse(app.id), listed: app }));
}

async function usesOf(clients: InUseClients, consumer: Consumer, inactiveRevisions: number, signal: AbortSignal | undefined): Promise<ImageUse[]> {
  const { id } = consumer;
  switch (consumer.kind) {
    case 'containerApp': {
      const base = { targetId: id.id, name: id.name, resourceGroup: id.resourceGroup };
      const app = await fetchContainerApp(clients, id, base, consumer.listed);
      return imageUsesOfContainerApp({ ...app, resourceId: id.id }, inactiveRevisions);
    }
    case 'job':
      return readJobUses(await clients.containerAppsClient(id.subscriptionId), id, consumer.listed, signal);
    case 'webSite': {
      const images = await readWebAppImages(await clients.webClient(id.subscriptionId), id, signal);
      return imageUsesOfWebApp({ name: id.name, resourceId: id.id, ...images });
    }
  }
}

/** The uses of one consumer: each image once, under the first (most direct) use that names it. */
function collector(resourceId: string): { readonly uses: ImageUse[]; readonly add: (image: string, usedBy: string) => void } {
  const uses: ImageUse[] = [];
  const seen = new Set<string>();
  return {
    uses,
    add: (image, usedBy) => {
      if (seen.has(image)) return;
      seen.add(image);
      uses.push({ image, usedBy, resourceId });
    },
  };
}

/**
 * Images a Container App runs or may run again: its template's, those of every ACTIVE revision
 * (an active revision keeps running its image after the template moved on), and those of the
 * newest `inactiveRevisions` INACTIVE revisions (by creation time; one without a time counts as
 * newest), which a rollback reactivates. Shared with inventory.
 */
export function imageUsesOfContainerApp(
  app: Pick<ContainerAppInventory, 'name' | 'images'> & { readonly resourceId: string; readonly revisions: readonly Pick<RevisionInventory, 'name' | 'active' | 'images' | 'createdTime'>[] },
  inactiveRevisions: number,
): ImageUse[] {
  const { uses, add } = collector(app.resourceId);
  for (const image of app.images) add(image, app.name);
  for (const revision of app.revisions) {
    if (revision.active) for (const image of revision.images) add(image, `${app.name} (revision ${revision.name})`);
  }
  const inactive = app.revisions
    .filter((revision) => !revision.active)
    .sort((a, b) => (b.createdTime ?? '\uffff').localeCompare(a.createdTime ?? '\uffff'))
    .slice(0, Math.max(0, inactiveRevisions));
  for (const revision of inactive) {
    for (const image of revision.images) add(image, `${app.name} (inactive revision ${revision.name}, kept for rollback)`);
  }
  return uses;
}

/** Job executions that have ended; any other status (Running, Processing, Degraded, Unknown) may still pull. */
const FINISHED_EXECUTIONS = new Set(['succeeded', 'failed', 'stopped']);

async function readJobUses(client: ContainerAppsAPIClient, id: ResourceId, listed: Job | undefined, signal: AbortSignal | undefined): Promise<ImageUse[]> {
  const job = listed ?? (await callAzure({ resourceId: id.id, operation: 'get Container Apps job' }, () => client.jobs.get(id.resourceGroup, id.name)));
  const executions = await callAzure({ resourceId: `${id.id}/executions`, operation: 'list Container Apps job executions' }, () =>
    collect(client.jobsExecutions.list(id.resourceGroup, id.name), signal),
  );
  const { uses, add } = collector(id.id);
  for (const image of templateImages(job.template)) add(image, `${id.name} (Container Apps job)`);
  for (const execution of executions) {
    if (FINISHED_EXECUTIONS.has((execution.status ?? 'unknown').toLowerCase())) continue;
    for (const image of templateImages(execution.template)) add(image, `${id.name} (job execution ${execution.name ?? '(unnamed)'})`);
  }
  return uses;
}

/** The images of a web app's site and each slot (configuration and, on Linux, sitecontainers). */
export interface WebAppImages {
  readonly images: readonly SiteImage[];
  readonly slots: readonly { readonly name: string; readonly images: readonly SiteImage[] }[];
}

/**
 * Reads the images of a web app or function app: site and every slot, from the site
 * configuration and, for a Linux site or slot (non-empty `linuxFxVersion`), its `sitecontainers`.
 */
export async function readWebAppImages(client: WebSiteManagementClient, id: ResourceId, signal?: AbortSignal): Promise<WebAppImages> {
  const config = await callAzure({ resourceId: `${id.id}/config/web`, operation: 'get web app configuration' }, () =>
    client.webApps.getConfiguration(id.resourceGroup, id.name),
  );
  const slotSites = await callAzure({ resourceId: `${id.id}/slots`, operation: 'list web app slots' }, () => collect(client.webApps.listSlots(id.resourceGroup, id.name), signal));
  const slots: { name: string; images: SiteImage[] }[] = [];
  for (const slot of slotSites) {
    signal?.throwIfAborted();
    // Slot names come back as `app/slot`.
    const slotName = (slot.name ?? '').split('/').at(-1) ?? '';
    const slotConfig = await callAzure({ resourceId: `${id.id}/slots/${slotName}/config/web`, operation: 'get slot configuration' }, () =>
      client.webApps.getConfigurationSlot(id.resourceGroup, id.name, slotName),
    );
    slots.push({ name: slotName, images: await siteConfigImages(client, id, slotConfig, slotName, signal) });
  }
  return { images: await siteConfigImages(client, id, config, undefined, signal), slots };
}

/**
 * The images one site or slot runs: those its configuration names and, when it runs on Linux,
 * its `sitecontainers` (sidecars are a Linux feature; a Windows site has none to list).
 */
export async function siteConfigImages(
  client: WebSiteManagementClient,
  id: ResourceId,
  config: Pick<SiteConfigResource, 'linuxFxVersion' | 'windowsFxVersion'>,
  slot: string | undefined,
  signal?: AbortSignal,
): Promise<SiteImage[]> {
  const where = slot === undefined ? id.id : `${id.id}/slots/${slot}`;
  let images: SiteImage[];
  try {
    images = imagesOfSiteConfig(config);
  } catch (error) {
    throw new InUseResolutionError(`${where}/config/web`, errorMessage(error), { cause: error });
  }
  if ((config.linuxFxVersion ?? '').trim() === '') return images;
  const containers = await callAzure({ resourceId: `${where}/sitecontainers`, operation: 'list sitecontainers' }, () =>
    collect(slot === undefined ? client.webApps.listSiteContainers(id.resourceGroup, id.name) : client.webApps.listSiteContainersSlot(id.resourceGroup, id.name, slot), signal),
  );
  for (const container of containers) {
    const name = (container.name ?? '').split('/').at(-1) ?? '(unnamed)';
    if (container.image === undefined || container.image.trim() === '') {
      throw new InUseResolutionError(`${where}/sitecontainers/${name}`, 'expected the sitecontainer to name its image, found none');
    }
    images.push({ image: container.image.trim(), via: `${container.isMain === true ? 'main sitecontainer' : 'sidecar'} ${name}` });
  }
  return images;
}

/** Images a web app or function app runs: the site's and every slot's (a slot is one swap away from production). Shared with inventory. */
export function imageUsesOfWebApp(app: { readonly name: string; readonly resourceId: string } & WebAppImages): ImageUse[] {
  const label = (slot: string | undefined, via: string | undefined): string => {
    const parts = [...(slot === undefined ? [] : [`slot ${slot}`]), ...(via === undefined ? [] : [via])];
    return parts.length === 0 ? app.name : `${app.name} (${parts.join(', ')})`;
  };
  return [
    ...app.images.map((image) => ({ image: image.image, usedBy: label(undefined, image.via), resourceId: app.resourceId })),
    ...app.slots.flatMap((slot) => slot.images.map((image) => ({ image: image.image, usedBy: label(slot.name, image.via), resourceId: `${app.resourceId}/slots/${slot.name}` }))),
  ];
}

/**
 * The uses that pull from the registry `registryName`, grouped by repository and reference.
 * Images of other registries (another login server, Docker Hub) are left out. A reference
 * pinned as `tag@digest` counts under both: the digest is what runs, the tag is kept too.
 *
 * @throws InUseResolutionError when a use's reference cannot be parsed: it might name this registry.
 */
export function usesInRegistry(uses: readonly ImageUse[], registryName: string, cloud: AzureCloudName, options: { readonly registry?: string } = {}): RegistryImageUse[] {
  const grouped = new Map<string, { image: string; repository: string; reference: string; usedBy: Set<string> }>();
  for (const use of uses) {
    let parsed: ReturnType<typeof parseImageReference>;
    try {
      parsed = parseImageReference(use.image);
    } catch (error) {
      if (!(error instanceof ImageReferenceError)) throw error;
      throw new InUseResolutionError(use.resourceId, `${use.usedBy} runs an image whose registry cannot be told: ${error.message}`, {
        cause: error,
        ...(options.registry === undefined ? {} : { registry: options.registry }),
      });
    }
    if (!pullsFromRegistry(parsed, registryName, cloud)) continue;
    for (const reference of [parsed.digest, parsed.tag]) {
      if (reference === undefined) continue;
      const key = `${parsed.repository}\u0000${reference}`;
      const existing = grouped.get(key);
      if (existing === undefined) grouped.set(key, { image: use.image, repository: parsed.repository, reference, usedBy: new Set([use.usedBy]) });
      else existing.usedBy.add(use.usedBy);
    }
  }
  return [...grouped.values()]
    .map((use) => ({ image: use.image, repository: use.repository, reference: use.reference, usedBy: [...use.usedBy].sort() }))
    .sort((a, b) => a.image.localeCompare(b.image) || a.reference.localeCompare(b.reference));
}

/** Why a digest of a repository must stay. */
export interface ProtectedDigest {
  /** Who uses it, each with the image as they name it, e.g. `ca-api (crx.azurecr.io/api:v2)`. */
  readonly users: readonly string[];
  /** Set when it is protected through a multi-arch index rather than used directly. */
  readonly relation?: string;
}

/** A digest is a `sha256:` (or other algorithm) reference rather than a tag. */
export function isDigest(reference: string): boolean {
  return /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-f]{32,}$/.test(reference);
}

/**
 * The digests of one repository that must stay because of its images in use:
 * - every digest in use (tags resolved through `digestOfTag`);
 * - the platform manifests of an index in use;
 * - for a platform manifest in use, every index that references it, and with that index its
 *   other platform manifests and its tags (tags follow their digest);
 * repeated until nothing changes (an index of indexes). Uses whose tag or digest the repository
 * no longer holds are returned as `missing`.
 */
export function protectedDigests(
  uses: readonly RegistryImageUse[],
  digestOfTag: ReadonlyMap<string, string>,
  manifests: readonly { readonly digest: string; readonly related: readonly string[] }[],
): { readonly protected: ReadonlyMap<string, ProtectedDigest>; readonly missing: readonly RegistryImageUse[] } {
  const present = new Set(manifests.map((manifest) => manifest.digest.toLowerCase()));
  const found = new Map<string, { users: Set<string>; relation?: string }>();
  const protect = (digest: string, users: Iterable<string>, relation?: string): boolean => {
    const existing = found.get(digest);
    if (existing === undefined) {
      found.set(digest, { users: new Set(users), ...(relation === undefined ? {} : { relation }) });
      return true;
    }
    const before = existing.users.size;
    for (const user of users) existing.users.add(user);
    if (relation === undefined && existing.relation !== undefined) {
      delete existing.relation;
      return true;
    }
    return existing.users.size > before;
  };
  const missing: RegistryImageUse[] = [];
  for (const use of uses) {
    const digest = isDigest(use.reference) ? use.reference.toLowerCase() : digestOfTag.get(use.reference)?.toLowerCase();
    if (digest === undefined || !present.has(digest)) {
      missing.push(use);
      continue;
    }
    protect(digest, use.usedBy.map((by) => `${by} (${use.image})`));
  }
  const lists = manifests.map((manifest) => ({ digest: manifest.digest.toLowerCase(), related: manifest.related.map((child) => child.toLowerCase()) })).filter((manifest) => manifest.related.length > 0);
  for (let changed = true; changed; ) {
    changed = false;
    for (const list of lists) {
      const kept = found.get(list.digest);
      if (kept === undefined) {
        const child = list.related.find((digest) => found.has(digest));
        if (child === undefined) continue;
        changed = protect(list.digest, found.get(child)?.users ?? [], `multi-arch index of the in-use platform image ${child}`) || changed;
      }
      const users = found.get(list.digest)?.users ?? new Set<string>();
      for (const child of list.related) {
        changed = protect(child, users, `platform image of the in-use multi-arch index ${list.digest}`) || changed;
      }
    }
  }
  const result = new Map<string, ProtectedDigest>();
  for (const [digest, entry] of found) result.set(digest, { users: [...entry.users].sort(), ...(entry.relation === undefined ? {} : { relation: entry.relation }) });
  return { protected: result, missing };
}
