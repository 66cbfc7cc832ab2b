/**
 * The app's remediation with its PRODUCTION binding (src/remediation/services.ts: the real rules,
 * guardrails in Azure Table storage, actions registry, verifyHealth and PagerDuty), through the
 * local host and the sandbox; no fakes. The ladder with verify and undo on the kilometers web
 * app, escalation paging the sandbox's capture and Resolved resolving the page, and the
 * per-resource lock: held by the remediation across the verification's durable timers (a runbook
 * run is refused meanwhile) and released at the end, a runbook run holding it suppresses the
 * remediation with nothing changed and the guardrail reservation given back.
 */
import { describe, expect, it } from 'vitest';
import { ResourceLockHeldError, resourceLocksFor } from '../../../src/runs/resource-lock.ts';
import { guardrailStatus, openGuardrailStore } from '../../../src/remediation/guardrails.ts';
import { remediationServices } from '../../../src/remediation/flow-services.ts';
import { productionRemediationServices } from '../../../src/remediation/services.ts';
import { readFile } from 'node:fs/promises';
import { remediationInstanceId } from '../../../src/remediation/flow-ids.ts';
import { caId, PAGER, PAGER_KEY, PROD_IMAGE, SITE, STAGING_IMAGE, useRemediationWorld, VERIFY, XS_SUB } from '../../support/remediation-world.ts';

const USER = caId('ca-user-service');

const world = useRemediationWorld({
  remediation: {
    caps: { perTargetActionPerHour: 20, perTargetActionPerDay: 50, perEstatePerDay: 200 },
    breaker: { failures: 10, coolOffMinutes: 60 },
    cooldown: { minutes: 1, maxMinutes: 2, resetAfterHealthyMinutes: 5 },
    escalate: { notify: ['oncall-teams', PAGER] },
  },
  targets: {
    [SITE]: {
      rules: [
        {
          name: 'health-check-failing',
          match: { alertRule: 'km-health-check' },
          ladder: [
            { action: 'restart', verify: VERIFY },
            { action: 'swap-back', params: { slot: 'staging', withinMinutes: 600 }, verify: VERIFY },
          ],
        },
        // A swap that made production unhealthy: watch, then swap back.
        { name: 'bad-swap', match: { eventType: 'Microsoft.Web.SlotSwapCompleted' }, watch: VERIFY, ladder: [{ action: 'swap-back', params: { slot: 'staging', withinMinutes: 600 }, verify: VERIFY }] },
      ],
    },
    [USER]: {
      // A new revision taking traffic: watch it, roll back to the previous healthy one if it fails.
      rules: [{ name: 'bad-revision', match: { eventType: 'Microsoft.Resources.ResourceWriteSuccess' }, watch: VERIFY, ladder: [{ action: 'rollback', verify: VERIFY }] }],
    },
  },
});

const USER_NAME = 'ca-user-service';

/** A bad deploy: staging (2.4.0, marked bad) swapped into production, as a release would. */
async function badDeploy(): Promise<void> {
  await world.health({ image: STAGING_IMAGE, healthy: false });
  const web = await world.clients().webClient('5f504e96-b142-4ec0-8e99-50424fa25005');
  const site = await web.webApps.get('rg-kilometers-prod', 'app-kilometers-api-k7x2');
  if (site.siteConfig?.linuxFxVersion === `DOCKER|${PROD_IMAGE}`) {
    await web.webApps.swapSlotWithProduction('rg-kilometers-prod', 'app-kilometers-api-k7x2', { targetSlot: 'staging', preserveVnet: true });
  }
  await world.sandbox().clearRequests();
}

async function productionImage(): Promise<string | undefined> {
  const web = await world.clients().webClient('5f504e96-b142-4ec0-8e99-50424fa25005');
  return (await web.webApps.get('rg-kilometers-prod', 'app-kilometers-api-k7x2')).siteConfig?.linuxFxVersion ?? undefined;
}

describe('the production binding', () => {
  it('is what the app uses (the module the app loads installs it)', () => {
    expect(remediationServices()).toBe(productionRemediationServices);
  });
});

describe('the ladder, for real', () => {
  it('restart did not help, swap back did; the lock was held through verification and is free afterwards', async () => {
    await badDeploy();
    const { body } = world.alert();
    const accepted = await world.postAlert(body);
    expect(accepted.status).toBe(202);
    const id = String(accepted.json.id);

    // Stop while the restart is being verified: the remediation holds the site's lock across the durable timers.
    await world.settle(id, (status) => status.phase === 'verifying');
    const { provider } = await resourceLocksFor(world.config(), world.clients());
    const contender = provider.acquire(SITE, { owner: 'run-backup-verify-1', purpose: 'a runbook run' });
    await expect(contender).rejects.toBeInstanceOf(ResourceLockHeldError);
    await expect(contender).rejects.toThrow(id);

    await world.settle(id);
    const result = await world.view(id);
    expect(result.outcome, result.reason).toBe('remediated');
    expect(result.steps.map((step) => [step.action, step.result?.outcome, step.verify?.healthy, step.commit])).toEqual([
      ['restart', 'applied', false, 'failed'],
      ['swap-back', 'applied', true, 'succeeded'],
    ]);
    expect(await productionImage()).toBe(`DOCKER|${PROD_IMAGE}`);
    const changed = await world.mutations();
    expect(changed.filter((line) => /\/restart$/i.test(line))).toHaveLength(1);
    expect(changed.filter((line) => /slotsswap$/i.test(line))).toHaveLength(1);

    // Released at the finish: a runbook run gets the lock at once.
    const lock = await provider.acquire(SITE, { owner: 'run-backup-verify-2' });
    await lock.release();

    const record = await world.recordOf(id);
    expect(record.runbook).toBe('remediation');
    expect(record.targets[0]?.actions.map((action) => `${action.action}:${action.outcome}`)).toEqual(expect.arrayContaining(['restart:applied', 'swap-back:applied']));

    const status = await guardrailStatus(openGuardrailStore(world.config(), world.clients(), { readOnly: true }), SITE);
    expect(JSON.stringify(status)).toContain('swap-back');
  }, 120_000);

  it('nothing helps: swap-back is undone, the escalation notifies and pages PagerDuty; Resolved resolves the page', async () => {
    await badDeploy();
    await world.health({ image: PROD_IMAGE, healthy: false });
    const pagesBefore = (await world.sandbox().webhooks(PAGER)).length;
    const { body, alertId } = world.alert();
    const id = String((await world.postAlert(body)).json.id);
    await world.settle(id);
    const result = await world.view(id);
    expect(result.outcome, result.reason).toBe('escalated');
    expect(result.steps.map((step) => [step.action, step.verify?.healthy, step.undo?.outcome, step.commit])).toEqual([
      ['restart', false, undefined, 'failed'],
      ['swap-back', false, 'applied', 'undone'],
    ]);
    // Undone: the bad 2.4.0 deploy is back in production as it was before the remediation (nothing else changed).
    expect(await productionImage()).toBe(`DOCKER|${STAGING_IMAGE}`);
    expect((await world.mutations()).filter((line) => /slotsswap$/i.test(line))).toHaveLength(2);

    const pages = (await world.sandbox().webhooks(PAGER)).slice(pagesBefore);
    expect(pages).toHaveLength(1);
    const trigger = JSON.parse(JSON.stringify(pages[0])) as { body: { event_action: string; dedup_key: string; routing_key: string; payload: { summary: string; source: string } } };
    expect(trigger.body.event_action).toBe('trigger');
    expect(trigger.body.routing_key).toBe(PAGER_KEY);
    expect(trigger.body.payload.source.toLowerCase()).toBe(SITE.toLowerCase());
    expect(trigger.body.payload.summary).toContain('escalated');
    const teams = JSON.stringify(await world.sandbox().webhooks('oncall-teams'));
    expect(teams).toContain('escalated');
    expect(teams).not.toContain(PAGER_KEY);
    expect(JSON.stringify(world.host().durable.getStatus(id))).not.toContain(PAGER_KEY);

    const resolved = await world.postAlert(world.alert({ alertId, condition: 'Resolved' }).body);
    expect(resolved.status).toBe(202);
    expect(resolved.json).toMatchObject({ id, closed: 'escalated' });
    const after = (await world.sandbox().webhooks(PAGER)).slice(pagesBefore);
    expect(after.map((page) => (page as unknown as { body: { event_action: string; dedup_key: string } }).body)).toEqual([
      expect.objectContaining({ event_action: 'trigger', dedup_key: trigger.body.dedup_key }),
      expect.objectContaining({ event_action: 'resolve', dedup_key: trigger.body.dedup_key }),
    ]);
  }, 120_000);
});

describe('the per-resource lock, shared with the runbook executor', () => {
  it('a runbook run holding the site: the remediation changes nothing, names the holder and gives the reservation back', async () => {
    await world.health({ target: SITE, script: { mode: 'until-restart' } });
    const { provider } = await resourceLocksFor(world.config(), world.clients());
    const lock = await provider.acquire(SITE, { owner: 'run-revision-cleanup-7', purpose: 'revision-cleanup run 7' });
    try {
      const id = String((await world.postAlert(world.alert().body)).json.id);
      await world.settle(id);
      const result = await world.view(id);
      expect(result.outcome).toBe('suppressed');
      expect(result.reason).toContain('run-revision-cleanup-7');
      expect(result.steps.map((step) => step.commit)).toEqual(['not-applied']);
      expect(await world.mutations()).toEqual([]);
    } finally {
      await lock.release();
    }
    // Given back: the next alert restarts at once (no cooldown, cap or in-progress claim was left).
    const next = String((await world.postAlert(world.alert().body)).json.id);
    await world.settle(next);
    expect((await world.view(next)).outcome).toBe('remediated');
    expect((await world.mutations()).filter((line) => /\/restart$/i.test(line))).toHaveLength(1);
  }, 120_000);
});

describe('Event Grid, for real', () => {
  async function events(name: string): Promise<Record<string, unknown>[]> {
    return JSON.parse(await readFile(`test/fixtures/events/${name}`, 'utf8')) as Record<string, unknown>[];
  }
  const cloudEvent = (event: Record<string, unknown>): Record<string, unknown> => ({ specversion: '1.0', id: event.id, source: event.topic, subject: event.subject, type: event.eventType, time: event.eventTime, data: event.data });
  async function deliver(body: unknown, contentType = 'application/json'): Promise<number> {
    const host = world.host();
    const response = await fetch(`${host.baseUrl}/runtime/webhooks/EventGrid?functionName=eventGrid`, {
      method: 'POST',
      headers: { 'x-functions-key': host.keys.master, 'content-type': contentType, 'aeg-event-type': 'Notification' },
      body: JSON.stringify(body),
    });
    await response.text();
    await host.idle();
    return response.status;
  }

  it('SlotSwapCompleted in both schemas: a healthy swap is left alone, a bad one is swapped back once; duplicates start nothing', async () => {
    const [completed] = await events('slot-swap-completed.json');
    if (completed === undefined) throw new Error('fixture');
    expect(await deliver([{ ...completed, id: 'real-swap-ok' }])).toBe(202);
    await world.settle(remediationInstanceId('event:real-swap-ok'));
    expect((await world.view(remediationInstanceId('event:real-swap-ok'))).outcome).toBe('healthy');
    expect(await world.mutations()).toEqual([]);

    await badDeploy();
    const bad = cloudEvent({ ...completed, id: 'real-swap-bad' });
    expect(await deliver(bad, 'application/cloudevents+json')).toBe(202);
    const id = remediationInstanceId('event:real-swap-bad');
    await world.settle(id);
    const view = await world.view(id);
    expect(view.outcome, view.reason).toBe('remediated');
    expect(await productionImage()).toBe(`DOCKER|${PROD_IMAGE}`);
    const instances = world.host().durable.listInstances().length;
    expect(await deliver(bad, 'application/cloudevents+json')).toBe(202);
    expect(await deliver([{ ...completed, id: 'real-swap-bad' }])).toBe(202);
    expect(world.host().durable.listInstances().length).toBe(instances);
    expect((await world.mutations()).filter((line) => /slotsswap$/i.test(line))).toHaveLength(1);
  }, 120_000);

  it('ResourceWriteSuccess on a container app: a bad new revision is rolled back to the previous one', async () => {
    await world.health({ image: 'crxshopaiprod.azurecr.io/user-service:v1.0.12', healthy: false });
    const [write] = await events('resource-write-success.json');
    if (write === undefined) throw new Error('fixture');
    expect(await deliver([{ ...write, id: 'real-write-1' }])).toBe(202);
    const id = remediationInstanceId('event:real-write-1');
    await world.settle(id);
    const view = await world.view(id);
    expect(view.outcome, view.reason).toBe('remediated');
    expect(view.steps.map((step) => [step.action, step.verify?.healthy])).toEqual([['rollback', true]]);
    const apps = await world.clients().containerAppsClient(XS_SUB);
    const app = await apps.containerApps.get('rg-xshopai-prod', USER_NAME);
    expect(app.configuration?.ingress?.traffic).toEqual([expect.objectContaining({ revisionName: `${USER_NAME}--v1-0-11`, weight: 100 })]);
  }, 120_000);
});
