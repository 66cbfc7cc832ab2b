/**
 * Manual runs over HTTP and past runs (issue 8 §4), THROUGH THE LOCAL HOST against a sandbox
 * with Azurite: the function key on every route; a plan with no side effects (the sandbox's
 * request log, webhook capture and the run-record container are the evidence); an apply that
 * answers 202 before it has finished, runs as a durable orchestration to completion, and is
 * listed by `GET /api/runs` and by the CLI (`runs list|show`, from blob storage and through the
 * app); duplicate run ids; bad bodies, unknown runbooks and targets; and a crash of the worker
 * right after the activity ran, after which the re-run of the activity applies nothing again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { createRunRecordStore, runRecordDestination } from '../../../src/runs/run-record-store.ts';
import type { RunRecord } from '../../../src/runs/run-record.ts';
import { FUNCTION_NAMES } from '../../../src/functions/function-names.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { cli } from '../../support/cli.ts';
import { isMutatingRequest, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml'], postgres: false });
const keys = { master: 'runs-master-key', function: 'runs-function-key' };
const FAR = '0 0 0 1 1 *';
let host: LocalHost;
let configFile: string;

beforeAll(async () => {
  configFile = worldConfigFile(sandbox(), 'xshopai');
  host = await startLocalHost({
    entryPoint: 'src/functions/index.ts',
    port: 0,
    keys,
    enableTimers: false,
    settings: {
      OPS_AUTOPILOT_CONFIG_FILE: configFile,
      BACKUP_VERIFY_SCHEDULE: FAR,
      KEYVAULT_BACKUP_SCHEDULE: FAR,
      REVISION_CLEANUP_SCHEDULE: FAR,
      IMAGE_PURGE_SCHEDULE: FAR,
      SECRET_EXPIRY_SCHEDULE: FAR,
    },
  });
});
afterAll(async () => {
  await host.stop();
});

async function call(method: string, path: string, options: { body?: unknown; raw?: string; key?: string | null } = {}): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const key = options.key === undefined ? keys.function : options.key;
  const res = await fetch(`${host.baseUrl}/api/${path}`, {
    method,
    headers: { ...(key === null ? {} : { 'x-functions-key': key }), 'content-type': 'application/json' },
    ...(options.raw !== undefined ? { body: options.raw } : options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function runRecordBlobs(): Promise<string[]> {
  const config = await loadConfigFile(configFile);
  const clients = createAzureClients(config.azure);
  try {
    const container = (await clients.blobServiceClient(runRecordDestination(config))).getContainerClient(config.runRecords.container);
    if (!(await container.exists())) return [];
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    return names.sort();
  } finally {
    await clients.close();
  }
}

async function recordsOf(runId: string): Promise<RunRecord[]> {
  const config = await loadConfigFile(configFile);
  const clients = createAzureClients(config.azure);
  try {
    const store = await createRunRecordStore(config, clients);
    const names = (await store.list()).filter((name) => name.endsWith(`/${runId}.json`) && !name.startsWith('by-id/'));
    return await Promise.all(names.map((name) => store.read(name)));
  } finally {
    await clients.close();
  }
}

async function waitDone(statusUrl: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 300; i += 1) {
    const res = await fetch(statusUrl, { headers: { 'x-functions-key': keys.function } });
    const body = (await res.json()) as Record<string, unknown>;
    if (body.done === true) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${statusUrl} not done after 30 s`);
}

describe('the runs routes', () => {
  it('are registered with function-level auth and answer 401 without a key or with a wrong one', async () => {
    const names: string[] = [FUNCTION_NAMES.runsStart, FUNCTION_NAMES.runsList, FUNCTION_NAMES.runsGet];
    const routes = host.functions.filter((f) => names.includes(f.name)).sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name));
    expect(routes.map((f) => [f.name, f.http?.route, f.http?.methods, f.http?.authLevel])).toEqual([
      ['runsStart', 'runs/{runbook}', ['POST'], 'function'],
      ['runsList', 'runs', ['GET'], 'function'],
      ['runsGet', 'runs/{runId}', ['GET'], 'function'],
    ]);
    expect((await call('POST', 'runs/revision-cleanup', { body: { mode: 'plan' }, key: null })).status).toBe(401);
    expect((await call('POST', 'runs/revision-cleanup', { body: { mode: 'plan' }, key: 'wrong' })).status).toBe(401);
    expect((await call('GET', 'runs', { key: null })).status).toBe(401);
    expect((await call('GET', 'runs/7d1f0a52-8f33-4c8e-9a57-0d8b2a4e3f10', { key: null })).status).toBe(401);
  });

  it('refuse bad bodies, unknown runbooks and unknown targets with 400 and the reason, and start nothing', async () => {
    const cases: [string, { body?: unknown; raw?: string }, number, RegExp][] = [
      ['runs/revision-cleanup', { raw: '' }, 400, /found an empty body/],
      ['runs/revision-cleanup', { raw: '{mode: plan' }, 400, /found text that is not JSON/],
      ['runs/revision-cleanup', { body: {} }, 400, /mode: Invalid option: expected one of "plan"\|"apply"/],
      ['runs/revision-cleanup', { body: { mode: 'destroy' } }, 400, /mode: Invalid option/],
      ['runs/revision-cleanup', { body: { mode: 'apply', force: 'yes' } }, 400, /force: Invalid input: expected boolean/],
      ['runs/revision-cleanup', { body: { mode: 'apply', targets: 'ca-user-service' } }, 400, /targets: Invalid input: expected array/],
      ['runs/revision-cleanup', { body: { mode: 'apply', dryRun: false } }, 400, /Unrecognized key: "dryRun"/],
      ['runs/revision-cleanup', { body: { mode: 'apply', runId: 'not-a-uuid' } }, 400, /runId: Invalid UUID/],
      ['runs/revision-cleanup', { body: [1, 2] }, 400, /expected object, received array|expected object/],
      ['runs/revision-cleanup', { body: { mode: 'apply', confirmedPlan: 'abc' } }, 400, /confirmedPlan: expected the planDigest of a plan answer \(64 hex digits\)/],
      ['runs/revision-cleanup', { body: { mode: 'plan', confirmedPlan: 'a'.repeat(64) } }, 400, /confirmedPlan: confirmedPlan goes with mode apply only/],
      ['runs/delete-everything', { body: { mode: 'plan' } }, 400, /runbook: expected one of backup-verify, keyvault-backup, revision-cleanup, image-purge, secret-expiry, found "delete-everything"/],
      ['runs/revision-cleanup', { body: { mode: 'apply', targets: ['ca-no-such-app'] } }, 400, /ca-no-such-app/],
      ['runs/revision-cleanup', { body: { mode: 'plan', targets: ['kv-xshopai-prod'] } }, 400, /kv-xshopai-prod/],
      ['runs/revision-cleanup', { raw: JSON.stringify({ mode: 'plan', targets: ['x'.repeat(1000)] }).padEnd(70_000, ' ') }, 413, /at most 65536/],
    ];
    for (const [path, request, status, message] of cases) {
      const res = await call('POST', path, request);
      expect(res.status, `${path} ${JSON.stringify(request).slice(0, 80)}`).toBe(status);
      expect((res.body.error as { message: string }).message).toMatch(message);
    }
    expect(host.durable.listInstances().filter((instance) => instance.name === FUNCTION_NAMES.runbookRunOrchestrator)).toEqual([]);
  });

  it('a plan answers 200 with the plan and has no side effects: no write, no notification, no lock, no record', async () => {
    await sandbox().clearRequests();
    const before = await runRecordBlobs();
    const webhooksBefore = (await sandbox().webhooks()).length;
    // secret-expiry has warn and fail findings: a notifying run would post to the webhooks.
    const expiry = await call('POST', 'runs/secret-expiry', { body: { mode: 'plan' } });
    expect(expiry.status).toBe(200);
    expect(expiry.body).toMatchObject({ mode: 'plan', runbook: 'secret-expiry', estate: 'xshopai', outcome: 'findings' });
    const cleanup = await call('POST', 'runs/revision-cleanup', { body: { mode: 'plan', targets: ['ca-user-service'] } });
    expect(cleanup.status).toBe(200);
    const plans = cleanup.body.plans as { targetId: string; actions: unknown[] }[];
    expect(plans.map((plan) => plan.targetId.split('/').at(-1))).toEqual(['ca-user-service']);
    expect(plans[0]?.actions.length).toBeGreaterThan(0);
    expect((cleanup.body.record as RunRecord).summary.actions.applied).toBe(0);
    expect(cleanup.body.planDigest).toMatch(/^[0-9a-f]{64}$/);
    expect((await sandbox().requests()).filter(isMutatingRequest)).toEqual([]);
    expect((await sandbox().webhooks()).length).toBe(webhooksBefore);
    expect(await runRecordBlobs()).toEqual(before);
  });

  it('an apply answers 202 at once, runs to completion in the app, and is listed by the route and the CLI', async () => {
    await sandbox().clearRequests();
    // Each revision deactivation takes 1.5 s: the run outlasts the request that started it.
    await sandbox().injectFault({ pathPattern: 'revisions/[^/]+/deactivate', method: 'POST', latencyMs: 1500, count: 2 });
    const startedAt = Date.now();
    const start = await call('POST', 'runs/revision-cleanup', { body: { mode: 'apply', targets: ['ca-user-service'] } });
    expect(Date.now() - startedAt).toBeLessThan(1500);
    expect(start.status).toBe(202);
    const runId = String(start.body.runId);
    expect(start.body).toMatchObject({ id: runId, status: 'accepted', done: false, statusUrl: `${host.baseUrl}/api/runs/${runId}` });
    expect(start.headers.get('location')).toBe(`${host.baseUrl}/api/runs/${runId}`);
    const running = await call('GET', `runs/${runId}`);
    expect(running.status).toBe(200);
    expect(running.body).toMatchObject({ runId, done: false });

    const final = await waitDone(String(start.body.statusUrl));
    expect(final).toMatchObject({ runId, runbook: 'revision-cleanup', done: true, status: 'succeeded', outcome: 'ok' });
    const record = final.record as RunRecord;
    expect(record).toMatchObject({ runId, trigger: 'http', dryRun: false, requestedBy: 'http (function key)' });
    expect(record.summary.actions.applied).toBeGreaterThan(0);
    // The durable orchestration did it: instance id = run id.
    expect(await host.durable.waitForStatus(runId)).toMatchObject({ name: FUNCTION_NAMES.runbookRunOrchestrator, runtimeStatus: 'Completed' });
    const deactivations = (await sandbox().requests()).filter((entry) => isMutatingRequest(entry) && /deactivate/.test(entry.path));
    expect(deactivations).toHaveLength(record.summary.actions.applied);

    const listed = await call('GET', 'runs?runbook=revision-cleanup&since=1d');
    expect(listed.status).toBe(200);
    const runs = listed.body.runs as { runId: string; outcome: string; trigger: string; durationMs: number; counts: { applied: number } }[];
    expect(runs[0]).toMatchObject({ runId, outcome: 'ok', trigger: 'http', counts: { applied: record.summary.actions.applied } });
    expect(runs[0]?.durationMs).toBeGreaterThanOrEqual(1500);

    // The CLI reads the same records, from blob storage and through the app.
    const table = await cli(['runs', 'list', '--config', configFile, '--runbook', 'revision-cleanup']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[2]).toMatch(new RegExp(`revision-cleanup +${runId} +http +ok `));
    const viaApp = await cli(['runs', 'list', '--app', host.baseUrl, '--key', keys.function, '--since', '2h', '--json']);
    expect(viaApp.code, viaApp.stderr).toBe(0);
    expect((JSON.parse(viaApp.stdout) as { runs: { runId: string }[] }).runs.map((run) => run.runId)).toContain(runId);
    const show = await cli(['runs', 'show', runId, '--config', configFile]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^run ${runId}: revision-cleanup on xshopai, ok \\(status succeeded\\)`));
    expect(show.stdout).toMatch(/^ {2}applied deactivate revision ca-user-service--/m);
  }, 180_000);

  it('the same run id again starts nothing and gets the same status URL; a run id of another runbook is a conflict', async () => {
    const runId = '0c5e2f1a-6d7b-4c3e-9f80-1a2b3c4d5e6f';
    const first = await call('POST', 'runs/secret-expiry', { body: { mode: 'apply', runId } });
    expect(first.status).toBe(202);
    const again = await call('POST', 'runs/secret-expiry', { body: { mode: 'apply', runId } });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ runId, statusUrl: first.body.statusUrl, duplicate: true });
    await waitDone(String(first.body.statusUrl));
    const later = await call('POST', 'runs/secret-expiry', { body: { mode: 'apply', runId } });
    expect(later.body).toMatchObject({ duplicate: true });
    const other = await call('POST', 'runs/revision-cleanup', { body: { mode: 'apply', runId } });
    expect(other.status).toBe(409);
    expect((other.body.error as { code: string }).code).toBe('RunIdInUse');
    expect(await recordsOf(runId)).toHaveLength(1);
  });

  it('GET a run: 400 for what is not a run id, 404 for an unknown one; list: 400 for a bad since or limit', async () => {
    expect((await call('GET', 'runs/not-a-run')).status).toBe(400);
    const unknown = await call('GET', 'runs/5b0a7c1e-1111-4222-8333-944455556666');
    expect(unknown.status).toBe(404);
    expect((unknown.body.error as { message: string }).message).toMatch(/expected a recorded run or one in progress, found neither/);
    expect((await call('GET', 'runs?since=forever')).status).toBe(400);
    expect((await call('GET', 'runs?since=400d')).status).toBe(400);
    expect((await call('GET', 'runs?limit=0')).status).toBe(400);
    expect((await call('GET', 'runs?runbook=..%2Flocks')).status).toBe(400);
  });

  it('a worker crash right after the activity ran: the activity runs again, finds the record of its run id, applies nothing twice', async () => {
    await sandbox().clearRequests();
    let crashed = false;
    host.durable.setCrashPlan((point) => {
      if (crashed || point.kind !== 'after-activity-run' || point.name !== FUNCTION_NAMES.runbookRunActivity) return false;
      crashed = true;
      return true;
    });
    try {
      // image-purge on the seed registry: dozens of tag and manifest deletions, each one DELETE.
      const start = await call('POST', 'runs/image-purge', { body: { mode: 'apply', targets: ['crxshopaiprod'], force: true } });
      expect(start.status).toBe(202);
      const runId = String(start.body.runId);
      const final = await waitDone(String(start.body.statusUrl));
      expect(crashed).toBe(true);
      expect(final).toMatchObject({ runId, done: true });
      expect(['ok', 'findings']).toContain(final.outcome);
      // The first attempt's result was lost with the worker; the retry found the record of its run id.
      // (The status route answers done from the record; the orchestration ends once the retry has.)
      const output = (await host.durable.waitForStatus(runId)).output as { alreadyRecorded: boolean };
      expect(output.alreadyRecorded).toBe(true);
      expect(host.invocations.filter((i) => i.functionName === FUNCTION_NAMES.runbookRunActivity && i.invocationId !== '').length).toBeGreaterThanOrEqual(2);
      const records = await recordsOf(runId);
      expect(records).toHaveLength(1);
      const applied = records[0]?.summary.actions.applied ?? 0;
      expect(applied).toBeGreaterThan(10);
      // Each action is one DELETE that succeeds (the others are ACR's 401 challenges before a token
      // exchange); a re-applied action would show as a second successful DELETE of one path.
      const deletes = (await sandbox().requests()).filter((entry) => entry.method === 'DELETE' && entry.status >= 200 && entry.status < 300);
      expect(deletes).toHaveLength(applied);
      expect(new Set(deletes.map((entry) => entry.path)).size).toBe(applied);
    } finally {
      host.durable.setCrashPlan(undefined);
    }
  });
});

