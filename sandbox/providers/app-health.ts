/**
 * The emulated apps' own HTTP endpoints (host `apphost`): `/_hosts/{hostname}/{path}` answers
 * for the web app or container app whose Azure host name is `hostname`, so health checks and
 * post-remediation verification have something real to call. Their health is scripted
 * (`health-scripts.ts`) per world and through `/_sandbox/health`.
 */
import { z } from 'zod';
import type { ControlRoute, ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse } from '../contract.ts';
import { describeIssues, json } from './common.ts';
import { healthScriptSchema, type AppHealth, type HealthVerdict } from './health-scripts.ts';

/** What a provider reports about one app reachable by host name. */
export interface AppEndpointState {
  /** ARM ID of the app (or slot), for the request log and errors. */
  readonly resourceId: string;
  readonly hostName: string;
  /** Stopped apps answer like a cold front end: 503 from the platform. */
  readonly running: boolean;
  /** A web app restarting answers 503 until its restart completes. */
  readonly restarting: boolean;
  /** The scripted health of what serves the host (for a container app: every revision with traffic). */
  readonly health: HealthVerdict;
  /** Paths that answer `{"status":"healthy"}` (liveness and readiness). */
  readonly healthPaths: readonly string[];
}

/** A provider that owns apps reachable by host name. */
export interface AppHostResolver {
  /** The app with this (lower-case) host name, its health as of `now` (the sandbox clock). */
  findByHostName(hostName: string, now: Date): AppEndpointState | undefined;
  /** Every app it serves, for `GET /_sandbox/health`. */
  endpoints(now: Date): AppEndpointState[];
}

const controlBodySchema = z.union([
  z.object({ target: z.string().min(1), script: healthScriptSchema.nullable() }).strict(),
  z.object({ image: z.string().min(1), healthy: z.boolean(), failsProvisioning: z.boolean().optional() }).strict(),
]);

const invalid = (message: string): SandboxResponse => json(400, { error: { code: 'InvalidControlRequest', message } });

/**
 * Builds the `apphost` provider over the providers that own apps, with the control endpoint
 * `/_sandbox/health`. It declares no world types: the apps themselves, and the health scripts
 * of their world specs, are seeded by their own providers.
 */
export function createAppHostProvider(resolvers: readonly AppHostResolver[], health?: AppHealth): SandboxProvider {
  const resolve = (hostName: string | undefined, now: Date): AppEndpointState | undefined => {
    if (hostName === undefined) return undefined;
    const lower = hostName.toLowerCase();
    for (const resolver of resolvers) {
      const found = resolver.findByHostName(lower, now);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  const handle = (request: SandboxRequest, context: ProviderContext): SandboxResponse => {
    const app = resolve(request.hostName, context.now());
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
    if (app.restarting) {
      return { status: 503, headers: { 'content-type': 'text/html' }, rawBody: '<html><body><h1>Service Unavailable: the app is restarting.</h1></body></html>' };
    }
    const path = request.path === '' ? '/' : request.path;
    const isHealthPath = app.healthPaths.some((candidate) => candidate.toLowerCase() === path.toLowerCase());
    if (!isHealthPath && path !== '/') return json(404, { error: 'Not Found', path });
    const verdict = app.health;
    const fails = !verdict.healthy && (verdict.paths === undefined || verdict.paths.some((candidate) => candidate.toLowerCase() === path.toLowerCase()));
    if (fails) return { status: verdict.status, body: verdict.body };
    return isHealthPath ? json(200, { status: 'healthy' }) : { status: 200, headers: { 'content-type': 'text/plain' }, rawBody: 'ok' };
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

  const describe = (now: Date): unknown => ({
    ...(health?.snapshot() ?? { scripts: [], artifacts: [] }),
    apps: resolvers.flatMap((resolver) => resolver.endpoints(now)).map((app) => ({
      hostName: app.hostName,
      resourceId: app.resourceId,
      running: app.running,
      restarting: app.restarting,
      healthy: app.health.healthy,
      ...(app.health.healthy ? {} : { reason: app.health.reason }),
    })),
  });

  const controlRoutes: ControlRoute[] =
    health === undefined
      ? []
      : [
          { method: 'GET', name: 'health', handler: (_request, context) => json(200, describe(context.now())) },
          {
            method: 'POST',
            name: 'health',
            handler: (request, context) => {
              const parsed = controlBodySchema.safeParse(request.body);
              if (!parsed.success) {
                return invalid(
                  `POST /_sandbox/health: expected {"target": <ARM id or host name>, "script": <health script> | null} or {"image": <reference>, "healthy": <boolean>}, found: ${describeIssues(parsed.error)}`,
                );
              }
              const body = parsed.data;
              if ('image' in body) {
                health.markArtifact(body.image, body.healthy, `${body.image} is bad (set through /_sandbox/health)`, body.failsProvisioning ?? false);
                context.event('health.image', { image: body.image, healthy: body.healthy, failsProvisioning: body.failsProvisioning ?? false });
                return json(200, describe(context.now()));
              }
              const target = health.targetKind(body.target) === undefined ? resolve(body.target, context.now())?.resourceId : body.target;
              if (target === undefined || health.targetKind(target) === undefined) {
                return invalid(`POST /_sandbox/health: expected target to be the ARM id of a web app, slot, container app or revision, or an app host name; found ${body.target}`);
              }
              health.setScript(target, body.script ?? undefined, context.now());
              context.event('health.script', { target, script: body.script });
              return json(200, describe(context.now()));
            },
          },
          {
            method: 'DELETE',
            name: 'health',
            handler: (_request, context) => {
              health.reset();
              context.event('health.reset', {});
              return { status: 204 };
            },
          },
        ];

  return {
    name: 'AppHost',
    types: [],
    seed: () => undefined,
    routes: () => routes,
    controlRoutes: () => controlRoutes,
    snapshot: () => ({}),
  };
}
