/**
 * `eventGrid`: the Event Grid trigger (Event Grid schema and CloudEvents 1.0; the extension's
 * webhook answers the subscription validation handshake and hands over one event per call).
 *
 * Each event is parsed (an invalid one is logged and acknowledged: Event Grid would only retry
 * it), keyed by its idempotency key (the event id, or for Key Vault secret events the secret
 * version and change) and started as a `remediationOrchestrator` instance whose id derives from
 * that key, so a redelivered event starts nothing. The orchestration decides by type:
 * `SlotSwapCompleted` watches production and swaps back if it fails, `SlotSwapFailed` notifies,
 * `ResourceWriteSuccess` on a configured container app watches the new revision and rolls back if
 * it fails, `SecretNearExpiry` / `SecretExpired` notify (until rotation takes them over), and
 * every other type is recorded and ignored.
 */
import type { EventGridEvent, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient } from 'durable-functions';
import { errorMessage } from '../errors.ts';
import { parseEvent, type ParsedEvent } from '../events/event-grid-schema.ts';
import { PayloadError } from '../intake/payload.ts';
import type { RemediationInput } from '../remediation/flow-activities.ts';
import { remediationInstanceId } from '../remediation/flow-ids.ts';
import type { Json } from '../remediation/flow-services.ts';
import { redactSecrets } from '../runs/secret-guard.ts';
import { instanceStatus } from './alerts.ts';
import { REMEDIATION_FUNCTION_NAMES } from './function-names.ts';

/** What the trigger did with one event. */
export interface EventIntake {
  readonly outcome: 'started' | 'duplicate' | 'invalid' | 'validation';
  readonly id?: string;
  readonly type?: string;
  readonly message: string;
}

/**
 * The event as the orchestration's input: without the caller's token claims and authorization
 * (ARM events carry them; nothing downstream needs them), then through the secret guard. An event
 * that no longer parses after that is refused rather than passed on with a secret.
 */
export function durablePayload(event: unknown): Json | undefined {
  let value = event;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    const data = record.data;
    if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
      const { claims: _claims, authorization: _authorization, ...rest } = data as Record<string, unknown>;
      value = { ...record, data: rest };
    }
  }
  const redacted = redactSecrets(value) as Json;
  try {
    parseEvent(redacted);
    return redacted;
  } catch {
    return undefined;
  }
}

/** The handler of the `eventGrid` trigger. */
export async function eventGridHandler(event: unknown, client: DurableClient, context: InvocationContext): Promise<EventIntake> {
  let parsed: ParsedEvent;
  try {
    parsed = parseEvent(event);
  } catch (error) {
    if (error instanceof PayloadError) {
      // Acknowledged, never retried: a redelivery would be just as invalid. Nothing starts.
      const intake: EventIntake = { outcome: 'invalid', message: error.message };
      context.warn(`eventGrid: ignored an invalid event: ${error.lines().join('; ')}`);
      return intake;
    }
    throw error;
  }
  if (parsed.kind === 'subscription-validation') {
    context.log(`eventGrid: subscription validation event ${parsed.id} (answered by the extension's handshake)`);
    return { outcome: 'validation', type: parsed.type, message: 'subscription validation' };
  }
  const id = remediationInstanceId(parsed.idempotencyKey);
  if ((await instanceStatus(client, id)) !== undefined) {
    context.log(`eventGrid: ${parsed.type} ${parsed.id} is a duplicate of remediation ${id}; nothing started`);
    return { outcome: 'duplicate', id, type: parsed.type, message: 'duplicate' };
  }
  const payload = durablePayload(event);
  if (payload === undefined) {
    context.warn(`eventGrid: ignored ${parsed.type} ${parsed.id}: it holds secret-looking values where its schema needs data, so it cannot be passed on without them`);
    return { outcome: 'invalid', id, type: parsed.type, message: 'secret-looking values in required fields' };
  }
  const input: RemediationInput = {
    source: 'event',
    payload,
    triggerKey: parsed.idempotencyKey,
    requestedBy: `Event Grid (${parsed.type})`,
    receivedAt: new Date().toISOString(),
  };
  try {
    await client.startNew(REMEDIATION_FUNCTION_NAMES.remediationOrchestrator, { instanceId: id, input });
  } catch (error) {
    if (/\b409\b|already exists/i.test(errorMessage(error))) return { outcome: 'duplicate', id, type: parsed.type, message: 'duplicate (raced)' };
    throw error;
  }
  context.log(`eventGrid: ${parsed.type} ${parsed.id} started remediation ${id}`);
  return { outcome: 'started', id, type: parsed.type, message: 'started' };
}

df.app.client.eventGrid(REMEDIATION_FUNCTION_NAMES.eventGrid, {
  handler: async (event: EventGridEvent, client: DurableClient, context: InvocationContext): Promise<void> => {
    await eventGridHandler(event, client, context);
  },
});
