/**
 * What a run's notification says, and its JSON shape per webhook format.
 *
 * - `teams`: an Office 365 connector MessageCard (`@type`, `summary`, `title`, `text`,
 *   `sections[].facts`), for existing Teams incoming-webhook connectors. Microsoft is retiring
 *   those connectors in favour of Workflows.
 * - `teams-workflow`: for a Teams Workflows webhook ("When a Teams webhook request is
 *   received"): `{ type: 'message', attachments: [{ contentType:
 *   'application/vnd.microsoft.card.adaptive', content: <Adaptive Card 1.4> }] }`, the card
 *   holding TextBlocks and a FactSet. Teams refuses messages above about 28 KB, so detail lines
 *   are dropped from the end (and counted) until the JSON fits {@link TEAMS_MAX_PAYLOAD_BYTES}.
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
export type WebhookFormat = 'teams' | 'teams-workflow' | 'slack' | 'generic';

/** At most this many detail lines per message; the rest are counted. */
export const MAX_LINES = 15;

/** Teams' documented message size limit (about 28 KB), in bytes of UTF-8 JSON. */
export const TEAMS_MAX_PAYLOAD_BYTES = 28_000;

/** The Adaptive Card schema version of `teams-workflow` cards (Teams renders 1.4 on every client). */
export const ADAPTIVE_CARD_VERSION = '1.4';

/** One Adaptive Card TextBlock never carries more than this many characters of a detail line. */
const MAX_CARD_LINE_CHARS = 2_000;

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

const ADAPTIVE_COLOR = { fail: 'Attention', warn: 'Warning', destructive: 'Accent' } as const;

/** A Teams Workflows message: one Adaptive Card attachment. */
function adaptiveCardMessage(content: NotificationContent, lines: readonly string[], events: readonly NotificationEvent[]): Record<string, unknown> {
  const color = events.includes('fail') ? ADAPTIVE_COLOR.fail : events.includes('warn') ? ADAPTIVE_COLOR.warn : ADAPTIVE_COLOR.destructive;
  const clip = (line: string): string => (line.length > MAX_CARD_LINE_CHARS ? `${line.slice(0, MAX_CARD_LINE_CHARS - 1)}…` : line);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: ADAPTIVE_CARD_VERSION,
          // Teams draws cards narrow unless told otherwise; run details read better full width.
          msteams: { width: 'Full' },
          fallbackText: content.summary,
          body: [
            { type: 'TextBlock', text: content.title, weight: 'Bolder', size: 'Medium', color, wrap: true },
            { type: 'TextBlock', text: content.summary, wrap: true },
            ...lines.map((line) => ({ type: 'TextBlock', text: clip(line), wrap: true, spacing: 'Small', size: 'Small' })),
            { type: 'FactSet', facts: content.facts.map((fact) => ({ title: fact.name, value: fact.value })) },
          ],
        },
      },
    ],
  };
}

/** Size of a payload as sent: UTF-8 bytes of its JSON. */
export function payloadBytes(payload: unknown): number {
  return Buffer.byteLength(JSON.stringify(payload), 'utf8');
}

/** The JSON body for a webhook of `format`. Secrets are masked and then verified absent. */
export function notificationPayload(format: WebhookFormat, record: RunRecord, events: readonly NotificationEvent[]): Record<string, unknown> {
  const content = notificationContent(record, events);
  const more = content.omitted > 0 ? [`... and ${content.omitted} more (run record ${record.runId})`] : [];
  const bodyLines = [...content.lines, ...more];
  let payload: Record<string, unknown>;
  switch (format) {
    case 'teams-workflow': {
      // Drop detail lines from the end until the masked card fits Teams' size limit; the count
      // of what was left out stays, so the reader knows to open the run record.
      let kept = content.lines.length;
      for (;;) {
        const omitted = content.omitted + content.lines.length - kept;
        const lines = [...content.lines.slice(0, kept), ...(omitted > 0 ? [`... and ${String(omitted)} more (run record ${record.runId})`] : [])];
        payload = redactSecrets(adaptiveCardMessage(content, lines, events));
        if (kept === 0 || payloadBytes(payload) <= TEAMS_MAX_PAYLOAD_BYTES) break;
        kept -= 1;
      }
      break;
    }
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
