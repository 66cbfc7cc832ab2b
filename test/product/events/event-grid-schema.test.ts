/**
 * The Event Grid parser: every event type issue 9 names, in the Event Grid schema and as
 * CloudEvents 1.0 (structured and batch), with the documented data shapes and their quirks;
 * idempotency keys (event id; Key Vault by secret version); unknown types; and bad deliveries.
 * Also reads what the sandbox's services publish, in both schemas.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { describe, expect, it } from 'vitest';
import { MAX_EVENT_BODY_BYTES, parseEvent, parseEventGridBody, type ParsedEvent } from '../../../src/events/event-grid-schema.ts';
import { payloadErrorOf } from '../../support/payload.ts';
import { sandboxCredential, useSandbox } from '../../support/sandbox.ts';

const FIXTURES = new URL('../../fixtures/events/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const events = (name: string): Record<string, unknown>[] => JSON.parse(fixture(name)) as Record<string, unknown>[];

/** An Event Grid schema event as Event Grid delivers it with the CloudEvents 1.0 schema. */
function toCloudEvent(event: Record<string, unknown>): Record<string, unknown> {
  return { specversion: '1.0', id: event.id, source: event.topic, subject: event.subject, type: event.eventType, time: event.eventTime, datacontenttype: 'application/json', data: event.data };
}


function only(parsed: ParsedEvent[]): ParsedEvent {
  const [event] = parsed;
  if (event === undefined || parsed.length !== 1) throw new Error(`expected one event, found ${String(parsed.length)}`);
  return event;
}

const SITE_ID = '/subscriptions/5f504e96-b142-4ec0-8e99-50424fa25005/resourcegroups/rg-kilometers-prod/providers/microsoft.web/sites/app-kilometers-api-k7x2';

describe('each event type in both schemas', () => {
  const cases: Record<string, (event: ParsedEvent) => void> = {
    'slot-swap-completed.json': (event) => {
      expect(event).toMatchObject({ kind: 'slot-swap', phase: 'Completed', siteName: 'app-kilometers-api-k7x2', siteId: SITE_ID, sourceSlot: 'staging', targetSlot: 'production', idempotencyKey: 'event:7c5d6de5-eb70-4de2-b788-c52a544e68b8' });
    },
    'slot-swap-failed.json': (event) => {
      expect(event).toMatchObject({ kind: 'slot-swap', phase: 'Failed', siteId: SITE_ID });
    },
    'resource-write-success.json': (event) => {
      expect(event).toMatchObject({
        kind: 'resource',
        action: 'Write',
        outcome: 'Success',
        operationName: 'Microsoft.App/containerApps/write',
        resourceId: '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourcegroups/rg-xshopai-prod/providers/microsoft.app/containerapps/ca-user-service',
        idempotencyKey: 'event:4db48cba-50a2-455a-93b4-de41a3b5b7f6',
      });
    },
    'secret-near-expiry.json': (event) => {
      expect(event).toMatchObject({ kind: 'key-vault-secret', change: 'NearExpiry', vaultName: 'kv-xshopai-prod', secretName: 'JWT-SECRET', version: 'ee059b2bb5bc48398a53b168c6cdcb10' });
      expect(event.kind === 'key-vault-secret' ? event.expiresAt?.toISOString() : undefined).toBe('2019-05-28T22:21:42.000Z');
      expect(event.idempotencyKey).toBe('keyvault-secret:kv-xshopai-prod/jwt-secret/ee059b2bb5bc48398a53b168c6cdcb10:nearexpiry');
    },
    'secret-expired.json': (event) => {
      expect(event).toMatchObject({ kind: 'key-vault-secret', change: 'Expired', secretName: 'JWT-SECRET' });
    },
    'unknown-type.json': (event) => {
      expect(event).toMatchObject({ kind: 'unknown', type: 'Microsoft.Storage.BlobCreated', idempotencyKey: 'event:5f0c7a40-0000-4000-8000-000000000099' });
    },
    'subscription-validation.json': (event) => {
      expect(event).toMatchObject({ kind: 'subscription-validation', validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    },
  };

  it('covers every Event Grid schema fixture', () => {
    const gridFixtures = readdirSync(FIXTURES).filter((file) => file.endsWith('.json') && !file.includes('cloudevent'));
    expect(gridFixtures.sort()).toEqual(Object.keys(cases).sort());
  });

  for (const [file, check] of Object.entries(cases)) {
    it(`${file} as the Event Grid schema, a single event, a CloudEvent and a CloudEvents batch`, () => {
      const grid = only(parseEventGridBody(fixture(file), { contentType: 'application/json' }));
      expect(grid.schema).toBe('EventGridSchema');
      check(grid);
      const [first] = events(file);
      if (first === undefined) throw new Error(`${file} holds no event`);
      expect(parseEvent(first)).toEqual(grid);
      const cloud = only(parseEventGridBody(JSON.stringify(toCloudEvent(first)), { contentType: 'application/cloudevents+json; charset=utf-8' }));
      expect(cloud.schema).toBe('CloudEventSchemaV1_0');
      check(cloud);
      // The same event in either schema is the same event: same key, type, source and data.
      expect({ ...cloud, schema: grid.schema, dataVersion: grid.dataVersion }).toEqual(grid);
      const batch = parseEventGridBody(JSON.stringify([toCloudEvent(first), toCloudEvent({ ...first, id: 'second' })]), { contentType: 'application/cloudevents-batch+json' });
      expect(batch.map((event) => event.id)).toEqual([first.id, 'second']);
    });
  }

  it("reads the Key Vault page's own CloudEvent sample, quirks included", () => {
    const event = only(parseEventGridBody(fixture('secret-new-version-cloudevent-docs.json')));
    expect(event).toMatchObject({ kind: 'key-vault-secret', change: 'NewVersionCreated', vaultName: 'sample-kv', secretName: 'newsecret', version: 'ee059b2bb5bc48398a53b168c6cdcb10', schema: 'CloudEventSchemaV1_0' });
    expect(event.kind === 'key-vault-secret' ? event.notBefore?.toISOString() : undefined).toBe('2019-05-28T22:19:40.000Z');
  });

  it('takes the secret name and version from the Id when the fields are missing, and decodes data_base64', () => {
    const [first] = events('secret-near-expiry.json');
    const data = { ...(first?.data as Record<string, unknown>) };
    delete data.ObjectName;
    delete data.Version;
    const event = parseEvent({ ...toCloudEvent({ ...first, data: undefined }), data: undefined, data_base64: Buffer.from(JSON.stringify(data)).toString('base64') });
    expect(event).toMatchObject({ kind: 'key-vault-secret', secretName: 'JWT-SECRET', version: 'ee059b2bb5bc48398a53b168c6cdcb10' });
  });
});

describe('idempotency', () => {
  it('keys by event id, so a redelivery is a duplicate and another event is not', () => {
    const [first] = events('slot-swap-completed.json');
    if (first === undefined) throw new Error('fixture empty');
    const again = parseEvent(first);
    const other = parseEvent({ ...first, id: 'a-new-id' });
    expect(again.idempotencyKey).toBe(parseEvent(first).idempotencyKey);
    expect(other.idempotencyKey).not.toBe(again.idempotencyKey);
  });

  it('keys Key Vault secret events by secret version: a redelivery under a new event id is the same', () => {
    const [first] = events('secret-near-expiry.json');
    if (first === undefined) throw new Error('fixture empty');
    const redelivered = parseEvent({ ...first, id: 'another-event-id' });
    expect(redelivered.idempotencyKey).toBe(parseEvent(first).idempotencyKey);
    const newer = parseEvent({ ...first, data: { ...(first.data as Record<string, unknown>), Id: 'https://kv-xshopai-prod.vault.azure.net/secrets/JWT-SECRET/0123456789abcdef', Version: '0123456789abcdef' } });
    expect(newer.idempotencyKey).not.toBe(redelivered.idempotencyKey);
    // Near expiry and expired of one version are two facts.
    expect(parseEvent({ ...first, eventType: 'Microsoft.KeyVault.SecretExpired' }).idempotencyKey).not.toBe(redelivered.idempotencyKey);
  });
});

describe('bad deliveries fail with what was expected and what was found', () => {
  const [swap] = events('slot-swap-completed.json');
  const cases: { name: string; body: string; contentType?: string; path: string; expected: RegExp; found: RegExp }[] = [
    { name: 'not JSON', body: 'hello', path: '', expected: /JSON body/, found: /not JSON/ },
    { name: 'a text/plain body', body: '[]', contentType: 'text/plain', path: '', expected: /content-type/, found: /text\/plain/ },
    { name: 'too large', body: JSON.stringify([{ ...swap, padding: 'x'.repeat(MAX_EVENT_BODY_BYTES) }]), path: '', expected: /at most 1048576 bytes/, found: /bytes/ },
    { name: 'an empty list', body: '[]', path: '', expected: /at least one event/, found: /empty list/ },
    { name: 'neither schema', body: JSON.stringify([{ hello: 'world' }]), path: '[0]', expected: /Event Grid schema event .* or a CloudEvent/, found: /hello/ },
    { name: 'a number', body: '[7]', path: '[0]', expected: /an event object/, found: /7/ },
    { name: 'no event id', body: JSON.stringify([{ ...swap, id: undefined }]), path: '[0].id', expected: /expected a string/, found: /nothing/ },
    { name: 'a CloudEvent of another spec version', body: JSON.stringify({ ...toCloudEvent(swap ?? {}), specversion: '0.3' }), path: 'specversion', expected: /"1.0"/, found: /"0.3"/ },
    { name: 'a bad event time', body: JSON.stringify([{ ...swap, eventTime: 'soon' }]), path: '[0].eventTime', expected: /datetime/, found: /"soon"/ },
    {
      name: 'a slot swap without its site',
      body: JSON.stringify([{ ...swap, data: { sourceSlot: 'staging' } }]),
      path: '[0].data.siteName',
      expected: /the data of a Microsoft.Web.SlotSwapCompleted event/,
      found: /nothing/,
    },
    {
      name: 'a resource write without its resource',
      body: JSON.stringify([{ ...events('resource-write-success.json')[0], data: { operationName: 'x', status: 'Succeeded', resourceUri: 'ca-user-service' } }]),
      path: '[0].data.resourceUri',
      expected: /ARM resource ID/,
      found: /"ca-user-service"/,
    },
    {
      name: 'a secret event whose id names no secret',
      body: JSON.stringify([{ ...events('secret-near-expiry.json')[0], data: { Id: 'https://kv.vault.azure.net/keys/k', VaultName: 'kv' } }]),
      path: '[0].data.Id',
      expected: /secrets\/\{name\}\/\{version\}/,
      found: /keys\/k/,
    },
  ];
  for (const entry of cases) {
    it(entry.name, () => {
      const error = payloadErrorOf(() => parseEventGridBody(entry.body, entry.contentType === undefined ? {} : { contentType: entry.contentType }));
      const [issue] = error.issues;
      expect(issue?.path).toBe(entry.path);
      expect(issue?.expected).toMatch(entry.expected);
      expect(issue?.found).toMatch(entry.found);
      expect(error.message).toMatch(/^invalid Event Grid event: /);
    });
  }
});

describe('what the sandbox publishes', () => {
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false, azurite: false, lroDurationMs: 100, lroRetryAfterSeconds: 0 });

  it('a real slot swap yields events this parser reads alike in both schemas', async () => {
    const web = new WebSiteManagementClient(sandboxCredential(sandbox()), '5f504e96-b142-4ec0-8e99-50424fa25005', { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
    await web.webApps.swapSlotWithProduction('rg-kilometers-prod', 'app-kilometers-api-k7x2', { targetSlot: 'staging', preserveVnet: true }, { updateIntervalInMs: 20 });
    const grid = parseEventGridBody(JSON.stringify(await sandbox().eventGridEvents()));
    const cloud = parseEventGridBody(JSON.stringify(await sandbox().cloudEvents()), { contentType: 'application/cloudevents-batch+json' });
    const completed = grid.find((event) => event.type === 'Microsoft.Web.SlotSwapCompleted');
    expect(completed).toMatchObject({ kind: 'slot-swap', phase: 'Completed', siteId: SITE_ID, sourceSlot: 'staging', targetSlot: 'production' });
    expect(cloud.map((event) => event.idempotencyKey)).toEqual(grid.map((event) => event.idempotencyKey));
    expect(grid.map((event) => event.kind)).toEqual(['slot-swap', 'slot-swap', 'resource']);
  });
});
