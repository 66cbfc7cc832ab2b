/**
 * Scope discovery with ARM's generic resource list operations (`Resources_ListByResourceGroup`
 * and `Resources_List`), through the one client factory (so every page draws from the
 * subscription's ARM read budget and the SDK's retry policy).
 *
 * The request filters by type only (`resourceType eq 'A' or resourceType eq 'B'`): ARM returns no
 * tags when a list is filtered by tag, and the tags are what the scope's include and exclude
 * tags and the `ops-autopilot: ignore` tag are judged on, so those are matched here on the
 * listed resources. Every page (`nextLink`) is read before anything is selected; a failure on
 * any page fails the whole listing (a partial listing would silently drop resources).
 */
import { resolveTargets, type DiscoveredResource, type DiscoveryQuery, type ScopeDiscovery, type TargetResolution } from '../config/resolve.ts';
import type { EstateConfig } from '../config/schema.ts';
import type { AzureClients } from './clients.ts';
import { callAzure } from './errors.ts';

/** Most resources one listing may return; a scope larger than this is a mistake to narrow, not a page to drop. */
export const MAX_LISTED_RESOURCES = 5000;

/** The `$filter` of a listing: the types, OR-ed. */
export function typeFilter(types: readonly string[]): string {
  return types.map((type) => `resourceType eq '${type.replaceAll("'", "''")}'`).join(' or ');
}

/** {@link ScopeDiscovery} over ARM through `clients`. */
export function armScopeDiscovery(clients: AzureClients): ScopeDiscovery {
  return {
    async list(query: DiscoveryQuery, signal?: AbortSignal): Promise<readonly DiscoveredResource[]> {
      const client = await clients.resourcesClient(query.subscriptionId);
      const filter = typeFilter(query.types);
      const where = `/subscriptions/${query.subscriptionId}${query.resourceGroup === undefined ? '' : `/resourceGroups/${query.resourceGroup}`}`;
      return callAzure({ resourceId: where, operation: query.resourceGroup === undefined ? 'list resources of the subscription' : 'list resources of the resource group', expected: 'the resources to be listed' }, async () => {
        const pages = query.resourceGroup === undefined ? client.resources.list({ filter, abortSignal: signal }) : client.resources.listByResourceGroup(query.resourceGroup, { filter, abortSignal: signal });
        const found: DiscoveredResource[] = [];
        for await (const resource of pages) {
          if (resource.id === undefined || resource.name === undefined || resource.type === undefined) continue;
          found.push({ id: resource.id, name: resource.name, type: resource.type, tags: { ...(resource.tags ?? {}) } });
          if (found.length > MAX_LISTED_RESOURCES) throw new Error(`expected at most ${String(MAX_LISTED_RESOURCES)} resources in one listing of ${where}, found more (narrow the scope by resource group or type)`);
        }
        return found;
      });
    },
  };
}

/**
 * The estate's resolved targets with ARM discovery through `clients`: `known` when a caller
 * resolved already (the executor's run), else {@link resolveTargets} now.
 */
export function resolveWithArm(config: EstateConfig, clients: AzureClients, known?: TargetResolution, signal?: AbortSignal): Promise<TargetResolution> {
  if (known !== undefined) return Promise.resolve(known);
  return resolveTargets(config, { discovery: armScopeDiscovery(clients), ...(signal === undefined ? {} : { signal }) });
}
