import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../local-host/clock.ts';
import { HistoryEventType } from '../../local-host/durable/history-events.ts';
import type { LocalHost } from '../../local-host/local-host.ts';
import { startLocalHost } from '../../local-host/local-host.ts';
import { fixtureState } from '../fixtures/fixture-state.ts';

let host: LocalHost;
let clock: VirtualClock;

beforeAll(async () => {
  clock = new VirtualClock(new Date('2025-03-01T10:00:00.000Z'));
  host = await startLocalHost({ entryPoint: 'test/fixtures/durable-app.ts', port: 0, clock, settings: { NIGHTLY_SCHEDULE: '0 30 2 * * *' } });
});
afterAll(async () => {
  await host.stop();
});
beforeEach(() => {
  fixtureState.calls.length = 0;
  fixtureState.flakyFailuresLeft = 0;
  host.durable.setCrashPlan(undefined);
});

describe('in-memory durable task hub', () => {
  it('runs a chain of activities through the library replay and keeps history, input, output and custom status', async () => {
    const { instanceId } = host.durable.startNew('ChainOrchestrator', { instanceId: 'chain-1', input: 'x' });
    const status = await host.durable.waitForStatus(instanceId);
    expect(status).toMatchObject({ runtimeStatus: 'Completed', input: 'x', output: 'x-1!-2!-3!', customStatus: { step: 2 } });
    expect(fixtureState.calls).toEqual(['Append:x-1', 'Append:x-1!-2', 'Append:x-1!-2!-3']);
    const scheduled = host.durable.history(instanceId).current.filter((e) => e.EventType === HistoryEventType.TaskScheduled);
    expect(scheduled.map((e) => [e.EventId, e.Name, e.Input])).toEqual([
      [0, 'Append', '"x-1"'],
      [1, 'Append', '"x-1!-2"'],
      [2, 'Append', '"x-1!-2!-3"'],
    ]);
  });

  it('retries an activity with callActivityWithRetry and succeeds once it stops failing', async () => {
    fixtureState.flakyFailuresLeft = 2;
    const { instanceId } = host.durable.startNew('RetryOrchestrator', { instanceId: 'retry-ok' });
    await host.idle();
    expect(host.durable.getStatus(instanceId)?.runtimeStatus).toBe('Running');
    // First retry interval 1s, backoff 2 → second retry after 2s more.
    await clock.advance(1000);
    expect(fixtureState.calls).toEqual(['Flaky:job', 'Flaky:job']);
    await clock.advance(2000);
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toBe('ok:job');
    expect(fixtureState.calls).toEqual(['Flaky:job', 'Flaky:job', 'Flaky:job']);
  });

  it('fails the task after maxNumberOfAttempts, with the activity error', async () => {
    fixtureState.flakyFailuresLeft = 10;
    const { instanceId } = host.durable.startNew('RetryOrchestrator', { instanceId: 'retry-fail' });
    await clock.advance(60_000);
    const status = await host.durable.waitForStatus(instanceId);
    expect(fixtureState.calls).toHaveLength(3);
    expect(status.output).toMatch(/^gave up: .*Flaky failed on purpose for job/);
  });

  it('fires a durable timer on the virtual clock, not before', async () => {
    const { instanceId } = host.durable.startNew('TimerOrchestrator', { instanceId: 'timer-1' });
    await clock.advance(59 * 60 * 1000);
    expect(host.durable.getStatus(instanceId)?.runtimeStatus).toBe('Running');
    const startedAt = new Date(host.durable.getStatus(instanceId)?.createdTime ?? '');
    await clock.advance(60 * 1000);
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toBe(`woke at ${new Date(startedAt.getTime() + 3600_000).toISOString()}`);
  });

  it('Task.any: the approval event wins over the timer', async () => {
    const { instanceId } = host.durable.startNew('ApprovalOrchestrator', { instanceId: 'approve-yes' });
    await clock.advance(60 * 60 * 1000);
    host.durable.raiseEvent(instanceId, 'Approval', 'bob');
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toEqual({ approved: true, by: 'bob' });
  });

  it('Task.any: the timer wins when no approval arrives', async () => {
    const { instanceId } = host.durable.startNew('ApprovalOrchestrator', { instanceId: 'approve-timeout' });
    await clock.advance(24 * 60 * 60 * 1000);
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toEqual({ approved: false, reason: 'timed out' });
    expect(() => { host.durable.raiseEvent(instanceId, 'Approval', 'late'); }).toThrow(/Completed; expected Running or Pending/);
  });

  it('runs a sub-orchestration and Task.all of activities', async () => {
    const { instanceId } = host.durable.startNew('ParentOrchestrator', { instanceId: 'parent-1' });
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toEqual({ fromChild: 'child-1!-2!-3!', parallel: ['p1!', 'p2!'] });
    expect(host.durable.getStatus('parent-1-child')).toMatchObject({ runtimeStatus: 'Completed', parentInstanceId: 'parent-1' });
  });

  it('continueAsNew starts a fresh execution with the new input', async () => {
    const { instanceId } = host.durable.startNew('CounterOrchestrator', { instanceId: 'counter', input: 1 });
    const status = await host.durable.waitForStatus(instanceId);
    expect(status).toMatchObject({ output: 'done at 3', input: 3 });
    expect(fixtureState.calls).toEqual(['Append:count-1', 'Append:count-2', 'Append:count-3']);
    const history = host.durable.history(instanceId);
    expect(history.previousExecutions).toHaveLength(2);
    expect(history.current.filter((e) => e.EventType === HistoryEventType.TaskScheduled)).toHaveLength(1);
  });

  it('terminates a running instance', async () => {
    const { instanceId } = host.durable.startNew('WaitForeverOrchestrator', { instanceId: 'forever' });
    await host.idle();
    host.durable.terminate(instanceId, 'enough');
    const status = await host.durable.waitForStatus(instanceId, ['Terminated']);
    expect(status.output).toBe('enough');
    expect(() => { host.durable.terminate(instanceId, 'again'); }).toThrow(/Terminated/);
  });

  it('catches a determinism violation, naming the orchestrator and the event', async () => {
    fixtureState.determinismCounter = 0;
    const { instanceId } = host.durable.startNew('NonDeterministicOrchestrator', { instanceId: 'nondet' });
    const status = await host.durable.waitForStatus(instanceId, ['Failed']);
    expect(status.output).toMatch(/Non-deterministic orchestrator 'NonDeterministicOrchestrator'/);
    expect(status.output).toMatch(/history event TaskScheduled #0 recorded CallActivity "Append" input "\\"run-1\\""/);
    expect(status.output).toMatch(/replay scheduled CallActivity "Append" input "\\"run-2\\""/);
  });

  it('refuses to start an instance id that is running (409), allows it once finished', async () => {
    host.durable.startNew('WaitForeverOrchestrator', { instanceId: 'dup' });
    await host.idle();
    expect(() => host.durable.startNew('WaitForeverOrchestrator', { instanceId: 'dup' })).toThrow(/status Running already exists/);
    host.durable.raiseEvent('dup', 'Go', 1);
    await host.durable.waitForStatus('dup');
    host.durable.startNew('WaitForeverOrchestrator', { instanceId: 'dup' });
    host.durable.raiseEvent('dup', 'Go', 2);
    expect((await host.durable.waitForStatus('dup')).output).toBe(2);
  });

  it('purges finished instances', async () => {
    host.durable.startNew('ChainOrchestrator', { instanceId: 'to-purge', input: 'p' });
    await host.durable.waitForStatus('to-purge');
    expect(host.durable.purge('to-purge')).toBe(1);
    expect(host.durable.getStatus('to-purge')).toBeUndefined();
  });
});

describe('crash and resume', () => {
  it('survives a crash at every crash point of a chain: no lost or repeated completed steps', async () => {
    // Count the crash points of one clean run, then crash at each of them in turn.
    const before = host.durable.steps;
    host.durable.startNew('ChainOrchestrator', { instanceId: 'crash-clean', input: 'c' });
    await host.durable.waitForStatus('crash-clean');
    const points = host.durable.steps - before;
    expect(points).toBeGreaterThan(6);
    for (let k = 0; k < points; k++) {
      fixtureState.calls.length = 0;
      const start = host.durable.steps;
      let crashed = false;
      host.durable.setCrashPlan((p) => {
        if (!crashed && p.step === start + k) {
          crashed = true;
          return true;
        }
        return false;
      });
      const id = `crash-${k}`;
      host.durable.startNew('ChainOrchestrator', { instanceId: id, input: 'c' });
      const status = await host.durable.waitForStatus(id);
      expect(crashed).toBe(true);
      expect(status.output).toBe('c-1!-2!-3!');
      const history = host.durable.history(id).current;
      // Each step completed exactly once in history, in order.
      const completed = history.filter((e) => e.EventType === HistoryEventType.TaskCompleted).map((e) => e.TaskScheduledId);
      expect(completed).toEqual([0, 1, 2]);
      // Activities may run twice (at-least-once), never be skipped.
      for (const step of ['Append:c-1', 'Append:c-1!-2', 'Append:c-1!-2!-3']) {
        const runs = fixtureState.calls.filter((c) => c === step).length;
        expect(runs).toBeGreaterThanOrEqual(1);
        expect(runs).toBeLessThanOrEqual(2);
      }
    }
    host.durable.setCrashPlan(undefined);
    expect(host.durable.crashes.length).toBeGreaterThanOrEqual(points);
  });

  it('re-arms durable timers from history after a crash', async () => {
    host.durable.startNew('TimerOrchestrator', { instanceId: 'crash-timer' });
    await host.idle();
    host.durable.simulateCrash();
    await clock.advance(60 * 60 * 1000);
    expect((await host.durable.waitForStatus('crash-timer')).runtimeStatus).toBe('Completed');
  });
});
