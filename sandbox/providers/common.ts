/**
 * Helpers shared by the sandbox resource providers: world-spec validation, ARM IDs and
 * envelopes, relative ages, paging and stable fake identifiers.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';

/** Thrown when a world file's resource spec does not match what its provider expects. */
export class WorldSpecError extends Error {
  override readonly name = 'WorldSpecError';
  constructor(
    readonly worldFile: string,
    readonly resourceType: string,
    readonly resourceName: string,
    readonly problem: string,
  ) {
    super(`${worldFile}: resource ${resourceType} "${resourceName}": ${problem}`);
  }
}

/** The repository-relative path of a world's YAML file, used in error messages. */
export function worldFilePath(world: WorldFile): string {
  return `sandbox/worlds/${world.name}.yaml`;
}

/** Validates a resource's `spec` against a zod schema, naming the world file on failure. */
export function parseSpec<T>(schema: z.ZodType<T>, world: WorldFile, resource: WorldResource): T {
  const result = schema.safeParse(resource.spec);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `spec.${issue.path.map(String).join('.')}: ${issue.message}`)
      .join('; ');
    throw new WorldSpecError(worldFilePath(world), resource.type, resource.name, `expected a valid spec, found: ${problems}`);
  }
  return result.data;
}

/** A zod error as one line, `path: message; ...`, for refusals that say what was found. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}`).join('; ');
}

/** The ARM ID of a top-level resource. */
export function armId(subscriptionId: string, resourceGroup: string, type: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${type}/${name}`;
}

/** Lower-cased key for case-insensitive ARM lookups. */
export function idKey(id: string): string {
  return id.toLowerCase();
}

const HOUR_MS = 3_600_000;

/** A time `hours` before `now` (negative hours lie in the future). */
export function hoursBefore(now: Date, hours: number): Date {
  return new Date(now.getTime() - hours * HOUR_MS);
}

/** A time `days` before `now`. */
export function daysBefore(now: Date, days: number): Date {
  return hoursBefore(now, days * 24);
}

/** Whole Unix seconds, as Key Vault attributes use. */
export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** A deterministic hex string derived from `seed` (digests, versions, GUID-like IDs). */
export function stableHex(seed: string, length = 64): string {
  let out = '';
  for (let round = 0; out.length < length; round += 1) {
    out += createHash('sha256').update(`${String(round)}:${seed}`).digest('hex');
  }
  return out.slice(0, length);
}

/** A deterministic GUID derived from `seed`. */
export function stableGuid(seed: string): string {
  const hex = stableHex(seed, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * An ARM route that reads (draws on the read bucket). POSTs that only read, such as
 * `config/appsettings/list`, pass `method: 'POST'`: ARM throttles them as reads too.
 */
export function armRead(
  pattern: string,
  operationId: string,
  handler: RouteDefinition['handler'],
  method: RouteDefinition['method'] = 'GET',
): RouteDefinition {
  return { host: 'arm', method, pattern, throttle: 'read', operationId, handler };
}

/** A JSON response. */
export function json(status: number, body: unknown, headers?: Record<string, string>): SandboxResponse {
  return headers === undefined ? { status, body } : { status, body, headers };
}

/** The ARM 404 for a missing resource, worded as ARM words it. */
export function resourceNotFound(context: ProviderContext, type: string, name: string, resourceGroup: string): SandboxResponse {
  return context.armError(
    404,
    'ResourceNotFound',
    `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
  );
}

/** Reads a required route parameter; the router guarantees it, so absence is a routing bug. */
export function param(request: SandboxRequest, name: string): string {
  const value = request.params[name];
  if (value === undefined) {
    throw new Error(`Route parameter "${name}" expected in ${request.method} ${request.path}, found none`);
  }
  // Path segments may still be percent-encoded (e.g. ACR repository names `a%2Fb`); names never contain '%'.
  return value.includes('%') ? decodeURIComponent(value) : value;
}

/** Default ARM page size of the sandbox's list operations; small so paging is exercised. */
export const ARM_PAGE_SIZE = 10;

/**
 * One page of an ARM list: `{ value, nextLink }` where nextLink is an absolute URL carrying
 * `$skiptoken` (an offset) and the caller's api-version.
 */
export function armPage(request: SandboxRequest, context: ProviderContext, items: readonly unknown[], pageSize = ARM_PAGE_SIZE): SandboxResponse {
  const skip = Number.parseInt(request.query.get('$skiptoken') ?? '0', 10);
  const start = Number.isFinite(skip) && skip > 0 ? skip : 0;
  const page = items.slice(start, start + pageSize);
  const body: { value: unknown[]; nextLink?: string } = { value: page };
  if (start + pageSize < items.length) {
    const next = new URLSearchParams(request.query);
    next.set('$skiptoken', String(start + pageSize));
    body.nextLink = `${context.baseUrl}${request.path}?${next.toString()}`;
  }
  return json(200, body);
}

/** Same subscription and (optionally) resource group, compared case-insensitively as ARM does. */
export function inScope(resource: { subscriptionId: string; resourceGroup: string }, subscriptionId: string, resourceGroup?: string): boolean {
  return (
    resource.subscriptionId.toLowerCase() === subscriptionId.toLowerCase() &&
    (resourceGroup === undefined || resource.resourceGroup.toLowerCase() === resourceGroup.toLowerCase())
  );
}

/** Common identity of a seeded ARM resource. */
export interface ArmResourceBase {
  readonly id: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly name: string;
  readonly location: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly tenantId: string;
}

/** The tracked-resource envelope every ARM resource body starts with (id, name, type, location, tags). */
export function armEnvelope(resource: ArmResourceBase, type: string): Record<string, unknown> {
  return { id: resource.id, name: resource.name, type, location: resource.location, tags: resource.tags };
}

/** Builds the common identity of a world resource. */
export function baseOf(world: WorldFile, resource: WorldResource, type: string): ArmResourceBase {
  return {
    id: armId(world.subscriptionId, resource.resourceGroup, type, resource.name),
    subscriptionId: world.subscriptionId,
    resourceGroup: resource.resourceGroup,
    name: resource.name,
    location: resource.location,
    tags: { ...(resource.tags ?? {}) },
    tenantId: world.tenantId,
  };
}

/** Keyed store of seeded resources with case-insensitive ARM lookups. */
export class ResourceStore<T extends ArmResourceBase> {
  private readonly byId = new Map<string, T>();

  add(resource: T): void {
    this.byId.set(idKey(resource.id), resource);
  }

  get(subscriptionId: string, resourceGroup: string, type: string, name: string): T | undefined {
    return this.byId.get(idKey(armId(subscriptionId, resourceGroup, type, name)));
  }

  /** Removes a resource (a completed delete); true when there was one. */
  remove(id: string): boolean {
    return this.byId.delete(idKey(id));
  }

  list(subscriptionId: string, resourceGroup?: string): T[] {
    return [...this.byId.values()].filter((resource) => inScope(resource, subscriptionId, resourceGroup));
  }

  all(): T[] {
    return [...this.byId.values()];
  }

  /**
   * Serves a request on one resource of `type`: the one the route's `{subscriptionId}`,
   * `{resourceGroup}` and `{name}` parameters name goes to `handle`; when there is none, ARM's
   * ResourceNotFound answers.
   */
  serve(type: string, request: SandboxRequest, context: ProviderContext, handle: (resource: T) => SandboxResponse): SandboxResponse {
    const resourceGroup = param(request, 'resourceGroup');
    const name = param(request, 'name');
    const found = this.get(param(request, 'subscriptionId'), resourceGroup, type, name);
    return found === undefined ? resourceNotFound(context, type, name, resourceGroup) : handle(found);
  }
}

/**
 * The three read routes of a tracked resource type, as ARM names them: list by subscription
 * (`{type}.listBySubscription`), list by resource group (`{type}.listByResourceGroup`), both
 * paged, and get (`{type}.get`, ResourceNotFound when absent).
 */
export function trackedResourceReads<T extends ArmResourceBase>(store: ResourceStore<T>, type: string, toJson: (resource: T) => unknown): RouteDefinition[] {
  const inGroup = `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${type}`;
  return [
    armRead(`/subscriptions/{subscriptionId}/providers/${type}`, `${type}.listBySubscription`, (request, context) =>
      armPage(request, context, store.list(param(request, 'subscriptionId')).map(toJson)),
    ),
    armRead(inGroup, `${type}.listByResourceGroup`, (request, context) =>
      armPage(request, context, store.list(param(request, 'subscriptionId'), param(request, 'resourceGroup')).map(toJson)),
    ),
    armRead(`${inGroup}/{name}`, `${type}.get`, (request, context) => store.serve(type, request, context, (found) => json(200, toJson(found)))),
  ];
}

/** The `systemData` block ARM attaches to resources. */
export function systemData(created: Date, modified: Date): Record<string, string> {
  return {
    createdBy: 'ops@example.com',
    createdByType: 'User',
    createdAt: created.toISOString(),
    lastModifiedBy: 'ops@example.com',
    lastModifiedByType: 'User',
    lastModifiedAt: modified.toISOString(),
  };
}

/** A zod schema for string-to-string maps (tags, app settings). */
export const stringMap = z.record(z.string(), z.string());

/** Who asked for an ARM write or action, captured when the request arrives (the event is published when it completes). */
export interface ArmEventOrigin {
  readonly method: string;
  readonly url: string;
  readonly clientRequestId: string;
  readonly correlationId: string;
  readonly principal: { readonly oid: string; readonly aud: string } | undefined;
}

/** The request details an ARM event (`Microsoft.Resources.Resource*`) carries. */
export function armEventOrigin(request: SandboxRequest, context: ProviderContext): ArmEventOrigin {
  const header = (name: string): string | undefined => {
    const value = request.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    method: request.method,
    url: `${context.baseUrl}${request.path}${request.query.size > 0 ? `?${request.query.toString()}` : ''}`,
    clientRequestId: header('x-ms-client-request-id') ?? stableGuid(`client:${request.path}:${context.now().toISOString()}`),
    correlationId: header('x-ms-correlation-request-id') ?? stableGuid(`correlation:${request.path}:${context.now().toISOString()}`),
    principal: request.principal,
  };
}

/**
 * Publishes the Azure Resource Manager event of a completed write (PUT/PATCH) or action (POST)
 * to the resource group's system topic, shaped as the `Microsoft.Resources.ResourceWriteSuccess`
 * / `ResourceActionSuccess` examples of the Event Grid docs (`dataVersion` 2).
 */
export function publishArmEvent(
  context: ProviderContext,
  resource: ArmResourceBase,
  event: { readonly kind: 'Write' | 'Action'; readonly outcome?: 'Success' | 'Failure'; readonly resourceUri?: string; readonly operationName: string; readonly origin: ArmEventOrigin },
): void {
  const resourceUri = event.resourceUri ?? resource.id;
  const outcome = event.outcome ?? 'Success';
  const { origin } = event;
  context.publishEvent?.({
    topic: `/subscriptions/${resource.subscriptionId}/resourceGroups/${resource.resourceGroup}`,
    subject: resourceUri,
    eventType: `Microsoft.Resources.Resource${event.kind}${outcome}`,
    dataVersion: '2',
    data: {
      authorization: { scope: resourceUri, action: event.operationName, evidence: { role: 'Contributor', principalType: 'ServicePrincipal' } },
      claims: {
        aud: origin.principal?.aud ?? 'https://management.azure.com',
        iss: `https://sts.windows.net/${resource.tenantId}/`,
        'http://schemas.microsoft.com/identity/claims/objectidentifier': origin.principal?.oid ?? '',
        'http://schemas.microsoft.com/identity/claims/tenantid': resource.tenantId,
        ver: '1.0',
      },
      correlationId: origin.correlationId,
      httpRequest: { clientRequestId: origin.clientRequestId, clientIpAddress: '127.0.0.1', method: origin.method, url: origin.url },
      resourceProvider: resourceUri.split('/')[6] ?? '',
      resourceUri,
      operationName: event.operationName,
      status: outcome === 'Success' ? 'Succeeded' : 'Failed',
      subscriptionId: resource.subscriptionId,
      tenantId: resource.tenantId,
    },
  });
}
