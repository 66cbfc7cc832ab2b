/**
 * Restore drills through durable-functions' own replay in the local task hub, with the real
 * activities against the sandbox (real SDK clients, a real PostgreSQL point-in-time restore, `pg`
 * over the TLS front door): RTO and RPO measured from heartbeat rows, each failure branch with
 * the scratch server torn down, a timeout raced by a durable timer, a crash at every step with
 * one server and always a teardown, and the sweeper deleting only what drills created.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RestoreDrillOutput } from '../../../src/orchestrators/restore-drill.ts';
import { main } from '../../../src/cli/main.ts';
import { RESTORE_DRILL_ORCHESTRATOR } from '../../../src/restore/names.ts';
import { RESTORE_CANARY as CANARY, RESTORE_RG as RG, RESTORE_SOURCE_ID as SOURCE_ID, useRestoreWorld } from '../../support/restore-world.ts';
import { isMutatingRequest, sandboxRequest, sandboxToken } from '../../support/sandbox.ts';

const CREATE = 'Microsoft.DBforPostgreSQL/flexibleServers.create';

const world = useRestoreWorld({ entryPoint: 'test/fixtures/drill-app.ts', setupTimeoutMs: 180_000, syncBeforeEach: true });
const { sandbox, servers, sandboxNow, advance, api } = world;

/** Drives a drill, and stops too when one of its per-server sub-orchestrations reaches a matching phase; the sandbox clock also runs in real time, so the host's is kept within one step of it. */
function drive(id: string, until?: (phase: string | undefined) => boolean, stepMs?: number, maxSteps = 300): Promise<void> {
  return world.drive(id, until, { stepMs, maxSteps, children: true, sync: true });
}

function output(id: string): RestoreDrillOutput {
  return world.output(id) as RestoreDrillOutput;
}

/** The sweeper, invoked as its timer would be at the virtual clock's now (the like-with-like clock). */
async function sweep(): Promise<void> {
  const now = world.clock().now().toISOString();
  await world.host().invoke('drillSweeperTimer', { Schedule: { AdjustForDST: true }, ScheduleStatus: { Last: now, Next: now, LastUpdated: now }, IsPastDue: false });
}

function sweeperLines(): string {
  return world.host().logs
    .filter((entry) => entry.functionName === 'drillSweeperTimer')
    .map((entry) => entry.message)
    .join('\n');
}

/** Creates a server behind the automation's back, by point-in-time restore, with the given tags. */
async function plantServer(name: string, tags: Record<string, string>): Promise<void> {
  const token = await sandboxToken(sandbox(), 'https://management.azure.com/.default');
  const point = new Date((await sandboxNow()).getTime() - 6 * 60_000).toISOString();
  const response = await sandboxRequest(sandbox(), {
    method: 'PUT',
    url: `${RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/${name}?api-version=2025-08-01`,
    token,
    body: { location: 'westeurope', tags, properties: { createMode: 'PointInTimeRestore', sourceServerResourceId: SOURCE_ID, pointInTimeUTC: point } },
  });
  expect(response.status, response.text).toBeLessThan(300);
  await advance(5_000);
  await world.host().idle();
}

function createsOf(name: string): Promise<number> {
  return sandbox()
    .requests()
    .then((entries) => entries.filter((entry) => isMutatingRequest(entry) && entry.method === 'PUT' && entry.path.toLowerCase().endsWith(`/flexibleservers/${name}`) && entry.status === 202).length);
}

describe('restoreDrillOrchestrator', () => {
  it('refuses a server without a drill policy (400, nothing started) and plans without creating anything', async () => {
    const before = await servers();
    const refused = await api('POST', 'drills', { server: 'psql-nowhere' });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.json)).toMatch(/restore\.drill/);
    const plan = await api('POST', 'drills', { mode: 'plan' });
    expect(plan.status, JSON.stringify(plan.json)).toBe(200);
    expect(plan.json).toMatchObject({ mode: 'plan', servers: [{ serverId: SOURCE_ID }] });
    expect(await servers()).toEqual(before);
  });

  it('measures RTO and RPO from heartbeats, passes against the targets, tears down and records the drill', async () => {
    const started = await api('POST', 'drills', {});
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const id = String(started.json.id);
    await drive(id);
    const result = output(id);
    const server = result.servers[0];
    expect(result.verdict, JSON.stringify(server?.checks)).toBe('passed');
    expect(server).toMatchObject({ serverId: SOURCE_ID, verdict: 'passed', tornDown: true, timedOut: false });
    // Heartbeats at t0, t0 + 60 s, t0 + 120 s; the point at t0 + 90 s: the 2nd came back, the 3rd did not.
    expect(server?.rpo).toEqual({ seconds: 30, targetSeconds: 900, met: true });
    expect(server?.heartbeats).toMatchObject({ afterPointRestored: 0, heartbeats: 3 });
    expect(server?.heartbeats?.newestRestored).toBe(server?.heartbeats?.newestSourceAtPoint);
    expect(server?.rto.seconds).toBeGreaterThan(0);
    expect(server?.rto).toMatchObject({ targetSeconds: 3600, met: true });
    // The scratch server was created once, in the drill resource group, and is gone.
    const scratch = server?.scratchServerId?.split('/').pop() ?? '';
    expect(scratch).toMatch(/^psql-restore-prod-drill-[0-9a-z]{7}$/);
    expect(await createsOf(scratch)).toBe(1);
    expect(await servers()).not.toContain(scratch);
    // The history row (design.md's shape) and the status route.
    const history = await api('GET', 'drills/history');
    expect(history.status).toBe(200);
    const row = (history.json.drills as Record<string, unknown>[]).find((entry) => entry.instanceId === server?.instanceId);
    expect(row).toMatchObject({ serverId: SOURCE_ID, verdict: 'passed', reason: '', rpoSeconds: 30, rtoTargetSeconds: 3600, rpoTargetSeconds: 900, tornDown: true, runId: server?.runId, restorePoint: server?.restorePoint });
    expect((await api('GET', `drills/${id}`)).json).toMatchObject({ done: true, output: { verdict: 'passed' } });
    const everything = JSON.stringify([world.host().durable.getStatus(id, { showHistory: true, showInput: true }), world.host().durable.history(`${id}:0`), world.host().logs, history.json]);
    expect(everything).not.toContain(CANARY);
  }, 180_000);

  it('a failed restore operation fails the drill, with nothing left behind', async () => {
    await sandbox().injectFault({ operationId: CREATE, failLongRunningOperation: true, errorCode: 'RestoreFailed', message: 'drill restore failed on purpose' });
    world.host().durable.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: 'drill-fails', input: { trigger: 'http' } });
    await drive('drill-fails');
    const server = output('drill-fails').servers[0];
    expect(server).toMatchObject({ verdict: 'failed', tornDown: true, rto: { seconds: null, met: false } });
    expect(server?.reason).toMatch(/drill restore failed on purpose|left no server/);
    expect(await servers()).not.toContain(server?.scratchServerId?.split('/').pop());
  }, 180_000);

  it('data that fails validation fails the drill and still tears down', async () => {
    world.host().durable.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: 'drill-stale', input: { trigger: 'http' } });
    await drive('drill-stale', (phase) => phase === 'creating' || phase === 'restoring');
    // Rows the point cannot have: the restored count falls outside the tolerance.
    const db = new pg.Client({ host: '127.0.0.1', port: sandbox().postgres?.frontDoorPort, user: 'rsadmin', password: CANARY, database: 'app', ssl: { ca: sandbox().caPem, servername: 'psql-restore-prod.postgres.database.azure.com' } });
    await db.connect();
    for (let index = 0; index < 30; index += 1) await db.query(`INSERT INTO users (id, email) VALUES ($1, $2)`, [500 + index, `drill${String(index)}@example.com`]);
    await db.end();
    await drive('drill-stale');
    const server = output('drill-stale').servers[0];
    expect(server).toMatchObject({ verdict: 'failed', tornDown: true });
    expect(server?.checks.find((check) => check.name === 'rows users')).toMatchObject({ passed: false });
    expect(server?.reason).toMatch(/rows users/);
    expect(await servers()).not.toContain(server?.scratchServerId?.split('/').pop());
  }, 180_000);

  it('a restore slower than the drill timeout: the deadline timer wins, and the scratch server is deleted once Azure lets it', async () => {
    // The world's drill policy gives up after 1 h; this restore takes 1.5 h.
    await sandbox().setOperationDuration(CREATE, 90 * 60_000);
    try {
      world.host().durable.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: 'drill-slow', input: { trigger: 'timer' } });
      await drive('drill-slow', undefined, 10 * 60_000);
    } finally {
      await sandbox().setOperationDuration(CREATE, undefined);
    }
    const server = output('drill-slow').servers[0];
    expect(server).toMatchObject({ verdict: 'failed', timedOut: true, tornDown: true });
    expect(server?.reason).toMatch(/timed out after 1 h/);
    expect(server?.steps.map((step) => step.step)).toEqual(expect.arrayContaining(['deadline', 'teardown']));
    expect(await servers()).not.toContain(server?.scratchServerId?.split('/').pop());
    // Bounded history: 1.5 h of waiting are about 30 looks 30 s doubling to 5 min apart (at most 10 events each), not a busy loop.
    expect(world.host().durable.history('drill-slow:0').current.length).toBeLessThan(10 * 30 + 60);
  }, 180_000);

  it('the sweeper deletes the drill server a failed teardown left, and only that: a look-alike and a tag without a record survive', async () => {
    // The teardown's delete is refused every time: the drill ends with the server left behind.
    await sandbox().injectFault({ operationId: 'Microsoft.DBforPostgreSQL/flexibleServers.delete', status: 403, errorCode: 'AuthorizationFailed', message: 'no delete for you', count: 50 });
    world.host().durable.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: 'drill-leftover', input: { trigger: 'http' } });
    await drive('drill-leftover', (phase) => phase === 'restoring');
    // While its drill runs, the sweeper leaves the scratch server to the drill's own teardown.
    await sweep();
    expect(sweeperLines()).toMatch(/still running/);
    await drive('drill-leftover');
    const server = output('drill-leftover').servers[0];
    expect(server).toMatchObject({ tornDown: false, verdict: 'failed' });
    const scratch = server?.scratchServerId?.split('/').pop() ?? '';
    expect(await servers()).toContain(scratch);
    await sandbox().clearFaults();

    await plantServer('psql-restore-prod-drill-lookal1', {});
    await plantServer('psql-restore-prod-drill-tagged1', { 'ops-autopilot-created-by': 'ops-autopilot', 'ops-autopilot-purpose': 'drill', 'ops-autopilot-owner': 'drill-nobody:0' });
    await sweep();
    await world.host().idle();
    const after = await servers();
    expect(after).not.toContain(scratch);
    expect(after).toContain('psql-restore-prod-drill-lookal1');
    expect(after).toContain('psql-restore-prod-drill-tagged1');
    expect(sweeperLines()).toMatch(new RegExp(`deleted: .*${scratch}`));
    expect(sweeperLines()).toMatch(/kept: .*psql-restore-prod-drill-tagged1 \(tagged as a drill server, but no drill recorded it/);
    // A second sweep finds nothing of the drills' left.
    await sweep();
    expect(world.host().invocations.filter((entry) => entry.functionName === 'drillSweeperTimer').every((entry) => entry.outcome === 'succeeded')).toBe(true);
  }, 180_000);

  it('a crash at every step: one scratch server, always torn down, the drill recorded once', async () => {
    const id = 'drill-crash';
    const seen = new Set<string>();
    world.host().durable.setCrashPlan((point) => {
      if (point.instanceId !== id && !point.instanceId.startsWith(`${id}:`)) return false;
      const key = `${point.instanceId}|${point.kind}|${point.name}|${String(world.host().durable.history(point.instanceId).current.length)}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    world.host().durable.startNew(RESTORE_DRILL_ORCHESTRATOR, { instanceId: id, input: { trigger: 'http' } });
    await drive(id, undefined, 10_000, 400);
    world.host().durable.setCrashPlan(undefined);
    const result = output(id);
    const server = result.servers[0];
    expect(world.host().durable.crashes.filter((point) => point.instanceId.startsWith(id)).length).toBeGreaterThan(20);
    expect(server?.tornDown).toBe(true);
    const scratch = server?.scratchServerId?.split('/').pop() ?? '';
    expect(await createsOf(scratch)).toBe(1);
    expect(await servers()).not.toContain(scratch);
    expect(server?.verdict, server?.reason).toBe('passed');
    const rows = ((await api('GET', 'drills/history?limit=500')).json.drills as { instanceId: string }[]).filter((row) => row.instanceId === `${id}:0`);
    expect(rows).toHaveLength(1);
  }, 180_000);
});

/** Runs the CLI in process against the local host, capturing its output. */
function runCli(args: readonly string[]): { done: Promise<{ code: number; stdout: string; stderr: string }> } {
  const out = { stdout: '', stderr: '' };
  const done = main([...args, '--app', world.host().baseUrl, '--key', world.host().keys.function], { stdout: (chunk) => (out.stdout += chunk), stderr: (chunk) => (out.stderr += chunk) }).then((code) => ({ code, ...out }));
  return { done };
}

/** Waits for an instance with `prefix` that was not there before, and returns its id. */
async function newInstance(prefix: string, before: ReadonlySet<string>): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const found = world.host().durable.listInstances().find((instance) => instance.instanceId.startsWith(prefix) && !instance.instanceId.includes(':') && !before.has(instance.instanceId));
    if (found !== undefined) return found.instanceId;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no new ${prefix} instance`);
}

describe('ops-autopilot restore and drill, through the app', () => {
  it('usage errors exit 2, invalid input exits 1 with the reason and creates nothing, no terminal without --yes starts nothing', async () => {
    const before = await servers();
    expect((await runCli(['restore', 'start', '--point', 'latest']).done).code).toBe(2);
    const invalid = await runCli(['restore', 'start', '--server', 'psql-restore-prod', '--point', 'yesterday']).done;
    expect(invalid.code, invalid.stderr).toBe(1);
    expect(invalid.stderr).toMatch(/ISO 8601/);
    const unconfirmed = await runCli(['restore', 'start', '--server', 'psql-restore-prod', '--point', 'latest']).done;
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stdout).toMatch(/Restore plan .*validated by the app/);
    expect(unconfirmed.stderr).toMatch(/--yes or an interactive terminal/);
    expect((await runCli(['drill', 'run', '--server', 'psql-nowhere', '--yes']).done).code).toBe(1);
    expect((await runCli(['restore', 'approve', 'restore-unknown']).done).code).toBe(1);
    expect(await servers()).toEqual(before);
  }, 180_000);

  it('restore start --no-wait, then reject and status; drill run --json has rto and rpo per server; drill history', async () => {
    const started = await runCli(['restore', 'start', '--server', SOURCE_ID, '--point', 'latest', '--name', 'psql-restore-cli', '--yes', '--no-wait', '--json']).done;
    expect(started.code, started.stderr).toBe(0);
    const id = (JSON.parse(started.stdout.slice(started.stdout.indexOf('{'))) as { id: string }).id;
    await drive(id, (phase) => phase === 'awaiting-approval');
    const rejected = await runCli(['restore', 'reject', id, '--reason', 'cli test']).done;
    expect(rejected.code, rejected.stderr).toBe(0);
    await drive(id);
    const status = await runCli(['restore', 'status', id]).done;
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^rejected: /m);
    // A restore started over HTTP (id restore-<uuid>) still gets its run record (a uuid of its own).
    const restored = world.host().durable.getStatus(id)?.output as { runId: string; steps: { step: string }[] };
    expect(restored.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(restored.steps.map((step) => step.step)).not.toContain('record');

    const before = new Set(world.host().durable.listInstances().map((instance) => instance.instanceId));
    const run = runCli(['drill', 'run', '--yes', '--json']);
    const drillId = await newInstance('drill-', before);
    await drive(drillId);
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { verdict: string; servers: { serverId: string; rto: { seconds: number }; rpo: { seconds: number } }[] };
    expect(json.verdict).toBe('passed');
    expect(json.servers[0]).toMatchObject({ serverId: SOURCE_ID, rpo: { seconds: 30 } });
    expect(json.servers[0]?.rto.seconds).toBeGreaterThan(0);
    const history = await runCli(['drill', 'history']).done;
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/psql-restore-prod .* passed/);
  }, 180_000);
});
