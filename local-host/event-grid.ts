import { LocalHostError } from './host-errors.ts';

/** A parsed Event Grid delivery: the events plus which schema they used. */
export interface EventGridDelivery {
  readonly schema: 'EventGridSchema' | 'CloudEventSchemaV1_0';
  readonly events: readonly Record<string, unknown>[];
}

/** The body is not a valid Event Grid or CloudEvents payload. */
export class EventGridPayloadError extends LocalHostError {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses an Event Grid webhook body. Event Grid schema deliveries are arrays of events with
 * `eventType`/`subject`/`dataVersion`; CloudEvents 1.0 deliveries are one event or a batch array
 * with `specversion`/`type`/`source`.
 */
export function parseEventGridBody(body: unknown): EventGridDelivery {
  const list = Array.isArray(body) ? (body as unknown[]) : [body];
  if (list.length === 0) throw new EventGridPayloadError('Event Grid delivery is empty; expected at least one event');
  const events: Record<string, unknown>[] = [];
  let schema: EventGridDelivery['schema'] | undefined;
  for (const [index, item] of list.entries()) {
    if (!isRecord(item)) throw new EventGridPayloadError(`event #${index} is not a JSON object`);
    const itemSchema = typeof item.specversion === 'string' ? 'CloudEventSchemaV1_0' : 'EventGridSchema';
    if (itemSchema === 'CloudEventSchemaV1_0') {
      for (const key of ['id', 'source', 'type']) {
        if (typeof item[key] !== 'string') throw new EventGridPayloadError(`CloudEvent #${index} has no "${key}"; expected a string`);
      }
    } else {
      for (const key of ['id', 'eventType', 'subject', 'eventTime']) {
        if (typeof item[key] !== 'string') throw new EventGridPayloadError(`Event Grid event #${index} has no "${key}"; expected a string`);
      }
    }
    if (schema && schema !== itemSchema) throw new EventGridPayloadError('Event Grid delivery mixes Event Grid schema and CloudEvents');
    schema = itemSchema;
    events.push(item);
  }
  return { schema: schema ?? 'EventGridSchema', events };
}

/** The subscription-validation code of an Event Grid handshake, if the body is one. */
export function subscriptionValidationCode(events: readonly Record<string, unknown>[]): string | undefined {
  const first = events[0];
  if (first?.eventType !== 'Microsoft.EventGrid.SubscriptionValidationEvent') return undefined;
  const data = first.data;
  return isRecord(data) && typeof data.validationCode === 'string' ? data.validationCode : undefined;
}
