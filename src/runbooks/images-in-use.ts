/**
 * Which container images are in use, for `image-purge`: every image run by an active Container
 * App revision (and the app's template) and every App Service / Function App container
 * configuration (site and slots, `linuxFxVersion` and `windowsFxVersion`).
 *
 * The derivation of image uses from an app is shared with inventory
 * ({@link imageUsesOfContainerApp}, {@link imageUsesOfWebApp}); this module adds the strict
 * reading `image-purge` needs: every scope resource must be read, or the whole resolution fails
 * with an {@link InUseResolutionError} naming the resource — a purge never runs on incomplete
 * knowledge.
 */
import type { AzureClients } from '../azure/clients.ts';
import { callAzure } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import {
  collect,
  imageOfLinuxFxVersion,
  imageUsesOfContainerApp,
  imageUsesOfWebApp,
  parseImageReference,
  readContainerAppInventory,
  REGISTRY_SUFFIX,
  type ImageUse,
} from './inventory.ts';

export type { ImageUse } from './inventory.ts';

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
 * The images in use could not be determined for one scope resource. A purge plan must fail
 * on it: deleting images on incomplete knowledge could remove a running app's image.
 */
export class InUseResolutionError extends OpsAutopilotError {
  override readonly name: string = 'InUseResolutionError';
  /** The Container App or web app that could not be read. */
  readonly resourceId: string;

  constructor(resourceId: string, problem: string, options: { cause?: unknown; registry?: string } = {}) {
    super(
      `could not determine the images in use by ${resourceId}${options.registry === undefined ? '' : ` (needed before purging ${options.registry})`}: ${problem}`,
      { context: { resourceId, registry: options.registry }, cause: options.cause },
    );
    this.resourceId = resourceId;
  }
}

/** The login server of a registry in the configured cloud, e.g. `crxshopaiprod.azurecr.io`. */
export function loginServerOf(registryName: string, cloud: EstateConfig['azure']['cloud']): string {
  return `${registryName.toLowerCase()}.${REGISTRY_SUFFIX[cloud]}`;
}

/**
 * The ARM IDs whose images count as in use for a registry: every Container App and web app
 * target of the configuration plus `extraScope` (a policy's `inUseScope`), deduplicated
 * case-insensitively, in a stable order.
 */
export function inUseScopeIds(config: EstateConfig, extraScope: readonly string[]): string[] {
  const ids = new Map<string, string>();
  for (const target of config.targets) {
    const kind = parseResourceId(target.id).kind;
    if (kind === 'containerApp' || kind === 'webSite') ids.set(target.id.toLowerCase().replace(/\/+$/, ''), target.id);
  }
  for (const id of extraScope) ids.set(id.toLowerCase().replace(/\/+$/, ''), id);
  return [...ids.values()];
}

/**
 * Reads the images used by each resource of `scopeIds` (Container Apps and web apps), at most
 * `concurrency` resources at a time (the ARM budget paces the requests in any case).
 *
 * @throws InUseResolutionError naming the first resource that could not be read, or that is
 *   neither a Container App nor a web app.
 */
export async function readImagesInUse(
  clients: Pick<AzureClients, 'containerAppsClient' | 'webClient'>,
  scopeIds: readonly string[],
  options: { concurrency?: number; registry?: string } = {},
): Promise<ImageUse[]> {
  const results: ImageUse[][] = new Array<ImageUse[]>(scopeIds.length);
  let next = 0;
  let failure: InUseResolutionError | undefined;
  const worker = async (): Promise<void> => {
    while (next < scopeIds.length && failure === undefined) {
      const index = next;
      next += 1;
      const id = scopeIds[index];
      if (id === undefined) continue;
      try {
        results[index] = await readOne(clients, id, options.registry);
      } catch (error) {
        failure ??=
          error instanceof InUseResolutionError
            ? error
            : new InUseResolutionError(id, errorMessage(error), { cause: error, ...(options.registry === undefined ? {} : { registry: options.registry }) });
      }
    }
  };
  const width = Math.max(1, Math.min(options.concurrency ?? 4, scopeIds.length));
  await Promise.all(Array.from({ length: width }, worker));
  if (failure !== undefined) throw failure;
  return results.flat();
}

async function readOne(clients: Pick<AzureClients, 'containerAppsClient' | 'webClient'>, rawId: string, registry: string | undefined): Promise<ImageUse[]> {
  let id: ReturnType<typeof parseResourceId>;
  try {
    id = parseResourceId(rawId);
  } catch (error) {
    throw new InUseResolutionError(rawId, `expected an ARM resource ID, found "${rawId}"`, { cause: error, ...(registry === undefined ? {} : { registry }) });
  }
  if (id.kind === 'containerApp') {
    return imageUsesOfContainerApp(await readContainerAppInventory(clients, id.id));
  }
  if (id.kind === 'webSite') {
    return imageUsesOfWebApp(await readWebAppImages(clients, id));
  }
  throw new InUseResolutionError(rawId, `expected a Container App or a web app (Microsoft.App/containerApps, Microsoft.Web/sites), found ${id.type}`, {
    ...(registry === undefined ? {} : { registry }),
  });
}

/** The container image of a site configuration: Linux first, then Windows containers. */
function imageOfSiteConfig(config: { linuxFxVersion?: string | null; windowsFxVersion?: string | null }): string | undefined {
  const linux = config.linuxFxVersion ?? undefined;
  const windows = config.windowsFxVersion ?? undefined;
  return imageOfLinuxFxVersion(linux === '' ? undefined : linux) ?? imageOfLinuxFxVersion(windows === '' ? undefined : windows);
}

async function readWebAppImages(
  clients: Pick<AzureClients, 'webClient'>,
  id: ReturnType<typeof parseResourceId>,
): Promise<{ name: string; image?: string; slots: { name: string; image?: string }[] }> {
  const client = await clients.webClient(id.subscriptionId);
  const config = await callAzure({ resourceId: `${id.id}/config/web`, operation: 'get web app configuration' }, () =>
    client.webApps.getConfiguration(id.resourceGroup, id.name),
  );
  const slotSites = await callAzure({ resourceId: `${id.id}/slots`, operation: 'list web app slots' }, () =>
    collect(client.webApps.listSlots(id.resourceGroup, id.name)),
  );
  const slots: { name: string; image?: string }[] = [];
  for (const slot of slotSites) {
    // Slot names come back as `app/slot`.
    const slotName = (slot.name ?? '').split('/').at(-1) ?? '';
    const slotConfig = await callAzure({ resourceId: `${id.id}/slots/${slotName}/config/web`, operation: 'get slot configuration' }, () =>
      client.webApps.getConfigurationSlot(id.resourceGroup, id.name, slotName),
    );
    const image = imageOfSiteConfig(slotConfig);
    slots.push({ name: slotName, ...(image === undefined ? {} : { image }) });
  }
  const image = imageOfSiteConfig(config);
  return { name: id.name, ...(image === undefined ? {} : { image }), slots };
}

/**
 * The uses that point into the registry with this login server, grouped by repository and
 * reference. Images of other registries (another login server, Docker Hub) are left out.
 */
export function usesInRegistry(uses: readonly ImageUse[], loginServer: string): RegistryImageUse[] {
  const server = loginServer.toLowerCase();
  const grouped = new Map<string, { image: string; repository: string; reference: string; usedBy: Set<string> }>();
  for (const use of uses) {
    const parsed = parseImageReference(use.image);
    if (parsed.host !== server) continue;
    // `repo:tag@sha256:...` runs the digest; the tag is only a label.
    const repository = parsed.reference.startsWith('sha256:') ? parsed.repository.replace(/:[^/]*$/, '') : parsed.repository;
    // Digests are case-insensitive hex; tags are case-sensitive in ACR.
    const reference = parsed.reference.startsWith('sha256:') ? parsed.reference.toLowerCase() : parsed.reference;
    const key = `${repository}\u0000${reference}`;
    const existing = grouped.get(key);
    if (existing === undefined) grouped.set(key, { image: use.image, repository, reference, usedBy: new Set([use.usedBy]) });
    else existing.usedBy.add(use.usedBy);
  }
  return [...grouped.values()]
    .map((use) => ({ image: use.image, repository: use.repository, reference: use.reference, usedBy: [...use.usedBy].sort() }))
    .sort((a, b) => a.image.localeCompare(b.image));
}
