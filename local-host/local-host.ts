import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Clock } from './clock.ts';
import { RealClock, VirtualClock } from './clock.ts';
import type { OrchestratorRunResult } from './durable/task-hub.ts';
import { InMemoryTaskHub } from './durable/task-hub.ts';
import type { WireOrchestratorState } from './durable/history-events.ts';
import type { FunctionInfo, FunctionRegistry } from './function-registry.ts';
import { buildRegistry } from './function-registry.ts';
import type { CapturedApp } from './functions-core-shim.ts';
import { loadApp } from './functions-core-shim.ts';
import type { CoreParameterBinding, CoreTypedData } from './functions-core-types.ts';
import { FunctionNotFoundError } from './host-errors.ts';
import type { HostKeys } from './http-server.ts';
import { createHostRequestHandler } from './http-server.ts';
import type { InvocationLogEntry, InvocationObserver } from './invocation.ts';
import { decodeTypedData, invokeCaptured } from './invocation.ts';
import type { TimerPayload, TimerStatus } from './timer-scheduler.ts';
import { TimerScheduler } from './timer-scheduler.ts';

/** Options of {@link startLocalHost}. */
export interface LocalHostOptions {
  /** The app entry point that registers every function (e.g. `src/functions/index.ts`). */
  readonly entryPoint: string;
  /** App settings (`local.settings.json` `Values`); exposed as environment variables while the host runs. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Port on 127.0.0.1; 7071 like `func start` by default, 0 for any free port. */
  readonly port?: number;
  /** Real time by default; tests pass a {@link VirtualClock}. */
  readonly clock?: Clock;
  /** Keys; by default read from settings `LOCAL_HOST_MASTER_KEY` / `LOCAL_HOST_FUNCTION_KEY`, else random per start. */
  readonly keys?: Partial<HostKeys>;
  /** `extensions.http.routePrefix` of host.json; `api` by default. */
  readonly routePrefix?: string;
  readonly taskHubName?: string;
  /** `extensions.durableTask.overridableExistingInstanceStates`; `NonRunningStates` by default. */
  readonly overridableExistingInstanceStates?: 'NonRunningStates' | 'AnyState';
  /** Receives host log lines (invocations, function logs); silent by default. */
  readonly logger?: (line: string) => void;
  /** Start timer schedules (true by default). */
  readonly enableTimers?: boolean;
}

/** One finished invocation, as recorded by the host. */
export interface InvocationRecord {
  readonly functionName: string;
  readonly invocationId: string;
  readonly triggerType: string;
  readonly outcome: 'succeeded' | 'failed';
  readonly error?: string;
}

/** A running local host. */
export interface LocalHost {
  readonly baseUrl: string;
  readonly port: number;
  readonly keys: HostKeys;
  /** The function inventory: names, triggers, routes, methods, auth levels, schedules, bindings. */
  readonly functions: readonly FunctionInfo[];
  /** The in-memory Durable task hub. */
  readonly durable: InMemoryTaskHub;
  readonly clock: Clock;
  /** Every finished invocation, oldest first. */
  readonly invocations: readonly InvocationRecord[];
  /** Every log line functions wrote through their context. */
  readonly logs: readonly InvocationLogEntry[];
  /** Timer schedule status (last/next occurrence) per timer function. */
  timers(): readonly TimerStatus[];
  /**
   * Invokes a non-HTTP function directly and returns its result: a timer (host-shaped payload),
   * an Event Grid trigger (`input` is the event), an activity (`input` is its input), or any other
   * trigger (`input` is the trigger value).
   */
  invoke(name: string, input?: unknown): Promise<unknown>;
  /** Waits until no invocation, episode or activity is running (armed timers excepted). */
  idle(): Promise<void>;
  /** Stops timers, the task hub and the HTTP server; restores the environment. */
  stop(): Promise<void>;
}

const OUT_OF_PROC_MARKER = '\n\n$OutOfProcData$:';

function decodeReturn(data: CoreTypedData | null | undefined): unknown {
  // A string return value stays a string (the extension does not JSON-parse plain strings).
  if (data && typeof data.string === 'string') return data.string;
  return decodeTypedData(data);
}

/**
 * Starts the local Functions host: loads the entry point through the `@azure/functions-core`
 * shim, builds the inventory, serves HTTP triggers, Event Grid and Durable webhooks on 127.0.0.1,
 * schedules timers and runs the in-memory Durable task hub.
 */
export async function startLocalHost(options: LocalHostOptions): Promise<LocalHost> {
  const settings = { ...(options.settings ?? {}) };
  const clock = options.clock ?? new RealClock();
  const logger = options.logger ?? (() => undefined);
  const keys: HostKeys = {
    master: options.keys?.master ?? settings.LOCAL_HOST_MASTER_KEY ?? randomBytes(24).toString('base64url'),
    function: options.keys?.function ?? settings.LOCAL_HOST_FUNCTION_KEY ?? randomBytes(24).toString('base64url'),
  };
  const invocations: InvocationRecord[] = [];
  const logs: InvocationLogEntry[] = [];
  const pending = new Set<Promise<unknown>>();
  const appHookData: Record<string, unknown> = {};

  const handlerRef: { ready?: ReturnType<typeof createHostRequestHandler> } = {};
  const server = createServer((req, res) => {
    if (handlerRef.ready) {
      handlerRef.ready(req, res);
    } else {
      res.writeHead(503);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7071, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;

  // App settings become environment variables, as on the host; WEBSITE_HOSTNAME also keeps
  // durable-functions from rewriting client URLs to localhost:7071.
  const envOverrides: Record<string, string> = { WEBSITE_HOSTNAME: `127.0.0.1:${port}`, ...settings };
  const savedEnv = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(envOverrides)) {
    savedEnv.set(name, process.env[name]);
    process.env[name] = value;
  }
  const restoreEnv = (): void => {
    for (const [name, value] of savedEnv) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  };

  let app: CapturedApp;
  let registry: FunctionRegistry;
  try {
    app = await loadApp(options.entryPoint);
    registry = buildRegistry(app.functions, settings);
  } catch (error) {
    restoreEnv();
    await new Promise<void>((resolve) => server.close(() => { resolve(); }));
    throw error;
  }

  const observer: InvocationObserver = {
    log(entry) {
      logs.push(entry);
      if (entry.category === 'user') logger(`[${clock.now().toISOString()}] ${entry.functionName}: ${entry.message}`);
    },
    started(functionName, invocationId, triggerType) {
      logger(`[${clock.now().toISOString()}] Executing 'Functions.${functionName}' (Reason='${triggerType}', Id=${invocationId})`);
    },
    finished(functionName, invocationId, outcome, durationMs, error) {
      const triggerType = registry.get(functionName)?.info.triggerType ?? 'unknown';
      invocations.push({ functionName, invocationId, triggerType, outcome, error: error === undefined ? undefined : error instanceof Error ? error.message : JSON.stringify(error) });
      logger(`[${clock.now().toISOString()}] Executed 'Functions.${functionName}' (${outcome === 'succeeded' ? 'Succeeded' : 'Failed'}, Id=${invocationId}, Duration=${Math.round(durationMs)}ms)`);
    },
  };

  const hubRef: { hub?: InMemoryTaskHub } = {};
  const clientPayload = (): string => {
    const hubName = hubRef.hub?.taskHubName ?? 'LocalTaskHub';
    const webhooks = `${baseUrl}/runtime/webhooks/durabletask`;
    const q = `taskHub=${encodeURIComponent(hubName)}&connection=Storage&code=${encodeURIComponent(keys.master)}`;
    return JSON.stringify({
      taskHubName: hubName,
      creationUrls: {
        createNewInstancePostUri: `${webhooks}/orchestrators/{functionName}[/{instanceId}]?${q}`,
        createAndWaitOnNewInstancePostUri: `${webhooks}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&${q}`,
      },
      managementUrls: {
        id: 'INSTANCEID',
        statusQueryGetUri: `${webhooks}/instances/INSTANCEID?${q}`,
        sendEventPostUri: `${webhooks}/instances/INSTANCEID/raiseEvent/{eventName}?${q}`,
        terminatePostUri: `${webhooks}/instances/INSTANCEID/terminate?reason={text}&${q}`,
        rewindPostUri: `${webhooks}/instances/INSTANCEID/rewind?reason={text}&${q}`,
        purgeHistoryDeleteUri: `${webhooks}/instances/INSTANCEID?${q}`,
        restartPostUri: `${webhooks}/instances/INSTANCEID/restart?${q}`,
        suspendPostUri: `${webhooks}/instances/INSTANCEID/suspend?reason={text}&${q}`,
        resumePostUri: `${webhooks}/instances/INSTANCEID/resume?reason={text}&${q}`,
      },
      baseUrl: webhooks,
      requiredQueryStringParameters: `code=${encodeURIComponent(keys.master)}`,
      rpcBaseUrl: `${webhooks}/`,
      httpBaseUrl: webhooks,
    });
  };

  const run = async (info: FunctionInfo, trigger: CoreTypedData | undefined) => {
    const entry = registry.get(info.name);
    if (!entry) throw new FunctionNotFoundError(`function '${info.name}' is not registered`, { function: info.name });
    const inputData: CoreParameterBinding[] = [{ name: info.triggerBindingName, data: trigger }];
    if (info.durable.clientBindingName) inputData.push({ name: info.durable.clientBindingName, data: { string: clientPayload() } });
    return invokeCaptured(app, entry.captured, { inputData }, observer, appHookData);
  };

  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    void work.then(() => pending.delete(work), () => pending.delete(work));
    return work;
  };

  const hub = new InMemoryTaskHub({
    taskHubName: options.taskHubName,
    clock,
    overridableExistingInstanceStates: options.overridableExistingInstanceStates,
    reportError: (message) => {
      logger(message);
      process.stderr.write(`${message}\n`);
    },
    reportWarning: (message) => {
      logger(message);
      process.stderr.write(`${message}\n`);
    },
    runner: {
      kindOf(name) {
        const entry = registry.get(name);
        return entry ? (entry.info.durable.kind ?? 'other') : undefined;
      },
      async runOrchestrator(name, payload): Promise<OrchestratorRunResult> {
        const info = registry.get(name)?.info;
        if (!info) return { ok: false, message: `orchestrator function '${name}' is not registered` };
        try {
          const response = await run(info, { string: JSON.stringify(payload) });
          return { ok: true, state: decodeTypedData(response.returnValue) as WireOrchestratorState };
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          const at = message.indexOf(OUT_OF_PROC_MARKER);
          if (at < 0) return { ok: false, message };
          return {
            ok: false,
            message: message.slice(0, at),
            state: JSON.parse(message.slice(at + OUT_OF_PROC_MARKER.length)) as WireOrchestratorState,
          };
        }
      },
      async runActivity(name, input) {
        const info = registry.get(name)?.info;
        if (!info) throw new FunctionNotFoundError(`activity function '${name}' is not registered`, { function: name });
        const response = await run(info, input === undefined ? undefined : { json: JSON.stringify(input) });
        return decodeReturn(response.returnValue);
      },
    },
  });
  hubRef.hub = hub;

  const scheduler = new TimerScheduler(clock, async (functionName: string, payload: TimerPayload) => {
    const info = registry.get(functionName)?.info;
    if (!info) return;
    try {
      await track(run(info, { json: JSON.stringify(payload) }));
    } catch {
      // Already recorded and logged by the observer; a failing timer keeps its schedule, as on the host.
    }
  });

  const invoke = async (name: string, input?: unknown): Promise<unknown> => {
    const info = registry.get(name)?.info;
    if (!info) throw new FunctionNotFoundError(`function '${name}' is not registered; registered: ${registry.functions.map((f) => f.name).join(', ')}`, { function: name });
    if (info.http) throw new FunctionNotFoundError(`function '${name}' is HTTP-triggered; call it at ${baseUrl}/${options.routePrefix ?? 'api'}/${info.http.route}`, { function: name });
    if (info.durable.kind === 'orchestration') throw new FunctionNotFoundError(`function '${name}' is an orchestrator; start it with host.durable.startNew`, { function: name });
    let trigger: CoreTypedData | undefined;
    if (info.timer) trigger = { json: JSON.stringify(input ?? scheduler.payloadFor(info.name)) };
    else if (typeof input === 'string') trigger = { string: input };
    else if (input !== undefined) trigger = { json: JSON.stringify(input) };
    const response = await track(run(info, trigger));
    return decodeReturn(response.returnValue);
  };

  const pendingCount = (): number => pending.size;
  const idle = async (): Promise<void> => {
    for (;;) {
      await hub.whenIdle();
      if (pendingCount() === 0) {
        // Activities may have started new host invocations meanwhile.
        await hub.whenIdle();
        if (pendingCount() === 0) return;
      }
      await Promise.allSettled([...pending]);
    }
  };
  if (clock instanceof VirtualClock) clock.settle = idle;

  handlerRef.ready = createHostRequestHandler({
    routePrefix: options.routePrefix ?? 'api',
    keys,
    functions: registry.functions,
    hub,
    baseUrl: () => baseUrl,
    invokeHttp: async (info, request) => track(run(info, { http: request })),
    invokeAdmin: (info, input) => {
      const payload: CoreTypedData | undefined = info.timer
        ? { json: JSON.stringify(scheduler.payloadFor(info.name)) }
        : input === undefined ? undefined : { string: input };
      void track(run(info, payload)).catch(() => undefined);
    },
    invokeEventGrid: async (info, event) => {
      await track(run(info, { json: JSON.stringify(event) }));
    },
    log: logger,
  });

  for (const hook of app.hooks.filter((h) => h.hookName === 'appStart' && !h.disposed)) {
    await hook.callback({ hookData: {}, appHookData, functionAppDirectory: path.dirname(app.entryPoint) });
  }
  if (options.enableTimers !== false) {
    for (const info of registry.functions) {
      const schedule = registry.schedules().get(info.name);
      if (info.timer && schedule) scheduler.add(info.name, schedule, info.timer.runOnStartup, info.timer.useMonitor);
    }
  }

  let stopped = false;
  return {
    baseUrl,
    port,
    keys,
    functions: registry.functions,
    durable: hub,
    clock,
    invocations,
    logs,
    timers: () => scheduler.statuses(),
    invoke,
    idle,
    async stop() {
      if (stopped) return;
      stopped = true;
      scheduler.stop();
      hub.stop();
      for (const hook of app.hooks.filter((h) => h.hookName === 'appTerminate' && !h.disposed)) {
        await hook.callback({ hookData: {}, appHookData });
      }
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => { if (err) reject(err); else resolve(); }));
      restoreEnv();
    },
  };
}
