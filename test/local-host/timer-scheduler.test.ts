import { describe, expect, it } from 'vitest';
import type { Clock } from '../../local-host/clock.ts';
import { parseNcrontab } from '../../src/config/ncrontab.ts';
import type { TimerPayload } from '../../local-host/timer-scheduler.ts';
import { TimerScheduler } from '../../local-host/timer-scheduler.ts';

/** A clock whose time the test sets, with the armed callbacks visible. */
class ManualClock implements Clock {
  time: number;
  armed: { at: number; callback: () => void; cancelled: boolean }[] = [];
  constructor(start: string) {
    this.time = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.time);
  }
  schedule(at: Date, callback: () => void): () => void {
    const entry = { at: at.getTime(), callback, cancelled: false };
    this.armed.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }
  /** Fires the earliest armed callback at its instant (or now, if that is already past). */
  async fireNext(): Promise<string> {
    const live = this.armed.filter((e) => !e.cancelled).sort((a, b) => a.at - b.at);
    const next = live[0];
    if (!next) throw new Error('nothing armed');
    this.armed = live.slice(1);
    this.time = Math.max(this.time, next.at);
    next.callback();
    await new Promise((resolve) => setImmediate(resolve));
    return new Date(next.at).toISOString();
  }
}

// The host's TimerListener: the payload holds the status before the run (Next = this occurrence,
// Last/LastUpdated = previous run, .NET default before the first); an overrun is caught up once.
describe('timer scheduler, as the host timer listener', () => {
  it('sends the status before the run: Next is the occurrence being fired, Last the previous run', async () => {
    const clock = new ManualClock('2025-03-01T00:10:00Z');
    const payloads: TimerPayload[] = [];
    const scheduler = new TimerScheduler(clock, (_name, payload) => {
      payloads.push(payload);
      return Promise.resolve();
    });
    scheduler.add('Hourly', parseNcrontab('0 0 * * * *'), false);
    expect(await clock.fireNext()).toBe('2025-03-01T01:00:00.000Z');
    expect(await clock.fireNext()).toBe('2025-03-01T02:00:00.000Z');
    expect(payloads).toEqual([
      {
        Schedule: { AdjustForDST: true },
        ScheduleStatus: { Last: '0001-01-01T00:00:00.000Z', Next: '2025-03-01T01:00:00.000Z', LastUpdated: '0001-01-01T00:00:00.000Z' },
        IsPastDue: false,
      },
      {
        Schedule: { AdjustForDST: true },
        ScheduleStatus: { Last: '2025-03-01T01:00:00.000Z', Next: '2025-03-01T02:00:00.000Z', LastUpdated: '2025-03-01T01:00:00.000Z' },
        IsPastDue: false,
      },
    ]);
  });

  it('catches up an overrun with one run at once, then follows the schedule from that run', async () => {
    const clock = new ManualClock('2025-03-01T00:10:00Z');
    const payloads: TimerPayload[] = [];
    const scheduler = new TimerScheduler(clock, (_name, payload) => {
      payloads.push(payload);
      // The first run takes 2.5 hours: the 02:00 and 03:00 occurrences pass while it runs.
      if (payloads.length === 1) clock.time += 2.5 * 3600_000;
      return Promise.resolve();
    });
    scheduler.add('Hourly', parseNcrontab('0 0 * * * *'), false);
    await clock.fireNext();
    expect(payloads).toHaveLength(2);
    expect(payloads[1]).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: '2025-03-01T01:00:00.000Z', Next: '2025-03-01T02:00:00.000Z', LastUpdated: '2025-03-01T01:00:00.000Z' },
      // Local deviation (docs/local-host.md): the host's listener sends false here.
      IsPastDue: true,
    });
    // The catch-up ran at 03:30, so the next occurrence is 04:00 (03:00 is not fired again).
    expect(scheduler.statuses()[0]).toMatchObject({ last: new Date('2025-03-01T03:30:00Z'), next: new Date('2025-03-01T04:00:00Z') });
    expect(clock.armed.filter((e) => !e.cancelled).map((e) => new Date(e.at).toISOString())).toEqual(['2025-03-01T04:00:00.000Z']);
  });

  it('sends ScheduleStatus null for an unmonitored timer, and sub-minute schedules are unmonitored by default', async () => {
    const clock = new ManualClock('2025-03-01T00:00:00Z');
    const payloads: TimerPayload[] = [];
    const scheduler = new TimerScheduler(clock, (_name, payload) => {
      payloads.push(payload);
      return Promise.resolve();
    });
    scheduler.add('Every10s', parseNcrontab('*/10 * * * * *'), false);
    scheduler.add('HourlyNoMonitor', parseNcrontab('0 0 * * * *'), false, false);
    scheduler.add('Hourly', parseNcrontab('0 0 * * * *'), false);
    expect(scheduler.statuses().map((s) => [s.functionName, s.useMonitor])).toEqual([
      ['Every10s', false],
      ['HourlyNoMonitor', false],
      ['Hourly', true],
    ]);
    await clock.fireNext();
    expect(payloads[0]?.ScheduleStatus).toBeNull();
    expect(scheduler.payloadFor('HourlyNoMonitor').ScheduleStatus).toBeNull();
    expect(scheduler.payloadFor('Hourly').ScheduleStatus).not.toBeNull();
  });
});
