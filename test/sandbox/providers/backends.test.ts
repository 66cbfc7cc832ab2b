/**
 * Providers over the engine's real backends: flexible servers backed by the embedded PostgreSQL
 * (database, admin role, seed data, a working generated password) and storage accounts whose
 * blob endpoint is Azurite's.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../../sandbox/index.ts';
import { defaultProviders, PostgresFlexibleProvider, StorageAccountsProvider } from '../../../sandbox/providers/index.ts';

let sandbox: SandboxHandle;
const providers = defaultProviders();

beforeAll(async () => {
  sandbox = await startSandbox({
    providers,
    worlds: [fileURLToPath(new URL('../../../sandbox/worlds/lms.yaml', import.meta.url))],
  });
});

afterAll(async () => {
  await sandbox.stop();
});

it('connects to psql-lms-prod as its admin and reads the seed data', async () => {
  const postgres = providers.find((provider) => provider instanceof PostgresFlexibleProvider);
  const server = postgres?.getServer('4e4f3d85-a031-4dbf-8d88-4f313e914004', 'rg-lms-prod', 'psql-lms-prod');
  const database = server?.sandboxDatabase;
  expect(database).toMatchObject({ host: sandbox.postgres?.host, port: sandbox.postgres?.port });
  if (server === undefined || database === undefined) throw new Error('expected psql-lms-prod to be backed by the embedded PostgreSQL, found no database');
  const client = new pg.Client({ host: database.host, port: database.port, database: database.database, user: database.role, password: server.administratorPassword });
  await client.connect();
  try {
    const orders = await client.query<{ count: string }>('SELECT count(*) AS count FROM orders');
    expect(orders.rows[0]?.count).toBe('4');
    const users = await client.query<{ email: string }>('SELECT email FROM users ORDER BY id');
    expect(users.rows.map((row) => row.email)).toEqual(['thandi@example.com', 'sipho@example.com', 'lerato@example.com']);
  } finally {
    await client.end();
  }
  // The password lives only in provider state, never in the snapshot.
  expect(JSON.stringify(postgres?.snapshot())).not.toContain(server.administratorPassword);
});

it('reports the Azurite blob URL as the storage account blob endpoint', () => {
  const storage = providers.find((provider) => provider instanceof StorageAccountsProvider);
  const account = storage?.getAccount('4e4f3d85-a031-4dbf-8d88-4f313e914004', 'rg-lms-prod', 'stlmsprod');
  if (storage === undefined || account === undefined) throw new Error('expected stlmsprod in the lms world, found none');
  expect(storage.blobEndpointOf(account)).toBe(`${sandbox.azurite?.blobEndpoint ?? 'no azurite'}/stlmsprod/`);
});
