/** Time source for timer triggers and durable timers: real time under `npm run dev`, virtual in tests. */
export interface Clock {
  now(): Date;
  /** Calls `callback` once the clock reaches `at`; returns a function that cancels it. */
  schedule(at: Date, callback: () => void): () => void;
}

// setTimeout cannot wait longer than about 24.8 days in one go.
const MAX_TIMEOUT_MS = 2_147_000_000;

/** Wall-clock time. */
export class RealClock implements Clock {
  now(): Date {
    return new Date();
  }
  schedule(at: Date, callback: () => void): () => void {
    let handle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const wait = at.getTime() - Date.now();
      if (wait <= 0) {
        handle = undefined;
        callback();
        return;
      }
      handle = setTimeout(arm, Math.min(wait, MAX_TIMEOUT_MS));
      handle.unref();
    };
    arm();
    return () => {
      if (handle) clearTimeout(handle);
    };
  }
}

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. `advance` fires due callbacks in time order and lets the
 * work they start settle (through `settle`, usually the host's idle wait) before moving on, so a
 * test that jumps three hours sees every timer fire at its own instant.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: PendingTimer[] = [];
  /** Awaited after each fired timer; the local host sets it to its own "wait until idle". */
  settle: () => Promise<void> = () => Promise.resolve();

  constructor(start: Date = new Date('2025-01-06T08:00:00.000Z')) {
    this.#now = start.getTime();
  }
  now(): Date {
    return new Date(this.#now);
  }
  schedule(at: Date, callback: () => void): () => void {
    const timer: PendingTimer = { at: at.getTime(), seq: this.#seq++, callback, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
  /** Pending (uncancelled) timer instants, earliest first. */
  pending(): Date[] {
    return this.#timers.filter((t) => !t.cancelled).map((t) => new Date(t.at)).sort((a, b) => a.getTime() - b.getTime());
  }
  /** Moves time forward by `ms`, firing everything due on the way. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(new Date(this.#now + ms));
  }
  /** Moves time forward to `target`, firing everything due on the way (never backwards). */
  async advanceTo(target: Date): Promise<void> {
    const end = target.getTime();
    if (end < this.#now) throw new RangeError(`virtual clock cannot go back from ${this.now().toISOString()} to ${target.toISOString()}`);
    await this.settle();
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await this.settle();
    }
    this.#now = end;
    await this.settle();
  }
}
