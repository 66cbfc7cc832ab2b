/**
 * Microsoft.Web: App Service plans, web apps and function apps, and their deployment slots.
 * State is mutable per site and per slot (running state, site config, app settings, swap
 * status) so restart, slot swap and app-settings updates can be added as small handlers.
 */
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import type { AppEndpointState, AppHostResolver } from './app-health.ts';
import {
  armId,
  armPage,
  armEnvelope,
  armRead,
  baseOf,
  daysBefore,
  json,
  param,
  parseSpec,
  resourceNotFound,
  ResourceStore,
  stringMap,
  WorldSpecError,
  worldFilePath,
  type ArmResourceBase,
} from './common.ts';

const SITES = 'Microsoft.Web/sites';
const PLANS = 'Microsoft.Web/serverfarms';

/** A container of a sidecar-enabled app (`Microsoft.Web/sites/sitecontainers`): the main one or a sidecar. */
const siteContainerSpecSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
    image: z.string().min(1),
    isMain: z.boolean().default(false),
    targetPort: z.string().regex(/^\d{1,5}$/).optional(),
    authType: z.enum(['Anonymous', 'UserCredentials', 'SystemIdentity', 'UserAssigned']).default('SystemIdentity'),
  })
  .strict();

/**
 * How a site or slot names its container images. `compose` is a Docker Compose file (YAML text)
 * that the provider serves base64-encoded as `linuxFxVersion: COMPOSE|<base64>`, as App Service
 * stores it; it cannot be combined with `linuxFxVersion`.
 */
const containerFields = {
  windowsFxVersion: z.string().optional(),
  compose: z.string().min(1).optional(),
  sitecontainers: z.array(siteContainerSpecSchema).optional(),
};

const slotSpecSchema = z
  .object({
    name: z.string().min(1),
    state: z.enum(['Running', 'Stopped']).default('Running'),
    healthy: z.boolean().default(true),
    linuxFxVersion: z.string().optional(),
    ...containerFields,
    appSettings: stringMap.default({}),
    createdDaysAgo: z.number().min(0).default(30),
  })
  .strict();

const siteSpecSchema = z
  .object({
    kind: z.string().min(1).default('app,linux'),
    /** Name of the App Service plan, in the same resource group. */
    serverFarm: z.string().min(1),
    state: z.enum(['Running', 'Stopped']).default('Running'),
    /** Simulated health of the app behind its health paths. */
    healthy: z.boolean().default(true),
    healthPaths: z.array(z.string().startsWith('/')).default(['/health']),
    linuxFxVersion: z.string().default(''),
    ...containerFields,
    alwaysOn: z.boolean().default(true),
    appSettings: stringMap.default({}),
    createdDaysAgo: z.number().min(0).default(100),
    slots: z.array(slotSpecSchema).default([]),
  })
  .strict();

const planSpecSchema = z
  .object({
    sku: z.object({ name: z.string(), tier: z.string(), capacity: z.number().int().positive().default(1) }).strict(),
    kind: z.string().default('linux'),
    createdDaysAgo: z.number().min(0).default(100),
  })
  .strict();

/** Site configuration shared by sites and slots. */
interface SiteConfigState {
  linuxFxVersion: string;
  windowsFxVersion: string;
  alwaysOn: boolean;
  healthCheckPath: string | undefined;
}

/** One sitecontainer (main container or sidecar). */
export interface SiteContainerState {
  readonly name: string;
  image: string;
  readonly isMain: boolean;
  readonly targetPort: string | undefined;
  readonly authType: string;
  readonly created: Date;
}

/** A web app, function app or one of their slots. */
export interface WebAppState extends ArmResourceBase {
  readonly kind: string;
  readonly serverFarmId: string;
  /** `undefined` for the production site, the slot name otherwise. */
  readonly slotName: string | undefined;
  readonly siteName: string;
  readonly defaultHostName: string;
  readonly created: Date;
  state: 'Running' | 'Stopped';
  healthy: boolean;
  healthPaths: string[];
  config: SiteConfigState;
  sitecontainers: SiteContainerState[];
  /** Secret values: never in snapshot(). */
  appSettings: Map<string, string>;
  lastModified: Date;
  slotSwapStatus: { timestampUtc: Date; sourceSlotName: string; destinationSlotName: string } | undefined;
}

interface PlanState extends ArmResourceBase {
  readonly kind: string;
  readonly sku: { name: string; tier: string; capacity: number };
  readonly created: Date;
}

/**
 * The `linuxFxVersion` and sitecontainers of a site or slot spec: `compose` becomes
 * `COMPOSE|<base64>`; a slot without its own `linuxFxVersion` runs the site's (`fallback`).
 */
function containerConfig(
  world: WorldFile,
  resource: WorldResource,
  fields: { readonly linuxFxVersion?: string; readonly compose?: string; readonly sitecontainers?: readonly z.infer<typeof siteContainerSpecSchema>[] },
  where: string,
  fallback: string,
  created: Date,
): { linuxFxVersion: string; sitecontainers: SiteContainerState[] } {
  if (fields.compose !== undefined && fields.linuxFxVersion !== undefined && fields.linuxFxVersion !== '') {
    throw new WorldSpecError(worldFilePath(world), SITES, resource.name, `${where}: expected compose or linuxFxVersion, found both`);
  }
  const linuxFxVersion = fields.compose === undefined ? (fields.linuxFxVersion ?? fallback) : `COMPOSE|${Buffer.from(fields.compose, 'utf8').toString('base64')}`;
  const sitecontainers = (fields.sitecontainers ?? []).map((container) => ({
    name: container.name,
    image: container.image,
    isMain: container.isMain,
    targetPort: container.targetPort,
    authType: container.authType,
    created,
  }));
  return { linuxFxVersion, sitecontainers };
}

/** The Microsoft.Web provider; also resolves app host names for health endpoints. */
export class WebSitesProvider implements SandboxProvider, AppHostResolver {
  readonly name = 'Microsoft.Web';
  readonly types = [SITES, PLANS] as const;
  private readonly sites = new ResourceStore<WebAppState>();
  private readonly slots = new Map<string, WebAppState[]>();
  private readonly plans = new ResourceStore<PlanState>();

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    for (const resource of resources) {
      if (resource.type === PLANS) {
        const spec = parseSpec(planSpecSchema, world, resource);
        this.plans.add({ ...baseOf(world, resource, PLANS), kind: spec.kind, sku: spec.sku, created: daysBefore(now, spec.createdDaysAgo) });
        continue;
      }
      const spec = parseSpec(siteSpecSchema, world, resource);
      const base = baseOf(world, resource, SITES);
      const containersCreated = daysBefore(now, Math.min(spec.createdDaysAgo, 7));
      const siteContainers = containerConfig(world, resource, spec, 'spec', '', containersCreated);
      const serverFarmId = armId(world.subscriptionId, resource.resourceGroup, PLANS, spec.serverFarm);
      const site: WebAppState = {
        ...base,
        kind: spec.kind,
        serverFarmId,
        slotName: undefined,
        siteName: resource.name,
        defaultHostName: `${resource.name}.azurewebsites.net`.toLowerCase(),
        created: daysBefore(now, spec.createdDaysAgo),
        state: spec.state,
        healthy: spec.healthy,
        healthPaths: [...spec.healthPaths],
        config: { linuxFxVersion: siteContainers.linuxFxVersion, windowsFxVersion: spec.windowsFxVersion ?? '', alwaysOn: spec.alwaysOn, healthCheckPath: spec.healthPaths[0] },
        sitecontainers: siteContainers.sitecontainers,
        appSettings: new Map(Object.entries(spec.appSettings)),
        lastModified: daysBefore(now, Math.min(spec.createdDaysAgo, 2)),
        slotSwapStatus: undefined,
      };
      this.sites.add(site);
      this.slots.set(
        site.id.toLowerCase(),
        spec.slots.map((slot) => {
          const slotContainers = containerConfig(world, resource, slot, `spec.slots[${slot.name}]`, siteContainers.linuxFxVersion, containersCreated);
          return {
            ...base,
            id: `${base.id}/slots/${slot.name}`,
            name: slot.name,
            kind: spec.kind,
            serverFarmId,
            slotName: slot.name,
            siteName: resource.name,
            defaultHostName: `${resource.name}-${slot.name}.azurewebsites.net`.toLowerCase(),
            created: daysBefore(now, slot.createdDaysAgo),
            state: slot.state,
            healthy: slot.healthy,
            healthPaths: [...spec.healthPaths],
            config: {
              linuxFxVersion: slotContainers.linuxFxVersion,
              windowsFxVersion: slot.windowsFxVersion ?? spec.windowsFxVersion ?? '',
              alwaysOn: spec.alwaysOn,
              healthCheckPath: spec.healthPaths[0],
            },
            sitecontainers: slotContainers.sitecontainers,
            appSettings: new Map(Object.entries(slot.appSettings)),
            lastModified: daysBefore(now, Math.min(slot.createdDaysAgo, 1)),
            slotSwapStatus: undefined,
          };
        }),
      );
    }
  }

  /** A site by ARM coordinates, for handlers and tests. */
  getSite(subscriptionId: string, resourceGroup: string, name: string): WebAppState | undefined {
    return this.sites.get(subscriptionId, resourceGroup, SITES, name);
  }

  /** A slot of a site. */
  getSlot(site: WebAppState, slotName: string): WebAppState | undefined {
    return (this.slots.get(site.id.toLowerCase()) ?? []).find((slot) => slot.name.toLowerCase() === slotName.toLowerCase());
  }

  findByHostName(hostName: string): AppEndpointState | undefined {
    for (const site of this.sites.all()) {
      for (const app of [site, ...(this.slots.get(site.id.toLowerCase()) ?? [])]) {
        if (app.defaultHostName === hostName) {
          return { resourceId: app.id, running: app.state === 'Running', healthy: app.healthy, healthPaths: app.healthPaths };
        }
      }
    }
    return undefined;
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.Web';
    const site = `${rg}/sites/{name}`;
    const slot = `${site}/slots/{slot}`;
    const read = armRead;
    return [
      read('/subscriptions/{subscriptionId}/providers/Microsoft.Web/sites', 'Microsoft.Web/sites.list', (request, context) =>
        armPage(request, context, this.sites.list(param(request, 'subscriptionId')).map((s) => this.siteJson(s))),
      ),
      read(`${rg}/sites`, 'Microsoft.Web/sites.listByResourceGroup', (request, context) =>
        armPage(
          request,
          context,
          this.sites.list(param(request, 'subscriptionId'), param(request, 'resourceGroup')).map((s) => this.siteJson(s)),
        ),
      ),
      read(site, 'Microsoft.Web/sites.get', (request, context) => this.withApp(request, context, (app) => json(200, this.siteJson(app)))),
      read(`${site}/slots`, 'Microsoft.Web/sites.listSlots', (request, context) =>
        this.withApp(request, context, (app) =>
          armPage(request, context, (this.slots.get(app.id.toLowerCase()) ?? []).map((s) => this.siteJson(s))),
        ),
      ),
      read(slot, 'Microsoft.Web/sites/slots.get', (request, context) => this.withApp(request, context, (app) => json(200, this.siteJson(app)))),
      read(`${site}/config/web`, 'Microsoft.Web/sites.getConfiguration', (request, context) =>
        this.withApp(request, context, (app) => json(200, this.configJson(app))),
      ),
      read(`${slot}/config/web`, 'Microsoft.Web/sites/slots.getConfiguration', (request, context) =>
        this.withApp(request, context, (app) => json(200, this.configJson(app))),
      ),
      read(`${site}/sitecontainers`, 'Microsoft.Web/sites.listSiteContainers', (request, context) =>
        this.withApp(request, context, (app) => armPage(request, context, app.sitecontainers.map((container) => this.siteContainerJson(app, container)))),
      ),
      read(`${site}/sitecontainers/{containerName}`, 'Microsoft.Web/sites.getSiteContainer', (request, context) =>
        this.withApp(request, context, (app) => this.serveSiteContainer(request, context, app)),
      ),
      read(`${slot}/sitecontainers`, 'Microsoft.Web/sites/slots.listSiteContainersSlot', (request, context) =>
        this.withApp(request, context, (app) => armPage(request, context, app.sitecontainers.map((container) => this.siteContainerJson(app, container)))),
      ),
      read(`${slot}/sitecontainers/{containerName}`, 'Microsoft.Web/sites/slots.getSiteContainerSlot', (request, context) =>
        this.withApp(request, context, (app) => this.serveSiteContainer(request, context, app)),
      ),
      // Listing app settings is a POST in ARM because the values are secrets.
      read(
        `${site}/config/appsettings/list`,
        'Microsoft.Web/sites.listApplicationSettings',
        (request, context) => this.withApp(request, context, (app) => json(200, this.appSettingsJson(app))),
        'POST',
      ),
      read(
        `${slot}/config/appsettings/list`,
        'Microsoft.Web/sites/slots.listApplicationSettings',
        (request, context) => this.withApp(request, context, (app) => json(200, this.appSettingsJson(app))),
        'POST',
      ),
      read(`${rg}/serverfarms/{name}`, 'Microsoft.Web/serverfarms.get', (request, context) =>
        this.plans.serve(PLANS, request, context, (plan) => json(200, this.planJson(plan))),
      ),
    ];
  }

  /** Resolves the site (and slot, when the route has one) or answers 404. */
  private withApp(request: SandboxRequest, context: ProviderContext, handle: (app: WebAppState) => SandboxResponse): SandboxResponse {
    const resourceGroup = param(request, 'resourceGroup');
    const name = param(request, 'name');
    const site = this.getSite(param(request, 'subscriptionId'), resourceGroup, name);
    if (site === undefined) return resourceNotFound(context, SITES, name, resourceGroup);
    const slotName = request.params.slot;
    if (slotName === undefined) return handle(site);
    const slot = this.getSlot(site, slotName);
    if (slot === undefined) return resourceNotFound(context, `${SITES}/slots`, `${name}/${slotName}`, resourceGroup);
    return handle(slot);
  }

  private serveSiteContainer(request: SandboxRequest, context: ProviderContext, app: WebAppState): SandboxResponse {
    const name = param(request, 'containerName');
    const container = app.sitecontainers.find((candidate) => candidate.name === name.toLowerCase());
    return container === undefined
      ? resourceNotFound(context, `${app.slotName === undefined ? SITES : `${SITES}/slots`}/sitecontainers`, `${this.armName(app)}/${name}`, app.resourceGroup)
      : json(200, this.siteContainerJson(app, container));
  }

  /** A sitecontainer as the 2025-05-01 Microsoft.Web spec shapes it (SiteContainer, a proxy resource). */
  private siteContainerJson(app: WebAppState, container: SiteContainerState): Record<string, unknown> {
    return {
      id: `${app.id}/sitecontainers/${container.name}`,
      name: container.name,
      type: `${app.slotName === undefined ? SITES : `${SITES}/slots`}/sitecontainers`,
      properties: {
        image: container.image,
        ...(container.targetPort === undefined ? {} : { targetPort: container.targetPort }),
        isMain: container.isMain,
        startUpCommand: '',
        authType: container.authType,
        createdTime: container.created.toISOString(),
        lastModifiedTime: container.created.toISOString(),
        volumeMounts: [],
        inheritAppSettingsAndConnectionStrings: container.isMain,
        environmentVariables: [],
      },
    };
  }

  private armName(app: WebAppState): string {
    return app.slotName === undefined ? app.name : `${app.siteName}/${app.slotName}`;
  }

  private siteJson(app: WebAppState): Record<string, unknown> {
    const scmHost = app.defaultHostName.replace('.azurewebsites.net', '.scm.azurewebsites.net');
    return {
      id: app.id,
      name: this.armName(app),
      type: app.slotName === undefined ? SITES : `${SITES}/slots`,
      kind: app.kind,
      location: app.location,
      tags: app.tags,
      properties: {
        name: this.armName(app),
        state: app.state,
        hostNames: [app.defaultHostName],
        enabledHostNames: [app.defaultHostName, scmHost],
        hostNameSslStates: [
          { name: app.defaultHostName, sslState: 'Disabled', hostType: 'Standard' },
          { name: scmHost, sslState: 'Disabled', hostType: 'Repository' },
        ],
        repositorySiteName: app.siteName,
        usageState: 'Normal',
        enabled: true,
        availabilityState: 'Normal',
        serverFarmId: app.serverFarmId,
        reserved: app.kind.includes('linux'),
        isXenon: false,
        hyperV: false,
        lastModifiedTimeUtc: app.lastModified.toISOString(),
        siteConfig: {
          numberOfWorkers: 1,
          linuxFxVersion: app.config.linuxFxVersion,
          windowsFxVersion: app.config.windowsFxVersion === '' ? null : app.config.windowsFxVersion,
          alwaysOn: app.config.alwaysOn,
          http20Enabled: true,
          functionAppScaleLimit: 0,
          minimumElasticInstanceCount: 0,
        },
        trafficManagerHostNames: null,
        scmSiteAlsoStopped: false,
        clientAffinityEnabled: false,
        clientCertEnabled: false,
        hostNamesDisabled: false,
        outboundIpAddresses: '20.87.0.10,20.87.0.11',
        possibleOutboundIpAddresses: '20.87.0.10,20.87.0.11,20.87.0.12',
        containerSize: 0,
        dailyMemoryTimeQuota: 0,
        resourceGroup: app.resourceGroup,
        defaultHostName: app.defaultHostName,
        slotSwapStatus:
          app.slotSwapStatus === undefined
            ? null
            : {
                timestampUtc: app.slotSwapStatus.timestampUtc.toISOString(),
                sourceSlotName: app.slotSwapStatus.sourceSlotName,
                destinationSlotName: app.slotSwapStatus.destinationSlotName,
              },
        httpsOnly: true,
        redundancyMode: 'None',
        publicNetworkAccess: 'Enabled',
        keyVaultReferenceIdentity: 'SystemAssigned',
      },
      identity: { type: 'SystemAssigned', principalId: '00000000-0000-4000-8000-0000000000aa', tenantId: app.tenantId },
    };
  }

  private configJson(app: WebAppState): Record<string, unknown> {
    return {
      id: `${app.id}/config/web`,
      name: this.armName(app),
      type: 'Microsoft.Web/sites/config',
      location: app.location,
      properties: {
        numberOfWorkers: 1,
        defaultDocuments: [],
        netFrameworkVersion: 'v4.0',
        linuxFxVersion: app.config.linuxFxVersion,
        windowsFxVersion: app.config.windowsFxVersion === '' ? null : app.config.windowsFxVersion,
        requestTracingEnabled: false,
        httpLoggingEnabled: false,
        detailedErrorLoggingEnabled: false,
        use32BitWorkerProcess: false,
        webSocketsEnabled: false,
        alwaysOn: app.config.alwaysOn,
        appCommandLine: '',
        managedPipelineMode: 'Integrated',
        loadBalancing: 'LeastRequests',
        autoHealEnabled: false,
        http20Enabled: true,
        minTlsVersion: '1.2',
        scmMinTlsVersion: '1.2',
        ftpsState: 'Disabled',
        healthCheckPath: app.config.healthCheckPath ?? null,
        acrUseManagedIdentityCreds: /^(DOCKER|COMPOSE|SITECONTAINERS)\b/i.test(app.config.linuxFxVersion) || app.config.windowsFxVersion.startsWith('DOCKER|'),
        functionsRuntimeScaleMonitoringEnabled: false,
        minimumElasticInstanceCount: 0,
        publicNetworkAccess: 'Enabled',
      },
    };
  }

  private appSettingsJson(app: WebAppState): Record<string, unknown> {
    return {
      id: `${app.id}/config/appsettings`,
      name: 'appsettings',
      type: 'Microsoft.Web/sites/config',
      location: app.location,
      properties: Object.fromEntries(app.appSettings),
    };
  }

  private planJson(plan: PlanState): Record<string, unknown> {
    return {
      ...armEnvelope(plan, PLANS),
      kind: plan.kind,
      sku: { name: plan.sku.name, tier: plan.sku.tier, size: plan.sku.name, family: plan.sku.name.replace(/\d.*$/, ''), capacity: plan.sku.capacity },
      properties: {
        status: 'Ready',
        maximumNumberOfWorkers: 30,
        numberOfSites: this.sites.all().filter((site) => site.serverFarmId.toLowerCase() === plan.id.toLowerCase()).length,
        reserved: plan.kind.includes('linux'),
        provisioningState: 'Succeeded',
        resourceGroup: plan.resourceGroup,
        zoneRedundant: false,
        numberOfWorkers: plan.sku.capacity,
      },
    };
  }

  snapshot(): unknown {
    return {
      plans: this.plans.all().map((plan) => ({ id: plan.id, sku: plan.sku })),
      sites: this.sites.all().map((site) => ({
        ...this.snapshotOf(site),
        slots: (this.slots.get(site.id.toLowerCase()) ?? []).map((slot) => this.snapshotOf(slot)),
      })),
    };
  }

  private snapshotOf(app: WebAppState): Record<string, unknown> {
    return {
      id: app.id,
      kind: app.kind,
      state: app.state,
      healthy: app.healthy,
      defaultHostName: app.defaultHostName,
      linuxFxVersion: app.config.linuxFxVersion,
      windowsFxVersion: app.config.windowsFxVersion,
      sitecontainers: app.sitecontainers.map((container) => ({ name: container.name, image: container.image, isMain: container.isMain })),
      // Setting values are secrets; only their names are shown.
      appSettingNames: [...app.appSettings.keys()].sort(),
      slotSwapStatus: app.slotSwapStatus ?? null,
    };
  }
}
