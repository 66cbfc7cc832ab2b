/**
 * Long-running operations as ARM runs them: the request is accepted with `Azure-AsyncOperation`
 * and `Location` URLs, the operation stays `InProgress` for the configured duration, then the
 * provider's mutation runs and the operation ends `Succeeded`, or `Failed` with an error and no
 * mutation.
 *
 * Durations are sandbox-clock time: an operation is due `duration` after it started on the
 * sandbox clock. A real timer completes it when that much real time has passed, and shifting the
 * clock past its due time completes it at once, so a restore that "takes two hours" can be
 * driven by advancing the clock instead of waiting.
 */
import { randomUUID } from 'node:crypto';
import type { LongRunningOperation, SandboxResponse } from '../contract.ts';
import type { FaultSpec, OperationSnapshot } from './types.ts';
import { defaultErrorCode } from './faults.ts';

/** Where the operation's status URLs live (derived from the request that started it). */
export interface OperationScope {
  readonly baseUrl: string;
  readonly apiVersion: string;
  readonly subscriptionId: string;
  readonly namespace: string;
  readonly location: string;
}

interface OperationRecord {
  readonly id: string;
  readonly operationId: string;
  readonly resourceId: string;
  readonly scope: OperationScope;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  readonly startTime: Date;
  endTime: Date | undefined;
  error: { code: string; message: string } | undefined;
  failureStatus: number;
  readonly result: (() => unknown) | undefined;
  /** Sandbox time at which the operation completes. */
  readonly dueAt: Date;
  /** Set once completion has begun, so that a timer and a clock shift never both complete it. */
  completing: boolean;
  readonly options: StartOperationOptions;
  readonly failure: FaultSpec | undefined;
}

/** Options of {@link OperationRegistry.start}. */
export interface StartOperationOptions {
  readonly operationId: string;
  readonly resourceId: string;
  readonly onStart?: () => void;
  readonly run: () => void | Promise<void>;
  readonly onFailed?: () => void;
  readonly result?: () => unknown;
}

/** All long-running operations of one sandbox. */
export class OperationRegistry {
  private readonly operations = new Map<string, OperationRecord>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    /** How long an operation with this operation id stays InProgress, in sandbox-clock milliseconds. */
    private readonly durationMs: (operationId: string) => number,
    private readonly retryAfterSeconds: number,
    private readonly now: () => Date,
    private readonly onEvent: (kind: string, details: Record<string, unknown>) => void,
  ) {}

  /** Starts an operation; `failure` (from an injected fault) makes it fail without running. */
  start(options: StartOperationOptions, scope: OperationScope, failure: FaultSpec | undefined): LongRunningOperation {
    const id = randomUUID();
    const startTime = this.now();
    const record: OperationRecord = {
      id,
      operationId: options.operationId,
      resourceId: options.resourceId,
      scope,
      status: 'InProgress',
      startTime,
      endTime: undefined,
      error: undefined,
      failureStatus: 500,
      result: options.result,
      dueAt: new Date(startTime.getTime() + Math.max(0, this.durationMs(options.operationId))),
      completing: false,
      options,
      failure,
    };
    this.operations.set(id, record);
    options.onStart?.();
    this.onEvent('operation.started', { id, operationId: options.operationId, resourceId: options.resourceId, dueAt: record.dueAt.toISOString() });
    this.schedule(record);
    return {
      id,
      accepted: (acceptedOptions) => ({
        status: acceptedOptions?.status ?? 202,
        headers: {
          'Azure-AsyncOperation': this.statusUrl(record, 'operationStatuses'),
          Location: this.statusUrl(record, 'operationResults'),
          'Retry-After': String(this.retryAfterSeconds),
        },
        body: acceptedOptions?.body,
      }),
    };
  }

  /** Arms a real timer for the time left until the operation is due (the clock may move meanwhile). */
  private schedule(record: OperationRecord): void {
    const remaining = Math.max(0, record.dueAt.getTime() - this.now().getTime());
    const timer = setTimeout(() => {
      this.timers.delete(record.id);
      if (record.dueAt.getTime() > this.now().getTime()) this.schedule(record);
      else this.begin(record);
    }, remaining);
    this.timers.set(record.id, timer);
  }

  private begin(record: OperationRecord): void {
    if (record.completing || this.stopped) return;
    record.completing = true;
    const timer = this.timers.get(record.id);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(record.id);
    const completion = this.complete(record, record.options, record.failure).finally(() => this.pending.delete(completion));
    this.pending.add(completion);
  }

  /** Completes every operation that is due at the (shifted) sandbox time `now`. */
  clockAdvanced(now: Date): void {
    for (const record of this.operations.values()) {
      if (record.status === 'InProgress' && !record.completing && record.dueAt.getTime() <= now.getTime()) this.begin(record);
    }
  }

  /** Resolves once every operation whose completion has begun has finished (tests, clock shifts). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async complete(record: OperationRecord, options: StartOperationOptions, failure: FaultSpec | undefined): Promise<void> {
    if (this.stopped) return;
    if (failure !== undefined) {
      const status = failure.status ?? 500;
      record.failureStatus = status;
      record.error = {
        code: failure.errorCode ?? defaultErrorCode(status),
        message: failure.message ?? `The operation ${record.operationId} on ${record.resourceId} failed (injected fault).`,
      };
      record.status = 'Failed';
    } else {
      try {
        await options.run();
        record.status = 'Succeeded';
      } catch (error) {
        record.status = 'Failed';
        record.error = {
          code: 'OperationFailed',
          message: `The operation ${record.operationId} on ${record.resourceId} failed: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
    }
    // A failed operation must not leave its resource in the transitional state onStart set.
    if (record.status === 'Failed') options.onFailed?.();
    record.endTime = this.now();
    this.onEvent('operation.completed', {
      id: record.id,
      operationId: record.operationId,
      resourceId: record.resourceId,
      status: record.status,
      ...(record.error === undefined ? {} : { error: record.error }),
    });
  }

  private statusUrl(record: OperationRecord, kind: 'operationStatuses' | 'operationResults'): string {
    const { scope } = record;
    return `${scope.baseUrl}${this.statusPath(record, kind)}?api-version=${encodeURIComponent(scope.apiVersion)}`;
  }

  private statusPath(record: OperationRecord, kind: 'operationStatuses' | 'operationResults'): string {
    const { scope } = record;
    return `/subscriptions/${scope.subscriptionId}/providers/${scope.namespace}/locations/${scope.location}/${kind}/${record.id}`;
  }

  /** `GET .../operationStatuses/{id}`: the ARM async-operation status body. */
  statusResponse(id: string): SandboxResponse | undefined {
    const record = this.operations.get(id);
    if (record === undefined) return undefined;
    const body = {
      id: this.statusPath(record, 'operationStatuses'),
      name: record.id,
      status: record.status,
      startTime: record.startTime.toISOString(),
      ...(record.endTime === undefined ? {} : { endTime: record.endTime.toISOString() }),
      ...(record.error === undefined ? {} : { error: record.error }),
    };
    return {
      status: 200,
      headers: record.status === 'InProgress' ? { 'Retry-After': String(this.retryAfterSeconds) } : {},
      body,
    };
  }

  /** `GET .../operationResults/{id}`: 202 while running, then the result (200/204) or the error. */
  resultResponse(id: string): SandboxResponse | undefined {
    const record = this.operations.get(id);
    if (record === undefined) return undefined;
    switch (record.status) {
      case 'InProgress':
        return {
          status: 202,
          headers: { Location: this.statusUrl(record, 'operationResults'), 'Retry-After': String(this.retryAfterSeconds) },
        };
      case 'Failed':
        return { status: record.failureStatus, body: { error: record.error } };
      case 'Succeeded': {
        const result = record.result?.();
        // null: 200 with no body, as App Service's operation results answer (its SDK refuses a 204).
        if (result === null) return { status: 200 };
        return result === undefined ? { status: 204 } : { status: 200, body: result };
      }
    }
  }

  snapshot(): OperationSnapshot[] {
    return [...this.operations.values()].map((record) => ({
      id: record.id,
      operationId: record.operationId,
      resourceId: record.resourceId,
      status: record.status,
      startTime: record.startTime.toISOString(),
      dueAt: record.dueAt.toISOString(),
      ...(record.endTime === undefined ? {} : { endTime: record.endTime.toISOString() }),
      ...(record.error === undefined ? {} : { error: record.error }),
    }));
  }

  /** Cancels operations that have not completed and waits for running mutations to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.pending]);
  }
}
