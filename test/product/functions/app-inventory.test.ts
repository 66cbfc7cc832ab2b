import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import type { LocalHost } from '../../../local-host/local-host.ts';
import { startLocalHost } from '../../../local-host/local-host.ts';
import { PRODUCTION_FUNCTIONS, summariseFunctions } from '../../support/app-functions.ts';

let host: LocalHost;
beforeAll(async () => {
  host = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, clock: new VirtualClock() });
});
afterAll(async () => {
  await host.stop();
});

describe('the real app entry point', () => {
  it('registers exactly the production functions, timers on their default schedules (no test fixtures leak in)', () => {
    expect(summariseFunctions(host.functions)).toEqual(PRODUCTION_FUNCTIONS);
  });

  it('serves GET /api/health anonymously with version and time', async () => {
    const res = await fetch(`${host.baseUrl}/api/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ok', name: 'ops-autopilot', version: '0.1.0' });
    expect(typeof body.time).toBe('string');
  });
});
