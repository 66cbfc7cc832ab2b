/**
 * The container app actions against the sandbox with the real SDK client, following Azure's
 * change scopes: restart (the serving revisions), scale-out (a revision-scope change: a new
 * revision of the same image; refused when it would get no traffic or copy a revision that never
 * became ready), rollback (Multiple mode: activate + 100 % traffic, the bad revision kept; Single
 * mode: a new revision of the previous images) and the refusals when no previous healthy
 * revision exists. State before and after, undo, re-applied plans, no side effects in plans.
 */
import { ContainerAppsAPIClient, type Revision } from '@azure/arm-appcontainers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActionRefusedError, ActionStateChangedError, getRemediationAction } from '../../../../src/remediation/actions/index.ts';
import { collect } from '../../../../src/util/collect.ts';
import { actionContextFor, expectNoMutation, hostStatus, planWithoutSideEffects, setHealth, targetNamed } from '../../../support/actions.ts';
import { writeWorldFile, type TestRunbookContext } from '../../../support/runbook-context.ts';
import { sandboxCredential, sandboxRequest, useSandbox } from '../../../support/sandbox.ts';

const XSHOP = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const XRG = 'rg-xshopai-prod';
const USER_HOST = 'ca-user-service.calmsea-5e2c91ab.eastus2.azurecontainerapps.io';
const HEALTHZ = '2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002';
const WEBAPI_HOST = 'ca-webapi-prod.proudwave-7c1d2e3f.eastus.azurecontainerapps.io';
const SUB = '7b7c7d7e-0000-4000-8000-000000000b0b';
const DOMAIN = 'lake-9.eastus.azurecontainerapps.io';

const world = writeWorldFile(
  'ca-actions',
  `name: ca-actions
description: Container apps for the remediation action tests.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-stuck
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      activeRevisionsMode: Multiple
      revisions:
        - { suffix: idle, image: "cr.azurecr.io/api:0", active: true, createdDaysAgo: 9 }
        - { suffix: one, image: "cr.azurecr.io/api:1", active: true, health: { mode: until-restart } }
      traffic: [{ revision: one, weight: 100 }]
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-pressure
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      minReplicas: 1
      maxReplicas: 2
      health: { mode: memory-pressure, replicas: 3 }
      revisions: [{ suffix: one, image: "cr.azurecr.io/api:1", active: true }]
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-pinned
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      activeRevisionsMode: Multiple
      revisions:
        - { suffix: one, image: "cr.azurecr.io/api:1", active: true, createdDaysAgo: 3 }
        - { suffix: two, image: "cr.azurecr.io/api:2", active: true, createdDaysAgo: 1 }
      traffic: [{ revision: one, weight: 100 }]
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-same-image
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      activeRevisionsMode: Multiple
      revisions:
        - { suffix: scaled, image: "cr.azurecr.io/api:7", active: true, createdDaysAgo: 2 }
        - { suffix: now, image: "cr.azurecr.io/api:7", active: true, createdDaysAgo: 1 }
      traffic: [{ latestRevision: true, weight: 100 }]
  - type: Microsoft.App/containerApps
    resourceGroup: rg
    name: ca-alone
    location: eastus
    spec:
      environment: cae
      environmentDomain: ${DOMAIN}
      revisions: [{ suffix: only, image: "cr.azurecr.io/api:1", active: true }]
`,
);

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml', 'sandbox/worlds/healthz-app.yaml', world], postgres: false, azurite: false, lroDurationMs: 100, lroRetryAfterSeconds: 0 });

function client(subscription: string): ContainerAppsAPIClient {
  return new ContainerAppsAPIClient(sandboxCredential(sandbox()), subscription, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
}
async function revisions(subscription: string, rg: string, app: string): Promise<Revision[]> {
  return collect(client(subscription).containerAppsRevisions.listRevisions(rg, app));
}

const open: TestRunbookContext[] = [];
async function contextOf(worldName: string): Promise<Awaited<ReturnType<typeof actionContextFor>>> {
  const context = await actionContextFor(sandbox(), worldName);
  open.push(context);
  return context;
}

beforeEach(async () => {
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((context) => context.close()));
});

describe('restart', () => {
  it('restarts every active revision (revisions: active), or only the latest ready one (revisions: latest)', async () => {
    const { action: ctx, ...c } = await contextOf('ca-actions');
    const target = targetNamed(c, 'ca-stuck');
    expect(await hostStatus(sandbox(), `ca-stuck.${DOMAIN}`, '/health')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'containerApp', 'restart', {});
    expect(plan).toMatchObject({ reversible: false, observed: { revisions: ['ca-stuck--one', 'ca-stuck--idle'] }, notes: ['ca-stuck--idle receives no traffic'] });
    const latest = await planWithoutSideEffects(sandbox(), ctx, target, 'containerApp', 'restart', { revisions: 'latest' });
    expect(latest.observed.revisions).toEqual(['ca-stuck--one']);
    await sandbox().clearRequests();
    expect((await getRemediationAction('containerApp', 'restart').apply(ctx, target, plan)).outcome).toBe('applied');
    const restarts = (await sandbox().requests()).filter((entry) => entry.method === 'POST' && entry.path.endsWith('/restart'));
    expect(restarts.map((entry) => entry.path.split('/').at(-2))).toEqual(['ca-stuck--one', 'ca-stuck--idle']);
    expect(await hostStatus(sandbox(), `ca-stuck.${DOMAIN}`, '/health')).toBe(200);
  });
});

describe('scale-out', () => {
  it('is a revision-scope change: a new revision of the same image with more replicas takes over (Single mode); re-apply is a no-op; undo is another revision with the old scale', async () => {
    const { action: ctx, ...c } = await contextOf('ca-actions');
    const target = targetNamed(c, 'ca-pressure');
    expect(await hostStatus(sandbox(), `ca-pressure.${DOMAIN}`, '/health')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'containerApp', 'scale-out', { step: 2, maxReplicas: 3 });
    expect(plan.changes.slice(0, 2)).toEqual([
      expect.objectContaining({ field: 'properties.template.scale.minReplicas', from: 1, to: 3 }),
      expect.objectContaining({ field: 'properties.template.scale.maxReplicas', from: 2, to: 3 }),
    ]);
    expect(plan.notes[0]).toContain('new revision');
    const suffix = (plan.observed.suffix as string);
    const action = getRemediationAction('containerApp', 'scale-out');
    const result = await action.apply(ctx, target, plan);
    expect(result).toMatchObject({ outcome: 'applied', after: { latestRevision: `ca-pressure--${suffix}`, minReplicas: 3, maxReplicas: 3 } });
    const list = await revisions(SUB, 'rg', 'ca-pressure');
    expect(list.find((revision) => revision.name === `ca-pressure--${suffix}`)).toMatchObject({ active: true, replicas: 3, trafficWeight: 100 });
    expect(list.find((revision) => revision.name === `ca-pressure--${suffix}`)?.template?.containers?.[0]?.image).toBe('cr.azurecr.io/api:1');
    // The old revision keeps its own template and is deactivated by the take-over.
    expect(list.find((revision) => revision.name === 'ca-pressure--one')).toMatchObject({ active: false });
    expect(list.find((revision) => revision.name === 'ca-pressure--one')?.template?.scale).toMatchObject({ minReplicas: 1, maxReplicas: 2 });
    expect(await hostStatus(sandbox(), `ca-pressure.${DOMAIN}`, '/health')).toBe(200);
    expect((await action.apply(ctx, target, plan)).outcome).toBe('skipped');
    expect(await revisions(SUB, 'rg', 'ca-pressure')).toHaveLength(2);
    if (result.undo === undefined || action.undo === undefined) throw new Error('scale-out is reversible');
    const undone = await action.undo(ctx, target, result.undo);
    expect(undone).toMatchObject({ outcome: 'applied', after: { minReplicas: 1, maxReplicas: 2 } });
    expect(await revisions(SUB, 'rg', 'ca-pressure')).toHaveLength(3);
    expect((await action.undo(ctx, target, result.undo)).outcome).toBe('skipped');
    expect(await revisions(SUB, 'rg', 'ca-pressure')).toHaveLength(3);
  });

  it('refuses in Multiple mode with traffic pinned to a revision (the new revision would get 0 %)', async () => {
    const { action: ctx, ...c } = await contextOf('ca-actions');
    const refused = await expectNoMutation(sandbox(), () => getRemediationAction('containerApp', 'scale-out').plan(ctx, targetNamed(c, 'ca-pinned'), { maxReplicas: 5 }));
    expect(refused).toBeInstanceOf(ActionRefusedError);
    expect((refused as Error).message).toContain('would get 0 % of traffic');
  });

  it('refuses when the latest revision never became ready (its template would be copied)', async () => {
    const { action: ctx, ...c } = await contextOf('ca-actions');
    const apps = client(SUB);
    await setHealth(sandbox(), { image: 'cr.azurecr.io/api:broken', healthy: false, failsProvisioning: true });
    const app = await apps.containerApps.get('rg', 'ca-alone');
    await apps.containerApps.beginUpdateAndWait('rg', 'ca-alone', { location: app.location, template: { containers: [{ name: 'api', image: 'cr.azurecr.io/api:broken' }] } }, { updateIntervalInMs: 20 });
    const refused = await expectNoMutation(sandbox(), () => getRemediationAction('containerApp', 'scale-out').plan(ctx, targetNamed(c, 'ca-alone'), { maxReplicas: 5 }));
    expect((refused as Error).message).toContain('never became ready');
  });

  it('refuses to apply when the app got a new revision after the plan', async () => {
    const { action: ctx, ...c } = await contextOf('xshopai');
    const target = targetNamed(c, 'ca-cart-service');
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'containerApp', 'scale-out', { maxReplicas: 4 });
    const apps = client(XSHOP);
    const app = await apps.containerApps.get(XRG, 'ca-cart-service');
    await apps.containerApps.beginUpdateAndWait(XRG, 'ca-cart-service', { location: app.location, template: { containers: [{ name: 'cart', image: 'crxshopaiprod.azurecr.io/cart-service:v1.0.41' }] } }, { updateIntervalInMs: 20 });
    const count = (await revisions(XSHOP, XRG, 'ca-cart-service')).length;
    await expect(getRemediationAction('containerApp', 'scale-out').apply(ctx, target, plan)).rejects.toBeInstanceOf(ActionStateChangedError);
    expect(await revisions(XSHOP, XRG, 'ca-cart-service')).toHaveLength(count);
  });
});

describe('rollback', () => {
  it('Multiple mode: activates nothing new, moves 100 % of traffic to the previous healthy revision, keeps the bad one; undo restores traffic', async () => {
    const { action: ctx, ...c } = await contextOf('xshopai');
    const target = targetNamed(c, 'ca-user-service');
    await setHealth(sandbox(), { image: 'crxshopaiprod.azurecr.io/user-service:v1.0.12', healthy: false });
    expect(await hostStatus(sandbox(), USER_HOST, '/health')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'containerApp', 'rollback', {});
    expect(plan).toMatchObject({ reversible: true, observed: { mode: 'Multiple', current: 'ca-user-service--v1-0-12', revision: 'ca-user-service--v1-0-11' } });
    const action = getRemediationAction('containerApp', 'rollback');
    const count = (await revisions(XSHOP, XRG, 'ca-user-service')).length;
    const result = await action.apply(ctx, target, plan);
    expect(result.outcome).toBe('applied');
    const after = await revisions(XSHOP, XRG, 'ca-user-service');
    expect(after).toHaveLength(count);
    expect(after.find((revision) => revision.name === 'ca-user-service--v1-0-11')).toMatchObject({ trafficWeight: 100, active: true });
    expect(after.find((revision) => revision.name === 'ca-user-service--v1-0-12')).toMatchObject({ trafficWeight: 0, active: true });
    expect(await hostStatus(sandbox(), USER_HOST, '/health')).toBe(200);
    expect((await action.apply(ctx, target, plan)).outcome).toBe('skipped');
    if (result.undo === undefined || action.undo === undefined) throw new Error('a Multiple mode rollback is reversible');
    expect((await action.undo(ctx, target, result.undo)).outcome).toBe('applied');
    expect((await client(XSHOP).containerApps.get(XRG, 'ca-user-service')).configuration?.ingress?.traffic).toEqual([expect.objectContaining({ latestRevision: true, weight: 100 })]);
    expect((await action.undo(ctx, target, result.undo)).outcome).toBe('skipped');
  });

  it('passes over an older revision that runs the same image (a bad image is bad wherever it runs) and refuses when none is left', async () => {
    const { action: ctx, ...c } = await contextOf('ca-actions');
    const refused = await expectNoMutation(sandbox(), () => getRemediationAction('containerApp', 'rollback').plan(ctx, targetNamed(c, 'ca-same-image'), {}));
    expect(refused).toBeInstanceOf(ActionRefusedError);
    expect((refused as Error).message).toContain('ca-same-image--scaled: runs the same image as ca-same-image--now');
    const window = await expectNoMutation(sandbox(), () => getRemediationAction('containerApp', 'rollback').plan(ctx, targetNamed(c, 'ca-stuck'), { maxRevisionAgeDays: 5 }));
    expect((window as Error).message).toContain('ca-stuck--idle: created');
    expect((window as Error).message).toContain('older than the rollback window');
  });

  it('passes over an older active revision that is unhealthy', async () => {
    const { action: ctx, ...c } = await contextOf('xshopai');
    await setHealth(sandbox(), { image: 'crxshopaiprod.azurecr.io/user-service:v1.0.11', healthy: false });
    const plan = await planWithoutSideEffects(sandbox(), ctx, targetNamed(c, 'ca-user-service'), 'containerApp', 'rollback', {});
    expect(plan.observed.revision).toBe('ca-user-service--v1-0-10');
    expect(plan.notes[0]).toContain('ca-user-service--v1-0-11: active but Unhealthy');
  });

  it('Single mode: the previous images come back as a new revision that takes over; the bad revision is kept; not reversible', async () => {
    const { action: ctx, ...c } = await contextOf('healthz-app');
    const target = targetNamed(c, 'ca-webapi-prod');
    await setHealth(sandbox(), { image: 'crwebapiprod.azurecr.io/webapi:e52a9c4', healthy: false });
    expect(await hostStatus(sandbox(), WEBAPI_HOST, '/healthz')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'containerApp', 'rollback', {});
    expect(plan).toMatchObject({ reversible: false, observed: { mode: 'Single', current: 'ca-webapi-prod--e52a9c4', revision: 'ca-webapi-prod--3f9c2a1', image: 'crwebapiprod.azurecr.io/webapi:3f9c2a1' } });
    expect(plan.irreversibleReason).toContain('what failed');
    const action = getRemediationAction('containerApp', 'rollback');
    const result = await action.apply(ctx, target, plan);
    const created = `ca-webapi-prod--${(plan.observed.suffix as string)}`;
    expect(result).toMatchObject({ outcome: 'applied', after: { latestRevision: created } });
    const list = await revisions(HEALTHZ, 'rg-webapi-prod', 'ca-webapi-prod');
    expect(list.find((revision) => revision.name === created)).toMatchObject({ active: true, trafficWeight: 100 });
    expect(list.find((revision) => revision.name === created)?.template?.containers?.[0]?.image).toBe('crwebapiprod.azurecr.io/webapi:3f9c2a1');
    expect(list.find((revision) => revision.name === 'ca-webapi-prod--e52a9c4')).toMatchObject({ active: false });
    expect(await hostStatus(sandbox(), WEBAPI_HOST, '/healthz')).toBe(200);
    expect((await action.apply(ctx, target, plan)).outcome).toBe('skipped');
    expect(await revisions(HEALTHZ, 'rg-webapi-prod', 'ca-webapi-prod')).toHaveLength(list.length);
  });
});
