/**
 * Each remediation action on each resource kind, through the app (POST /api/alerts, the durable
 * remediation on the local host) with the PRODUCTION binding against the sandbox: web app
 * restart, scale-out, scale-up and swap-back each applied, verified and (when reversible) undone;
 * scale-out relieving memory pressure; slot and function app restart; container app restart,
 * scale-out (a new revision of the same image, undone) and rollback to the previous revision
 * (Multiple mode: traffic moved, the bad revision kept; Single mode: a new revision of the
 * previous image); PostgreSQL restart and scale-up. And lock contention with a real runbook run:
 * a revision-cleanup run started over HTTP while a remediation verifies the container app skips
 * that app, naming the remediation.
 */
import { describe, expect, it } from 'vitest';
import { caId, FUNC_APP, KM_SUB, PROD_IMAGE, PSQL, SITE, STAGING_IMAGE, useRemediationWorld, VERIFY, XS_SUB } from '../../support/remediation-world.ts';

const USER = caId('ca-user-service');
const AUTH = caId('ca-auth-service');
const rule = (name: string, ladder: Record<string, unknown>[]): Record<string, unknown> => ({ name, match: { alertRule: name }, ladder: ladder.map((rung) => ({ verify: VERIFY, ...rung })) });

const world = useRemediationWorld({
  remediation: {
    caps: { perTargetActionPerHour: 20, perTargetActionPerDay: 50, perEstatePerDay: 500 },
    breaker: { failures: 10, coolOffMinutes: 60 },
    cooldown: { minutes: 1, maxMinutes: 2, resetAfterHealthyMinutes: 5 },
    escalate: { notify: ['oncall-teams'] },
  },
  targets: {
    [SITE]: {
      rules: [
        rule('km-everything', [
          { action: 'restart' },
          { action: 'scale-out', params: { maxWorkers: 4 } },
          { action: 'scale-up', params: { skus: ['P2V3'] } },
          { action: 'swap-back', params: { slot: 'staging', withinMinutes: 600 } },
        ]),
        rule('km-memory', [{ action: 'scale-out', params: { maxWorkers: 4 } }]),
        rule('km-slot', [{ action: 'restart', params: { slot: 'staging' } }]),
      ],
    },
    [FUNC_APP]: { rules: [rule('lc-restart', [{ action: 'restart' }])] },
    [USER]: { rules: [rule('xs-user-down', [{ action: 'restart' }, { action: 'scale-out', params: { maxReplicas: 5 } }, { action: 'rollback' }])] },
    [AUTH]: { rules: [rule('xs-auth-down', [{ action: 'rollback' }])] },
    [PSQL]: { rules: [rule('km-db-down', [{ action: 'restart' }]), rule('km-db-cpu', [{ action: 'scale-up', params: { skus: [{ name: 'Standard_B4ms', tier: 'Burstable' }] } }])] },
  },
});

async function remediate(alertRule: string, target: string): Promise<{ id: string; view: Awaited<ReturnType<typeof world.view>> }> {
  const answer = await world.postAlert(world.alert({ rule: alertRule, target }).body);
  expect(answer.status).toBe(202);
  const id = String(answer.json.id);
  await world.settle(id);
  await world.advance(3 * 60_000);
  return { id, view: await world.view(id) };
}

const steps = (view: Awaited<ReturnType<typeof world.view>>): unknown[] => view.steps.map((step) => [step.action, step.result?.outcome, step.verify?.healthy, step.undo?.outcome]);
const count = (lines: readonly string[], pattern: RegExp): number => lines.filter((line) => pattern.test(line)).length;

async function plan(): Promise<{ sku: string | undefined; capacity: number | undefined }> {
  const web = await world.clients().webClient(KM_SUB);
  const farm = await web.appServicePlans.get('rg-kilometers-prod', 'asp-kilometers-prod-k7x2');
  return { sku: farm.sku?.name, capacity: farm.sku?.capacity };
}

async function image(): Promise<string | undefined> {
  const web = await world.clients().webClient(KM_SUB);
  return (await web.webApps.get('rg-kilometers-prod', 'app-kilometers-api-k7x2')).siteConfig?.linuxFxVersion ?? undefined;
}

async function containerApp(name: string): Promise<{ traffic: { revisionName?: string; weight?: number; latestRevision?: boolean }[]; revisions: { name: string; active: boolean; image: string | undefined }[] }> {
  const apps = await world.clients().containerAppsClient(XS_SUB);
  const app = await apps.containerApps.get('rg-xshopai-prod', name);
  const revisions = [];
  for await (const revision of apps.containerAppsRevisions.listRevisions('rg-xshopai-prod', name)) {
    revisions.push({ name: revision.name ?? '', active: revision.active === true, image: revision.template?.containers?.[0]?.image });
  }
  return { traffic: (app.configuration?.ingress?.traffic ?? []), revisions };
}

describe('web app', () => {
  it('restart, scale-out, scale-up and swap-back each applied, verified and the reversible ones undone; then escalated', async () => {
    // A bad deploy swapped in from staging, and a dependency down: nothing helps.
    await world.health({ image: STAGING_IMAGE, healthy: false });
    const web = await world.clients().webClient(KM_SUB);
    await web.webApps.swapSlotWithProduction('rg-kilometers-prod', 'app-kilometers-api-k7x2', { targetSlot: 'staging', preserveVnet: true });
    await world.health({ target: SITE, script: { mode: 'unhealthy' } });
    const before = await plan();
    await world.sandbox().clearRequests();
    const { view } = await remediate('km-everything', SITE);
    expect(view.outcome, view.reason).toBe('escalated');
    expect(steps(view)).toEqual([
      ['restart', 'applied', false, undefined],
      ['scale-out', 'applied', false, 'applied'],
      ['scale-up', 'applied', false, 'applied'],
      ['swap-back', 'applied', false, 'applied'],
    ]);
    // Every reversible change put back: the plan as it was, the bad deploy in production again.
    expect(await plan()).toEqual(before);
    expect(await image()).toBe(`DOCKER|${STAGING_IMAGE}`);
    const changed = await world.mutations();
    expect(count(changed, /sites\/app-kilometers-api-k7x2\/restart$/i)).toBe(1);
    expect(count(changed, /serverfarms\/asp-kilometers-prod-k7x2$/i)).toBe(4);
    expect(count(changed, /slotsswap$/i)).toBe(2);
    // Leave production on the good build for the next tests.
    await web.webApps.swapSlotWithProduction('rg-kilometers-prod', 'app-kilometers-api-k7x2', { targetSlot: 'staging', preserveVnet: true });
    expect(await image()).toBe(`DOCKER|${PROD_IMAGE}`);
  }, 120_000);

  it('scale-out relieves memory pressure: one more worker, kept', async () => {
    const before = await plan();
    await world.health({ target: SITE, script: { mode: 'memory-pressure', workers: (before.capacity ?? 0) + 1 } });
    const { view } = await remediate('km-memory', SITE);
    expect(view.outcome, view.reason).toBe('remediated');
    expect(steps(view)).toEqual([['scale-out', 'applied', true, undefined]]);
    expect(await plan()).toEqual({ sku: before.sku, capacity: (before.capacity ?? 0) + 1 });
  }, 60_000);

  it('restarts a slot, and a function app', async () => {
    await world.health({ target: `${SITE}/slots/staging`, script: { mode: 'until-restart' } });
    const slot = await remediate('km-slot', SITE);
    expect(slot.view.outcome, slot.view.reason).toBe('remediated');
    await world.health({ target: FUNC_APP, script: { mode: 'until-restart' } });
    const func = await remediate('lc-restart', FUNC_APP);
    expect(func.view.outcome, func.view.reason).toBe('remediated');
    expect(steps(func.view)).toEqual([['restart', 'applied', true, undefined]]);
    const changed = await world.mutations();
    expect(count(changed, /sites\/app-kilometers-api-k7x2\/slots\/staging\/restart$/i)).toBe(1);
    expect(count(changed, /sites\/func-limpopo-connect-prod\/restart$/i)).toBe(1);
    expect(count(changed, /sites\/app-kilometers-api-k7x2\/restart$/i)).toBe(0);
  }, 60_000);
});

describe('container app', () => {
  it('restart did not help, scale-out did not (undone), rollback did; a runbook run meanwhile skips the app', async () => {
    await world.health({ image: 'crxshopaiprod.azurecr.io/user-service:v1.0.12', healthy: false });
    const answer = await world.postAlert(world.alert({ rule: 'xs-user-down', target: USER }).body);
    const id = String(answer.json.id);
    await world.settle(id, (status) => status.phase === 'verifying');
    // A real runbook run over HTTP while the remediation holds the app's lock across its verification.
    const started = await world.api('POST', 'runs/revision-cleanup', { mode: 'apply', targets: ['ca-user-service'] });
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const runId = String(started.json.runId);
    await world.settle(runId);
    const run = await world.api('GET', `runs/${runId}`);
    expect(JSON.stringify(run.json)).toContain(id);
    expect(JSON.stringify(run.json)).toMatch(/lock/i);

    await world.settle(id);
    const view = await world.view(id);
    expect(view.outcome, view.reason).toBe('remediated');
    expect(steps(view)).toEqual([
      ['restart', 'applied', false, undefined],
      ['scale-out', 'applied', false, 'applied'],
      ['rollback', 'applied', true, undefined],
    ]);
    const app = await containerApp('ca-user-service');
    expect(app.traffic).toEqual([expect.objectContaining({ revisionName: 'ca-user-service--v1-0-11', weight: 100 })]);
    // The bad revision is kept for inspection.
    expect(app.revisions.find((revision) => revision.name === 'ca-user-service--v1-0-12')?.active).toBe(true);
    const changed = await world.mutations();
    expect(count(changed, /revisions\/[^/]+\/restart$/i)).toBeGreaterThanOrEqual(1);
    // Nothing of the cleanup run touched the app (only the remediation's own changes).
    expect(count(changed, /deactivate$/i)).toBe(0);
  }, 120_000);

  it('Single mode rollback: a new revision of the previous image takes over', async () => {
    await world.health({ image: 'crxshopaiprod.azurecr.io/auth-service:v1.0.40', healthy: false });
    const { view } = await remediate('xs-auth-down', AUTH);
    expect(view.outcome, view.reason).toBe('remediated');
    const app = await containerApp('ca-auth-service');
    const active = app.revisions.filter((revision) => revision.active);
    expect(active.map((revision) => revision.image)).toEqual(['crxshopaiprod.azurecr.io/auth-service:v1.0.39']);
  }, 60_000);
});

describe('PostgreSQL flexible server', () => {
  it('restart, and scale-up to the next SKU of the ladder', async () => {
    const restarted = await remediate('km-db-down', PSQL);
    expect(restarted.view.outcome, restarted.view.reason).toBe('remediated');
    const scaled = await remediate('km-db-cpu', PSQL);
    expect(scaled.view.outcome, scaled.view.reason).toBe('remediated');
    const pg = await world.clients().postgresClient(KM_SUB);
    expect((await pg.servers.get('rg-kilometers-prod', 'psql-kilometers-prod-k7x2')).sku?.name).toBe('Standard_B4ms');
    const changed = await world.mutations();
    expect(count(changed, /flexibleServers\/psql-kilometers-prod-k7x2\/restart$/i)).toBe(1);
    expect(count(changed, /flexibleServers\/psql-kilometers-prod-k7x2$/i)).toBe(1);
  }, 60_000);
});
