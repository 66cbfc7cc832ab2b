/**
 * Sends a finished run's notifications to the configured webhooks: each webhook gets one
 * message when the run raised an event it subscribes to (`on: [fail, warn, destructive]`).
 * A webhook that fails is reported in the result and never throws: a notification problem
 * must not mask the run's own outcome.
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import type { NotificationRecord, RunRecord } from '../runs/run-record.ts';
import { redactString } from '../runs/secret-guard.ts';
import { httpsPostJson } from './https-post.ts';
import { notificationEvents, notificationPayload } from './notification-payload.ts';

/** Options of {@link sendRunNotifications}. */
export interface SendNotificationsOptions {
  /** The CA-trusting agent of the client layer (`AzureClients.agent()`). */
  readonly agent?: HttpsAgent;
  readonly timeoutMs?: number;
}

/**
 * Sends the notifications of `record` and returns one entry per webhook that was due, with
 * outcome `applied` or `failed`. Webhooks are posted concurrently.
 */
export async function sendRunNotifications(
  config: Pick<EstateConfig, 'notifications'>,
  record: RunRecord,
  options: SendNotificationsOptions = {},
): Promise<NotificationRecord[]> {
  const events = notificationEvents(record);
  if (events.length === 0) return [];
  const due = config.notifications.webhooks
    .map((webhook) => ({ webhook, matched: events.filter((event) => webhook.on.includes(event)) }))
    .filter(({ matched }) => matched.length > 0);
  return Promise.all(
    due.map(async ({ webhook, matched }): Promise<NotificationRecord> => {
      try {
        const payload = notificationPayload(webhook.format, record, matched);
        const status = await httpsPostJson(webhook.url, payload, {
          name: webhook.name,
          ...(options.agent === undefined ? {} : { agent: options.agent }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        });
        return { webhook: webhook.name, outcome: 'applied', events: matched, message: `sent ${webhook.format} notification (${matched.join(', ')}): HTTP ${status}` };
      } catch (error) {
        return { webhook: webhook.name, outcome: 'failed', events: matched, message: redactString(errorMessage(error)) };
      }
    }),
  );
}
