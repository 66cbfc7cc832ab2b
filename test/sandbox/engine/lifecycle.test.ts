/**
 * The sandbox's child processes dying underneath it: PostgreSQL or Azurite killed externally
 * shows as `down` in /_sandbox/state, requests that need PostgreSQL fail with a clear error,
 * and stop() still finishes (no wait for an exit that already happened) and leaves nothing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SandboxProvider } from '../../../sandbox/contract.ts';
import { startSandbox, type SandboxHandle } from '../../../sandbox/index.ts';
import { sandboxRequest } from '../../support/sandbox.ts';

/** One route that runs a query on the embedded PostgreSQL, as a provider handler would. */
const pgProbe: SandboxProvider = {
  name: 'Test.PgProbe',
  types: [],
  seed: () => undefined,
  routes: () => [
    {
      host: 'apphost',
      method: 'GET',
      pattern: '/pg',
      throttle: 'none',
      requiresAuth: false,
      operationId: 'Test.PgProbe.query',
      handler: async (_request, context) => {
        const postgres = context.postgres;
        if (postgres === undefined) return { status: 501, body: { error: 'no postgres' } };
        return { status: 200, body: await postgres.query('postgres', 'SELECT 1 AS one') };
      },
    },
  ],
  snapshot: () => ({}),
};

/** Rejects when `promise` has not settled within `ms`: a hang detector, not a measurement. */
async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`expected ${what} to finish within ${String(ms)} ms, found it still pending`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function processesMentioning(text: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(text));
}

interface ServiceState {
  status: string;
  pid: number;
  signal?: string | null;
}

async function services(sandbox: SandboxHandle): Promise<Record<string, ServiceState | undefined>> {
  const state = (await sandboxRequest(sandbox, { url: '/_sandbox/state' })).json<{ services?: Record<string, ServiceState> }>();
  return state.services ?? {};
}

async function waitForStatus(sandbox: SandboxHandle, service: string, status: string): Promise<ServiceState> {
  for (;;) {
    const current = (await services(sandbox))[service];
    if (current?.status === status) return current;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a child process killed externally', () => {
  it('PostgreSQL: shows down, fails requests that need it with a clear error, and stop() still finishes cleanly', async () => {
    const sandbox = await startSandbox({ worlds: [], providers: [pgProbe], azurite: false });
    const dataDir = path.dirname(sandbox.caFile);
    try {
      expect((await sandboxRequest(sandbox, { url: '/_hosts/probe/pg' })).json()).toEqual([{ one: 1 }]);
      const up = (await services(sandbox)).postgres;
      expect(up).toMatchObject({ status: 'up', pid: expect.any(Number) as number });
      process.kill(up?.pid ?? 0, 'SIGKILL');

      const down = await settlesWithin(waitForStatus(sandbox, 'postgres', 'down'), 10_000, 'the sandbox to notice PostgreSQL died');
      expect(down.signal).toBe('SIGKILL');
      const failed = await sandboxRequest(sandbox, { url: '/_hosts/probe/pg' });
      expect(failed.status).toBe(500);
      expect(failed.text).toContain('expected the server');
      expect(failed.text).toContain('found it exited');
      const state = (await sandboxRequest(sandbox, { url: '/_sandbox/state' })).json<{ events: { kind: string; details: { service?: string } }[] }>();
      expect(state.events.filter((event) => event.kind === 'service.exited').map((event) => event.details.service)).toEqual(['postgres']);
    } finally {
      await settlesWithin(sandbox.stop(), 15_000, 'stop() after PostgreSQL died');
    }
    // Nothing is left: no postgres, no watchdog, no data directory.
    expect(processesMentioning(dataDir)).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('Azurite: shows down, and stop() still finishes cleanly', async () => {
    const sandbox = await startSandbox({ worlds: [], providers: [], postgres: false });
    const dataDir = path.dirname(sandbox.caFile);
    try {
      const up = (await services(sandbox)).azurite;
      expect(up).toMatchObject({ status: 'up', pid: expect.any(Number) as number });
      process.kill(up?.pid ?? 0, 'SIGKILL');
      const down = await settlesWithin(waitForStatus(sandbox, 'azurite', 'down'), 10_000, 'the sandbox to notice Azurite died');
      expect(down.signal).toBe('SIGKILL');
    } finally {
      await settlesWithin(sandbox.stop(), 15_000, 'stop() after Azurite died');
    }
    expect(processesMentioning(dataDir)).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('arms a parent-death watchdog per child, and a normal stop removes them with the children', async () => {
    const sandbox = await startSandbox({ worlds: [], providers: [] });
    const dataDir = path.dirname(sandbox.caFile);
    try {
      expect(Object.keys(await services(sandbox)).sort()).toEqual(['azurite', 'postgres']);
      // Each child has a parent-death watchdog beside it, tagged with the data directory.
      expect(processesMentioning(dataDir).filter((line) => line.includes('ops-autopilot-watchdog'))).toHaveLength(2);
    } finally {
      await settlesWithin(sandbox.stop(), 15_000, 'stop()');
    }
    expect(processesMentioning(dataDir)).toEqual([]);
  });
});
