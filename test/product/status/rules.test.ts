/**
 * The status page's verdict rules (issue 12), pure: every rule with its edge cases (a late
 * backup run, a drill that passed but missed its RTO, an alert rule that exists but is
 * disabled, an action group that calls someone else), and seed 003's go/no-go decision.
 */
import { describe, expect, it } from 'vitest';
import { parseNcrontab } from '../../../src/config/ncrontab.ts';
import type { ActionGroupView, MetricAlertRule } from '../../../src/azure/monitor.ts';
import { endpointOf, parseActionGroup, parseMetricAlert } from '../../../src/azure/monitor.ts';
import type { DrillHistoryEntry } from '../../../src/restore/drills.ts';
import type { Check } from '../../../src/runbooks/runbook.ts';
import type { RunRecord } from '../../../src/runs/run-record.ts';
import type { RunSummaryView } from '../../../src/runs/run-history.ts';
import { decide, type StatusItem } from '../../../src/status/model.ts';
import { alertsItem, backupsItem, cleanupsItem, drillItem, previousOccurrence, reachesApp, remediationsItem, secretsItem, type BackupsInput } from '../../../src/status/rules.ts';

const NOW = new Date('2026-12-02T12:00:00Z');
const SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
const SERVER = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-a`;
const PLAN = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Web/serverfarms/asp-a`;
const SITE = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app-a`;
const GROUP = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag-a`;
const VAULT = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-a`;
const DAILY = parseNcrontab('0 0 6 * * *');

function record(overrides: { startedAt?: string; findings?: RunRecord['targets'][number]['findings']; status?: RunRecord['targets'][number]['status']; targetId?: string } = {}): RunRecord {
  const startedAt = overrides.startedAt ?? '2026-12-02T06:00:05Z';
  return {
    schemaVersion: 1,
    runId: '11111111-1111-4111-8111-111111111111',
    runbook: 'backup-verify',
    trigger: 'timer',
    dryRun: true,
    estate: 'e',
    startedAt,
    endedAt: startedAt,
    durationMs: 100,
    status: 'succeeded',
    targets: [{ targetId: overrides.targetId ?? SERVER, kind: 'postgresFlexibleServer', status: overrides.status ?? 'succeeded', actions: [], findings: overrides.findings ?? [{ severity: 'ok', code: 'postgres.state', message: 'psql-a is Ready' }] }],
    summary: { targets: 1, targetsSucceeded: 1, targetsFailed: 0, targetsSkipped: 0, actions: { planned: 0, applied: 0, skipped: 0, failed: 0 }, findings: { info: 0, warn: 0, fail: 0 } },
  };
}

const okLive: Check[] = [
  { status: 'ok', code: 'postgres.backup.newest-age', message: 'psql-a: newest backup is 4.0 h old', expected: 'newest backup ≤ 26 h old', found: '4.0 h' },
  { status: 'ok', code: 'postgres.pitr.window', message: 'psql-a: PITR reaches 7 days back', expected: 'earliest restore ≤ now − 6 days', found: '7.0 days' },
  { status: 'ok', code: 'postgres.backup.retention', message: 'psql-a keeps backups for 7 days', expected: 'backup retention ≥ 7 days', found: '7 days' },
];

function backups(overrides: Partial<BackupsInput> = {}): StatusItem {
  return backupsItem({
    now: NOW,
    schedule: DAILY,
    graceMinutes: 60,
    servers: [{ id: SERVER, maxBackupAgeHours: 26, minRetentionDays: 7 }],
    latestRun: { record: record(), link: '/api/runs/1111' },
    lookBackDays: 30,
    live: new Map([[SERVER.toLowerCase(), { checks: okLive }]]),
    ...overrides,
  });
}

describe('previousOccurrence', () => {
  it('finds the newest occurrence at or before the instant, also for frequent and rare schedules', () => {
    expect(previousOccurrence(DAILY, NOW)?.toISOString()).toBe('2026-12-02T06:00:00.000Z');
    expect(previousOccurrence(DAILY, new Date('2026-12-02T05:59:59Z'))?.toISOString()).toBe('2026-12-01T06:00:00.000Z');
    expect(previousOccurrence(parseNcrontab('0 */5 * * * *'), NOW)?.toISOString()).toBe('2026-12-02T12:00:00.000Z');
    expect(previousOccurrence(parseNcrontab('0 0 0 1 1 *'), NOW)).toBeUndefined();
  });
});

describe('backups', () => {
  it('passes when the newest run is on time, passed for every server, and the live checks pass; evidence names the run and links its record', () => {
    const result = backups();
    expect(result.verdict).toBe('pass');
    expect(result.critical).toBe(true);
    expect(result.evidence.find((entry) => entry.what.startsWith('newest backup-verify run'))).toMatchObject({ result: 'pass', runId: '11111111-1111-4111-8111-111111111111', link: '/api/runs/1111' });
    expect(result.evidence.some((entry) => entry.what.startsWith('newest backup age of psql-a') && entry.result === 'pass')).toBe(true);
  });

  it('fails a late run: the newest run started before the occurrence that was due (grace passed)', () => {
    // Due 2026-12-02T06:00; with 60 min grace, at 12:00 yesterday's run is late.
    const result = backups({ latestRun: { record: record({ startedAt: '2026-12-01T06:00:05Z' }), link: '/api/runs/x' } });
    expect(result.verdict).toBe('fail');
    expect(result.summary).toMatch(/late: its newest run started 2026-12-01T06:00:05Z, but the schedule 0 0 6 \* \* \* was due 2026-12-02T06:00:00.000Z/);
  });

  it('does not call a run late inside the grace period after its occurrence', () => {
    const result = backups({ now: new Date('2026-12-02T06:30:00Z'), latestRun: { record: record({ startedAt: '2026-12-01T06:00:05Z' }), link: '/api/runs/x' } });
    expect(result.verdict).toBe('pass');
  });

  it('fails with no run, with a server the run did not check, and with a failed finding of the run', () => {
    expect(backups({ latestRun: undefined }).summary).toMatch(/no run in the last 30 days/);
    expect(backups({ latestRun: { record: record({ targetId: `${SERVER}-other` }), link: 'l' } }).summary).toMatch(/did not check psql-a/);
    const failing = backups({ latestRun: { record: record({ findings: [{ severity: 'fail', code: 'postgres.backup.retention', message: 'psql-a keeps backups for 3 days, fewer than the 7 promised' }] }), link: 'l' } });
    expect(failing.verdict).toBe('fail');
    expect(failing.reasons.join('\n')).toMatch(/keeps backups for 3 days/);
  });

  it('fails on the live read: an old newest backup, a short PITR window, or a read error', () => {
    const old = okLive.map((check) => (check.code === 'postgres.backup.newest-age' ? { ...check, status: 'fail' as const, message: 'psql-a: newest backup is 74.0 h old, over the 26 h limit', found: '74.0 h' } : check));
    expect(backups({ live: new Map([[SERVER.toLowerCase(), { checks: old }]]) }).reasons.join('\n')).toMatch(/74.0 h old/);
    const pitr = okLive.map((check) => (check.code === 'postgres.pitr.window' ? { ...check, status: 'fail' as const, message: 'psql-a: PITR reaches only 1.3 days back', found: '1.3 days' } : check));
    expect(backups({ live: new Map([[SERVER.toLowerCase(), { checks: pitr }]]) }).verdict).toBe('fail');
    expect(backups({ live: new Map([[SERVER.toLowerCase(), { error: 'AuthorizationFailed' }]]) }).summary).toMatch(/could not be read now \(AuthorizationFailed\)/);
    expect(backups({ live: new Map() }).verdict).toBe('fail');
  });

  it('fails closed when no server has a backup-verify policy', () => {
    expect(backups({ servers: [] }).summary).toMatch(/no PostgreSQL server has a backup-verify policy/);
  });
});

function drill(overrides: Partial<DrillHistoryEntry> = {}): DrillHistoryEntry {
  return {
    estate: 'e',
    serverId: SERVER,
    startedAt: '2026-11-29T03:30:00.000Z',
    finishedAt: '2026-11-29T04:00:00.000Z',
    rtoSeconds: 1200,
    rpoSeconds: 60,
    rtoTargetSeconds: 3600,
    rpoTargetSeconds: 900,
    checks: [],
    verdict: 'passed',
    reason: 'passed',
    instanceId: 'drill-1',
    runId: '22222222-2222-4222-8222-222222222222',
    scratchServerId: `${SERVER}-drill`,
    tornDown: true,
    ...overrides,
  };
}

describe('restore drill', () => {
  const servers = [{ id: SERVER, drill: { rtoTargetMinutes: 60, rpoTargetMinutes: 15 } }];
  const link = (runId: string): string => `/api/runs/${runId}`;

  it('passes with a passed drill within 7 days inside both targets, linking its run record', () => {
    const result = drillItem({ now: NOW, windowDays: 7, servers, drills: [drill()], link });
    expect(result.verdict).toBe('pass');
    expect(result.evidence[0]).toMatchObject({ result: 'pass', runId: '22222222-2222-4222-8222-222222222222', link: '/api/runs/22222222-2222-4222-8222-222222222222' });
  });

  it('fails a drill that passed but missed its RTO (rechecked against the policy, whatever the row says)', () => {
    const result = drillItem({ now: NOW, windowDays: 7, servers, drills: [drill({ rtoSeconds: 4000 })], link });
    expect(result.verdict).toBe('fail');
    expect(result.summary).toBe('psql-a: RTO 66.7 min exceeds the 60.0 min target');
  });

  it('fails a missed RPO, an unmeasured RTO, a drill older than 7 days, none at all, and a newer failed drill over an older pass', () => {
    expect(drillItem({ now: NOW, windowDays: 7, servers, drills: [drill({ rpoSeconds: 901 })], link }).summary).toMatch(/RPO 15.0 min exceeds the 15.0 min target/);
    const { rtoSeconds: _unused, ...unmeasured } = drill();
    expect(drillItem({ now: NOW, windowDays: 7, servers, drills: [unmeasured], link }).summary).toMatch(/no RTO was measured/);
    expect(drillItem({ now: NOW, windowDays: 7, servers, drills: [drill({ startedAt: '2026-11-24T03:30:00.000Z' })], link }).summary).toMatch(/no restore drill in the last 7 days/);
    expect(drillItem({ now: NOW, windowDays: 7, servers, drills: [], link }).verdict).toBe('fail');
    const superseded = drillItem({ now: NOW, windowDays: 7, servers, drills: [drill(), drill({ startedAt: '2026-12-01T03:30:00.000Z', verdict: 'failed', reason: 'restore timed out' })], link });
    expect(superseded.summary).toMatch(/failed: restore timed out/);
  });

  it('fails a server without a drill policy, and passes an estate with no PostgreSQL server', () => {
    expect(drillItem({ now: NOW, windowDays: 7, servers: [{ id: SERVER }], drills: [drill()], link }).summary).toMatch(/has no restore drill policy/);
    expect(drillItem({ now: NOW, windowDays: 7, servers: [], drills: [], link }).verdict).toBe('pass');
  });
});

describe('alerts', () => {
  const required = [
    { targetId: SITE, scopeId: PLAN, metric: 'CpuPercentage' },
    { targetId: SITE, scopeId: PLAN, metric: 'MemoryPercentage' },
  ];
  const rule = (name: string, metric: string, enabled = true, groups = [GROUP]): MetricAlertRule => ({ id: `${PLAN}/../${name}`, name, enabled, description: '', scopes: [PLAN.toUpperCase()], metrics: [metric], actionGroupIds: groups });
  const group: ActionGroupView = { id: GROUP, name: 'ag-a', enabled: true, webhooks: [{ name: 'ops', endpoint: 'https://func-a.azurewebsites.net/api/alerts', useCommonAlertSchema: true }] };
  const groups = new Map([[GROUP.toLowerCase(), group]]);

  it('passes when every required metric has an enabled rule that fires an action group calling /api/alerts', () => {
    const result = alertsItem({ now: NOW, required, unresolved: [], rules: [rule('cpu', 'CpuPercentage'), rule('mem', 'MemoryPercentage')], actionGroups: groups, listErrors: [] });
    expect(result.verdict).toBe('pass');
    expect(result.evidence.every((entry) => entry.result === 'pass')).toBe(true);
  });

  it('fails a rule that exists but is disabled, naming it', () => {
    const result = alertsItem({ now: NOW, required, unresolved: [], rules: [rule('cpu', 'CpuPercentage'), rule('mem', 'MemoryPercentage', false)], actionGroups: groups, listErrors: [] });
    expect(result.verdict).toBe('fail');
    expect(result.reasons).toEqual(['metric alert rule mem for MemoryPercentage of asp-a exists but is disabled']);
  });

  it('fails a missing rule, a rule without action group, a group calling another host or without the common schema, and a disabled group', () => {
    expect(alertsItem({ now: NOW, required, unresolved: [], rules: [rule('cpu', 'CpuPercentage')], actionGroups: groups, listErrors: [] }).reasons).toEqual(['no metric alert rule watches MemoryPercentage of asp-a']);
    expect(alertsItem({ now: NOW, required: required.slice(0, 1), unresolved: [], rules: [rule('cpu', 'CpuPercentage', true, [])], actionGroups: groups, listErrors: [] }).summary).toMatch(/cpu fires no action group/);
    expect(alertsItem({ now: NOW, required: required.slice(0, 1), unresolved: [], rules: [rule('cpu', 'CpuPercentage')], actionGroups: groups, appHost: 'func-b.azurewebsites.net', listErrors: [] }).summary).toMatch(/no webhook to https:\/\/func-b.azurewebsites.net\/api\/alerts/);
    expect(reachesApp({ ...group, webhooks: [{ ...group.webhooks[0]!, useCommonAlertSchema: false }] }, undefined).detail).toMatch(/common alert schema/);
    expect(reachesApp({ ...group, enabled: false }, undefined)).toEqual({ ok: false, detail: 'action group ag-a is disabled' });
    expect(alertsItem({ now: NOW, required: [], unresolved: [], rules: [], actionGroups: groups, listErrors: ['subscription x: 403'] }).verdict).toBe('fail');
  });

  it('parses the ARM shapes and never keeps a webhook key', () => {
    const parsed = parseActionGroup({ id: GROUP, name: 'ag-a', properties: { enabled: true, webhookReceivers: [{ name: 'ops', serviceUri: 'https://func-a.azurewebsites.net/api/alerts?code=SECRETKEY', useCommonAlertSchema: true }] } });
    expect(JSON.stringify(parsed)).not.toContain('SECRETKEY');
    expect(endpointOf('https://h/api/alerts?code=k')).toBe('https://h/api/alerts');
    const alert = parseMetricAlert({ id: 'r', name: 'r', properties: { scopes: [PLAN], criteria: { allOf: [{ metricName: 'CpuPercentage' }] }, actions: [{ actionGroupId: GROUP }] } });
    // No `enabled` in the body is not enabled.
    expect(alert).toMatchObject({ enabled: false, metrics: ['CpuPercentage'], actionGroupIds: [GROUP] });
  });
});

describe('secrets', () => {
  const ok: Check = { status: 'ok', code: 'secret.expiry', message: 'kv-a/secrets/a expires in 60.0 days', expected: 'expiry after 7 days', found: '60.0 days', resource: 'kv-a/secrets/a' };
  it('passes when every secret is ok, fails on an expired one, one in its warning window, and a vault nothing watches', () => {
    expect(secretsItem({ now: NOW, vaults: [{ id: VAULT, result: { checks: [ok] } }], latestRun: undefined }).verdict).toBe('pass');
    const expired = secretsItem({ now: NOW, vaults: [{ id: VAULT, result: { checks: [ok, { ...ok, status: 'fail', message: 'kv-a/secrets/b expired 12.0 days ago' }] } }], latestRun: undefined });
    expect(expired.reasons[0]).toMatch(/expired 12.0 days ago \(expired:/);
    const warning = secretsItem({ now: NOW, vaults: [{ id: VAULT, result: { checks: [{ ...ok, status: 'warn', message: 'kv-a/secrets/c expires in 5.0 days' }] } }], latestRun: undefined });
    expect(warning.verdict).toBe('fail');
    expect(warning.reasons[0]).toMatch(/\(warning:/);
    expect(secretsItem({ now: NOW, vaults: [{ id: VAULT }], latestRun: undefined }).summary).toMatch(/no secret-expiry policy/);
    expect(secretsItem({ now: NOW, vaults: [{ id: VAULT, result: { error: 'Forbidden' } }], latestRun: undefined }).verdict).toBe('fail');
  });
});

function summary(overrides: Partial<RunSummaryView>): RunSummaryView {
  return {
    runId: 'r1',
    runbook: 'remediation',
    estate: 'e',
    trigger: 'alert',
    status: 'succeeded',
    outcome: 'ok',
    dryRun: false,
    startedAt: '2026-12-01T10:00:00.000Z',
    endedAt: '2026-12-01T10:01:00.000Z',
    durationMs: 60_000,
    counts: { targets: 1, targetsFailed: 0, targetsSkipped: 0, applied: 1, skipped: 0, failed: 0, planned: 0, findingsWarn: 0, findingsFail: 0 },
    blobName: 'remediation/2026/12/01/r1.json',
    ...overrides,
  };
}

describe('cleanups and remediations (not critical)', () => {
  const link = (runId: string): string => `/api/runs/${runId}`;
  it('cleanups fail on a failed newest run and on none, never blocking', () => {
    const result = cleanupsItem({ runbooks: [{ runbook: 'image-purge', latest: summary({ runbook: 'image-purge', outcome: 'failed' }), failedRecently: 1 }, { runbook: 'revision-cleanup', latest: undefined, failedRecently: 0 }], lookBackDays: 30, link });
    expect(result).toMatchObject({ verdict: 'fail', critical: false });
    expect(result.reasons).toEqual(['the newest image-purge run r1 failed', 'revision-cleanup has no run in the last 30 days']);
  });

  it('remediations fail on an open breaker and report failures and suppressed storms', () => {
    const result = remediationsItem({
      now: NOW,
      runs: [summary({ outcome: 'failed', runId: 'r2' }), summary({})],
      lookBackDays: 30,
      guardrails: {
        killSwitch: 'pass: off',
        targets: [
          {
            targetId: SITE,
            breaker: { state: 'open', failures: 3, threshold: 3, openedAt: '2026-12-02T10:00:00.000Z', closesAt: '2026-12-02T14:00:00.000Z' },
            actions: [],
            recent: [{ trigger: 't1', firstSeen: '2026-12-02T11:00:00.000Z', suppressed: true, reason: 'in-progress: another alert' }],
          },
        ],
      },
      link,
    });
    expect(result.verdict).toBe('fail');
    expect(result.reasons[0]).toMatch(/circuit breaker of app-a is open/);
    expect(result.evidence.some((entry) => entry.what === 'failed remediation' && entry.link === '/api/runs/r2')).toBe(true);
    expect(result.evidence.some((entry) => entry.what === 'suppressed alerts on app-a' && entry.detail.startsWith('1 suppressed'))).toBe(true);
  });
});

describe('go / no-go (seed 003: any critical item not done blocks)', () => {
  const pass = (id: StatusItem['id'], critical: boolean): StatusItem => ({ id, title: id, checklist: '', critical, verdict: 'pass', summary: '', reasons: [], evidence: [] });
  it('is go only when every critical item passes; a failing non-critical item does not block; no critical item is no-go', () => {
    expect(decide([pass('backups', true), pass('cleanups', false)])).toEqual({ decision: 'go', blocking: [] });
    expect(decide([pass('backups', true), { ...pass('cleanups', false), verdict: 'fail' }]).decision).toBe('go');
    expect(decide([{ ...pass('backups', true), verdict: 'fail' }, pass('alerts', true)])).toEqual({ decision: 'no-go', blocking: ['backups'] });
    expect(decide([pass('cleanups', false)]).decision).toBe('no-go');
  });
});
