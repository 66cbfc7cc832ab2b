/**
 * Reading a Container App and its revisions, read-only, in the shape inventory reports and the
 * runbooks that act on revisions (revision-cleanup) or on their images (image-purge) use.
 */
import type { ContainerApp, Revision } from '@azure/arm-appcontainers';
import type { AzureClients } from '../../azure/clients.ts';
import { callAzure } from '../../azure/errors.ts';
import { parseResourceId, type ResourceId } from '../../azure/resource-id.ts';
import { collect } from '../../util/collect.ts';

/** Fields every inventory entry has. */
export interface InventoryEntryBase {
  /** Full ARM resource ID of the target. */
  readonly targetId: string;
  readonly name: string;
  readonly resourceGroup: string;
  readonly displayName?: string;
  readonly location?: string;
}

/** One Container Apps revision. */
export interface RevisionInventory {
  readonly name: string;
  readonly active: boolean;
  readonly createdTime?: string;
  readonly trafficWeight: number;
  readonly replicas?: number;
  readonly healthState?: string;
  readonly runningState?: string;
  /** Images of the revision's containers and init containers. */
  readonly images: readonly string[];
}

/** A Container App. */
export interface ContainerAppInventory extends InventoryEntryBase {
  readonly provisioningState?: string;
  readonly runningStatus?: string;
  readonly activeRevisionsMode?: string;
  readonly fqdn?: string;
  readonly latestRevisionName?: string;
  readonly latestReadyRevisionName?: string;
  /** Images of the current template: containers and init containers. */
  readonly images: readonly string[];
  /** Ingress traffic split, as configured (`latestRevision` or a revision name). */
  readonly traffic: readonly { readonly revisionName?: string; readonly latestRevision: boolean; readonly weight: number; readonly label?: string }[];
  readonly revisionCount: number;
  readonly activeRevisionCount: number;
  /** Newest first. */
  readonly revisions: readonly RevisionInventory[];
}

/** An ISO time, or undefined for a missing or invalid date. */
export function isoTime(date: Date | string | undefined): string | undefined {
  if (date === undefined) return undefined;
  const value = typeof date === 'string' ? new Date(date) : date;
  return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
}

/**
 * Every image a Container Apps template pulls: its containers' and its init containers'. An
 * image used only by an init container is still pulled on every new replica, so deleting it
 * breaks scaling out as surely as deleting the main image. (Container Apps jobs' templates have
 * the same two lists.)
 */
export function templateImages(
  template: { readonly containers?: readonly { readonly image?: string }[]; readonly initContainers?: readonly { readonly image?: string }[] } | undefined,
): string[] {
  const images = [...(template?.containers ?? []), ...(template?.initContainers ?? [])].flatMap((container) =>
    container.image === undefined || container.image === '' ? [] : [container.image],
  );
  return [...new Set(images)];
}

/**
 * Reads a Container App and all its revisions (newest first), read-only, as inventory reports
 * them: traffic split, latest and latest-ready revision, per-revision traffic weight and images.
 *
 * @throws AzureOperationError subclasses (from callAzure) naming the app when a read fails.
 */
export async function readContainerAppInventory(
  clients: Pick<AzureClients, 'containerAppsClient'>,
  targetId: string,
  displayName?: string,
): Promise<ContainerAppInventory> {
  const id = parseResourceId(targetId);
  return fetchContainerApp(clients, id, {
    targetId: id.id,
    name: id.name,
    resourceGroup: id.resourceGroup,
    ...(displayName === undefined ? {} : { displayName }),
  });
}

/**
 * Reads an app (unless `known` already holds it, e.g. from a subscription listing) and lists its
 * revisions.
 */
export async function fetchContainerApp(
  clients: Pick<AzureClients, 'containerAppsClient'>,
  id: ResourceId,
  base: InventoryEntryBase,
  known?: ContainerApp,
): Promise<ContainerAppInventory> {
  const client = await clients.containerAppsClient(id.subscriptionId);
  const app = known ?? (await callAzure({ resourceId: id.id, operation: 'get Container App' }, () => client.containerApps.get(id.resourceGroup, id.name)));
  const revisions = await callAzure({ resourceId: id.id, operation: 'list Container App revisions' }, () =>
    collect(client.containerAppsRevisions.listRevisions(id.resourceGroup, id.name)),
  );
  return containerAppEntry(base, app, revisions);
}

function containerAppEntry(base: InventoryEntryBase, app: ContainerApp, revisions: readonly Revision[]): ContainerAppInventory {
  const revisionEntries: RevisionInventory[] = revisions
    .map((revision) => {
      const createdTime = isoTime(revision.createdTime);
      return {
        name: revision.name ?? '(unnamed)',
        active: revision.active === true,
        ...(createdTime === undefined ? {} : { createdTime }),
        trafficWeight: revision.trafficWeight ?? 0,
        ...(revision.replicas === undefined ? {} : { replicas: revision.replicas }),
        ...(revision.healthState === undefined ? {} : { healthState: revision.healthState }),
        ...(revision.runningState === undefined ? {} : { runningState: revision.runningState }),
        images: templateImages(revision.template),
      };
    })
    .sort((a, b) => (b.createdTime ?? '').localeCompare(a.createdTime ?? ''));
  const ingress = app.configuration?.ingress;
  return {
    ...base,
    ...(app.location === '' ? {} : { location: app.location }),
    ...(app.provisioningState === undefined ? {} : { provisioningState: app.provisioningState }),
    ...(app.runningStatus === undefined ? {} : { runningStatus: app.runningStatus }),
    ...(app.configuration?.activeRevisionsMode === undefined ? {} : { activeRevisionsMode: app.configuration.activeRevisionsMode }),
    ...(ingress?.fqdn === undefined ? {} : { fqdn: ingress.fqdn }),
    ...(app.latestRevisionName === undefined ? {} : { latestRevisionName: app.latestRevisionName }),
    ...(app.latestReadyRevisionName === undefined ? {} : { latestReadyRevisionName: app.latestReadyRevisionName }),
    images: templateImages(app.template),
    traffic: (ingress?.traffic ?? []).map((weight) => ({
      ...(weight.revisionName === undefined ? {} : { revisionName: weight.revisionName }),
      latestRevision: weight.latestRevision === true,
      weight: weight.weight ?? 0,
      ...(weight.label === undefined ? {} : { label: weight.label }),
    })),
    revisionCount: revisionEntries.length,
    activeRevisionCount: revisionEntries.filter((revision) => revision.active).length,
    revisions: revisionEntries,
  };
}
