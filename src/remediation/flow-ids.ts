/**
 * The ids of a remediation, all derived from the trigger's idempotency key (an alert's
 * `alertId|monitorCondition`, an event's id or Key Vault secret version), so every delivery of
 * one alert or event names the same orchestration, run record, step journal and page.
 */
import { createHash } from 'node:crypto';

/** Prefix of remediation instance ids, so the hub's instance list tells them apart. */
export const REMEDIATION_INSTANCE_PREFIX = 'rem-';

function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The durable instance id of the remediation an idempotency key starts: `rem-<32 hex>`. */
export function remediationInstanceId(idempotencyKey: string): string {
  return `${REMEDIATION_INSTANCE_PREFIX}${digest(`remediation\n${idempotencyKey}`).slice(0, 32)}`;
}

/** Whether a string is a remediation instance id (what `GET /api/remediations/{id}` accepts). */
export function isRemediationInstanceId(id: string): boolean {
  return /^rem-[0-9a-f]{32}$/.test(id);
}

/** A uuid-shaped id (version 8, RFC 9562 custom) derived from `text`, for run records and journals, which want uuids. */
export function derivedUuid(text: string): string {
  const hex = digest(text).slice(0, 32).split('');
  hex[12] = '8';
  const variant = hex[16] ?? '0';
  hex[16] = ((parseInt(variant, 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The run id of a remediation's run record. */
export function remediationRunId(instanceId: string): string {
  return derivedUuid(`run\n${instanceId}`);
}

/** The PagerDuty dedup key of a remediation's incident: one per alert (Fired and Resolved share it). */
export function incidentDedupKey(firedInstanceId: string): string {
  return `ops-autopilot/${firedInstanceId}`;
}
