/**
 * History events in the wire shape the Durable extension sends to out-of-process orchestrators
 * (PascalCase fields, numeric `EventType`), which `durable-functions` replays from.
 */

/** Numeric event types, matching durable-functions' `HistoryEventType`. */
export const HistoryEventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventSent: 14,
  EventRaised: 15,
  ContinueAsNew: 16,
} as const;

/** Name of a numeric history event type, for messages and status output. */
export function historyEventTypeName(type: number): string {
  return Object.entries(HistoryEventType).find(([, v]) => v === type)?.[0] ?? `EventType(${type})`;
}

/** One history event. Fields beyond the common ones depend on `EventType`. */
export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
  Name?: string;
  Input?: string;
  Result?: string;
  TaskScheduledId?: number;
  TimerId?: number;
  FireAt?: string;
  InstanceId?: string;
  /** Failure reason of TaskFailed / SubOrchestrationInstanceFailed. */
  Reason?: string;
  /**
   * Failure details text. `null` where DurableTask.Core has none (a terminated sub-orchestration),
   * which the JS library cannot parse.
   */
  Details?: string | null;
  /** `OrchestrationStatus` of ExecutionCompleted / ContinueAsNew, numeric as the extension serializes it. */
  OrchestrationStatus?: number;
  Version?: string;
}

/** DurableTask.Core's `OrchestrationStatus` values (src/DurableTask.Core/OrchestrationStatus.cs). */
export const OrchestrationStatus = {
  Running: 0,
  Completed: 1,
  ContinuedAsNew: 2,
  Failed: 3,
  Canceled: 4,
  Terminated: 5,
  Pending: 6,
} as const;

/** Action types returned by `durable-functions` in the orchestrator state (`ActionType`). */
export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
  LockEntities: 13,
  ReleaseEntities: 14,
} as const;

/** Name of a numeric action type. */
export function actionTypeName(type: number): string {
  return Object.entries(ActionType).find(([, v]) => v === type)?.[0] ?? `ActionType(${type})`;
}

/** Retry options as serialized by `durable-functions`' `RetryOptions`. */
export interface WireRetryOptions {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
  retryTimeoutInMilliseconds?: number;
}

/** One action from the orchestrator state, as serialized by the library. */
export interface WireAction {
  actionType: number;
  functionName?: string;
  input?: unknown;
  retryOptions?: WireRetryOptions;
  fireAt?: string;
  isCanceled?: boolean;
  externalEventName?: string;
  /** Sub-orchestration instance id; absent or null when the orchestrator gave none. */
  instanceId?: string | null;
  compoundActions?: WireAction[];
}

/** The orchestrator state the library returns after each replay. */
export interface WireOrchestratorState {
  isDone: boolean;
  actions: WireAction[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  schemaVersion?: number;
}

/** Flattens compound (`Task.all` / `Task.any`) actions into scheduling order. */
export function flattenActions(actions: readonly (readonly WireAction[])[]): WireAction[] {
  const flat: WireAction[] = [];
  const visit = (action: WireAction): void => {
    if (action.actionType === ActionType.WhenAll || action.actionType === ActionType.WhenAny) {
      for (const child of action.compoundActions ?? []) visit(child);
    } else {
      flat.push(action);
    }
  };
  for (const group of actions) for (const action of group) visit(action);
  return flat;
}

/**
 * Decodes an action input: the library JSON-encodes string inputs of activities and continueAsNew
 * (`Utils.processInput`), so a string input is JSON text; other inputs are the value itself.
 */
export function decodeProcessedInput(input: unknown): unknown {
  if (typeof input !== 'string') return input;
  try {
    return JSON.parse(input) as unknown;
  } catch {
    return input;
  }
}

/** JSON text of a value as history stores it (`undefined` as `null`). */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}
