/**
 * What the Durable Functions extension does with the actions a JavaScript orchestrator returns.
 *
 * `durable-functions` replays the orchestrator and returns its actions (out-of-process schema
 * V3: one flat list, one entry per `yield`). On Azure, the extension does not trust that list: its
 * `OutOfProcOrchestrationShim` (Azure/azure-functions-durable-extension,
 * src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs, `ProcessAsyncActionsV2`)
 * re-issues every action, in order, through the C# orchestration context, awaiting each one and
 * swallowing its exceptions, while DurableTask.Core replays the history underneath
 * (Azure/durabletask, src/DurableTask.Core/TaskOrchestrationExecutor.cs and
 * TaskOrchestrationContext.cs). Sequence numbers, retries, long timers, the determinism check and
 * "is the orchestration finished" are all decided there, not in the JS library.
 *
 * `replayOnExtension` runs that second replay for one episode, as a pure function of the history
 * and the returned actions, so the local hub fails where the extension fails, schedules what the
 * extension schedules (with the sequence numbers the JS library expects), and notices when the
 * extension would leave the JS orchestrator waiting forever.
 */
import type { HistoryEvent, WireAction, WireRetryOptions } from './history-events.ts';
import { ActionType, HistoryEventType, actionTypeName, decodeProcessedInput, toJsonText } from './history-events.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Timer limits of a durability provider, as the extension sends them in the orchestration payload. */
export interface TimerLimits {
  /** `maximumShortTimerDuration`: a timer further away than this is split. */
  readonly maximumShortTimerMs: number;
  /** `longRunningTimerIntervalDuration`: the length of each piece of a split timer. */
  readonly longRunningTimerIntervalMs: number;
}

/**
 * The Azure Storage provider's limits (AzureStorageDurabilityProvider.cs: `MaximumDelayTime` 6
 * days, `LongRunningTimerIntervalLength` 3 days), the provider the project deploys with.
 */
export const AZURE_STORAGE_TIMER_LIMITS: TimerLimits = { maximumShortTimerMs: 6 * DAY_MS, longRunningTimerIntervalMs: 3 * DAY_MS };

/** Formats milliseconds as a .NET `TimeSpan` (`d.hh:mm:ss`), the way the extension serializes it. */
export function formatTimeSpan(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  const rest = ms - days * DAY_MS;
  const hh = Math.floor(rest / 3_600_000);
  const mm = Math.floor((rest % 3_600_000) / 60_000);
  const ss = Math.floor((rest % 60_000) / 1000);
  const two = (n: number): string => n.toString().padStart(2, '0');
  return `${days.toString()}.${two(hh)}:${two(mm)}:${two(ss)}`;
}

/** New work the extension sends in this episode (an orchestrator action in DurableTask.Core). */
export type Decision =
  | { readonly kind: 'task'; readonly id: number; readonly name: string; readonly input: unknown }
  | { readonly kind: 'timer'; readonly id: number; readonly fireAt: string; readonly canceled: boolean }
  | { readonly kind: 'subOrchestration'; readonly id: number; readonly name: string; readonly instanceId: string; readonly input: unknown };

/** A difference DurableTask.Core does not check; `key` identifies it so it is reported once. */
export interface ReplayWarning {
  readonly key: string;
  readonly message: string;
}

/** The outcome of the extension's replay of one episode. */
export interface ExtensionReplay {
  /** DurableTask.Core's `NonDeterministicOrchestrationException` message: the instance fails. */
  readonly violation?: string;
  /**
   * Why the extension would leave the orchestrator waiting forever (an error it swallowed, a retry
   * loop that ended without telling the JS library, ...). The local hub fails the instance.
   */
  readonly incidents: readonly string[];
  /** Differences the extension tolerates: another input, timer time, sub-orchestration id. */
  readonly warnings: readonly ReplayWarning[];
  /** New work, in sequence order. */
  readonly decisions: readonly Decision[];
  /**
   * The shim has awaited every action and no DurableTask.Core task is open: the orchestrator's
   * result (output, error or continueAsNew) is final in this episode.
   */
  readonly completes: boolean;
  /** The `continueAsNew` action the shim passed, if any. */
  readonly continueAsNew?: WireAction;
  /** The next sequence number (DurableTask.Core's `idCounter`), also the id of ExecutionCompleted. */
  readonly nextSequenceId: number;
}

/** What the replay needs besides history and actions. */
export interface ReplayContext {
  readonly orchestrator: string;
  readonly instanceId: string;
  /** The execution id (32 hex digits); default sub-orchestration ids derive from it. */
  readonly executionId: string;
  readonly parentInstanceId?: string;
  readonly limits: TimerLimits;
  /** The orchestrator returned (`isDone`) or threw; otherwise it is still waiting on a task. */
  readonly orchestratorFinished: boolean;
  /** Kind of a registered function, `undefined` when there is none (`knownActivities` and friends). */
  functionKind(name: string): 'orchestration' | 'activity' | 'entity' | 'other' | undefined;
}

type Outcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

interface Scheduled {
  readonly kind: Decision['kind'];
  readonly name: string;
  readonly input?: unknown;
  readonly fireAt?: string;
  readonly instanceId?: string;
  canceled: boolean;
  /** Why the timer exists, for warnings ("retry timer", "long timer piece"). */
  readonly purpose?: string;
}

// DurableTask.Core's action class names, which its NonDeterministicOrchestrationException names.
const DTFX_ACTION: Record<Decision['kind'], string> = {
  task: 'ScheduleTaskOrchestratorAction',
  timer: 'CreateTimerOrchestratorAction',
  subOrchestration: 'CreateSubOrchestrationAction',
};

const CHANGED = 'Was a change made to the orchestrator code after this instance had already started running?';

class ShimReplay {
  readonly #ctx: ReplayContext;
  readonly #actions: readonly WireAction[];
  #now = 0;
  #nextId = 0;
  readonly #scheduled = new Map<number, Scheduled>();
  readonly #open = new Map<number, (outcome: Outcome) => void>();
  readonly #waiters = new Map<string, (() => void)[]>();
  readonly #buffered = new Map<string, number>();
  readonly incidents: string[] = [];
  readonly warnings: ReplayWarning[] = [];
  violation: string | undefined;
  continueAsNew: WireAction | undefined;
  #cursor = 0;
  #awaiting = false;
  #pumping = false;

  constructor(ctx: ReplayContext, actions: readonly WireAction[]) {
    this.#ctx = ctx;
    this.#actions = actions;
  }

  run(history: readonly HistoryEvent[]): ExtensionReplay {
    for (const event of history) {
      this.#process(event);
      if (this.violation !== undefined) break;
    }
    const decisions: Decision[] = [];
    for (const [id, s] of [...this.#scheduled].sort((a, b) => a[0] - b[0])) {
      if (s.kind === 'task') decisions.push({ kind: 'task', id, name: s.name, input: s.input });
      else if (s.kind === 'timer') decisions.push({ kind: 'timer', id, fireAt: s.fireAt ?? new Date(this.#now).toISOString(), canceled: s.canceled });
      else decisions.push({ kind: 'subOrchestration', id, name: s.name, instanceId: s.instanceId ?? '', input: s.input });
    }
    const shimDone = this.#cursor >= this.#actions.length && !this.#awaiting;
    // TaskOrchestrationExecutor.ExecuteCore completes the orchestration only when no task is open.
    const completes = shimDone && this.#open.size === 0 && this.#ctx.orchestratorFinished;
    if (this.violation === undefined && shimDone && !this.#ctx.orchestratorFinished && this.#open.size === 0 && this.#waiterCount() === 0 && this.incidents.length === 0) {
      // Nothing the extension tracks can ever complete again, yet the JS orchestrator waits.
      const last = this.#actions.at(-1);
      this.incidents.push(
        `the orchestrator is waiting${last ? ` on ${describe(last)}` : ''}, but the extension has no open task or event wait for it, so nothing can ever resume it`,
      );
    }
    return {
      ...(this.violation === undefined ? {} : { violation: this.violation }),
      incidents: this.incidents,
      warnings: this.warnings,
      decisions: this.violation === undefined ? decisions : [],
      completes: this.violation === undefined && completes,
      ...(this.continueAsNew ? { continueAsNew: this.continueAsNew } : {}),
      nextSequenceId: this.#nextId,
    };
  }

  #waiterCount(): number {
    let n = 0;
    for (const list of this.#waiters.values()) n += list.length;
    return n;
  }

  // ---- the shim: one action at a time, each awaited, exceptions swallowed ----

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#awaiting && this.#cursor < this.#actions.length) {
        const action = this.#actions[this.#cursor++];
        if (!action) continue;
        this.#awaiting = true;
        this.#invoke(action, () => {
          this.#awaiting = false;
          this.#pump();
        });
      }
    } finally {
      this.#pumping = false;
    }
  }

  #alloc(s: Scheduled): number {
    const id = this.#nextId++;
    this.#scheduled.set(id, s);
    return id;
  }

  #incident(reason: string): void {
    this.incidents.push(reason);
  }

  #invoke(action: WireAction, done: () => void): void {
    switch (action.actionType) {
      case ActionType.CallActivity:
      case ActionType.CallActivityWithRetry: {
        const name = action.functionName ?? '';
        const retry = action.actionType === ActionType.CallActivityWithRetry ? action.retryOptions : undefined;
        // DurableOrchestrationContext.CallDurableTaskFunctionAsync validates before scheduling; it
        // is async, so its ArgumentException lands in the task the shim awaits and ignores.
        const refusal = this.#retryRefusal(retry) ?? (this.#ctx.functionKind(name) === 'activity' ? undefined : invalidFunction(name, 'activity'));
        if (refusal) {
          this.#incident(`the extension refused activity '${name}': ${refusal}; it swallows that error, so the orchestrator is never told`);
          done();
          return;
        }
        const input = decodeProcessedInput(action.input);
        const attempt = (onOutcome: (o: Outcome) => void): void => {
          const id = this.#alloc({ kind: 'task', name, input, canceled: false });
          this.#open.set(id, onOutcome);
        };
        if (retry) this.#withRetry(`activity '${name}'`, retry, attempt, done);
        else attempt(() => { done(); });
        return;
      }
      case ActionType.CallSubOrchestrator:
      case ActionType.CallSubOrchestratorWithRetry: {
        const name = action.functionName ?? '';
        const retry = action.actionType === ActionType.CallSubOrchestratorWithRetry ? action.retryOptions : undefined;
        const requested = action.instanceId === null || action.instanceId === '' ? undefined : action.instanceId;
        let refusal = this.#retryRefusal(retry);
        if (!refusal && requested !== undefined) {
          if (requested.toLowerCase() === this.#ctx.instanceId.toLowerCase() || (this.#ctx.parentInstanceId !== undefined && requested.toLowerCase() === this.#ctx.parentInstanceId.toLowerCase())) {
            refusal = 'The instance ID of a sub-orchestration must be different than the instance ID of a parent orchestration.';
          } else if (requested.startsWith('@')) {
            refusal = 'Orchestration instance ids must not start with @';
          }
        }
        refusal ??= this.#ctx.functionKind(name) === 'orchestration' ? undefined : invalidFunction(name, 'orchestrator');
        if (refusal) {
          this.#incident(`the extension refused sub-orchestration '${name}': ${refusal}; it swallows that error, so the orchestrator is never told`);
          done();
          return;
        }
        const attempt = (onOutcome: (o: Outcome) => void): void => {
          // TaskOrchestrationContext.CreateSubOrchestrationInstanceCore: ExecutionId + ":" + id.
          const instanceId = requested ?? `${this.#ctx.executionId}:${this.#nextId.toString()}`;
          const id = this.#alloc({ kind: 'subOrchestration', name, input: action.input ?? null, instanceId, canceled: false });
          this.#open.set(id, onOutcome);
        };
        if (retry) this.#withRetry(`sub-orchestration '${name}'`, retry, attempt, done);
        else attempt(() => { done(); });
        return;
      }
      case ActionType.CreateTimer:
        this.#timer(action, done);
        return;
      case ActionType.WaitForExternalEvent: {
        const name = action.externalEventName ?? '';
        const buffered = this.#buffered.get(name) ?? 0;
        if (buffered > 0) {
          // DurableOrchestrationContext.WaitForExternalEvent: an event that came in before the
          // orchestrator listened is taken from the buffer right away.
          if (buffered === 1) this.#buffered.delete(name);
          else this.#buffered.set(name, buffered - 1);
          done();
          return;
        }
        const list = this.#waiters.get(name) ?? [];
        list.push(done);
        this.#waiters.set(name, list);
        return;
      }
      case ActionType.ContinueAsNew:
        this.continueAsNew = action;
        done();
        return;
      case ActionType.WhenAll: {
        const children = action.compoundActions ?? [];
        let left = children.length;
        if (left === 0) {
          done();
          return;
        }
        for (const child of children) {
          this.#invoke(child, () => {
            left--;
            if (left === 0) done();
          });
        }
        return;
      }
      case ActionType.WhenAny: {
        let fired = false;
        const children = action.compoundActions ?? [];
        if (children.length === 0) {
          done();
          return;
        }
        for (const child of children) {
          this.#invoke(child, () => {
            if (fired) return;
            fired = true;
            done();
          });
        }
        return;
      }
      default:
        // Entities and callHttp: the hub refuses them before the replay (UnsupportedDurableFeatureError).
        this.#incident(`${actionTypeName(action.actionType)} is not supported by the local hub`);
        done();
    }
  }

  /**
   * DurableOrchestrationContext.CreateTimer (the extension): a timer further away than the
   * provider's maximum is a loop of shorter timers, each `longRunningTimerIntervalDuration` long
   * until less than that remains. The JS library (LongTimerTask) expects exactly these pieces.
   */
  #timer(action: WireAction, done: () => void): void {
    const fireAt = new Date(action.fireAt ?? new Date(this.#now).toISOString()).getTime();
    const canceled = action.isCanceled === true;
    const { maximumShortTimerMs, longRunningTimerIntervalMs } = this.#ctx.limits;
    const long = fireAt - this.#now > maximumShortTimerMs;
    let pieceAt = long ? this.#now + longRunningTimerIntervalMs : fireAt;
    const schedule = (): void => {
      const id = this.#alloc({
        kind: 'timer',
        name: '',
        fireAt: new Date(pieceAt).toISOString(),
        canceled,
        ...(long ? { purpose: `piece of a long timer due ${new Date(fireAt).toISOString()}` } : {}),
      });
      if (canceled) {
        // The shim cancels the token of a canceled timer: the task ends at once, the timer stays.
        done();
        return;
      }
      this.#open.set(id, () => {
        if (!long) {
          done();
          return;
        }
        const remaining = fireAt - this.#now;
        if (remaining <= 0) {
          done();
          return;
        }
        pieceAt = remaining < longRunningTimerIntervalMs ? this.#now + remaining : this.#now + longRunningTimerIntervalMs;
        schedule();
      });
    };
    schedule();
  }

  /**
   * DurableTask.Core's RetryInterceptor (src/DurableTask.Core/RetryInterceptor.cs): after a failed
   * attempt, a timer for the back-off; after the last attempt, a timer due at once ("dummy timer
   * for back-compat"); when `ComputeNextDelay` returns zero (the retry timeout has passed, or the
   * computed delay is zero) the loop ends and rethrows, with no timer. The JS library's
   * RetryableTask waits for a timer after every failure, so in that last case it never learns
   * that the retries ended (azure-functions-durable-js#629).
   */
  #withRetry(what: string, wire: WireRetryOptions, attempt: (onOutcome: (o: Outcome) => void) => void, done: () => void): void {
    const opts = retryOptionsOf(wire);
    const firstAttempt = this.#now;
    let retryCount = 0;
    const tryOnce = (): void => {
      if (retryCount >= opts.maxNumberOfAttempts) {
        this.#incident(`the retry options of ${what} allow ${opts.maxNumberOfAttempts.toString()} attempts, so the extension never calls it and returns at once`);
        done();
        return;
      }
      attempt((outcome) => {
        if (outcome.ok) {
          done();
          return;
        }
        if (retryCount + 1 === opts.maxNumberOfAttempts) {
          const id = this.#alloc({ kind: 'timer', name: '', fireAt: new Date(this.#now).toISOString(), canceled: false, purpose: `retry timer (after the last attempt) of ${what}` });
          this.#open.set(id, () => { done(); });
          return;
        }
        const delay = this.#nextDelay(opts, retryCount, firstAttempt);
        if (delay <= 0) {
          const elapsed = this.#now - firstAttempt;
          const why = opts.retryTimeoutMs !== undefined && elapsed >= opts.retryTimeoutMs
            ? `retryTimeoutInMilliseconds ${opts.retryTimeoutMs.toString()} passed (${elapsed.toString()} ms since the first attempt)`
            : `the computed retry delay is 0 ms (maxRetryIntervalInMilliseconds ${opts.maxRetryIntervalMs.toString()}, backoffCoefficient ${opts.backoffCoefficient.toString()})`;
          this.#incident(
            `attempt ${(retryCount + 1).toString()} of ${opts.maxNumberOfAttempts.toString()} of ${what} failed (${outcome.reason}) and the extension stopped retrying because ${why}; it schedules no retry timer, so durable-functions never learns that the retries ended and the orchestration would wait forever on Azure (azure-functions-durable-js#629). Bound the attempts with maxNumberOfAttempts instead of a retry timeout`,
          );
          done();
          return;
        }
        const id = this.#alloc({ kind: 'timer', name: '', fireAt: new Date(this.#now + delay).toISOString(), canceled: false, purpose: `retry timer of ${what}` });
        this.#open.set(id, () => {
          retryCount++;
          tryOnce();
        });
      });
    };
    tryOnce();
  }

  #nextDelay(opts: RetryOptions, attempt: number, firstAttempt: number): number {
    const expiration = opts.retryTimeoutMs === undefined ? Number.POSITIVE_INFINITY : firstAttempt + opts.retryTimeoutMs;
    if (!(this.#now < expiration)) return 0;
    const next = opts.firstRetryIntervalMs * Math.pow(opts.backoffCoefficient, attempt);
    return next < opts.maxRetryIntervalMs ? next : opts.maxRetryIntervalMs;
  }

  // CallDurableTaskFunctionAsync: the Azure Storage provider refuses retry intervals over its maximum.
  #retryRefusal(wire: WireRetryOptions | undefined): string | undefined {
    if (!wire) return undefined;
    const opts = retryOptionsOf(wire);
    const max = this.#ctx.limits.maximumShortTimerMs;
    if (opts.maxRetryIntervalMs > max || opts.firstRetryIntervalMs > max) {
      return `The Azure Storage provider supports a maximum of ${(max / DAY_MS).toString()} days for time-based delays`;
    }
    return undefined;
  }

  // ---- DurableTask.Core's replay of the history ----

  #process(event: HistoryEvent): void {
    switch (event.EventType) {
      case HistoryEventType.OrchestratorStarted:
        this.#now = new Date(event.Timestamp).getTime();
        return;
      case HistoryEventType.ExecutionStarted:
        this.#pump();
        return;
      case HistoryEventType.TaskScheduled:
        this.#checkScheduled(event, 'task');
        return;
      case HistoryEventType.TimerCreated:
        this.#checkScheduled(event, 'timer');
        return;
      case HistoryEventType.SubOrchestrationInstanceCreated:
        this.#checkScheduled(event, 'subOrchestration');
        return;
      case HistoryEventType.TaskCompleted:
      case HistoryEventType.SubOrchestrationInstanceCompleted:
        this.#complete(event.TaskScheduledId, { ok: true });
        return;
      case HistoryEventType.TaskFailed:
      case HistoryEventType.SubOrchestrationInstanceFailed:
        this.#complete(event.TaskScheduledId, { ok: false, reason: event.Reason ?? '' });
        return;
      case HistoryEventType.TimerFired:
        this.#complete(event.TimerId, { ok: true });
        return;
      case HistoryEventType.EventRaised: {
        const name = event.Name ?? '';
        // DurableOrchestrationContext.RaiseEvent: the newest waiter gets it, otherwise it is buffered.
        const waiter = this.#waiters.get(name)?.pop();
        if (waiter) {
          waiter();
          return;
        }
        this.#buffered.set(name, (this.#buffered.get(name) ?? 0) + 1);
        return;
      }
      default:
    }
  }

  #complete(id: number | undefined, outcome: Outcome): void {
    if (id === undefined) return;
    const resume = this.#open.get(id);
    // A completion for a task that is not open (a canceled timer, a duplicate) is ignored.
    if (!resume) return;
    this.#open.delete(id);
    resume(outcome);
  }

  // TaskOrchestrationContext.HandleTaskScheduledEvent / HandleTimerCreatedEvent /
  // HandleSubOrchestrationCreatedEvent: the action at that sequence number must exist, be of the
  // same kind and (activities, sub-orchestrations) have the same name, case-insensitively.
  #checkScheduled(event: HistoryEvent, kind: Decision['kind']): void {
    const id = event.EventId;
    const current = this.#scheduled.get(id);
    const name = event.Name ?? '';
    const subject = kind === 'task'
      ? `an activity task with sequence ID ${id.toString()} and name '${name}' (version '')`
      : kind === 'timer'
        ? `a timer task with sequence number ${id.toString()}`
        : `a sub-orchestration task with sequence ID ${id.toString()} and name '${name}' (version '', instance ID '${event.InstanceId ?? ''}')`;
    if (!current) {
      this.violation = `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled ${subject}${kind === 'timer' ? '' : ','} but the current replay execution hasn't (yet?) scheduled this task. ${CHANGED}`;
      return;
    }
    if (current.kind !== kind) {
      const what = kind === 'task'
        ? `an activity task with sequence number ${id.toString()} named '${name}', but the current orchestration replay instead produced a ${DTFX_ACTION[current.kind]} action with this sequence number.`
        : kind === 'timer'
          ? `a timer task with sequence number ${id.toString()} named but the current orchestration replay instead produced a ${DTFX_ACTION[current.kind]} action with this sequence number.`
          : `${subject}, but the current orchestration replay instead produced a ${DTFX_ACTION[current.kind]} action at this sequence number.`;
      this.violation = `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled ${what} ${CHANGED}`;
      return;
    }
    if (kind !== 'timer' && name.toLowerCase() !== current.name.toLowerCase()) {
      this.violation = kind === 'task'
        ? `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence number ${id.toString()} named '${name}', but the current orchestration replay instead scheduled an activity task named '${current.name}' with this sequence number.  ${CHANGED}`
        : `Non-Deterministic workflow detected: A previous execution of this orchestration scheduled ${subject}, but the current orchestration replay instead scheduled a sub-orchestration task with name ${current.name} at this sequence number. ${CHANGED}`;
      return;
    }
    this.#scheduled.delete(id);
    this.#warnOnDrift(event, current);
  }

  // What DurableTask.Core does not compare, reported so a real change is seen but not fatal.
  #warnOnDrift(event: HistoryEvent, current: Scheduled): void {
    const where = `orchestrator '${this.#ctx.orchestrator}' (instance '${this.#ctx.instanceId}'), history event ${eventLabel(event)}`;
    const tolerated = 'DurableTask.Core does not compare it, so the instance goes on with the recorded value';
    if (current.kind !== 'timer') {
      const recorded = event.Input ?? 'null';
      const replayed = toJsonText(current.input);
      if (recorded !== replayed) {
        this.warnings.push({
          key: `${event.EventId.toString()}:input:${replayed}`,
          message: `${where}: recorded input ${recorded}, the replay passes ${replayed}; ${tolerated}`,
        });
      }
    }
    if (current.kind === 'subOrchestration' && (event.InstanceId ?? '') !== (current.instanceId ?? '')) {
      this.warnings.push({
        key: `${event.EventId.toString()}:instance:${current.instanceId ?? ''}`,
        message: `${where}: recorded sub-orchestration instance '${event.InstanceId ?? ''}', the replay asks for '${current.instanceId ?? ''}'; ${tolerated}`,
      });
    }
    if (current.kind === 'timer' && event.FireAt !== undefined && current.fireAt !== undefined && new Date(event.FireAt).getTime() !== new Date(current.fireAt).getTime()) {
      this.warnings.push({
        key: `${event.EventId.toString()}:fireAt:${current.fireAt}`,
        message: `${where}: recorded fire time ${event.FireAt}, the replay asks for ${current.fireAt}${current.purpose ? ` (${current.purpose})` : ''}; ${tolerated}`,
      });
    }
  }
}

interface RetryOptions {
  readonly firstRetryIntervalMs: number;
  readonly maxNumberOfAttempts: number;
  readonly backoffCoefficient: number;
  readonly maxRetryIntervalMs: number;
  readonly retryTimeoutMs?: number;
}

// RetryOptionsConverter.cs reads the JS fields that are present; RetryOptions.cs defaults
// MaxRetryInterval to 6 days, DurableTask.Core's RetryOptions defaults BackoffCoefficient to 1 and
// RetryTimeout to TimeSpan.MaxValue (no timeout).
function retryOptionsOf(wire: WireRetryOptions): RetryOptions {
  return {
    firstRetryIntervalMs: wire.firstRetryIntervalInMilliseconds,
    maxNumberOfAttempts: wire.maxNumberOfAttempts,
    backoffCoefficient: wire.backoffCoefficient ?? 1,
    maxRetryIntervalMs: wire.maxRetryIntervalInMilliseconds ?? 6 * DAY_MS,
    ...(wire.retryTimeoutInMilliseconds === undefined ? {} : { retryTimeoutMs: wire.retryTimeoutInMilliseconds }),
  };
}

// DurableTaskExtension.GetInvalidActivityFunctionMessage / GetInvalidOrchestratorFunctionMessage.
function invalidFunction(name: string, kind: 'activity' | 'orchestrator'): string {
  return `The function '${name}' doesn't exist, is disabled, or is not an ${kind} function`;
}

function eventLabel(event: HistoryEvent): string {
  const type = event.EventType === HistoryEventType.TaskScheduled
    ? 'TaskScheduled'
    : event.EventType === HistoryEventType.TimerCreated
      ? 'TimerCreated'
      : 'SubOrchestrationInstanceCreated';
  return `${type} #${event.EventId.toString()}${event.Name ? ` ('${event.Name}')` : ''}`;
}

/** Short description of an action for messages. */
export function describe(action: WireAction): string {
  const parts = [actionTypeName(action.actionType)];
  if (action.functionName) parts.push(`'${action.functionName}'`);
  if (action.externalEventName) parts.push(`event '${action.externalEventName}'`);
  if (action.fireAt) parts.push(`fireAt ${action.fireAt}`);
  if (action.compoundActions) parts.push(`[${action.compoundActions.map(describe).join(', ')}]`);
  return parts.join(' ');
}

/**
 * Replays one episode the way the extension does: `history` is the current execution's history
 * including this episode's OrchestratorStarted and new event; `actions` is the orchestrator
 * state's action list (schema V3: `actions[0]`).
 */
export function replayOnExtension(history: readonly HistoryEvent[], actions: readonly WireAction[], ctx: ReplayContext): ExtensionReplay {
  return new ShimReplay(ctx, actions).run(history);
}
