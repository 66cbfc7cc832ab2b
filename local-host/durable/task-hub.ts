import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { NonDeterministicOrchestrationError, OrchestrationInstanceError, UnsupportedDurableFeatureError } from './durable-errors.ts';
import type { FailureDetails, HistoryEvent, WireAction, WireOrchestratorState, WireRetryOptions } from './history-events.ts';
import { ActionType, HistoryEventType, actionTypeName, flattenActions, historyEventTypeName } from './history-events.ts';

/** Runtime status names, as the Durable HTTP API and `durable-functions` spell them. */
export type RuntimeStatus = 'Pending' | 'Running' | 'Completed' | 'ContinuedAsNew' | 'Failed' | 'Terminated';

const TERMINAL: readonly RuntimeStatus[] = ['Completed', 'Failed', 'Terminated'];

/** The result of running one orchestrator replay through the library. */
export type OrchestratorRunResult =
  | { readonly ok: true; readonly state: WireOrchestratorState }
  | { readonly ok: false; readonly message: string; readonly state?: WireOrchestratorState };

/** How the hub reaches the app's durable functions (implemented by the local host over the invocation model). */
export interface DurableFunctionRunner {
  kindOf(name: string): 'orchestration' | 'activity' | 'entity' | 'other' | undefined;
  runOrchestrator(name: string, payload: Record<string, unknown>): Promise<OrchestratorRunResult>;
  runActivity(name: string, input: unknown): Promise<unknown>;
}

/** A point at which a crash can be simulated. `step` counts every crash point the hub passes. */
export interface CrashPoint {
  readonly step: number;
  readonly kind: 'before-episode-commit' | 'after-episode-commit' | 'after-activity-run';
  readonly instanceId: string;
  /** Orchestrator name for episodes, activity name for activities. */
  readonly name: string;
}

/** Public view of one instance (what `getStatus` returns). */
export interface InstanceStatus {
  readonly name: string;
  readonly instanceId: string;
  readonly runtimeStatus: RuntimeStatus;
  readonly input: unknown;
  readonly output: unknown;
  readonly customStatus: unknown;
  readonly createdTime: string;
  readonly lastUpdatedTime: string;
  readonly parentInstanceId?: string;
  readonly history?: readonly HistoryEvent[];
}

type Message =
  | { kind: 'start' }
  | { kind: 'taskCompleted'; id: number; result: string }
  | { kind: 'taskFailed'; id: number; error: FailureDetails }
  | { kind: 'timerFired'; id: number; fireAt: string }
  | { kind: 'eventRaised'; name: string; input: string | undefined }
  | { kind: 'subCompleted'; id: number; result: string }
  | { kind: 'subFailed'; id: number; error: FailureDetails }
  | { kind: 'terminate'; reason: string };

interface RetryState {
  readonly options: WireRetryOptions;
  attempts: number;
  readonly firstAttemptAt: number;
  lastError?: FailureDetails;
}

interface RecordedAction {
  readonly action: WireAction;
  readonly id?: number;
  retry?: RetryState;
}

type IdRole = { entry: number; role: 'task' | 'attempt' | 'retryTimer' | 'timer' };

interface InstanceRecord {
  readonly instanceId: string;
  name: string;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  runtimeStatus: RuntimeStatus;
  readonly createdTime: Date;
  lastUpdatedTime: Date;
  executionId: string;
  history: HistoryEvent[];
  recorded: RecordedAction[];
  ids: Map<number, IdRole>;
  nextEventId: number;
  inbox: Message[];
  readonly parent?: { instanceId: string; taskId: number; executionId: string };
  /** Every execution's history, oldest first, for continueAsNew inspection. */
  previousExecutions: HistoryEvent[][];
}

/** Options for the in-memory task hub. */
export interface TaskHubOptions {
  readonly taskHubName?: string;
  readonly clock: Clock;
  readonly runner: DurableFunctionRunner;
  /** `NonRunningStates` (the extension's default) or `AnyState`. */
  readonly overridableExistingInstanceStates?: 'NonRunningStates' | 'AnyState';
  /** Where loud failures (non-determinism) are reported; defaults to stderr. */
  readonly reportError?: (message: string) => void;
}

/** Result of `startNew`. */
export interface StartResult {
  readonly instanceId: string;
}

function failureFrom(error: unknown): FailureDetails {
  if (error instanceof Error) {
    return { ErrorType: error.name, ErrorMessage: error.message, StackTrace: error.stack, IsNonRetriable: false };
  }
  return { ErrorType: 'Error', ErrorMessage: typeof error === 'string' ? error : JSON.stringify(error), IsNonRetriable: false };
}

// The library double-encodes string inputs of activities and continueAsNew (processInput), so a
// string action input is JSON text; other inputs are the value itself.
function decodeProcessedInput(input: unknown): unknown {
  if (typeof input === 'string') return JSON.parse(input) as unknown;
  return input;
}

function toJsonText(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}

function parseJsonText(text: string | undefined): unknown {
  return text === undefined || text === '' ? null : (JSON.parse(text) as unknown);
}

function describeAction(action: WireAction): string {
  const parts = [actionTypeName(action.actionType)];
  if (action.functionName) parts.push(`"${action.functionName}"`);
  if (action.externalEventName) parts.push(`event "${action.externalEventName}"`);
  if (action.fireAt) parts.push(`fireAt ${action.fireAt}`);
  if (action.input !== undefined) parts.push(`input ${JSON.stringify(action.input)}`);
  return parts.join(' ');
}

function sameAction(a: WireAction, b: WireAction): boolean {
  return (
    a.actionType === b.actionType &&
    a.functionName === b.functionName &&
    a.externalEventName === b.externalEventName &&
    a.instanceId === b.instanceId &&
    (a.fireAt === undefined || b.fireAt === undefined || new Date(a.fireAt).getTime() === new Date(b.fireAt).getTime()) &&
    JSON.stringify(a.input) === JSON.stringify(b.input)
  );
}

/**
 * An in-memory Durable task hub. Orchestrators run through `durable-functions`' own replay: every
 * episode hands the library the instance's whole history plus one new event, and the library
 * re-runs the orchestrator function from the start. The hub then checks the replayed actions
 * against what history recorded (non-determinism fails the instance, naming orchestrator and
 * event), records new scheduled work, and dispatches activities, timers and sub-orchestrations.
 *
 * Instance records (history, inbox of pending messages, status) are the "persisted" state;
 * running activities, armed timers and unfinished episodes are in-flight work that
 * `simulateCrash` drops, after which the hub resumes from the records.
 */
export class InMemoryTaskHub {
  readonly taskHubName: string;
  readonly #clock: Clock;
  readonly #runner: DurableFunctionRunner;
  readonly #overridable: 'NonRunningStates' | 'AnyState';
  readonly #reportError: (message: string) => void;
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #busy = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  #timerCancels: (() => void)[] = [];
  #generation = 0;
  #step = 0;
  #crashPlan: ((point: CrashPoint) => boolean) | undefined;
  #crashes: CrashPoint[] = [];
  #stopped = false;

  constructor(options: TaskHubOptions) {
    this.taskHubName = options.taskHubName ?? 'LocalTaskHub';
    this.#clock = options.clock;
    this.#runner = options.runner;
    this.#overridable = options.overridableExistingInstanceStates ?? 'NonRunningStates';
    this.#reportError = options.reportError ?? ((m) => process.stderr.write(`${m}\n`));
  }

  /** Starts an orchestration. Fails with 409 when the id exists in a state that may not be overridden. */
  startNew(name: string, options: { instanceId?: string; input?: unknown } = {}): StartResult {
    const kind = this.#runner.kindOf(name);
    if (kind !== 'orchestration') {
      throw new OrchestrationInstanceError(
        `The function '${name}' doesn't exist, is disabled, or is not an orchestrator function; found ${kind ?? 'no function'}`,
        400,
        { orchestrator: name },
      );
    }
    const instanceId = options.instanceId ?? randomUUID().replace(/-/g, '');
    const existing = this.#instances.get(instanceId);
    if (existing) {
      const overridable = this.#overridable === 'AnyState' || TERMINAL.includes(existing.runtimeStatus);
      if (!overridable) {
        throw new OrchestrationInstanceError(
          `An Orchestration instance with the status ${existing.runtimeStatus} already exists (instance '${instanceId}'); expected one of ${TERMINAL.join(', ')} to start it again`,
          409,
          { instanceId },
        );
      }
    }
    this.#createInstance(name, instanceId, options.input ?? null, undefined);
    return { instanceId };
  }

  /** Current status of an instance, or `undefined` when it does not exist. */
  getStatus(instanceId: string, options: { showHistory?: boolean; showInput?: boolean } = {}): InstanceStatus | undefined {
    const record = this.#instances.get(instanceId);
    if (!record) return undefined;
    return {
      name: record.name,
      instanceId: record.instanceId,
      runtimeStatus: record.runtimeStatus,
      input: options.showInput === false ? null : record.input,
      output: record.output,
      customStatus: record.customStatus,
      createdTime: record.createdTime.toISOString(),
      lastUpdatedTime: record.lastUpdatedTime.toISOString(),
      parentInstanceId: record.parent?.instanceId,
      ...(options.showHistory ? { history: record.history.map((e) => ({ ...e })) } : {}),
    };
  }

  /** All instances' statuses, optionally filtered by runtime status. */
  listInstances(runtimeStatus?: readonly RuntimeStatus[]): InstanceStatus[] {
    const out: InstanceStatus[] = [];
    for (const id of this.#instances.keys()) {
      const status = this.getStatus(id);
      if (status && (!runtimeStatus || runtimeStatus.length === 0 || runtimeStatus.includes(status.runtimeStatus))) out.push(status);
    }
    return out;
  }

  /** The full history of the current execution (and earlier executions after continueAsNew). */
  history(instanceId: string): { current: readonly HistoryEvent[]; previousExecutions: readonly (readonly HistoryEvent[])[] } {
    const record = this.#require(instanceId);
    return { current: record.history.map((e) => ({ ...e })), previousExecutions: record.previousExecutions.map((h) => h.map((e) => ({ ...e }))) };
  }

  /** Raises an external event. 404 for unknown instances, 410 when the instance already finished. */
  raiseEvent(instanceId: string, eventName: string, data: unknown): void {
    const record = this.#require(instanceId);
    if (TERMINAL.includes(record.runtimeStatus)) {
      throw new OrchestrationInstanceError(
        `instance '${instanceId}' is ${record.runtimeStatus}; expected Running or Pending to raise event '${eventName}'`,
        410,
        { instanceId, event: eventName },
      );
    }
    this.#enqueue(record, { kind: 'eventRaised', name: eventName, input: data === undefined ? undefined : JSON.stringify(data) });
  }

  /** Terminates a running instance. 404 for unknown instances, 410 when it already finished. */
  terminate(instanceId: string, reason: string): void {
    const record = this.#require(instanceId);
    if (TERMINAL.includes(record.runtimeStatus)) {
      throw new OrchestrationInstanceError(
        `instance '${instanceId}' is ${record.runtimeStatus}; expected Running or Pending to terminate it`,
        410,
        { instanceId },
      );
    }
    this.#enqueue(record, { kind: 'terminate', reason });
  }

  /** Deletes a finished instance and its history; returns how many instances were deleted (0 or 1). */
  purge(instanceId: string): number {
    const record = this.#instances.get(instanceId);
    if (!record) return 0;
    if (!TERMINAL.includes(record.runtimeStatus)) {
      throw new OrchestrationInstanceError(
        `instance '${instanceId}' is ${record.runtimeStatus}; expected Completed, Failed or Terminated to purge it`,
        400,
        { instanceId },
      );
    }
    this.#instances.delete(instanceId);
    return 1;
  }

  /** Purges every finished instance matching the filter; returns the count. */
  purgeBy(filter: { createdTimeFrom?: Date; createdTimeTo?: Date; runtimeStatus?: readonly RuntimeStatus[] }): number {
    let deleted = 0;
    for (const record of [...this.#instances.values()]) {
      if (!TERMINAL.includes(record.runtimeStatus)) continue;
      if (filter.createdTimeFrom && record.createdTime < filter.createdTimeFrom) continue;
      if (filter.createdTimeTo && record.createdTime > filter.createdTimeTo) continue;
      if (filter.runtimeStatus && filter.runtimeStatus.length > 0 && !filter.runtimeStatus.includes(record.runtimeStatus)) continue;
      this.#instances.delete(record.instanceId);
      deleted++;
    }
    return deleted;
  }

  /**
   * Resolves when no episode, activity or queued message is left to process. Armed timers do not
   * count: with a virtual clock they wait for `advance`.
   */
  async whenIdle(): Promise<void> {
    for (;;) {
      if (this.#inFlightCount() === 0) {
        for (const record of this.#instances.values()) this.#kick(record);
        // #kick may have started episodes for queued messages.
        if (this.#inFlightCount() === 0) return;
      }
      await Promise.allSettled([...this.#inFlight]);
    }
  }

  /** Waits (driving nothing else) until the instance reaches one of the statuses or the hub goes idle without it. */
  async waitForStatus(instanceId: string, statuses: readonly RuntimeStatus[] = TERMINAL): Promise<InstanceStatus> {
    await this.whenIdle();
    const status = this.getStatus(instanceId);
    if (!status) throw new OrchestrationInstanceError(`instance '${instanceId}' does not exist`, 404, { instanceId });
    if (!statuses.includes(status.runtimeStatus)) {
      throw new OrchestrationInstanceError(
        `instance '${instanceId}' is ${status.runtimeStatus} and the hub is idle; expected ${statuses.join(' or ')}`,
        409,
        { instanceId },
      );
    }
    return status;
  }

  /**
   * Installs a crash plan: called at every crash point with a running step number; returning true
   * simulates a crash there (in-flight work dropped, then resume from persisted records).
   */
  setCrashPlan(plan: ((point: CrashPoint) => boolean) | undefined): void {
    this.#crashPlan = plan;
  }

  /** Crash points passed so far (the next step number). */
  get steps(): number {
    return this.#step;
  }

  /** Crashes simulated so far. */
  get crashes(): readonly CrashPoint[] {
    return this.#crashes;
  }

  /**
   * Simulates a process crash now: every in-flight activity result and unfinished episode is
   * discarded, armed timers are dropped, then the hub recovers from the persisted instance records
   * — re-arming timers and re-dispatching scheduled activities that have no recorded result (so an
   * activity may run twice, as on the real host).
   */
  simulateCrash(): void {
    this.#generation++;
    for (const cancel of this.#timerCancels) cancel();
    this.#timerCancels = [];
    this.#busy.clear();
    this.#recover();
  }

  /** Stops dispatching; armed timers are cancelled. */
  stop(): void {
    this.#stopped = true;
    this.#generation++;
    for (const cancel of this.#timerCancels) cancel();
    this.#timerCancels = [];
  }

  #inFlightCount(): number {
    return this.#inFlight.size;
  }

  #require(instanceId: string): InstanceRecord {
    const record = this.#instances.get(instanceId);
    if (!record) {
      throw new OrchestrationInstanceError(`No instance with ID '${instanceId}' found.`, 404, { instanceId });
    }
    return record;
  }

  #createInstance(name: string, instanceId: string, input: unknown, parent: InstanceRecord['parent']): InstanceRecord {
    const now = this.#clock.now();
    const record: InstanceRecord = {
      instanceId,
      name,
      input,
      output: null,
      customStatus: null,
      runtimeStatus: 'Pending',
      createdTime: now,
      lastUpdatedTime: now,
      executionId: randomUUID(),
      history: [],
      recorded: [],
      ids: new Map(),
      nextEventId: 0,
      inbox: [{ kind: 'start' }],
      parent,
      previousExecutions: [],
    };
    this.#instances.set(instanceId, record);
    this.#kick(record);
    return record;
  }

  #enqueue(record: InstanceRecord, message: Message): void {
    record.inbox.push(message);
    this.#kick(record);
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => {
      this.#inFlight.delete(work);
    });
  }

  #kick(record: InstanceRecord): void {
    if (this.#stopped || this.#busy.has(record.instanceId) || record.inbox.length === 0) return;
    if (TERMINAL.includes(record.runtimeStatus)) {
      // Messages for a finished instance (late timers, late events) are dropped, as the extension does.
      record.inbox = [];
      return;
    }
    this.#busy.add(record.instanceId);
    const generation = this.#generation;
    const work = this.#runEpisode(record, generation).then(
      () => undefined,
      (error: unknown) => {
        this.#reportError(`[durable] episode of '${record.name}' (${record.instanceId}) failed inside the hub: ${String(error)}`);
      },
    ).finally(() => {
      if (generation === this.#generation) {
        this.#busy.delete(record.instanceId);
        const current = this.#instances.get(record.instanceId);
        if (current) this.#kick(current);
      }
    });
    this.#track(work);
  }

  #crashPoint(kind: CrashPoint['kind'], instanceId: string, name: string): boolean {
    const point: CrashPoint = { step: this.#step++, kind, instanceId, name };
    if (this.#crashPlan?.(point)) {
      this.#crashes.push(point);
      this.simulateCrash();
      return true;
    }
    return false;
  }

  #newEventFor(record: InstanceRecord, message: Exclude<Message, { kind: 'terminate' }>, now: string): HistoryEvent {
    const base = { EventId: -1, IsPlayed: false, Timestamp: now };
    switch (message.kind) {
      case 'start':
        return { ...base, EventType: HistoryEventType.ExecutionStarted, Name: record.name, Input: toJsonText(record.input) };
      case 'taskCompleted':
        return { ...base, EventType: HistoryEventType.TaskCompleted, TaskScheduledId: message.id, Result: message.result };
      case 'taskFailed':
        return {
          ...base,
          EventType: HistoryEventType.TaskFailed,
          TaskScheduledId: message.id,
          Reason: message.error.ErrorMessage,
          Details: message.error.StackTrace ?? '',
          FailureDetails: message.error,
        };
      case 'timerFired':
        return { ...base, EventType: HistoryEventType.TimerFired, TimerId: message.id, FireAt: message.fireAt };
      case 'eventRaised':
        return { ...base, EventType: HistoryEventType.EventRaised, Name: message.name, Input: message.input };
      case 'subCompleted':
        return { ...base, EventType: HistoryEventType.SubOrchestrationInstanceCompleted, TaskScheduledId: message.id, Result: message.result };
      case 'subFailed':
        return {
          ...base,
          EventType: HistoryEventType.SubOrchestrationInstanceFailed,
          TaskScheduledId: message.id,
          Reason: message.error.ErrorMessage,
          Details: message.error.StackTrace ?? '',
          FailureDetails: message.error,
        };
    }
  }

  async #runEpisode(record: InstanceRecord, generation: number): Promise<void> {
    const message = record.inbox[0];
    if (!message) return;
    const now = this.#clock.now();
    const nowText = now.toISOString();
    if (message.kind === 'terminate') {
      record.inbox = [];
      record.history.push({ EventType: HistoryEventType.ExecutionTerminated, EventId: -1, IsPlayed: false, Timestamp: nowText, Input: message.reason });
      record.runtimeStatus = 'Terminated';
      record.output = message.reason;
      record.lastUpdatedTime = now;
      return;
    }
    const started: HistoryEvent = { EventType: HistoryEventType.OrchestratorStarted, EventId: -1, IsPlayed: false, Timestamp: nowText };
    const newEvent = this.#newEventFor(record, message, nowText);
    const replayHistory = [...record.history.map((e) => ({ ...e, IsPlayed: true })), started, newEvent];
    const payload: Record<string, unknown> = {
      history: replayHistory,
      input: record.input,
      instanceId: record.instanceId,
      isReplaying: record.history.length > 0,
      parentInstanceId: record.parent?.instanceId ?? null,
      upperSchemaVersion: 1,
      upperSchemaVersionNew: 2,
      // The in-memory hub has no maximum timer length, so the library never splits timers.
      maximumShortTimerDuration: '36500.00:00:00',
      longRunningTimerIntervalDuration: '3.00:00:00',
      defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
    };
    const result = await this.#runner.runOrchestrator(record.name, payload);
    if (generation !== this.#generation) return;
    if (this.#crashPoint('before-episode-commit', record.instanceId, record.name)) return;
    this.#commitEpisode(record, message, started, newEvent, result, now);
    if (generation !== this.#generation) return;
    this.#crashPoint('after-episode-commit', record.instanceId, record.name);
  }

  #commitEpisode(
    record: InstanceRecord,
    message: Exclude<Message, { kind: 'terminate' }>,
    started: HistoryEvent,
    newEvent: HistoryEvent,
    result: OrchestratorRunResult,
    now: Date,
  ): void {
    record.inbox.shift();
    record.history.push(started, newEvent);
    if (record.runtimeStatus === 'Pending') record.runtimeStatus = 'Running';
    record.lastUpdatedTime = now;
    const state = result.state;
    const flat = state ? flattenActions(state.actions) : [];
    // Determinism: the replay must re-issue exactly what history recorded, in order.
    for (let i = 0; i < record.recorded.length; i++) {
      const recorded = record.recorded[i];
      const replayed = flat[i];
      if (!recorded) continue;
      if (!replayed || !sameAction(recorded.action, replayed)) {
        const recordedId = recorded.id;
        const historyEvent = recordedId === undefined
          ? undefined
          : record.history.find((e) => e.EventId === recordedId && e.EventType !== HistoryEventType.TimerFired);
        const eventText = historyEvent ? `history event ${historyEventTypeName(historyEvent.EventType)} #${historyEvent.EventId}` : `history action #${i}`;
        const found = replayed ? describeAction(replayed) : 'nothing (the replay stopped earlier)';
        const error = new NonDeterministicOrchestrationError(
          `Non-deterministic orchestrator '${record.name}' (instance '${record.instanceId}'): ${eventText} recorded ${describeAction(recorded.action)}, but the replay scheduled ${found}`,
          { orchestrator: record.name, instanceId: record.instanceId },
        );
        this.#reportError(`[durable] ${error.message}`);
        this.#finish(record, 'Failed', error.message, failureFrom(error), now);
        return;
      }
    }
    if (state) record.customStatus = state.customStatus ?? null;
    const toDispatch: (() => void)[] = [];
    this.#advanceRetries(record, message, now, toDispatch);
    if (!result.ok) {
      // Record whatever the failing replay scheduled before it threw, then fail the instance.
      record.history.push({ EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, IsPlayed: false, Timestamp: now.toISOString() });
      this.#finish(record, 'Failed', `Orchestrator function '${record.name}' failed: ${result.message}`, {
        ErrorType: 'OrchestrationFailure',
        ErrorMessage: result.message,
        IsNonRetriable: false,
      }, now);
      return;
    }
    const newActions = flat.slice(record.recorded.length);
    let continueAsNew: WireAction | undefined;
    for (const action of newActions) {
      const unsupported = this.#schedule(record, action, now, toDispatch);
      if (unsupported) {
        this.#finish(record, 'Failed', unsupported.message, failureFrom(unsupported), now);
        return;
      }
      if (action.actionType === ActionType.ContinueAsNew) continueAsNew = action;
    }
    record.history.push({ EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, IsPlayed: false, Timestamp: now.toISOString() });
    if (state?.isDone) {
      if (continueAsNew) {
        record.previousExecutions.push(record.history);
        record.history = [];
        record.recorded = [];
        record.ids = new Map();
        record.nextEventId = 0;
        record.executionId = randomUUID();
        record.input = decodeProcessedInput(continueAsNew.input) ?? null;
        // Unprocessed events do not carry over to the new execution (no preserve flag in JS).
        record.inbox = [{ kind: 'start' }];
        return;
      }
      this.#finish(record, 'Completed', state.output ?? null, undefined, now);
      return;
    }
    for (const dispatch of toDispatch) dispatch();
  }

  #finish(record: InstanceRecord, status: 'Completed' | 'Failed', output: unknown, error: FailureDetails | undefined, now: Date): void {
    record.runtimeStatus = status;
    record.output = output;
    record.lastUpdatedTime = now;
    record.inbox = [];
    const parent = record.parent ? this.#instances.get(record.parent.instanceId) : undefined;
    if (parent && record.parent && parent.executionId === record.parent.executionId && !TERMINAL.includes(parent.runtimeStatus)) {
      this.#enqueue(
        parent,
        status === 'Completed'
          ? { kind: 'subCompleted', id: record.parent.taskId, result: toJsonText(output) }
          : { kind: 'subFailed', id: record.parent.taskId, error: error ?? { ErrorType: 'Error', ErrorMessage: String(output), IsNonRetriable: false } },
      );
    }
  }

  #allocate(record: InstanceRecord, role: IdRole): number {
    const id = record.nextEventId++;
    record.ids.set(id, role);
    return id;
  }

  #schedule(record: InstanceRecord, action: WireAction, now: Date, toDispatch: (() => void)[]): UnsupportedDurableFeatureError | undefined {
    const entry = record.recorded.length;
    const nowText = now.toISOString();
    switch (action.actionType) {
      case ActionType.CallActivity:
      case ActionType.CallActivityWithRetry: {
        const retry = action.actionType === ActionType.CallActivityWithRetry && action.retryOptions
          ? { options: action.retryOptions, attempts: 1, firstAttemptAt: now.getTime() }
          : undefined;
        const id = this.#allocate(record, { entry, role: retry ? 'attempt' : 'task' });
        record.recorded.push({ action, id, retry });
        this.#scheduleActivityAttempt(record, id, action, nowText, toDispatch);
        return undefined;
      }
      case ActionType.CallSubOrchestrator:
      case ActionType.CallSubOrchestratorWithRetry: {
        const retry = action.actionType === ActionType.CallSubOrchestratorWithRetry && action.retryOptions
          ? { options: action.retryOptions, attempts: 1, firstAttemptAt: now.getTime() }
          : undefined;
        const id = this.#allocate(record, { entry, role: retry ? 'attempt' : 'task' });
        record.recorded.push({ action, id, retry });
        this.#scheduleSubOrchestration(record, id, action, nowText, toDispatch);
        return undefined;
      }
      case ActionType.CreateTimer: {
        const id = this.#allocate(record, { entry, role: 'timer' });
        record.recorded.push({ action, id });
        const fireAt = action.fireAt ?? nowText;
        record.history.push({ EventType: HistoryEventType.TimerCreated, EventId: id, IsPlayed: false, Timestamp: nowText, FireAt: fireAt });
        toDispatch.push(() => {
          this.#armTimer(record, id, fireAt);
        });
        return undefined;
      }
      case ActionType.WaitForExternalEvent:
      case ActionType.ContinueAsNew:
        record.recorded.push({ action });
        return undefined;
      default:
        return new UnsupportedDurableFeatureError(
          `orchestrator '${record.name}' (instance '${record.instanceId}') used ${actionTypeName(action.actionType)}, which the local in-memory task hub does not support; expected activities, timers, external events, sub-orchestrations or continueAsNew`,
          { orchestrator: record.name, instanceId: record.instanceId },
        );
    }
  }

  #scheduleActivityAttempt(record: InstanceRecord, id: number, action: WireAction, nowText: string, toDispatch: (() => void)[]): void {
    const name = action.functionName ?? '';
    const input = decodeProcessedInput(action.input);
    record.history.push({ EventType: HistoryEventType.TaskScheduled, EventId: id, IsPlayed: false, Timestamp: nowText, Name: name, Input: toJsonText(input) });
    toDispatch.push(() => {
      this.#dispatchActivity(record, id, name, input);
    });
  }

  #scheduleSubOrchestration(record: InstanceRecord, id: number, action: WireAction, nowText: string, toDispatch: (() => void)[]): void {
    const name = action.functionName ?? '';
    const childId = action.instanceId ?? `${record.instanceId}:${id.toString(16).padStart(4, '0').toUpperCase()}`;
    record.history.push({
      EventType: HistoryEventType.SubOrchestrationInstanceCreated,
      EventId: id,
      IsPlayed: false,
      Timestamp: nowText,
      Name: name,
      InstanceId: childId,
      Input: toJsonText(action.input),
    });
    const parent = { instanceId: record.instanceId, taskId: id, executionId: record.executionId };
    toDispatch.push(() => {
      const kind = this.#runner.kindOf(name);
      const existing = this.#instances.get(childId);
      if (kind !== 'orchestration' || (existing && !TERMINAL.includes(existing.runtimeStatus))) {
        const why = kind !== 'orchestration'
          ? `The function '${name}' doesn't exist, is disabled, or is not an orchestrator function`
          : `An Orchestration instance with the status ${existing?.runtimeStatus ?? ''} already exists (instance '${childId}')`;
        this.#enqueue(record, { kind: 'subFailed', id, error: { ErrorType: 'Error', ErrorMessage: why, IsNonRetriable: true } });
        return;
      }
      this.#createInstance(name, childId, action.input ?? null, parent);
    });
  }

  #advanceRetries(record: InstanceRecord, message: Exclude<Message, { kind: 'terminate' }>, now: Date, toDispatch: (() => void)[]): void {
    const nowText = now.toISOString();
    if (message.kind === 'taskFailed' || message.kind === 'subFailed') {
      const role = record.ids.get(message.id);
      const entry = role ? record.recorded[role.entry] : undefined;
      if (!role || role.role !== 'attempt' || !entry?.retry) return;
      // After every failed attempt (the last one too) the extension's retry loop waits on a
      // timer; the library counts attempts and fails the task when that timer fires.
      const retry = entry.retry;
      retry.lastError = message.error;
      const opts = retry.options;
      const coefficient = opts.backoffCoefficient ?? 1;
      let delay = opts.firstRetryIntervalInMilliseconds * Math.pow(coefficient, retry.attempts - 1);
      if (opts.maxRetryIntervalInMilliseconds !== undefined && opts.maxRetryIntervalInMilliseconds > 0) {
        delay = Math.min(delay, opts.maxRetryIntervalInMilliseconds);
      }
      const fireAt = new Date(now.getTime() + delay).toISOString();
      const timerId = this.#allocate(record, { entry: role.entry, role: 'retryTimer' });
      record.history.push({ EventType: HistoryEventType.TimerCreated, EventId: timerId, IsPlayed: false, Timestamp: nowText, FireAt: fireAt });
      toDispatch.push(() => {
        this.#armTimer(record, timerId, fireAt);
      });
      return;
    }
    if (message.kind === 'timerFired') {
      const role = record.ids.get(message.id);
      const entry = role ? record.recorded[role.entry] : undefined;
      if (!role || role.role !== 'retryTimer' || !entry?.retry) return;
      const retry = entry.retry;
      if (retry.attempts >= retry.options.maxNumberOfAttempts) return;
      retry.attempts++;
      const attemptId = this.#allocate(record, { entry: role.entry, role: 'attempt' });
      const timeout = retry.options.retryTimeoutInMilliseconds;
      const timedOut = timeout !== undefined && timeout > 0 && now.getTime() - retry.firstAttemptAt >= timeout;
      if (entry.action.actionType === ActionType.CallActivityWithRetry) {
        this.#scheduleActivityAttempt(record, attemptId, entry.action, nowText, timedOut ? [] : toDispatch);
      } else {
        this.#scheduleSubOrchestration(record, attemptId, entry.action, nowText, timedOut ? [] : toDispatch);
      }
      if (timedOut) {
        const lastError = retry.lastError ?? { ErrorType: 'Error', ErrorMessage: 'retry timeout elapsed', IsNonRetriable: true };
        toDispatch.push(() => {
          this.#enqueue(record, { kind: entry.action.actionType === ActionType.CallActivityWithRetry ? 'taskFailed' : 'subFailed', id: attemptId, error: lastError });
        });
      }
    }
  }

  #armTimer(record: InstanceRecord, id: number, fireAt: string): void {
    const generation = this.#generation;
    const executionId = record.executionId;
    const cancel = this.#clock.schedule(new Date(fireAt), () => {
      if (generation !== this.#generation) return;
      const current = this.#instances.get(record.instanceId);
      if (!current || current.executionId !== executionId) return;
      this.#enqueue(current, { kind: 'timerFired', id, fireAt });
    });
    this.#timerCancels.push(cancel);
  }

  #dispatchActivity(record: InstanceRecord, id: number, name: string, input: unknown): void {
    const generation = this.#generation;
    const executionId = record.executionId;
    const work = (async () => {
      let message: Message;
      if (this.#runner.kindOf(name) !== 'activity') {
        message = {
          kind: 'taskFailed',
          id,
          error: { ErrorType: 'Error', ErrorMessage: `The function '${name}' doesn't exist, is disabled, or is not an activity function`, IsNonRetriable: true },
        };
      } else {
        try {
          const output = await this.#runner.runActivity(name, input);
          message = { kind: 'taskCompleted', id, result: toJsonText(output) };
        } catch (error) {
          message = { kind: 'taskFailed', id, error: failureFrom(error) };
        }
      }
      if (generation !== this.#generation) return;
      if (this.#crashPoint('after-activity-run', record.instanceId, name)) return;
      const current = this.#instances.get(record.instanceId);
      if (!current || current.executionId !== executionId) return;
      this.#enqueue(current, message);
    })();
    this.#track(work);
  }

  #recover(): void {
    for (const record of this.#instances.values()) {
      if (TERMINAL.includes(record.runtimeStatus)) continue;
      const done = new Set<number>();
      for (const e of record.history) {
        if (e.TaskScheduledId !== undefined) done.add(e.TaskScheduledId);
        if (e.TimerId !== undefined) done.add(e.TimerId);
      }
      for (const m of record.inbox) {
        if ('id' in m) done.add(m.id);
      }
      for (const e of record.history) {
        if (done.has(e.EventId)) continue;
        if (e.EventType === HistoryEventType.TaskScheduled) {
          this.#dispatchActivity(record, e.EventId, e.Name ?? '', parseJsonText(e.Input));
        } else if (e.EventType === HistoryEventType.TimerCreated) {
          this.#armTimer(record, e.EventId, e.FireAt ?? new Date(0).toISOString());
        } else if (e.EventType === HistoryEventType.SubOrchestrationInstanceCreated) {
          const child = this.#instances.get(e.InstanceId ?? '');
          if (!child) {
            // The parent committed the creation but the child record was never written.
            this.#createInstance(e.Name ?? '', e.InstanceId ?? '', parseJsonText(e.Input), {
              instanceId: record.instanceId,
              taskId: e.EventId,
              executionId: record.executionId,
            });
          } else if (TERMINAL.includes(child.runtimeStatus)) {
            // The child finished but its notification was in flight: deliver it again.
            record.inbox.push(
              child.runtimeStatus === 'Completed'
                ? { kind: 'subCompleted', id: e.EventId, result: toJsonText(child.output) }
                : { kind: 'subFailed', id: e.EventId, error: { ErrorType: 'Error', ErrorMessage: String(child.output), IsNonRetriable: false } },
            );
          }
        }
      }
      this.#kick(record);
    }
  }
}
