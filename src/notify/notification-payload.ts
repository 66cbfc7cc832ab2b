/**
 * What a run's notification says, and its JSON shape per webhook format.
 *
 * - `teams`: an Office 365 connector MessageCard (`@type`, `summary`, `title`, `text`,
 *   `sections[].facts`), which Teams incoming webhooks and Workflows webhooks accept; `text`
 *   alone is also what the simplest Teams webhook reads.
 * - `slack`: `text` (the fallback every Slack client shows) plus Block Kit `blocks`.
 * - `generic`: `text` plus the run's identifiers, counts and the lines, for any JSON consumer.
 *
 * Every payload passes through the secret guard before it leaves: a secret-looking value is
 * masked and the payload is then checked to hold none.
 */
import type { RunRecord } from '../runs/run-record.ts';
import { assertNoSecrets, redactSecrets } from '../runs/secret-guard.ts';

/** Why a run notifies: a failure, a warning, or a destructive action applied. */
export type NotificationEvent = 'fail' | 'warn' | 'destructive';

/** Webhook payload formats (config `notifications.webhooks[].format`). */
export type WebhookFormat = 'teams' | 'slack' | 'generic';

/** At most this many detail lines per message; the rest are counted. */
export const MAX_LINES = 15;

/** The events a finished run raises. */
export function notificationEvents(record: RunRecord): NotificationEvent[] {
  const events: NotificationEvent[] = [];
  const targets = record.targets;
  const failed =
    record.status === 'failed' ||
    record.status === 'partial' ||
    record.error !== undefined ||
    targets.some((target) => target.status === 'failed' || target.findings.some((finding) => finding.severity === 'fail'));
  if (failed) events.push('fail');
  if (targets.some((target) => target.findings.some((finding) => finding.severity === 'warn'))) events.push('warn');
  if (targets.some((target) => target.actions.some((action) => action.outcome === 'applied' && action.details?.destructive === true))) {
    events.push('destructive');
  }
  return events;
}

/** The human content of a notification, shared by every format. */
export interface NotificationContent {
  readonly title: string;
  readonly summary: string;
  readonly lines: readonly string[];
  readonly omitted: number;
  readonly facts: readonly { readonly name: string; readonly value: string }[];
  readonly color: string;
}

const shortName = (id: string): string => id.split('/').filter((part) => part !== '').at(-1) ?? id;

/** Builds the content of a run's notification for the events raised. */
export function notificationContent(record: RunRecord, events: readonly NotificationEvent[]): NotificationContent {
  const lines: string[] = [];
  if (record.error !== undefined) lines.push(`run: ${record.error.message}`);
  for (const target of record.targets) {
    const name = shortName(target.targetId);
    if (target.error !== undefined) lines.push(`FAILED ${name}: ${target.error.message}`);
    for (const action of target.actions) {
      if (action.outcome === 'failed' && target.error === undefined) lines.push(`FAILED ${name}: ${action.action} ${action.resource ?? ''}: ${action.message}`);
    }
    for (const finding of target.findings) {
      if (finding.severity === 'fail' || finding.severity === 'warn') lines.push(`${finding.severity.toUpperCase()} ${name}: ${finding.message}`);
    }
  }
  if (events.includes('destructive')) {
    for (const target of record.targets) {
      for (const action of target.actions) {
        if (action.outcome === 'applied' && action.details?.destructive === true) lines.push(`APPLIED ${shortName(target.targetId)}: ${action.message}`);
      }
    }
  }
  const { summary } = record;
  const destructiveApplied = record.targets.reduce(
    (count, target) => count + target.actions.filter((action) => action.outcome === 'applied' && action.details?.destructive === true).length,
    0,
  );
  const headline = events.includes('fail') ? 'failed' : events.includes('warn') ? 'has warnings' : 'applied destructive actions';
  const title = `Ops Autopilot: ${record.runbook} on ${record.estate} ${headline}`;
  const counts = `${summary.targets} target(s), ${summary.targetsFailed} failed; findings ${summary.findings.fail} fail / ${summary.findings.warn} warn; actions ${summary.actions.applied} applied, ${summary.actions.failed} failed, ${summary.actions.planned} planned`;
  return {
    title,
    summary: `${title}: ${counts}${destructiveApplied > 0 ? `; ${destructiveApplied} destructive applied` : ''}`,
    lines: lines.slice(0, MAX_LINES),
    omitted: Math.max(0, lines.length - MAX_LINES),
    facts: [
      { name: 'Estate', value: record.estate },
      { name: 'Runbook', value: record.runbook },
      { name: 'Status', value: record.status },
      { name: 'Trigger', value: record.trigger },
      { name: 'Dry run', value: String(record.dryRun) },
      { name: 'Run id', value: record.runId },
      { name: 'Events', value: events.join(', ') },
    ],
    color: events.includes('fail') ? 'D70000' : events.includes('warn') ? 'FFA500' : '0078D7',
  };
}

/** The JSON body for a webhook of `format`. Secrets are masked and then verified absent. */
export function notificationPayload(format: WebhookFormat, record: RunRecord, events: readonly NotificationEvent[]): Record<string, unknown> {
  const content = notificationContent(record, events);
  const more = content.omitted > 0 ? [`... and ${content.omitted} more (run record ${record.runId})`] : [];
  const bodyLines = [...content.lines, ...more];
  let payload: Record<string, unknown>;
  switch (format) {
    case 'teams':
      payload = {
        '@type': 'MessageCard',
        '@context': 'https://schema.org/extensions',
        summary: content.summary,
        themeColor: content.color,
        title: content.title,
        // Teams renders markdown; two trailing spaces would be needed for line breaks, a blank line is clearer.
        text: [content.summary, ...bodyLines].join('\n\n'),
        sections: [{ activityTitle: content.title, facts: content.facts }],
      };
      break;
    case 'slack':
      payload = {
        text: content.summary,
        blocks: [
          { type: 'header', text: { type: 'plain_text', text: content.title.slice(0, 150) } },
          { type: 'section', text: { type: 'mrkdwn', text: content.summary } },
          ...(bodyLines.length === 0 ? [] : [{ type: 'section', text: { type: 'mrkdwn', text: bodyLines.map((line) => `• ${line}`).join('\n').slice(0, 3000) } }]),
          { type: 'context', elements: content.facts.map((fact) => ({ type: 'mrkdwn', text: `*${fact.name}:* ${fact.value}` })).slice(0, 10) },
        ],
      };
      break;
    case 'generic':
      payload = {
        text: content.summary,
        title: content.title,
        runId: record.runId,
        runbook: record.runbook,
        estate: record.estate,
        status: record.status,
        dryRun: record.dryRun,
        trigger: record.trigger,
        events: [...events],
        summary: record.summary,
        lines: bodyLines,
      };
      break;
  }
  const safe = redactSecrets(payload);
  assertNoSecrets(safe, `notification of run ${record.runId}`);
  return safe;
}
