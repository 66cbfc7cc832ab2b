/**
 * Microsoft.App: Container Apps and their revisions. Revisions are mutable state (active,
 * traffic weight, replicas, health). Mutations: revision activate, deactivate and restart
 * (synchronous, as in the spec), and app updates (PATCH and PUT, long-running operations) that
 * model Azure's change scopes: a change to `properties.template` (image, init containers,
 * resources, scale: min/max replicas and rules, revision suffix) is revision-scope and creates
 * a new revision; a change to `properties.configuration` (traffic, revision mode) is
 * application-scope and does not. Each revision keeps the template it was created with.
 */
import { listedOf, type ListedResource } from './resources.ts';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import type { AppEndpointState, AppHostResolver } from './app-health.ts';
import { AppHealth, healthScriptSchema, type HealthVerdict } from './health-scripts.ts';
import {
  armEventOrigin,
  armId,
  armPage,
  armEnvelope,
  armRead,
  baseOf,
  describeIssues,
  hoursBefore,
  json,
  param,
  parseSpec,
  publishArmEvent,
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
    /** false: the revision's image is bad, wherever it runs (a new revision of it inherits that). */
    healthy: z.boolean().default(true),
    /** A health script of this revision (see health-scripts.ts). */
    health: healthScriptSchema.optional(),
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
    /** A health script of the whole app: applies to every revision, new ones included. */
    health: healthScriptSchema.optional(),
    revisions: z.array(revisionSpecSchema).min(1),
    traffic: z.array(trafficSpecSchema).default([{ latestRevision: true, weight: 100 }]),
  })
  .strict();

/** The template a revision was created from (immutable in Azure; what a revision-scope change changes). */
export interface RevisionTemplate {
  readonly image: string;
  /** Init container images, in start order. */
  readonly initImages: readonly string[];
  readonly cpu: number;
  readonly memory: string;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Scale rules as given (opaque to the sandbox, compared as JSON). */
  readonly scaleRules: readonly unknown[];
}

/** One revision of a container app. */
export interface RevisionState {
  readonly name: string;
  readonly suffix: string;
  readonly created: Date;
  image: string;
  /** Init container images, in start order. */
  initImages: string[];
  cpu: number;
  memory: string;
  minReplicas: number;
  maxReplicas: number;
  scaleRules: unknown[];
  active: boolean;
  replicas: number;
  /** Test hook: false when the replicas fail their readiness probes (not ready); world files' `healthy: false` marks the image bad instead. */
  healthy: boolean;
  /** `Failed` when the replicas of its image failed their startup probes: it never became ready. */
  provisioning: 'Provisioned' | 'Failed';
  lastActive: Date;
  /** The last restart (sandbox clock), for until-restart health scripts. */
  lastRestart: Date | undefined;
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
  registryServer: string | undefined;
  /** Oldest first. */
  revisions: RevisionState[];
  traffic: TrafficRule[];
  provisioningState: 'Succeeded' | 'InProgress' | 'Failed';
  lastModified: Date;
  /** How many revisions updates created, for generated suffixes. */
  revisionCounter: number;
}

const trafficRuleSchema = z
  .object({
    revisionName: z.string().min(1).nullable().optional(),
    latestRevision: z.boolean().nullable().optional(),
    weight: z.number().int().min(0).max(100).nullable().optional(),
    label: z.string().min(1).nullable().optional(),
  })
  .loose();

/** What the sandbox reads of a ContainerApps_Update (JSON merge patch) or ContainerApps_CreateOrUpdate body; the rest is accepted and ignored. */
const appUpdateSchema = z
  .object({
    location: z.string().min(1).optional(),
    properties: z
      .object({
        configuration: z
          .object({
            activeRevisionsMode: z.enum(['Single', 'Multiple']).nullable().optional(),
            ingress: z.object({ traffic: z.array(trafficRuleSchema).nullable().optional() }).loose().nullable().optional(),
          })
          .loose()
          .nullable()
          .optional(),
        template: z
          .object({
            revisionSuffix: z.string().nullable().optional(),
            containers: z
              .array(
                z
                  .object({
                    image: z.string().min(1),
                    resources: z.object({ cpu: z.number().positive().nullable().optional(), memory: z.string().min(1).nullable().optional() }).loose().nullable().optional(),
                  })
                  .loose(),
              )
              .min(1)
              .nullable()
              .optional(),
            initContainers: z.array(z.object({ image: z.string().min(1) }).loose()).nullable().optional(),
            scale: z
              .object({
                minReplicas: z.number().int().min(0).max(1000).nullable().optional(),
                maxReplicas: z.number().int().min(1).max(1000).nullable().optional(),
                rules: z.array(z.unknown()).nullable().optional(),
              })
              .loose()
              .nullable()
              .optional(),
          })
          .loose()
          .nullable()
          .optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

type AppUpdate = z.infer<typeof appUpdateSchema>;

/** Scale when a PUT leaves it out: Azure's defaults (0 to 10 replicas). */
const DEFAULT_SCALE = { minReplicas: 0, maxReplicas: 10 } as const;

/** A revision suffix as Azure accepts it: lower-case letters, digits and dashes, starting with a letter, no `--`, at most 64 characters. */
const REVISION_SUFFIX = /^[a-z](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** What an accepted update will do, decided before the operation starts. */
interface PlannedUpdate {
  readonly mode: 'Single' | 'Multiple';
  /** A new revision (revision-scope change), or none (application-scope only). */
  readonly newRevision: { readonly suffix: string; readonly template: RevisionTemplate } | undefined;
  /** New traffic rules, or undefined to keep them. */
  readonly traffic: TrafficRule[] | undefined;
}

/** The Microsoft.App provider; also resolves ingress FQDNs for health endpoints. */
export class ContainerAppsProvider implements SandboxProvider, AppHostResolver {
  readonly name = 'Microsoft.App';
  readonly types = [APPS] as const;
  private readonly apps = new ResourceStore<ContainerAppState>();

  /** @param health the sandbox's app health, shared with the apphost and Microsoft.Web providers. */
  constructor(readonly health: AppHealth = new AppHealth()) {}

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return this.apps.all().map((resource) => listedOf(resource, APPS));
  }

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
            cpu: spec.cpu,
            memory: spec.memory,
            minReplicas: spec.minReplicas,
            maxReplicas: spec.maxReplicas,
            scaleRules: [],
            active: revision.active,
            replicas: revision.replicas ?? (revision.active ? spec.minReplicas : 0),
            healthy: true,
            provisioning: 'Provisioned',
            lastActive: revision.active ? now : created,
            lastRestart: undefined,
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
      const app: ContainerAppState = {
        ...baseOf(world, resource, APPS),
        environmentId: armId(world.subscriptionId, resource.resourceGroup, ENVIRONMENTS, spec.environment),
        environmentDomain: spec.environmentDomain,
        fqdn: `${resource.name}.${spec.environmentDomain}`.toLowerCase(),
        created: revisions[0]?.created ?? now,
        activeRevisionsMode: spec.activeRevisionsMode,
        targetPort: spec.targetPort,
        external: spec.external,
        healthPaths: [...spec.healthPaths],
        registryServer: spec.registryServer,
        revisions,
        traffic,
        provisioningState: 'Succeeded',
        lastModified: revisions[revisions.length - 1]?.created ?? now,
        revisionCounter: 0,
      };
      this.apps.add(app);
      this.health.registerTarget(app.id, 'containerApp');
      if (spec.health !== undefined) this.health.seedScript(app.id, spec.health, now);
      for (const revision of spec.revisions) {
        const revisionId = `${app.id}/revisions/${resource.name}--${revision.suffix}`;
        this.health.registerTarget(revisionId, 'revision');
        if (!revision.healthy) this.health.seedBadArtifact(revision.image, `${revision.image} is bad (healthy: false in the world file of revision ${resource.name}--${revision.suffix})`);
        if (revision.health !== undefined) this.health.seedScript(revisionId, revision.health, now);
      }
    }
  }

  /** A container app by ARM coordinates. */
  getApp(subscriptionId: string, resourceGroup: string, name: string): ContainerAppState | undefined {
    return this.apps.get(subscriptionId, resourceGroup, APPS, name);
  }

  /** The newest revision: its template is the app's template. */
  latestRevision(app: ContainerAppState): RevisionState | undefined {
    return app.revisions[app.revisions.length - 1];
  }

  /** The newest revision that became ready and is active: where `latestRevision: true` traffic goes. */
  latestReadyRevision(app: ContainerAppState): RevisionState | undefined {
    return [...app.revisions].reverse().find((revision) => revision.active && revision.healthy && revision.provisioning === 'Provisioned');
  }

  /** Traffic weight a revision currently receives. */
  trafficWeight(app: ContainerAppState, revision: RevisionState): number {
    const latest = this.latestReadyRevision(app);
    return app.traffic
      .filter((rule) => rule.revisionName === revision.name || (rule.latestRevision === true && latest?.name === revision.name))
      .reduce((sum, rule) => sum + rule.weight, 0);
  }

  /** The scripted health of one revision. */
  revisionHealth(app: ContainerAppState, revision: RevisionState, now: Date): HealthVerdict {
    const failed = (reason: string): HealthVerdict => ({ healthy: false, reason, status: 503, body: { status: 'unhealthy' }, paths: undefined });
    if (!revision.active) return failed(`revision ${revision.name} is inactive`);
    if (revision.provisioning === 'Failed') return failed(`revision ${revision.name} failed to provision: ${revision.image} fails its startup probes`);
    if (!revision.healthy) return failed(`revision ${revision.name} is not ready (instance test hook)`);
    const startedAt = revision.lastRestart !== undefined && revision.lastRestart > revision.created ? revision.lastRestart : revision.created;
    return this.health.verdict({
      targets: [`${app.id}/revisions/${revision.name}`, app.id],
      artifact: revision.image,
      startedAt,
      scale: { replicas: revision.replicas },
      now,
    });
  }

  findByHostName(hostName: string, now: Date): AppEndpointState | undefined {
    const app = this.apps.all().find((candidate) => candidate.fqdn === hostName);
    return app === undefined ? undefined : this.endpointOf(app, now);
  }

  endpoints(now: Date): AppEndpointState[] {
    return this.apps.all().map((app) => this.endpointOf(app, now));
  }

  private endpointOf(app: ContainerAppState, now: Date): AppEndpointState {
    const serving = app.revisions.filter((revision) => revision.active && revision.replicas > 0 && this.trafficWeight(app, revision) > 0);
    // Requests land on a revision by weight; the sandbox answers deterministically: healthy only if every serving revision is.
    const failing = serving.map((revision) => this.revisionHealth(app, revision, now)).find((verdict) => !verdict.healthy);
    return {
      resourceId: app.id,
      hostName: app.fqdn,
      running: serving.length > 0,
      restarting: false,
      health: failing ?? { healthy: true },
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
          const revisions = [...found.revisions].reverse().map((revision) => this.revisionJson(found, revision, context.now()));
          return armPage(request, context, revisions);
        }),
      ),
      read(`${app}/revisions/{revisionName}`, 'Microsoft.App/containerApps/revisions.get', (request, context) =>
        this.apps.serve(APPS, request, context, (found) => {
          const revisionName = param(request, 'revisionName');
          const revision = found.revisions.find((candidate) => candidate.name.toLowerCase() === revisionName.toLowerCase());
          return revision === undefined
            ? resourceNotFound(context, `${APPS}/revisions`, `${found.name}/${revisionName}`, found.resourceGroup)
            : json(200, this.revisionJson(found, revision, context.now()));
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
          revision.replicas = Math.max(revision.minReplicas, revision.replicas, 1);
          revision.lastActive = context.now();
          // Activation starts fresh replicas.
          revision.lastRestart = context.now();
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
        revision.replicas = Math.max(revision.minReplicas, revision.replicas, 1);
        revision.lastActive = context.now();
        revision.lastRestart = context.now();
        context.event('containerapps.revision.restart', { app: found.id, revision: revision.name });
        return json(200, undefined);
      }),
      ...this.updateRoutes(app),
    ];
  }

  /**
   * Replaces an app's ingress traffic rules, as a test or demo control hook (an in-process
   * stand-in for `PATCH configuration.ingress.traffic`, without validation or a long-running
   * operation). Rules name revisions by full name or set `latestRevision`.
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

  /** `ContainerApps_Update` (PATCH, JSON merge patch) and `ContainerApps_CreateOrUpdate` (PUT) of an existing app. */
  private updateRoutes(app: string): RouteDefinition[] {
    return (['PATCH', 'PUT'] as const).map((method) => ({
      host: 'arm',
      method,
      pattern: app,
      throttle: 'write',
      operationId: method === 'PATCH' ? `${APPS}.update` : `${APPS}.createOrUpdate`,
      handler: (request: SandboxRequest, context: ProviderContext) => this.apps.serve(APPS, request, context, (found) => this.update(found, method, request, context)),
    }));
  }

  /**
   * Validates an update, then runs it as a long-running operation (202 with
   * `Azure-AsyncOperation` and `Location`, as in the spec; the app reports `provisioningState:
   * InProgress` until it completes). A template change creates revision `{app}--{suffix}`: in
   * Single mode it takes over (the others are deactivated) once ready; in Multiple mode it is
   * active beside the others and gets traffic only through a `latestRevision` rule. A revision of
   * an image that fails its startup probes ends `Failed` and never takes traffic. A PUT replaces:
   * what it leaves out returns to the defaults (Single mode, 100 % to the latest revision, 0-10
   * replicas). Refused at once with 400 (nothing changes): a body the sandbox cannot read, another
   * location, a bad or reused revision suffix, min above max replicas, traffic that does not add up
   * to 100, names an unknown or inactive revision, or splits traffic in Single mode. 409 while
   * another update of the app runs.
   */
  private update(app: ContainerAppState, method: 'PATCH' | 'PUT', request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = appUpdateSchema.safeParse(request.body);
    if (!parsed.success) {
      return context.armError(
        400,
        'InvalidRequestContent',
        `The request content was invalid: expected a ContainerApp body, found: ${describeIssues(parsed.error)}.`,
      );
    }
    const body = parsed.data;
    if (body.location !== undefined && body.location.toLowerCase().replace(/\s+/g, '') !== app.location.toLowerCase().replace(/\s+/g, '')) {
      return context.armError(
        400,
        'InvalidResourceLocation',
        `The resource '${app.name}' already exists in location '${app.location}' in resource group '${app.resourceGroup}'. A resource with the same name cannot be created in location '${body.location}'. Please select a new resource name.`,
      );
    }
    if (method === 'PUT' && body.properties?.template?.containers == null) {
      return context.armError(400, 'ContainerAppInvalidSchema', `A PUT replaces container app '${app.name}': expected properties.template.containers with at least one container, found none.`);
    }
    if (app.provisioningState === 'InProgress') {
      return context.armError(409, 'ContainerAppOperationInProgress', `Cannot update container app '${app.name}': another operation on it is in progress. Retry when it has completed.`);
    }
    const planned = this.plan(app, method, body);
    if (typeof planned === 'string') return context.armError(400, 'ContainerAppOperationError', planned);
    const origin = armEventOrigin(request, context);
    return context
      .startOperation({
        operationId: method === 'PATCH' ? `${APPS}.update` : `${APPS}.createOrUpdate`,
        resourceId: app.id,
        onStart: () => {
          app.provisioningState = 'InProgress';
        },
        run: () => {
          this.apply(app, planned, context.now());
          app.provisioningState = 'Succeeded';
          context.event('containerapps.update', {
            app: app.id,
            newRevision: planned.newRevision === undefined ? null : `${app.name}--${planned.newRevision.suffix}`,
            traffic: app.traffic,
            activeRevisionsMode: app.activeRevisionsMode,
          });
          publishArmEvent(context, app, { kind: 'Write', operationName: `${APPS}/write`, origin });
        },
        onFailed: () => {
          app.provisioningState = 'Failed';
        },
        result: () => this.appJson(app),
      })
      .accepted();
  }

  /** Decides what an update does, or why it is refused. Reads state only. */
  private plan(app: ContainerAppState, method: 'PATCH' | 'PUT', body: AppUpdate): PlannedUpdate | string {
    const latest = this.latestRevision(app);
    const properties = body.properties;
    const configuration = properties?.configuration ?? undefined;
    const template = properties?.template ?? undefined;
    const replace = method === 'PUT';
    const mode = configuration?.activeRevisionsMode ?? (replace ? 'Single' : app.activeRevisionsMode);

    // The template after the change: a PATCH merges into the current one, a PUT starts from the defaults.
    const base: RevisionTemplate = replace
      ? { image: '', initImages: [], cpu: 0.5, memory: '1Gi', ...DEFAULT_SCALE, scaleRules: [] }
      : this.templateOf(latest);
    const main = template?.containers?.[0];
    const scale = template?.scale ?? undefined;
    const next: RevisionTemplate = {
      image: main?.image ?? base.image,
      initImages: template?.initContainers === undefined ? base.initImages : (template.initContainers ?? []).map((container) => container.image),
      // A merge patch replaces arrays: containers sent without resources get the defaults.
      cpu: main === undefined ? base.cpu : (main.resources?.cpu ?? 0.5),
      memory: main === undefined ? base.memory : (main.resources?.memory ?? '1Gi'),
      minReplicas: scale?.minReplicas ?? (scale?.minReplicas === null ? DEFAULT_SCALE.minReplicas : base.minReplicas),
      maxReplicas: scale?.maxReplicas ?? (scale?.maxReplicas === null ? DEFAULT_SCALE.maxReplicas : base.maxReplicas),
      scaleRules: scale?.rules === undefined ? base.scaleRules : (scale.rules ?? []),
    };
    if (next.minReplicas > next.maxReplicas) {
      return `Invalid scale for container app '${app.name}': expected minReplicas (${String(next.minReplicas)}) to be at most maxReplicas (${String(next.maxReplicas)}).`;
    }
    const requestedSuffix = template?.revisionSuffix ?? undefined;
    const templateChanged = latest === undefined || JSON.stringify(next) !== JSON.stringify(this.templateOf(latest));
    const suffixChanged = requestedSuffix !== undefined && requestedSuffix !== '' && requestedSuffix !== latest?.suffix;
    let newRevision: PlannedUpdate['newRevision'];
    if (templateChanged || suffixChanged) {
      const suffix = requestedSuffix !== undefined && requestedSuffix !== '' ? requestedSuffix : this.generatedSuffix(app);
      if (requestedSuffix !== undefined && requestedSuffix !== '') {
        if (!REVISION_SUFFIX.test(suffix) || suffix.includes('--')) {
          return `Invalid revision suffix '${suffix}' for container app '${app.name}': expected lower-case letters, digits and dashes, starting with a letter and ending with a letter or digit, without '--', at most 64 characters.`;
        }
        if (app.revisions.some((revision) => revision.suffix === suffix)) {
          return `Revision '${app.name}--${suffix}' already exists in container app '${app.name}': a change to properties.template creates a new revision, which needs a new revision suffix (or none, to have one generated).`;
        }
      }
      newRevision = { suffix, template: next };
    }

    // Traffic: a PATCH that names no ingress keeps the rules; a PUT without them routes 100 % to the latest revision.
    const ingress = configuration?.ingress ?? undefined;
    let traffic: TrafficRule[] | undefined;
    if (ingress?.traffic != null) {
      traffic = ingress.traffic.map((rule) => ({
        ...(rule.revisionName == null ? {} : { revisionName: rule.revisionName }),
        ...(rule.latestRevision === true ? { latestRevision: true } : {}),
        weight: rule.weight ?? 0,
        ...(rule.label == null ? {} : { label: rule.label }),
      }));
    } else if (replace || ingress?.traffic === null) {
      traffic = [{ latestRevision: true, weight: 100 }];
    }
    const newName = newRevision === undefined ? undefined : `${app.name}--${newRevision.suffix}`;
    const problem = traffic === undefined ? (mode !== app.activeRevisionsMode ? this.trafficProblem(app, app.traffic, mode, newName) : undefined) : this.trafficProblem(app, traffic, mode, newName);
    if (problem !== undefined) return problem;
    return { mode, newRevision, traffic };
  }

  /** Why traffic rules are refused, or undefined when Azure would take them. */
  private trafficProblem(app: ContainerAppState, rules: readonly TrafficRule[], mode: 'Single' | 'Multiple', newRevisionName: string | undefined): string | undefined {
    if (rules.length === 0) return undefined;
    const total = rules.reduce((sum, rule) => sum + rule.weight, 0);
    if (total !== 100) return `Invalid traffic for container app '${app.name}': expected the weights to add up to 100, found ${String(total)}.`;
    if (mode === 'Single' && !(rules.length === 1 && rules[0]?.latestRevision === true)) {
      return `Invalid traffic for container app '${app.name}': in Single revision mode all traffic goes to the latest revision; expected [{"latestRevision": true, "weight": 100}], found ${JSON.stringify(rules)}. Switch to Multiple revision mode to split traffic.`;
    }
    const labels = new Set<string>();
    for (const rule of rules) {
      if ((rule.revisionName === undefined) === (rule.latestRevision !== true)) {
        return `Invalid traffic rule for container app '${app.name}': expected either revisionName or latestRevision: true, found ${JSON.stringify(rule)}.`;
      }
      if (rule.label !== undefined) {
        if (labels.has(rule.label)) return `Invalid traffic for container app '${app.name}': label '${rule.label}' is used more than once.`;
        labels.add(rule.label);
      }
      if (rule.revisionName === undefined || rule.revisionName.toLowerCase() === newRevisionName?.toLowerCase()) continue;
      const revision = app.revisions.find((candidate) => candidate.name.toLowerCase() === rule.revisionName?.toLowerCase());
      if (revision === undefined) return `Invalid traffic for container app '${app.name}': revision '${rule.revisionName}' does not exist.`;
      if (!revision.active && rule.weight > 0) {
        return `Invalid traffic for container app '${app.name}': revision '${revision.name}' is inactive and cannot receive traffic. Activate it first.`;
      }
    }
    return undefined;
  }

  /** Performs a planned update (when its operation completes). */
  private apply(app: ContainerAppState, planned: PlannedUpdate, now: Date): void {
    app.activeRevisionsMode = planned.mode;
    if (planned.newRevision !== undefined) {
      const { suffix, template } = planned.newRevision;
      const previous = this.latestReadyRevision(app);
      const provisioning = this.health.failsProvisioning(template.image) ? 'Failed' : 'Provisioned';
      const revision: RevisionState = {
        name: `${app.name}--${suffix}`,
        suffix,
        created: now,
        image: template.image,
        initImages: [...template.initImages],
        cpu: template.cpu,
        memory: template.memory,
        minReplicas: template.minReplicas,
        maxReplicas: template.maxReplicas,
        scaleRules: [...template.scaleRules],
        // A revision that never became ready stays inactive in Single mode, where it cannot take over.
        active: provisioning === 'Provisioned' || planned.mode === 'Multiple',
        // Scaled to match the revision it replaces, within its own bounds.
        replicas: provisioning === 'Provisioned' ? Math.min(template.maxReplicas, Math.max(template.minReplicas, previous?.replicas ?? 1, 1)) : 0,
        healthy: true,
        provisioning,
        lastActive: now,
        lastRestart: undefined,
      };
      app.revisions.push(revision);
      app.revisionCounter += 1;
      this.health.registerTarget(`${app.id}/revisions/${revision.name}`, 'revision');
      if (planned.mode === 'Single' && provisioning === 'Provisioned') {
        // Single mode: the new revision takes over once ready and the old ones are deprovisioned.
        for (const other of app.revisions) {
          if (other !== revision && other.active) {
            other.active = false;
            other.replicas = 0;
            other.lastActive = now;
          }
        }
      }
    } else if (planned.mode === 'Single') {
      // Switching to Single mode keeps only the latest ready revision.
      const keep = this.latestReadyRevision(app);
      for (const other of app.revisions) {
        if (other !== keep && other.active) {
          other.active = false;
          other.replicas = 0;
          other.lastActive = now;
        }
      }
    }
    if (planned.traffic !== undefined) app.traffic = planned.traffic.map((rule) => ({ ...rule }));
    app.lastModified = now;
  }

  private templateOf(revision: RevisionState | undefined): RevisionTemplate {
    if (revision === undefined) return { image: '', initImages: [], cpu: 0.5, memory: '1Gi', ...DEFAULT_SCALE, scaleRules: [] };
    return {
      image: revision.image,
      initImages: [...revision.initImages],
      cpu: revision.cpu,
      memory: revision.memory,
      minReplicas: revision.minReplicas,
      maxReplicas: revision.maxReplicas,
      scaleRules: [...revision.scaleRules],
    };
  }

  /** A suffix like Azure's generated ones: seven lower-case letters and digits, starting with a letter. */
  private generatedSuffix(app: ContainerAppState): string {
    for (let attempt = 0; ; attempt += 1) {
      const hex = stableHex(`${app.id}:revision:${String(app.revisionCounter)}:${String(attempt)}`, 6);
      const suffix = `${String.fromCharCode(97 + (parseInt(hex.slice(0, 2), 16) % 26))}${hex}`;
      if (!app.revisions.some((revision) => revision.suffix === suffix)) return suffix;
    }
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
          if (revision === undefined) return resourceNotFound(context, `${APPS}/revisions`, `${found.name}/${revisionName}`, found.resourceGroup);
          const response = act(found, revision, context);
          if (response.status < 300) {
            const action = operationId.slice(operationId.lastIndexOf('.') + 1);
            publishArmEvent(context, found, {
              kind: 'Action',
              resourceUri: `${found.id}/revisions/${revision.name}`,
              operationName: `${APPS}/revisions/${action}/action`,
              origin: armEventOrigin(request, context),
            });
          }
          return response;
        }),
    };
  }

  private containersJson(app: ContainerAppState, revision: RevisionState | undefined): Record<string, unknown>[] {
    return [
      {
        image: revision?.image ?? '',
        name: app.name,
        resources: { cpu: revision?.cpu ?? 0.5, memory: revision?.memory ?? '1Gi', ephemeralStorage: '2Gi' },
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

  private scaleJson(revision: RevisionState | undefined): Record<string, unknown> {
    return {
      minReplicas: revision?.minReplicas ?? DEFAULT_SCALE.minReplicas,
      maxReplicas: revision?.maxReplicas ?? DEFAULT_SCALE.maxReplicas,
      ...(revision === undefined || revision.scaleRules.length === 0 ? {} : { rules: revision.scaleRules }),
    };
  }

  private appJson(app: ContainerAppState): Record<string, unknown> {
    const latest = this.latestRevision(app);
    const latestReady = this.latestReadyRevision(app);
    return {
      ...armEnvelope(app, APPS),
      identity: { type: 'SystemAssigned', principalId: stableGuid(`principal:${app.id}`), tenantId: app.tenantId },
      properties: {
        provisioningState: app.provisioningState,
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
          containers: this.containersJson(app, latest),
          ...this.initContainersJson(app, latest?.initImages ?? []),
          scale: this.scaleJson(latest),
          volumes: [],
        },
        eventStreamEndpoint: `https://${app.location}.azurecontainerapps.dev/subscriptions/${app.subscriptionId}/resourceGroups/${app.resourceGroup}/containerApps/${app.name}/eventstream`,
      },
      systemData: {
        createdAt: app.created.toISOString(),
        createdBy: 'ops@example.com',
        createdByType: 'User',
        lastModifiedAt: app.lastModified.toISOString(),
        lastModifiedBy: 'ops@example.com',
        lastModifiedByType: 'User',
      },
    };
  }

  private revisionJson(app: ContainerAppState, revision: RevisionState, now: Date): Record<string, unknown> {
    let runningState: string;
    let healthState: string;
    const verdict = this.revisionHealth(app, revision, now);
    if (revision.provisioning === 'Failed') {
      runningState = 'Failed';
      healthState = 'Unhealthy';
    } else if (!revision.active) {
      runningState = 'Stopped';
      healthState = 'None';
    } else if (verdict.healthy) {
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
          containers: this.containersJson(app, revision),
          ...this.initContainersJson(app, revision.initImages),
          scale: this.scaleJson(revision),
        },
        active: revision.active,
        replicas: revision.active ? revision.replicas : 0,
        trafficWeight: this.trafficWeight(app, revision),
        healthState,
        provisioningState: revision.provisioning === 'Failed' ? 'Failed' : revision.active ? 'Provisioned' : 'Deprovisioned',
        runningState,
      },
    };
  }

  snapshot(): unknown {
    return this.apps.all().map((app) => ({
      id: app.id,
      fqdn: app.fqdn,
      activeRevisionsMode: app.activeRevisionsMode,
      provisioningState: app.provisioningState,
      traffic: app.traffic,
      revisions: app.revisions.map((revision) => ({
        name: revision.name,
        image: revision.image,
        created: revision.created.toISOString(),
        active: revision.active,
        replicas: revision.replicas,
        minReplicas: revision.minReplicas,
        maxReplicas: revision.maxReplicas,
        provisioning: revision.provisioning,
        trafficWeight: this.trafficWeight(app, revision),
      })),
    }));
  }
}
