/**
 * Microsoft.Web: App Service plans, web apps and function apps, and their deployment slots.
 * State is mutable per site and per slot (running state, site config, app settings, swap
 * status). Mutations: site and slot restart, slot swap (a long-running operation that swaps the
 * deployed content, image and app settings and records `slotSwapStatus`), and App Service plan
 * updates (PUT: SKU and workers, a long-running operation). Health is scripted through
 * `health-scripts.ts`.
 */
import { listedOf, type ListedResource } from './resources.ts';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import type { AppEndpointState, AppHostResolver } from './app-health.ts';
import { AppHealth, healthScriptSchema, imageOfFxVersion, type HealthVerdict } from './health-scripts.ts';
import {
  armEventOrigin,
  armId,
  armPage,
  armEnvelope,
  armRead,
  baseOf,
  daysBefore,
  describeIssues,
  json,
  param,
  parseSpec,
  publishArmEvent,
  resourceNotFound,
  ResourceStore,
  stableGuid,
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

/** What an app setting the app's health depends on holds (see `credentialSettings`). */
export const credentialKindSchema = z.union([z.literal('secret'), z.literal('database-url'), z.object({ storageAccount: z.string().min(1) }).strict()]);

const slotSpecSchema = z
  .object({
    name: z.string().min(1),
    state: z.enum(['Running', 'Stopped']).default('Running'),
    /** false: the deploy this slot runs (its image, or its package) is bad, wherever it runs. */
    healthy: z.boolean().default(true),
    health: healthScriptSchema.optional(),
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
    /** false: the deploy the site runs (its image, or its package) is bad, wherever it runs (a swap moves it). */
    healthy: z.boolean().default(true),
    /** A health script of the production site (see health-scripts.ts). */
    health: healthScriptSchema.optional(),
    healthPaths: z.array(z.string().startsWith('/')).default(['/health']),
    linuxFxVersion: z.string().default(''),
    ...containerFields,
    alwaysOn: z.boolean().default(true),
    appSettings: stringMap.default({}),
    /**
     * The app setting that holds the app's PostgreSQL connection string (e.g. `DATABASE_URL`),
     * plain or a Key Vault reference. When set, the site and its slots are healthy only while it
     * resolves to a Ready server of the sandbox that accepts its login and database.
     */
    databaseUrlSetting: z.string().min(1).optional(),
    /**
     * Further app settings the app's health depends on, by what they hold: `secret` (any value
     * the setting resolves to), `database-url` (a connection string that logs in) or
     * `{ storageAccount }` (an account key that authenticates). Health reads the values the app
     * holds: Key Vault references as resolved when it last started or refreshed them.
     */
    credentialSettings: z.record(z.string().min(1), credentialKindSchema).default({}),
    createdDaysAgo: z.number().min(0).default(100),
    slots: z.array(slotSpecSchema).default([]),
  })
  .strict();


/** See {@link credentialKindSchema}. */
export type CredentialKind = z.infer<typeof credentialKindSchema>;

/**
 * How the provider resolves a setting (a Key Vault reference to its value) and checks a held
 * credential: wired by `defaultProviders()` from the Key Vault, PostgreSQL and Storage providers.
 */
export interface CredentialChecks {
  resolve(value: string): { readonly value: string } | { readonly problem: string };
  /** Why the held value does not work as `kind`, or undefined when it does. */
  check(kind: CredentialKind, value: string): string | undefined;
}

/** App Service re-fetches Key Vault references every 24 hours. */
const REFERENCE_REFRESH_MS = 24 * 3_600_000;

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
  /** Test hook for this instance's health; world files' `healthy: false` marks the artifact bad instead. */
  healthy: boolean;
  healthPaths: string[];
  /** What is deployed: the `DOCKER|` image, or a package key for code deployments. A swap moves it. */
  artifact: string;
  /** Creation, last restart or last swap (sandbox clock), for until-restart health scripts. */
  lastStarted: Date;
  /** Answers 503 until then (sandbox clock) while a restart completes. */
  restartingUntil: Date | undefined;
  config: SiteConfigState;
  sitecontainers: SiteContainerState[];
  /** Secret values: never in snapshot(). */
  appSettings: Map<string, string>;
  /** The app setting whose connection string its health depends on (see the spec). */
  databaseUrlSetting: string | undefined;
  /** Further settings its health depends on (see the spec). */
  credentialSettings: Record<string, CredentialKind>;
  /**
   * Secret values: what the running app holds for each Key Vault reference, resolved when it
   * last started (or refreshed its references); undefined until the first resolution.
   */
  heldReferences: Map<string, { readonly value: string } | { readonly problem: string }> | undefined;
  /** When the references were last resolved (sandbox clock). */
  referencesResolvedAt: Date | undefined;
  lastModified: Date;
  slotSwapStatus: { timestampUtc: Date; sourceSlotName: string; destinationSlotName: string } | undefined;
}

interface PlanState extends ArmResourceBase {
  readonly kind: string;
  sku: { name: string; tier: string; capacity: number };
  readonly created: Date;
  provisioningState: 'Succeeded' | 'InProgress' | 'Failed';
}

/** App Service plan SKU families: the tier a SKU name belongs to and its most workers. */
const PLAN_SKUS: readonly { readonly pattern: RegExp; readonly tier: string; readonly maxWorkers: number }[] = [
  { pattern: /^F1$/i, tier: 'Free', maxWorkers: 1 },
  { pattern: /^D1$/i, tier: 'Shared', maxWorkers: 1 },
  { pattern: /^B[1-3]$/i, tier: 'Basic', maxWorkers: 3 },
  { pattern: /^S[1-3]$/i, tier: 'Standard', maxWorkers: 10 },
  { pattern: /^P[1-3]$/i, tier: 'Premium', maxWorkers: 20 },
  { pattern: /^P[1-3]v2$/i, tier: 'PremiumV2', maxWorkers: 30 },
  { pattern: /^P[0-3]v3$|^P[1-5]mv3$/i, tier: 'PremiumV3', maxWorkers: 30 },
  { pattern: /^P[0-5]m?v4$/i, tier: 'PremiumV4', maxWorkers: 30 },
  { pattern: /^I[1-6]m?v2$/i, tier: 'IsolatedV2', maxWorkers: 100 },
  { pattern: /^Y1$/i, tier: 'Dynamic', maxWorkers: 1 },
  { pattern: /^EP[1-3]$/i, tier: 'ElasticPremium', maxWorkers: 20 },
  { pattern: /^FC1$/i, tier: 'FlexConsumption', maxWorkers: 1 },
];

/** Plans whose instances the platform scales; their worker count is not the customer's. */
const PLATFORM_SCALED_TIERS = new Set(['Dynamic', 'ElasticPremium', 'FlexConsumption']);

const planPutSchema = z
  .object({
    location: z.string().min(1),
    kind: z.string().optional(),
    sku: z.object({ name: z.string().min(1), tier: z.string().optional(), capacity: z.number().int().optional() }).loose(),
  })
  .loose();

const slotSwapSchema = z.object({ targetSlot: z.string().min(1), preserveVnet: z.boolean().optional() }).loose();

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
  /** Sites (lower-cased id) with a swap in progress: App Service runs one swap per site at a time. */
  private readonly swapping = new Set<string>();

  /** @param health the sandbox's app health, shared with the apphost and Microsoft.App providers. */
  constructor(readonly health: AppHealth = new AppHealth()) {}

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return [...this.sites.all().map((resource) => listedOf(resource, SITES)), ...this.plans.all().map((resource) => listedOf(resource, PLANS))];
  }

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    for (const resource of resources) {
      if (resource.type === PLANS) {
        const spec = parseSpec(planSpecSchema, world, resource);
        this.plans.add({ ...baseOf(world, resource, PLANS), kind: spec.kind, sku: { ...spec.sku }, created: daysBefore(now, spec.createdDaysAgo), provisioningState: 'Succeeded' });
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
        healthy: true,
        healthPaths: [...spec.healthPaths],
        artifact: imageOfFxVersion(siteContainers.linuxFxVersion) ?? imageOfFxVersion(spec.windowsFxVersion ?? '') ?? `package:${resource.name}/production`.toLowerCase(),
        lastStarted: daysBefore(now, Math.min(spec.createdDaysAgo, 2)),
        restartingUntil: undefined,
        config: { linuxFxVersion: siteContainers.linuxFxVersion, windowsFxVersion: spec.windowsFxVersion ?? '', alwaysOn: spec.alwaysOn, healthCheckPath: spec.healthPaths[0] },
        sitecontainers: siteContainers.sitecontainers,
        appSettings: new Map(Object.entries(spec.appSettings)),
        databaseUrlSetting: spec.databaseUrlSetting,
        credentialSettings: { ...spec.credentialSettings },
        heldReferences: undefined,
        referencesResolvedAt: undefined,
        lastModified: daysBefore(now, Math.min(spec.createdDaysAgo, 2)),
        slotSwapStatus: undefined,
      };
      this.sites.add(site);
      this.seedHealth(site, spec.healthy, spec.health, now);
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
            healthy: true,
            healthPaths: [...spec.healthPaths],
            artifact:
              imageOfFxVersion(slotContainers.linuxFxVersion) ??
              imageOfFxVersion(slot.windowsFxVersion ?? spec.windowsFxVersion ?? '') ??
              `package:${resource.name}/${slot.name}`.toLowerCase(),
            lastStarted: daysBefore(now, Math.min(slot.createdDaysAgo, 1)),
            restartingUntil: undefined,
            config: {
              linuxFxVersion: slotContainers.linuxFxVersion,
              windowsFxVersion: slot.windowsFxVersion ?? spec.windowsFxVersion ?? '',
              alwaysOn: spec.alwaysOn,
              healthCheckPath: spec.healthPaths[0],
            },
            sitecontainers: slotContainers.sitecontainers,
            appSettings: new Map(Object.entries(slot.appSettings)),
            databaseUrlSetting: spec.databaseUrlSetting,
            credentialSettings: { ...spec.credentialSettings },
            heldReferences: undefined,
            referencesResolvedAt: undefined,
            lastModified: daysBefore(now, Math.min(slot.createdDaysAgo, 1)),
            slotSwapStatus: undefined,
          };
        }),
      );
      for (const [index, slot] of (this.slots.get(site.id.toLowerCase()) ?? []).entries()) {
        const slotSpec = spec.slots[index];
        if (slotSpec !== undefined) this.seedHealth(slot, slotSpec.healthy, slotSpec.health, now);
      }
    }
  }

  /** Registers a site or slot as a health target, with its world-declared script and artifact verdict. */
  private seedHealth(app: WebAppState, healthy: boolean, script: z.infer<typeof healthScriptSchema> | undefined, now: Date): void {
    this.health.registerTarget(app.id, app.slotName === undefined ? 'site' : 'slot');
    if (!healthy) this.health.seedBadArtifact(app.artifact, `${app.artifact} is bad (healthy: false in the world file of ${this.armName(app)})`);
    if (script !== undefined) this.health.seedScript(app.id, script, now);
  }

  /** A site by ARM coordinates, for handlers and tests. */
  getSite(subscriptionId: string, resourceGroup: string, name: string): WebAppState | undefined {
    return this.sites.get(subscriptionId, resourceGroup, SITES, name);
  }

  /** A slot of a site. */
  getSlot(site: WebAppState, slotName: string): WebAppState | undefined {
    return (this.slots.get(site.id.toLowerCase()) ?? []).find((slot) => slot.name.toLowerCase() === slotName.toLowerCase());
  }

  findByHostName(hostName: string, now: Date): AppEndpointState | undefined {
    return this.endpoints(now).find((endpoint) => endpoint.hostName === hostName);
  }

  endpoints(now: Date): AppEndpointState[] {
    return this.sites.all().flatMap((site) =>
      [site, ...(this.slots.get(site.id.toLowerCase()) ?? [])].map((app) => ({
        resourceId: app.id,
        hostName: app.defaultHostName,
        running: app.state === 'Running',
        restarting: app.restartingUntil !== undefined && now < app.restartingUntil,
        health: this.healthOf(app, now),
        healthPaths: app.healthPaths,
      })),
    );
  }

  /** Set by `defaultProviders()`; without it (hand-built tests) health depends on no credential. */
  private credentialChecks: CredentialChecks | undefined;

  /** Wires {@link credentialChecks}. */
  setCredentialChecks(checks: CredentialChecks): void {
    this.credentialChecks = checks;
  }

  /** Every site and slot. */
  private allApps(): WebAppState[] {
    return this.sites.all().flatMap((site) => [site, ...(this.slots.get(site.id.toLowerCase()) ?? [])]);
  }

  /**
   * Resolves the app's Key Vault references as App Service does when the app starts: at start,
   * restart, any configuration change (which restarts it), a swap, the references refresh
   * (`POST …/config/configreferences/appsettings/refresh`) and every 24 hours. In between the
   * app keeps the values it holds, so a new secret version reaches it only by one of those.
   */
  private loadReferences(app: WebAppState, now: Date): void {
    const checks = this.credentialChecks;
    if (checks === undefined) return;
    const held = new Map<string, { readonly value: string } | { readonly problem: string }>();
    for (const [name, value] of app.appSettings) {
      if (value.trim().startsWith('@Microsoft.KeyVault(')) held.set(name, checks.resolve(value));
    }
    app.heldReferences = held;
    app.referencesResolvedAt = now;
  }

  /** Apps resolve their references once every world has seeded (Key Vault may seed after them). */
  afterSeed(context: ProviderContext): void {
    for (const app of this.allApps()) this.loadReferences(app, context.now());
  }

  /** The daily re-fetch of Key Vault references. */
  onClock(now: Date): void {
    for (const app of this.allApps()) {
      if (app.referencesResolvedAt !== undefined && now.getTime() - app.referencesResolvedAt.getTime() >= REFERENCE_REFRESH_MS) this.loadReferences(app, now);
    }
  }

  /** Why the app's credentials do not work, or undefined (also when its health depends on none). */
  private credentialProblem(app: WebAppState): string | undefined {
    const checks = this.credentialChecks;
    if (checks === undefined) return undefined;
    const settings: [string, CredentialKind][] = Object.entries(app.credentialSettings);
    if (app.databaseUrlSetting !== undefined) settings.unshift([app.databaseUrlSetting, 'database-url']);
    for (const [name, kind] of settings) {
      const value = app.appSettings.get(name);
      if (value === undefined || value === '') return `app setting ${name} is not set`;
      let held: { readonly value: string } | { readonly problem: string } = { value };
      if (value.trim().startsWith('@Microsoft.KeyVault(')) held = app.heldReferences?.get(name) ?? checks.resolve(value);
      if ('problem' in held) return `${name}: ${held.problem}`;
      const problem = checks.check(kind, held.value);
      if (problem !== undefined) return `${name}: ${problem}`;
    }
    return undefined;
  }

  /** The scripted health of a site or slot. */
  healthOf(app: WebAppState, now: Date): HealthVerdict {
    if (!app.healthy) return { healthy: false, reason: `${app.id} is unhealthy (instance test hook)`, status: 503, body: { status: 'unhealthy' }, paths: undefined };
    const credential = this.credentialProblem(app);
    if (credential !== undefined) {
      return { healthy: false, reason: `${app.id} holds a credential that does not work: ${credential}`, status: 503, body: { status: 'unhealthy', credential: 'failing' }, paths: undefined };
    }
    const plan = this.planOf(app);
    return this.health.verdict({
      targets: [app.id],
      artifact: app.artifact,
      startedAt: app.lastStarted,
      scale: plan === undefined ? {} : { workers: plan.sku.capacity, sku: plan.sku.name },
      now,
    });
  }

  private planOf(app: WebAppState): PlanState | undefined {
    return this.plans.all().find((plan) => plan.id.toLowerCase() === app.serverFarmId.toLowerCase());
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
      ...this.mutationRoutes(site, slot, rg),
    ];
  }

  /** Restart, slot swap and plan update: the mutations the remediation actions need. */
  private mutationRoutes(site: string, slot: string, rg: string): RouteDefinition[] {
    const write = (method: RouteDefinition['method'], pattern: string, operationId: string, handler: RouteDefinition['handler']): RouteDefinition => ({
      host: 'arm',
      method,
      pattern,
      throttle: 'write',
      operationId,
      handler,
    });
    const onApp =
      (act: (app: WebAppState, request: SandboxRequest, context: ProviderContext) => SandboxResponse | Promise<SandboxResponse>): RouteDefinition['handler'] =>
      (request, context) => {
        const app = this.resolveApp(request, context);
        return 'status' in app ? app : act(app, request, context);
      };
    return [
      write('PUT', `${site}/config/appsettings`, 'Microsoft.Web/sites.updateApplicationSettings', onApp((app, request, context) => this.updateAppSettings(app, request, context))),
      write('PUT', `${slot}/config/appsettings`, 'Microsoft.Web/sites/slots.updateApplicationSettings', onApp((app, request, context) => this.updateAppSettings(app, request, context))),
      // The documented refresh of Key Vault references (App Service's "refresh" endpoint): re-fetches every reference without a restart.
      write('POST', `${site}/config/configreferences/appsettings/refresh`, 'Microsoft.Web/sites.refreshConfigReferences', onApp((app, _request, context) => this.refreshReferences(app, context))),
      write('POST', `${slot}/config/configreferences/appsettings/refresh`, 'Microsoft.Web/sites/slots.refreshConfigReferences', onApp((app, _request, context) => this.refreshReferences(app, context))),
      write('POST', `${site}/restart`, 'Microsoft.Web/sites.restart', onApp((app, request, context) => this.restart(app, request, context))),
      write('POST', `${slot}/restart`, 'Microsoft.Web/sites/slots.restart', onApp((app, request, context) => this.restart(app, request, context))),
      write('POST', `${site}/slotsswap`, 'Microsoft.Web/sites.swapSlotWithProduction', onApp((app, request, context) => this.swap(app, request, context))),
      write('POST', `${slot}/slotsswap`, 'Microsoft.Web/sites/slots.swapSlot', onApp((app, request, context) => this.swap(app, request, context))),
      write('PUT', `${rg}/serverfarms/{name}`, 'Microsoft.Web/serverfarms.createOrUpdate', (request, context) =>
        this.plans.serve(PLANS, request, context, (plan) => this.updatePlan(plan, request, context)),
      ),
    ];
  }

  /**
   * `WebApps_UpdateApplicationSettings` / `…Slot`: replaces every app setting with the body's
   * `properties` (a StringDictionary) and answers 200 with them, as the spec does. App Service
   * restarts the app to apply them, so it answers 503 for the operation's duration.
   */
  private updateAppSettings(app: WebAppState, request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = z.object({ properties: stringMap }).loose().safeParse(request.body);
    if (!parsed.success) {
      return context.armError(400, 'BadRequest', `Expected a StringDictionary body {"properties": {"<name>": "<value>", ...}}, found ${request.body === undefined ? 'no body' : 'another shape'}.`);
    }
    const now = context.now();
    app.appSettings = new Map(Object.entries(parsed.data.properties));
    app.lastModified = now;
    app.lastStarted = now;
    this.loadReferences(app, now);
    app.restartingUntil = new Date(now.getTime() + (context.operationDurationMs?.() ?? 0));
    // Names only: values are secrets.
    context.event('web.appsettings', { resourceId: app.id, names: [...app.appSettings.keys()].sort() });
    return json(200, this.appSettingsJson(app));
  }

  /** Re-fetches the app's Key Vault references now (200, no body); the app keeps running. */
  private refreshReferences(app: WebAppState, context: ProviderContext): SandboxResponse {
    this.loadReferences(app, context.now());
    context.event('web.references.refresh', { resourceId: app.id });
    return { status: 200 };
  }

  /**
   * `WebApps_Restart` / `WebApps_RestartSlot`: 200 with no body, as in the spec (not a
   * long-running operation). The app then answers 503 for the sandbox's operation duration
   * while it comes back (`synchronous=true` answers only once it has); an until-restart health
   * script is satisfied from then on. A stopped app stays stopped.
   */
  private async restart(app: WebAppState, request: SandboxRequest, context: ProviderContext): Promise<SandboxResponse> {
    const now = context.now();
    const durationMs = context.operationDurationMs?.() ?? 0;
    app.lastStarted = now;
    app.restartingUntil = new Date(now.getTime() + durationMs);
    this.loadReferences(app, now);
    const softRestart = request.query.get('softRestart') === 'true';
    context.event('web.restart', { resourceId: app.id, softRestart, synchronous: request.query.get('synchronous') === 'true' });
    const origin = armEventOrigin(request, context);
    this.publishAppEvent(app, context, 'Microsoft.Web.AppUpdated', { action: 'Restarted' }, origin);
    publishArmEvent(context, app, { kind: 'Action', operationName: `${app.slotName === undefined ? SITES : `${SITES}/slots`}/restart/action`, origin });
    if (request.query.get('synchronous') === 'true' && durationMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, durationMs));
    }
    return { status: 200 };
  }

  /**
   * `WebApps_SwapSlotWithProduction` / `WebApps_SwapSlot`: a long-running operation (202 with
   * `Location`, as in the spec). When it completes, the two slots have swapped what they run
   * (the deployed artifact: image or package, `linuxFxVersion`/`windowsFxVersion`,
   * sitecontainers) and their app settings (the sandbox has no slot-sticky settings); host
   * names stay. Both slots restart (App Service applies the other slot's settings), both record
   * `slotSwapStatus`, and `Microsoft.Web.SlotSwapStarted` / `SlotSwapCompleted` (or
   * `SlotSwapFailed`) go to the Event Grid outbox. One swap per site at a time: a second one
   * is refused with 409 while the first runs.
   */
  private swap(source: WebAppState, request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = slotSwapSchema.safeParse(request.body);
    if (!parsed.success) {
      return context.armError(400, 'BadRequest', `Expected a CsmSlotEntity body {"targetSlot": <slot name>, "preserveVnet": <boolean>}, found ${request.body === undefined ? 'no body' : JSON.stringify(request.body)}.`);
    }
    const site = this.siteOf(source);
    if (site === undefined) return resourceNotFound(context, SITES, source.siteName, source.resourceGroup);
    const targetName = parsed.data.targetSlot;
    const target = targetName.toLowerCase() === 'production' ? site : this.getSlot(site, targetName);
    if (target === undefined) return resourceNotFound(context, `${SITES}/slots`, `${site.name}/${targetName}`, site.resourceGroup);
    if (target === source) {
      return context.armError(400, 'BadRequest', `Cannot swap slot '${this.slotLabel(source)}' of site '${site.name}' with itself: expected targetSlot to name another slot, found '${targetName}'.`);
    }
    const siteKey = site.id.toLowerCase();
    if (this.swapping.has(siteKey)) {
      return context.armError(409, 'Conflict', `Cannot swap site '${site.name}': a swap operation is already in progress on this site. Wait for it to complete.`);
    }
    // Swapping production with a slot moves the slot's content into production.
    const [from, to] = source === site ? [target, source] : [source, target];
    const origin = armEventOrigin(request, context);
    const details = { sourceSlot: this.slotLabel(from), targetSlot: this.slotLabel(to) };
    return context
      .startOperation({
        operationId: source === site ? 'Microsoft.Web/sites.swapSlotWithProduction' : 'Microsoft.Web/sites/slots.swapSlot',
        resourceId: source.id,
        onStart: () => {
          this.swapping.add(siteKey);
          this.publishAppEvent(site, context, 'Microsoft.Web.SlotSwapStarted', { action: 'Started' }, origin, details);
        },
        run: () => {
          this.swapping.delete(siteKey);
          this.exchange(from, to, context.now());
          context.event('web.slotswap', { site: site.id, ...details });
          this.publishAppEvent(site, context, 'Microsoft.Web.SlotSwapCompleted', null, origin, details);
          publishArmEvent(context, source, { kind: 'Action', operationName: `${source === site ? SITES : `${SITES}/slots`}/slotsswap/action`, origin });
        },
        onFailed: () => {
          this.swapping.delete(siteKey);
          this.publishAppEvent(site, context, 'Microsoft.Web.SlotSwapFailed', null, origin, details);
        },
        // The SDK expects 200 at the Location URL (it refuses a 204).
        result: () => null,
      })
      .accepted();
  }

  /** Moves content between two slots: what `from` ran now runs in `to`, and the other way round. */
  private exchange(from: WebAppState, to: WebAppState, now: Date): void {
    [from.artifact, to.artifact] = [to.artifact, from.artifact];
    [from.sitecontainers, to.sitecontainers] = [to.sitecontainers, from.sitecontainers];
    [from.appSettings, to.appSettings] = [to.appSettings, from.appSettings];
    const { linuxFxVersion, windowsFxVersion } = from.config;
    from.config.linuxFxVersion = to.config.linuxFxVersion;
    from.config.windowsFxVersion = to.config.windowsFxVersion;
    to.config.linuxFxVersion = linuxFxVersion;
    to.config.windowsFxVersion = windowsFxVersion;
    const status = { timestampUtc: now, sourceSlotName: this.slotLabel(from), destinationSlotName: this.slotLabel(to) };
    for (const app of [from, to]) {
      app.lastStarted = now;
      this.loadReferences(app, now);
      app.lastModified = now;
      app.slotSwapStatus = { ...status };
      // A deploy that an unhealthy-after-swap script waits for turns bad where it lands.
      this.health.swappedInto(app.id, app.artifact);
    }
  }

  /**
   * `AppServicePlans_CreateOrUpdate` on an existing plan: the way `az appservice plan update`
   * changes the SKU (scale up) and the worker count (`sku.capacity`, scale out). A long-running
   * operation (202); the plan reports `provisioningState: InProgress` until it completes. Refused
   * (400, nothing changes): another location, an unknown SKU name, a change between a
   * platform-scaled plan (Consumption, Elastic Premium, Flex) and a dedicated one, a worker count
   * on a platform-scaled plan, or more workers than the tier allows.
   */
  private updatePlan(plan: PlanState, request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = planPutSchema.safeParse(request.body);
    if (!parsed.success) {
      return context.armError(
        400,
        'BadRequest',
        `Expected an AppServicePlan body with location and sku.name, found: ${describeIssues(parsed.error)}.`,
      );
    }
    const body = parsed.data;
    if (body.location.toLowerCase().replace(/\s+/g, '') !== plan.location.toLowerCase().replace(/\s+/g, '')) {
      return context.armError(
        400,
        'InvalidResourceLocation',
        `The resource '${plan.name}' already exists in location '${plan.location}' in resource group '${plan.resourceGroup}'. A resource with the same name cannot be created in location '${body.location}'. Please select a new resource name.`,
      );
    }
    const family = PLAN_SKUS.find((candidate) => candidate.pattern.test(body.sku.name));
    if (family === undefined) {
      return context.armError(400, 'BadRequest', `The pricing tier '${body.sku.name}' is not allowed for App Service plan '${plan.name}': expected a known App Service SKU such as B1, S1, P1v2, P1v3 or P1mv3.`);
    }
    const current = PLAN_SKUS.find((candidate) => candidate.pattern.test(plan.sku.name));
    const platformScaled = PLATFORM_SCALED_TIERS.has(family.tier);
    if ((current !== undefined && PLATFORM_SCALED_TIERS.has(current.tier)) !== platformScaled || (platformScaled && current?.tier !== family.tier)) {
      return context.armError(400, 'BadRequest', `Cannot change App Service plan '${plan.name}' from ${plan.sku.tier} (${plan.sku.name}) to ${family.tier} (${body.sku.name}): the hosting model cannot change; create a new plan instead.`);
    }
    const capacity = body.sku.capacity ?? plan.sku.capacity;
    if (platformScaled && capacity !== plan.sku.capacity) {
      return context.armError(400, 'BadRequest', `Cannot set the worker count of App Service plan '${plan.name}': the platform scales ${family.tier} plans itself.`);
    }
    if (capacity < 1 || capacity > family.maxWorkers) {
      return context.armError(400, 'BadRequest', `Expected sku.capacity between 1 and ${String(family.maxWorkers)} workers for the ${family.tier} tier of App Service plan '${plan.name}', found ${String(capacity)}.`);
    }
    const next = { name: body.sku.name, tier: family.tier, capacity };
    const origin = armEventOrigin(request, context);
    return context
      .startOperation({
        operationId: 'Microsoft.Web/serverfarms.createOrUpdate',
        resourceId: plan.id,
        onStart: () => {
          plan.provisioningState = 'InProgress';
        },
        run: () => {
          const before = { ...plan.sku };
          plan.sku = next;
          plan.provisioningState = 'Succeeded';
          context.event('web.plan.update', { resourceId: plan.id, before, after: next });
          publishArmEvent(context, plan, { kind: 'Write', operationName: `${PLANS}/write`, origin });
        },
        onFailed: () => {
          plan.provisioningState = 'Failed';
        },
      })
      .accepted();
  }

  /** An App Service event (`Microsoft.Web.*`) on the site's system topic, shaped as the Event Grid docs show it. */
  private publishAppEvent(
    site: WebAppState,
    context: ProviderContext,
    eventType: string,
    detail: { action: string } | null,
    origin: ReturnType<typeof armEventOrigin>,
    extra: Record<string, string> = {},
  ): void {
    const siteId = site.slotName === undefined ? site.id : site.id.replace(/\/slots\/[^/]+$/i, '');
    context.publishEvent?.({
      topic: siteId,
      subject: `/Microsoft.Web/sites/${site.siteName}`,
      eventType,
      dataVersion: '1',
      data: {
        appEventTypeDetail: detail,
        siteName: site.siteName,
        clientRequestId: origin.clientRequestId,
        correlationRequestId: origin.correlationId,
        requestId: stableGuid(`request:${origin.correlationId}:${eventType}`),
        address: `/websystems/WebSites/web/subscriptions/${site.subscriptionId}/webspaces/${site.resourceGroup}-${site.location}webspace/sites/${site.siteName}${extra.targetSlot === undefined ? '' : `/slots?Command=SWAP&targetSlot=${extra.targetSlot}`}`,
        verb: origin.method,
        ...extra,
      },
    });
  }

  /** The production site a site or slot belongs to. */
  private siteOf(app: WebAppState): WebAppState | undefined {
    return app.slotName === undefined ? app : this.getSite(app.subscriptionId, app.resourceGroup, app.siteName);
  }

  /** `production` or the slot name, as slot swaps name slots. */
  private slotLabel(app: WebAppState): string {
    return app.slotName ?? 'production';
  }

  /** Resolves the site (and slot, when the route has one) or answers 404. */
  private withApp(request: SandboxRequest, context: ProviderContext, handle: (app: WebAppState) => SandboxResponse): SandboxResponse {
    const app = this.resolveApp(request, context);
    return 'status' in app ? app : handle(app);
  }

  /** The site or slot a route names, or the 404 to answer. */
  private resolveApp(request: SandboxRequest, context: ProviderContext): WebAppState | SandboxResponse {
    const resourceGroup = param(request, 'resourceGroup');
    const name = param(request, 'name');
    const site = this.getSite(param(request, 'subscriptionId'), resourceGroup, name);
    if (site === undefined) return resourceNotFound(context, SITES, name, resourceGroup);
    const slotName = request.params.slot;
    if (slotName === undefined) return site;
    const slot = this.getSlot(site, slotName);
    if (slot === undefined) return resourceNotFound(context, `${SITES}/slots`, `${name}/${slotName}`, resourceGroup);
    return slot;
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
        provisioningState: plan.provisioningState,
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
      artifact: app.artifact,
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
