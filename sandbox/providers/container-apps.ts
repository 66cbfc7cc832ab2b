/**
 * Microsoft.App: Container Apps and their revisions. Revisions are mutable state (active,
 * traffic weight, replicas, health) so activate/deactivate/restart and traffic updates can be
 * added as small handlers.
 */
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import type { AppEndpointState, AppHostResolver } from './app-health.ts';
import {
  armId,
  armPage,
  armEnvelope,
  armRead,
  baseOf,
  hoursBefore,
  json,
  param,
  parseSpec,
  resourceNotFound,
  ResourceStore,
  stableGuid,
  stableHex,
  trackedResourceReads,
  WorldSpecError,
  worldFilePath,
  type ArmResourceBase,
} from './common.ts';

const APPS = 'Microsoft.App/containerApps';
const ENVIRONMENTS = 'Microsoft.App/managedEnvironments';

const revisionSpecSchema = z
  .object({
    /** Revision suffix; the revision name is `{app}--{suffix}`. */
    suffix: z.string().regex(/^[a-z0-9-]+$/),
    image: z.string().min(1),
    /** Images of the revision's init containers (run to completion before the app container). */
    initImages: z.array(z.string().min(1)).default([]),
    createdDaysAgo: z.number().min(0).optional(),
    createdHoursAgo: z.number().min(0).optional(),
    active: z.boolean().default(false),
    replicas: z.number().int().min(0).optional(),
    healthy: z.boolean().default(true),
  })
  .strict();

const trafficSpecSchema = z
  .object({
    /** Revision suffix, or omit and set latestRevision. */
    revision: z.string().optional(),
    latestRevision: z.boolean().optional(),
    weight: z.number().int().min(0).max(100),
    label: z.string().optional(),
  })
  .strict();

const appSpecSchema = z
  .object({
    environment: z.string().min(1),
    /** The environment's default domain, e.g. `kindpond-1a2b3c4d.southafricanorth.azurecontainerapps.io`. */
    environmentDomain: z.string().min(1),
    activeRevisionsMode: z.enum(['Single', 'Multiple']).default('Single'),
    targetPort: z.number().int().positive().default(8080),
    external: z.boolean().default(true),
    healthPaths: z.array(z.string().startsWith('/')).default(['/health']),
    cpu: z.number().positive().default(0.5),
    memory: z.string().default('1Gi'),
    minReplicas: z.number().int().min(0).default(1),
    maxReplicas: z.number().int().positive().default(3),
    /** Registry login server the app pulls from, e.g. `crxshopaiprod.azurecr.io`. */
    registryServer: z.string().optional(),
    revisions: z.array(revisionSpecSchema).min(1),
    traffic: z.array(trafficSpecSchema).default([{ latestRevision: true, weight: 100 }]),
  })
  .strict();

/** One revision of a container app. */
export interface RevisionState {
  readonly name: string;
  readonly suffix: string;
  readonly created: Date;
  image: string;
  /** Init container images, in start order. */
  initImages: string[];
  active: boolean;
  replicas: number;
  healthy: boolean;
  lastActive: Date;
}

/** A traffic rule: by revision name or to the latest revision. */
export interface TrafficRule {
  revisionName?: string;
  latestRevision?: boolean;
  weight: number;
  label?: string;
}

/** A container app. */
export interface ContainerAppState extends ArmResourceBase {
  readonly environmentId: string;
  readonly environmentDomain: string;
  readonly fqdn: string;
  readonly created: Date;
  activeRevisionsMode: 'Single' | 'Multiple';
  targetPort: number;
  external: boolean;
  healthPaths: string[];
  cpu: number;
  memory: string;
  minReplicas: number;
  maxReplicas: number;
  registryServer: string | undefined;
  /** Oldest first. */
  revisions: RevisionState[];
  traffic: TrafficRule[];
}

/** The Microsoft.App provider; also resolves ingress FQDNs for health endpoints. */
export class ContainerAppsProvider implements SandboxProvider, AppHostResolver {
  readonly name = 'Microsoft.App';
  readonly types = [APPS] as const;
  private readonly apps = new ResourceStore<ContainerAppState>();

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(appSpecSchema, world, resource);
      const revisions = spec.revisions
        .map((revision): RevisionState => {
          const hours = revision.createdHoursAgo ?? (revision.createdDaysAgo ?? 0) * 24;
          const created = hoursBefore(now, hours);
          return {
            name: `${resource.name}--${revision.suffix}`,
            suffix: revision.suffix,
            created,
            image: revision.image,
            initImages: [...revision.initImages],
            active: revision.active,
            replicas: revision.replicas ?? (revision.active ? spec.minReplicas : 0),
            healthy: revision.healthy,
            lastActive: revision.active ? now : created,
          };
        })
        .sort((a, b) => a.created.getTime() - b.created.getTime());
      const traffic = spec.traffic.map((rule): TrafficRule => {
        if (rule.revision === undefined) {
          if (rule.latestRevision !== true) {
            throw new WorldSpecError(worldFilePath(world), APPS, resource.name, 'expected each traffic rule to name a revision or set latestRevision: true, found neither');
          }
          return { latestRevision: true, weight: rule.weight, ...(rule.label === undefined ? {} : { label: rule.label }) };
        }
        const revisionName = `${resource.name}--${rule.revision}`;
        if (!revisions.some((revision) => revision.name === revisionName)) {
          throw new WorldSpecError(worldFilePath(world), APPS, resource.name, `expected traffic revision "${rule.revision}" among the revision suffixes, found none`);
        }
        return { revisionName, weight: rule.weight, ...(rule.label === undefined ? {} : { label: rule.label }) };
      });
      this.apps.add({
        ...baseOf(world, resource, APPS),
        environmentId: armId(world.subscriptionId, resource.resourceGroup, ENVIRONMENTS, spec.environment),
        environmentDomain: spec.environmentDomain,
        fqdn: `${resource.name}.${spec.environmentDomain}`.toLowerCase(),
        created: revisions[0]?.created ?? now,
        activeRevisionsMode: spec.activeRevisionsMode,
        targetPort: spec.targetPort,
        external: spec.external,
        healthPaths: [...spec.healthPaths],
        cpu: spec.cpu,
        memory: spec.memory,
        minReplicas: spec.minReplicas,
        maxReplicas: spec.maxReplicas,
        registryServer: spec.registryServer,
        revisions,
        traffic,
      });
    }
  }

  /** A container app by ARM coordinates. */
  getApp(subscriptionId: string, resourceGroup: string, name: string): ContainerAppState | undefined {
    return this.apps.get(subscriptionId, resourceGroup, APPS, name);
  }

  /** The newest revision. */
  latestRevision(app: ContainerAppState): RevisionState | undefined {
    return app.revisions[app.revisions.length - 1];
  }

  /** Traffic weight a revision currently receives. */
  trafficWeight(app: ContainerAppState, revision: RevisionState): number {
    const latest = this.latestRevision(app);
    return app.traffic
      .filter((rule) => rule.revisionName === revision.name || (rule.latestRevision === true && latest?.name === revision.name))
      .reduce((sum, rule) => sum + rule.weight, 0);
  }

  findByHostName(hostName: string): AppEndpointState | undefined {
    const app = this.apps.all().find((candidate) => candidate.fqdn === hostName);
    if (app === undefined) return undefined;
    const serving = app.revisions.filter((revision) => revision.active && revision.replicas > 0 && this.trafficWeight(app, revision) > 0);
    return {
      resourceId: app.id,
      running: serving.length > 0,
      // Requests land on a revision by weight; the sandbox answers deterministically: healthy only if every serving revision is.
      healthy: serving.length > 0 && serving.every((revision) => revision.healthy),
      healthPaths: app.healthPaths,
    };
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.App';
    const app = `${rg}/containerApps/{name}`;
    const read = armRead;
    return [
      ...trackedResourceReads(this.apps, APPS, (found) => this.appJson(found)),
      read(`${app}/revisions`, 'Microsoft.App/containerApps/revisions.list', (request, context) =>
        this.apps.serve(APPS, request, context, (found) => {
          // Newest first, as the service lists them.
          const revisions = [...found.revisions].reverse().map((revision) => this.revisionJson(found, revision));
          return armPage(request, context, revisions);
        }),
      ),
      read(`${app}/revisions/{revisionName}`, 'Microsoft.App/containerApps/revisions.get', (request, context) =>
        this.apps.serve(APPS, request, context, (found) => {
          const revisionName = param(request, 'revisionName');
          const revision = found.revisions.find((candidate) => candidate.name.toLowerCase() === revisionName.toLowerCase());
          return revision === undefined
            ? resourceNotFound(context, `${APPS}/revisions`, `${found.name}/${revisionName}`, found.resourceGroup)
            : json(200, this.revisionJson(found, revision));
        }),
      ),
      this.revisionAction(`${app}/revisions/{revisionName}/activate`, 'Microsoft.App/containerApps/revisions.activate', (found, revision, context) => {
        if (found.activeRevisionsMode === 'Single' && !revision.active) {
          // Single mode keeps exactly one active revision; the platform, not the caller, picks it.
          return context.armError(
            400,
            'ContainerAppOperationError',
            `Cannot activate revision '${revision.name}': container app '${found.name}' is in Single revision mode, where only the latest revision is active. Switch to Multiple revision mode first.`,
          );
        }
        if (!revision.active) {
          revision.active = true;
          revision.replicas = Math.max(found.minReplicas, revision.replicas);
          revision.lastActive = context.now();
          context.event('containerapps.revision.activate', { app: found.id, revision: revision.name });
        }
        return json(200, undefined);
      }),
      this.revisionAction(`${app}/revisions/{revisionName}/deactivate`, 'Microsoft.App/containerApps/revisions.deactivate', (found, revision, context) => {
        const weight = this.trafficWeight(found, revision);
        if (weight > 0) {
          // Azure refuses to take down a revision that ingress still routes to; traffic must move first.
          return context.armError(
            400,
            'ContainerAppOperationError',
            `Cannot deactivate revision '${revision.name}' of container app '${found.name}': it receives ${String(weight)}% of ingress traffic. Move its traffic to other revisions first.`,
          );
        }
        if (revision.active) {
          revision.active = false;
          revision.replicas = 0;
          revision.lastActive = context.now();
          context.event('containerapps.revision.deactivate', { app: found.id, revision: revision.name });
        }
        return json(200, undefined);
      }),
      this.revisionAction(`${app}/revisions/{revisionName}/restart`, 'Microsoft.App/containerApps/revisions.restart', (found, revision, context) => {
        if (!revision.active) {
          return context.armError(
            400,
            'ContainerAppOperationError',
            `Cannot restart revision '${revision.name}' of container app '${found.name}': the revision is not active. Activate it first.`,
          );
        }
        // A restart replaces the replicas; an unhealthy image stays unhealthy.
        revision.replicas = Math.max(found.minReplicas, revision.replicas, 1);
        revision.lastActive = context.now();
        context.event('containerapps.revision.restart', { app: found.id, revision: revision.name });
        return json(200, undefined);
      }),
    ];
  }

  /**
   * Replaces an app's ingress traffic rules, as a test or demo control hook (the sandbox's
   * stand-in for an ARM PATCH of `configuration.ingress.traffic`). Rules name revisions by
   * full name or set `latestRevision`.
   *
   * @throws Error when the app or a named revision does not exist.
   */
  setTraffic(subscriptionId: string, resourceGroup: string, name: string, rules: readonly TrafficRule[]): void {
    const found = this.getApp(subscriptionId, resourceGroup, name);
    if (found === undefined) throw new Error(`setTraffic: expected container app ${resourceGroup}/${name} in the sandbox, found none`);
    for (const rule of rules) {
      if (rule.revisionName !== undefined && !found.revisions.some((revision) => revision.name === rule.revisionName)) {
        throw new Error(`setTraffic: expected revision ${rule.revisionName} in container app ${name}, found none`);
      }
    }
    found.traffic = rules.map((rule) => ({ ...rule }));
  }

  /**
   * A synchronous revision action (`POST .../revisions/{revisionName}/{action}`): in the
   * Microsoft.App spec activate, deactivate and restart answer 200 with no body, not 202.
   */
  private revisionAction(
    pattern: string,
    operationId: string,
    act: (app: ContainerAppState, revision: RevisionState, context: ProviderContext) => SandboxResponse,
  ): RouteDefinition {
    return {
      host: 'arm',
      method: 'POST',
      pattern,
      throttle: 'write',
      operationId,
      handler: (request, context) =>
        this.apps.serve(APPS, request, context, (found) => {
          const revisionName = param(request, 'revisionName');
          const revision = found.revisions.find((candidate) => candidate.name.toLowerCase() === revisionName.toLowerCase());
          return revision === undefined ? resourceNotFound(context, `${APPS}/revisions`, `${found.name}/${revisionName}`, found.resourceGroup) : act(found, revision, context);
        }),
    };
  }

  private containersJson(app: ContainerAppState, image: string): Record<string, unknown>[] {
    return [
      {
        image,
        name: app.name,
        resources: { cpu: app.cpu, memory: app.memory, ephemeralStorage: '2Gi' },
        probes: app.healthPaths.map((path, index) => ({
          type: index === 0 ? 'Liveness' : 'Readiness',
          httpGet: { path, port: app.targetPort, scheme: 'HTTP' },
          periodSeconds: 10,
        })),
      },
    ];
  }

  /** `initContainers` as ARM returns it (InitContainer: no probes), omitted when there are none. */
  private initContainersJson(app: ContainerAppState, images: readonly string[]): { initContainers?: Record<string, unknown>[] } {
    if (images.length === 0) return {};
    return {
      initContainers: images.map((image, index) => ({
        image,
        name: `${app.name}-init-${String(index + 1)}`,
        resources: { cpu: 0.25, memory: '0.5Gi', ephemeralStorage: '1Gi' },
      })),
    };
  }

  private appJson(app: ContainerAppState): Record<string, unknown> {
    const latest = this.latestRevision(app);
    const latestReady = [...app.revisions].reverse().find((revision) => revision.healthy && revision.active);
    return {
      ...armEnvelope(app, APPS),
      identity: { type: 'SystemAssigned', principalId: stableGuid(`principal:${app.id}`), tenantId: app.tenantId },
      properties: {
        provisioningState: 'Succeeded',
        runningStatus: app.revisions.some((revision) => revision.active) ? 'Running' : 'Stopped',
        managedEnvironmentId: app.environmentId,
        environmentId: app.environmentId,
        workloadProfileName: 'Consumption',
        outboundIpAddresses: ['20.87.1.10'],
        latestRevisionName: latest?.name,
        latestReadyRevisionName: latestReady?.name,
        latestRevisionFqdn: latest === undefined ? undefined : `${latest.name}.${app.environmentDomain}`,
        customDomainVerificationId: stableHex(app.id, 64).toUpperCase(),
        configuration: {
          secrets: [],
          activeRevisionsMode: app.activeRevisionsMode,
          ingress: {
            fqdn: app.fqdn,
            external: app.external,
            targetPort: app.targetPort,
            exposedPort: 0,
            transport: 'Auto',
            traffic: app.traffic.map((rule) => ({ ...rule })),
            allowInsecure: false,
            stickySessions: { affinity: 'none' },
          },
          registries: app.registryServer === undefined ? [] : [{ server: app.registryServer, identity: 'system' }],
          maxInactiveRevisions: 100,
        },
        template: {
          revisionSuffix: latest?.suffix,
          containers: this.containersJson(app, latest?.image ?? ''),
          ...this.initContainersJson(app, latest?.initImages ?? []),
          scale: { minReplicas: app.minReplicas, maxReplicas: app.maxReplicas },
          volumes: [],
        },
        eventStreamEndpoint: `https://${app.location}.azurecontainerapps.dev/subscriptions/${app.subscriptionId}/resourceGroups/${app.resourceGroup}/containerApps/${app.name}/eventstream`,
      },
      systemData: {
        createdAt: app.created.toISOString(),
        createdBy: 'ops@example.com',
        createdByType: 'User',
        lastModifiedAt: (latest?.created ?? app.created).toISOString(),
        lastModifiedBy: 'ops@example.com',
        lastModifiedByType: 'User',
      },
    };
  }

  private revisionJson(app: ContainerAppState, revision: RevisionState): Record<string, unknown> {
    let runningState: string;
    let healthState: string;
    if (!revision.active) {
      runningState = 'Stopped';
      healthState = 'None';
    } else if (revision.healthy) {
      runningState = revision.replicas > 0 ? 'Running' : 'ScaledToZero';
      healthState = 'Healthy';
    } else {
      runningState = 'Degraded';
      healthState = 'Unhealthy';
    }
    return {
      id: `${app.id}/revisions/${revision.name}`,
      name: revision.name,
      type: `${APPS}/revisions`,
      properties: {
        createdTime: revision.created.toISOString(),
        lastActiveTime: revision.lastActive.toISOString(),
        fqdn: `${revision.name}.${app.environmentDomain}`,
        template: {
          revisionSuffix: revision.suffix,
          containers: this.containersJson(app, revision.image),
          ...this.initContainersJson(app, revision.initImages),
          scale: { minReplicas: app.minReplicas, maxReplicas: app.maxReplicas },
        },
        active: revision.active,
        replicas: revision.active ? revision.replicas : 0,
        trafficWeight: this.trafficWeight(app, revision),
        healthState,
        provisioningState: revision.active ? 'Provisioned' : 'Deprovisioned',
        runningState,
      },
    };
  }

  snapshot(): unknown {
    return this.apps.all().map((app) => ({
      id: app.id,
      fqdn: app.fqdn,
      activeRevisionsMode: app.activeRevisionsMode,
      traffic: app.traffic,
      revisions: app.revisions.map((revision) => ({
        name: revision.name,
        image: revision.image,
        created: revision.created.toISOString(),
        active: revision.active,
        replicas: revision.replicas,
        healthy: revision.healthy,
        trafficWeight: this.trafficWeight(app, revision),
      })),
    }));
  }
}

