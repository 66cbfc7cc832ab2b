/**
 * verifyHealth through durable-functions' own replay in the local task hub, with the real probe
 * activity against the sandbox: N consecutive successes on durable timers, a deadline, a failing
 * activity counted as a failed probe, composition with `yield*`, a crash at every step, and
 * inputs out of bounds.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { HistoryEventType } from '../../../local-host/durable/history-events.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { PROBE_HEALTH_ACTIVITY, VERIFY_HEALTH_ORCHESTRATOR, type VerifyHealthInput, type VerifyHealthResult } from '../../../src/health/verify-health.ts';
import { sandboxRequest, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

const SITE_ID = '/subscriptions/5f504e96-b142-4ec0-8e99-50424fa25005/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/app-kilometers-api-k7x2';
const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false, azurite: false });

let host: LocalHost;
let clock: VirtualClock;
beforeAll(async () => {
  clock = new VirtualClock(new Date('2026-12-02T01:00:00.000Z'));
  host = await startLocalHost({
    entryPoint: 'test/fixtures/verify-health-app.ts',
    port: 0,
    clock,
    enableTimers: false,
    settings: { OPS_AUTOPILOT_CONFIG_FILE: worldConfigFile(sandbox(), 'kilometers') },
  });
});
afterAll(async () => {
  await host.stop();
});
beforeEach(async () => {
  host.durable.setCrashPlan(undefined);
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
  await sandbox().clearFaults();
});

async function script(body: unknown): Promise<void> {
  expect((await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body })).status).toBe(200);
}

/** Drives an instance to completion: advances the virtual clock (and the sandbox clock with it) a step at a time. */
async function runToEnd(instanceId: string, stepMs: number, maxSteps = 40): Promise<VerifyHealthResult & Record<string, unknown>> {
  for (let step = 0; step < maxSteps; step += 1) {
    await host.idle();
    const status = host.durable.getStatus(instanceId);
    if (status !== undefined && status.runtimeStatus !== 'Running' && status.runtimeStatus !== 'Pending') {
      expect(status.runtimeStatus, JSON.stringify(status.output)).toBe('Completed');
      return status.output as VerifyHealthResult & Record<string, unknown>;
    }
    await sandbox().advanceClock(stepMs);
    await clock.advance(stepMs);
  }
  throw new Error(`${instanceId} still running after ${maxSteps} steps`);
}

const input = (extra: Partial<VerifyHealthInput> = {}): VerifyHealthInput => ({ targetId: SITE_ID, consecutive: 3, intervalSeconds: 10, deadlineSeconds: 60, ...extra });

describe('verifyHealth', () => {
  it('healthy after N consecutive successes, probing on durable timers interval apart', async () => {
    host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: 'vh-healthy', input: input() });
    const result = await runToEnd('vh-healthy', 10_000);
    expect(result).toMatchObject({ targetId: SITE_ID, healthy: true, attempts: 3, consecutive: 3 });
    expect(result.reason).toMatch(/^3 consecutive healthy probes \(of 3\)/);
    expect(result.probes.map((probe) => probe.result?.paths.find((path) => path.path === '/health')?.status)).toEqual([200, 200, 200]);
    const history = host.durable.history('vh-healthy').current;
    expect(history.filter((event) => event.EventType === HistoryEventType.TaskScheduled).map((event) => event.Name)).toEqual([PROBE_HEALTH_ACTIVITY, PROBE_HEALTH_ACTIVITY, PROBE_HEALTH_ACTIVITY]);
    const timers = history.filter((event) => event.EventType === HistoryEventType.TimerCreated);
    expect(timers.map((timer) => new Date(timer.FireAt ?? '').getTime() - new Date(result.startedAt).getTime())).toEqual([10_000, 20_000]);
  });

  it('a failure resets the run: healthy after 25 s of sandbox time takes probes 4 to 6', async () => {
    await script({ target: SITE_ID, script: { mode: 'healthy-after', seconds: 25 } });
    host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: 'vh-later', input: input({ deadlineSeconds: 120 }) });
    const result = await runToEnd('vh-later', 10_000);
    expect(result).toMatchObject({ healthy: true, attempts: 6, consecutive: 3 });
    expect(result.probes.map((probe) => probe.healthy)).toEqual([false, false, false, true, true, true]);
  });

  it('not healthy at the deadline: no probe starts after it, and the reason says what was found', async () => {
    await script({ target: SITE_ID, script: { mode: 'unhealthy' } });
    host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: 'vh-deadline', input: input({ deadlineSeconds: 30 }) });
    const result = await runToEnd('vh-deadline', 10_000);
    expect(result).toMatchObject({ healthy: false, attempts: 4, consecutive: 0 });
    expect(result.reason).toContain('expected 3 consecutive healthy probes within 30 s, found 0 after 4 probes');
    expect(result.reason).toContain('found 503');
    expect(new Date(result.endedAt).getTime() - new Date(result.startedAt).getTime()).toBe(30_000);
  });

  it('a probe activity that fails (ARM refuses) counts as a failed probe, with its message', async () => {
    await sandbox().injectFault({ operationId: 'Microsoft.Web/sites.get', status: 403, count: 1 });
    host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: 'vh-activity-fails', input: input({ consecutive: 2 }) });
    const result = await runToEnd('vh-activity-fails', 10_000);
    expect(result).toMatchObject({ healthy: true, attempts: 3 });
    expect(result.probes[0]).toMatchObject({ healthy: false });
    expect(result.probes[0]?.reason).toMatch(/^probe failed: .*403/);
  });

  it('composes with yield* between the caller\'s own steps', async () => {
    await script({ target: SITE_ID, script: { mode: 'unhealthy' } });
    host.durable.startNew('VerifyAfterChangeOrchestrator', { instanceId: 'vh-compose', input: input({ consecutive: 1, intervalSeconds: 5, deadlineSeconds: 5 }) });
    const output = await runToEnd('vh-compose', 5_000);
    expect(output).toMatchObject({ before: 'marked change', after: 'marked undo', verdict: { healthy: false, attempts: 2 } });
    const names = host.durable.history('vh-compose').current.filter((event) => event.EventType === HistoryEventType.TaskScheduled).map((event) => event.Name);
    expect(names).toEqual(['MarkStep', PROBE_HEALTH_ACTIVITY, PROBE_HEALTH_ACTIVITY, 'MarkStep']);
  });

  it('survives a crash at every step with the same verdict', async () => {
    host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: 'vh-crash-clean', input: input({ consecutive: 2 }) });
    const start = host.durable.steps;
    await runToEnd('vh-crash-clean', 10_000);
    const points = host.durable.steps - start;
    expect(points).toBeGreaterThan(4);
    for (let k = 0; k < points; k += 1) {
      const from = host.durable.steps;
      let crashed = false;
      host.durable.setCrashPlan((point) => {
        if (!crashed && point.step === from + k) {
          crashed = true;
          return true;
        }
        return false;
      });
      const id = `vh-crash-${k}`;
      host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: id, input: input({ consecutive: 2 }) });
      const result = await runToEnd(id, 10_000);
      expect(crashed, `crash point ${k}`).toBe(true);
      expect(result, `crash point ${k}`).toMatchObject({ healthy: true, consecutive: 2 });
    }
  });

  it('refuses an input out of bounds before probing anything', async () => {
    host.durable.startNew(VERIFY_HEALTH_ORCHESTRATOR, { instanceId: 'vh-bad', input: { targetId: SITE_ID, consecutive: 0, intervalSeconds: 1, deadlineSeconds: 86_400 } });
    const status = await host.durable.waitForStatus('vh-bad');
    expect(status.runtimeStatus).toBe('Failed');
    expect(JSON.stringify(status.output)).toContain('consecutive: expected an integer from 1 to 20, found 0');
    expect(host.durable.history('vh-bad').current.some((event) => event.EventType === HistoryEventType.TaskScheduled)).toBe(false);
  });
});
