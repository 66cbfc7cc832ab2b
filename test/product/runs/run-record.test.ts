/**
 * Run records: the builder (statuses, counts, blob path), the secret guard, the structured log,
 * and a record written to Azurite through the sandbox (real SDK, HTTPS, OAuth) and read back.
 */
import { describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { ResourceConflictError } from '../../../src/azure/errors.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { emitRunRecord, memoryLogger } from '../../../src/runs/run-log.ts';
import { runRecordBlobName, startRun, type RunRecord } from '../../../src/runs/run-record.ts';
import { createRunRecordStore } from '../../../src/runs/run-record-store.ts';
import { findSecrets, isSecretFieldName, redactString, SecretLeakError } from '../../../src/runs/secret-guard.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SERVER = '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-lms-prod';
const ACCOUNT = '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.Storage/storageAccounts/stlmsprod';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMtYXV0b3BpbG90In0.c2lnbmF0dXJlLXZhbHVl';

function fixedClock(start: string): () => Date {
  let now = Date.parse(start);
  return () => {
    const current = new Date(now);
    now += 1000;
    return current;
  };
}

describe('run record builder', () => {
  it('records actions per target with outcomes, summary counts and a partial status', () => {
    const run = startRun({ runbook: 'revision-cleanup', trigger: 'timer', dryRun: true, estate: 'lms', now: fixedClock('2026-03-04T23:59:58Z') });
    run.target(SERVER, 'postgresFlexibleServer').action({ action: 'deactivate revision', outcome: 'planned', message: 'would deactivate r1', resource: 'r1' });
    run.target(SERVER).action({ action: 'deactivate revision', outcome: 'skipped', message: 'r2 has traffic' });
    run.target(ACCOUNT, 'storageAccount').fail(new Error('boom'));
    const record = run.finish();
    expect(record).toMatchObject({ schemaVersion: 1, runbook: 'revision-cleanup', trigger: 'timer', dryRun: true, estate: 'lms', status: 'partial' });
    expect(record.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(record.startedAt).toBe('2026-03-04T23:59:58.000Z');
    expect(Date.parse(record.endedAt)).toBeGreaterThan(Date.parse(record.startedAt));
    expect(record.targets.map((target) => [target.kind, target.status])).toEqual([
      ['postgresFlexibleServer', 'succeeded'],
      ['storageAccount', 'failed'],
    ]);
    expect(record.summary).toEqual({
      targets: 2,
      targetsSucceeded: 1,
      targetsFailed: 1,
      targetsSkipped: 0,
      actions: { planned: 1, applied: 0, skipped: 1, failed: 0 },
      findings: { info: 0, warn: 0, fail: 0 },
    });
    expect(runRecordBlobName(record)).toBe(`revision-cleanup/2026/03/04/${record.runId}.json`);
    expect(run.finish()).toBe(record);
  });

  it('is failed when every target failed or the run failed, succeeded when none did', () => {
    const allFailed = startRun({ runbook: 'inventory', trigger: 'cli', dryRun: true, estate: 'lms' });
    allFailed.target(SERVER).fail(new Error('x'));
    expect(allFailed.finish().status).toBe('failed');
    const runFailed = startRun({ runbook: 'inventory', trigger: 'http', dryRun: true, estate: 'lms' });
    expect(runFailed.finish({ error: new Error('config unreadable') })).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'config unreadable' } });
    const ok = startRun({ runbook: 'inventory', trigger: 'alert', dryRun: false, estate: 'lms' });
    ok.target(SERVER).read('read server', 'ok');
    expect(ok.finish().status).toBe('succeeded');
  });

  it('strips secrets while building: secret-named details and secret-looking text', () => {
    const run = startRun({ runbook: 'secret-rotation', trigger: 'orchestration', dryRun: false, estate: 'lms' });
    run.target(SERVER).action({
      action: 'reset admin password',
      outcome: 'applied',
      message: `new connection string Server=x;Password=hunter2;User=admin and token ${JWT} and https://acct.blob.core.windows.net/c?sv=1&sig=abcdef`,
      details: { password: 'hunter2', connectionString: 'Server=x;Password=hunter2', secretName: 'PostgresAdminPassword', keep: 5 },
    });
    run.target(SERVER).fail(new Error(`login failed for postgres://admin:hunter2@db.example:5432/lms`));
    const record = run.finish();
    const text = JSON.stringify(record);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain(JWT);
    expect(text).not.toContain('abcdef');
    const action = record.targets[0]?.actions[0];
    expect(action?.details).toEqual({ password: '[redacted]', connectionString: '[redacted]', secretName: 'PostgresAdminPassword', keep: 5 });
    expect(action?.message).toContain('Password=[redacted]');
    expect(findSecrets(record)).toEqual([]);
  });

  it('knows which field names and values are secret', () => {
    for (const name of ['password', 'storageAccountKey', 'client_secret', 'connectionString', 'apiKey', 'sasToken', 'JwtSecret', 'token'])
      expect(isSecretFieldName(name), name).toBe(true);
    for (const name of ['keep', 'keyVaultUrlTemplate', 'secretCount', 'secretName', 'tokenEndpoint', 'monkey', 'expiresOn'])
      expect(isSecretFieldName(name), name).toBe(false);
    expect(redactString('Bearer abcdefghijklmnopqrstuvwxyz0123')).toBe('Bearer [redacted]');
    expect(redactString('https://f.azurewebsites.net/api/x?code=abc123&name=y')).toBe('https://f.azurewebsites.net/api/x?code=[redacted]&name=y');
  });
});

describe('run log', () => {
  it('emits one JSON-ready entry per action and finding, then a summary, all carrying the run id', () => {
    const run = startRun({ runbook: 'backup-verify', trigger: 'timer', dryRun: true, estate: 'lms' });
    run.target(SERVER, 'postgresFlexibleServer').read('read server', 'retention 7 days', { backupRetentionDays: 7 });
    run.target(SERVER).finding({ severity: 'fail', code: 'backup.stale', message: 'newest backup is 74 h old' });
    const record = run.finish();
    const logger = memoryLogger();
    emitRunRecord(record, logger);
    expect(logger.entries.map((entry) => [entry.level, entry.entry.event])).toEqual([
      ['info', 'run.action'],
      ['error', 'run.finding'],
      ['info', 'run.completed'],
    ]);
    for (const { entry } of logger.entries) expect(entry.runId).toBe(record.runId);
    expect(logger.entries[0]?.entry['detail.backupRetentionDays']).toBe(7);
    expect(logger.entries[2]?.entry).toMatchObject({ status: 'succeeded', targets: 1, actionsApplied: 1 });
  });

  it('refuses to log a record that holds a secret', () => {
    const record = startRun({ runbook: 'inventory', trigger: 'cli', dryRun: true, estate: 'lms' }).finish();
    const leaky = { ...record, requestedBy: JWT } as RunRecord;
    expect(() => {
      emitRunRecord(leaky, memoryLogger());
    }).toThrow(SecretLeakError);
  });
});

describe('run record store (Azurite through the sandbox)', () => {
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/lms.yaml'], postgres: false });

  it('writes a record as JSON under <runbook>/<yyyy>/<mm>/<dd>/<runId>.json, creating the container, and reads it back', async () => {
    const world = sandbox().worlds[0];
    expect(world?.name).toBe('lms');
    const config = await loadConfigFile(world?.configFile ?? '');
    const clients = createAzureClients(config.azure);
    try {
      const store = await createRunRecordStore(config, clients);
      const run = startRun({ runbook: 'backup-verify', trigger: 'cli', dryRun: true, estate: config.estate });
      run.target(SERVER, 'postgresFlexibleServer').action({ action: 'check newest backup', outcome: 'applied', message: 'newest backup 74 h old' });
      const record = run.finish();
      const stored = await store.write(record);
      const day = record.startedAt.slice(0, 10).replaceAll('-', '/');
      expect(stored.container).toBe('autopilot-runs');
      expect(stored.blobName).toBe(`backup-verify/${day}/${record.runId}.json`);
      expect(stored.url.startsWith('https://127.0.0.1:')).toBe(true);
      expect(await store.read(stored.blobName)).toEqual(record);
      expect(await store.read(record)).toEqual(record);
      expect(await store.list('backup-verify/')).toContain(stored.blobName);
      // Evidence is never overwritten.
      await expect(store.write(record)).rejects.toBeInstanceOf(ResourceConflictError);
    } finally {
      await clients.close();
    }
  });

  it('refuses a record holding a secret and writes nothing', async () => {
    const config = await loadConfigFile(sandbox().worlds[0]?.configFile ?? '');
    const clients = createAzureClients(config.azure);
    try {
      const store = await createRunRecordStore(config, clients);
      const record = startRun({ runbook: 'leak-test', trigger: 'cli', dryRun: true, estate: config.estate }).finish();
      const leaky: RunRecord = {
        ...record,
        targets: [{ targetId: SERVER, status: 'succeeded', findings: [], actions: [{ action: 'x', outcome: 'applied', message: 'ok', at: record.startedAt, details: { token: 'abc' } }] }],
      };
      const error = await store.write(leaky).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(SecretLeakError);
      expect((error as SecretLeakError).message).toContain('targets[0].actions[0].details.token');
      expect((error as SecretLeakError).message).not.toContain('abc');
      expect(await store.list('leak-test/')).toEqual([]);
    } finally {
      await clients.close();
    }
  });
});
