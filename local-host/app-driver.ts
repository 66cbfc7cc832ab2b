/**
 * The app on the local host against a running sandbox, on a virtual clock kept in step with the
 * sandbox's: what `npm run demo` and the orchestration tests use to start work through the app's
 * HTTP API (with its function key, as an operator or an action group would) and to move time
 * forward until a durable instance gets somewhere, without waiting hours of real time for a
 * restore, a drill or a rotation.
 *
 * Development tooling, like the rest of `local-host/`: the app never imports it.
 */
import type { SandboxHandle } from '../sandbox/index.ts';
import { VirtualClock } from './clock.ts';
import { startLocalHost, type LocalHost } from './local-host.ts';

/** How {@link AppDriver.drive} steps an instance. */
export interface DriveOptions {
  /** Virtual time per step (default 30 s). */
  readonly stepMs?: number;
  /** Steps before giving up (default 200). */
  readonly maxSteps?: number;
  /** Also stop when a sub-orchestration (`<id>:<n>`) reports a matching phase. */
  readonly children?: boolean;
  /** Catch the host's clock up with the sandbox's (which also runs in real time) after each step. */
  readonly sync?: boolean;
}

/** An HTTP answer of the app: status and parsed JSON body (`{}` when empty). */
export interface AppResponse {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

/** The app on the local host, and what a driver does with it. */
export interface AppDriver {
  readonly host: LocalHost;
  readonly clock: VirtualClock;
  /** A request to the app's HTTP API (`/api/<path>`) with its function key. */
  api(method: string, path: string, body?: unknown): Promise<AppResponse>;
  /** Moves both clocks by `ms`. */
  advance(ms: number): Promise<void>;
  /** Lets the host's virtual clock catch up with the sandbox's, so the sandbox's commits and the orchestration's clock agree. */
  sync(): Promise<void>;
  /**
   * Drives an instance on both clocks until `until` holds for the `phase` of its custom status
   * (or a child's, with `children`) or it is no longer running. Throws after `maxSteps`: every
   * drive is bounded.
   */
  drive(id: string, until?: (phase: string | undefined) => boolean, options?: DriveOptions): Promise<void>;
  /** Stops the host (not the sandbox). Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startAppDriver}. */
export interface AppDriverOptions {
  readonly sandbox: SandboxHandle;
  /** The app's entry point; the product's own by default. */
  readonly entryPoint?: string;
  /** The estate config the app runs with (`OPS_AUTOPILOT_CONFIG_FILE`). */
  readonly configFile: string;
  /** More app settings. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Receives host log lines; silent by default. */
  readonly logger?: (line: string) => void;
}

const RUNNING = new Set(['Running', 'Pending', 'ContinuedAsNew']);

/** Starts the app on the local host (timers off: the driver decides when anything runs) on a virtual clock set to the sandbox's now. */
export async function startAppDriver(options: AppDriverOptions): Promise<AppDriver> {
  const { sandbox } = options;
  const clock = new VirtualClock(await sandbox.now());
  const host = await startLocalHost({
    entryPoint: options.entryPoint ?? 'src/functions/index.ts',
    port: 0,
    clock,
    enableTimers: false,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    settings: { ...options.settings, OPS_AUTOPILOT_CONFIG_FILE: options.configFile },
  });
  let stopping: Promise<void> | undefined;
  const driver: AppDriver = {
    host,
    clock,
    async api(method, path, body) {
      const response = await fetch(`${host.baseUrl}/api/${path}`, {
        method,
        headers: { 'x-functions-key': host.keys.function, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    },
    async advance(ms) {
      await sandbox.advanceClock(ms);
      await clock.advance(ms);
    },
    async sync() {
      const ahead = (await sandbox.now()).getTime() - clock.now().getTime();
      if (ahead > 0) await clock.advance(ahead);
    },
    async drive(id, until = () => false, { stepMs = 30_000, maxSteps = 200, children = false, sync = false } = {}) {
      for (let step = 0; step < maxSteps; step += 1) {
        await host.idle();
        const status = host.durable.getStatus(id);
        if (status !== undefined && !RUNNING.has(status.runtimeStatus)) return;
        const childStatuses = children
          ? host.durable.listInstances(['Running']).filter((instance) => instance.instanceId.startsWith(`${id}:`)).map((instance) => instance.customStatus)
          : [];
        if ([status?.customStatus, ...childStatuses].some((custom) => until((custom as { phase?: string } | null | undefined)?.phase))) return;
        await driver.advance(stepMs);
        if (sync) await driver.sync();
      }
      throw new Error(`${id} still running after ${maxSteps} steps of ${stepMs} ms: ${JSON.stringify(host.durable.getStatus(id)?.customStatus)}`);
    },
    stop: () => (stopping ??= host.stop()),
  };
  return driver;
}
