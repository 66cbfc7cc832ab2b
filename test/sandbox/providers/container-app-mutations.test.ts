/**
 * The Microsoft.App mutations the remediation actions need, through the real
 * ContainerAppsAPIClient over HTTPS: app updates as long-running operations that follow Azure's
 * change scopes (a template change, scale included, creates a revision; traffic and revision
 * mode do not), revision restart and activate/deactivate, the refusals that change nothing, and
 * health that follows the image (a new revision of a bad image is bad) and the scripts.
 */
import { ContainerAppsAPIClient, type ContainerApp, type Revision } from '@azure/arm-appcontainers';
import { beforeEach, describe, expect, it } from 'vitest';
import { collect } from '../../../src/util/collect.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { restErrorOf, sandboxCredential, sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const XSHOP = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const XRG = 'rg-xshopai-prod';
const HEALTHZ = '2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002';
const HRG = 'rg-webapi-prod';
const SUB = '7b7c7d7e-0000-4000-8000-000000000707';
const DOMAIN = 'lake-1234.eastus.azurecontainerapps.io';
const USER_HOST = 'ca-user-service.calmsea-5e2c91ab.eastus2.azurecontainerapps.io';
const WEBAPI_HOST = 'ca-webapi-prod.proudwave-7c1d2e3f.eastus.azurecontainerapps.io';

const world = writeWorldFile(
  'ca-scripted',
  `name: ca-scripted
description: Container apps whose health the world file scripts.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-pressure
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      minReplicas: 1
      maxReplicas: 5
      health: { mode: memory-pressure, replicas: 3 }
      revisions: [{ suffix: one, image: "cr.azurecr.io/api:1", active: true }]
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-stuck
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      activeRevisionsMode: Multiple
      revisions:
        - { suffix: one, image: "cr.azurecr.io/api:1", active: true, health: { mode: until-restart } }
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-bad-image
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      revisions: [{ suffix: one, image: "cr.azurecr.io/broken:7", active: true, healthy: false }]
`,
);

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml', 'sandbox/worlds/healthz-app.yaml', world], postgres: false, azurite: false, lroDurationMs: 150, lroRetryAfterSeconds: 0 });
const POLL = { updateIntervalInMs: 20 };

function client(subscription: string): ContainerAppsAPIClient {
  return new ContainerAppsAPIClient(sandboxCredential(sandbox()), subscription, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
}

async function status(host: string, path = '/health'): Promise<number> {
  return (await sandboxRequest(sandbox(), { url: `/_hosts/${host}${path}` })).status;
}

async function revisions(apps: ContainerAppsAPIClient, rg: string, app: string): Promise<Revision[]> {
  return collect(apps.containerAppsRevisions.listRevisions(rg, app));
}


/** The app as a PATCH body: what a client sends after reading it (location is required by the SDK). */
function patchOf(app: ContainerApp, change: Partial<ContainerApp>): ContainerApp {
  return { location: app.location, ...change };
}

beforeEach(async () => {
  await sandbox().clearEventGridEvents();
});

describe('application-scope changes: traffic, no new revision', () => {
  it('moves 100 % of traffic to an older active revision in Multiple mode (the rollback), as a long-running operation', async () => {
    const apps = client(XSHOP);
    const before = await revisions(apps, XRG, 'ca-user-service');
    const app = await apps.containerApps.get(XRG, 'ca-user-service');
    const updated = await apps.containerApps.beginUpdateAndWait(
      XRG,
      'ca-user-service',
      patchOf(app, { configuration: { ingress: { traffic: [{ revisionName: 'ca-user-service--v1-0-11', weight: 100 }] } } }),
      POLL,
    );
    expect(updated.configuration?.ingress?.traffic).toEqual([expect.objectContaining({ revisionName: 'ca-user-service--v1-0-11', weight: 100 })]);
    expect(updated.provisioningState).toBe('Succeeded');
    const after = await revisions(apps, XRG, 'ca-user-service');
    expect(after).toHaveLength(before.length);
    expect(after.find((revision) => revision.name === 'ca-user-service--v1-0-11')?.trafficWeight).toBe(100);
    expect(after.find((revision) => revision.name === 'ca-user-service--v1-0-12')).toMatchObject({ trafficWeight: 0, active: true });
    const events = await sandbox().eventGridEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      eventType: 'Microsoft.Resources.ResourceWriteSuccess',
      topic: `/subscriptions/${XSHOP}/resourceGroups/${XRG}`,
      subject: app.id,
      dataVersion: '2',
      data: { operationName: 'Microsoft.App/containerApps/write', resourceProvider: 'Microsoft.App', status: 'Succeeded', httpRequest: { method: 'PATCH' } },
    });
  });

  it('rolls back to an inactive revision after activating it; traffic to an inactive one is refused', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-user-service');
    const inactive = patchOf(app, { configuration: { ingress: { traffic: [{ revisionName: 'ca-user-service--v1-0-5', weight: 100 }] } } });
    const refused = await restErrorOf(apps.containerApps.beginUpdateAndWait(XRG, 'ca-user-service', inactive, POLL));
    expect(refused.statusCode).toBe(400);
    expect(refused.message).toContain('inactive');
    await apps.containerAppsRevisions.activateRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-5');
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-user-service', inactive, POLL);
    expect((await apps.containerAppsRevisions.getRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-5')).trafficWeight).toBe(100);
    // The bad revision stays for inspection: it can be deactivated only once it has no traffic.
    await apps.containerAppsRevisions.deactivateRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-12');
    expect((await apps.containerAppsRevisions.getRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-12')).active).toBe(false);
    await apps.containerAppsRevisions.activateRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-12');
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-user-service', patchOf(app, { configuration: { ingress: { traffic: [{ latestRevision: true, weight: 100 }] } } }), POLL);
    expect((await apps.containerAppsRevisions.getRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-12')).trafficWeight).toBe(100);
  });

  it('refuses traffic that does not add up, names an unknown revision, or splits traffic in Single mode; nothing changes', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-user-service');
    const traffic = (rules: NonNullable<NonNullable<ContainerApp['configuration']>['ingress']>['traffic']): ContainerApp =>
      patchOf(app, { configuration: { ingress: { traffic: rules } } });
    const sum = await restErrorOf(apps.containerApps.beginUpdateAndWait(XRG, 'ca-user-service', traffic([{ revisionName: 'ca-user-service--v1-0-11', weight: 60 }]), POLL));
    expect(sum.message).toContain('add up to 100, found 60');
    const unknown = await restErrorOf(apps.containerApps.beginUpdateAndWait(XRG, 'ca-user-service', traffic([{ revisionName: 'ca-user-service--nope', weight: 100 }]), POLL));
    expect(unknown.message).toContain("revision 'ca-user-service--nope' does not exist");
    const auth = await apps.containerApps.get(XRG, 'ca-auth-service');
    const split = await restErrorOf(
      apps.containerApps.beginUpdateAndWait(
        XRG,
        'ca-auth-service',
        patchOf(auth, { configuration: { ingress: { traffic: [{ latestRevision: true, weight: 50 }, { revisionName: 'ca-auth-service--v1-0-39', weight: 50 }] } } }),
        POLL,
      ),
    );
    expect(split.message).toContain('Single revision mode');
    expect((await apps.containerApps.get(XRG, 'ca-user-service')).configuration?.ingress?.traffic).toEqual([expect.objectContaining({ latestRevision: true, weight: 100 })]);
    expect(await sandbox().eventGridEvents()).toEqual([]);
  });
});

describe('revision-scope changes: a new revision', () => {
  it('a scale change (min/max replicas) creates a revision with that scale; the old revisions keep theirs', async () => {
    const apps = client(XSHOP);
    const before = await revisions(apps, XRG, 'ca-cart-service');
    const app = await apps.containerApps.get(XRG, 'ca-cart-service');
    const updated = await apps.containerApps.beginUpdateAndWait(XRG, 'ca-cart-service', patchOf(app, { template: { scale: { minReplicas: 5, maxReplicas: 20 } } }), POLL);
    const after = await revisions(apps, XRG, 'ca-cart-service');
    expect(after).toHaveLength(before.length + 1);
    const created = after[0];
    expect(created?.name).toBe(updated.latestRevisionName);
    expect(created?.name).toMatch(/^ca-cart-service--[a-z][0-9a-f]{6}$/);
    expect(created).toMatchObject({ active: true, replicas: 5, trafficWeight: 100, healthState: 'Healthy' });
    expect(created?.template?.scale).toMatchObject({ minReplicas: 5, maxReplicas: 20 });
    expect(created?.template?.containers?.[0]?.image).toBe('crxshopaiprod.azurecr.io/cart-service:v1.0.40');
    // Single mode: the old revision is deactivated once the new one is ready, and keeps its own template.
    const old = after.find((revision) => revision.name === 'ca-cart-service--v1-0-40');
    expect(old).toMatchObject({ active: false, trafficWeight: 0 });
    expect(old?.template?.scale).toMatchObject({ minReplicas: 1, maxReplicas: 3 });
    expect(updated.template?.scale).toMatchObject({ minReplicas: 5, maxReplicas: 20 });
  });

  it('in Multiple mode a new revision is active beside the others and gets traffic only through latestRevision', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-web-bff');
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-web-bff', patchOf(app, { configuration: { ingress: { traffic: [{ revisionName: 'ca-web-bff--v1-0-40', weight: 100 }] } } }), POLL);
    const updated = await apps.containerApps.beginUpdateAndWait(
      XRG,
      'ca-web-bff',
      patchOf(app, { template: { revisionSuffix: 'v1-0-41', containers: [{ name: 'ca-web-bff', image: 'crxshopaiprod.azurecr.io/web-bff:v1.0.41' }] } }),
      POLL,
    );
    expect(updated.latestRevisionName).toBe('ca-web-bff--v1-0-41');
    const list = await revisions(apps, XRG, 'ca-web-bff');
    expect(list.find((revision) => revision.name === 'ca-web-bff--v1-0-41')).toMatchObject({ active: true, trafficWeight: 0 });
    expect(list.find((revision) => revision.name === 'ca-web-bff--v1-0-40')).toMatchObject({ active: true, trafficWeight: 100 });
  });

  it('refuses a reused revision suffix, a malformed suffix and min above max replicas; nothing changes', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-order-service');
    const count = (await revisions(apps, XRG, 'ca-order-service')).length;
    // What a client that sends back the template it read would send: the current suffix with a changed scale.
    const reused = await restErrorOf(
      apps.containerApps.beginUpdateAndWait(XRG, 'ca-order-service', patchOf(app, { template: { revisionSuffix: 'v1-0-39', scale: { minReplicas: 2 } } }), POLL),
    );
    expect(reused.message).toContain("Revision 'ca-order-service--v1-0-39' already exists");
    const current = await restErrorOf(
      apps.containerApps.beginUpdateAndWait(XRG, 'ca-order-service', patchOf(app, { template: { ...app.template, scale: { minReplicas: 2, maxReplicas: 3 } } }), POLL),
    );
    expect(current.message).toContain("Revision 'ca-order-service--v1-0-40' already exists");
    expect((await restErrorOf(apps.containerApps.beginUpdateAndWait(XRG, 'ca-order-service', patchOf(app, { template: { revisionSuffix: 'Bad--Suffix' } }), POLL))).statusCode).toBe(400);
    const scale = await restErrorOf(apps.containerApps.beginUpdateAndWait(XRG, 'ca-order-service', patchOf(app, { template: { scale: { minReplicas: 9, maxReplicas: 3 } } }), POLL));
    expect(scale.message).toContain('minReplicas (9) to be at most maxReplicas (3)');
    expect(await revisions(apps, XRG, 'ca-order-service')).toHaveLength(count);
  });

  it('the same template again creates nothing', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-order-service');
    const count = (await revisions(apps, XRG, 'ca-order-service')).length;
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-order-service', patchOf(app, { template: app.template }), POLL);
    expect(await revisions(apps, XRG, 'ca-order-service')).toHaveLength(count);
  });

  it('a PUT replaces: what it leaves out returns to the defaults', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-order-service');
    const replaced = await apps.containerApps.beginCreateOrUpdateAndWait(
      XRG,
      'ca-order-service',
      { location: app.location, managedEnvironmentId: app.managedEnvironmentId, template: { containers: [{ name: 'order', image: 'crxshopaiprod.azurecr.io/order-service:v1.0.40' }] } },
      POLL,
    );
    expect(replaced.template?.scale).toMatchObject({ minReplicas: 0, maxReplicas: 10 });
    expect(replaced.configuration?.activeRevisionsMode).toBe('Single');
    expect(replaced.latestRevisionName).not.toBe('ca-order-service--v1-0-40');
    const missing = await restErrorOf(apps.containerApps.beginCreateOrUpdateAndWait(XRG, 'ca-order-service', { location: app.location }, POLL));
    expect(missing.message).toContain('properties.template.containers');
  });
});

describe('health follows the image and the scripts', () => {
  it('a new revision inherits the health of its image: a scale change of a bad image stays bad', async () => {
    const apps = client(SUB);
    expect(await status(`ca-bad-image.${DOMAIN}`)).toBe(503);
    const app = await apps.containerApps.get('rg', 'ca-bad-image');
    await apps.containerApps.beginUpdateAndWait('rg', 'ca-bad-image', patchOf(app, { template: { scale: { minReplicas: 2, maxReplicas: 4 } } }), POLL);
    expect(await status(`ca-bad-image.${DOMAIN}`)).toBe(503);
    const latest = await apps.containerAppsRevisions.getRevision('rg', 'ca-bad-image', (await apps.containerApps.get('rg', 'ca-bad-image')).latestRevisionName ?? '');
    expect(latest).toMatchObject({ healthState: 'Unhealthy', runningState: 'Degraded' });
    // A good image in a new revision fixes it.
    await apps.containerApps.beginUpdateAndWait('rg', 'ca-bad-image', patchOf(app, { template: { containers: [{ name: 'api', image: 'cr.azurecr.io/api:8' }] } }), POLL);
    expect(await status(`ca-bad-image.${DOMAIN}`)).toBe(200);
  });

  it('a deploy of a bad image takes traffic and fails health; the rollback to the previous revision recovers', async () => {
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-user-service');
    expect((await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { image: 'crxshopaiprod.azurecr.io/user-service:v1.0.13', healthy: false } })).status).toBe(200);
    await apps.containerApps.beginUpdateAndWait(
      XRG,
      'ca-user-service',
      patchOf(app, { template: { revisionSuffix: 'v1-0-13', containers: [{ name: 'user', image: 'crxshopaiprod.azurecr.io/user-service:v1.0.13' }] } }),
      POLL,
    );
    expect((await apps.containerAppsRevisions.getRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-13')).trafficWeight).toBe(100);
    expect(await status(USER_HOST)).toBe(503);
    // Restarting the revision does not fix a bad image.
    await apps.containerAppsRevisions.restartRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-13');
    expect(await status(USER_HOST)).toBe(503);
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-user-service', patchOf(app, { configuration: { ingress: { traffic: [{ revisionName: 'ca-user-service--v1-0-12', weight: 100 }] } } }), POLL);
    expect(await status(USER_HOST)).toBe(200);
  });

  it('Single mode: a revision whose image fails its startup probes never takes over; the old one keeps serving', async () => {
    const apps = client(HEALTHZ);
    await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { image: 'crwebapiprod.azurecr.io/webapi:0badbad', healthy: false, failsProvisioning: true } });
    const app = await apps.containerApps.get(HRG, 'ca-webapi-prod');
    const updated = await apps.containerApps.beginUpdateAndWait(HRG, 'ca-webapi-prod', patchOf(app, { template: { containers: [{ name: 'webapi', image: 'crwebapiprod.azurecr.io/webapi:0badbad' }] } }), POLL);
    expect(updated.latestReadyRevisionName).toBe('ca-webapi-prod--e52a9c4');
    const failed = await apps.containerAppsRevisions.getRevision(HRG, 'ca-webapi-prod', updated.latestRevisionName ?? '');
    expect(failed).toMatchObject({ provisioningState: 'Failed', runningState: 'Failed', active: false, trafficWeight: 0 });
    expect((await apps.containerAppsRevisions.getRevision(HRG, 'ca-webapi-prod', 'ca-webapi-prod--e52a9c4')).trafficWeight).toBe(100);
    expect(await status(WEBAPI_HOST, '/healthz')).toBe(200);
    // Rolling back to the previous image is a template change in Single mode, so it is a new revision too.
    const rolledBack = await apps.containerApps.beginUpdateAndWait(
      HRG,
      'ca-webapi-prod',
      patchOf(app, { template: { revisionSuffix: 'rollback-3f9c2a1', containers: [{ name: 'webapi', image: 'crwebapiprod.azurecr.io/webapi:3f9c2a1' }] } }),
      POLL,
    );
    expect(rolledBack.latestReadyRevisionName).toBe('ca-webapi-prod--rollback-3f9c2a1');
    expect(await status(WEBAPI_HOST, '/readyz')).toBe(200);
  });

  it('memory pressure is relieved by scaling out the minimum replicas (a new revision)', async () => {
    const apps = client(SUB);
    expect(await status(`ca-pressure.${DOMAIN}`)).toBe(503);
    const app = await apps.containerApps.get('rg', 'ca-pressure');
    await apps.containerApps.beginUpdateAndWait('rg', 'ca-pressure', patchOf(app, { template: { scale: { minReplicas: 3 } } }), POLL);
    expect(await status(`ca-pressure.${DOMAIN}`)).toBe(200);
  });

  it('until restarted: a revision restart satisfies it; restarting an inactive revision is refused', async () => {
    const apps = client(SUB);
    expect(await status(`ca-stuck.${DOMAIN}`)).toBe(503);
    await apps.containerAppsRevisions.restartRevision('rg', 'ca-stuck', 'ca-stuck--one');
    expect(await status(`ca-stuck.${DOMAIN}`)).toBe(200);
    const events = await sandbox().eventGridEvents();
    expect(events.at(-1)).toMatchObject({ eventType: 'Microsoft.Resources.ResourceActionSuccess', data: { operationName: 'Microsoft.App/containerApps/revisions/restart/action' } });
    await apps.containerAppsRevisions.deactivateRevision('rg', 'ca-stuck', 'ca-stuck--one').catch(() => undefined);
    const xshop = client(XSHOP);
    expect((await restErrorOf(xshop.containerAppsRevisions.restartRevision(XRG, 'ca-user-service', 'ca-user-service--v1-0-1'))).statusCode).toBe(400);
  });

  it('an app-level script applies to every revision, new ones included', async () => {
    const apps = client(XSHOP);
    const target = `/subscriptions/${XSHOP}/resourceGroups/${XRG}/providers/Microsoft.App/containerApps/ca-auth-service`;
    await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { target, script: { mode: 'unhealthy' } } });
    const host = 'ca-auth-service.calmsea-5e2c91ab.eastus2.azurecontainerapps.io';
    expect(await status(host)).toBe(503);
    const app = await apps.containerApps.get(XRG, 'ca-auth-service');
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-auth-service', patchOf(app, { template: { scale: { maxReplicas: 6 } } }), POLL);
    expect(await status(host)).toBe(503);
    await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { target, script: null } });
    expect(await status(host)).toBe(200);
  });

  it('refuses an update while another runs (409)', async () => {
    const apps = client(SUB);
    const app = await apps.containerApps.get('rg', 'ca-pressure');
    const first = await apps.containerApps.beginUpdate('rg', 'ca-pressure', patchOf(app, { template: { scale: { maxReplicas: 7 } } }), POLL);
    const second = await restErrorOf(apps.containerApps.beginUpdate('rg', 'ca-pressure', patchOf(app, { template: { scale: { maxReplicas: 8 } } }), POLL));
    expect(second.statusCode).toBe(409);
    await first.pollUntilDone();
    expect((await apps.containerApps.get('rg', 'ca-pressure')).template?.scale?.maxReplicas).toBe(7);
  });
});
