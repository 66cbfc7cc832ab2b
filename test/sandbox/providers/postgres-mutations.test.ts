/**
 * Flexible server mutations through the real PostgreSQLManagementFlexibleServerClient over
 * HTTPS, checked with real `pg` connections through the sandbox's TLS front door (addressed
 * the way the product addresses it, `resolvePostgresEndpoint` with the generated config's
 * `postgresUrlTemplate`): a point-in-time restore holds exactly the rows committed up to the
 * point, Azure's validations refuse bad input and create nothing, faults fail the operation
 * and leave nothing behind, a restore can be driven by the sandbox clock, delete, and a PATCH
 * of the admin password that really changes the login.
 */
import { fileURLToPath } from 'node:url';
import { PostgreSQLManagementFlexibleServerClient, type Server } from '@azure/arm-postgresql-flexible';
import { RestError } from '@azure/core-rest-pipeline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePostgresEndpoint } from '../../../src/azure/cloud.ts';
import { azureSettingsSchema } from '../../../src/config/schema.ts';
import { startSandbox, type SandboxHandle } from '../../../sandbox/index.ts';
import { defaultProviders, PostgresFlexibleProvider } from '../../../sandbox/providers/index.ts';
import { sandboxCredential, sandboxRequest } from '../../support/sandbox.ts';

const SUBSCRIPTION = '4e4f3d85-a031-4dbf-8d88-4f313e914004';
const RG = 'rg-lms-prod';
const SOURCE = 'psql-lms-prod';
const SOURCE_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/${SOURCE}`;
const CREATE = 'Microsoft.DBforPostgreSQL/flexibleServers.create';

let sandbox: SandboxHandle;
let client: PostgreSQLManagementFlexibleServerClient;
const providers = defaultProviders();
const postgresProvider = providers.find((provider): provider is PostgresFlexibleProvider => provider instanceof PostgresFlexibleProvider);

beforeAll(async () => {
  sandbox = await startSandbox({ providers, worlds: [fileURLToPath(new URL('../../../sandbox/worlds/lms.yaml', import.meta.url))], lroDurationMs: 200 });
  client = new PostgreSQLManagementFlexibleServerClient(sandboxCredential(sandbox), SUBSCRIPTION, {
    endpoint: sandbox.baseUrl,
    tlsOptions: { ca: sandbox.caPem },
    retryOptions: { maxRetries: 0 },
  });
});

afterAll(async () => {
  await sandbox.stop();
});

function adminPassword(server: string): string {
  const state = postgresProvider?.getServerByName(server);
  if (state === undefined) throw new Error(`expected ${server} in the sandbox, found none`);
  return state.administratorPassword;
}

/** Connects as a client of the server would: its FQDN from ARM, through the configured address, TLS verified against the FQDN. */
async function connect(server: Server, password: string, database = 'lms'): Promise<pg.Client> {
  const settings = azureSettingsSchema.parse(sandbox.azureSettings());
  const endpoint = resolvePostgresEndpoint(settings, server.fullyQualifiedDomainName ?? '');
  const connection = new pg.Client({
    host: endpoint.host,
    port: endpoint.port,
    user: server.administratorLogin,
    password,
    database,
    ssl: { ca: sandbox.caPem, servername: endpoint.servername },
    connectionTimeoutMillis: 10_000,
  });
  await connection.connect();
  return connection;
}

async function rows(server: Server, password: string, sql: string): Promise<Record<string, unknown>[]> {
  const connection = await connect(server, password);
  try {
    return (await connection.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await connection.end();
  }
}

async function sandboxNow(): Promise<Date> {
  return new Date((await sandboxRequest(sandbox, { url: '/_sandbox/clock' })).json<{ now: string }>().now);
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function serverNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const server of client.servers.listByResourceGroup(RG)) names.push(server.name ?? '');
  return names.sort();
}

describe('point-in-time restore', () => {
  it('creates a new server that holds exactly the rows committed up to the point, with its own database and role', async () => {
    const source = await client.servers.get(RG, SOURCE);
    expect(source.fullyQualifiedDomainName).toBe('psql-lms-prod.postgres.database.azure.com');
    const password = adminPassword(SOURCE);
    const before = await connect(source, password);
    await before.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
    await before.query("INSERT INTO notes VALUES (1, 'one'), (2, 'two')");
    await before.end();
    await pause(300);
    const point = new Date();
    await pause(300);
    const after = await connect(source, password);
    await after.query("INSERT INTO notes VALUES (3, 'three')");
    await after.query("UPDATE notes SET body = 'ONE' WHERE id = 1");
    await after.query('DELETE FROM notes WHERE id = 2');
    await after.query('CREATE TABLE later (x int)');
    await after.end();

    const restored = await client.servers.beginCreateOrUpdateAndWait(
      RG,
      'psql-lms-restored',
      { location: 'westeurope', createMode: 'PointInTimeRestore', sourceServerResourceId: SOURCE_ID, pointInTimeUTC: point },
      { updateIntervalInMs: 100 },
    );
    expect(restored).toMatchObject({
      name: 'psql-lms-restored',
      state: 'Ready',
      fullyQualifiedDomainName: 'psql-lms-restored.postgres.database.azure.com',
      administratorLogin: 'lmsadmin',
      version: source.version,
      sku: source.sku,
      tags: source.tags,
      highAvailability: { mode: 'Disabled' },
    });
    expect(restored.backup?.earliestRestoreDate?.getTime()).toBeGreaterThanOrEqual(point.getTime());
    // The restored server's admin password is the source's at the point.
    expect(await rows(restored, password, 'SELECT id, body FROM notes ORDER BY id')).toEqual([
      { id: 1, body: 'one' },
      { id: 2, body: 'two' },
    ]);
    expect(await rows(restored, password, "SELECT to_regclass('later')::text AS later")).toEqual([{ later: null }]);
    expect(await rows(restored, password, 'SELECT count(*)::int AS n FROM orders')).toEqual([{ n: 4 }]);
    expect(await rows(restored, password, 'SELECT current_database() AS db, current_user AS me')).toEqual([{ db: 'psql-lms-restored', me: 'lmsadmin@psql-lms-restored' }]);
    // The source is untouched.
    expect(await rows(source, password, 'SELECT id, body FROM notes ORDER BY id')).toEqual([
      { id: 1, body: 'ONE' },
      { id: 3, body: 'three' },
    ]);
    const state = postgresProvider?.getServerByName('psql-lms-restored')?.sandboxDatabase;
    expect(state?.port).not.toBe(postgresProvider?.getServerByName(SOURCE)?.sandboxDatabase?.port);
  });

  it('restores a point before the sandbox started to the seeded data', async () => {
    const source = await client.servers.get(RG, SOURCE);
    const earliest = source.backup?.earliestRestoreDate;
    if (earliest === undefined) throw new Error('expected an earliestRestoreDate');
    const restored = await client.servers.beginCreateOrUpdateAndWait(
      RG,
      'psql-lms-early',
      { location: 'West Europe', createMode: 'PointInTimeRestore', sourceServerResourceId: SOURCE_ID, pointInTimeUTC: earliest },
      { updateIntervalInMs: 100 },
    );
    expect(await rows(restored, adminPassword(SOURCE), "SELECT to_regclass('notes')::text AS notes, (SELECT count(*)::int FROM users) AS users")).toEqual([{ notes: null, users: 3 }]);
    await client.servers.beginDeleteAndWait(RG, 'psql-lms-early', { updateIntervalInMs: 100 });
  });

  it('refuses what Azure refuses, with the error code and nothing created', async () => {
    const names = await serverNames();
    const now = await sandboxNow();
    const valid = { location: 'westeurope', createMode: 'PointInTimeRestore' as const, sourceServerResourceId: SOURCE_ID, pointInTimeUTC: new Date(now.getTime() - 60_000) };
    const refusals: [string, Partial<typeof valid> & Record<string, unknown>, number, string][] = [
      ['Psql-Upper', {}, 400, 'InvalidServerName'],
      ['ab', {}, 400, 'InvalidServerName'],
      ['-psql-dash', {}, 400, 'InvalidServerName'],
      [SOURCE, {}, 409, 'ServerNameAlreadyExists'],
      ['psql-lms-restored', {}, 409, 'ServerNameAlreadyExists'],
      ['psql-lms-future', { pointInTimeUTC: new Date(now.getTime() + 3_600_000) }, 400, 'InvalidRestorePointInTime'],
      ['psql-lms-ancient', { pointInTimeUTC: new Date(now.getTime() - 30 * 86_400_000) }, 400, 'InvalidRestorePointInTime'],
      ['psql-lms-elsewhere', { location: 'eastus' }, 400, 'InvalidLocation'],
      ['psql-lms-nosource', { sourceServerResourceId: SOURCE_ID.replace(SOURCE, 'psql-missing') }, 404, 'SourceServerNotFound'],
      ['psql-lms-default', { createMode: 'Create' as 'PointInTimeRestore' }, 400, 'NotSupported'],
    ];
    for (const [name, override, status, code] of refusals) {
      const error = await client.servers.beginCreateOrUpdate(RG, name, { ...valid, ...override }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error, name).toBeInstanceOf(RestError);
      expect((error as RestError).statusCode, name).toBe(status);
      expect((error as RestError).code, name).toBe(code);
    }
    expect(await serverNames()).toEqual(names);
  });

  it('answers the name checks', async () => {
    const taken = await client.nameAvailability.checkGlobally({ name: SOURCE, type: 'Microsoft.DBforPostgreSQL/flexibleServers' });
    expect(taken).toMatchObject({ nameAvailable: false, reason: 'AlreadyExists' });
    expect(await client.nameAvailability.checkWithLocation('westeurope', { name: 'psql-lms-free', type: 'Microsoft.DBforPostgreSQL/flexibleServers' })).toMatchObject({ nameAvailable: true });
    expect(await client.nameAvailability.checkGlobally({ name: 'Bad_Name', type: 'Microsoft.DBforPostgreSQL/flexibleServers' })).toMatchObject({ nameAvailable: false, reason: 'Invalid' });
  });

  it('fails the operation on an injected fault and leaves no server behind', async () => {
    await sandbox.injectFault({ operationId: CREATE, failLongRunningOperation: true, errorCode: 'RestoreFailed', message: 'The restore failed (injected).' });
    const poller = await client.servers.beginCreateOrUpdate(RG, 'psql-lms-failed', {
      location: 'westeurope',
      createMode: 'PointInTimeRestore',
      sourceServerResourceId: SOURCE_ID,
      pointInTimeUTC: new Date(Date.now() - 60_000),
    });
    expect((await client.servers.get(RG, 'psql-lms-failed')).state).toBe('Provisioning');
    await expect(poller.pollUntilDone()).rejects.toThrow(/RestoreFailed|restore failed/i);
    await expect(client.servers.get(RG, 'psql-lms-failed')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('takes as long on the sandbox clock as configured, and completes when the clock is advanced', async () => {
    await sandbox.setOperationDuration(CREATE, 2 * 3_600_000);
    try {
      const poller = await client.servers.beginCreateOrUpdate(RG, 'psql-lms-slow', {
        location: 'westeurope',
        createMode: 'PointInTimeRestore',
        sourceServerResourceId: SOURCE_ID,
        pointInTimeUTC: new Date(Date.now() - 60_000),
      });
      await pause(500);
      await poller.poll();
      expect(poller.isDone()).toBe(false);
      expect((await client.servers.get(RG, 'psql-lms-slow')).state).toBe('Provisioning');
      await sandbox.advanceClock(2 * 3_600_000);
      const done = await poller.pollUntilDone();
      expect(done.state).toBe('Ready');
    } finally {
      await sandbox.setOperationDuration(CREATE, undefined);
    }
  });

  it('deletes a restored server (Dropping meanwhile) and refuses its connections afterwards', async () => {
    const restored = await client.servers.get(RG, 'psql-lms-slow');
    const poller = await client.servers.beginDelete(RG, 'psql-lms-slow');
    expect((await client.servers.get(RG, 'psql-lms-slow')).state).toBe('Dropping');
    await poller.pollUntilDone();
    await expect(client.servers.get(RG, 'psql-lms-slow')).rejects.toMatchObject({ statusCode: 404 });
    await expect(connect(restored, adminPassword(SOURCE))).rejects.toThrow(/does not exist/);
    // Deleting what is gone is a no-op, as in ARM.
    await client.servers.beginDeleteAndWait(RG, 'psql-lms-slow');
  });
});

describe('admin password reset', () => {
  it('changes the real login when the operation completes, and only then', async () => {
    const server = await client.servers.get(RG, 'psql-lms-restored');
    const oldPassword = adminPassword(SOURCE);
    const poller = await client.servers.beginUpdate(RG, 'psql-lms-restored', { administratorLoginPassword: 'Rotated-Passw0rd!' });
    expect((await client.servers.get(RG, 'psql-lms-restored')).state).toBe('Updating');
    // The old password works until the operation completes.
    await expect(rows(server, oldPassword, 'SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
    const updated = await poller.pollUntilDone();
    expect(updated.state).toBe('Ready');
    await expect(connect(server, oldPassword)).rejects.toThrow(/password authentication failed for user "lmsadmin"/);
    await expect(rows(server, 'Rotated-Passw0rd!', 'SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
    // The source keeps its own password.
    await expect(rows(await client.servers.get(RG, SOURCE), oldPassword, 'SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
  });

  it('refuses a password Azure would refuse, and changes nothing', async () => {
    for (const weak of ['short1A', 'alllowercaseletters', 'lmsadmin-Passw0rd']) {
      await expect(client.servers.beginUpdate(RG, 'psql-lms-restored', { administratorLoginPassword: weak })).rejects.toMatchObject({ statusCode: 400, code: 'PasswordNotComplex' });
    }
    await expect(rows(await client.servers.get(RG, 'psql-lms-restored'), 'Rotated-Passw0rd!', 'SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
  });

  it('keeps the password when the operation fails', async () => {
    await sandbox.injectFault({ operationId: 'Microsoft.DBforPostgreSQL/flexibleServers.update', failLongRunningOperation: true });
    const poller = await client.servers.beginUpdate(RG, 'psql-lms-restored', { administratorLoginPassword: 'Never-Applied-9!' });
    await expect(poller.pollUntilDone()).rejects.toThrow();
    const server = await client.servers.get(RG, 'psql-lms-restored');
    expect(server.state).toBe('Ready');
    await expect(connect(server, 'Never-Applied-9!')).rejects.toThrow(/password authentication failed/);
    await expect(rows(server, 'Rotated-Passw0rd!', 'SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
  });
});

describe('front door', () => {
  it('refuses connections without TLS, as Azure does by default', async () => {
    const frontDoor = sandbox.postgres?.frontDoorPort ?? 0;
    const plain = new pg.Client({ host: '127.0.0.1', port: frontDoor, user: 'lmsadmin@psql-lms-prod', password: adminPassword(SOURCE), database: 'lms', ssl: false });
    await expect(plain.connect()).rejects.toThrow(/no pg_hba.conf entry .* no encryption/);
  });

  it('names the server by login@server when the client sends no TLS server name, and refuses other databases', async () => {
    const frontDoor = sandbox.postgres?.frontDoorPort ?? 0;
    const byLogin = new pg.Client({ host: '127.0.0.1', port: frontDoor, user: 'lmsadmin@psql-lms-prod', password: adminPassword(SOURCE), database: 'postgres', ssl: { ca: sandbox.caPem } });
    await byLogin.connect();
    expect((await byLogin.query<{ db: string }>('SELECT current_database() AS db')).rows).toEqual([{ db: SOURCE }]);
    await byLogin.end();
    const otherDatabase = new pg.Client({ host: '127.0.0.1', port: frontDoor, user: 'lmsadmin@psql-lms-prod', password: adminPassword(SOURCE), database: 'psql-lms-restored', ssl: { ca: sandbox.caPem } });
    await expect(otherDatabase.connect()).rejects.toThrow(/database "psql-lms-restored" does not exist/);
    const unknown = new pg.Client({ host: '127.0.0.1', port: frontDoor, user: 'x', password: 'y', ssl: { ca: sandbox.caPem, servername: 'psql-nowhere.postgres.database.azure.com' } });
    await expect(unknown.connect()).rejects.toThrow(/psql-nowhere.postgres.database.azure.com does not exist/);
  });
});
