/**
 * The runbook timer functions, invoked THROUGH THE LOCAL HOST (admin endpoint and schedule)
 * against a sandbox with Azurite: schedules resolve from app settings with defaults, each run's
 * record lands in Azurite with trigger `timer`, a failed run fails the invocation, and missed
 * slots collapse into one past-due invocation.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNBOOK_TIMERS, resolveSchedule, scheduleProblem } from '../../../src/functions/runbook-schedules.ts';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { createRunRecordStore } from '../../../src/runs/run-record-store.ts';
import type { RunRecord } from '../../../src/runs/run-record.ts';
import { useSandbox } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml'] });
const keys = { master: 'timers-master-key', function: 'timers-function-key' };
// Far-away schedules for every timer but secret-expiry, so the past-due test sees one timer only.
const FAR = '0 0 0 1 1 *';
let host: LocalHost;
let clock: VirtualClock;
let configFile: string;

beforeAll(async () => {
  const entry = sandbox().worlds.find((world) => world.name === 'xshopai');
  if (entry === undefined) throw new Error('xshopai world not loaded');
  configFile = entry.configFile;
  clock = new VirtualClock(new Date('2026-03-02T06:59:00.000Z'));
  host = await startLocalHost({
    entryPoint: 'src/functions/index.ts',
    port: 0,
    clock,
    keys,
    settings: {
      OPS_AUTOPILOT_CONFIG_FILE: configFile,
      BACKUP_VERIFY_SCHEDULE: FAR,
      KEYVAULT_BACKUP_SCHEDULE: FAR,
      REVISION_CLEANUP_SCHEDULE: FAR,
      IMAGE_PURGE_SCHEDULE: '0 0 5 1 1 *',
      // SECRET_EXPIRY_SCHEDULE deliberately absent: the default applies.
    },
  });
});
afterAll(async () => {
  await host.stop();
});

async function recordsOf(runbook: string): Promise<RunRecord[]> {
  const config = await loadConfigFile(configFile);
  const clients = createAzureClients(config.azure);
  try {
    const store = await createRunRecordStore(config, clients);
    const names = await store.list(`${runbook}/`);
    return await Promise.all(names.map((name) => store.read(name)));
  } finally {
    await clients.close();
  }
}

async function adminInvoke(name: string): Promise<number> {
  const res = await fetch(`${host.baseUrl}/admin/functions/${name}`, {
    method: 'POST',
    headers: { 'x-functions-key': keys.master, 'content-type': 'application/json' },
    body: JSON.stringify({ input: '' }),
  });
  await host.idle();
  return res.status;
}

describe('schedules', () => {
  it('register one timer per runbook; a setting overrides, an absent setting gives the default', () => {
    const timers = new Map(host.functions.filter((f) => f.triggerType === 'timer').map((f) => [f.name, f.timer?.schedule]));
    expect(timers).toEqual(
      new Map([
        ['backupVerifyTimer', FAR],
        ['keyVaultBackupTimer', FAR],
        ['revisionCleanupTimer', FAR],
        ['imagePurgeTimer', '0 0 5 1 1 *'],
        ['secretExpiryTimer', '0 0 7 * * *'],
        ['restoreDrillTimer', '0 30 3 * * 0'],
        ['drillSweeperTimer', '0 0 * * * *'],
        ['rotationTimer', '0 0 5 * * *'],
      ]),
    );
    expect(Object.fromEntries(RUNBOOK_TIMERS.map((timer) => [timer.setting, resolveSchedule(timer, {})]))).toEqual({
      BACKUP_VERIFY_SCHEDULE: '0 0 6 * * *',
      KEYVAULT_BACKUP_SCHEDULE: '0 30 2 * * *',
      REVISION_CLEANUP_SCHEDULE: '0 0 3 * * *',
      IMAGE_PURGE_SCHEDULE: '0 0 4 * * 0',
      SECRET_EXPIRY_SCHEDULE: '0 0 7 * * *',
    });
    const [first] = RUNBOOK_TIMERS;
    if (first === undefined) throw new Error('no timers');
    // An invalid setting keeps the default schedule (the app still loads) and is reported.
    expect(resolveSchedule(first, { BACKUP_VERIFY_SCHEDULE: '0 6 * * *' })).toBe('0 0 6 * * *');
    expect(scheduleProblem(first, { BACKUP_VERIFY_SCHEDULE: '0 6 * * *' })?.message).toMatch(/expected a six-field NCRONTAB expression .* found 5 field\(s\)/);
  });
});

describe('invoked through the local host', () => {
  it('POST /admin/functions/{name} runs the runbook with trigger timer and its record appears in Azurite', async () => {
    expect(await adminInvoke('revisionCleanupTimer')).toBe(202);
    expect(await adminInvoke('secretExpiryTimer')).toBe(202);
    expect(host.invocations.filter((i) => i.functionName === 'revisionCleanupTimer').map((i) => i.outcome)).toEqual(['succeeded']);
    // Findings (an expiring and an expired secret) are not a failure of the run.
    expect(host.invocations.filter((i) => i.functionName === 'secretExpiryTimer').map((i) => i.outcome)).toEqual(['succeeded']);
    const cleanup = await recordsOf('revision-cleanup');
    expect(cleanup).toHaveLength(1);
    expect(cleanup[0]).toMatchObject({ trigger: 'timer', estate: 'xshopai', dryRun: false, status: 'succeeded', requestedBy: 'timer revisionCleanupTimer' });
    expect(cleanup[0]?.summary.actions.applied).toBeGreaterThan(0);
    expect(cleanup[0]?.notes).toEqual(expect.arrayContaining([expect.stringMatching(/^lock: blob-lease autopilot-runs\/locks\/xshopai\/revision-cleanup$/)]));
    const expiry = await recordsOf('secret-expiry');
    expect((expiry[0]?.summary.findings.warn ?? 0) + (expiry[0]?.summary.findings.fail ?? 0)).toBeGreaterThan(0);
    expect(host.logs.some((l) => l.functionName === 'secretExpiryTimer' && /secret-expiry on xshopai: findings/.test(l.message))).toBe(true);
    // Timers keep notifying (a CLI plan does not): the deactivations and the expiring secrets
    // reached the estate's webhook, and each record lists the notification it sent.
    const posted = await sandbox().webhooks('oncall-teams');
    expect(posted.map((hook) => JSON.stringify(hook.body))).toEqual([
      expect.stringMatching(/revision-cleanup on xshopai applied destructive actions/),
      expect.stringMatching(/secret-expiry on xshopai (has warnings|failed)/),
    ]);
    expect(cleanup[0]?.notifications).toEqual([expect.objectContaining({ webhook: 'oncall-teams', outcome: 'applied', events: ['destructive'] })]);
  });

  it('a failed run fails the invocation (the host records it) while the other targets still run', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'timers-'));
    const broken = path.join(dir, 'xshopai-broken.yaml');
    const text = await readFile(configFile, 'utf8');
    const missing = `  - id: /subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-prod/providers/Microsoft.App/containerApps/ca-does-not-exist\n    runbooks:\n      revision-cleanup: {}\n`;
    await writeFile(broken, text.replace(/^targets:\n/m, `targets:\n${missing}`));
    const before = (await recordsOf('revision-cleanup')).length;
    process.env.OPS_AUTOPILOT_CONFIG_FILE = broken;
    try {
      expect(await adminInvoke('revisionCleanupTimer')).toBe(202);
    } finally {
      process.env.OPS_AUTOPILOT_CONFIG_FILE = configFile;
    }
    const last = host.invocations.filter((i) => i.functionName === 'revisionCleanupTimer').at(-1);
    expect(last?.outcome).toBe('failed');
    expect(last?.error).toMatch(/revision-cleanup on xshopai: failed; \d+ target\(s\), 1 failed/);
    const records = await recordsOf('revision-cleanup');
    expect(records).toHaveLength(before + 1);
    const record = records.find((r) => r.targets.some((t) => t.targetId.endsWith('ca-does-not-exist')));
    expect(record?.status).toBe('partial');
    expect(record?.targets.filter((t) => t.status === 'succeeded').length).toBeGreaterThan(0);
  });

  it('fires on schedule; slots missed while a run was in progress collapse into ONE past-due run', async () => {
    const before = host.invocations.filter((i) => i.functionName === 'secretExpiryTimer').length;
    // Let the clock run past two more 07:00 slots without waiting for the first run to finish,
    // as if that run (or the host) had been busy for two days.
    const settle = clock.settle;
    clock.settle = () => Promise.resolve();
    try {
      await clock.advanceTo(new Date('2026-03-04T07:30:00.000Z'));
    } finally {
      clock.settle = settle;
    }
    await host.idle();
    await host.idle();
    const runs = host.invocations.filter((i) => i.functionName === 'secretExpiryTimer').slice(before);
    expect(runs.map((i) => i.outcome)).toEqual(['succeeded', 'succeeded']);
    const pastDue = host.logs.filter((l) => l.functionName === 'secretExpiryTimer' && l.message.includes('(past due'));
    expect(pastDue).toHaveLength(1);
    const status = host.timers().find((t) => t.functionName === 'secretExpiryTimer');
    expect(status?.next.toISOString()).toBe('2026-03-05T07:00:00.000Z');
  });
});
