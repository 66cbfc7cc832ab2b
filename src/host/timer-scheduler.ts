import type { Clock } from './clock.ts';
import type { CronSchedule } from './ncrontab.ts';

/** The timer trigger payload in the host's wire shape (the library camel-cases it for handlers). */
export interface TimerPayload {
  Schedule: { AdjustForDST: boolean };
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null;
  IsPastDue: boolean;
}

/** Schedule state of one timer function. */
export interface TimerStatus {
  readonly functionName: string;
  readonly schedule: string;
  last: Date;
  next: Date;
  lastUpdated: Date;
}

/** Invokes a timer function with its payload; the scheduler waits for it before arming the next slot. */
export type TimerInvoker = (functionName: string, payload: TimerPayload) => Promise<void>;

/**
 * Fires timer functions on their NCRONTAB schedules. Like the host, a timer never overlaps with
 * itself: if an invocation (or downtime of the clock) outlasts one or more slots, the missed slots
 * collapse into a single invocation flagged `IsPastDue`.
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

  /** Starts scheduling `functionName`; `runOnStartup` fires it once immediately. */
  add(functionName: string, schedule: CronSchedule, runOnStartup: boolean): void {
    const now = this.#clock.now();
    const status: TimerStatus = { functionName, schedule: schedule.expression, last: now, next: schedule.nextAfter(now), lastUpdated: now };
    this.#statuses.set(functionName, status);
    this.#schedules.set(functionName, schedule);
    if (runOnStartup) {
      void this.#fire(functionName, now, false);
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
    return {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: status
        ? { Last: status.last.toISOString(), Next: status.next.toISOString(), LastUpdated: status.lastUpdated.toISOString() }
        : null,
      IsPastDue: false,
    };
  }

  /** Stops every timer. */
  stop(): void {
    this.#stopped = true;
    for (const cancel of this.#cancels.values()) cancel();
    this.#cancels.clear();
  }

  #isStopped(): boolean {
    return this.#stopped;
  }

  #arm(functionName: string): void {
    const status = this.#statuses.get(functionName);
    if (!status || this.#stopped) return;
    const scheduledFor = status.next;
    this.#cancels.set(functionName, this.#clock.schedule(scheduledFor, () => {
      void this.#fire(functionName, scheduledFor, false);
    }));
  }

  async #fire(functionName: string, scheduledFor: Date, pastDue: boolean): Promise<void> {
    const status = this.#statuses.get(functionName);
    const schedule = this.#schedules.get(functionName);
    if (!status || !schedule || this.#stopped) return;
    const payload: TimerPayload = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: status.last.toISOString(), Next: schedule.nextAfter(scheduledFor).toISOString(), LastUpdated: status.lastUpdated.toISOString() },
      IsPastDue: pastDue,
    };
    try {
      await this.#invoke(functionName, payload);
    } finally {
      const now = this.#clock.now();
      status.last = scheduledFor;
      status.lastUpdated = now;
      const next = schedule.nextAfter(scheduledFor);
      if (next.getTime() < now.getTime() && !this.#isStopped()) {
        // Slots were missed while the invocation ran: one past-due invocation covers them all.
        status.next = schedule.nextAfter(now);
        void this.#fire(functionName, now, true);
      } else {
        status.next = next;
        this.#arm(functionName);
      }
    }
  }
}
