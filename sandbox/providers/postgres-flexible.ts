/**
 * Microsoft.DBforPostgreSQL flexible servers and their automatic backups. When the engine
 * runs the embedded PostgreSQL, every server is backed by real data (with a little seed data),
 * reached through the engine's TLS front door by its FQDN, so restore and rotation runbooks
 * connect and query for real.
 *
 * Mutations, shaped as the 2025-08-01 spec: create by point-in-time restore (`Servers_Create`
 * with `createMode: PointInTimeRestore`, a long-running operation whose new server holds the
 * source's data as of the point, see engine/postgres.ts), delete (`Servers_Delete`), update of
 * the admin password, tags and compute size (`Servers_Update`), restart, and the name availability checks.
 */
import { listedOf, type ListedResource } from './resources.ts';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ControlRoute, ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import {
  armEventOrigin,
  armPage,
  armEnvelope,
  armId,
  armRead,
  baseOf,
  daysBefore,
  describeIssues,
  hoursBefore,
  idKey,
  json,
  param,
  parseSpec,
  publishArmEvent,
  resourceNotFound,
  ResourceStore,
  stringMap,
  systemData,
  type ArmResourceBase,
} from './common.ts';

const SERVERS = 'Microsoft.DBforPostgreSQL/flexibleServers';

const backupSpecSchema = z
  .object({
    /** Hours since the newest automatic backup completed. */
    newestHoursAgo: z.number().min(0).default(3),
    /** Hours between automatic full backups. */
    intervalHours: z.number().positive().default(24),
    /** How many backups exist; defaults to one per interval over the retention window. */
    count: z.number().int().min(0).optional(),
  })
  .strict();

const serverSpecSchema = z
  .object({
    version: z.string().default('16'),
    sku: z.object({ name: z.string(), tier: z.enum(['Burstable', 'GeneralPurpose', 'MemoryOptimized']) }).strict().default({ name: 'Standard_B1ms', tier: 'Burstable' }),
    administratorLogin: z.string().min(1),
    /** Optional; generated when absent. Kept in provider state only. */
    administratorPassword: z.string().min(8).optional(),
    state: z.enum(['Ready', 'Stopped', 'Starting', 'Stopping', 'Updating', 'Disabled']).default('Ready'),
    storageSizeGB: z.number().int().positive().default(32),
    backupRetentionDays: z.number().int().min(1).max(35).default(7),
    geoRedundantBackup: z.enum(['Enabled', 'Disabled']).default('Disabled'),
    /** Overrides the earliest restore point (hours ago); by default it is the oldest backup. */
    earliestRestoreHoursAgo: z.number().min(0).optional(),
    highAvailability: z.enum(['Disabled', 'ZoneRedundant', 'SameZone']).default('Disabled'),
    publicNetworkAccess: z.enum(['Enabled', 'Disabled']).default('Enabled'),
    createdDaysAgo: z.number().min(0).default(200),
    backups: backupSpecSchema.default({ newestHoursAgo: 3, intervalHours: 24 }),
    /** Application database name inside the server (informational). */
    databaseName: z.string().default('app'),
  })
  .strict();

/** The compute tier each SKU family belongs to (Burstable B, General Purpose D, Memory Optimized E series). */
const SKU_TIERS: readonly { readonly pattern: RegExp; readonly tier: 'Burstable' | 'GeneralPurpose' | 'MemoryOptimized' }[] = [
  { pattern: /^Standard_B\d+(ms|s)$/i, tier: 'Burstable' },
  { pattern: /^Standard_D\d+(s_v3|ds_v4|ds_v5|ads_v5|s_v6|ds_v6|ads_v6)$/i, tier: 'GeneralPurpose' },
  { pattern: /^Standard_E\d+(s_v3|ds_v4|ds_v5|ads_v5|s_v6|ds_v6|ads_v6)$/i, tier: 'MemoryOptimized' },
];

/** One automatic backup. */
export interface BackupState {
  readonly name: string;
  readonly completed: Date;
  readonly backupType: 'Full' | 'Customer On-Demand';
  readonly source: 'Automatic' | 'OnDemand';
}

/** A PostgreSQL flexible server. */
export interface PostgresServerState extends ArmResourceBase {
  /** Mutable: a restored server's creation is when its restore completed. */
  created: Date;
  /** Tags are replaced by `Servers_Update`. */
  tags: Record<string, string>;
  /** For a server created by a restore: its source and restore point (sandbox time). */
  restoredFrom: { readonly sourceServerResourceId: string; readonly pointInTime: Date } | undefined;
  version: string;
  sku: { name: string; tier: string };
  administratorLogin: string;
  /** Secret: never in snapshot(). */
  administratorPassword: string;
  state: string;
  storageSizeGB: number;
  backupRetentionDays: number;
  geoRedundantBackup: 'Enabled' | 'Disabled';
  earliestRestoreOverride: Date | undefined;
  highAvailability: string;
  publicNetworkAccess: string;
  databaseName: string;
  /** Newest first. */
  backups: BackupState[];
  /** Where the embedded PostgreSQL really keeps this server's data (connect as `role`), when the engine runs one. */
  sandboxDatabase: { host: string; port: number; database: string; role: string } | undefined;
}

/** The public-cloud DNS name of a flexible server, which the engine's front door answers to (TLS server name). */
export function postgresFqdn(serverName: string): string {
  return `${serverName}.postgres.database.azure.com`;
}

/** Flexible server names: 3-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen. */
const SERVER_NAME = /^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/;

/** Why a server name cannot be used, or undefined when it is valid. */
function serverNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `The server name '${name}' must be 3 to 63 characters long.`;
  if (!SERVER_NAME.test(name) || name.includes('--')) {
    return `The server name '${name}' can only contain lowercase letters, numbers and hyphens, and must not start or end with a hyphen.`;
  }
  return undefined;
}

/**
 * Azure's admin password policy: 8-128 characters from at least three of upper case, lower
 * case, digits and other characters, not containing the login.
 */
export function passwordProblem(password: string, login: string): string | undefined {
  const classes = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((pattern) => pattern.test(password)).length;
  if (password.length < 8 || password.length > 128 || classes < 3 || password.toLowerCase().includes(login.toLowerCase())) {
    return 'Password validation failed. The password does not meet policy requirements because it is not complex enough: 8 to 128 characters from at least three of upper case letters, lower case letters, digits and non-alphanumeric characters, not containing the login name.';
  }
  return undefined;
}

/** `Servers_Create` as the sandbox serves it: `createMode: PointInTimeRestore`. */
const createBodySchema = z.object({
  location: z.string().min(1),
  tags: stringMap.optional(),
  sku: z.object({ name: z.string().min(1), tier: z.enum(['Burstable', 'GeneralPurpose', 'MemoryOptimized']) }).optional(),
  properties: z.object({
    createMode: z.string(),
    sourceServerResourceId: z.string().optional(),
    pointInTimeUTC: z.string().optional(),
    availabilityZone: z.string().optional(),
  }),
});

/** What the sandbox reads of a `Servers_Update` body (ServerForPatch); other fields are accepted and ignored. */
const updateBodySchema = z
  .object({
    tags: stringMap.optional(),
    properties: z
      .object({
        administratorLoginPassword: z.string().optional(),
        /** `Backup.backupRetentionDays` of ServerForPatch: 7-35 days in Azure. */
        backup: z.object({ backupRetentionDays: z.number().int().min(7).max(35).optional() }).loose().optional(),
      })
      .loose()
      .optional(),
    /** SkuForPatch: a name (the tier follows from it), optionally with its tier. */
    sku: z.object({ name: z.string().min(1), tier: z.enum(['Burstable', 'GeneralPurpose', 'MemoryOptimized']).optional() }).loose().optional(),
  })
  .loose();


/** Seed data every server gets, so restore drills and rotations can query something. */
const SEED_SQL = `
CREATE TABLE IF NOT EXISTS users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS orders (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id), total_cents integer NOT NULL, status text NOT NULL);
INSERT INTO users (id, email) VALUES (1, 'thandi@example.com'), (2, 'sipho@example.com'), (3, 'lerato@example.com') ON CONFLICT (id) DO NOTHING;
INSERT INTO orders (id, user_id, total_cents, status) VALUES (1, 1, 12999, 'paid'), (2, 1, 4500, 'shipped'), (3, 2, 899, 'paid'), (4, 3, 25000, 'refunded') ON CONFLICT (id) DO NOTHING;
`;

/** .NET ticks, as automatic backup names use them. */
function ticks(date: Date): string {
  return (BigInt(date.getTime()) * 10_000n + 621_355_968_000_000_000n).toString();
}

/** The Microsoft.DBforPostgreSQL provider. */
export class PostgresFlexibleProvider implements SandboxProvider {
  readonly name = 'Microsoft.DBforPostgreSQL';
  readonly types = [SERVERS] as const;
  private readonly servers = new ResourceStore<PostgresServerState>();

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return this.servers.all().map((resource) => listedOf(resource, SERVERS));
  }

  async seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): Promise<void> {
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(serverSpecSchema, world, resource);
      const count = spec.backups.count ?? Math.max(1, Math.floor((spec.backupRetentionDays * 24) / spec.backups.intervalHours));
      const backups: BackupState[] = Array.from({ length: count }, (_, index) => {
        const completed = hoursBefore(now, spec.backups.newestHoursAgo + index * spec.backups.intervalHours);
        return { name: `backup_${ticks(completed)}`, completed, backupType: 'Full', source: 'Automatic' };
      });
      const server: PostgresServerState = {
        ...baseOf(world, resource, SERVERS),
        created: daysBefore(now, spec.createdDaysAgo),
        restoredFrom: undefined,
        version: spec.version,
        sku: spec.sku,
        administratorLogin: spec.administratorLogin,
        administratorPassword: spec.administratorPassword ?? `Sbx-${randomBytes(18).toString('base64url')}`,
        state: spec.state,
        storageSizeGB: spec.storageSizeGB,
        backupRetentionDays: spec.backupRetentionDays,
        geoRedundantBackup: spec.geoRedundantBackup,
        earliestRestoreOverride: spec.earliestRestoreHoursAgo === undefined ? undefined : hoursBefore(now, spec.earliestRestoreHoursAgo),
        highAvailability: spec.highAvailability,
        publicNetworkAccess: spec.publicNetworkAccess,
        databaseName: spec.databaseName,
        backups,
        sandboxDatabase: undefined,
      };
      if (context.postgres !== undefined) {
        server.sandboxDatabase = await context.postgres.ensureServer({
          serverName: server.name,
          adminUser: server.administratorLogin,
          adminPassword: server.administratorPassword,
          seedSql: SEED_SQL,
          databaseAliases: [server.databaseName],
        });
        this.syncAvailability(server, context);
      }
      this.servers.add(server);
    }
  }

  /** A server by ARM coordinates (tests and mutation handlers). */
  getServer(subscriptionId: string, resourceGroup: string, name: string): PostgresServerState | undefined {
    return this.servers.get(subscriptionId, resourceGroup, SERVERS, name);
  }

  /** A server by name (server names are globally unique, as their DNS names are). */
  getServerByName(name: string): PostgresServerState | undefined {
    return this.servers.all().find((server) => server.name.toLowerCase() === name.toLowerCase());
  }

  /** A server by its FQDN (`{name}.postgres.database.azure.com`), e.g. the host of a `DATABASE_URL`. */
  getServerByFqdn(fqdn: string): PostgresServerState | undefined {
    return this.servers.all().find((server) => postgresFqdn(server.name) === fqdn.toLowerCase());
  }

  /** The earliest point a restore can target: the override, or the oldest backup inside retention. */
  earliestRestoreDate(server: PostgresServerState, now: Date): Date {
    if (server.earliestRestoreOverride !== undefined) return server.earliestRestoreOverride;
    const windowStart = daysBefore(now, server.backupRetentionDays);
    const inWindow = server.backups.filter((backup) => backup.completed >= windowStart);
    const oldest = inWindow[inWindow.length - 1];
    return oldest?.completed ?? now;
  }

  /** Per server (lower-cased id): password changes still to be acknowledged without being applied. */
  private readonly ignoredPasswordChanges = new Map<string, number>();

  /**
   * `POST /_sandbox/postgres` `{ server: <name>, ignorePasswordChanges: <n> }`: an injectable
   * failure of the next `n` password resets of a server: the operation ends `Succeeded` but the
   * role keeps its password (a reset that did not take), so a login with the new one fails.
   * `0` clears it. Failed operations are injected with faults (`failLongRunningOperation`).
   */
  controlRoutes(): readonly ControlRoute[] {
    return [
      {
        method: 'POST',
        name: 'postgres',
        handler: (request) => {
          const parsed = z.object({ server: z.string().min(1), ignorePasswordChanges: z.number().int().min(0).max(100) }).strict().safeParse(request.body);
          const server = parsed.success ? this.servers.all().find((candidate) => candidate.name.toLowerCase() === parsed.data.server.toLowerCase()) : undefined;
          if (!parsed.success || server === undefined) {
            return json(400, { error: { code: 'InvalidControlRequest', message: `POST /_sandbox/postgres: expected {"server": <a sandbox server name>, "ignorePasswordChanges": <0-100>}, found ${JSON.stringify(request.body ?? null).slice(0, 200)}` } });
          }
          this.ignoredPasswordChanges.set(idKey(server.id), parsed.data.ignorePasswordChanges);
          return json(200, { server: server.name, ignorePasswordChanges: parsed.data.ignorePasswordChanges });
        },
      },
    ];
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.DBforPostgreSQL';
    const server = `${rg}/flexibleServers/{name}`;
    const read = armRead;
    const write = (method: RouteDefinition['method'], pattern: string, operationId: string, handler: RouteDefinition['handler']): RouteDefinition => ({
      host: 'arm',
      method,
      pattern,
      throttle: 'write',
      operationId,
      handler,
    });
    return [
      read('/subscriptions/{subscriptionId}/providers/Microsoft.DBforPostgreSQL/flexibleServers', `${SERVERS}.list`, (request, context) =>
        armPage(request, context, this.servers.list(param(request, 'subscriptionId')).map((s) => this.serverJson(s, context))),
      ),
      read(`${rg}/flexibleServers`, `${SERVERS}.listByResourceGroup`, (request, context) =>
        armPage(
          request,
          context,
          this.servers.list(param(request, 'subscriptionId'), param(request, 'resourceGroup')).map((s) => this.serverJson(s, context)),
        ),
      ),
      read(server, `${SERVERS}.get`, (request, context) => this.servers.serve(SERVERS, request, context, (found) => json(200, this.serverJson(found, context)))),
      write('PUT', server, `${SERVERS}.create`, (request, context) => this.create(request, context)),
      write('PATCH', server, `${SERVERS}.update`, (request, context) => this.servers.serve(SERVERS, request, context, (found) => this.update(found, request, context))),
      write('DELETE', server, `${SERVERS}.delete`, (request, context) => {
        const found = this.getServer(param(request, 'subscriptionId'), param(request, 'resourceGroup'), param(request, 'name'));
        // ARM answers the delete of a resource that does not exist with 204.
        return found === undefined ? { status: 204 } : this.remove(found, context);
      }),
      read(`${server}/backups`, `${SERVERS}/backups.listByServer`, (request, context) =>
        this.servers.serve(SERVERS, request, context, (found) => armPage(request, context, found.backups.map((backup) => this.backupJson(found, backup)))),
      ),
      write('POST', `${server}/restart`, `${SERVERS}.restart`, (request, context) => this.servers.serve(SERVERS, request, context, (found) => this.restart(found, context))),
      read(`${server}/backups/{backupName}`, `${SERVERS}/backups.get`, (request, context) =>
        this.servers.serve(SERVERS, request, context, (found) => {
          const backupName = param(request, 'backupName');
          const backup = found.backups.find((candidate) => candidate.name === backupName);
          return backup === undefined
            ? resourceNotFound(context, `${SERVERS}/backups`, `${found.name}/${backupName}`, found.resourceGroup)
            : json(200, this.backupJson(found, backup));
        }),
      ),
      // Name checks are POSTs that only read, as ARM throttles them.
      read(
        '/subscriptions/{subscriptionId}/providers/Microsoft.DBforPostgreSQL/checkNameAvailability',
        'Microsoft.DBforPostgreSQL/checkNameAvailability',
        (request, context) => this.checkNameAvailability(request, context),
        'POST',
      ),
      read(
        '/subscriptions/{subscriptionId}/providers/Microsoft.DBforPostgreSQL/locations/{location}/checkNameAvailability',
        'Microsoft.DBforPostgreSQL/locations/checkNameAvailability',
        (request, context) => this.checkNameAvailability(request, context),
        'POST',
      ),
    ];
  }

  /** Tells the front door whether the server takes connections in its current state. */
  private syncAvailability(server: PostgresServerState, context: ProviderContext): void {
    const accepting = server.state === 'Ready' || server.state === 'Updating';
    context.postgres?.setAvailability(server.name, accepting ? { accepting: true } : { accepting: false, reason: `its state is ${server.state}` });
  }

  private setState(server: PostgresServerState, state: string, context: ProviderContext): void {
    server.state = state;
    this.syncAvailability(server, context);
  }

  /** `NameAvailability_CheckGlobally` / `_CheckWithLocation`: `{ name, type }` → `{ nameAvailable, reason?, message? }`. */
  private checkNameAvailability(request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const body = z.object({ name: z.string(), type: z.string().optional() }).safeParse(request.body);
    if (!body.success) return context.armError(400, 'InvalidRequestContent', 'The request body must be {"name": "<server name>", "type": "Microsoft.DBforPostgreSQL/flexibleServers"}.');
    const problem = serverNameProblem(body.data.name);
    if (problem !== undefined) return json(200, { name: body.data.name, type: SERVERS, nameAvailable: false, reason: 'Invalid', message: problem });
    if (this.getServerByName(body.data.name) !== undefined) {
      return json(200, { name: body.data.name, type: SERVERS, nameAvailable: false, reason: 'AlreadyExists', message: `Specified server name '${body.data.name}' is already used. Please use a different name and try again.` });
    }
    return json(200, { name: body.data.name, type: SERVERS, nameAvailable: true });
  }

  /**
   * `Servers_Create` with `createMode: PointInTimeRestore`. Everything Azure checks before
   * accepting is checked here, answering 400/404/409 with nothing created: the name (valid and
   * free across every subscription, as DNS names are), the source (exists, not being created or
   * deleted), the point (ISO 8601, within earliestRestoreDate..now on the sandbox clock) and the
   * location (the source's: a point-in-time restore stays in the region). The new server takes
   * the source's configuration (SKU unless given, storage, version, retention, redundancy, admin
   * login, tags unless given) without high availability, shows `state: Provisioning`, and after
   * the operation's duration holds the source's data as of the point. A failed operation
   * (injected fault, or the restore itself failing) leaves no server behind.
   */
  private create(request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const subscriptionId = param(request, 'subscriptionId');
    const resourceGroup = param(request, 'resourceGroup');
    const name = param(request, 'name');
    const existing = this.getServer(subscriptionId, resourceGroup, name);
    const parsed = createBodySchema.safeParse(request.body);
    if (!parsed.success) {
      return context.armError(400, 'InvalidRequestContent', `The request content was invalid: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; ')}.`);
    }
    const body = parsed.data;
    if (body.properties.createMode !== 'PointInTimeRestore') {
      if (existing !== undefined) return context.armError(400, 'NotSupported', `The sandbox updates servers with PATCH (Servers_Update) only; PUT with createMode '${body.properties.createMode}' on existing server '${name}' is not served.`);
      return context.armError(400, 'NotSupported', `The sandbox creates servers by point-in-time restore only (createMode 'PointInTimeRestore'), found createMode '${body.properties.createMode}'.`);
    }
    const nameProblem = serverNameProblem(name);
    if (nameProblem !== undefined) return context.armError(400, 'InvalidServerName', nameProblem);
    if (existing !== undefined || this.getServerByName(name) !== undefined) {
      return context.armError(409, 'ServerNameAlreadyExists', `Specified server name '${name}' is already used. Please use a different name and try again.`);
    }
    const sourceId = body.properties.sourceServerResourceId;
    if (sourceId === undefined || sourceId === '') {
      return context.armError(400, 'MissingRequiredParameter', "The 'sourceServerResourceId' property is required when 'createMode' is 'PointInTimeRestore'.");
    }
    const source = this.servers.all().find((candidate) => idKey(candidate.id) === idKey(sourceId));
    if (source === undefined) {
      return context.armError(404, 'SourceServerNotFound', `The source server '${sourceId}' of the point-in-time restore was not found.`);
    }
    if (source.state === 'Provisioning' || source.state === 'Dropping') {
      return context.armError(409, 'ServerIsBusy', `The source server '${source.name}' cannot be restored while its state is ${source.state}.`);
    }
    const pointText = body.properties.pointInTimeUTC;
    const point = pointText === undefined ? undefined : new Date(pointText);
    if (pointText === undefined || point === undefined || Number.isNaN(point.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(pointText)) {
      return context.armError(400, 'InvalidRestorePointInTime', `The 'pointInTimeUTC' property must be an ISO 8601 date and time when 'createMode' is 'PointInTimeRestore', found '${pointText ?? ''}'.`);
    }
    const now = context.now();
    const earliest = this.earliestRestoreDate(source, now);
    if (point.getTime() < earliest.getTime() || point.getTime() > now.getTime()) {
      return context.armError(
        400,
        'InvalidRestorePointInTime',
        `The restore point '${point.toISOString()}' is outside the restore window of server '${source.name}': expected a time between the earliest restore date ${earliest.toISOString()} and now (${now.toISOString()}).`,
      );
    }
    const location = (value: string): string => value.toLowerCase().replace(/\s+/g, '');
    if (location(body.location) !== location(source.location)) {
      return context.armError(
        400,
        'InvalidLocation',
        `A point-in-time restore creates the server in the source server's region: expected location '${source.location}', found '${body.location}'. Use createMode 'GeoRestore' for another region.`,
      );
    }
    const server: PostgresServerState = {
      id: armId(subscriptionId, resourceGroup, SERVERS, name),
      subscriptionId,
      resourceGroup,
      name,
      location: source.location,
      tags: { ...(body.tags ?? source.tags) },
      tenantId: source.tenantId,
      created: now,
      restoredFrom: { sourceServerResourceId: source.id, pointInTime: point },
      version: source.version,
      sku: body.sku ?? { ...source.sku },
      administratorLogin: source.administratorLogin,
      // The admin role is part of the data: the restored server has the source's password as of the point.
      administratorPassword: source.administratorPassword,
      state: 'Provisioning',
      storageSizeGB: source.storageSizeGB,
      backupRetentionDays: source.backupRetentionDays,
      geoRedundantBackup: source.geoRedundantBackup,
      earliestRestoreOverride: undefined,
      highAvailability: 'Disabled',
      publicNetworkAccess: source.publicNetworkAccess,
      databaseName: source.databaseName,
      backups: [],
      sandboxDatabase: undefined,
    };
    const passwordAtPoint = this.passwordAt(source, point);
    this.servers.add(server);
    context.event('postgres.restore.accepted', { server: server.id, source: source.id, pointInTime: point.toISOString() });
    return context
      .startOperation({
        operationId: `${SERVERS}.create`,
        resourceId: server.id,
        run: async () => {
          if (context.postgres !== undefined) {
            server.sandboxDatabase = await context.postgres.restoreServer({
              sourceServer: source.name,
              targetServer: server.name,
              pointInTime: context.realTimeAt(point),
              databaseAliases: [server.databaseName],
            });
          }
          const completed = context.now();
          server.administratorPassword = passwordAtPoint;
          server.created = completed;
          // The first backup of a new server is taken right after it is created.
          server.backups = [{ name: `backup_${ticks(completed)}`, completed, backupType: 'Full', source: 'Automatic' }];
          this.setState(server, 'Ready', context);
          context.event('postgres.restore.completed', { server: server.id, source: source.id, pointInTime: point.toISOString() });
        },
        onFailed: () => {
          this.servers.remove(server.id);
          context.event('postgres.restore.failed', { server: server.id, source: source.id });
        },
      })
      .accepted();
  }

  /** The admin password a server had at a sandbox time (its password history, newest last). */
  private passwordAt(server: PostgresServerState, time: Date): string {
    const history = this.passwordHistory.get(idKey(server.id)) ?? [];
    let password = history[0]?.password ?? server.administratorPassword;
    for (const entry of history) if (entry.from.getTime() <= time.getTime()) password = entry.password;
    return password;
  }

  /** Every admin password each server has had since seeding, with the sandbox time it was set. */
  private readonly passwordHistory = new Map<string, { from: Date; password: string }[]>();

  /**
   * `Servers_Update` (PATCH): a long-running operation (202; the SDK reads the final state from
   * the server) during which the server reports `state: Updating`. Applies
   * `administratorLoginPassword` (validated as Azure validates it), which really changes the
   * admin role's password in the embedded PostgreSQL when the operation completes, and `tags`,
   * which replace the tags. Refused at once (nothing changes): a bad body or password with 400,
   * a server that is not `Ready` with 409 `ServerIsNotReady`. A failed operation changes
   * nothing and returns it to `Ready`. Other fields of the body are accepted and ignored; each
   * change has its own function beside {@link passwordChange}.
   */
  private update(server: PostgresServerState, request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = updateBodySchema.safeParse(request.body);
    if (!parsed.success) {
      return context.armError(400, 'InvalidRequestContent', `The request content was invalid: expected a ServerForPatch body, found: ${describeIssues(parsed.error)}.`);
    }
    const sku = this.skuChange(server, parsed.data.sku, context);
    if (sku !== undefined && 'status' in sku) return sku;
    const password = this.passwordChange(server, parsed.data.properties?.administratorLoginPassword, context);
    if (password !== undefined && typeof password !== 'string') return password;
    const tags = parsed.data.tags;
    const retentionDays = parsed.data.properties?.backup?.backupRetentionDays;
    if (server.state !== 'Ready') {
      return context.armError(409, 'ServerIsNotReady', `Update Server can only be performed on Ready servers. Server Name = ${server.name}, Current Server State = ${server.state}`);
    }
    const origin = armEventOrigin(request, context);
    return context
      .startOperation({
        operationId: `${SERVERS}.update`,
        resourceId: server.id,
        onStart: () => {
          this.setState(server, 'Updating', context);
        },
        run: async () => {
          if (sku !== undefined) {
            context.event('postgres.update.sku', { resourceId: server.id, before: server.sku, after: sku.sku });
            server.sku = { ...sku.sku };
          }
          const ignored = this.ignoredPasswordChanges.get(idKey(server.id)) ?? 0;
          if (password !== undefined && ignored > 0) {
            // The injected failure: Succeeded, yet the role keeps its password.
            this.ignoredPasswordChanges.set(idKey(server.id), ignored - 1);
            context.event('postgres.password.ignored', { server: server.id });
          } else if (password !== undefined) {
            await context.postgres?.setAdminPassword(server.name, server.administratorLogin, password);
            const history = this.passwordHistory.get(idKey(server.id)) ?? [{ from: server.created, password: server.administratorPassword }];
            history.push({ from: context.now(), password });
            this.passwordHistory.set(idKey(server.id), history);
            server.administratorPassword = password;
            context.event('postgres.password.changed', { server: server.id });
          }
          if (tags !== undefined) server.tags = { ...tags };
          if (retentionDays !== undefined) {
            context.event('postgres.update.backupRetention', { resourceId: server.id, before: server.backupRetentionDays, after: retentionDays });
            server.backupRetentionDays = retentionDays;
          }
          this.setState(server, 'Ready', context);
          publishArmEvent(context, server, { kind: 'Write', operationName: `${SERVERS}/write`, origin });
        },
        onFailed: () => {
          this.setState(server, 'Ready', context);
        },
      })
      .accepted();
  }

  /** The compute change of an update, the 400 refusing it, or undefined when the body changes no SKU. */
  private skuChange(
    server: PostgresServerState,
    sku: { name: string; tier?: 'Burstable' | 'GeneralPurpose' | 'MemoryOptimized' | undefined } | undefined,
    context: ProviderContext,
  ): { sku: { name: string; tier: string } } | SandboxResponse | undefined {
    if (sku === undefined) return undefined;
    const family = SKU_TIERS.find((candidate) => candidate.pattern.test(sku.name));
    if (family === undefined) {
      return context.armError(400, 'InvalidSkuName', `The SKU '${sku.name}' is not a PostgreSQL flexible server compute size: expected e.g. Standard_B2ms, Standard_D4ds_v5 or Standard_E4ds_v5.`);
    }
    if (sku.tier !== undefined && family.tier !== sku.tier) {
      return context.armError(400, 'InvalidSkuTier', `The SKU '${sku.name}' belongs to the ${family.tier} tier, but the request names tier ${sku.tier}.`);
    }
    if (family.tier === 'Burstable' && server.highAvailability !== 'Disabled') {
      return context.armError(400, 'HighAvailabilityNotSupportedForBurstable', `Server ${server.name} has high availability (${server.highAvailability}), which the Burstable tier does not support: choose a General Purpose or Memory Optimized SKU, or disable high availability first.`);
    }
    return { sku: { name: sku.name, tier: family.tier } };
  }

  /** The new admin password of an update, the 400 refusing it, or undefined when the body sets none. */
  private passwordChange(server: PostgresServerState, password: string | undefined, context: ProviderContext): string | SandboxResponse | undefined {
    if (password === undefined) return undefined;
    const problem = passwordProblem(password, server.administratorLogin);
    return problem === undefined ? password : context.armError(400, 'PasswordNotComplex', problem);
  }

  /**
   * `Servers_Delete`: a long-running operation (202, final state via `Location`) during which
   * the server shows `state: Dropping` and refuses connections; its data goes when it completes.
   * A server being created or already being deleted answers 409 (nothing changes).
   */
  private remove(server: PostgresServerState, context: ProviderContext): SandboxResponse {
    if (server.state === 'Provisioning' || server.state === 'Dropping') {
      return context.armError(409, 'ServerIsBusy', `Server '${server.name}' cannot be deleted while its state is ${server.state}.`);
    }
    const previous = server.state;
    return context
      .startOperation({
        operationId: `${SERVERS}.delete`,
        resourceId: server.id,
        onStart: () => {
          this.setState(server, 'Dropping', context);
        },
        run: async () => {
          if (context.postgres?.connection(server.name) !== undefined) await context.postgres.dropServer(server.name);
          this.servers.remove(server.id);
          this.passwordHistory.delete(idKey(server.id));
          context.event('postgres.deleted', { server: server.id });
        },
        onFailed: () => {
          this.setState(server, previous, context);
        },
      })
      .accepted();
  }

  /**
   * `Servers_Restart`: a long-running operation (202 with `Azure-AsyncOperation` and
   * `Location`, final state via `Location`) during which the server reports `state:
   * Restarting`. As in Azure, only a `Ready` server restarts; any other state is refused with
   * `ServerIsNotReady` (Azure reports it on the operation; the sandbox answers 409 at once, so
   * nothing changes). A failed operation returns the server to `Ready`.
   */
  private restart(server: PostgresServerState, context: ProviderContext): SandboxResponse {
    if (server.state !== 'Ready') {
      return context.armError(
        409,
        'ServerIsNotReady',
        `Restart or Stop Server can only be performed on Started servers. Server Name = ${server.name}, Current Server State = ${server.state}`,
      );
    }
    return context
      .startOperation({
        operationId: `${SERVERS}.restart`,
        resourceId: server.id,
        onStart: () => {
          this.setState(server, 'Restarting', context);
        },
        run: () => {
          this.setState(server, 'Ready', context);
        },
        onFailed: () => {
          this.setState(server, 'Ready', context);
        },
      })
      .accepted();
  }

  private serverJson(server: PostgresServerState, context: ProviderContext): Record<string, unknown> {
    return {
      ...armEnvelope(server, SERVERS),
      sku: server.sku,
      systemData: systemData(server.created, server.created),
      properties: {
        administratorLogin: server.administratorLogin,
        version: server.version,
        minorVersion: '4',
        state: server.state,
        fullyQualifiedDomainName: postgresFqdn(server.name),
        storage: { storageSizeGB: server.storageSizeGB, autoGrow: 'Disabled', tier: 'P4', iops: 120, type: '' },
        authConfig: { activeDirectoryAuth: 'Disabled', passwordAuth: 'Enabled' },
        dataEncryption: { type: 'SystemManaged' },
        backup: {
          backupRetentionDays: server.backupRetentionDays,
          geoRedundantBackup: server.geoRedundantBackup,
          earliestRestoreDate: this.earliestRestoreDate(server, context.now()).toISOString(),
        },
        network: { publicNetworkAccess: server.publicNetworkAccess },
        highAvailability:
          server.highAvailability === 'Disabled'
            ? { mode: 'Disabled', state: 'NotEnabled' }
            : { mode: server.highAvailability, state: 'Healthy', standbyAvailabilityZone: '2' },
        maintenanceWindow: { customWindow: 'Disabled', dayOfWeek: 0, startHour: 0, startMinute: 0 },
        availabilityZone: '1',
        replicationRole: 'Primary',
        replicaCapacity: 5,
        replica: { role: 'Primary', capacity: 5 },
      },
    };
  }

  private backupJson(server: PostgresServerState, backup: BackupState): Record<string, unknown> {
    return {
      id: `${server.id}/backups/${backup.name}`,
      name: backup.name,
      type: `${SERVERS}/backups`,
      properties: { backupType: backup.backupType, completedTime: backup.completed.toISOString(), source: backup.source },
    };
  }

  snapshot(): unknown {
    return this.servers.all().map((server) => ({
      id: server.id,
      state: server.state,
      sku: server.sku,
      version: server.version,
      administratorLogin: server.administratorLogin,
      fullyQualifiedDomainName: postgresFqdn(server.name),
      // Where the embedded PostgreSQL really keeps it (clients go through the front door by FQDN).
      sandboxDatabase: server.sandboxDatabase ?? null,
      databaseName: server.databaseName,
      restoredFrom:
        server.restoredFrom === undefined
          ? null
          : { sourceServerResourceId: server.restoredFrom.sourceServerResourceId, pointInTime: server.restoredFrom.pointInTime.toISOString() },
      backupRetentionDays: server.backupRetentionDays,
      geoRedundantBackup: server.geoRedundantBackup,
      backups: server.backups.map((backup) => ({ name: backup.name, completed: backup.completed.toISOString() })),
    }));
  }
}
