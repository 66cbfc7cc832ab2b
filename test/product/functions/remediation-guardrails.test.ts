/**
 * Every guardrail end to end, with the app's PRODUCTION remediation binding (real rules,
 * guardrails in Azurite's Table storage, real actions against the sandbox, verifyHealth), through
 * the local host: allow-list (forged and foreign targets ignored, nothing changed), dedupe (five
 * concurrent deliveries, and two orchestrations of one alert racing), maintenance window, breaker
 * open and reset over HTTP, hourly and daily caps, cooldown back-off, dry run, Resolved stopping
 * an open ladder, the storm of 100 alerts (at most one action), and a crash at every step of the
 * orchestration (the hub's crash simulation) with the guardrail counts right and the restart
 * applied once.
 */
import { describe, expect, it } from 'vitest';
import { resourceLocksFor } from '../../../src/runs/resource-lock.ts';
import { guardrailStatus, openGuardrailStore, type TargetGuardrailStatus } from '../../../src/remediation/guardrails.ts';
import { caId, KM_SUB, PSQL, SITE, useRemediationWorld, VERIFY } from '../../support/remediation-world.ts';

const STORM = caId('ca-user-service');
const COOLDOWN = caId('ca-auth-service');
const CAP = caId('ca-cart-service');
const MAINTENANCE = caId('ca-order-service');
const BREAKER = caId('ca-web-bff');
const restartRule = (alertRule: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: alertRule,
  match: { alertRule },
  ladder: [{ action: 'restart', verify: VERIFY }],
  ...extra,
});

const world = useRemediationWorld({
  remediation: {
    caps: { perTargetActionPerHour: 20, perTargetActionPerDay: 50, perEstatePerDay: 500 },
    breaker: { failures: 10, coolOffMinutes: 60 },
    cooldown: { minutes: 1, maxMinutes: 2, resetAfterHealthyMinutes: 5 },
    dedupeHours: 24,
    escalate: { notify: ['oncall-teams'] },
  },
  targets: (now) => ({
    [SITE]: {
      rules: [
        { name: 'km-health-check', match: { alertRule: 'km-health-check' }, ladder: [{ action: 'restart', verify: VERIFY }, { action: 'scale-out', params: { maxWorkers: 4 }, verify: VERIFY }] },
        restartRule('km-crash'),
      ],
    },
    [STORM]: { rules: [restartRule('xs-storm', { ladder: [{ action: 'restart', params: { revisions: 'latest' }, verify: VERIFY }] })] },
    [COOLDOWN]: { cooldown: { minutes: 10, maxMinutes: 40, resetAfterHealthyMinutes: 600 }, rules: [restartRule('xs-cooldown')] },
    [CAP]: { caps: { perTargetActionPerHour: 1, perTargetActionPerDay: 2, perEstatePerDay: 500 }, rules: [restartRule('xs-cap')] },
    [MAINTENANCE]: {
      maintenanceWindows: [{ name: 'release-train', start: new Date(now.getTime() - 3600_000).toISOString(), end: new Date(now.getTime() + 6 * 3600_000).toISOString() }],
      rules: [restartRule('xs-maintenance')],
    },
    [BREAKER]: { breaker: { failures: 2, coolOffMinutes: 'manual' }, rules: [restartRule('xs-breaker')] },
    [PSQL]: { mode: 'dry-run', rules: [{ name: 'km-db-dry', match: { alertRule: 'km-db-dry' }, ladder: [{ action: 'restart', verify: VERIFY }, { action: 'scale-up', params: { skus: [{ name: 'Standard_B4ms', tier: 'Burstable' }] }, verify: VERIFY }] }] },
  }),
});

async function run(rule: string, target: string, options: { alertId?: string } = {}): Promise<{ id: string; outcome: string | undefined; reason: string | undefined }> {
  const answer = await world.postAlert(world.alert({ rule, target, ...(options.alertId === undefined ? {} : { alertId: options.alertId }) }).body);
  expect(answer.status).toBe(202);
  const id = String(answer.json.id);
  await world.settle(id);
  const view = await world.view(id);
  return { id, outcome: view.outcome, reason: view.reason };
}

async function targetState(target: string, dryRun = false): Promise<TargetGuardrailStatus | undefined> {
  const status = await guardrailStatus(openGuardrailStore(world.config(), world.clients(), { readOnly: true }), target, { now: world.clock().now(), dryRun });
  return status.targets.find((entry) => entry.targetId.toLowerCase() === target.toLowerCase());
}

const restarts = async (): Promise<number> => (await world.mutations()).filter((line) => /\/restart$/i.test(line)).length;

describe('allow-list', () => {
  it('forged and foreign targets, other kinds and unmatched rules are acknowledged and ignored: nothing changes, no guardrail state', async () => {
    const foreign = [
      `/subscriptions/${KM_SUB}/resourceGroups/rg-elsewhere/providers/Microsoft.Web/sites/app-kilometers-api-k7x2`,
      '/subscriptions/00000000-0000-4000-8000-000000000bad/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/app-kilometers-api-k7x2',
      `/subscriptions/${KM_SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/someone-elses-app`,
      `${SITE}/slots/staging/../../../../sites/evil`,
    ];
    for (const target of foreign) {
      const result = await run('km-health-check', target);
      expect(result.outcome, target).toBe('ignored');
      expect(result.reason, target).toMatch(/not an estate target/);
    }
    const vault = `/subscriptions/${KM_SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.KeyVault/vaults/kv-kilometers-k7x2`;
    expect((await run('km-health-check', vault)).reason).toMatch(/not a kind remediation acts on/);
    expect((await run('no-such-rule', SITE)).reason).toMatch(/no rule of .* matches/);
    // Spelled in upper case, ARM's way of comparing: still our target (and the right rule acts below).
    expect(await world.mutations()).toEqual([]);
    expect(await targetState(SITE)).toBeUndefined();
  }, 60_000);
});

describe('dedupe', () => {
  it('five concurrent deliveries start one orchestration; two orchestrations of one alert racing act once', async () => {
    await world.health({ target: STORM, script: { mode: 'until-restart' } });
    const { body } = world.alert({ rule: 'xs-storm', target: STORM });
    const answers = await Promise.all(Array.from({ length: 5 }, () => world.postAlert(body)));
    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202]);
    expect(new Set(answers.map((answer) => answer.json.statusUrl)).size).toBe(1);
    expect(answers.filter((answer) => answer.json.duplicate === false)).toHaveLength(1);
    const id = String(answers[0]?.json.id);
    // The singleton race the durable docs admit: a second instance of the same alert under another id.
    const input = world.host().durable.getStatus(id, { showInput: true })?.input;
    world.host().durable.startNew('remediationOrchestrator', { instanceId: `${id}-race`, input });
    await world.settle(id);
    await world.settle(`${id}-race`);
    const outcomes = [(await world.view(id)).outcome, world.host().durable.getStatus(`${id}-race`)?.output as { outcome?: string } | undefined];
    const raced = outcomes[1] as { outcome?: string; reason?: string } | undefined;
    expect([outcomes[0], raced?.outcome].sort()).toEqual(['remediated', 'suppressed']);
    expect(await restarts()).toBe(1);
    await world.advance(3 * 60_000);
  }, 60_000);
});

describe('maintenance window', () => {
  it('no action while a declared window is open, with the window named', async () => {
    await world.health({ target: MAINTENANCE, script: { mode: 'until-restart' } });
    const result = await run('xs-maintenance', MAINTENANCE);
    expect(result.outcome).toBe('suppressed');
    expect(result.reason).toMatch(/maintenance.*release-train/);
    expect(await world.mutations()).toEqual([]);
  }, 60_000);
});

describe('circuit breaker', () => {
  it('opens after 2 failed remediations, acts no more, and closes by a person over HTTP', async () => {
    await world.health({ target: BREAKER, script: { mode: 'unhealthy' } });
    expect((await run('xs-breaker', BREAKER)).outcome).toBe('escalated');
    await world.advance(3 * 60_000);
    expect((await run('xs-breaker', BREAKER)).outcome).toBe('escalated');
    expect((await targetState(BREAKER))?.breaker).toMatchObject({ state: 'open', failures: 2, threshold: 2 });
    await world.advance(3 * 60_000);
    await world.sandbox().clearRequests();
    const open = await run('xs-breaker', BREAKER);
    expect(open.outcome).toBe('suppressed');
    expect(open.reason).toMatch(/breaker/);
    expect(await world.mutations()).toEqual([]);
    const reset = await world.api('POST', 'guardrails/ca-web-bff/reset', { by: 'alice' });
    expect(reset.status).toBe(200);
    expect((await targetState(BREAKER))?.breaker).toMatchObject({ state: 'closed', resetBy: 'alice (HTTP)' });
    expect((await run('xs-breaker', BREAKER)).outcome).toBe('escalated');
    expect(await restarts()).toBe(1);
  }, 90_000);
});

describe('caps', () => {
  it('one restart per hour and two per day on the target: the rest are suppressed with the cap that held', async () => {
    const alert = async (): Promise<{ outcome: string | undefined; reason: string | undefined }> => {
      await world.health({ target: CAP, script: { mode: 'until-restart' } });
      return run('xs-cap', CAP);
    };
    expect((await alert()).outcome).toBe('remediated');
    await world.advance(3 * 60_000);
    const hourly = await alert();
    expect(hourly.outcome).toBe('suppressed');
    expect(hourly.reason).toMatch(/cap.*hour/i);
    await world.advance(61 * 60_000);
    expect((await alert()).outcome).toBe('remediated');
    await world.advance(61 * 60_000);
    const daily = await alert();
    expect(daily.outcome).toBe('suppressed');
    expect(daily.reason).toMatch(/cap.*(24 h|day)/i);
    expect((await targetState(CAP))?.actions.find((entry) => entry.action === 'restart')?.lastDay).toBe(2);
    expect(await restarts()).toBe(2);
  }, 90_000);
});

describe('cooldown', () => {
  it('backs off exponentially: 10 min after the first restart, 20 after the second', async () => {
    const alert = async (): Promise<{ outcome: string | undefined; reason: string | undefined }> => {
      await world.health({ target: COOLDOWN, script: { mode: 'until-restart' } });
      return run('xs-cooldown', COOLDOWN);
    };
    const start = world.clock().now().getTime();
    const at = async (minutes: number): Promise<void> => {
      const ahead = start + minutes * 60_000 - world.clock().now().getTime();
      if (ahead > 0) await world.advance(ahead);
    };
    expect((await alert()).outcome).toBe('remediated');
    await at(6);
    const first = await alert();
    expect(first.outcome).toBe('suppressed');
    expect(first.reason).toMatch(/cooldown/);
    await at(13);
    expect((await alert()).outcome).toBe('remediated');
    // 13 + 10 would have passed the first cooldown; the second is 20 minutes.
    await at(26);
    const second = await alert();
    expect(second.outcome).toBe('suppressed');
    expect(second.reason).toMatch(/cooldown/);
    expect((await targetState(COOLDOWN))?.actions.find((entry) => entry.action === 'restart')?.backoffLevel).toBe(2);
    await at(36);
    expect((await alert()).outcome).toBe('remediated');
    expect(await restarts()).toBe(3);
  }, 90_000);
});

describe('dry run', () => {
  it('plans the whole ladder, changes nothing, keeps the real counters untouched and says what would have been done', async () => {
    const result = await run('km-db-dry', PSQL);
    expect(result.outcome).toBe('planned');
    const view = world.view.bind(world);
    expect((await view(result.id)).steps.map((step) => step.result?.outcome)).toEqual(['planned', 'planned']);
    expect(await world.mutations()).toEqual([]);
    expect(await targetState(PSQL)).toBeUndefined();
    expect((await targetState(PSQL, true))?.actions.map((entry) => entry.action)).toEqual(expect.arrayContaining(['restart']));
    const hooks = JSON.stringify(await world.sandbox().webhooks('oncall-teams'));
    expect(hooks).toMatch(/would have done: restart .*psql-kilometers-prod-k7x2.* → .*Standard_B4ms/);
  }, 60_000);
});

describe('Resolved', () => {
  it('stops the open ladder before its next rung and releases the lock', async () => {
    await world.health({ target: SITE, script: { mode: 'unhealthy' } });
    const { body, alertId } = world.alert({ rule: 'km-health-check' });
    const id = String((await world.postAlert(body)).json.id);
    await world.settle(id, (status) => status.phase === 'verifying');
    const resolved = await world.postAlert(world.alert({ alertId, condition: 'Resolved' }).body);
    expect(resolved.json).toMatchObject({ id, closed: 'running' });
    await world.settle(id);
    const view = await world.view(id);
    expect(view.outcome).toBe('resolved');
    expect(view.steps.map((step) => step.action)).toEqual(['restart']);
    expect(await world.mutations()).toEqual([expect.stringMatching(/\/restart$/)]);
    const { provider } = await resourceLocksFor(world.config(), world.clients());
    await (await provider.acquire(SITE, { owner: 'run-after-resolved' })).release();
    // Its in-progress claim ended with it: the target is not blocked for the next alert.
    expect((await targetState(SITE))?.inProgress).toBeUndefined();
    await world.advance(3 * 60_000);
  }, 60_000);
});

describe('a restart storm is impossible', () => {
  it('100 alerts with different ids for one target within a minute: one action, 99 suppressed with the reason', async () => {
    await world.advance(10 * 60_000);
    await world.health({ target: STORM, script: { mode: 'until-restart' } });
    const ids: string[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => world.postAlert(world.alert({ rule: 'xs-storm', target: STORM }).body)));
      ids.push(...answers.map((answer) => String(answer.json.id)));
    }
    expect(new Set(ids).size).toBe(100);
    for (const id of ids) await world.settle(id);
    const views = await Promise.all(ids.map((id) => world.view(id)));
    const outcomes = views.map((view) => view.outcome);
    expect(outcomes.filter((outcome) => outcome === 'remediated')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'suppressed')).toHaveLength(99);
    expect(views.filter((view) => view.outcome === 'suppressed').every((view) => /in-progress|cooldown|lock|cap/.test(view.reason ?? ''))).toBe(true);
    expect(await restarts()).toBe(1);
  }, 180_000);
});

describe('a crash at every orchestration step', () => {
  it('still remediates, restarts once per alert and counts each restart once', async () => {
    const once = async (crashAt?: number): Promise<{ id: string; points: number }> => {
      await world.advance(5 * 60_000);
      await world.health({ target: SITE, script: { mode: 'until-restart' } });
      await world.sandbox().clearRequests();
      const hub = world.host().durable;
      const start = hub.steps;
      if (crashAt !== undefined) hub.setCrashPlan((crash) => crash.step === start + crashAt);
      const id = String((await world.postAlert(world.alert({ rule: 'km-crash' }).body)).json.id);
      await world.settle(id);
      hub.setCrashPlan(undefined);
      return { id, points: hub.steps - start };
    };
    const before = (await targetState(SITE))?.actions.find((entry) => entry.action === 'restart')?.lastDay ?? 0;
    const clean = await once();
    expect((await world.view(clean.id)).outcome).toBe('remediated');
    expect(clean.points).toBeGreaterThan(10);
    const limit = Math.min(clean.points, Number(process.env.CRASH_POINTS ?? clean.points));
    for (let point = 0; point < limit; point++) {
      const crashes = world.host().durable.crashes.length;
      const { id } = await once(point);
      const where = `crash at point ${String(point)} (${world.host().durable.crashes.at(-1)?.kind ?? ''} ${world.host().durable.crashes.at(-1)?.name ?? ''})`;
      expect(world.host().durable.crashes.length, where).toBe(crashes + 1);
      const view = await world.view(id);
      expect(view.outcome, where).toBe('remediated');
      expect(view.steps.map((step) => step.commit), where).toEqual(['succeeded']);
      expect(await restarts(), where).toBe(1);
      const restart = (await targetState(SITE))?.actions.find((entry) => entry.action === 'restart');
      expect(restart?.lastDay, where).toBe(before + point + 2);
      expect((await world.recordOf(id)).targets[0]?.actions.filter((action) => action.action === 'restart').map((action) => action.outcome), where).toEqual(['applied']);
    }
  }, 600_000);
});
