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
  Reason?: string;
  Details?: string;
  FailureDetails?: FailureDetails;
  Version?: string;
}

/** Failure details as the extension reports them for failed tasks and sub-orchestrations. */
export interface FailureDetails {
  ErrorType: string;
  ErrorMessage: string;
  StackTrace?: string;
  IsNonRetriable: boolean;
}

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
  instanceId?: string;
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
