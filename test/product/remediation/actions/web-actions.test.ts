/**
 * The web app, slot and function app actions against the sandbox with the real SDK clients:
 * restart (site, slot, function app), swap-back, scale-out and scale-up of the App Service plan;
 * state before and after, undo restores it, re-applying a plan changes nothing more, plans have
 * no side effects, and every refusal names what was expected and found and changes nothing.
 */
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActionParamsError, ActionRefusedError, ActionStateChangedError, getRemediationAction, remediationActionNames, UnknownRemediationActionError } from '../../../../src/remediation/actions/index.ts';
import { actionContextFor, expectNoMutation, hostStatus, planWithoutSideEffects, setHealth, targetNamed } from '../../../support/actions.ts';
import { writeWorldFile, type TestRunbookContext } from '../../../support/runbook-context.ts';
import { sandboxCredential, sandboxRequest, useSandbox } from '../../../support/sandbox.ts';

const KM = '5f504e96-b142-4ec0-8e99-50424fa25005';
const RG = 'rg-kilometers-prod';
const SITE = 'app-kilometers-api-k7x2';
const PLAN = 'asp-kilometers-prod-k7x2';
const SITE_ID = `/subscriptions/${KM}/resourceGroups/${RG}/providers/Microsoft.Web/sites/${SITE}`;
const PROD_HOST = `${SITE}.azurewebsites.net`;
const IMAGE_241 = 'DOCKER|ghcr.io/kilometers-ai/kilometers-api:2.4.1';
const IMAGE_240 = 'DOCKER|ghcr.io/kilometers-ai/kilometers-api:2.4.0';
const WEB_SUB = '6a6b6c6d-0000-4000-8000-000000000a0a';

const world = writeWorldFile(
  'web-actions',
  `name: web-actions
description: Web apps and function apps for the remediation action tests.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${WEB_SUB}
resources:
  - type: Microsoft.Web/serverfarms
    resourceGroup: rg
    name: asp-small
    location: eastus
    spec: { sku: { name: B1, tier: Basic, capacity: 1 } }
  - type: Microsoft.Web/serverfarms
    resourceGroup: rg
    name: asp-func
    location: eastus
    spec: { kind: functionapp, sku: { name: Y1, tier: Dynamic } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-memory
    location: eastus
    spec: { serverFarm: asp-small, health: { mode: memory-pressure, workers: 2 } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-stopped
    location: eastus
    spec: { serverFarm: asp-small, state: Stopped }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: func-app
    location: eastus
    spec: { kind: functionapp, serverFarm: asp-func, healthPaths: [/api/health], health: { mode: until-restart } }
`,
);

const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', world], postgres: false, azurite: false, lroDurationMs: 100, lroRetryAfterSeconds: 0 });
const POLL = { updateIntervalInMs: 20 };

function webClient(subscription = KM): WebSiteManagementClient {
  return new WebSiteManagementClient(sandboxCredential(sandbox()), subscription, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
}
async function untilServing(host: string, path = '/health'): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const response = await sandboxRequest(sandbox(), { url: `/_hosts/${host}${path}` });
    if (!response.text.includes('restarting')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${host} still restarting`);
}

const open: TestRunbookContext[] = [];
async function km(now?: () => Date): Promise<Awaited<ReturnType<typeof actionContextFor>>> {
  const context = await actionContextFor(sandbox(), 'kilometers', now);
  open.push(context);
  return context;
}
async function scripted(): Promise<Awaited<ReturnType<typeof actionContextFor>>> {
  const context = await actionContextFor(sandbox(), 'web-actions');
  open.push(context);
  return context;
}

beforeEach(async () => {
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
  await sandbox().clearFaults();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((context) => context.close()));
});

describe('the registry', () => {
  it('has the actions of each kind and names them when asked for another', () => {
    expect(remediationActionNames('webSite')).toEqual(['restart', 'swap-back', 'scale-out', 'scale-up']);
    expect(remediationActionNames('containerApp')).toEqual(['restart', 'scale-out', 'rollback']);
    expect(remediationActionNames('postgresFlexibleServer')).toEqual(['restart', 'scale-up']);
    expect(() => getRemediationAction('webSite', 'rollback')).toThrow(UnknownRemediationActionError);
    expect(() => getRemediationAction('webSite', 'rollback')).toThrow('expected a remediation action of webSite (restart, swap-back, scale-out, scale-up), found "rollback"');
    expect(() => getRemediationAction('keyVault', 'restart')).toThrow(/none: remediation acts on/);
  });
});

describe('restart', () => {
  it('restarts the site: the plan reads only, apply satisfies an until-restart script; not reversible', async () => {
    const { action: ctx, ...c } = await km();
    const target = targetNamed(c, SITE);
    await setHealth(sandbox(), { target: SITE_ID, script: { mode: 'until-restart' } });
    expect(await hostStatus(sandbox(), PROD_HOST, '/health')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'webSite', 'restart', {});
    expect(plan).toMatchObject({ action: 'restart', kind: 'webSite', targetId: SITE_ID, reversible: false, summary: `restart web app ${SITE}`, observed: { state: 'Running' } });
    expect(plan.undo).toBeUndefined();
    expect('undo' in getRemediationAction('webSite', 'restart')).toBe(false);
    await sandbox().clearEventGridEvents();
    const result = await getRemediationAction('webSite', 'restart').apply(ctx, target, plan);
    expect(result).toMatchObject({ outcome: 'applied', message: `restarted ${SITE}` });
    await untilServing(PROD_HOST);
    expect(await hostStatus(sandbox(), PROD_HOST, '/health')).toBe(200);
    expect((await sandbox().eventGridEvents()).map((event) => event.eventType)).toContain('Microsoft.Web.AppUpdated');
  });

  it('restarts one slot, leaving production alone', async () => {
    const { action: ctx, ...c } = await km();
    await setHealth(sandbox(), { target: `${SITE_ID}/slots/staging`, script: { mode: 'until-restart' } });
    await setHealth(sandbox(), { target: SITE_ID, script: { mode: 'until-restart' } });
    const plan = await planWithoutSideEffects(sandbox(), ctx, targetNamed(c, SITE), 'webSite', 'restart', { slot: 'staging' });
    expect(plan.summary).toBe(`restart slot staging of ${SITE}`);
    await getRemediationAction('webSite', 'restart').apply(ctx, targetNamed(c, SITE), plan);
    await untilServing(`${SITE}-staging.azurewebsites.net`);
    expect(await hostStatus(sandbox(), `${SITE}-staging.azurewebsites.net`, '/health')).toBe(200);
    expect(await hostStatus(sandbox(), PROD_HOST, '/health')).toBe(503);
  });

  it('restarts a function app on a Consumption plan', async () => {
    const { action: ctx, ...c } = await scripted();
    const target = targetNamed(c, 'func-app');
    expect(await hostStatus(sandbox(), 'func-app.azurewebsites.net', '/api/health')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'webSite', 'restart', {});
    await getRemediationAction('webSite', 'restart').apply(ctx, target, plan);
    await untilServing('func-app.azurewebsites.net', '/api/health');
    expect(await hostStatus(sandbox(), 'func-app.azurewebsites.net', '/api/health')).toBe(200);
  });

  it('refuses a stopped app (a restart does not start it) and bad parameters, changing nothing', async () => {
    const { action: ctx, ...c } = await scripted();
    const refused = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'restart').plan(ctx, targetNamed(c, 'app-stopped'), {}));
    expect(refused).toBeInstanceOf(ActionRefusedError);
    expect(refused).toMatchObject({ expected: 'state Running', found: 'Stopped' });
    const bad = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'restart').plan(ctx, targetNamed(c, 'app-memory'), { slot: 'no such/slot', force: true }));
    expect(bad).toBeInstanceOf(ActionParamsError);
    expect((bad as Error).message).toContain('params.slot');
  });
});

describe('swap-back', () => {
  it('swaps a bad deploy back out of production; re-applying is a no-op; undo swaps again, once', async () => {
    const { action: ctx, ...c } = await km();
    const target = targetNamed(c, SITE);
    const web = webClient();
    // A deploy swapped in from staging turns bad in production.
    await setHealth(sandbox(), { target: PROD_HOST, script: { mode: 'unhealthy-after-swap' } });
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(IMAGE_240);
    expect(await hostStatus(sandbox(), PROD_HOST, '/health')).toBe(503);

    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'webSite', 'swap-back', { withinMinutes: 30 });
    expect(plan).toMatchObject({ reversible: true, params: { slot: 'staging', withinMinutes: 30 }, observed: { swapSource: 'staging', swapDestination: 'production', productionArtifact: IMAGE_240, slotArtifact: IMAGE_241 } });
    expect(plan.changes).toEqual([
      { resource: SITE_ID, field: 'artifact', from: IMAGE_240, to: IMAGE_241 },
      { resource: `${SITE_ID}/slots/staging`, field: 'artifact', from: IMAGE_241, to: IMAGE_240 },
    ]);
    const action = getRemediationAction('webSite', 'swap-back');
    const result = await action.apply(ctx, target, plan);
    expect(result.outcome).toBe('applied');
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(IMAGE_241);
    expect(await hostStatus(sandbox(), PROD_HOST, '/health')).toBe(200);
    // A retried apply (the activity runs at least once) does not swap the bad deploy back in.
    expect((await action.apply(ctx, target, plan)).outcome).toBe('skipped');
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(IMAGE_241);

    const undo = result.undo;
    expect(undo).toBeDefined();
    if (undo === undefined || action.undo === undefined) throw new Error('swap-back is reversible');
    expect((await action.undo(ctx, target, undo)).outcome).toBe('applied');
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(IMAGE_240);
    expect((await action.undo(ctx, target, undo)).outcome).toBe('skipped');
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(IMAGE_240);
    // Put the seeded layout back for the other tests.
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
  });

  it('refuses a swap outside the window, a slot that is not the last swap\'s, and an app never swapped', async () => {
    const web = webClient();
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    const later = await km(() => new Date(Date.now() + 3 * 3600_000));
    const old = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'swap-back').plan(later.action, targetNamed(later, SITE), { withinMinutes: 60 }));
    expect(old).toBeInstanceOf(ActionRefusedError);
    expect((old as Error).message).toMatch(/expected the last swap within 60 min, found it 18\d min ago/);
    const { action: ctx, ...c } = await km();
    const other = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'swap-back').plan(ctx, targetNamed(c, SITE), { slot: 'canary' }));
    expect(other).toMatchObject({ expected: 'a swap with canary', found: 'staging' });
    const never = await scripted();
    const none = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'swap-back').plan(never.action, targetNamed(never, 'app-memory'), {}));
    expect(none).toMatchObject({ name: 'ActionRefusedError', found: 'none' });
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
  });

  it('refuses to apply when another swap happened after the plan: no second swap', async () => {
    const { action: ctx, ...c } = await km();
    const web = webClient();
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    const plan = await planWithoutSideEffects(sandbox(), ctx, targetNamed(c, SITE), 'webSite', 'swap-back', {});
    // Someone deploys to production meanwhile by swapping twice (the last swap is a new one, the layout is as planned).
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    const before = (await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion;
    const refused = await getRemediationAction('webSite', 'swap-back').apply(ctx, targetNamed(c, SITE), { ...plan, plannedAt: new Date(Date.now() + 3600_000).toISOString() }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ActionStateChangedError);
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(before);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
  });
});

describe('scale-out and scale-up of the App Service plan', () => {
  it('scale-out adds workers by a step up to the maximum, relieving memory pressure; undo restores the count', async () => {
    const { action: ctx, ...c } = await scripted();
    const target = targetNamed(c, 'app-memory');
    expect(await hostStatus(sandbox(), 'app-memory.azurewebsites.net', '/health')).toBe(503);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'webSite', 'scale-out', { maxWorkers: 2 });
    expect(plan).toMatchObject({ reversible: true, changes: [{ field: 'sku.capacity', from: 1, to: 2 }] });
    expect(plan.notes[0]).toContain('shared by every app on it');
    const action = getRemediationAction('webSite', 'scale-out');
    const result = await action.apply(ctx, target, plan);
    expect(result).toMatchObject({ outcome: 'applied', after: { skuName: 'B1', capacity: 2 } });
    expect((await webClient(WEB_SUB).appServicePlans.get('rg', 'asp-small')).sku).toMatchObject({ name: 'B1', capacity: 2 });
    expect(await hostStatus(sandbox(), 'app-memory.azurewebsites.net', '/health')).toBe(200);
    expect((await action.apply(ctx, target, plan)).outcome).toBe('skipped');
    // At the maximum: refused, nothing changes.
    const top = await expectNoMutation(sandbox(), () => action.plan(ctx, target, { maxWorkers: 2 }));
    expect(top).toMatchObject({ name: 'ActionRefusedError', found: '2' });
    if (result.undo === undefined || action.undo === undefined) throw new Error('scale-out is reversible');
    expect((await action.undo(ctx, target, result.undo)).outcome).toBe('applied');
    expect((await webClient(WEB_SUB).appServicePlans.get('rg', 'asp-small')).sku).toMatchObject({ name: 'B1', capacity: 1 });
    expect((await action.undo(ctx, target, result.undo)).outcome).toBe('skipped');
  });

  it("caps scale-out at the tier's worker limit and says so", async () => {
    const { action: ctx, ...c } = await scripted();
    const plan = await planWithoutSideEffects(sandbox(), ctx, targetNamed(c, 'app-memory'), 'webSite', 'scale-out', { step: 5, maxWorkers: 10 });
    expect(plan.changes).toEqual([expect.objectContaining({ from: 1, to: 3 })]);
    expect(plan.notes.join(' ')).toContain('the Basic tier allows at most 3 workers');
  });

  it('refuses to scale a Consumption plan (the platform scales it)', async () => {
    const { action: ctx, ...c } = await scripted();
    for (const [name, params] of [['scale-out', { maxWorkers: 3 }], ['scale-up', { skus: ['EP1'] }]] as const) {
      const refused = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', name).plan(ctx, targetNamed(c, 'func-app'), params));
      expect(refused, name).toBeInstanceOf(ActionRefusedError);
      expect((refused as Error).message, name).toContain('which the platform scales itself');
    }
  });

  it('scale-up moves to the next SKU of the ladder and keeps the workers; undo moves back', async () => {
    const { action: ctx, ...c } = await km();
    const target = targetNamed(c, SITE);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'webSite', 'scale-up', { skus: ['P1v3', 'P2v3', 'P3v3'] });
    expect(plan).toMatchObject({ summary: `scale App Service plan ${PLAN} up from P1v3 to P2v3 (2 workers)`, reversible: true });
    const action = getRemediationAction('webSite', 'scale-up');
    const result = await action.apply(ctx, target, plan);
    expect(result.outcome).toBe('applied');
    expect((await webClient().appServicePlans.get(RG, PLAN)).sku).toMatchObject({ name: 'P2v3', tier: 'PremiumV3', capacity: 2 });
    if (result.undo === undefined || action.undo === undefined) throw new Error('scale-up is reversible');
    await action.undo(ctx, target, result.undo);
    expect((await webClient().appServicePlans.get(RG, PLAN)).sku).toMatchObject({ name: 'P1v3', capacity: 2 });
  });

  it('scale-up from a SKU off the ladder takes the first SKU ranked above it (B1 → P1v2)', async () => {
    const { action: ctx, ...c } = await scripted();
    const plan = await planWithoutSideEffects(sandbox(), ctx, targetNamed(c, 'app-memory'), 'webSite', 'scale-up', { skus: ['P1v2'] });
    expect(plan.changes).toEqual([expect.objectContaining({ field: 'sku.name', from: 'B1', to: 'P1v2' })]);
  });

  it('scale-up refuses a plan whose SKU is above the whole ladder, and the top of the ladder', async () => {
    const { action: ctx, ...c } = await km();
    const target = targetNamed(c, SITE);
    const off = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'scale-up').plan(ctx, target, { skus: ['S1', 'S2'] }));
    expect(off).toMatchObject({ name: 'ActionRefusedError', found: 'P1v3' });
    const top = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'scale-up').plan(ctx, target, { skus: ['P0v3', 'P1v3'] }));
    expect((top as Error).message).toContain('already at or above the maximum');
    const unbounded = await expectNoMutation(sandbox(), () => getRemediationAction('webSite', 'scale-out').plan(ctx, target, { step: 1 }));
    expect(unbounded).toBeInstanceOf(ActionParamsError);
    expect((unbounded as Error).message).toContain('params.maxWorkers');
  });

  it('refuses to apply a scale plan when the plan changed meanwhile (no clobbering)', async () => {
    const { action: ctx, ...c } = await km();
    const target = targetNamed(c, SITE);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'webSite', 'scale-out', { maxWorkers: 5 });
    const web = webClient();
    const current = await web.appServicePlans.get(RG, PLAN);
    await web.appServicePlans.createOrUpdate(RG, PLAN, { ...current, sku: { name: 'P1v3', capacity: 4 } }, POLL);
    await expect(getRemediationAction('webSite', 'scale-out').apply(ctx, target, plan)).rejects.toBeInstanceOf(ActionStateChangedError);
    expect((await web.appServicePlans.get(RG, PLAN)).sku?.capacity).toBe(4);
    await web.appServicePlans.createOrUpdate(RG, PLAN, { ...current, sku: { name: 'P1v3', capacity: 2 } }, POLL);
  });
});
