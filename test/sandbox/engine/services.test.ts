/**
 * The sandbox's child processes: embedded PostgreSQL behind the contract's PostgresBackend,
 * Azurite over HTTPS with sandbox OAuth tokens through the real @azure/storage-blob client,
 * and a stop that leaves no process or directory behind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient, type StoragePipelineOptions } from '@azure/storage-blob';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderContext, SandboxProvider } from '../../../sandbox/contract.ts';
import { startSandbox, type SandboxHandle } from '../../../sandbox/index.ts';
import { sandboxAgent, sandboxCredential } from '../../support/sandbox.ts';

/** Captures the provider context at seed time, so tests can reach the backends providers see. */
function createCaptureProvider(): SandboxProvider & { context: () => ProviderContext } {
  let captured: ProviderContext | undefined;
  return {
    name: 'Test.Capture',
    types: ['Microsoft.Storage/storageAccounts'],
    seed(_world, _resources, context) {
      captured = context;
    },
    routes: () => [],
    snapshot: () => ({}),
    context: () => {
      if (captured === undefined) throw new Error('the capture provider was not seeded');
      return captured;
    },
  };
}

let dir = '';
let sandbox: SandboxHandle;
const capture = createCaptureProvider();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-services-test-'));
  const world = path.join(dir, 'storage.yaml');
  await writeFile(
    world,
    [
      'name: storage-world',
      'description: One storage account.',
      'tenantId: 72f988bf-0000-4000-8000-00000000a001',
      'subscriptionId: 4e4f3d85-a031-4dbf-8d88-4f313e914004',
      'resources:',
      '  - { type: Microsoft.Storage/storageAccounts, resourceGroup: rg-s, name: stenginetest, location: westeurope }',
    ].join('\n'),
  );
  sandbox = await startSandbox({ worlds: [world], providers: [capture] });
});

afterAll(async () => {
  await sandbox.stop();
  await rm(dir, { recursive: true, force: true });
});

async function connect(database: string, user: string, password: string): Promise<pg.Client> {
  const postgres = sandbox.postgres;
  if (postgres === undefined) throw new Error('expected PostgreSQL to be running');
  const client = new pg.Client({ host: postgres.host, port: postgres.port, database, user, password });
  await client.connect();
  return client;
}

async function count(database: string, user: string, password: string): Promise<number> {
  const client = await connect(database, user, password);
  try {
    const result = await client.query<{ n: string }>('SELECT count(*) AS n FROM items');
    return Number(result.rows[0]?.n);
  } finally {
    await client.end();
  }
}

describe('PostgreSQL backend', () => {
  it('creates a database and admin role per server, idempotently, and runs the seed once', async () => {
    const backend = capture.context().postgres;
    if (backend === undefined) throw new Error('expected a PostgreSQL backend in the provider context');
    const created = await backend.ensureServer({
      serverName: 'psql-engine',
      adminUser: 'pgadmin',
      adminPassword: 'First-Secret-1',
      seedSql: 'CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2);',
    });
    expect(created).toMatchObject({ database: 'psql-engine', role: 'pgadmin@psql-engine' });
    await backend.ensureServer({ serverName: 'psql-engine', adminUser: 'pgadmin', adminPassword: 'First-Secret-1', seedSql: 'INSERT INTO items VALUES (3);' });
    expect(await count('psql-engine', 'pgadmin@psql-engine', 'First-Secret-1')).toBe(2);
    expect(await backend.query('psql-engine', 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);

    // The same admin login on another server is a different role with its own password.
    await backend.ensureServer({ serverName: 'psql-other', adminUser: 'pgadmin', adminPassword: 'Other-Secret-1' });
    await expect(connect('psql-engine', 'pgadmin@psql-other', 'Other-Secret-1')).rejects.toThrow(/permission denied|not permitted/);
  });

  it('restores a server as of a point in time into a cluster of its own, with its own database and role', async () => {
    const backend = capture.context().postgres;
    if (backend === undefined) throw new Error('expected a PostgreSQL backend');
    await backend.query('psql-engine', 'INSERT INTO items VALUES (10)');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const point = new Date();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await backend.query('psql-engine', 'INSERT INTO items VALUES (11); CREATE TABLE later (x int)');
    const restored = await backend.restoreServer({ sourceServer: 'psql-engine', targetServer: 'psql-engine-restored', pointInTime: point });
    expect(restored).toMatchObject({ database: 'psql-engine-restored', role: 'pgadmin@psql-engine-restored' });
    expect(restored.port).not.toBe(sandbox.postgres?.port);
    // The source's password as of the point, on the restored server's own role.
    const client = new pg.Client({ host: restored.host, port: restored.port, database: restored.database, user: restored.role, password: 'First-Secret-1' });
    await client.connect();
    try {
      expect((await client.query<{ id: number }>('SELECT id FROM items ORDER BY id')).rows.map((row) => row.id)).toEqual([1, 2, 10]);
      expect((await client.query<{ later: string | null }>("SELECT to_regclass('later')::text AS later")).rows[0]?.later).toBeNull();
      // Only the source's database came along, renamed.
      const databases = (await client.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY datname')).rows.map((row) => row.datname);
      expect(databases).toEqual(['postgres', 'psql-engine-restored', 'template0', 'template1']);
    } finally {
      await client.end();
    }
    // The source is untouched.
    expect(await backend.query('psql-engine', 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 4 }]);
    await expect(backend.restoreServer({ sourceServer: 'psql-missing', targetServer: 'psql-x', pointInTime: point })).rejects.toThrow(/psql-missing/);
    await backend.dropServer('psql-engine-restored');
    expect(backend.connection('psql-engine-restored')).toBeUndefined();
  });

  it('changes the admin password', async () => {
    const backend = capture.context().postgres;
    if (backend === undefined) throw new Error('expected a PostgreSQL backend');
    await backend.setAdminPassword('psql-engine', 'pgadmin', 'Second-Secret-2');
    await expect(connect('psql-engine', 'pgadmin@psql-engine', 'First-Secret-1')).rejects.toThrow(/password authentication failed/);
    expect(await count('psql-engine', 'pgadmin@psql-engine', 'Second-Secret-2')).toBe(4);
  });
});

describe('Azurite', () => {
  function blobClient(account: string, scopeOverride?: string): BlobServiceClient {
    const endpoint = capture.context().blobEndpointFor(account);
    if (endpoint === undefined) throw new Error('expected Azurite to be running');
    // StoragePipelineOptions does not declare `agent`, but storage-blob passes its options on
    // to the core pipeline, whose `agent` option carries the CA; this is verified right here.
    const options: StoragePipelineOptions & { agent: ReturnType<typeof sandboxAgent> } = {
      agent: sandboxAgent(sandbox),
      retryOptions: { maxTries: 1 },
      ...(scopeOverride === undefined ? {} : { audience: scopeOverride }),
    };
    return new BlobServiceClient(endpoint, sandboxCredential(sandbox), options);
  }

  it('serves blobs over HTTPS to the real SDK with a sandbox OAuth token', async () => {
    expect(sandbox.azurite?.blobEndpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const container = blobClient('stenginetest').getContainerClient('engine-test');
    await container.create();
    await container.getBlockBlobClient('hello.txt').upload('hello sandbox', 13);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual(['hello.txt']);
    const downloaded = await container.getBlobClient('hello.txt').downloadToBuffer();
    expect(downloaded.toString('utf8')).toBe('hello sandbox');
    // The run-record account exists too.
    await blobClient('stautopilotruns').getContainerClient('autopilot-runs').createIfNotExists();
  });

  it('rejects tokens for another audience', async () => {
    const container = blobClient('stenginetest', 'https://management.azure.com/.default').getContainerClient('engine-test-2');
    await expect(container.create()).rejects.toMatchObject({ statusCode: 403, message: expect.stringContaining('Server failed to authenticate') as string });
  });
});

describe('stop', () => {
  it('leaves no child process and no data directory behind', async () => {
    const second = await startSandbox({ worlds: [], providers: [] });
    const dataDir = path.dirname(second.caFile);
    const processes = (): string[] =>
      execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes(dataDir));
    // Both PostgreSQL (-D dataDir/postgres) and Azurite (--cert dataDir/...) name the directory.
    expect(processes().length).toBeGreaterThanOrEqual(2);
    await second.stop();
    expect(processes()).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });
});
