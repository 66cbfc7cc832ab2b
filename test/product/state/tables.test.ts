/**
 * The state tables (src/state/tables.ts) against Azurite's Table service, through the client
 * layer's table client with the sandbox credential and CA: where the state lives, ETag-conditional
 * writes, and read-modify-write that loses no update with many concurrent writers, each with
 * its own client set as separate app instances would have.
 */
import { describe, expect, it } from 'vitest';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { estateConfigSchema, type EstateConfig } from '../../../src/config/schema.ts';
import { SecretLeakError } from '../../../src/runs/secret-guard.ts';
import {
  createStateTables,
  hasStateStore,
  STATE_TABLES,
  StateConcurrencyError,
  StateConflictError,
  stateDestination,
  stateKey,
  StateStoreError,
  StateTable,
} from '../../../src/state/tables.ts';
import type { TableClient } from '@azure/data-tables';
import { useSandbox } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml'], postgres: false });
const STORAGE = '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-ops/providers/Microsoft.Storage/storageAccounts/stopsstate';
const TARGET = '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-prod/providers/Microsoft.App/containerApps/ca-user-service';

function configWith(state: Record<string, unknown>, runRecords: Record<string, unknown> = {}): EstateConfig {
  return estateConfigSchema.parse({ version: 1, estate: 'state-test', state, runRecords, targets: [{ id: TARGET }] });
}

async function generatedConfig(): Promise<EstateConfig> {
  const world = sandbox().worlds.find((entry) => entry.name === 'xshopai');
  if (world === undefined) throw new Error('xshopai world not loaded');
  return loadConfigFile(world.configFile);
}

async function withClients<T>(config: EstateConfig, count: number, fn: (clients: AzureClients[]) => Promise<T>): Promise<T> {
  const all = Array.from({ length: count }, () => createAzureClients(config.azure));
  try {
    return await fn(all);
  } finally {
    await Promise.all(all.map((clients) => clients.close()));
  }
}

describe('where the state lives', () => {
  it('state.tableServiceUrl, else state.storageAccountId, else the run-record account; none is an error', () => {
    expect(stateDestination(configWith({ tableServiceUrl: 'https://127.0.0.1:10002/acct', storageAccountId: STORAGE }))).toBe('https://127.0.0.1:10002/acct');
    expect(stateDestination(configWith({ storageAccountId: STORAGE }))).toBe('stopsstate');
    expect(stateDestination(configWith({}, { storageAccountId: STORAGE.replace('stopsstate', 'stopsruns') }))).toBe('stopsruns');
    expect(hasStateStore(configWith({}))).toBe(false);
    expect(() => stateDestination(configWith({}))).toThrow(StateStoreError);
    expect(() => stateDestination(configWith({}))).toThrow(/expected state.tableServiceUrl, state.storageAccountId or runRecords.storageAccountId/);
    // Only a blob URL for run records does not say where tables are.
    expect(hasStateStore(configWith({}, { blobServiceUrl: 'https://127.0.0.1:10000/acct' }))).toBe(false);
  });

  it('the sandbox points generated configs at Azurite tables, and the table endpoint is in the loopback check', async () => {
    const config = await generatedConfig();
    const azurite = sandbox().azurite;
    expect(config.state.tableServiceUrl).toBe(`${azurite?.tableEndpoint ?? ''}/stautopilotruns`);
    expect(config.azure.tableUrlTemplate).toBe(`${azurite?.tableEndpoint ?? ''}/{name}`);
    expect(() => estateConfigSchema.parse({ ...config, azure: { ...config.azure, tableUrlTemplate: 'https://{name}.table.core.windows.net' } })).toThrow(
      /expected a loopback address when sandboxTokenEndpoint is set/,
    );
  });

  it('the table endpoint of an account follows the cloud, or tableUrlTemplate', () => {
    expect(createAzureClients(configWith({}).azure).endpoints.tableUrl('stops')).toBe('https://stops.table.core.windows.net');
    const china = estateConfigSchema.parse({ version: 1, estate: 'x', azure: { cloud: 'AzureChinaCloud' }, targets: [{ id: TARGET }] });
    expect(createAzureClients(china.azure).endpoints.tableUrl('stops')).toBe('https://stops.table.core.chinacloudapi.cn');
  });
});

describe('conditional writes against Azurite', () => {
  it('creates the table on first use; create refuses an existing entity, replace and delete refuse a stale ETag', async () => {
    const config = await generatedConfig();
    await withClients(config, 1, async ([clients]) => {
      if (clients === undefined) throw new Error('no clients');
      const table = createStateTables(config, clients).table('conditional');
      const pk = stateKey(TARGET.toLowerCase());
      expect(pk).not.toContain('/');
      expect(await table.get(pk, 'restart')).toBeUndefined();
      const created = await table.create(pk, 'restart', { count: 1, lastAt: new Date('2026-03-01T00:00:00Z'), reason: 'first' });
      await expect(table.create(pk, 'restart', { count: 9 })).rejects.toBeInstanceOf(StateConflictError);
      const read = await table.get<{ count: number; lastAt: Date; reason: string }>(pk, 'restart');
      expect(read?.value).toEqual({ count: 1, lastAt: new Date('2026-03-01T00:00:00Z'), reason: 'first' });
      expect(read?.etag).toBe(created.etag);
      const replaced = await table.replace(created, { count: 2 });
      await expect(table.replace(created, { count: 3 })).rejects.toThrow(/expected the entity unchanged since ETag .* found it written by someone else \(HTTP 412\)/);
      await expect(table.delete(pk, 'restart', created.etag)).rejects.toBeInstanceOf(StateConflictError);
      expect((await table.get(pk, 'restart'))?.value).toEqual({ count: 2 });
      expect(await table.delete(pk, 'restart', replaced.etag)).toBe(true);
      expect(await table.delete(pk, 'restart')).toBe(false);
      // Every request drew on the storage account's budget (the one blob uses too).
      expect(clients.budgets.get('storage:stautopilotruns')?.stats().requests).toBeGreaterThanOrEqual(9);
    });
  });

  it('refuses what the Table service or the secret guard would not accept, before any request', async () => {
    const config = await generatedConfig();
    await withClients(config, 1, async ([clients]) => {
      if (clients === undefined) throw new Error('no clients');
      const table = createStateTables(config, clients).table('refusals');
      await expect(table.create('p', 'r', { password: 'hunter2-hunter2' })).rejects.toBeInstanceOf(SecretLeakError);
      await expect(table.create('p', 'r', { at: Date.now() })).rejects.toThrow(/expected a finite number within Int32 for whole numbers/);
      await expect(table.create('p', 'r', { etag: 'x' })).rejects.toThrow(/system property "etag"/);
      expect(() => createStateTables(config, clients).table('bad-name')).toThrow(/3-63 letters and digits/);
      expect(() => stateKey('x'.repeat(1025))).toThrow(/1-1024 characters/);
      expect(await table.get('p', 'r')).toBeUndefined();
    });
  });

  it('lists a partition in RowKey order, bounded', async () => {
    const config = await generatedConfig();
    await withClients(config, 1, async ([clients]) => {
      if (clients === undefined) throw new Error('no clients');
      const table = createStateTables(config, clients).table(STATE_TABLES.drillHistory);
      for (const day of ['2026-03-03', '2026-03-01', '2026-03-02']) await table.create('psql-lms-prod', day, { verdict: 'pass' });
      await table.create('other-server', '2026-03-01', { verdict: 'fail' });
      const all = await table.list('psql-lms-prod');
      expect(all).toMatchObject({ truncated: false });
      expect(all.rows.map((row) => row.rowKey)).toEqual(['2026-03-01', '2026-03-02', '2026-03-03']);
      const two = await table.list('psql-lms-prod', { maxRows: 2 });
      expect(two.rows).toHaveLength(2);
      expect(two.truncated).toBe(true);
    });
  });
});

describe('read-modify-write with concurrent writers', () => {
  it('6 app instances incrementing one counter 10 times each at once lose no update', async () => {
    const config = await generatedConfig();
    const writers = 6;
    const increments = 10;
    await withClients(config, writers, async (instances) => {
      const tables = instances.map((clients) => createStateTables(config, clients).table(STATE_TABLES.guardrails));
      const [first] = tables;
      if (first === undefined) throw new Error('no tables');
      await first.ensure();
      const pk = stateKey(TARGET.toLowerCase());
      let attempts = 0;
      await Promise.all(
        tables.map(async (table) => {
          for (let i = 0; i < increments; i += 1) {
            const result = await table.update<{ count: number }>(pk, 'restart:daily', (current) => ({ count: (current?.count ?? 0) + 1 }), { maxAttempts: 50, backoffMs: 5 });
            expect(result.written).toBe(true);
            attempts += result.attempts;
          }
        }),
      );
      const final = await first.get<{ count: number }>(pk, 'restart:daily');
      expect(final?.value.count).toBe(writers * increments);
      // The writers really raced: some rounds were lost and redone.
      expect(attempts).toBeGreaterThan(writers * increments);
    });
  });

  it('a change that returns undefined writes nothing; giving up after maxAttempts is a typed error', async () => {
    const config = await generatedConfig();
    await withClients(config, 2, async ([a, b]) => {
      if (a === undefined || b === undefined) throw new Error('no clients');
      const mine = createStateTables(config, a).table('giveup');
      await mine.create('p', 'breaker', { open: false });
      const untouched = await mine.update<{ open: boolean }>('p', 'breaker', (current) => (current?.open === false ? undefined : { open: false }));
      expect(untouched).toMatchObject({ written: false, attempts: 1 });
      // Another writer changes the entity between every read and write of ours: its table client
      // writes (unconditionally) just before each of our conditional replaces reaches the service.
      const raw = await b.tableClient(stateDestination(config), 'giveup');
      const racing = new StateTable(
        async () => {
          const real = await a.tableClient(stateDestination(config), 'giveup');
          return new Proxy(real, {
            get(target, property, receiver) {
              if (property !== 'updateEntity') return Reflect.get(target, property, receiver) as unknown;
              return async (...args: Parameters<TableClient['updateEntity']>) => {
                await raw.updateEntity({ partitionKey: 'p', rowKey: 'breaker', open: true }, 'Replace');
                return target.updateEntity(...args);
              };
            },
          });
        },
        'giveup',
        'racing',
      );
      let calls = 0;
      const update = racing.update<{ open: boolean }>('p', 'breaker', (current) => {
        calls += 1;
        return { open: !(current?.open ?? false) };
      }, { maxAttempts: 3, backoffMs: 1 });
      await expect(update).rejects.toBeInstanceOf(StateConcurrencyError);
      expect(calls).toBe(3);
      await expect(update).rejects.toThrow(/expected a conditional write to succeed within 3 attempts/);
    });
  });
});
