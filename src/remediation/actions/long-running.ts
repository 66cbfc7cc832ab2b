/**
 * Awaiting a long-running operation (`begin…` of the classic SDK clients, the modular clients'
 * `PollerLike`) through its own SDK poller, with a bound on the whole wait.
 *
 * Each poll already passes the request budget (one attempt at most 60 s, a server delay at most
 * 60 s: docs/waits.md); this adds the total: {@link ActionContext.operationDeadlineMs} (8 minutes
 * by default, inside the host's 10-minute function timeout) and the caller's signal. When the
 * deadline passes the wait stops with {@link OperationDeadlineError}, which says that the
 * operation may still run in Azure, so the caller re-plans instead of assuming either outcome.
 */
import { callAzure, type AzureCallContext } from '../../azure/errors.ts';
import { OpsAutopilotError } from '../../errors.ts';
import { DEFAULT_OPERATION_DEADLINE_MS, type ActionContext } from './types.ts';

/** What both poller flavours offer. */
export interface Pollable<T> {
  pollUntilDone(options?: { abortSignal?: AbortSignal }): Promise<T>;
}

/** Options handed to the `begin…` call. */
export interface OperationOptions {
  readonly abortSignal: AbortSignal;
  readonly updateIntervalInMs: number;
}

/** A long-running operation did not finish within its bound. It may still be running in Azure. */
export class OperationDeadlineError extends OpsAutopilotError {
  override readonly name: string = 'OperationDeadlineError';
  readonly resourceId: string;

  constructor(ctx: AzureCallContext, deadlineMs: number) {
    super(`${ctx.operation} on ${ctx.resourceId}: expected the long-running operation to finish within ${Math.round(deadlineMs / 1000)} s, found it still running; it may still complete in Azure, so read the resource again before acting`, {
      context: { resourceId: ctx.resourceId, operation: ctx.operation, deadlineMs },
    });
    this.resourceId = ctx.resourceId;
  }
}

/**
 * Starts an operation with `begin(options)` and waits for it through its poller, at most the
 * context's deadline.
 *
 * @throws typed Azure errors for a refused or failed operation; {@link OperationDeadlineError}.
 */
export async function awaitOperation<T>(ctx: ActionContext, call: AzureCallContext, begin: (options: OperationOptions) => Pollable<T> | Promise<Pollable<T>>): Promise<T> {
  const deadlineMs = ctx.operationDeadlineMs ?? DEFAULT_OPERATION_DEADLINE_MS;
  const deadline = AbortSignal.timeout(deadlineMs);
  const signal = ctx.signal === undefined ? deadline : AbortSignal.any([ctx.signal, deadline]);
  const options: OperationOptions = { abortSignal: signal, updateIntervalInMs: ctx.pollIntervalMs ?? 5000 };
  try {
    return await callAzure(call, async () => {
      // A modular client's PollerLike is itself thenable: awaiting it would wait without our
      // signal. Keep the poller; await only a classic client's Promise of a poller.
      const started = begin(options);
      const poller = 'pollUntilDone' in started ? started : await started;
      return poller.pollUntilDone({ abortSignal: signal });
    });
  } catch (error) {
    if (deadline.aborted && !(ctx.signal?.aborted ?? false)) throw new OperationDeadlineError(call, deadlineMs);
    throw error;
  }
}
