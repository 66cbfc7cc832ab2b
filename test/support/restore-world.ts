/**
 * The restore world on the local host, shared by the restore and restore-drill orchestration
 * tests: one sandbox with `test/fixtures/worlds/restore.yaml`, a local host on a virtual clock
 * with the given entry point, and the helpers both files drive their instances with.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { VirtualClock } from '../../local-host/clock.ts';
import { startAppDriver, type AppDriver, type DriveOptions } from '../../local-host/app-driver.ts';
import type { LocalHost } from '../../local-host/local-host.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';
import { sandboxRequest, useSandbox, worldConfigFile } from './sandbox.ts';

export const RESTORE_SUB = '6a6b6c6d-0000-4000-8000-000000000010';
export const RESTORE_RG = `/subscriptions/${RESTORE_SUB}/resourceGroups/rg-restore-prod`;
export const RESTORE_SOURCE_ID = `${RESTORE_RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-restore-prod`;
/** The source's admin password in the world: planted as a canary that must never leave Key Vault. */
export const RESTORE_CANARY = 'Sbx-Restore-Canary-7f3a9c1e';

/** A PostgreSQL flexible server as the sandbox's state shows it. */
export interface SandboxServer {
  id: string;
  state: string;
  tags?: Record<string, string>;
  sandboxDatabase?: { host: string; port: number; database: string; role: string };
}

export type { DriveOptions };

/** The restore world and what the tests do with it. */
export interface RestoreWorld {
  readonly sandbox: () => SandboxHandle;
  readonly host: () => LocalHost;
  readonly clock: () => VirtualClock;
  /** The PostgreSQL servers of the sandbox. */
  readonly serverStates: () => Promise<SandboxServer[]>;
  /** Their names, sorted. */
  readonly servers: () => Promise<string[]>;
  readonly sandboxNow: () => Promise<Date>;
  /** Moves both clocks. */
  readonly advance: (ms: number) => Promise<void>;
  /** Lets the host's virtual clock catch up with the sandbox's, so commits and the orchestration's clock agree. */
  readonly sync: () => Promise<void>;
  /** Drives an instance on both clocks until `until` holds for its phase or it ends. */
  readonly drive: (id: string, until?: (phase: string | undefined) => boolean, options?: DriveOptions) => Promise<void>;
  /** The output of a completed instance (fails the test when it did not complete). */
  readonly output: (id: string) => unknown;
  /** A request to the app's HTTP API with its function key. */
  readonly api: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;
}

/** Starts the restore world around a test file: the host before its tests, faults and crash plans cleared before each. */
export function useRestoreWorld(options: { entryPoint: string; setupTimeoutMs: number; syncBeforeEach?: boolean }): RestoreWorld {
  const sandbox = useSandbox({ worlds: ['test/fixtures/worlds/restore.yaml'], lroDurationMs: 1000 });
  let driver: AppDriver | undefined;
  let host: LocalHost | undefined;
  let clock: VirtualClock | undefined;
  const hostOf = (): LocalHost => {
    if (host === undefined) throw new Error('the local host is not started (use it inside a test)');
    return host;
  };
  const driverOf = (): AppDriver => {
    if (driver === undefined) throw new Error('the local host is not started (use it inside a test)');
    return driver;
  };
  const clockOf = (): VirtualClock => {
    if (clock === undefined) throw new Error('the virtual clock is not started (use it inside a test)');
    return clock;
  };

  const world: RestoreWorld = {
    sandbox,
    host: hostOf,
    clock: clockOf,
    async serverStates() {
      const state = (await sandboxRequest(sandbox(), { url: '/_sandbox/state' })).json<{ providers: Record<string, SandboxServer[]> }>();
      return state.providers['Microsoft.DBforPostgreSQL'] ?? [];
    },
    async servers() {
      return (await world.serverStates()).map((server) => server.id.split('/').pop() ?? '').sort();
    },
    async sandboxNow() {
      return sandbox().now();
    },
    advance: (ms) => driverOf().advance(ms),
    sync: () => driverOf().sync(),
    drive: (id, until, options) => driverOf().drive(id, until, options),
    output(id) {
      const status = hostOf().durable.getStatus(id);
      expect(status?.runtimeStatus, JSON.stringify(status?.output)).toBe('Completed');
      return status?.output;
    },
    api: (method, path, body) => driverOf().api(method, path, body),
  };

  beforeAll(async () => {
    driver = await startAppDriver({ sandbox: sandbox(), entryPoint: options.entryPoint, configFile: worldConfigFile(sandbox(), 'restore') });
    host = driver.host;
    clock = driver.clock;
    // History the restores can go back to: a backup exists from days ago, so any point in the last hours is valid.
    await world.advance(20 * 60_000);
  }, options.setupTimeoutMs);
  afterAll(async () => {
    await driver?.stop();
  });
  beforeEach(async () => {
    hostOf().durable.setCrashPlan(undefined);
    await sandbox().clearFaults();
    if (options.syncBeforeEach === true) await world.sync();
  });
  return world;
}
