/**
 * The emulated apps' own HTTP endpoints (host `apphost`): `/_hosts/{hostname}/{path}` answers
 * for the web app or container app whose Azure host name is `hostname`, so health checks and
 * post-remediation verification have something real to call.
 */
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse } from '../contract.ts';
import { json } from './common.ts';

/** What a provider reports about one app reachable by host name. */
export interface AppEndpointState {
  /** ARM ID of the app (or slot), for the request log and errors. */
  readonly resourceId: string;
  /** Stopped apps answer like a cold front end: 503 from the platform. */
  readonly running: boolean;
  /** A running but unhealthy app answers its health paths with 503. */
  readonly healthy: boolean;
  /** Paths that answer `{"status":"healthy"}` (liveness and readiness). */
  readonly healthPaths: readonly string[];
}

/** A provider that owns apps reachable by host name. */
export interface AppHostResolver {
  findByHostName(hostName: string): AppEndpointState | undefined;
}

/**
 * Builds the `apphost` provider over the providers that own apps. It declares no world types:
 * the apps themselves are seeded by their own providers.
 */
export function createAppHostProvider(resolvers: readonly AppHostResolver[]): SandboxProvider {
  const resolve = (hostName: string | undefined): AppEndpointState | undefined => {
    if (hostName === undefined) return undefined;
    const lower = hostName.toLowerCase();
    for (const resolver of resolvers) {
      const found = resolver.findByHostName(lower);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  const handle = (request: SandboxRequest, context: ProviderContext): SandboxResponse => {
    const app = resolve(request.hostName);
    if (app === undefined) {
      return json(404, { error: { code: 'HostNotFound', message: `No emulated app has host name "${request.hostName ?? ''}"` } });
    }
    if (!app.running) {
      context.event('apphost.stopped', { resourceId: app.resourceId, path: request.path });
      return {
        status: 503,
        headers: { 'content-type': 'text/html' },
        rawBody: '<html><body><h1>Error 403 - This web app is stopped.</h1></body></html>',
      };
    }
    const path = request.path === '' ? '/' : request.path;
    const isHealthPath = app.healthPaths.some((candidate) => candidate.toLowerCase() === path.toLowerCase());
    if (isHealthPath) {
      return app.healthy ? json(200, { status: 'healthy' }) : json(503, { status: 'unhealthy' });
    }
    if (path === '/') {
      return app.healthy ? { status: 200, headers: { 'content-type': 'text/plain' }, rawBody: 'ok' } : json(503, { status: 'unhealthy' });
    }
    return json(404, { error: 'Not Found', path });
  };

  const methods = ['GET', 'HEAD', 'POST'] as const;
  const routes: RouteDefinition[] = methods.flatMap((method) =>
    ['/', '/{path*}'].map((pattern) => ({
      host: 'apphost' as const,
      method,
      pattern,
      throttle: 'none' as const,
      operationId: 'AppHost.request',
      requiresAuth: false,
      handler: handle,
    })),
  );

  return {
    name: 'AppHost',
    types: [],
    seed: () => undefined,
    routes: () => routes,
    snapshot: () => ({}),
  };
}
