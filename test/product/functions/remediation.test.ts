/**
 * The intake of alert and event remediation THROUGH THE LOCAL HOST with stand-ins for the
 * rules, guardrails and actions (test/fixtures/remediation-fakes.ts, by the contract's names):
 * five concurrent deliveries starting one orchestration, a corpus of bad payloads and foreign
 * targets that change nothing, SlotSwapFailed and Key Vault expiry notifications, unknown and
 * invalid events, and the `remediate` CLI. Everything the production binding decides (the
 * ladder, escalation, every guardrail, the lock, Event Grid watches, crashes at every step) is
 * tested with the real binding in remediation-binding, remediation-guardrails and
 * remediation-actions-flow.test.ts.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import type { RemediationView } from '../../../src/functions/remediations.ts';
import { remediationInstanceId } from '../../../src/remediation/flow-ids.ts';
import { fakeState, resetFakes, type FakeRule } from '../../fixtures/remediation-fakes.ts';
import { isMutatingRequest, sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
const SITE = `/subscriptions/${SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/app-kilometers-api-k7x2`;
const FOREIGN = `/subscriptions/${SUB}/resourceGroups/rg-elsewhere/providers/Microsoft.Web/sites/app-kilometers-api-k7x2`;
const PROD_IMAGE = 'ghcr.io/kilometers-ai/kilometers-api:2.4.1';
const keys = { master: 'rem-master-key', function: 'rem-function-key' };
const VERIFY = { consecutive: 2, intervalSeconds: 30, deadlineSeconds: 90 };
const LADDER_RULE: FakeRule = {
  name: 'health-check-failing',
  alertRule: 'km-health-check',
  ladder: [
    { action: 'restart', params: {}, verify: VERIFY },
    { action: 'swap-back', params: { slot: 'staging' }, verify: VERIFY },
  ],
  escalate: { notify: ['oncall-teams'] },
};

const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false });
let host: LocalHost;
let clock: VirtualClock;
let config: EstateConfig;
let alertTemplate: Record<string, unknown>;

beforeAll(async () => {
  const world = sandbox().worlds.find((entry) => entry.name === 'kilometers');
  if (world === undefined) throw new Error('kilometers world not loaded');
  config = await loadConfigFile(world.configFile);
  alertTemplate = JSON.parse(await readFile(path.join('test/fixtures/alerts/metric-static.json'), 'utf8')) as Record<string, unknown>;
  clock = new VirtualClock(new Date('2026-03-02T03:00:00.000Z'));
  host = await startLocalHost({ entryPoint: 'test/fixtures/remediation-app.ts', port: 0, clock, keys, enableTimers: false, settings: { OPS_AUTOPILOT_CONFIG_FILE: world.configFile } });
}, 60_000);
afterAll(async () => {
  await host.stop();
});

let swapped = false;
beforeEach(async () => {
  resetFakes();
  fakeState.rules = [LADDER_RULE];
  host.durable.setCrashPlan(undefined);
  // Each test starts with production on 2.4.1 and staging on 2.4.0, both healthy.
  if (swapped) {
    const clients = createAzureClients(config.azure);
    try {
      const web = await clients.webClient(SUB);
      const site = await web.webApps.get('rg-kilometers-prod', 'app-kilometers-api-k7x2');
      if (site.siteConfig?.linuxFxVersion !== `DOCKER|${PROD_IMAGE}`) {
        await web.webApps.swapSlotWithProduction('rg-kilometers-prod', 'app-kilometers-api-k7x2', { targetSlot: 'staging', preserveVnet: true });
      }
    } finally {
      await clients.close();
    }
    swapped = false;
  }
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
  await sandbox().clearRequests();
});

let alertCounter = 0;
function alert(options: { rule?: string; target?: string; condition?: 'Fired' | 'Resolved'; alertId?: string } = {}): { body: Record<string, unknown>; alertId: string } {
  alertCounter += 1;
  const alertId = options.alertId ?? `/subscriptions/${SUB}/providers/Microsoft.AlertsManagement/alerts/00000000-0000-4000-8000-${String(alertCounter).padStart(12, '0')}`;
  const body = structuredClone(alertTemplate) as { data: { essentials: Record<string, unknown> } };
  Object.assign(body.data.essentials, {
    alertId,
    alertRule: options.rule ?? 'km-health-check',
    monitorCondition: options.condition ?? 'Fired',
    alertTargetIDs: [(options.target ?? SITE).toLowerCase()],
    ...(options.condition === 'Resolved' ? { resolvedDateTime: '2026-03-02T03:10:00.000Z' } : {}),
  });
  return { body, alertId };
}

async function postAlert(body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${host.baseUrl}/api/alerts`, {
    method: 'POST',
    headers: { 'x-functions-key': keys.function, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function postEvents(body: unknown, contentType = 'application/json'): Promise<number> {
  const response = await fetch(`${host.baseUrl}/runtime/webhooks/EventGrid?functionName=eventGrid`, {
    method: 'POST',
    headers: { 'x-functions-key': keys.master, 'content-type': contentType, 'aeg-event-type': 'Notification' },
    body: JSON.stringify(body),
  });
  await response.text();
  await host.idle();
  return response.status;
}

/** Drives durable timers until the instance ends (bounded). */
async function settle(id: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    await host.idle();
    const status = host.durable.getStatus(id);
    if (status !== undefined && ['Completed', 'Failed', 'Terminated'].includes(status.runtimeStatus)) return;
    // Both clocks: durable timers on the host's, app health (a restart coming back) on the sandbox's.
    await sandbox().advanceClock(30_000);
    await clock.advance(30_000);
  }
  throw new Error(`remediation ${id} did not finish`);
}

async function view(id: string): Promise<RemediationView> {
  const response = await fetch(`${host.baseUrl}/api/remediations/${id}`, { headers: { 'x-functions-key': keys.function } });
  return (await response.json()) as RemediationView;
}


async function mutations(): Promise<string[]> {
  return (await sandbox().requests()).filter((entry) => isMutatingRequest(entry) && !entry.path.includes('/_sandbox')).filter((entry) => /Microsoft\.Web/i.test(entry.path)).map((entry) => `${entry.method} ${entry.path.replace(/\?.*$/, '')}`);
}


describe('intake', () => {
  it('five identical deliveries at once start one orchestration and get the same status URL', async () => {
    const { body } = alert({ rule: 'no-such-rule' });
    const before = host.durable.listInstances().length;
    const answers = await Promise.all(Array.from({ length: 5 }, () => postAlert(body)));
    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202]);
    expect(new Set(answers.map((answer) => answer.json.statusUrl)).size).toBe(1);
    expect(answers.filter((answer) => answer.json.duplicate === false)).toHaveLength(1);
    await host.idle();
    expect(host.durable.listInstances().length).toBe(before + 1);
    await settle(String(answers[0]?.json.id));
    expect((await view(String(answers[0]?.json.id))).outcome).toBe('ignored');
  }, 60_000);

  it('bad payloads get 400 with expected and found; foreign and forged targets are ignored; nothing changes', async () => {
    const before = host.durable.listInstances().length;
    const essentials = (alert().body as { data: { essentials: Record<string, unknown> } }).data.essentials;
    const corpus: [string, unknown][] = [
      ['not JSON', '{"schemaId": '],
      ['an array', '[]'],
      ['another schema', JSON.stringify({ schemaId: 'AzureMonitorMetricAlert', data: {} })],
      ['no essentials', JSON.stringify({ schemaId: 'azureMonitorCommonAlertSchema', data: {} })],
      ['a bad monitor condition', JSON.stringify({ schemaId: 'azureMonitorCommonAlertSchema', data: { essentials: { ...essentials, monitorCondition: 'Open' } } })],
      ['too large', JSON.stringify({ schemaId: 'azureMonitorCommonAlertSchema', pad: 'x'.repeat(600 * 1024) })],
      ['empty', ''],
    ];
    for (const [what, body] of corpus) {
      const answer = await postAlert(body);
      expect(answer.status, what).toBe(400);
      const error = answer.json.error as { issues: { expected: string; found: string }[] };
      expect(error.issues.length, what).toBeGreaterThan(0);
      expect(error.issues[0]?.expected, what).toMatch(/expected/);
      expect(error.issues[0]?.found, what).not.toBe('');
    }
    const noKey = await fetch(`${host.baseUrl}/api/alerts`, { method: 'POST', body: JSON.stringify(alert().body) });
    expect(noKey.status).toBe(401);
    expect(host.durable.listInstances().length).toBe(before);

    const ids: string[] = [];
    for (const target of [FOREIGN, `/subscriptions/${SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/someone-elses-app`]) {
      const answer = await postAlert(alert({ target }).body);
      expect(answer.status).toBe(202);
      ids.push(String(answer.json.id));
    }
    for (const id of ids) {
      await settle(id);
      expect((await view(id)).outcome).toBe('ignored');
    }
    expect(await mutations()).toEqual([]);
    expect(fakeState.applies).toEqual([]);
  }, 60_000);
});

describe('Event Grid', () => {
  async function events(name: string): Promise<Record<string, unknown>[]> {
    return JSON.parse(await readFile(path.join('test/fixtures/events', name), 'utf8')) as Record<string, unknown>[];
  }
  function asCloudEvent(event: Record<string, unknown>): Record<string, unknown> {
    return { specversion: '1.0', id: event.id, source: event.topic, subject: event.subject, type: event.eventType, time: event.eventTime, data: event.data };
  }
  function instanceOf(key: string): string {
    return remediationInstanceId(key);
  }

  it('SlotSwapFailed and Key Vault expiry notify; unknown types and foreign resources are recorded and ignored; invalid events are acknowledged', async () => {
    const [failed] = await events('slot-swap-failed.json');
    const [nearExpiry] = await events('secret-near-expiry.json');
    const [expired] = await events('secret-expired.json');
    const [unknown] = await events('unknown-type.json');
    const [write] = await events('resource-write-success.json');
    if (failed === undefined || nearExpiry === undefined || expired === undefined || unknown === undefined || write === undefined) throw new Error('fixtures');
    // A secret without a rotation policy (ApiKey-Payments has one now: its events start a rotation).
    const vault = (event: Record<string, unknown>, version: string): Record<string, unknown> => ({
      ...event,
      topic: `/subscriptions/${SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.KeyVault/vaults/kv-kilometers-k7x2`,
      subject: 'DatabaseConnectionString',
      data: { Id: `https://kv-kilometers-k7x2.vault.azure.net/secrets/DatabaseConnectionString/${version}`, VaultName: 'kv-kilometers-k7x2', ObjectType: 'Secret', ObjectName: 'DatabaseConnectionString', Version: version, NBF: 1559081980, EXP: 1559082102 },
    });
    const delivered = [
      { ...failed, id: 'swap-failed-1', topic: SITE },
      vault({ ...nearExpiry, id: 'kv-1' }, 'aaaa0000'),
      vault({ ...expired, id: 'kv-2' }, 'aaaa0000'),
      { ...unknown, id: 'unknown-1' },
      { ...write, id: 'write-1' },
    ];
    expect(await postEvents(delivered)).toBe(202);
    // The same secret version again, under another event id: idempotent by version.
    expect(await postEvents([vault({ ...nearExpiry, id: 'kv-3' }, 'aaaa0000')])).toBe(202);
    expect(await postEvents([asCloudEvent(vault({ ...nearExpiry, id: 'kv-4' }, 'bbbb1111'))], 'application/cloudevents+json')).toBe(202);
    // Invalid: a slot swap event without data.siteName is acknowledged and starts nothing.
    const before = host.durable.listInstances().length;
    expect(await postEvents([{ ...failed, id: 'broken-1', data: {} }])).toBe(202);
    expect(host.durable.listInstances().length).toBe(before);

    const outcomes = new Map<string, string | undefined>();
    for (const instance of host.durable.listInstances()) {
      await settle(instance.instanceId);
      outcomes.set(instance.instanceId, (await view(instance.instanceId)).outcome);
    }
    expect(outcomes.get(instanceOf('event:swap-failed-1'))).toBe('notified');
    const kvOutcomes = [...outcomes.entries()].filter(([id]) => [...delivered, { id: 'kv-4' }].every((event) => instanceOf(`event:${String(event.id)}`) !== id));
    expect(kvOutcomes.map(([, outcome]) => outcome).filter((outcome) => outcome === 'notified').length).toBeGreaterThanOrEqual(3);
    expect(outcomes.get(instanceOf('event:unknown-1'))).toBe('ignored');
    expect(outcomes.get(instanceOf('event:write-1'))).toBe('ignored');
    const hooks = JSON.stringify(await sandbox().webhooks('oncall-teams'));
    expect(hooks).toContain('slot swap of app-kilometers-api-k7x2');
    expect(hooks).toContain('DatabaseConnectionString version aaaa0000 is near expiry');
    expect(hooks).toContain('DatabaseConnectionString version aaaa0000 has expired');
    expect((hooks.match(/aaaa0000 is near expiry/g) ?? []).length).toBe(1);
    expect(await mutations()).toEqual([]);
  }, 60_000);
});

describe('ops-autopilot remediate', () => {
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const { main } = await import('../../../src/cli/main.ts');
    let stdout = '';
    let stderr = '';
    const code = await main(args, { stdout: (chunk) => (stdout += chunk), stderr: (chunk) => (stderr += chunk) });
    return { code, stdout, stderr };
  }
  async function payloadFile(body: unknown): Promise<string> {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const os = await import('node:os');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'remediate-'));
    const file = path.join(dir, 'alert.json');
    await writeFile(file, typeof body === 'string' ? body : JSON.stringify(body));
    return file;
  }

  it('posts like an action group, follows to the end and exits by outcome; bad payloads, keys and apps are clear errors', async () => {
    const ignored = await cli(['remediate', await payloadFile(alert({ rule: 'nothing-matches' }).body), '--app', host.baseUrl, '--key', keys.function]);
    expect(ignored.code).toBe(0);
    expect(ignored.stdout).toMatch(/^ignored: no rule matches/);
    expect(ignored.stderr).toMatch(/accepted: remediation rem-[0-9a-f]{32}\n {2}status: http:\/\/127\.0\.0\.1:\d+\/api\/remediations\/rem-/);

    const json = await cli(['remediate', await payloadFile(alert({ rule: 'nothing-matches' }).body), '--app', host.baseUrl, '--key', keys.function, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ done: true, status: 'ignored', outcome: 'ignored' });

    const invalid = await cli(['remediate', await payloadFile({ schemaId: 'azureMonitorCommonAlertSchema', data: {} }), '--app', host.baseUrl, '--key', keys.function]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('data.essentials: expected');

    const notJson = await cli(['remediate', await payloadFile('{"schemaId":'), '--app', host.baseUrl, '--key', keys.function]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('not JSON');

    const wrongKey = await cli(['remediate', await payloadFile(alert().body), '--app', host.baseUrl, '--key', 'not-the-key']);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/401/);

    const noApp = await cli(['remediate', await payloadFile(alert().body)]);
    expect(noApp.code).toBe(2);
    expect(noApp.stderr).toContain('OPS_AUTOPILOT_APP_URL');
    expect(fakeState.applies).toEqual([]);
  }, 60_000);
});
