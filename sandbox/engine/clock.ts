/**
 * The sandbox clock: real time plus an offset that tests shift (`POST /_sandbox/clock`), with
 * the history of every shift, so that a sandbox time can be mapped back to the real instant
 * it stood for. The embedded PostgreSQL stamps commits with real time; a point-in-time restore
 * to a sandbox time needs the real time at which the sandbox clock last read at most that.
 */

/** One shift of the clock: from real time `realMs` on, sandbox time is real time + `offsetMs`. */
interface ClockSegment {
  readonly realMs: number;
  readonly offsetMs: number;
}

/** The sandbox clock of one sandbox. */
export class SandboxClock {
  private offset = 0;
  private readonly segments: ClockSegment[];
  private readonly listeners: ((now: Date) => void)[] = [];

  constructor(private readonly realNow: () => number = Date.now) {
    this.segments = [{ realMs: realNow(), offsetMs: 0 }];
  }

  /** The current sandbox time. */
  now(): Date {
    return new Date(this.realNow() + this.offset);
  }

  /** The accumulated offset, in milliseconds. */
  get offsetMs(): number {
    return this.offset;
  }

  /** Shifts the clock (the shifts add up) and tells the listeners. */
  advance(ms: number): void {
    this.offset += ms;
    this.segments.push({ realMs: this.realNow(), offsetMs: this.offset });
    const now = this.now();
    for (const listener of this.listeners) listener(now);
  }

  /** Called after every shift with the new sandbox time (e.g. to complete operations that became due). */
  onAdvance(listener: (now: Date) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The latest real instant, up to now, at which the sandbox clock read at most `sandboxTime`.
   * A forward shift skips sandbox times: those map to the moment of the shift, when the state
   * they stand for was last current. A sandbox time before the sandbox started maps to the
   * real time before the start that it names (there is no earlier history).
   */
  realTimeAt(sandboxTime: Date): Date {
    const target = sandboxTime.getTime();
    const realNow = this.realNow();
    let best: number | undefined;
    this.segments.forEach((segment, index) => {
      const end = this.segments[index + 1]?.realMs ?? realNow;
      const candidate = Math.min(end, target - segment.offsetMs);
      if (candidate >= segment.realMs && (best === undefined || candidate > best)) best = candidate;
    });
    const first = this.segments[0] ?? { realMs: realNow, offsetMs: 0 };
    return new Date(best ?? Math.min(target - first.offsetMs, first.realMs));
  }
}
