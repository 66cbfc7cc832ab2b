import { randomUUID } from 'node:crypto';
import type { CapturedApp, CapturedFunction } from './functions-core-shim.ts';
import { currentProgrammingModel } from './functions-core-shim.ts';
import { FunctionInvocationError } from './host-errors.ts';
import type {
  CoreInvocationContext,
  CoreInvocationResponse,
  CoreLogLevel,
  CoreParameterBinding,
  CoreTypedData,
} from './functions-core-types.ts';

/** One log line written by a function (through `context.log`) or by the library about it. */
export interface InvocationLogEntry {
  readonly functionName: string;
  readonly invocationId: string;
  readonly level: CoreLogLevel;
  readonly category: string;
  readonly message: string;
}

/** Receives every invocation log line and the start/end of each invocation. */
export interface InvocationObserver {
  log(entry: InvocationLogEntry): void;
  started?(functionName: string, invocationId: string, triggerType: string): void;
  finished?(functionName: string, invocationId: string, outcome: 'succeeded' | 'failed', durationMs: number, error?: unknown): void;
}

/** What the host hands the worker for one invocation: input bindings by name plus trigger metadata. */
export interface InvocationRequest {
  readonly inputData: CoreParameterBinding[];
  readonly triggerMetadata?: Record<string, CoreTypedData>;
}

/**
 * Runs one invocation the way the Node worker does: pre-invocation hooks, the library's
 * `InvocationModel` (which builds `InvocationContext`, `HttpRequest`, timer objects... from the
 * RPC-shaped request), post-invocation hooks, then the library's RPC-shaped response.
 * Throws whatever the handler threw (after the post-invocation hooks saw it).
 */
export async function invokeCaptured(
  app: CapturedApp,
  fn: CapturedFunction,
  request: InvocationRequest,
  observer: InvocationObserver,
  appHookData: Record<string, unknown>,
): Promise<CoreInvocationResponse> {
  const invocationId = randomUUID();
  const functionName = fn.metadata.name;
  const coreContext: CoreInvocationContext = {
    invocationId,
    request: { invocationId, functionId: functionName, inputData: request.inputData, triggerMetadata: request.triggerMetadata ?? {} },
    metadata: { name: functionName, bindings: fn.metadata.bindings },
    state: 'preInvocationHooks',
    log: (level, category, message) => {
      observer.log({ functionName, invocationId, level, category, message });
    },
  };
  const triggerType = Object.values(fn.metadata.bindings).find((b) => /trigger$/i.test(b.type ?? ''))?.type ?? 'unknown';
  observer.started?.(functionName, invocationId, triggerType);
  const startedAt = performance.now();
  const model = currentProgrammingModel().getInvocationModel(coreContext);
  const { context, inputs } = await model.getArguments();
  const hookData: Record<string, unknown> = {};
  const preContext: Record<string, unknown> = { hookData, appHookData, invocationContext: context, inputs, functionCallback: fn.callback };
  for (const hook of app.hooks.filter((h) => h.hookName === 'preInvocation' && !h.disposed)) {
    await hook.callback(preContext);
  }
  coreContext.state = 'invocation';
  let result: unknown;
  let error: unknown;
  let failed = false;
  try {
    const callback = preContext.functionCallback;
    const finalInputs = preContext.inputs;
    result = await model.invokeFunction(
      context,
      Array.isArray(finalInputs) ? finalInputs : inputs,
      typeof callback === 'function' ? (callback as typeof fn.callback) : fn.callback,
    );
  } catch (err) {
    failed = true;
    error = err;
  }
  coreContext.state = 'postInvocationHooks';
  const postContext: Record<string, unknown> = { hookData, appHookData, invocationContext: context, inputs, result, error };
  for (const hook of app.hooks.filter((h) => h.hookName === 'postInvocation' && !h.disposed)) {
    await hook.callback(postContext);
  }
  const durationMs = performance.now() - startedAt;
  if (failed || postContext.error !== error) {
    const finalError = postContext.error ?? error;
    if (finalError !== undefined && finalError !== null) {
      observer.finished?.(functionName, invocationId, 'failed', durationMs, finalError);
      throw finalError instanceof Error
        ? finalError
        : new FunctionInvocationError(`function "${functionName}" threw a non-Error value: ${JSON.stringify(finalError)}`, { function: functionName });
    }
  }
  const response = await model.getResponse(context, postContext.result);
  observer.finished?.(functionName, invocationId, 'succeeded', durationMs);
  return response;
}

/** Decodes RPC typed data the way the library does for inputs (strings that hold JSON become values). */
export function decodeTypedData(data: CoreTypedData | null | undefined): unknown {
  if (!data) return undefined;
  if (typeof data.string === 'string') {
    try {
      return JSON.parse(data.string) as unknown;
    } catch {
      return data.string;
    }
  }
  if (typeof data.json === 'string') return JSON.parse(data.json) as unknown;
  if (data.bytes) return Buffer.from(data.bytes);
  if (data.stream) return Buffer.from(data.stream);
  if (typeof data.int === 'number') return data.int;
  if (typeof data.double === 'number') return data.double;
  return undefined;
}
