/**
 * The sandbox clock's history: a sandbox time maps back to the real instant it stood for, so a
 * point-in-time restore to a sandbox time replays the embedded PostgreSQL's WAL (stamped with
 * real time) to the right commit, however the clock was shifted in between.
 */
import { describe, expect, it } from 'vitest';
import { SandboxClock } from '../../../sandbox/engine/clock.ts';

describe('SandboxClock.realTimeAt', () => {
  it('is the identity before any shift, and maps through every forward and backward shift', () => {
    let real = 1_000_000;
    const clock = new SandboxClock(() => real);
    real += 1000; // real 1,001,000 = sandbox 1,001,000
    expect(clock.realTimeAt(new Date(1_000_500)).getTime()).toBe(1_000_500);
    clock.advance(100_000); // from real 1,001,000 the sandbox reads real + 100,000
    real += 1000; // real 1,002,000 = sandbox 1,102,000
    expect(clock.now().getTime()).toBe(1_102_000);
    // A time the forward shift skipped stands for the moment of the shift.
    expect(clock.realTimeAt(new Date(1_050_000)).getTime()).toBe(1_001_000);
    expect(clock.realTimeAt(new Date(1_101_500)).getTime()).toBe(1_001_500);
    clock.advance(-100_000); // back to real time from 1,002,000
    real += 1000; // real 1,003,000 = sandbox 1,003,000
    // A sandbox time read twice maps to the latest real time it was read at.
    expect(clock.realTimeAt(new Date(1_002_500)).getTime()).toBe(1_002_500);
    // After the backward shift the clock reads less than 1,101,500 again, up to now.
    expect(clock.realTimeAt(new Date(1_101_500)).getTime()).toBe(1_003_000);
    expect(clock.realTimeAt(new Date(1_001_200)).getTime()).toBe(1_001_000);
    // Before the sandbox started there is no history: the real time the sandbox time names.
    expect(clock.realTimeAt(new Date(10_000)).getTime()).toBe(10_000);
    // Nothing maps past real now.
    expect(clock.realTimeAt(new Date(9_000_000)).getTime()).toBe(1_003_000);
  });

  it('tells the listeners after each shift', () => {
    const clock = new SandboxClock(() => 0);
    const seen: number[] = [];
    clock.onAdvance((now) => seen.push(now.getTime()));
    clock.advance(5);
    clock.advance(7);
    expect(seen).toEqual([5, 12]);
  });
});
