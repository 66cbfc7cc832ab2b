/**
 * Webhook payload shapes: `teams-workflow` (Teams Workflows webhook: a message with one Adaptive
 * Card attachment), next to the legacy `teams` MessageCard, with the secret guard and Teams'
 * ~28 KB message size limit.
 */
import { describe, expect, it } from 'vitest';
import { ADAPTIVE_CARD_VERSION, MAX_LINES, notificationPayload, payloadBytes, TEAMS_MAX_PAYLOAD_BYTES } from '../../../src/notify/notification-payload.ts';
import type { RunRecord, TargetRecord } from '../../../src/runs/run-record.ts';

const SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const target = (name: string, extra: Partial<TargetRecord> = {}): TargetRecord => ({
  targetId: `/subscriptions/${SUB}/resourceGroups/rg-xshopai-prod/providers/Microsoft.ContainerRegistry/registries/${name}`,
  status: 'failed',
  actions: [],
  findings: [],
  ...extra,
});

function record(targets: readonly TargetRecord[]): RunRecord {
  return {
    schemaVersion: 1,
    runId: 'run-0001',
    runbook: 'image-purge',
    trigger: 'timer',
    dryRun: false,
    estate: 'xshopai',
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:01:00.000Z',
    durationMs: 60_000,
    status: 'partial',
    targets,
    summary: { targets: targets.length, targetsSucceeded: 0, targetsFailed: targets.length, targetsSkipped: 0, actions: { applied: 0, skipped: 0, failed: 1, planned: 0 }, findings: { info: 0, warn: 0, fail: 0 } },
  };
}

interface CardElement {
  type: string;
  text?: string;
  facts?: { title: string; value: string }[];
}
interface WorkflowMessage {
  type: string;
  attachments: { contentType: string; content: { type: string; version: string; $schema: string; body: CardElement[] } }[];
}

const failing = record([
  target('crxshopaiprod', {
    actions: [{ action: 'delete-tag', at: '2026-01-01T00:00:30.000Z', outcome: 'failed', resource: 'crxshopaiprod/user-service:v1.0.1', message: 'refusing to delete: in use by ca-user-service' }],
  }),
]);

describe('teams-workflow payload (Teams Workflows webhook, Adaptive Card)', () => {
  it('is a message with one Adaptive Card attachment: TextBlocks for title, summary and lines, a FactSet', () => {
    const payload = notificationPayload('teams-workflow', failing, ['fail']) as unknown as WorkflowMessage;
    expect(payload.type).toBe('message');
    expect(payload.attachments).toHaveLength(1);
    const attachment = payload.attachments[0];
    expect(attachment?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    const card = attachment?.content;
    expect(card?.type).toBe('AdaptiveCard');
    expect(card?.$schema).toBe('http://adaptivecards.io/schemas/adaptive-card.json');
    expect(Number(card?.version)).toBeGreaterThanOrEqual(1.4);
    expect(card?.version).toBe(ADAPTIVE_CARD_VERSION);
    const body = card?.body ?? [];
    expect(body[0]).toMatchObject({ type: 'TextBlock', text: 'Ops Autopilot: image-purge on xshopai failed', weight: 'Bolder', wrap: true });
    expect(body.some((element) => element.type === 'TextBlock' && element.text?.includes('FAILED crxshopaiprod: delete-tag crxshopaiprod/user-service:v1.0.1') === true)).toBe(true);
    // Only element types Adaptive Cards 1.4 defines, and FactSet facts as title/value pairs.
    expect(body.every((element) => element.type === 'TextBlock' || element.type === 'FactSet')).toBe(true);
    const facts = body.find((element) => element.type === 'FactSet')?.facts ?? [];
    expect(facts).toEqual(expect.arrayContaining([{ title: 'Estate', value: 'xshopai' }, { title: 'Run id', value: 'run-0001' }, { title: 'Status', value: 'partial' }]));
    // No MessageCard fields leak into the Workflows format.
    expect(JSON.stringify(payload)).not.toContain('MessageCard');
  });

  it('keeps the legacy teams format a MessageCard for existing connectors', () => {
    const payload = notificationPayload('teams', failing, ['fail']);
    expect(payload).toMatchObject({ '@type': 'MessageCard', title: 'Ops Autopilot: image-purge on xshopai failed' });
    expect(payload).not.toHaveProperty('attachments');
  });

  it('masks secrets in the card', () => {
    const leaky = record([target('crxshopaiprod', { error: { name: 'Error', message: 'connect failed: AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0; url https://x.blob.core.windows.net/c?sig=abcdef0123456789' } })]);
    const text = JSON.stringify(notificationPayload('teams-workflow', leaky, ['fail']));
    expect(text).not.toContain('c2VjcmV0c2VjcmV0c2VjcmV0');
    expect(text).not.toContain('abcdef0123456789');
    expect(text).toContain('AccountKey=[redacted]');
  });

  it(`stays under Teams' ~28 KB message limit by dropping detail lines from the end and counting them`, () => {
    const long = 'x'.repeat(2500);
    const many = record(
      Array.from({ length: 40 }, (_, index) => target(`cr${String(index).padStart(2, '0')}`, { error: { name: 'Error', message: `${String(index)} ${long}` } })),
    );
    const payload = notificationPayload('teams-workflow', many, ['fail']);
    expect(payloadBytes(payload)).toBeLessThanOrEqual(TEAMS_MAX_PAYLOAD_BYTES);
    const body = (payload as unknown as WorkflowMessage).attachments[0]?.content.body ?? [];
    const failedLines = body.filter((element) => element.text?.startsWith('FAILED ') === true);
    expect(failedLines.length).toBeGreaterThan(0);
    expect(failedLines.length).toBeLessThan(MAX_LINES);
    // Each long line is clipped, and the card says how many lines it left out.
    expect(failedLines.every((element) => (element.text?.length ?? 0) <= 2000)).toBe(true);
    const more = body.find((element) => element.text?.startsWith('... and ') === true);
    expect(more?.text).toBe(`... and ${String(40 - failedLines.length)} more (run record run-0001)`);
    // The same record as a small run fits untouched.
    expect(payloadBytes(notificationPayload('teams-workflow', failing, ['fail']))).toBeLessThan(4000);
  });
});
