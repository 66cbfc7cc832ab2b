/**
 * The guardrails against Azurite's Table service, through the client layer (sandbox credential
 * and CA), each concurrent writer with its own client set as separate app instances would have:
 * the restart storm (100 alerts, one action), dedupe of 5 concurrent deliveries, no lost counts
 * with concurrent writers, Resolved, kill switch, remediation off, maintenance window, breaker
 * open/escalate once/reset/cool-off, caps, cooldown back-off and its reset, not-applied giving
 * the reservation back, dry-run state kept apart, and a read-only store that never writes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import {
  commitGuardrails,
  evaluateGuardrails,
  guardrailStatus,
  GuardrailStoreError,
  openGuardrailStore,
  resetGuardrails,
  type GuardrailEvaluation,
  type GuardrailInput,
  type GuardrailStore,
} from '../../../src/remediation/guardrails.ts';
import { matchRemediation, type RemediationTarget, type ResolvedRule } from '../../../src/remediation/rules.ts';
import { alert, SITE, sandboxRemediationEstate } from '../../support/remediation-fixtures.ts';
import { useSandbox } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: [], postgres: false });
const opened: AzureClients[] = [];
afterAll(async () => {
  await Promise.all(opened.map((clients) => clients.close()));
});

let counter = 0;
/** A fresh estate and site name per test, so tests share Azurite but no state. */
function estate(change: (text: string) => string = (text) => text): { config: EstateConfig; site: string } {
  counter += 1;
  const name = `app-gr-${String(process.pid)}-${String(counter)}`;
  const config = sandboxRemediationEstate(sandbox(), (text) => change(text.replaceAll('app-kilometers-api-k7x2', name).replace('estate: kilometers', `estate: gr-${String(counter)}`)));
  return { config, site: SITE.replace('app-kilometers-api-k7x2', name) };
}

function store(config: EstateConfig, env: Record<string, string | undefined> = {}, readOnly = false): GuardrailStore {
  const clients = createAzureClients(config.azure);
  opened.push(clients);
  return openGuardrailStore(config, clients, { env, readOnly });
}

function matched(config: EstateConfig, site: string, options: Parameters<typeof alert>[0] = {}): { target: RemediationTarget; rule: ResolvedRule; triggerKey: string; monitorCondition: 'Fired' | 'Resolved' } {
  const parsed = alert({ targets: [site], ...options });
  const match = matchRemediation(config, config.targets, parsed);
  if (match.decision !== 'remediate') throw new Error(`expected a match, found ${match.decision}: ${match.reason}`);
  return { target: match.target, rule: match.rule, triggerKey: parsed.idempotencyKey, monitorCondition: parsed.monitorCondition };
}

const T0 = new Date('2026-12-02T12:00:00Z');
const minutes = (n: number): Date => new Date(T0.getTime() + n * 60_000);

function input(config: EstateConfig, site: string, id: string, now: Date, extra: Partial<GuardrailInput> & Parameters<typeof alert>[0] = {}): GuardrailInput {
  const m = matched(config, site, { id, ...extra });
  return { estate: config.estate, target: m.target, rule: m.rule, action: m.rule.ladder[extra.rung ?? 0]?.action ?? 'restart', triggerKey: m.triggerKey, monitorCondition: m.monitorCondition, now, dryRun: false, ...extra };
}

const blocking = (evaluation: GuardrailEvaluation): string | undefined => evaluation.decisions.find((decision) => decision.verdict === 'block')?.guardrail;
const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

describe('guardrails against Azurite', () => {
  it('a restart storm is impossible: 100 alerts with different ids within a minute, across 4 instances, act once', async () => {
    const { config, site } = estate();
    const stores = Array.from({ length: 4 }, () => store(config));
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, index) => evaluateGuardrails(stores[index % 4] as GuardrailStore, input(config, site, uuid(index + 1), new Date(T0.getTime() + index * 500)))),
    );
    const allowed = results.filter((result) => result.allowed);
    expect(allowed).toHaveLength(1);
    const suppressed = results.filter((result) => !result.allowed);
    expect(suppressed).toHaveLength(99);
    for (const result of suppressed) {
      expect(['in-progress', 'cooldown', 'cap']).toContain(blocking(result));
      expect(result.reason).not.toBe('');
    }
    const status = await guardrailStatus(stores[0] as GuardrailStore, site, { now: minutes(1) });
    const target = status.targets[0];
    expect(target?.actions).toEqual([expect.objectContaining({ action: 'restart', lastHour: 1, lastDay: 1, backoffLevel: 1 })]);
    // Every suppressed alert is recorded as such, with its reason.
    expect(target?.recent).toHaveLength(100);
    expect(target?.recent?.filter((entry) => entry.suppressed)).toHaveLength(99);
    expect(target?.recent?.filter((entry) => entry.suppressed).every((entry) => entry.reason !== '')).toBe(true);
    expect(status.estateActionsLastDay).toBe(1);
  }, 120_000);

  it('dedupe: 5 concurrent deliveries of one alert reserve once; the same owner retrying gets its reservation back', async () => {
    const { config, site } = estate();
    const stores = Array.from({ length: 5 }, () => store(config));
    const results = await Promise.all(stores.map((s) => evaluateGuardrails(s, input(config, site, uuid(7), T0))));
    expect(results.filter((result) => result.allowed)).toHaveLength(1);
    expect(results.filter((result) => blocking(result) === 'dedupe')).toHaveLength(4);
    const { config: other, site: otherSite } = estate();
    const s = store(other);
    const first = await evaluateGuardrails(s, input(other, otherSite, uuid(8), T0, { owner: 'instance-1' }));
    const retry = await evaluateGuardrails(s, input(other, otherSite, uuid(8), T0, { owner: 'instance-1' }));
    const stranger = await evaluateGuardrails(s, input(other, otherSite, uuid(8), T0, { owner: 'instance-2' }));
    expect(first.allowed && retry.allowed).toBe(true);
    expect(retry.reservation?.id).toBe(first.reservation?.id);
    expect(blocking(stranger)).toBe('dedupe');
    // The retry counted nothing twice.
    const status = await guardrailStatus(s, otherSite, { now: T0 });
    expect(status.targets[0]?.actions[0]?.lastDay).toBe(1);
  }, 60_000);

  it('a per-rung reservation key (<instance id>:<rung>) makes retries idempotent and keeps other instances out', async () => {
    const { config, site } = estate();
    const s = store(config);
    const first = await evaluateGuardrails(s, input(config, site, uuid(9), T0, { reservationKey: 'inst-1:0' }));
    const again = await evaluateGuardrails(s, input(config, site, uuid(9), T0, { reservationKey: 'inst-1:0' }));
    expect(first.allowed && again.allowed).toBe(true);
    expect(again.reservation?.id).toBe(first.reservation?.id);
    const racing = await evaluateGuardrails(s, input(config, site, uuid(9), T0, { reservationKey: 'inst-2:0' }));
    expect(blocking(racing)).toBe('dedupe');
    if (first.reservation === undefined) throw new Error('no reservation');
    await commitGuardrails(s, first.reservation, 'failed', { now: T0 });
    const next = await evaluateGuardrails(s, input(config, site, uuid(9), minutes(6), { rung: 1, reservationKey: 'inst-1:1' }));
    expect(next.allowed).toBe(true);
    expect(next.reservation?.action).toBe('swap-back');
  }, 60_000);

  it('loses no count with concurrent writers: 12 targets at once against one estate counter, capped at 5', async () => {
    const sites = Array.from({ length: 12 }, (_, index) => `app-many-${String(process.pid)}-${String(index)}`);
    const extraTargets = sites.map((name) => `  - id: ${SITE.replace('app-kilometers-api-k7x2', name)}\n    remediation:\n      cooldown: { minutes: 10 }\n      rules:\n        - name: api-down\n          match: { alertRule: Kilometers API down }\n          ladder:\n            - action: restart\n              verify: { consecutive: 1, intervalSeconds: 10, deadlineSeconds: 60 }\n`).join('');
    const { config } = estate((text) => `${text}${extraTargets}`.replace('perEstatePerDay: 5', 'perEstatePerDay: 20'));
    const stores = sites.map(() => store(config));
    const results = await Promise.all(sites.map((name, index) => evaluateGuardrails(stores[index] as GuardrailStore, input(config, SITE.replace('app-kilometers-api-k7x2', name), uuid(100 + index), T0))));
    expect(results.every((result) => result.allowed)).toBe(true);
    expect((await guardrailStatus(stores[0] as GuardrailStore, undefined, { now: T0 })).estateActionsLastDay).toBe(12);

    const capped = sites.map((name) => `${name}-c`);
    const cappedTargets = capped.map((name) => `  - id: ${SITE.replace('app-kilometers-api-k7x2', name)}\n    remediation:\n      cooldown: { minutes: 10 }\n      rules:\n        - name: api-down\n          match: { alertRule: Kilometers API down }\n          ladder:\n            - action: restart\n              verify: { consecutive: 1, intervalSeconds: 10, deadlineSeconds: 60 }\n`).join('');
    const { config: small } = estate((text) => `${text}${cappedTargets}`);
    const smallStores = capped.map(() => store(small));
    const outcomes = await Promise.all(capped.map((name, index) => evaluateGuardrails(smallStores[index] as GuardrailStore, input(small, SITE.replace('app-kilometers-api-k7x2', name), uuid(200 + index), T0))));
    expect(outcomes.filter((result) => result.allowed)).toHaveLength(5);
    const refused = outcomes.filter((result) => !result.allowed);
    expect(refused.every((result) => blocking(result) === 'cap' && result.reason.startsWith('estate cap'))).toBe(true);
    const status = await guardrailStatus(smallStores[0] as GuardrailStore, undefined, { now: T0 });
    expect(status.estateActionsLastDay).toBe(5);
    // The targets refused by the estate cap got their reservation back: nothing counted, no cooldown.
    const counted = status.targets.filter((target) => target.targetId.includes('-c') && (target.actions[0]?.lastDay ?? 0) > 0);
    expect(counted).toHaveLength(5);
  }, 120_000);

  it('Resolved, the kill switch and remediation off stop it, and write nothing', async () => {
    const { config, site } = estate();
    const resolved = await evaluateGuardrails(store(config), input(config, site, uuid(1), T0, { condition: 'Resolved' }));
    expect(blocking(resolved)).toBe('fired');
    const killed = await evaluateGuardrails(store(config, { OPS_AUTOPILOT_KILL_SWITCH: 'on' }), input(config, site, uuid(2), T0));
    expect(blocking(killed)).toBe('kill-switch');
    const typo = await evaluateGuardrails(store(config, { OPS_AUTOPILOT_KILL_SWITCH: 'of' }), input(config, site, uuid(3), T0));
    expect(typo.reason).toContain('expected on or off');
    const { config: off, site: offSite } = estate((text) => text.replace('    remediation:\n      cooldown:', '    remediation:\n      mode: off\n      cooldown:'));
    const offResult = await evaluateGuardrails(store(off), input(off, offSite, uuid(4), T0));
    expect(blocking(offResult)).toBe('target-off');
    expect(offResult.decisions.map((decision) => decision.guardrail)).toEqual(['kill-switch', 'target-off', 'allow-list', 'fired', 'dedupe', 'maintenance', 'breaker', 'cap', 'cooldown', 'in-progress', 'lock', 'dry-run']);
    const status = await guardrailStatus(store(config), site, { now: T0 });
    expect(status.targets).toEqual([]);
  }, 60_000);

  it('a maintenance window stops it while open', async () => {
    const { config, site } = estate((text) => text.replace('remediation:\n  breaker:', 'remediation:\n  maintenanceWindows:\n    - { name: release train, weekly: { days: [wed], from: "11:30", to: "12:30" } }\n  breaker:'));
    const s = store(config);
    const during = await evaluateGuardrails(s, input(config, site, uuid(1), T0));
    expect(blocking(during)).toBe('maintenance');
    expect(during.reason).toContain('release train');
    const after = await evaluateGuardrails(s, input(config, site, uuid(2), minutes(31)));
    expect(after.allowed).toBe(true);
  }, 60_000);

  it('the breaker opens after N failed remediations, escalates once, blocks, and closes by reset or cool-off', async () => {
    const { config, site } = estate();
    const s = store(config);
    const failLadder = async (id: string, at: number): Promise<boolean> => {
      let opened = false;
      for (const rung of [0, 1]) {
        const evaluation = await evaluateGuardrails(s, input(config, site, id, minutes(at + rung), { rung }));
        expect(evaluation.allowed).toBe(true);
        if (evaluation.reservation === undefined) throw new Error('no reservation');
        const commit = await commitGuardrails(s, evaluation.reservation, rung === 0 ? 'failed' : 'undone', { now: minutes(at + rung) });
        opened ||= commit.breakerOpened;
        // A retried commit changes nothing.
        expect((await commitGuardrails(s, evaluation.reservation, 'failed', { now: minutes(at + rung) })).committed).toBe(false);
      }
      return opened;
    };
    expect(await failLadder(uuid(1), 0)).toBe(false);
    expect(await failLadder(uuid(2), 180)).toBe(true);
    const blocked = await evaluateGuardrails(s, input(config, site, uuid(3), minutes(200)));
    expect(blocking(blocked)).toBe('breaker');
    expect(blocked.reason).toContain('circuit breaker open');
    const reset = await resetGuardrails(s, site, 'alice@example.com', { now: minutes(201) });
    expect(reset).toMatchObject({ found: true, breakerWas: 'open', by: 'alice@example.com' });
    expect((await evaluateGuardrails(s, input(config, site, uuid(4), minutes(300)))).allowed).toBe(true);
    // Open it again, then let the 60-minute cool-off close it.
    const { config: c2, site: s2 } = estate();
    const st2 = store(c2);
    for (const [id, at] of [[uuid(5), 0], [uuid(6), 180]] as const) {
      for (const rung of [0, 1]) {
        const evaluation = await evaluateGuardrails(st2, input(c2, s2, id, minutes(at + rung), { rung }));
        if (evaluation.reservation === undefined) throw new Error(`not allowed: ${evaluation.reason}`);
        await commitGuardrails(st2, evaluation.reservation, 'failed', { now: minutes(at + rung) });
      }
    }
    expect(blocking(await evaluateGuardrails(st2, input(c2, s2, uuid(7), minutes(200))))).toBe('breaker');
    const cooled = await evaluateGuardrails(st2, input(c2, s2, uuid(8), minutes(181 + 61)));
    expect(cooled.allowed).toBe(true);
    expect(cooled.decisions.find((decision) => decision.guardrail === 'breaker')?.reason).toContain('cool-off');
  }, 60_000);

  it('caps: one restart an hour and three a day per target; cooldown doubles and resets after a healthy period', async () => {
    const { config, site } = estate();
    const s = store(config);
    const act = async (id: number, at: number): Promise<GuardrailEvaluation> => {
      const evaluation = await evaluateGuardrails(s, input(config, site, uuid(id), minutes(at)));
      if (evaluation.reservation !== undefined) await commitGuardrails(s, evaluation.reservation, 'succeeded', { now: minutes(at) });
      return evaluation;
    };
    expect((await act(1, 0)).allowed).toBe(true);
    // The cap is judged before the cooldown (the order): one restart an hour.
    expect(blocking(await act(2, 5))).toBe('cap');
    expect(blocking(await act(3, 30))).toBe('cap');
    expect((await act(4, 61)).allowed).toBe(true);
    expect((await act(5, 122)).allowed).toBe(true);
    const daily = await act(6, 183);
    expect(blocking(daily)).toBe('cap');
    expect(daily.reason).toContain('24 hours');

    const { config: fast, site: fastSite } = estate((text) => text.replace('perTargetActionPerHour: 1, perTargetActionPerDay: 3', 'perTargetActionPerHour: 10, perTargetActionPerDay: 20'));
    const f = store(fast);
    const run = async (id: number, at: number): Promise<GuardrailEvaluation> => {
      const evaluation = await evaluateGuardrails(f, input(fast, fastSite, uuid(id), minutes(at)));
      if (evaluation.reservation !== undefined) await commitGuardrails(f, evaluation.reservation, 'succeeded', { now: minutes(at) });
      return evaluation;
    };
    const cooldownOf = (evaluation: GuardrailEvaluation): string | undefined => evaluation.decisions.find((decision) => decision.guardrail === 'cooldown')?.reason;
    expect(cooldownOf(await run(1, 0))).toContain(minutes(10).toISOString());
    expect(blocking(await run(2, 9))).toBe('cooldown');
    expect(cooldownOf(await run(3, 11))).toContain(minutes(31).toISOString());
    expect(cooldownOf(await run(4, 32))).toContain(minutes(72).toISOString());
    expect(cooldownOf(await run(5, 73))).toContain(minutes(73 + 80).toISOString()); // capped at maxMinutes 80
    // Healthy for 60 minutes after the cooldown ran out: back to 10.
    const healed = await run(6, 73 + 80 + 61);
    expect(cooldownOf(healed)).toContain('reset after a healthy period');
    expect(cooldownOf(healed)).toContain(minutes(73 + 80 + 61 + 10).toISOString());
  }, 60_000);

  it('not-applied gives the reservation back: counts, cooldown and claim', async () => {
    const { config, site } = estate();
    const s = store(config);
    const first = await evaluateGuardrails(s, input(config, site, uuid(1), T0));
    if (first.reservation === undefined) throw new Error('not allowed');
    expect(blocking(await evaluateGuardrails(s, input(config, site, uuid(2), T0)))).toBe('cap');
    await commitGuardrails(s, first.reservation, 'not-applied', { now: T0 });
    const status = await guardrailStatus(s, site, { now: T0 });
    expect(status.targets[0]?.actions[0]).toMatchObject({ lastDay: 0, backoffLevel: 0 });
    expect(status.targets[0]?.inProgress).toBeUndefined();
    expect(status.estateActionsLastDay).toBe(0);
    expect((await evaluateGuardrails(s, input(config, site, uuid(3), T0))).allowed).toBe(true);
  }, 60_000);

  it('dry-run keeps its own state: the storm is suppressed there too, the real counters stay untouched', async () => {
    const { config, site } = estate();
    const s = store(config);
    const results = await Promise.all(Array.from({ length: 10 }, (_, index) => evaluateGuardrails(s, { ...input(config, site, uuid(index + 1), T0), dryRun: true })));
    expect(results.filter((result) => result.allowed)).toHaveLength(1);
    expect(results.find((result) => result.allowed)?.dryRun).toBe(true);
    expect(results.find((result) => result.allowed)?.decisions.at(-1)?.reason).toContain('dry-run');
    expect((await guardrailStatus(s, site, { now: T0 })).targets).toEqual([]);
    expect((await guardrailStatus(s, site, { now: T0, dryRun: true })).targets[0]?.actions[0]?.lastDay).toBe(1);
  }, 60_000);

  it('a read-only store judges as of now and never writes', async () => {
    const { config, site } = estate();
    const writer = store(config);
    const first = await evaluateGuardrails(writer, input(config, site, uuid(1), T0));
    expect(first.allowed).toBe(true);
    const reader = store(config, {}, true);
    const before = await guardrailStatus(writer, site, { now: T0 });
    const peek = await evaluateGuardrails(reader, input(config, site, uuid(2), minutes(1)));
    expect(peek.allowed).toBe(false);
    expect(blocking(peek)).toBe('cap');
    expect(peek.reservation).toBeUndefined();
    const fresh = await evaluateGuardrails(reader, input(config, site, uuid(3), minutes(600)));
    expect(fresh.allowed).toBe(true);
    expect(fresh.reservation).toBeUndefined();
    expect(await guardrailStatus(writer, site, { now: T0 })).toEqual(before);
    if (first.reservation === undefined) throw new Error('no reservation');
    await expect(commitGuardrails(reader, first.reservation, 'succeeded')).rejects.toThrow(GuardrailStoreError);
    await expect(resetGuardrails(reader, site, 'bob')).rejects.toThrow(GuardrailStoreError);
  }, 60_000);
});
