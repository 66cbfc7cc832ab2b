/**
 * Microsoft.DBforPostgreSQL flexible servers and their automatic backups. When the engine
 * runs the embedded PostgreSQL, every server is backed by a real database (with a little seed
 * data) so restore and rotation runbooks can connect and query.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import {
  armEventOrigin,
  armPage,
  armEnvelope,
  armRead,
  baseOf,
  daysBefore,
  describeIssues,
  hoursBefore,
  json,
  param,
  parseSpec,
  publishArmEvent,
  resourceNotFound,
  ResourceStore,
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

/** What the sandbox reads of a `Servers_Update` body (ServerForPatch); other fields are accepted and ignored. */
const serverPatchSchema = z
  .object({
    /** SkuForPatch: a name (the tier follows from it), optionally with its tier. */
    sku: z.object({ name: z.string().min(1), tier: z.enum(['Burstable', 'GeneralPurpose', 'MemoryOptimized']).optional() }).loose().optional(),
  })
  .loose();

/** One automatic backup. */
export interface BackupState {
  readonly name: string;
  readonly completed: Date;
  readonly backupType: 'Full' | 'Customer On-Demand';
  readonly source: 'Automatic' | 'OnDemand';
}

/** A PostgreSQL flexible server. */
export interface PostgresServerState extends ArmResourceBase {
  readonly created: Date;
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
  /** The embedded PostgreSQL database backing this server (connect as `role`), when the engine runs one. */
  sandboxDatabase: { host: string; port: number; database: string; role: string } | undefined;
}

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
        const { database, role } = await context.postgres.ensureServer({
          serverName: server.name,
          adminUser: server.administratorLogin,
          adminPassword: server.administratorPassword,
          seedSql: SEED_SQL,
        });
        server.sandboxDatabase = { host: context.postgres.host, port: context.postgres.port, database, role };
      }
      this.servers.add(server);
    }
  }

  /** A server by ARM coordinates (tests and future mutation handlers). */
  getServer(subscriptionId: string, resourceGroup: string, name: string): PostgresServerState | undefined {
    return this.servers.get(subscriptionId, resourceGroup, SERVERS, name);
  }

  /** The earliest point a restore can target: the override, or the oldest backup inside retention. */
  earliestRestoreDate(server: PostgresServerState, now: Date): Date {
    if (server.earliestRestoreOverride !== undefined) return server.earliestRestoreOverride;
    const windowStart = daysBefore(now, server.backupRetentionDays);
    const inWindow = server.backups.filter((backup) => backup.completed >= windowStart);
    const oldest = inWindow[inWindow.length - 1];
    return oldest?.completed ?? now;
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.DBforPostgreSQL';
    const server = `${rg}/flexibleServers/{name}`;
    const read = armRead;
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
      read(`${server}/backups`, `${SERVERS}/backups.listByServer`, (request, context) =>
        this.servers.serve(SERVERS, request, context, (found) => armPage(request, context, found.backups.map((backup) => this.backupJson(found, backup)))),
      ),
      {
        host: 'arm',
        method: 'PATCH',
        pattern: server,
        throttle: 'write',
        operationId: `${SERVERS}.update`,
        handler: (request, context) => this.servers.serve(SERVERS, request, context, (found) => this.update(found, request, context)),
      },
      {
        host: 'arm',
        method: 'POST',
        pattern: `${server}/restart`,
        throttle: 'write',
        operationId: `${SERVERS}.restart`,
        handler: (request, context) => this.servers.serve(SERVERS, request, context, (found) => this.restart(found, context)),
      },
      read(`${server}/backups/{backupName}`, `${SERVERS}/backups.get`, (request, context) =>
        this.servers.serve(SERVERS, request, context, (found) => {
          const backupName = param(request, 'backupName');
          const backup = found.backups.find((candidate) => candidate.name === backupName);
          return backup === undefined
            ? resourceNotFound(context, `${SERVERS}/backups`, `${found.name}/${backupName}`, found.resourceGroup)
            : json(200, this.backupJson(found, backup));
        }),
      ),
    ];
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
          server.state = 'Restarting';
        },
        run: () => {
          server.state = 'Ready';
        },
        onFailed: () => {
          server.state = 'Ready';
        },
      })
      .accepted();
  }

  /**
   * `Servers_Update` (PATCH): a long-running operation (202 with `Azure-AsyncOperation` and
   * `Location`; the SDK reads the final state from the server) during which the server reports
   * `state: Updating`. Handles a compute change (`sku`, scale up or down): the SKU name must
   * belong to the tier given, and high availability needs General Purpose or Memory Optimized.
   * Refused at once (nothing changes): a bad body or SKU with 400, a server that is not `Ready`
   * with 409 `ServerIsNotReady`. Other fields of the body are each handled by their own
   * function (add them beside {@link skuChange}).
   */
  private update(server: PostgresServerState, request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = serverPatchSchema.safeParse(request.body);
    if (!parsed.success) {
      return context.armError(
        400,
        'InvalidRequestContent',
        `The request content was invalid: expected a ServerForPatch body, found: ${describeIssues(parsed.error)}.`,
      );
    }
    const sku = this.skuChange(server, parsed.data.sku, context);
    if (sku !== undefined && 'status' in sku) return sku;
    if (server.state !== 'Ready') {
      return context.armError(409, 'ServerIsNotReady', `Update Server can only be performed on Ready servers. Server Name = ${server.name}, Current Server State = ${server.state}`);
    }
    const origin = armEventOrigin(request, context);
    return context
      .startOperation({
        operationId: `${SERVERS}.update`,
        resourceId: server.id,
        onStart: () => {
          server.state = 'Updating';
        },
        run: () => {
          if (sku !== undefined) {
            context.event('postgres.update.sku', { resourceId: server.id, before: server.sku, after: sku.sku });
            server.sku = { ...sku.sku };
          }
          server.state = 'Ready';
          publishArmEvent(context, server, { kind: 'Write', operationName: `${SERVERS}/write`, origin });
        },
        onFailed: () => {
          server.state = 'Ready';
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

  private fqdn(server: PostgresServerState): string {
    // In the sandbox the server is reachable at the embedded PostgreSQL host; the port is in the snapshot.
    return server.sandboxDatabase?.host ?? `${server.name}.postgres.database.azure.com`;
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
        fullyQualifiedDomainName: this.fqdn(server),
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
      fullyQualifiedDomainName: this.fqdn(server),
      // Where the sandbox really serves this server (the FQDN above is this host; the port is only here).
      sandboxDatabase: server.sandboxDatabase ?? null,
      backupRetentionDays: server.backupRetentionDays,
      geoRedundantBackup: server.geoRedundantBackup,
      backups: server.backups.map((backup) => ({ name: backup.name, completed: backup.completed.toISOString() })),
    }));
  }
}
