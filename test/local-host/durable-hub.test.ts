import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../local-host/clock.ts';
import type { HistoryEvent } from '../../local-host/durable/history-events.ts';
import { HistoryEventType, OrchestrationStatus } from '../../local-host/durable/history-events.ts';
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
  fixtureState.determinismCounter = 0;
  fixtureState.drift = '';
  host.durable.setCrashPlan(undefined);
});

const DAY = 24 * 60 * 60 * 1000;

const eventsOf = (history: readonly HistoryEvent[], type: number): HistoryEvent[] => history.filter((e) => e.EventType === type);

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
    // DurableTask.Core ends an execution with ExecutionCompleted (status and result), then OrchestratorCompleted.
    const [completed] = eventsOf(host.durable.history(instanceId).current, HistoryEventType.ExecutionCompleted);
    expect(completed).toMatchObject({ EventId: 3, OrchestrationStatus: OrchestrationStatus.Completed, Result: '"x-1!-2!-3!"' });
    expect(host.durable.history(instanceId).current.at(-1)?.EventType).toBe(HistoryEventType.OrchestratorCompleted);
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
    // TaskActivityShim: Reason "Activity function 'X' failed: <message>", the cause as Details.
    expect(status.output).toMatch(/^gave up: Activity function 'Flaky' failed: Flaky failed on purpose for job/);
    // Back-offs of 1 s and 2 s; after the last attempt the retry loop's timer is due at once
    // (RetryInterceptor: "Dummy timer for back-compat"), so the task fails at +3 s, not later.
    expect(new Date(status.lastUpdatedTime).getTime() - new Date(status.createdTime).getTime()).toBe(3000);
    const timers = eventsOf(host.durable.history(instanceId).current, HistoryEventType.TimerCreated);
    expect(timers.map((t) => new Date(t.FireAt ?? '').getTime() - new Date(t.Timestamp).getTime())).toEqual([1000, 2000, 0]);
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

describe('fidelity with the Durable extension (DurableTask.Core)', () => {
  it('retry timeout: fails the instance loudly instead of running the catch, after the attempts the extension makes', async () => {
    fixtureState.flakyFailuresLeft = 100;
    const { instanceId } = host.durable.startNew('RetryTimeoutOrchestrator', { instanceId: 'retry-timeout' });
    await clock.advance(60_000);
    const status = await host.durable.waitForStatus(instanceId, ['Failed']);
    // Attempts at +0, +1 s, +2 s, +3 s; after the fourth failure the 2.5 s timeout has passed, so
    // the extension's retry loop ends without a timer and the JS library would wait forever.
    expect(fixtureState.calls).toEqual(['Flaky:timeout', 'Flaky:timeout', 'Flaky:timeout', 'Flaky:timeout']);
    expect(status.output).toMatch(/Orchestrator 'RetryTimeoutOrchestrator' \(instance 'retry-timeout'\) would wait forever on the Durable extension/);
    expect(status.output).toMatch(/attempt 4 of 5 of activity 'Flaky' failed .*retryTimeoutInMilliseconds 2500 passed \(3000 ms since the first attempt\)/);
    expect(status.output).toMatch(/azure-functions-durable-js#629/);
    expect(status.output).not.toMatch(/caught:/);
    const history = host.durable.history(instanceId).current;
    // No fabricated attempt: every TaskScheduled ran, and no timer follows the last failure.
    expect(eventsOf(history, HistoryEventType.TaskScheduled)).toHaveLength(4);
    expect(eventsOf(history, HistoryEventType.TaskFailed)).toHaveLength(4);
    expect(eventsOf(history, HistoryEventType.TimerCreated)).toHaveLength(3);
  });

  it('sub-orchestration retry: a new child per attempt, with the ids DurableTask.Core gives', async () => {
    fixtureState.flakyFailuresLeft = 1;
    const { instanceId } = host.durable.startNew('SubRetryOrchestrator', { instanceId: 'sub-retry-ok' });
    await host.idle();
    expect(host.durable.getStatus(instanceId)?.runtimeStatus).toBe('Running');
    await clock.advance(1000);
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toBe('ok:sub');
    const history = host.durable.history(instanceId).current;
    const created = eventsOf(history, HistoryEventType.SubOrchestrationInstanceCreated);
    // Attempt 1 is #0, its back-off timer #1, attempt 2 #2; each child id is <executionId>:<sequence>.
    expect(created.map((e) => e.EventId)).toEqual([0, 2]);
    const [first, second] = created.map((e) => e.InstanceId ?? '');
    expect(first).toMatch(/^[0-9a-f]{32}:0$/);
    expect(second).toBe(`${(first ?? '').split(':')[0] ?? ''}:2`);
    expect(host.durable.getStatus(first ?? '')).toMatchObject({ runtimeStatus: 'Failed', parentInstanceId: instanceId });
    expect(host.durable.getStatus(second ?? '')).toMatchObject({ runtimeStatus: 'Completed', output: 'ok:sub' });
    const [failed] = eventsOf(history, HistoryEventType.SubOrchestrationInstanceFailed);
    expect(failed).toMatchObject({ TaskScheduledId: 0, Reason: expect.stringMatching(/^Orchestrator function 'FlakyChildOrchestrator' failed: Activity function 'Flaky' failed: Flaky failed on purpose for sub/) as unknown });
    expect(failed).not.toHaveProperty('FailureDetails');
  });

  it('sub-orchestration retry: gives up right after the last attempt and the parent catches the child failure', async () => {
    fixtureState.flakyFailuresLeft = 100;
    const { instanceId } = host.durable.startNew('SubRetryOrchestrator', { instanceId: 'sub-retry-fail' });
    await clock.advance(1000);
    const status = host.durable.getStatus(instanceId);
    expect(status?.runtimeStatus).toBe('Completed');
    expect(status?.output).toMatch(/^gave up: Orchestrator function 'FlakyChildOrchestrator' failed: Activity function 'Flaky' failed: Flaky failed on purpose for sub/);
    const timers = eventsOf(host.durable.history(instanceId).current, HistoryEventType.TimerCreated);
    expect(timers.map((t) => new Date(t.FireAt ?? '').getTime() - new Date(t.Timestamp).getTime())).toEqual([1000, 0]);
  });

  it('terminating a child tells the parent, which the JS library cannot parse, so the parent fails (its catch never runs)', async () => {
    const { instanceId } = host.durable.startNew('WaitingParentOrchestrator', { instanceId: 'tparent' });
    await host.idle();
    expect(host.durable.getStatus('tparent-child')?.runtimeStatus).toBe('Running');
    host.durable.terminate('tparent-child', 'operator stop');
    const child = await host.durable.waitForStatus('tparent-child', ['Terminated']);
    expect(child.output).toBe('operator stop');
    const childHistory = host.durable.history('tparent-child').current;
    expect(eventsOf(childHistory, HistoryEventType.ExecutionTerminated)[0]).toMatchObject({ Input: 'operator stop' });
    expect(eventsOf(childHistory, HistoryEventType.ExecutionCompleted)[0]).toMatchObject({ OrchestrationStatus: OrchestrationStatus.Terminated, Result: 'operator stop' });
    const parent = await host.durable.waitForStatus(instanceId, ['Failed']);
    // SubOrchestrationInstanceFailed with the reason and null Details (ProcessWorkflowCompletedTaskDecision);
    // durable-functions needs Details or FailureDetails, throws, and the orchestrator function fails.
    const [failed] = eventsOf(host.durable.history(instanceId).current, HistoryEventType.SubOrchestrationInstanceFailed);
    expect(failed).toMatchObject({ TaskScheduledId: 0, Reason: 'operator stop', Details: null });
    expect(parent.output).toMatch(/^Orchestrator function 'WaitingParentOrchestrator' failed: Task with ID 0 failed but we could not parse its exception data/);
    expect(parent.output).not.toMatch(/caught:/);
  });

  it('a long timer is split the way the extension splits it (Azure Storage: over 6 days, 3-day pieces) and wakes on time', async () => {
    const { instanceId } = host.durable.startNew('LongTimerOrchestrator', { instanceId: 'long-timer', input: 10 });
    await host.idle();
    const startedAt = new Date(host.durable.getStatus(instanceId)?.createdTime ?? '').getTime();
    await clock.advance(10 * DAY - 1000);
    expect(host.durable.getStatus(instanceId)?.runtimeStatus).toBe('Running');
    await clock.advance(1000);
    const status = await host.durable.waitForStatus(instanceId);
    expect(status.output).toBe(`woke at ${new Date(startedAt + 10 * DAY).toISOString()}`);
    const timers = eventsOf(host.durable.history(instanceId).current, HistoryEventType.TimerCreated);
    // DurableOrchestrationContext.CreateTimer: +3 d pieces while 3 d or more remain, then the rest.
    expect(timers.map((t) => (new Date(t.FireAt ?? '').getTime() - startedAt) / DAY)).toEqual([3, 6, 9, 10]);
    expect(timers.map((t) => t.EventId)).toEqual([0, 1, 2, 3]);
    expect(eventsOf(host.durable.history(instanceId).current, HistoryEventType.TimerFired)).toHaveLength(4);
  });

  it('a timer of 6 days or less is one timer', async () => {
    const { instanceId } = host.durable.startNew('LongTimerOrchestrator', { instanceId: 'six-day-timer', input: 6 });
    await clock.advance(6 * DAY);
    await host.durable.waitForStatus(instanceId);
    expect(eventsOf(host.durable.history(instanceId).current, HistoryEventType.TimerCreated)).toHaveLength(1);
  });

  it('events that arrive before continueAsNew is processed reach the next generation', async () => {
    const { instanceId } = host.durable.startNew('RelayOrchestrator', { instanceId: 'relay', input: 1 });
    await host.idle();
    // 'Ping' is queued while 'Go' is being processed (the episode that continues as new).
    host.durable.raiseEvent(instanceId, 'Go', 'go');
    host.durable.raiseEvent(instanceId, 'Ping', 'pong');
    const status = await host.durable.waitForStatus(instanceId);
    expect(status).toMatchObject({ runtimeStatus: 'Completed', input: 2, output: { generation: 2, ping: 'pong' } });
    const { previousExecutions, current } = host.durable.history(instanceId);
    expect(previousExecutions).toHaveLength(1);
    // The first execution ends with ContinueAsNew (status ContinuedAsNew, the new input as result).
    expect(previousExecutions[0]?.at(-1)).toMatchObject({ EventType: HistoryEventType.ContinueAsNew, OrchestrationStatus: OrchestrationStatus.ContinuedAsNew, Result: '2' });
    expect(eventsOf(current, HistoryEventType.EventRaised).map((e) => e.Name)).toEqual(['Ping']);
  });

  it('an event the old generation received but did not consume is dropped on continueAsNew (no preserveUnprocessedEvents in JS)', async () => {
    const { instanceId } = host.durable.startNew('RelayOrchestrator', { instanceId: 'relay-early', input: 1 });
    await host.idle();
    host.durable.raiseEvent(instanceId, 'Ping', 'too early');
    await host.idle();
    host.durable.raiseEvent(instanceId, 'Go', 'go');
    await host.idle();
    expect(host.durable.getStatus(instanceId)?.runtimeStatus).toBe('Running');
    expect(eventsOf(host.durable.history(instanceId).previousExecutions[0] ?? [], HistoryEventType.EventRaised).map((e) => e.Name)).toEqual(['Ping', 'Go']);
    host.durable.terminate(instanceId, 'done');
    await host.durable.waitForStatus(instanceId, ['Terminated']);
  });
});

describe('what the extension does with the action list', () => {
  it('an activity that does not exist: the extension swallows its ArgumentException, so the hub fails the instance instead of running the catch', async () => {
    const { instanceId } = host.durable.startNew('MissingActivityOrchestrator', { instanceId: 'missing-activity' });
    const status = await host.durable.waitForStatus(instanceId, ['Failed']);
    expect(status.output).toMatch(/would wait forever on the Durable extension: the extension refused activity 'NoSuchActivity': The function 'NoSuchActivity' doesn't exist, is disabled, or is not an activity function/);
    expect(status.output).not.toMatch(/caught:/);
    expect(eventsOf(host.durable.history(instanceId).current, HistoryEventType.TaskScheduled)).toHaveLength(0);
  });

  it('an orchestrator that returns with a timer still open completes only when the timer fires (DurableTask.Core waits for open tasks)', async () => {
    const { instanceId } = host.durable.startNew('UncanceledTimerOrchestrator', { instanceId: 'uncanceled-timer' });
    await host.idle();
    host.durable.raiseEvent(instanceId, 'Go', true);
    await host.idle();
    expect(host.durable.getStatus(instanceId)?.runtimeStatus).toBe('Running');
    await clock.advance(3600_000);
    expect(await host.durable.waitForStatus(instanceId)).toMatchObject({ runtimeStatus: 'Completed', output: 'returned' });
  });
});

describe('determinism check: what DurableTask.Core fails, and warnings for the rest', () => {
  const start = async (drift: typeof fixtureState.drift, instanceId: string): Promise<void> => {
    fixtureState.drift = drift;
    host.durable.startNew('DriftOrchestrator', { instanceId });
    await host.idle();
  };
  const finish = async (instanceId: string): Promise<unknown> => {
    host.durable.raiseEvent(instanceId, 'Finish', 'done');
    return (await host.durable.waitForStatus(instanceId)).output;
  };
  const warningsAbout = (instanceId: string): string[] => host.durable.warnings.filter((w) => w.includes(`(instance '${instanceId}')`));

  it('another activity name at a sequence number fails the instance with DurableTask.Core\'s message', async () => {
    await start('name', 'drift-name');
    const status = await host.durable.waitForStatus('drift-name', ['Failed']);
    expect(status.output).toBe(
      "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence number 0 named 'Append', but the current orchestration replay instead scheduled an activity task named 'Flaky' with this sequence number.  Was a change made to the orchestrator code after this instance had already started running?",
    );
  });

  it('another action kind at a sequence number fails the instance', async () => {
    await start('kind', 'drift-kind');
    const status = await host.durable.waitForStatus('drift-kind', ['Failed']);
    expect(status.output).toMatch(/^Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence number 0 named 'Append', but the current orchestration replay instead produced a CreateTimerOrchestratorAction action with this sequence number\./);
  });

  it('a waitForExternalEvent moved before a recorded activity fails: the extension awaits it before it re-schedules the activity', async () => {
    await start('wait-before-activity', 'drift-wait-first');
    const status = await host.durable.waitForStatus('drift-wait-first', ['Failed']);
    expect(status.output).toMatch(/^Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence ID 0 and name 'Append' \(version ''\), but the current replay execution hasn't \(yet\?\) scheduled this task\./);
  });

  it('another input is a warning naming the orchestrator, the event and both values; the instance goes on', async () => {
    await start('input', 'drift-input');
    expect(await finish('drift-input')).toBe('done');
    const warnings = warningsAbout('drift-input');
    // Reported once, although every later replay differs the same way.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/orchestrator 'DriftOrchestrator' \(instance 'drift-input'\), history event TaskScheduled #0 \('Append'\): recorded input "first", the replay passes "second"/);
  });

  it('another timer fire time is a warning with both times', async () => {
    await start('timer', 'drift-timer');
    const createdAt = new Date(host.durable.getStatus('drift-timer')?.createdTime ?? '').getTime();
    await clock.advance(3600_000);
    expect(await finish('drift-timer')).toBe('done');
    const [warning] = warningsAbout('drift-timer');
    expect(warning).toContain(`history event TimerCreated #0: recorded fire time ${new Date(createdAt + 3600_000).toISOString()}, the replay asks for ${new Date(createdAt + 7200_000).toISOString()}`);
  });

  it('an activity moved before a recorded waitForExternalEvent is a warning: DurableTask.Core never sees the wait', async () => {
    await start('activity-before-wait', 'drift-activity-first');
    host.durable.raiseEvent('drift-activity-first', 'Go', 1);
    await host.idle();
    expect(await finish('drift-activity-first')).toBe('done');
    const [warning] = warningsAbout('drift-activity-first');
    expect(warning).toMatch(/action #0: the previous replay had WaitForExternalEvent event 'Go', this replay has CallActivity 'Append'/);
  });

  it('an activity that gains retry options is the same task for DurableTask.Core: a warning', async () => {
    await start('retry', 'drift-retry');
    expect(await finish('drift-retry')).toBe('done');
    expect(warningsAbout('drift-retry')[0]).toMatch(/action #0: the previous replay had CallActivity 'Append', this replay has CallActivityWithRetry 'Append'/);
  });
});
