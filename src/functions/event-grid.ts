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
 * it fails, `SecretNearExpiry` / `SecretExpired` notify, and every other type is recorded and
 * ignored.
 *
 * Rotation hand-over: a `SecretNearExpiry` or `SecretExpired` of a secret with a rotation policy
 * (and an estate not in dry-run mode) starts `rotationOrchestrator` instead, as instance
 * `rotation-{vault}-{secret}-{version}`, so a redelivery, or the other event of the same version,
 * starts nothing; the rotation itself does nothing when that version is no longer the latest
 * (it was rotated already).
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
import { rotationInstanceId, ROTATION_ORCHESTRATOR } from '../rotation/names.ts';
import { rotationPolicyOf, RotationRequestError } from '../rotation/steps.ts';
import type { RotationInput } from '../orchestrators/rotation.ts';
import { checkReadiness } from '../startup/readiness.ts';
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

/**
 * Starts the rotation of a near-expiry or expired secret that has a rotation policy; undefined
 * when the event is not one (or the estate is in dry-run mode or not ready), so it is notified
 * as before.
 */
async function rotationHandOver(parsed: ParsedEvent, client: DurableClient, context: InvocationContext): Promise<EventIntake | undefined> {
  if (parsed.kind !== 'key-vault-secret' || parsed.change === 'NewVersionCreated') return undefined;
  const readiness = await checkReadiness();
  if (!readiness.ready) return undefined;
  try {
    rotationPolicyOf(readiness.config, parsed.vaultName, parsed.secretName);
  } catch (error) {
    if (error instanceof RotationRequestError) return undefined;
    throw error;
  }
  if (readiness.config.dryRun) {
    context.log(`eventGrid: ${parsed.type} of ${parsed.vaultName}/${parsed.secretName} has a rotation policy, but the estate is in dry-run mode: notified, not rotated`);
    return undefined;
  }
  const id = rotationInstanceId(parsed.vaultName, parsed.secretName, parsed.version);
  if ((await instanceStatus(client, id)) !== undefined) {
    context.log(`eventGrid: ${parsed.type} ${parsed.id} of version ${parsed.version} is a duplicate of rotation ${id}; nothing started`);
    return { outcome: 'duplicate', id, type: parsed.type, message: 'duplicate' };
  }
  const input: RotationInput = { vault: parsed.vaultName, secret: parsed.secretName, trigger: 'event', requestedBy: `Event Grid (${parsed.type})`, expectedVersion: parsed.version };
  try {
    await client.startNew(ROTATION_ORCHESTRATOR, { instanceId: id, input });
  } catch (error) {
    if (/\b409\b|already exists/i.test(errorMessage(error))) return { outcome: 'duplicate', id, type: parsed.type, message: 'duplicate (raced)' };
    throw error;
  }
  context.log(`eventGrid: ${parsed.type} ${parsed.id} started rotation ${id}`);
  return { outcome: 'started', id, type: parsed.type, message: 'started rotation' };
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
  const rotation = await rotationHandOver(parsed, client, context);
  if (rotation !== undefined) return rotation;
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
