/**
 * restoreOrchestrator through durable-functions' own replay in the local task hub, with the
 * real activities against the sandbox (real SDK clients, a real PostgreSQL point-in-time
 * restore, `pg` over the TLS front door): data as of the point, validation, the approval gate,
 * cutover with Key Vault references and health verification, every failure branch, invalid
 * input creating nothing, a planted canary never leaving Key Vault, and a crash at every step.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RestoreOutput } from '../../../src/orchestrators/restore.ts';
import { RESTORE_ORCHESTRATOR } from '../../../src/restore/names.ts';
import { RESTORE_CANARY as CANARY, RESTORE_RG as RG, RESTORE_SOURCE_ID as SOURCE_ID, useRestoreWorld } from '../../support/restore-world.ts';
import { isMutatingRequest, sandboxRequest, sandboxToken } from '../../support/sandbox.ts';


const world = useRestoreWorld({ entryPoint: 'test/fixtures/restore-app.ts', setupTimeoutMs: 60_000 });
const { sandbox, servers, sandboxNow, advance, api } = world;

/** A superuser-free connection to the source through the front door, as an app would connect. */
async function source(): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port: sandbox().postgres?.frontDoorPort, user: 'rsadmin', password: CANARY, database: 'app', ssl: { ca: sandbox().caPem, servername: 'psql-restore-prod.postgres.database.azure.com' } });
  await client.connect();
  return client;
}

/** Drives an instance on both clocks until `until` holds or it ends. */
function drive(id: string, until?: (phase: string | undefined) => boolean, stepMs?: number): Promise<void> {
  return world.drive(id, until, { stepMs });
}

function output(id: string): RestoreOutput {
  return world.output(id) as RestoreOutput;
}

/** Changes a server's admin password behind the automation's back (an app holding the old one can no longer log in). */
async function changePassword(server: string, password: string): Promise<void> {
  const token = await sandboxToken(sandbox(), 'https://management.azure.com/.default');
  const response = await sandboxRequest(sandbox(), { method: 'PATCH', url: `${RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/${server}?api-version=2025-08-01`, token, body: { properties: { administratorLoginPassword: password } } });
  expect(response.status, response.text).toBe(202);
  await advance(5_000);
}

/** The restore input a test starts on the hub. */
function restoreInput(name: string, point = 'latest'): { instanceId: string; input: unknown } {
  return { instanceId: `restore-${name}`, input: { request: { server: SOURCE_ID, point, newServerName: `psql-restore-${name}` }, cutover: true, trigger: 'http' } };
}

async function health(): Promise<number> {
  return (await sandboxRequest(sandbox(), { url: '/_hosts/app-restore-api.azurewebsites.net/health' })).status;
}

describe('restoreOrchestrator', () => {
  it('invalid input gets 400 with every problem and creates nothing', async () => {
    const before = await servers();
    const future = new Date(world.clock().now().getTime() + 3_600_000).toISOString();
    const cases: [unknown, RegExp][] = [
      [{ server: 'psql-nowhere', point: 'latest' }, /restore policy/],
      [{ server: SOURCE_ID, point: future }, /between the earliest restore date/],
      [{ server: SOURCE_ID, point: 'yesterday' }, /ISO 8601/],
      [{ server: SOURCE_ID, point: 'latest', name: 'Bad_Name' }, /lower-case letters/],
      [{ server: SOURCE_ID, point: 'latest', name: 'psql-restore-prod' }, /(source's own name|already in use)/],
      [{ server: SOURCE_ID }, /point/],
    ];
    for (const [body, message] of cases) {
      const answer = await api('POST', 'restores', body);
      expect(answer.status, JSON.stringify(answer.json)).toBe(400);
      expect(JSON.stringify(answer.json)).toMatch(message);
    }
    expect(await servers()).toEqual(before);
  });

  it('a plan (and the dry-run gate) validates and starts nothing', async () => {
    const before = await servers();
    const answer = await api('POST', 'restores', { server: 'psql-restore-prod', point: 'latest', mode: 'plan' });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ mode: 'plan', plan: { sourceServerId: SOURCE_ID } });
    expect(JSON.stringify(answer.json)).not.toContain(CANARY);
    expect(await servers()).toEqual(before);
  });

  it('restores the data as of the point, cuts the consumer over after approval, and it is healthy on the new server', async () => {
    const db = await source();
    await db.query(`INSERT INTO users (id, email) VALUES (101, 'before@example.com')`);
    const between = new Date((await sandboxNow()).getTime() + 5 * 60_000);
    await advance(20 * 60_000);
    await db.query(`INSERT INTO users (id, email) VALUES (102, 'after@example.com')`);
    await db.end();

    // Started on the hub directly: the HTTP starter validates against the wall clock, which the
    // virtual clocks of this test have left 20 minutes behind (the orchestration validates again).
    const id = 'restore-happy';
    world.host().durable.startNew(RESTORE_ORCHESTRATOR, { instanceId: id, input: { request: { server: SOURCE_ID, point: between.toISOString(), newServerName: 'psql-restore-happy' }, cutover: true, trigger: 'http' } });
    await drive(id, (phase) => phase === 'awaiting-approval');
    expect((await api('GET', `restores/${id}`)).json).toMatchObject({ done: false, phase: 'awaiting-approval' });

    // The restored server holds the source's data as of the point: 101, not 102.
    const restored = new pg.Client({ host: '127.0.0.1', port: sandbox().postgres?.frontDoorPort, user: 'rsadmin', password: CANARY, database: 'app', ssl: { ca: sandbox().caPem, servername: 'psql-restore-happy.postgres.database.azure.com' } });
    await restored.connect();
    const ids = (await restored.query<{ id: number }>('SELECT id FROM users WHERE id > 100 ORDER BY id')).rows.map((row) => row.id);
    await restored.end();
    expect(ids).toEqual([101]);

    expect((await api('POST', `restores/${id}/approve`, { by: 'oncall@example.com' })).status).toBe(202);
    await drive(id, undefined, 10_000);
    const result = output(id);
    expect(result.outcome, result.summary).toBe('cut-over');
    expect(result.evidence?.pass).toBe(true);
    expect(result.approval).toMatchObject({ decision: 'approved', by: 'oncall@example.com' });
    expect(result.cutover?.[0]?.newReference).toMatch(/^@Microsoft\.KeyVault\(VaultName=kv-restore-prod;SecretName=api-database-url;SecretVersion=[0-9a-f]+\)$/);
    expect(result.health?.[0]?.healthy).toBe(true);
    expect(await health()).toBe(200);
    expect((await api('POST', `restores/${id}/approve`)).status).toBe(409);
    // The old server is untouched and still there.
    expect(await servers()).toContain('psql-restore-prod');
    // The canary (the admin password) never reached the orchestration's input, output, status or history.
    const everything = JSON.stringify([world.host().durable.getStatus(id, { showHistory: true, showInput: true }), world.host().durable.history(id), world.host().logs]);
    expect(everything).not.toContain(CANARY);
    expect(everything).not.toContain(encodeURIComponent(CANARY));
  }, 120_000);

  it('rejection deletes the new server (onReject: delete)', async () => {
    const rejected = await api('POST', 'restores', { server: SOURCE_ID, point: 'latest', name: 'psql-restore-rejected' });
    const rejectedId = String(rejected.json.id);
    await drive(rejectedId, (phase) => phase === 'awaiting-approval');
    expect(await servers()).toContain('psql-restore-rejected');
    const reject = await api('POST', `restores/${rejectedId}/reject`, { reason: 'wrong point' });
    expect(reject.status, JSON.stringify(reject.json)).toBe(202);
    await drive(rejectedId);
    expect(output(rejectedId)).toMatchObject({ outcome: 'rejected', newServerKept: false, approval: { decision: 'rejected', reason: 'wrong point' } });
    expect(await servers()).not.toContain('psql-restore-rejected');

  }, 180_000);

  it('approval times out after 4 h: no cutover, the new server is kept', async () => {
    const timed = await api('POST', 'restores', { server: SOURCE_ID, point: 'latest', name: 'psql-restore-late' });
    const id = String(timed.json.id);
    await drive(id, (phase) => phase === 'awaiting-approval');
    await drive(id, undefined, 30 * 60_000);
    expect(output(id), JSON.stringify(output(id).evidence)).toMatchObject({ outcome: 'approval-timed-out', newServerKept: true, approval: { decision: 'timed-out' } });
    expect(await servers()).toContain('psql-restore-late');
  }, 120_000);

  it('a failed restore operation ends restore-failed and leaves no server', async () => {
    await sandbox().injectFault({ operationId: 'Microsoft.DBforPostgreSQL/flexibleServers.create', failLongRunningOperation: true, errorCode: 'RestoreFailed', message: 'restore failed on purpose' });
    const start = await api('POST', 'restores', { server: SOURCE_ID, point: 'latest', name: 'psql-restore-fails' });
    const id = String(start.json.id);
    await drive(id);
    const result = output(id);
    expect(result.outcome).toBe('restore-failed');
    expect(result.summary).toMatch(/restore failed on purpose|left no server/);
    expect(await servers()).not.toContain('psql-restore-fails');
  }, 120_000);

  it('consumers unhealthy on the new server: the previous DATABASE_URL is put back, they are healthy again, and it escalates', async () => {
    const { instanceId, input } = restoreInput('unhealthy');
    world.host().durable.startNew(RESTORE_ORCHESTRATOR, { instanceId, input });
    await drive(instanceId, (phase) => phase === 'awaiting-approval');
    // The new server stops accepting the password in Key Vault: the app cannot use it after the cutover.
    await changePassword('psql-restore-unhealthy', 'Another-Password-42!');
    world.host().durable.raiseEvent(instanceId, 'approve', { by: 'tests' });
    await drive(instanceId, undefined, 10_000);
    const result = output(instanceId);
    expect(result.outcome, result.summary).toBe('rolled-back');
    expect(result.health?.[0]?.healthy).toBe(false);
    expect(result.rollbackHealth?.[0]?.healthy).toBe(true);
    expect(await health()).toBe(200);
    expect(result.steps.map((step) => step.step)).toEqual(expect.arrayContaining(['cutover', 'verify', 'rollback', 'verify-rollback']));
  }, 120_000);

  it('restored data outside the tolerance ends validation-failed, with the counts as evidence, and no cutover', async () => {
    const db = await source();
    for (let index = 0; index < 12; index += 1) await db.query(`INSERT INTO users (id, email) VALUES ($1, $2)`, [300 + index, `late${index}@example.com`]);
    await db.end();
    const { instanceId, input } = restoreInput('stale');
    world.host().durable.startNew(RESTORE_ORCHESTRATOR, { instanceId, input });
    await drive(instanceId);
    const result = output(instanceId);
    expect(result.outcome).toBe('validation-failed');
    expect(result.evidence?.tables.find((table) => table.table === 'users')).toMatchObject({ pass: false });
    expect(result.cutover).toBeUndefined();
  }, 120_000);

  it('a crash at every step: one server, the consumer on the old or the new server and never broken, the same outcome', async () => {
    // Let 'latest' (now − 5 min) pass every row the earlier tests wrote, so validation passes.
    await advance(10 * 60_000);
    // One run that crashes once at every crash point it reaches (before and after each episode
    // commit, after each activity), each point identified by its kind, name and the instance's
    // history length there, so the re-run after a crash passes the point it crashed at.
    const { instanceId, input } = restoreInput('crash');
    const seen = new Set<string>();
    world.host().durable.setCrashPlan((point) => {
      if (point.instanceId !== instanceId) return false;
      const key = `${point.kind}|${point.name}|${world.host().durable.history(instanceId).current.length}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    world.host().durable.startNew(RESTORE_ORCHESTRATOR, { instanceId, input });
    for (let step = 0; step < 200; step += 1) {
      await world.host().idle();
      const status = world.host().durable.getStatus(instanceId);
      if (status !== undefined && !['Running', 'Pending'].includes(status.runtimeStatus)) break;
      if ((status?.customStatus as { phase?: string } | null)?.phase === 'awaiting-approval') world.host().durable.raiseEvent(instanceId, 'approve', { by: 'tests' });
      // Never broken: at every step the consumer is healthy, on the old or the new server (or restarting onto one).
      const probe = await sandboxRequest(sandbox(), { url: '/_hosts/app-restore-api.azurewebsites.net/health' });
      expect(probe.status === 200 || /restarting/.test(probe.text), `${probe.status} ${probe.text}`).toBe(true);
      await advance(10_000);
    }
    world.host().durable.setCrashPlan(undefined);
    const result = output(instanceId);
    expect(result.outcome, result.summary).toBe('cut-over');
    expect(world.host().durable.crashes.filter((point) => point.instanceId === instanceId).length).toBeGreaterThan(20);
    const kinds = new Set(world.host().durable.crashes.map((point) => point.kind));
    expect([...kinds].sort()).toEqual(['after-activity-run', 'after-episode-commit', 'before-episode-commit']);
    // No duplicate server: exactly one create was accepted, although the create activity ran again after its crash.
    const created = (await sandbox().requests()).filter((entry) => isMutatingRequest(entry) && entry.method === 'PUT' && entry.path.toLowerCase().endsWith('/flexibleservers/psql-restore-crash') && entry.status === 202);
    expect(created).toHaveLength(1);
    expect(await health()).toBe(200);
  }, 600_000);
});
