import type { Clock } from './clock.ts';
import type { CronSchedule } from '../src/config/ncrontab.ts';

/** The timer trigger payload in the host's wire shape (the library camel-cases it for handlers). */
export interface TimerPayload {
  Schedule: { AdjustForDST: boolean };
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null;
  IsPastDue: boolean;
}

/** Schedule state of one timer function (the host's `ScheduleStatus`). */
export interface TimerStatus {
  readonly functionName: string;
  readonly schedule: string;
  /** Whether the schedule is monitored; an unmonitored timer gets `ScheduleStatus: null`. */
  readonly useMonitor: boolean;
  last: Date;
  next: Date;
  lastUpdated: Date;
}

/** Invokes a timer function with its payload; the scheduler waits for it before arming the next slot. */
export type TimerInvoker = (functionName: string, payload: TimerPayload) => Promise<void>;

/** .NET's `default(DateTime)`, which the host reports as `Last`/`LastUpdated` before a timer's first run. */
function defaultDateTime(): Date {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  d.setUTCHours(0, 0, 0, 0);
  return d;
}

/**
 * Fires timer functions on their NCRONTAB schedules, as the host's timer listener does:
 * - the payload carries the status as it was before this run: `Next` is the occurrence being
 *   fired, `Last`/`LastUpdated` the previous run (`0001-01-01T00:00:00` before the first);
 * - after a run, `Last` and `LastUpdated` become the run's time (the occurrence, if it started a
 *   little early) and `Next` the occurrence after it;
 * - a timer never overlaps itself: if a run outlasts the next occurrence, one catch-up run
 *   follows immediately and the schedule then resumes from that run, so several missed
 *   occurrences collapse into one invocation. Deviation: the catch-up run is flagged
 *   `IsPastDue: true`; the host's listener flags it false (it sets `IsPastDue` only at start-up,
 *   from the schedule monitor, which this host does not persist).
 */
export class TimerScheduler {
  readonly #clock: Clock;
  readonly #invoke: TimerInvoker;
  readonly #statuses = new Map<string, TimerStatus>();
  readonly #schedules = new Map<string, CronSchedule>();
  readonly #cancels = new Map<string, () => void>();
  #stopped = false;

  constructor(clock: Clock, invoke: TimerInvoker) {
    this.#clock = clock;
    this.#invoke = invoke;
  }

  /**
   * Starts scheduling `functionName`; `runOnStartup` fires it once immediately. `useMonitor`
   * undefined applies the host's default: unmonitored when the schedule fires more than once in
   * the next minute.
   */
  add(functionName: string, schedule: CronSchedule, runOnStartup: boolean, useMonitor?: boolean): void {
    const now = this.#clock.now();
    const next = schedule.nextAfter(now);
    const monitored = useMonitor ?? !(schedule.nextAfter(next).getTime() < now.getTime() + 60_000);
    const status: TimerStatus = { functionName, schedule: schedule.expression, useMonitor: monitored, last: defaultDateTime(), next, lastUpdated: defaultDateTime() };
    this.#statuses.set(functionName, status);
    this.#schedules.set(functionName, schedule);
    if (runOnStartup) {
      void this.#fire(functionName, 'startup');
    } else {
      this.#arm(functionName);
    }
  }

  /** Current schedule status of every timer. */
  statuses(): readonly TimerStatus[] {
    return [...this.#statuses.values()];
  }

  /** The payload the host would send right now for an on-demand (admin) invocation. */
  payloadFor(functionName: string): TimerPayload {
    const status = this.#statuses.get(functionName);
    return { Schedule: { AdjustForDST: true }, ScheduleStatus: status ? this.#statusPayload(status) : null, IsPastDue: false };
  }

  /** Stops every timer. */
  stop(): void {
    this.#stopped = true;
    for (const cancel of this.#cancels.values()) cancel();
    this.#cancels.clear();
  }

  // A method, not the field, so the check after an await is not narrowed away by the one before it.
  #isStopped(): boolean {
    return this.#stopped;
  }

  #statusPayload(status: TimerStatus): TimerPayload['ScheduleStatus'] {
    if (!status.useMonitor) return null;
    return { Last: status.last.toISOString(), Next: status.next.toISOString(), LastUpdated: status.lastUpdated.toISOString() };
  }

  #arm(functionName: string): void {
    const status = this.#statuses.get(functionName);
    if (!status || this.#stopped) return;
    this.#cancels.set(functionName, this.#clock.schedule(status.next, () => {
      void this.#fire(functionName, 'scheduled');
    }));
  }

  async #fire(functionName: string, reason: 'scheduled' | 'startup' | 'catchUp'): Promise<void> {
    const status = this.#statuses.get(functionName);
    const schedule = this.#schedules.get(functionName);
    if (!status || !schedule || this.#stopped) return;
    const invokedAt = this.#clock.now();
    const payload: TimerPayload = { Schedule: { AdjustForDST: true }, ScheduleStatus: this.#statusPayload(status), IsPastDue: reason === 'catchUp' };
    try {
      await this.#invoke(functionName, payload);
    } finally {
      // A scheduled run that started before its occurrence counts as the occurrence, so the
      // same Next is never fired twice.
      const ranAt = reason === 'scheduled' && status.next.getTime() > invokedAt.getTime() ? status.next : invokedAt;
      status.last = ranAt;
      status.lastUpdated = ranAt;
      status.next = schedule.nextAfter(ranAt);
      if (status.next.getTime() <= this.#clock.now().getTime() && !this.#isStopped()) {
        // The run outlasted Next: one catch-up run now covers every missed occurrence.
        void this.#fire(functionName, 'catchUp');
      } else {
        this.#arm(functionName);
      }
    }
  }
}
