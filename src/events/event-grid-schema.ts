/**
 * Event Grid events in both delivery schemas, the Event Grid schema (`eventType`, `eventTime`,
 * `dataVersion`, `topic`) and CloudEvents 1.0 (`specversion`, `type`, `time`, `source`), parsed
 * into one {@link ParsedEvent} with the data of the event types the autopilot acts on typed:
 *
 * | kind | event types | data read |
 * |---|---|---|
 * | `slot-swap` | `Microsoft.Web.SlotSwapCompleted`, `SlotSwapFailed`, `SlotSwapStarted`, `SlotSwapWithPreviewStarted`, `SlotSwapWithPreviewCancelled` | `siteName`, `sourceSlot`, `targetSlot`; the site from the topic |
 * | `resource` | `Microsoft.Resources.Resource{Write,Delete,Action}{Success,Failure,Cancel}` | `resourceUri`, `operationName`, `status`, ... |
 * | `key-vault-secret` | `Microsoft.KeyVault.SecretNearExpiry`, `SecretExpired`, `SecretNewVersionCreated` | vault, secret name and version (from `Id` when the fields disagree with it), `NBF`, `EXP` |
 * | `subscription-validation` | `Microsoft.EventGrid.SubscriptionValidationEvent` | `validationCode`, `validationUrl` |
 * | `unknown` | anything else | nothing: acknowledged, recorded and ignored |
 *
 * Field names and shapes follow Microsoft's Event Grid schema pages for App Service, resource
 * groups and Key Vault (samples in `test/fixtures/events/`). Each event has an idempotency key:
 * its id, except Key Vault secret events, which are keyed by secret version (and type), so a
 * redelivery under a new id changes nothing. Pure: no `@azure/functions`, no I/O.
 */
import { z } from 'zod';
import { resourceIdKey } from '../azure/resource-id.ts';
import { payloadIssues, PayloadError, payloadPath, readJsonBody } from '../intake/payload.ts';

/** Largest body accepted: Event Grid's 1 MB limit for an event (and for a batch). */
export const MAX_EVENT_BODY_BYTES = 1024 * 1024;
/** Most events in one delivery: Event Grid's largest batch (`maxEventsPerBatch` is at most 5,000). */
export const MAX_EVENTS_PER_DELIVERY = 5000;

const WHAT = 'Event Grid event';

/** The content types CloudEvents are delivered with (structured mode and batches). */
export const CLOUD_EVENTS_CONTENT_TYPES = ['application/cloudevents+json', 'application/cloudevents-batch+json'] as const;

const isoTime = z.iso.datetime({ offset: true });

/** An event in the Event Grid schema. */
export const eventGridEventSchema = z
  .object({
    id: z.string().min(1),
    /** Set by Event Grid; a custom publisher may leave it out. */
    topic: z.string().min(1).optional(),
    subject: z.string(),
    eventType: z.string().min(1),
    eventTime: isoTime,
    data: z.unknown(),
    dataVersion: z.string(),
    metadataVersion: z.string().optional(),
  })
  .loose();

/** An event in the CloudEvents 1.0 schema (JSON format). */
export const cloudEventSchema = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string().min(1),
    source: z.string().min(1),
    type: z.string().min(1),
    subject: z.string().optional(),
    time: isoTime.optional(),
    datacontenttype: z.string().optional(),
    dataschema: z.string().optional(),
    data: z.unknown().optional(),
    data_base64: z.string().optional(),
  })
  .loose();

/** `data` of the App Service slot swap events. */
export const slotSwapDataSchema = z
  .object({
    appEventTypeDetail: z.object({ action: z.string() }).loose().nullable().optional(),
    siteName: z.string().min(1),
    clientRequestId: z.string().optional(),
    correlationRequestId: z.string().optional(),
    requestId: z.string().optional(),
    address: z.string().optional(),
    verb: z.string().optional(),
    sourceSlot: z.string().min(1).optional(),
    targetSlot: z.string().min(1).optional(),
  })
  .loose();

/** `data` of the Azure Resource Manager events of resource groups and subscriptions (data version 2). */
export const resourceEventDataSchema = z
  .object({
    authorization: z.object({ scope: z.string(), action: z.string() }).loose().nullable().optional(),
    claims: z.record(z.string(), z.unknown()).nullable().optional(),
    correlationId: z.string().optional(),
    httpRequest: z.object({ clientRequestId: z.string().optional(), clientIpAddress: z.string().optional(), method: z.string(), url: z.string() }).loose().nullable().optional(),
    resourceProvider: z.string().optional(),
    resourceUri: z.string().regex(/^\/subscriptions\//i, 'expected an ARM resource ID (/subscriptions/...)'),
    operationName: z.string().min(1),
    status: z.string().min(1),
    subscriptionId: z.string().optional(),
    tenantId: z.string().optional(),
  })
  .loose();

/** Seconds since the epoch; Key Vault's samples write them as strings, its reference as numbers. */
const epochSeconds = z.union([z.number(), z.string().regex(/^\s*\d+\s*$/, 'expected seconds since 1970 as digits')]).nullable().optional();

/**
 * `data` of the Key Vault secret events. The published sample has `"ObjectName "` (with a
 * space) and a version with a leading space, so names are trimmed and the secret's `Id` URL is
 * the authority when a field is missing.
 */
export const keyVaultSecretDataSchema = z
  .object({
    Id: z.url(),
    VaultName: z.string().min(1),
    ObjectType: z.string().optional(),
    ObjectName: z.string().optional(),
    'ObjectName ': z.string().optional(),
    Version: z.string().optional(),
    NBF: epochSeconds,
    EXP: epochSeconds,
  })
  .loose();

/** `data` of the subscription validation handshake. */
export const subscriptionValidationDataSchema = z.object({ validationCode: z.string().min(1), validationUrl: z.string().optional() }).loose();

/** What the event says, typed by kind. */
export type EventPayload =
  | {
      readonly kind: 'slot-swap';
      /** `Completed`, `Failed`, `Started`, `WithPreviewStarted`, `WithPreviewCancelled`. */
      readonly phase: string;
      readonly data: z.infer<typeof slotSwapDataSchema>;
      readonly siteName: string;
      /** The site's ARM id as ARM compares it (from the topic or source), when the event carries one. */
      readonly siteId: string | undefined;
      readonly sourceSlot: string | undefined;
      readonly targetSlot: string | undefined;
    }
  | {
      readonly kind: 'resource';
      readonly action: 'Write' | 'Delete' | 'Action';
      readonly outcome: 'Success' | 'Failure' | 'Cancel';
      readonly data: z.infer<typeof resourceEventDataSchema>;
      /** `data.resourceUri` as ARM compares it. */
      readonly resourceId: string;
      readonly operationName: string;
    }
  | {
      readonly kind: 'key-vault-secret';
      /** `NearExpiry`, `Expired` or `NewVersionCreated`. */
      readonly change: 'NearExpiry' | 'Expired' | 'NewVersionCreated';
      readonly data: z.infer<typeof keyVaultSecretDataSchema>;
      readonly vaultName: string;
      readonly secretName: string;
      readonly version: string;
      readonly notBefore: Date | undefined;
      readonly expiresAt: Date | undefined;
    }
  | { readonly kind: 'subscription-validation'; readonly validationCode: string; readonly validationUrl: string | undefined }
  | { readonly kind: 'unknown'; readonly data: unknown };

/** An event as the autopilot reads it, from either schema. */
export type ParsedEvent = EventPayload & {
  readonly schema: 'EventGridSchema' | 'CloudEventSchemaV1_0';
  readonly id: string;
  /** `eventType` or `type`. */
  readonly type: string;
  /** `topic` or `source`, when given. */
  readonly source: string | undefined;
  readonly subject: string | undefined;
  readonly time: Date | undefined;
  /** Event Grid schema only. */
  readonly dataVersion: string | undefined;
  /**
   * The idempotency key: `event:{id}`, or for Key Vault secret events
   * `keyvault-secret:{vault}/{name}/{version}:{change}` (case-insensitive), so a redelivery of the
   * same version does nothing twice.
   */
  readonly idempotencyKey: string;
};

/**
 * Reads and parses a delivery: an array of Event Grid events, one event, a CloudEvent
 * (structured mode) or a CloudEvents batch.
 *
 * @throws {@link PayloadError} for a body that is too large, not JSON, or holds an event that is
 * in neither schema or whose data misses what its type must carry (the error names the index)
 */
export function parseEventGridBody(body: string | Uint8Array | undefined, options: { contentType?: string | undefined; maxBytes?: number } = {}): ParsedEvent[] {
  const value = readJsonBody(body, { what: WHAT, maxBytes: options.maxBytes ?? MAX_EVENT_BODY_BYTES, contentType: options.contentType, jsonContentTypes: CLOUD_EVENTS_CONTENT_TYPES });
  const events = Array.isArray(value) ? (value as unknown[]) : [value];
  if (events.length === 0) throw new PayloadError(WHAT, [{ path: '', expected: 'expected at least one event', found: 'an empty list' }]);
  if (events.length > MAX_EVENTS_PER_DELIVERY) {
    throw new PayloadError(WHAT, [{ path: '', expected: `expected at most ${String(MAX_EVENTS_PER_DELIVERY)} events`, found: `${String(events.length)} events` }]);
  }
  return events.map((event, index) => parseEvent(event, Array.isArray(value) ? [index] : []));
}

/**
 * Parses one event in either schema (what the Functions Event Grid trigger hands over).
 *
 * @param at where the event sits in the delivery, for error paths
 * @throws {@link PayloadError} naming each field that is not as its schema says
 */
export function parseEvent(event: unknown, at: readonly PropertyKey[] = []): ParsedEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new PayloadError(WHAT, [{ path: payloadPath(at), expected: 'expected an event object', found: Array.isArray(event) ? 'a list' : JSON.stringify(event) }]);
  }
  const record = event as Record<string, unknown>;
  if ('specversion' in record) {
    const parsed = cloudEventSchema.safeParse(event);
    if (!parsed.success) throw new PayloadError(WHAT, payloadIssues(parsed.error, event, at));
    const cloud = parsed.data;
    const data = cloud.data === undefined && cloud.data_base64 !== undefined ? decodeBase64Data(cloud.data_base64, at) : cloud.data;
    return finish({ schema: 'CloudEventSchemaV1_0', id: cloud.id, type: cloud.type, source: cloud.source, subject: cloud.subject, time: cloud.time, dataVersion: undefined, data }, event, at);
  }
  if ('eventType' in record) {
    const parsed = eventGridEventSchema.safeParse(event);
    if (!parsed.success) throw new PayloadError(WHAT, payloadIssues(parsed.error, event, at));
    const grid = parsed.data;
    return finish({ schema: 'EventGridSchema', id: grid.id, type: grid.eventType, source: grid.topic, subject: grid.subject, time: grid.eventTime, dataVersion: grid.dataVersion, data: grid.data }, event, at);
  }
  throw new PayloadError(WHAT, [
    {
      path: payloadPath(at),
      expected: 'expected an Event Grid schema event (id, eventType, subject, eventTime, data, dataVersion) or a CloudEvent (specversion "1.0", id, source, type)',
      found: `a mapping with ${Object.keys(record).slice(0, 8).join(', ') || 'no fields'}`,
    },
  ]);
}

interface Envelope {
  readonly schema: ParsedEvent['schema'];
  readonly id: string;
  readonly type: string;
  readonly source: string | undefined;
  readonly subject: string | undefined;
  readonly time: string | undefined;
  readonly dataVersion: string | undefined;
  readonly data: unknown;
}

function finish(envelope: Envelope, event: unknown, at: readonly PropertyKey[]): ParsedEvent {
  const dataPath = [...at, envelope.schema === 'CloudEventSchemaV1_0' && (event as Record<string, unknown>).data === undefined ? 'data_base64' : 'data'];
  const payload = typedPayload(envelope, dataPath);
  const base = {
    schema: envelope.schema,
    id: envelope.id,
    type: envelope.type,
    source: envelope.source,
    subject: envelope.subject,
    time: envelope.time === undefined ? undefined : new Date(envelope.time),
    dataVersion: envelope.dataVersion,
  };
  const idempotencyKey =
    payload.kind === 'key-vault-secret'
      ? `keyvault-secret:${payload.vaultName}/${payload.secretName}/${payload.version}:${payload.change}`.toLowerCase()
      : `event:${envelope.id}`;
  return { ...payload, ...base, idempotencyKey };
}

function typedPayload(envelope: Envelope, dataPath: readonly PropertyKey[]): EventPayload {
  const read = <T>(schema: z.ZodType<T>): T => {
    const parsed = schema.safeParse(envelope.data);
    if (!parsed.success) {
      throw new PayloadError(
        WHAT,
        payloadIssues(parsed.error, envelope.data, dataPath).map((issue) => ({ ...issue, expected: `${issue.expected} (the data of a ${envelope.type} event)` })),
      );
    }
    return parsed.data;
  };
  const type = envelope.type;
  const swap = /^Microsoft\.Web\.SlotSwap(.+)$/i.exec(type);
  if (swap?.[1] !== undefined) {
    const data = read(slotSwapDataSchema);
    return {
      kind: 'slot-swap',
      phase: swap[1],
      data,
      siteName: data.siteName,
      siteId: siteIdOf(envelope.source, data.siteName),
      sourceSlot: data.sourceSlot,
      targetSlot: data.targetSlot,
    };
  }
  const resource = /^Microsoft\.Resources\.Resource(Write|Delete|Action)(Success|Failure|Cancel)$/i.exec(type);
  if (resource?.[1] !== undefined && resource[2] !== undefined) {
    const data = read(resourceEventDataSchema);
    return {
      kind: 'resource',
      action: capitalised(resource[1]) as 'Write' | 'Delete' | 'Action',
      outcome: capitalised(resource[2]) as 'Success' | 'Failure' | 'Cancel',
      data,
      resourceId: resourceIdKey(data.resourceUri),
      operationName: data.operationName,
    };
  }
  const secret = /^Microsoft\.KeyVault\.Secret(NearExpiry|Expired|NewVersionCreated)$/i.exec(type);
  if (secret?.[1] !== undefined) {
    const data = read(keyVaultSecretDataSchema);
    const fromId = secretOfId(data.Id);
    const secretName = data.ObjectName?.trim() || data['ObjectName ']?.trim() || fromId?.name || '';
    const version = data.Version?.trim() || fromId?.version || '';
    if (secretName === '' || version === '') {
      throw new PayloadError(WHAT, [
        { path: payloadPath([...dataPath, 'Id']), expected: 'expected the secret id https://{vault}.vault.azure.net/secrets/{name}/{version} (or ObjectName and Version)', found: JSON.stringify(data.Id.slice(0, 120)) },
      ]);
    }
    return {
      kind: 'key-vault-secret',
      change: SECRET_CHANGES[secret[1].toLowerCase()] ?? 'NewVersionCreated',
      data,
      vaultName: data.VaultName.trim(),
      secretName,
      version,
      notBefore: epochDate(data.NBF),
      expiresAt: epochDate(data.EXP),
    };
  }
  if (/^Microsoft\.EventGrid\.SubscriptionValidationEvent$/i.test(type)) {
    const data = read(subscriptionValidationDataSchema);
    return { kind: 'subscription-validation', validationCode: data.validationCode, validationUrl: data.validationUrl };
  }
  return { kind: 'unknown', data: envelope.data };
}

const SECRET_CHANGES: Readonly<Record<string, 'NearExpiry' | 'Expired' | 'NewVersionCreated'>> = { nearexpiry: 'NearExpiry', expired: 'Expired', newversioncreated: 'NewVersionCreated' };

const capitalised = (word: string): string => `${word.charAt(0).toUpperCase()}${word.slice(1).toLowerCase()}`;

/** The site an App Service event is about: its topic when that is the site's ARM id. */
function siteIdOf(source: string | undefined, siteName: string): string | undefined {
  if (source === undefined) return undefined;
  const match = /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Web\/sites\/([^/]+)/i.exec(source);
  if (match?.[1]?.toLowerCase() !== siteName.toLowerCase()) return undefined;
  return resourceIdKey(match[0]);
}

/** Name and version from a secret id `https://{vault}.vault.azure.net/secrets/{name}/{version}`. */
function secretOfId(id: string): { name: string; version: string | undefined } | undefined {
  const match = /\/secrets\/([^/?#]+)(?:\/([^/?#]+))?\/?$/i.exec(new URL(id).pathname);
  return match?.[1] === undefined ? undefined : { name: decodeURIComponent(match[1]), version: match[2] === undefined ? undefined : decodeURIComponent(match[2]) };
}

function epochDate(value: string | number | null | undefined): Date | undefined {
  if (value == null) return undefined;
  const seconds = typeof value === 'number' ? value : Number(value.trim());
  return Number.isFinite(seconds) ? new Date(seconds * 1000) : undefined;
}

/** `data_base64` of a JSON CloudEvent: the data, when it decodes to JSON; otherwise the text. */
function decodeBase64Data(encoded: string, at: readonly PropertyKey[]): unknown {
  const text = Buffer.from(encoded, 'base64').toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    if (text === '') throw new PayloadError(WHAT, [{ path: payloadPath([...at, 'data_base64']), expected: 'expected base64 data', found: 'nothing that decodes' }]);
    return text;
  }
}
