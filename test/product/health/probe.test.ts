/**
 * probeHealth against the sandbox's scripted app health, with the product's client layer:
 * status and body of the configured and conventional paths, slots, container app revisions'
 * running state, PostgreSQL state, fail-closed cases (no path answers, ARM unreadable, a stopped
 * site), bounded timeouts, loopback only under the sandbox credential, masked bodies, and no
 * mutating request.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AzureOperationError } from '../../../src/azure/errors.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { HealthProbeRefusedError, probeHealth, runProbeHealthActivity, type ProbeResult } from '../../../src/health/index.ts';
import { mutatingRequests, runbookContextFor, writeWorldFile, type TestRunbookContext } from '../../support/runbook-context.ts';
import { sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const KM_SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
const SITE_ID = `/subscriptions/${KM_SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/app-kilometers-api-k7x2`;
const PG_ID = `/subscriptions/${KM_SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-kilometers-prod-k7x2`;
const CA_ID = '/subscriptions/2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002/resourceGroups/rg-webapi-prod/providers/Microsoft.App/containerApps/ca-webapi-prod';
const PROBE_SUB = '6e6f7071-0000-4000-8000-000000000909';
const probeId = (type: string, name: string): string => `/subscriptions/${PROBE_SUB}/resourceGroups/rg/providers/${type}/${name}`;

const world = writeWorldFile(
  'health-probe',
  `name: health-probe
description: Apps whose health probes test the fail-closed cases.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${PROBE_SUB}
resources:
  - type: Microsoft.Web/serverfarms
    resourceGroup: rg
    name: asp
    location: eastus
    spec: { sku: { name: B1, tier: Basic, capacity: 1 } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-stopped
    location: eastus
    spec: { serverFarm: asp, state: Stopped }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: func-odd-path
    location: eastus
    spec: { kind: functionapp, serverFarm: asp, healthPaths: [/api/health] }
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-bad-image
    location: eastus
    spec:
      environment: cae
      environmentDomain: lake-1.eastus.azurecontainerapps.io
      activeRevisionsMode: Multiple
      revisions:
        - { suffix: one, image: "cr.azurecr.io/api:1", active: true }
        - { suffix: two, image: "cr.azurecr.io/api:2", active: true, healthy: false }
      traffic: [{ revision: one, weight: 50 }, { revision: two, weight: 50 }]
`,
);

const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', 'sandbox/worlds/healthz-app.yaml', world], postgres: false, azurite: false, lroDurationMs: 100 });

const contexts: TestRunbookContext[] = [];
async function contextFor(name: string, edit?: (config: EstateConfig) => EstateConfig): Promise<TestRunbookContext> {
  const context = await runbookContextFor(sandbox(), name, edit === undefined ? {} : { edit });
  contexts.push(context);
  return context;
}
function targetOf(context: TestRunbookContext, id: string): EstateConfig['targets'][number] {
  const target = context.config.targets.find((candidate) => candidate.id.toLowerCase() === id.toLowerCase());
  if (target === undefined) throw new Error(`no target ${id}`);
  return target;
}
async function script(body: unknown): Promise<void> {
  const response = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body });
  expect(response.status, response.text).toBe(200);
}
const pathOf = (result: ProbeResult, path: string): ProbeResult['paths'][number] | undefined => result.paths.find((entry) => entry.path === path);

beforeEach(async () => {
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
  await sandbox().clearFaults();
});
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

describe('web apps and slots', () => {
  it('healthy: the configured /health passes with its status and body; conventional paths the app does not serve are skipped; only GETs are sent', async () => {
    const km = await contextFor('kilometers');
    await sandbox().clearRequests();
    const result = await probeHealth(km.context, targetOf(km, SITE_ID));
    expect(result).toMatchObject({ targetId: SITE_ID, kind: 'webSite', healthy: true, state: 'Running', host: 'app-kilometers-api-k7x2.azurewebsites.net' });
    expect(pathOf(result, '/health')).toMatchObject({ source: 'configured', verdict: 'pass', status: 200, body: '{"status":"healthy"}' });
    expect(pathOf(result, '/healthz')).toMatchObject({ source: 'conventional', verdict: 'not-served', status: 404 });
    expect(pathOf(result, '/readyz')?.verdict).toBe('not-served');
    expect(mutatingRequests(await sandbox().requests())).toEqual([]);
  });

  it('unhealthy until restarted: 503 with the body, named in the reason', async () => {
    const km = await contextFor('kilometers');
    await script({ target: SITE_ID, script: { mode: 'until-restart' } });
    const result = await probeHealth(km.context, targetOf(km, SITE_ID));
    expect(result.healthy).toBe(false);
    expect(pathOf(result, '/health')).toMatchObject({ verdict: 'fail', status: 503, body: '{"status":"unhealthy"}' });
    expect(result.reason).toContain('/health: expected HTTP 200, found 503');
  });

  it('reads the body: 200 with {"status":"degraded"} is a failure; secret-looking values in a body are masked', async () => {
    const km = await contextFor('kilometers');
    const canary = 'Password=Canary-5ecret-Value-42';
    await script({ target: SITE_ID, script: { mode: 'unhealthy', response: { status: 200, body: { status: 'degraded', db: canary } } } });
    const result = await probeHealth(km.context, targetOf(km, SITE_ID));
    expect(result.healthy).toBe(false);
    expect(result.reason).toContain('body says status "degraded"');
    expect(JSON.stringify(result)).not.toContain('Canary-5ecret-Value-42');
    expect(pathOf(result, '/health')?.body).toContain('degraded');
  });

  it('probes a slot on its own host', async () => {
    const km = await contextFor('kilometers');
    await script({ target: `${SITE_ID}/slots/staging`, script: { mode: 'unhealthy' } });
    expect((await probeHealth(km.context, targetOf(km, SITE_ID))).healthy).toBe(true);
    const slot = await probeHealth(km.context, targetOf(km, SITE_ID), { slot: 'staging' });
    expect(slot).toMatchObject({ healthy: false, slot: 'staging', host: 'app-kilometers-api-k7x2-staging.azurewebsites.net' });
  });

  it('a path the caller names must pass, even one the app does not serve (404 fails)', async () => {
    const km = await contextFor('kilometers');
    const result = await probeHealth(km.context, targetOf(km, SITE_ID), { paths: ['/api/status'] });
    expect(result.healthy).toBe(false);
    expect(pathOf(result, '/api/status')).toMatchObject({ source: 'configured', verdict: 'fail', status: 404 });
  });

  it('fails closed when no path answers: an app whose only health path is unconfigured', async () => {
    const probe = await contextFor('health-probe');
    const result = await probeHealth(probe.context, targetOf(probe, probeId('Microsoft.Web/sites', 'func-odd-path')));
    expect(result.healthy).toBe(false);
    expect(result.reason).toContain('no health path answered');
    // Configured, it passes.
    expect((await probeHealth(probe.context, targetOf(probe, probeId('Microsoft.Web/sites', 'func-odd-path')), { paths: ['/api/health'] })).healthy).toBe(true);
  });

  it('a stopped site is unhealthy', async () => {
    const probe = await contextFor('health-probe');
    const result = await probeHealth(probe.context, targetOf(probe, probeId('Microsoft.Web/sites', 'app-stopped')));
    expect(result).toMatchObject({ healthy: false, state: 'Stopped' });
    expect(result.reason).toContain('expected state Running, found Stopped');
  });

  it('bounds each GET by the target timeout: a hanging app fails the path with the timeout named', async () => {
    const km = await contextFor('kilometers', (config) => ({
      ...config,
      targets: config.targets.map((target) => (target.id === SITE_ID ? { ...target, health: { path: '/health', expectStatus: 200, timeoutSeconds: 0.3 } } : target)),
    }));
    await sandbox().injectFault({ pathPattern: '^/_hosts/app-kilometers-api-k7x2\\.azurewebsites\\.net/health$', latencyMs: 5000 });
    const started = Date.now();
    const result = await probeHealth(km.context, targetOf(km, SITE_ID));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result.healthy).toBe(false);
    expect(pathOf(result, '/health')?.reason).toContain('timed out');
  });

  it('with the sandbox credential, refuses a non-loopback app URL before sending anything', async () => {
    const km = await contextFor('kilometers');
    // The schema refuses such a file and the credential refuses such settings; a client layer
    // that maps hosts elsewhere anyway must still not get a probe out.
    const clients = Object.assign(Object.create(km.clients) as typeof km.clients, { appUrl: (host: string, path: string) => `https://${host}${path}` });
    await sandbox().clearRequests();
    await expect(probeHealth({ ...km.context, clients }, targetOf(km, SITE_ID))).rejects.toBeInstanceOf(HealthProbeRefusedError);
    expect((await sandbox().requests()).filter((entry) => entry.host === 'apphost')).toEqual([]);
  });

  it('ARM unreadable: the probe throws a typed error (health that cannot be read is not health)', async () => {
    const km = await contextFor('kilometers');
    await sandbox().injectFault({ operationId: 'Microsoft.Web/sites.get', status: 500, count: 10 });
    const { createAzureClients } = await import('../../../src/azure/clients.ts');
    const clients = createAzureClients(km.config.azure, { retryOptions: { maxRetries: 0 } });
    try {
      await expect(probeHealth({ ...km.context, clients }, targetOf(km, SITE_ID))).rejects.toBeInstanceOf(AzureOperationError);
    } finally {
      await clients.close();
    }
  });
});

describe('container apps', () => {
  it('healthy: /healthz and /readyz pass and the revision with traffic is Running', async () => {
    const ha = await contextFor('healthz-app');
    const result = await probeHealth(ha.context, targetOf(ha, CA_ID));
    expect(result.healthy).toBe(true);
    expect(result.paths.filter((path) => path.verdict === 'pass').map((path) => path.path)).toEqual(['/healthz', '/readyz']);
    expect(result.revisions).toEqual([expect.objectContaining({ name: 'ca-webapi-prod--e52a9c4', trafficWeight: 100, runningState: 'Running', verdict: 'pass' })]);
  });

  it('only /readyz failing makes the app unhealthy, naming /readyz', async () => {
    const ha = await contextFor('healthz-app');
    await script({ target: CA_ID, script: { mode: 'unhealthy', paths: ['/readyz'] } });
    const result = await probeHealth(ha.context, targetOf(ha, CA_ID));
    expect(result.healthy).toBe(false);
    expect(pathOf(result, '/healthz')?.verdict).toBe('pass');
    expect(pathOf(result, '/readyz')).toMatchObject({ verdict: 'fail', status: 503 });
  });

  it('a revision with traffic that is Degraded fails the probe, with the revision named', async () => {
    const probe = await contextFor('health-probe');
    const result = await probeHealth(probe.context, targetOf(probe, probeId('Microsoft.App/containerApps', 'ca-bad-image')));
    expect(result.healthy).toBe(false);
    expect(result.revisions?.map((revision) => [revision.name, revision.verdict])).toEqual([
      ['ca-bad-image--one', 'pass'],
      ['ca-bad-image--two', 'fail'],
    ]);
    expect(result.reason).toContain('revision ca-bad-image--two: expected running state Running, found Degraded');
  });
});

describe('PostgreSQL and the activity', () => {
  it('a server is healthy when Ready', async () => {
    const km = await contextFor('kilometers');
    expect(await probeHealth(km.context, targetOf(km, PG_ID))).toMatchObject({ healthy: true, state: 'Ready', paths: [] });
  });

  it('the activity body probes configured targets only: a forged id is refused', async () => {
    const km = await contextFor('kilometers');
    expect((await runProbeHealthActivity({ targetId: SITE_ID.toUpperCase() }, km.context)).healthy).toBe(true);
    await expect(runProbeHealthActivity({ targetId: probeId('Microsoft.Web/sites', 'app-stopped') }, km.context)).rejects.toThrow(/which the config does not list/);
  });
});
