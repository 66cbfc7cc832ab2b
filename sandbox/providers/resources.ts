/**
 * `Microsoft.Resources` generic resource listing, as the Resources REST spec shapes it
 * (`Resources_List` on a subscription, `Resources_ListByResourceGroup` on a resource group):
 * `GenericResourceExpanded` items (`id`, `name`, `type`, `location`, `tags`, plus `kind` and
 * `sku` where the resource has them), paged with `nextLink`, `$top` as the page size.
 *
 * `$filter` supports what scope discovery relies on: `resourceType eq '<type>'` terms joined by
 * `or` (case-insensitive, as ARM compares types). Any other filter is refused with ARM's 400
 * `InvalidFilterInQueryString` rather than ignored, so a caller relying on an unsupported filter
 * fails in the sandbox instead of silently getting everything. The resources are every other
 * provider's, read when the request arrives (a restored server or a deleted one shows at once).
 */
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse } from '../contract.ts';
import { armPage, armRead, param } from './common.ts';

/** One resource as the generic list reports it. */
export interface ListedResource {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  readonly location: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly kind?: string;
  readonly sku?: Readonly<Record<string, unknown>>;
}

/** A provider whose resources the generic list reports. */
export interface ListableProvider {
  listResources(): readonly ListedResource[];
}

/** A stored resource as the generic list reports it. */
export function listedOf(resource: { readonly id: string; readonly name: string; readonly location: string; readonly tags: Readonly<Record<string, string>>; readonly subscriptionId: string; readonly resourceGroup: string }, type: string): ListedResource {
  return { id: resource.id, name: resource.name, type, location: resource.location, tags: resource.tags, subscriptionId: resource.subscriptionId, resourceGroup: resource.resourceGroup };
}

/** Largest `$top` honoured (ARM caps pages at 1,000 items). */
const MAX_TOP = 1000;

/** The types of a `resourceType eq '…' [or …]` filter, or undefined when the filter is anything else. */
export function parseTypeFilter(filter: string): string[] | undefined {
  const terms = filter.split(/\s+or\s+/i);
  const types: string[] = [];
  for (const term of terms) {
    const match = /^\s*\(?\s*resourceType\s+eq\s+'((?:[^']|'')+)'\s*\)?\s*$/i.exec(term);
    if (match?.[1] === undefined) return undefined;
    types.push(match[1].replaceAll("''", "'").toLowerCase());
  }
  return types;
}

/** The `Microsoft.Resources` list operations over the resources of `sources`. */
export class ResourcesProvider implements SandboxProvider {
  readonly name = 'Microsoft.Resources';
  readonly types = [] as const;

  constructor(private readonly sources: () => readonly ListableProvider[]) {}

  seed(): void {
    // Nothing of its own: it lists the other providers' resources.
  }

  snapshot(): unknown {
    return {};
  }

  routes(): readonly RouteDefinition[] {
    return [
      armRead('/subscriptions/{subscriptionId}/resources', 'Resources_List', (request, context) => this.list(request, context, undefined)),
      armRead('/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/resources', 'Resources_ListByResourceGroup', (request, context) =>
        this.list(request, context, param(request, 'resourceGroup')),
      ),
    ];
  }

  private list(request: SandboxRequest, context: ProviderContext, resourceGroup: string | undefined): SandboxResponse {
    const subscriptionId = param(request, 'subscriptionId').toLowerCase();
    const filter = request.query.get('$filter');
    let types: string[] | undefined;
    if (filter !== null && filter.trim() !== '') {
      types = parseTypeFilter(filter);
      if (types === undefined) {
        return context.armError(400, 'InvalidFilterInQueryString', `The $filter '${filter}' is not supported by the sandbox: only resourceType eq '<type>' terms joined by or (see docs/sandbox.md).`);
      }
    }
    const topText = request.query.get('$top');
    const top = topText === null ? undefined : Number.parseInt(topText, 10);
    if (top !== undefined && (!Number.isInteger(top) || top < 1)) {
      return context.armError(400, 'InvalidParameter', `The value '${topText ?? ''}' of $top is not valid: expected a positive integer.`);
    }
    const all = this.sources().flatMap((source) => source.listResources()).filter((resource) => resource.subscriptionId.toLowerCase() === subscriptionId);
    const items = all
      .filter((resource) => resourceGroup === undefined || resource.resourceGroup.toLowerCase() === resourceGroup.toLowerCase())
      .filter((resource) => types === undefined || types.includes(resource.type.toLowerCase()))
      .sort((a, b) => (a.id.toLowerCase() < b.id.toLowerCase() ? -1 : a.id.toLowerCase() > b.id.toLowerCase() ? 1 : 0))
      .map((resource) => ({
        id: resource.id,
        name: resource.name,
        type: resource.type,
        location: resource.location,
        tags: { ...resource.tags },
        ...(resource.kind === undefined ? {} : { kind: resource.kind }),
        ...(resource.sku === undefined ? {} : { sku: resource.sku }),
      }));
    return armPage(request, context, items, top === undefined ? undefined : Math.min(top, MAX_TOP));
  }
}
