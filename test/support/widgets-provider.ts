/**
 * A tiny resource provider for engine tests: `Test.Widgets/widgets` on ARM (GET, PUT as a
 * long-running operation, POST resize as a long-running operation), plus one route on each
 * data-plane host so that routing, authentication and throttling can be observed.
 */
import type { RouteDefinition, SandboxProvider, WorldFile, WorldResource } from '../../sandbox/contract.ts';

/** A widget's stored state. */
export interface Widget {
  id: string;
  name: string;
  size: number;
  provisioningState: string;
}

const ARM_BASE = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Test.Widgets/widgets/{name}';

/** Creates a fresh widgets provider. `extraTypes` are accepted in worlds and ignored. */
export function createWidgetsProvider(extraTypes: readonly string[] = []): SandboxProvider & { widgets: Map<string, Widget> } {
  const widgets = new Map<string, Widget>();
  const idOf = (params: Readonly<Record<string, string>>): string =>
    `/subscriptions/${params.subscriptionId ?? ''}/resourceGroups/${params.resourceGroup ?? ''}/providers/Test.Widgets/widgets/${params.name ?? ''}`;
  const view = (widget: Widget): Record<string, unknown> => ({
    id: widget.id,
    name: widget.name,
    type: 'Test.Widgets/widgets',
    properties: { size: widget.size, provisioningState: widget.provisioningState },
  });
  const routes: RouteDefinition[] = [
    {
      host: 'arm',
      method: 'GET',
      pattern: ARM_BASE,
      throttle: 'read',
      operationId: 'Test.Widgets/widgets.get',
      handler: (request, context) => {
        const widget = widgets.get(idOf(request.params).toLowerCase());
        return widget === undefined
          ? context.armError(404, 'ResourceNotFound', `The Resource 'Test.Widgets/widgets/${request.params.name ?? ''}' was not found.`)
          : { status: 200, body: view(widget) };
      },
    },
    {
      host: 'arm',
      method: 'PUT',
      pattern: ARM_BASE,
      throttle: 'write',
      operationId: 'Test.Widgets/widgets.createOrUpdate',
      handler: (request, context) => {
        const id = idOf(request.params);
        const size = (request.body as { properties?: { size?: number } } | undefined)?.properties?.size ?? 1;
        const existing = widgets.get(id.toLowerCase());
        const widget: Widget = existing ?? { id, name: request.params.name ?? '', size: 0, provisioningState: 'Creating' };
        const operation = context.startOperation({
          operationId: 'Test.Widgets/widgets.createOrUpdate',
          resourceId: id,
          onStart: () => {
            widget.provisioningState = existing === undefined ? 'Creating' : 'Updating';
            widgets.set(id.toLowerCase(), widget);
          },
          run: () => {
            widget.size = size;
            widget.provisioningState = 'Succeeded';
          },
          result: () => view(widget),
        });
        return operation.accepted({ status: 201, body: view(widget) });
      },
    },
    {
      host: 'arm',
      method: 'POST',
      pattern: `${ARM_BASE}/resize`,
      throttle: 'write',
      operationId: 'Test.Widgets/widgets.resize',
      handler: (request, context) => {
        const widget = widgets.get(idOf(request.params).toLowerCase());
        if (widget === undefined) return context.armError(404, 'ResourceNotFound', 'no such widget');
        const size = Number(request.query.get('size') ?? '0');
        return context
          .startOperation({
            operationId: 'Test.Widgets/widgets.resize',
            resourceId: widget.id,
            run: () => {
              if (size < 0) throw new Error(`expected a size >= 0, found ${String(size)}`);
              widget.size = size;
            },
            result: () => ({ size: widget.size }),
          })
          .accepted();
      },
    },
    {
      host: 'keyvault',
      method: 'GET',
      pattern: '/secrets/{name}',
      throttle: 'none',
      operationId: 'Test.Vault.getSecret',
      handler: (request) =>
        request.principal === undefined
          ? { status: 401, headers: { 'WWW-Authenticate': 'Bearer authorization="x", resource="https://vault.azure.net"' }, body: { error: { code: 'Unauthorized', message: 'no token' } } }
          : { status: 200, body: { vault: request.hostName, name: request.params.name, oid: request.principal.oid } },
    },
    {
      host: 'acr',
      method: 'GET',
      pattern: '/v2/{repository*}/tags/list',
      throttle: 'read',
      requiresAuth: false,
      operationId: 'Test.Registry.listTags',
      handler: (request) => ({ status: 200, body: { registry: request.hostName, name: request.params.repository, tags: ['v1'] } }),
    },
    {
      host: 'apphost',
      method: 'GET',
      pattern: '/{path*}',
      throttle: 'none',
      requiresAuth: false,
      operationId: 'Test.App.get',
      handler: (request) => ({ status: 200, rawBody: `${request.hostName ?? ''} ${request.params.path ?? ''}`, headers: { 'content-type': 'text/plain' } }),
    },
  ];
  return {
    name: 'Test.Widgets',
    types: ['Test.Widgets/widgets', ...extraTypes],
    widgets,
    seed(world: WorldFile, resources: readonly WorldResource[]) {
      for (const resource of resources) {
        if (resource.type !== 'Test.Widgets/widgets') continue;
        const size = resource.spec.size;
        if (typeof size !== 'number') throw new Error(`world ${world.name}: widget ${resource.name}: expected spec.size to be a number`);
        const id = `/subscriptions/${world.subscriptionId}/resourceGroups/${resource.resourceGroup}/providers/Test.Widgets/widgets/${resource.name}`;
        widgets.set(id.toLowerCase(), { id, name: resource.name, size, provisioningState: 'Succeeded' });
      }
    },
    routes: () => routes,
    snapshot: () => [...widgets.values()],
  };
}
