/**
 * `verifyHealth`: a durable sub-step that decides whether a target is healthy after a change.
 *
 * It probes (activity {@link PROBE_HEALTH_ACTIVITY}) every `intervalSeconds` on durable timers,
 * until `consecutive` probes in a row pass (healthy) or the next probe would start after the
 * deadline (not healthy). Use it inside an orchestrator with `yield*`, so its activity calls and
 * timers are part of the caller's history and replay exactly as they ran:
 *
 * ```ts
 * const verdict = yield* verifyHealth(context, { targetId, consecutive: 3, intervalSeconds: 10, deadlineSeconds: 120 });
 * if (!verdict.healthy) { ... undo, next rung ... }
 * ```
 *
 * Deterministic: time comes from `context.df.currentUtcDateTime`, waits are `createTimer`, no
 * I/O here. A probe activity that fails (ARM unreadable, a refused probe) counts as a failed
 * probe, with its message, and resets the run of successes: health that cannot be read is not
 * health. The number of probes is bounded by the input ({@link MAX_VERIFY_PROBES}), so the
 * history stays bounded; the result keeps the last {@link KEPT_PROBES} probes as evidence.
 */
import type { OrchestrationContext, Task } from 'durable-functions';
import { OpsAutopilotError } from '../errors.ts';
import type { ProbeResult } from './probe.ts';

/** The activity every probe runs as (registered in `src/functions/health-probe.ts`). */
export const PROBE_HEALTH_ACTIVITY = 'probeHealthActivity';

/** The orchestrator that runs {@link verifyHealth} on its own, for `callSubOrchestrator`. */
export const VERIFY_HEALTH_ORCHESTRATOR = 'verifyHealthOrchestrator';

/** Most probes one verification may make (deadline / interval + 1). */
export const MAX_VERIFY_PROBES = 120;

/** Probes kept in the result as evidence (the latest ones). */
export const KEPT_PROBES = 10;

/** Input of the probe activity: references only, no secrets. */
export interface ProbeHealthActivityInput {
  /** ARM id of a target of the estate config (the activity refuses any other). */
  readonly targetId: string;
  readonly paths?: readonly string[];
  readonly slot?: string;
}

/** Input of {@link verifyHealth}. */
export interface VerifyHealthInput extends ProbeHealthActivityInput {
  /** Successes in a row that make the target healthy (1–20). */
  readonly consecutive: number;
  /** Seconds between the start of one probe and the next (1–3600). */
  readonly intervalSeconds: number;
  /** No probe starts later than this many seconds after the verification began (1–86400). */
  readonly deadlineSeconds: number;
  /** Seconds to wait before the first probe (e.g. while a restart comes back); default 0. */
  readonly initialDelaySeconds?: number;
}

/** One probe as the verification saw it. */
export interface VerifyProbe {
  /** 1-based. */
  readonly attempt: number;
  /** When the orchestration scheduled it (ISO, durable time). */
  readonly at: string;
  readonly healthy: boolean;
  readonly reason: string;
  /** The probe's result, when the activity returned one. */
  readonly result?: ProbeResult;
}

/** What {@link verifyHealth} returns. JSON-serialisable. */
export interface VerifyHealthResult {
  readonly targetId: string;
  readonly healthy: boolean;
  /** One line: how many passed in a row, or why it gave up. */
  readonly reason: string;
  readonly attempts: number;
  /** The final run of consecutive successes. */
  readonly consecutive: number;
  readonly startedAt: string;
  readonly endedAt: string;
  /** The last {@link KEPT_PROBES} probes, oldest first. */
  readonly probes: readonly VerifyProbe[];
}

/** A verification input that cannot run (out of bounds); thrown before any probe. */
export class VerifyHealthInputError extends OpsAutopilotError {
  override readonly name: string = 'VerifyHealthInputError';
}

function checkInput(input: VerifyHealthInput): void {
  const problems: string[] = [];
  const integer = (name: keyof VerifyHealthInput, value: unknown, min: number, max: number): void => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, found ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
    }
  };
  if (typeof input.targetId !== 'string' || input.targetId === '') problems.push('targetId: expected an ARM id, found nothing');
  integer('consecutive', input.consecutive, 1, 20);
  integer('intervalSeconds', input.intervalSeconds, 1, 3600);
  integer('deadlineSeconds', input.deadlineSeconds, 1, 86_400);
  if (input.initialDelaySeconds !== undefined) integer('initialDelaySeconds', input.initialDelaySeconds, 0, 3600);
  if (problems.length === 0 && Math.floor(input.deadlineSeconds / input.intervalSeconds) + 1 > MAX_VERIFY_PROBES) {
    problems.push(`deadlineSeconds / intervalSeconds: expected at most ${MAX_VERIFY_PROBES} probes, found ${Math.floor(input.deadlineSeconds / input.intervalSeconds) + 1}`);
  }
  if (problems.length === 0 && input.consecutive > Math.floor(input.deadlineSeconds / input.intervalSeconds) + 1) {
    problems.push(`consecutive: expected at most the ${Math.floor(input.deadlineSeconds / input.intervalSeconds) + 1} probes the deadline allows, found ${input.consecutive}`);
  }
  if (problems.length > 0) {
    throw new VerifyHealthInputError(`verifyHealth of ${input.targetId}: ${problems.join('; ')}`, { context: { targetId: input.targetId } });
  }
}

/** The message of a failed activity, as durable-functions hands it to the orchestrator. */
function failureText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n')[0] ?? text;
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}

/**
 * Probes `input.targetId` until `consecutive` successes in a row or the deadline; see the module
 * comment. A generator for `yield*` inside an orchestrator.
 *
 * @throws {@link VerifyHealthInputError} for an input out of bounds (before anything is scheduled).
 */
export function* verifyHealth(context: OrchestrationContext, input: VerifyHealthInput): Generator<Task, VerifyHealthResult, unknown> {
  checkInput(input);
  const startedAt = context.df.currentUtcDateTime;
  const deadline = startedAt.getTime() + input.deadlineSeconds * 1000;
  const probeInput: ProbeHealthActivityInput = {
    targetId: input.targetId,
    ...(input.paths === undefined ? {} : { paths: [...input.paths] }),
    ...(input.slot === undefined ? {} : { slot: input.slot }),
  };
  const probes: VerifyProbe[] = [];
  let attempts = 0;
  let streak = 0;
  if ((input.initialDelaySeconds ?? 0) > 0) {
    yield context.df.createTimer(new Date(startedAt.getTime() + (input.initialDelaySeconds ?? 0) * 1000));
  }
  for (;;) {
    attempts += 1;
    const at = context.df.currentUtcDateTime;
    let probe: VerifyProbe;
    try {
      const result = (yield context.df.callActivity(PROBE_HEALTH_ACTIVITY, probeInput)) as ProbeResult;
      probe = { attempt: attempts, at: at.toISOString(), healthy: result.healthy, reason: result.reason, result };
    } catch (error) {
      probe = { attempt: attempts, at: at.toISOString(), healthy: false, reason: `probe failed: ${failureText(error)}` };
    }
    probes.push(probe);
    if (probes.length > KEPT_PROBES) probes.shift();
    streak = probe.healthy ? streak + 1 : 0;
    const now = context.df.currentUtcDateTime;
    const result = (healthy: boolean, reason: string): VerifyHealthResult => ({
      targetId: input.targetId,
      healthy,
      reason,
      attempts,
      consecutive: streak,
      startedAt: startedAt.toISOString(),
      endedAt: now.toISOString(),
      probes: [...probes],
    });
    if (streak >= input.consecutive) {
      return result(true, `${streak} consecutive healthy probe${streak === 1 ? '' : 's'} (of ${attempts}); last: ${probe.reason}`);
    }
    const next = at.getTime() + input.intervalSeconds * 1000;
    if (next > deadline || attempts >= MAX_VERIFY_PROBES) {
      return result(
        false,
        `expected ${input.consecutive} consecutive healthy probes within ${input.deadlineSeconds} s, found ${streak} after ${attempts} probe${attempts === 1 ? '' : 's'}; last: ${probe.reason}`,
      );
    }
    yield context.df.createTimer(new Date(Math.max(next, now.getTime())));
  }
}
