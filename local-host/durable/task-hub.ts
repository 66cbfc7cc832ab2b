import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { NonDeterministicOrchestrationError, OrchestrationInstanceError, OrchestrationWouldHangError, UnsupportedDurableFeatureError } from './durable-errors.ts';
import type { Decision, TimerLimits } from './extension-replay.ts';
import { AZURE_STORAGE_TIMER_LIMITS, describe, formatTimeSpan, replayOnExtension } from './extension-replay.ts';
import type { HistoryEvent, WireAction, WireOrchestratorState } from './history-events.ts';
import { ActionType, HistoryEventType, OrchestrationStatus, actionTypeName, decodeProcessedInput, flattenActions, toJsonText } from './history-events.ts';

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
  | { kind: 'taskFailed'; id: number; failure: Failure }
  | { kind: 'timerFired'; id: number; fireAt: string }
  | { kind: 'eventRaised'; name: string; input: string | undefined }
  | { kind: 'subCompleted'; id: number; result: string }
  | { kind: 'subFailed'; id: number; failure: Failure }
  | { kind: 'terminate'; reason: string };

/**
 * A failure as DurableTask.Core records it with the extension's `ErrorPropagationMode`
 * (SerializeExceptions): a `Reason` and a `Details` text, no `FailureDetails`. `details` is null
 * where DurableTask.Core has none (termination).
 */
interface Failure {
  readonly reason: string;
  readonly details: string | null;
}

interface InstanceRecord {
  readonly instanceId: string;
  name: string;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  runtimeStatus: RuntimeStatus;
  readonly createdTime: Date;
  lastUpdatedTime: Date;
  /** 32 hex digits, as DurableTask.Core formats execution ids (`Guid.ToString("N")`). */
  executionId: string;
  history: HistoryEvent[];
  inbox: Message[];
  readonly parent?: { instanceId: string; taskId: number; executionId: string };
  /** Every execution's history, oldest first, for continueAsNew inspection. */
  previousExecutions: HistoryEvent[][];
  /** Why the instance failed or was terminated, as its parent is told. */
  failure?: Failure;
  /** The flat action list of the last replay, to report drift DurableTask.Core tolerates. */
  lastActions: WireAction[];
  /** Warnings already reported for this execution. */
  reportedWarnings: Set<string>;
}

/** Options for the in-memory task hub. */
export interface TaskHubOptions {
  readonly taskHubName?: string;
  readonly clock: Clock;
  readonly runner: DurableFunctionRunner;
  /** `NonRunningStates` (the extension's default) or `AnyState`. */
  readonly overridableExistingInstanceStates?: 'NonRunningStates' | 'AnyState';
  /** Timer limits of the durability provider; Azure Storage's (6 days, split into 3-day pieces) by default. */
  readonly timerLimits?: TimerLimits;
  /** Where loud failures (non-determinism, orchestrations that would hang on Azure) go; defaults to stderr. */
  readonly reportError?: (message: string) => void;
  /** Where warnings (replay drift DurableTask.Core tolerates) go; defaults to stderr. */
  readonly reportWarning?: (message: string) => void;
}

/** Result of `startNew`. */
export interface StartResult {
  readonly instanceId: string;
}

const UNSUPPORTED_ACTIONS: readonly number[] = [
  ActionType.CallEntity,
  ActionType.CallHttp,
  ActionType.SignalEntity,
  ActionType.LockEntities,
  ActionType.ReleaseEntities,
];

function newExecutionId(): string {
  return randomUUID().replace(/-/g, '');
}

function parseJsonText(text: string | undefined): unknown {
  return text === undefined || text === '' ? null : (JSON.parse(text) as unknown);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : typeof error === 'string' ? error : JSON.stringify(error);
}

// TaskActivityShim.RunAsync: `Activity function '<name>' failed: <message>`, with the cause
// serialized by Newtonsoft as Details. The local Details only approximates that JSON.
function activityFailure(name: string, error: unknown): Failure {
  const message = errorText(error);
  return {
    reason: `Activity function '${name}' failed: ${message}`,
    details: JSON.stringify({
      $type: 'System.Exception, System.Private.CoreLib',
      ClassName: 'System.Exception',
      Message: message,
      StackTraceString: error instanceof Error ? (error.stack ?? null) : null,
    }),
  };
}

// The sequence number DurableTask.Core would give the next action: one per scheduled event.
function nextSequenceId(history: readonly HistoryEvent[]): number {
  return history.filter((e) => e.EventType === HistoryEventType.TaskScheduled || e.EventType === HistoryEventType.TimerCreated || e.EventType === HistoryEventType.SubOrchestrationInstanceCreated).length;
}

// What identifies an action for drift warnings (inputs and fire times are compared against history).
function signature(action: WireAction): string {
  const parts = [actionTypeName(action.actionType), action.functionName ?? '', action.externalEventName ?? ''];
  if (action.compoundActions) parts.push(`[${action.compoundActions.map(signature).join(',')}]`);
  return parts.join(' ');
}

/**
 * An in-memory Durable task hub that behaves like the Durable Functions extension on
 * DurableTask.Core. Orchestrators run through `durable-functions`' own replay: every episode hands
 * the library the instance's whole history plus one new event, and the library re-runs the
 * orchestrator from the start and returns its actions. The hub then replays those actions the way
 * the extension does (`extension-replay.ts`): the determinism check, sequence numbers, retries,
 * long timers and completion are decided there, and orchestrations the extension would leave
 * waiting forever fail loudly here.
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
  readonly #limits: TimerLimits;
  readonly #reportError: (message: string) => void;
  readonly #reportWarning: (message: string) => void;
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #busy = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #warnings: string[] = [];
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
    this.#limits = options.timerLimits ?? AZURE_STORAGE_TIMER_LIMITS;
    this.#reportError = options.reportError ?? ((m) => process.stderr.write(`${m}\n`));
    this.#reportWarning = options.reportWarning ?? ((m) => process.stderr.write(`${m}\n`));
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

  /** Every warning reported so far (replay drift DurableTask.Core tolerates), oldest first. */
  get warnings(): readonly string[] {
    return this.#warnings;
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
      executionId: newExecutionId(),
      history: [],
      inbox: [{ kind: 'start' }],
      parent,
      previousExecutions: [],
      lastActions: [],
      reportedWarnings: new Set(),
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
        return { ...base, EventType: HistoryEventType.TaskFailed, TaskScheduledId: message.id, Reason: message.failure.reason, Details: message.failure.details };
      case 'timerFired':
        return { ...base, EventType: HistoryEventType.TimerFired, TimerId: message.id, FireAt: message.fireAt };
      case 'eventRaised':
        return { ...base, EventType: HistoryEventType.EventRaised, Name: message.name, Input: message.input };
      case 'subCompleted':
        return { ...base, EventType: HistoryEventType.SubOrchestrationInstanceCompleted, TaskScheduledId: message.id, Result: message.result };
      case 'subFailed':
        return { ...base, EventType: HistoryEventType.SubOrchestrationInstanceFailed, TaskScheduledId: message.id, Reason: message.failure.reason, Details: message.failure.details };
    }
  }

  async #runEpisode(record: InstanceRecord, generation: number): Promise<void> {
    const message = record.inbox[0];
    if (!message) return;
    const now = this.#clock.now();
    const nowText = now.toISOString();
    if (message.kind === 'terminate') {
      // DurableTask.Core: ExecutionTerminated ends the execution with status Terminated; the
      // reason is its result (TaskOrchestrationContext.HandleExecutionTerminatedEvent).
      record.history.push(
        { EventType: HistoryEventType.OrchestratorStarted, EventId: -1, IsPlayed: false, Timestamp: nowText },
        { EventType: HistoryEventType.ExecutionTerminated, EventId: -1, IsPlayed: false, Timestamp: nowText, Input: message.reason },
        { EventType: HistoryEventType.ExecutionCompleted, EventId: nextSequenceId(record.history), IsPlayed: false, Timestamp: nowText, OrchestrationStatus: OrchestrationStatus.Terminated, Result: message.reason },
        { EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, IsPlayed: false, Timestamp: nowText },
      );
      // ProcessWorkflowCompletedTaskDecision tells the parent with SubOrchestrationInstanceFailed:
      // Reason is the termination reason, Details null (Terminated has no details).
      this.#finish(record, 'Terminated', message.reason, { reason: message.reason, details: null }, now);
      return;
    }
    const started: HistoryEvent = { EventType: HistoryEventType.OrchestratorStarted, EventId: -1, IsPlayed: false, Timestamp: nowText };
    const newEvent = this.#newEventFor(record, message, nowText);
    const replayHistory = [...record.history.map((e) => ({ ...e, IsPlayed: true })), started, newEvent];
    // The payload OrchestrationTriggerAttributeBindingProvider.OrchestrationContextToString sends.
    const payload: Record<string, unknown> = {
      history: replayHistory,
      input: record.input,
      instanceId: record.instanceId,
      isReplaying: record.history.length > 0,
      parentInstanceId: record.parent?.instanceId ?? null,
      upperSchemaVersion: 1,
      upperSchemaVersionNew: 2,
      longRunningTimerIntervalDuration: formatTimeSpan(this.#limits.longRunningTimerIntervalMs),
      maximumShortTimerDuration: formatTimeSpan(this.#limits.maximumShortTimerMs),
      defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
    };
    const result = await this.#runner.runOrchestrator(record.name, payload);
    if (generation !== this.#generation) return;
    if (this.#crashPoint('before-episode-commit', record.instanceId, record.name)) return;
    this.#commitEpisode(record, started, newEvent, result, now);
    if (generation !== this.#generation) return;
    this.#crashPoint('after-episode-commit', record.instanceId, record.name);
  }

  #commitEpisode(record: InstanceRecord, started: HistoryEvent, newEvent: HistoryEvent, result: OrchestratorRunResult, now: Date): void {
    record.inbox.shift();
    record.history.push(started, newEvent);
    if (record.runtimeStatus === 'Pending' || record.runtimeStatus === 'ContinuedAsNew') record.runtimeStatus = 'Running';
    record.lastUpdatedTime = now;
    const state = result.state;
    if (!state) {
      // The library threw before it could return a state (TaskOrchestrationShim: the invocation
      // failed without out-of-proc data): the orchestration fails at once.
      const message = result.ok ? 'no orchestrator state returned' : result.message;
      this.#fail(record, `Orchestrator function '${record.name}' failed: ${message}`, `Message: ${message}`, now);
      return;
    }
    const flat = flattenActions(state.actions);
    const unsupported = flat.find((a) => UNSUPPORTED_ACTIONS.includes(a.actionType));
    if (unsupported) {
      const error = new UnsupportedDurableFeatureError(
        `orchestrator '${record.name}' (instance '${record.instanceId}') used ${actionTypeName(unsupported.actionType)}, which the local in-memory task hub does not support; expected activities, timers, external events, sub-orchestrations or continueAsNew`,
        { orchestrator: record.name, instanceId: record.instanceId },
      );
      this.#fail(record, error.message, error.message, now);
      return;
    }
    if (state.actions.length > 1) {
      // OutOfProcOrchestrationShim.ReplayOOProcOrchestration refuses this for schema V2 and V3.
      this.#fail(record, `With OOProc schema V3, expected actions array to be of length 1 in outer layer but got size: ${state.actions.length.toString()}`, null, now);
      return;
    }
    const replay = replayOnExtension(record.history, state.actions[0] ?? [], {
      orchestrator: record.name,
      instanceId: record.instanceId,
      executionId: record.executionId,
      ...(record.parent ? { parentInstanceId: record.parent.instanceId } : {}),
      limits: this.#limits,
      orchestratorFinished: state.isDone || !result.ok,
      functionKind: (name) => this.#runner.kindOf(name),
    });
    if (replay.violation !== undefined) {
      const error = new NonDeterministicOrchestrationError(replay.violation, { orchestrator: record.name, instanceId: record.instanceId });
      this.#reportError(`[durable] orchestrator '${record.name}' (instance '${record.instanceId}') failed: ${error.message}`);
      this.#fail(record, error.message, error.message, now);
      return;
    }
    for (const warning of [...replay.warnings, ...this.#actionDrift(record, flat)]) {
      if (record.reportedWarnings.has(warning.key)) continue;
      record.reportedWarnings.add(warning.key);
      const message = `[durable] warning: ${warning.message}`;
      this.#warnings.push(message);
      this.#reportWarning(message);
    }
    record.lastActions = flat;
    const incidents = [...replay.incidents, ...this.#subOrchestrationClashes(replay.decisions)];
    if (incidents.length > 0) {
      const error = new OrchestrationWouldHangError(
        `Orchestrator '${record.name}' (instance '${record.instanceId}') would wait forever on the Durable extension: ${incidents.join('; ')}. The local hub fails it instead of letting it look healthy.`,
        { orchestrator: record.name, instanceId: record.instanceId },
      );
      this.#reportError(`[durable] ${error.message}`);
      this.#fail(record, error.message, error.message, now);
      return;
    }
    record.customStatus = state.customStatus ?? null;
    const nowText = now.toISOString();
    for (const decision of replay.decisions) record.history.push(this.#scheduledEvent(decision, nowText));
    if (replay.completes) {
      if (!result.ok) {
        // OutOfProcOrchestrationShim.ScheduleDurableTaskEvents, after replaying the actions: the
        // state's `error` (the library's own error message only says whether the function returned).
        const error = state.error ?? result.message;
        this.#fail(record, `Orchestrator function '${record.name}' failed: ${error}`, `Message: ${error}`, now);
      } else if (replay.continueAsNew) {
        this.#continueAsNew(record, replay.continueAsNew, replay.nextSequenceId, now);
      } else {
        const output: unknown = state.output ?? null;
        record.history.push(
          { EventType: HistoryEventType.ExecutionCompleted, EventId: replay.nextSequenceId, IsPlayed: false, Timestamp: nowText, OrchestrationStatus: OrchestrationStatus.Completed, Result: toJsonText(output) },
          { EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, IsPlayed: false, Timestamp: nowText },
        );
        this.#finish(record, 'Completed', output, undefined, now);
      }
      return;
    }
    record.history.push({ EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, IsPlayed: false, Timestamp: nowText });
    for (const decision of replay.decisions) this.#dispatch(record, decision);
  }

  // Drift in what DurableTask.Core never sees: where and which waitForExternalEvent, activity with
  // or without retry. Compared with the previous replay of this execution (a prefix of this one).
  #actionDrift(record: InstanceRecord, flat: readonly WireAction[]): { key: string; message: string }[] {
    const previous = record.lastActions;
    for (let i = 0; i < previous.length; i++) {
      const before = previous[i];
      const now = flat[i];
      if (!before) continue;
      const was = signature(before);
      const is = now ? signature(now) : 'nothing';
      if (was === is) continue;
      return [{
        key: `drift:${i.toString()}:${was}->${is}`,
        message: `orchestrator '${record.name}' (instance '${record.instanceId}'), action #${i.toString()}: the previous replay had ${describe(before)}, this replay has ${now ? describe(now) : 'nothing'}; DurableTask.Core does not compare this, so the instance goes on`,
      }];
    }
    return [];
  }

  // A sub-orchestration whose instance id is already running: DurableTask.Core drops the duplicate
  // ExecutionStarted (TaskOrchestrationDispatcher.ReconcileMessagesWithState), the parent waits forever.
  #subOrchestrationClashes(decisions: readonly Decision[]): string[] {
    const clashes: string[] = [];
    for (const d of decisions) {
      if (d.kind !== 'subOrchestration') continue;
      const existing = this.#instances.get(d.instanceId);
      if (existing && !TERMINAL.includes(existing.runtimeStatus)) {
        clashes.push(`sub-orchestration '${d.name}' asks for instance '${d.instanceId}', which is ${existing.runtimeStatus}; the task hub drops the duplicate start, so the parent is never answered`);
      }
    }
    return clashes;
  }

  #scheduledEvent(decision: Decision, nowText: string): HistoryEvent {
    const base = { EventId: decision.id, IsPlayed: false, Timestamp: nowText };
    switch (decision.kind) {
      case 'task':
        return { ...base, EventType: HistoryEventType.TaskScheduled, Name: decision.name, Input: toJsonText(decision.input) };
      case 'timer':
        return { ...base, EventType: HistoryEventType.TimerCreated, FireAt: decision.fireAt };
      case 'subOrchestration':
        return { ...base, EventType: HistoryEventType.SubOrchestrationInstanceCreated, Name: decision.name, InstanceId: decision.instanceId, Input: toJsonText(decision.input) };
    }
  }

  #dispatch(record: InstanceRecord, decision: Decision): void {
    switch (decision.kind) {
      case 'task':
        this.#dispatchActivity(record, decision.id, decision.name, decision.input);
        return;
      case 'timer':
        // A canceled timer is still created (and fires), but nothing waits for it.
        this.#armTimer(record, decision.id, decision.fireAt);
        return;
      case 'subOrchestration':
        this.#createInstance(decision.name, decision.instanceId, decision.input ?? null, { instanceId: record.instanceId, taskId: decision.id, executionId: record.executionId });
        return;
    }
  }

  /**
   * continueAsNew, as TaskOrchestrationDispatcher does it: the execution ends with a ContinueAsNew
   * event (status ContinuedAsNew, the new input as result), a new execution starts with a new
   * execution id, and the messages that arrived but were not yet processed are not lost: external
   * events (and a pending terminate) go to the new execution, while completions for the old
   * execution are discarded (their execution id no longer matches). Events the old execution had
   * already received but not consumed are dropped: the JS library has no preserveUnprocessedEvents.
   */
  #continueAsNew(record: InstanceRecord, action: WireAction, sequenceId: number, now: Date): void {
    const input = decodeProcessedInput(action.input) ?? null;
    record.history.push({ EventType: HistoryEventType.ContinueAsNew, EventId: sequenceId, IsPlayed: false, Timestamp: now.toISOString(), OrchestrationStatus: OrchestrationStatus.ContinuedAsNew, Result: toJsonText(input) });
    record.previousExecutions.push(record.history);
    record.history = [];
    record.executionId = newExecutionId();
    record.input = input;
    record.output = null;
    record.runtimeStatus = 'ContinuedAsNew';
    record.lastActions = [];
    record.reportedWarnings = new Set();
    const carried = record.inbox.filter((m) => m.kind === 'eventRaised' || m.kind === 'terminate');
    record.inbox = [{ kind: 'start' }, ...carried];
  }

  #fail(record: InstanceRecord, reason: string, details: string | null, now: Date): void {
    const nowText = now.toISOString();
    record.history.push(
      { EventType: HistoryEventType.ExecutionCompleted, EventId: nextSequenceId(record.history), IsPlayed: false, Timestamp: nowText, OrchestrationStatus: OrchestrationStatus.Failed, Result: reason },
      { EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, IsPlayed: false, Timestamp: nowText },
    );
    this.#finish(record, 'Failed', reason, { reason, details }, now);
  }

  #finish(record: InstanceRecord, status: 'Completed' | 'Failed' | 'Terminated', output: unknown, failure: Failure | undefined, now: Date): void {
    record.runtimeStatus = status;
    record.output = output;
    record.lastUpdatedTime = now;
    record.inbox = [];
    if (failure) record.failure = failure;
    const parent = record.parent ? this.#instances.get(record.parent.instanceId) : undefined;
    if (parent && record.parent && parent.executionId === record.parent.executionId && !TERMINAL.includes(parent.runtimeStatus)) {
      this.#enqueue(parent, this.#outcomeForParent(record, record.parent.taskId));
    }
  }

  #outcomeForParent(child: InstanceRecord, taskId: number): Message {
    if (child.runtimeStatus === 'Completed') return { kind: 'subCompleted', id: taskId, result: toJsonText(child.output) };
    return { kind: 'subFailed', id: taskId, failure: child.failure ?? { reason: String(child.output), details: null } };
  }

  #armTimer(record: InstanceRecord, id: number, fireAt: string): void {
    const generation = this.#generation;
    const executionId = record.executionId;
    const fire = (): void => {
      if (generation !== this.#generation) return;
      const current = this.#instances.get(record.instanceId);
      if (!current || current.executionId !== executionId) return;
      this.#enqueue(current, { kind: 'timerFired', id, fireAt });
    };
    // A timer already due (the retry loop's timer after the last attempt) fires now.
    if (new Date(fireAt).getTime() <= this.#clock.now().getTime()) {
      fire();
      return;
    }
    this.#timerCancels.push(this.#clock.schedule(new Date(fireAt), fire));
  }

  #dispatchActivity(record: InstanceRecord, id: number, name: string, input: unknown): void {
    const generation = this.#generation;
    const executionId = record.executionId;
    const work = (async () => {
      let message: Message;
      try {
        const output = await this.#runner.runActivity(name, input);
        message = { kind: 'taskCompleted', id, result: toJsonText(output) };
      } catch (error) {
        message = { kind: 'taskFailed', id, failure: activityFailure(name, error) };
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
            record.inbox.push(this.#outcomeForParent(child, e.EventId));
          }
        }
      }
      this.#kick(record);
    }
  }
}
