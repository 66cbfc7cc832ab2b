import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../local-host/clock.ts';
import type { LocalHost } from '../../local-host/local-host.ts';
import { startLocalHost } from '../../local-host/local-host.ts';
import { parseNcrontab } from '../../src/config/ncrontab.ts';
import { fixtureState } from '../fixtures/fixture-state.ts';

let host: LocalHost;
let clock: VirtualClock;
const keys = { master: 'test-master-key', function: 'test-function-key' };

beforeAll(async () => {
  clock = new VirtualClock(new Date('2025-03-01T01:00:00.000Z'));
  host = await startLocalHost({
    entryPoint: 'test/fixtures/durable-app.ts',
    port: 0,
    clock,
    keys,
    settings: { NIGHTLY_SCHEDULE: '0 30 2 * * *' },
  });
});
afterAll(async () => {
  await host.stop();
});

describe('inventory', () => {
  it('lists triggers, routes, methods, auth levels, resolved schedules, Event Grid and durable bindings', () => {
    const byName = new Map(host.functions.map((f) => [f.name, f]));
    expect(byName.get('SecretHello')?.http).toEqual({ route: 'secret/{name?}', methods: ['GET'], authLevel: 'function' });
    expect(byName.get('AdminOnly')?.http?.authLevel).toBe('admin');
    expect(byName.get('NightlyTimer')?.timer).toMatchObject({ scheduleExpression: '%NIGHTLY_SCHEDULE%', schedule: '0 30 2 * * *' });
    expect(byName.get('OnBlobEvent')?.triggerType).toBe('eventGrid');
    expect(byName.get('ChainOrchestrator')?.durable.kind).toBe('orchestration');
    expect(byName.get('Append')?.durable.kind).toBe('activity');
    expect(byName.get('StartOrchestration')?.durable.clientBindingName).toMatch(/^durableClient/);
  });
});

describe('HTTP triggers and auth levels', () => {
  it('answers 401 without a key or with a wrong key, 200 with the function key (header or code query)', async () => {
    const url = `${host.baseUrl}/api/secret/ann?q=1`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { 'x-functions-key': 'wrong' } })).status).toBe(401);
    const ok = await fetch(url, { headers: { 'x-functions-key': keys.function } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ hello: 'ann', q: '1' });
    const viaCode = await fetch(`${host.baseUrl}/api/secret?code=${keys.function}`);
    expect(await viaCode.json()).toEqual({ hello: 'nobody', q: null });
  });

  it('admin auth level needs the master key', async () => {
    expect((await fetch(`${host.baseUrl}/api/admin-only?code=${keys.function}`)).status).toBe(401);
    const res = await fetch(`${host.baseUrl}/api/admin-only?code=${keys.master}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('admin ok');
  });

  it('routes like the host: 405 for a wrong method, 404 for an unknown route', async () => {
    expect((await fetch(`${host.baseUrl}/api/secret/x?code=${keys.function}`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${host.baseUrl}/api/nothing-here`)).status).toBe(404);
  });
});

describe('timers', () => {
  it('fires on the NCRONTAB schedule with the host payload shape', async () => {
    fixtureState.timerPayloads.length = 0;
    await clock.advanceTo(new Date('2025-03-01T02:29:59.000Z'));
    expect(fixtureState.timerPayloads).toHaveLength(0);
    await clock.advanceTo(new Date('2025-03-01T02:30:00.000Z'));
    expect(fixtureState.timerPayloads).toEqual([
      {
        schedule: { adjustForDST: true },
        // As the host: the status before this run (Next = this occurrence; .NET default before the first run).
        scheduleStatus: { last: '0001-01-01T00:00:00.000Z', next: '2025-03-01T02:30:00.000Z', lastUpdated: '0001-01-01T00:00:00.000Z' },
        isPastDue: false,
      },
    ]);
  });

  it('is invoked on demand through POST /admin/functions/{name} with the master key', async () => {
    fixtureState.timerPayloads.length = 0;
    const denied = await fetch(`${host.baseUrl}/admin/functions/NightlyTimer`, { method: 'POST', body: '{}' });
    expect(denied.status).toBe(401);
    const res = await fetch(`${host.baseUrl}/admin/functions/NightlyTimer`, {
      method: 'POST',
      headers: { 'x-functions-key': keys.master, 'content-type': 'application/json' },
      body: JSON.stringify({ input: '' }),
    });
    expect(res.status).toBe(202);
    await host.idle();
    expect(fixtureState.timerPayloads).toHaveLength(1);
    expect(fixtureState.timerPayloads[0]).toMatchObject({
      isPastDue: false,
      scheduleStatus: { last: '2025-03-01T02:30:00.000Z', next: '2025-03-02T02:30:00.000Z', lastUpdated: '2025-03-01T02:30:00.000Z' },
    });
  });

  it('parses six-field NCRONTAB and rejects five fields', () => {
    const every15 = parseNcrontab('0 */15 9-17 * * Mon-Fri');
    expect(every15.nextAfter(new Date('2025-03-07T17:50:00Z')).toISOString()).toBe('2025-03-10T09:00:00.000Z');
    expect(parseNcrontab('*/10 * * * * *').nextAfter(new Date('2025-01-01T00:00:05Z')).toISOString()).toBe('2025-01-01T00:00:10.000Z');
    expect(() => parseNcrontab('*/5 * * * *')).toThrow(/has 5 fields; expected 6/);
  });
});

describe('Event Grid', () => {
  it('delivers Event Grid schema and CloudEvents schema events to the eventGrid trigger', async () => {
    fixtureState.eventGridEvents.length = 0;
    const url = `${host.baseUrl}/runtime/webhooks/EventGrid?functionName=OnBlobEvent&code=${keys.master}`;
    const egEvent = {
      id: 'eg-1', topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st', subject: '/blobServices/default/containers/c/blobs/b.txt',
      eventType: 'Microsoft.Storage.BlobCreated', eventTime: '2025-03-01T01:00:00Z', data: { url: 'https://st.blob/c/b.txt' }, dataVersion: '1', metadataVersion: '1',
    };
    const eg = await fetch(url, { method: 'POST', headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' }, body: JSON.stringify([egEvent]) });
    expect(eg.status).toBe(202);
    const cloudEvent = { specversion: '1.0', id: 'ce-1', source: '/subscriptions/x', type: 'Microsoft.Storage.BlobDeleted', time: '2025-03-01T01:00:00Z', data: { url: 'u' } };
    const ce = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(cloudEvent) });
    expect(ce.status).toBe(202);
    expect(fixtureState.eventGridEvents).toEqual([egEvent, cloudEvent]);
    const validation = await fetch(url, {
      method: 'POST',
      headers: { 'aeg-event-type': 'SubscriptionValidation' },
      body: JSON.stringify([{ ...egEvent, eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'abc' } }]),
    });
    expect(await validation.json()).toEqual({ validationResponse: 'abc' });
    expect((await fetch(url.replace(`&code=${keys.master}`, ''), { method: 'POST', body: '[]' })).status).toBe(401);
  });
});

describe('durable client through df.getClient(context) over the host webhooks', () => {
  const post = (path: string, body?: unknown) =>
    fetch(`${host.baseUrl}/api/${path}`, { method: 'POST', headers: { 'x-functions-key': keys.function }, body: body === undefined ? undefined : JSON.stringify(body) });

  it('starts with an explicit id, reports status, raises an event, terminates and purges', async () => {
    const started = await post('orchestrators/ApprovalOrchestrator/appr-http', { ticket: 1 });
    expect(started.status).toBe(202);
    const links = (await started.json()) as Record<string, string>;
    expect(links.id).toBe('appr-http');
    expect(links.statusQueryGetUri).toContain(`${host.baseUrl}/runtime/webhooks/durabletask/instances/appr-http`);
    await host.idle();

    const conflict = await post('orchestrators/ApprovalOrchestrator/appr-http', {});
    expect(conflict.status).toBe(500);
    expect(host.invocations.at(-1)?.error).toMatch(/409.*status Running already exists/);

    const running = (await (await post('manage/appr-http/status')).json()) as Record<string, unknown>;
    expect(running).toMatchObject({ runtimeStatus: 'Running', input: { ticket: 1 } });

    expect((await post('manage/appr-http/raise')).status).toBe(202);
    await host.idle();
    const done = (await (await post('manage/appr-http/status')).json()) as Record<string, unknown>;
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: { approved: true, by: 'alice' } });
    expect(done.historyLength).toBeGreaterThan(4);

    expect((await post('orchestrators/WaitForeverOrchestrator/forever-http', null)).status).toBe(202);
    await host.idle();
    expect((await post('manage/forever-http/terminate')).status).toBe(202);
    await host.idle();
    expect(((await (await post('manage/forever-http/status')).json()) as Record<string, unknown>).runtimeStatus).toBe('Terminated');

    expect(await (await post('manage/forever-http/purge')).json()).toEqual({ instancesDeleted: 1 });
    expect(host.durable.getStatus('forever-http')).toBeUndefined();
  });
});
