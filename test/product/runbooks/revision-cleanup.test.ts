/**
 * The `revision-cleanup` runbook against the sandbox (xshopai world) through the real client
 * layer: keep N, the traps (traffic, latest, latest ready, too young), Single revision mode,
 * a read-only plan proven by the request log, apply refusing changed state, and idempotence.
 * Also the sandbox's revision activate/deactivate/restart routes as the SDK calls them.
 *
 * ca-user-service (Multiple mode) has active revisions v1-0-12 (2 days old, latest, 100% via
 * `latestRevision`), 11 (7 d), 10 (12 d), 9 (17 d), 8 (22 d), 7 (27 d), 6 (32 d) and 3 (47 d).
 * Tests that change sandbox state restore it, and the ones that deactivate for good run last.
 */
import { describe, expect, it } from 'vitest';
import { isRestError } from '@azure/core-rest-pipeline';
import type { EstateConfig } from '../../../src/config/schema.ts';
import {
  planRevisionCleanup,
  revisionCleanupRunbook,
  RevisionStateChangedError,
  type RevisionCleanupPolicy,
} from '../../../src/runbooks/revision-cleanup.ts';
import { readContainerAppInventory } from '../../../src/runbooks/shared/container-apps.ts';
import type { TargetConfig } from '../../../src/config/schema.ts';
import type { TargetPlan } from '../../../src/runbooks/runbook.ts';
import { ContainerAppsProvider, defaultProviders } from '../../../sandbox/providers/index.ts';
import { mutatingRequests, providerOf, runbookContextFor, type TestRunbookContext } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SUBSCRIPTION = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const RG = 'rg-xshopai-prod';
const USER_SERVICE = 'ca-user-service';
const rev = (suffix: string): string => `${USER_SERVICE}--${suffix}`;
const appId = (name: string): string => `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/${name}`;

const providers = defaultProviders();
const containerApps = providerOf(providers, ContainerAppsProvider);

describe('revision-cleanup runbook', () => {
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml'], postgres: false, azurite: false, providers });

  async function withContext<T>(work: (ctx: TestRunbookContext) => Promise<T>): Promise<T> {
    const ctx = await runbookContextFor(sandbox(), 'xshopai');
    try {
      return await work(ctx);
    } finally {
      await ctx.close();
    }
  }

  function targetOf(config: EstateConfig, name: string): TargetConfig {
    const target = config.targets.find((candidate) => candidate.id.endsWith(`/containerApps/${name}`));
    if (target === undefined) throw new Error(`xshopai config: expected a target for ${name}, found none`);
    return target;
  }

  async function planFor(name: string, policy?: Partial<RevisionCleanupPolicy>): Promise<{ plan: TargetPlan; policy: RevisionCleanupPolicy }> {
    return withContext(async ({ context, config }) => {
      const target = targetOf(config, name);
      const configured = revisionCleanupRunbook.policyOf(target);
      if (configured === undefined) throw new Error(`${name}: expected a revision-cleanup policy in the example config, found none`);
      const effective = { ...configured, ...policy };
      return { plan: await revisionCleanupRunbook.plan(context, target, effective), policy: effective };
    });
  }

  const planned = (plan: TargetPlan): string[] => plan.actions.map((action) => String(action.details.revision)).sort();
  const keptReason = (plan: TargetPlan, name: string): string => plan.kept.find((item) => item.resource === name)?.reason ?? '(not kept)';

  function app(): NonNullable<ReturnType<ContainerAppsProvider['getApp']>> {
    const found = containerApps.getApp(SUBSCRIPTION, RG, USER_SERVICE);
    if (found === undefined) throw new Error('sandbox: ca-user-service missing');
    return found;
  }

  it('keeps the newest 5 active revisions and plans deactivation of the older ones, with zero mutating calls', async () => {
    await sandbox().clearRequests();
    const { plan } = await planFor(USER_SERVICE);
    const log = await sandbox().requests();
    expect(log.length).toBeGreaterThan(0);
    expect(mutatingRequests(log)).toEqual([]);

    expect(planned(plan)).toEqual([rev('v1-0-3'), rev('v1-0-6'), rev('v1-0-7')].sort());
    for (const action of plan.actions) {
      expect(action).toMatchObject({ kind: 'deactivate-revision', destructive: true, id: `deactivate-revision:${String(action.details.revision)}` });
      expect(action.resource).toBe(`${appId(USER_SERVICE)}/revisions/${String(action.details.revision)}`);
    }
    expect(plan.kept.map((item) => item.resource)).toEqual(['v1-0-12', 'v1-0-11', 'v1-0-10', 'v1-0-9', 'v1-0-8'].map(rev));
    // The latest revision is kept for every reason that applies, not only the count.
    expect(keptReason(plan, rev('v1-0-12'))).toContain('among the newest 5');
    expect(keptReason(plan, rev('v1-0-12'))).toContain('is the latest revision');
    expect(keptReason(plan, rev('v1-0-12'))).toContain('is the latest ready revision');
    expect(keptReason(plan, rev('v1-0-12'))).toContain('carries 100% of ingress traffic');
    expect(plan.checks).toEqual([
      expect.objectContaining({ status: 'ok', code: 'revision-cleanup.active-revisions', found: '8 active (Multiple revision mode); 5 after cleanup' }),
    ]);
    // Inactive revisions are neither planned nor kept.
    expect(plan.kept.some((item) => item.resource === rev('v1-0-1'))).toBe(false);
  });

  it('trap: an old revision that carries traffic survives', async () => {
    containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [
      { latestRevision: true, weight: 90 },
      { revisionName: rev('v1-0-3'), weight: 10, label: 'legacy' },
    ]);
    try {
      const { plan } = await planFor(USER_SERVICE);
      expect(planned(plan)).toEqual([rev('v1-0-6'), rev('v1-0-7')].sort());
      expect(keptReason(plan, rev('v1-0-3'))).toBe("carries 10% of ingress traffic; is addressed by traffic label 'legacy'");
      expect(keptReason(plan, rev('v1-0-12'))).toContain('carries 90% of ingress traffic');
    } finally {
      containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [{ latestRevision: true, weight: 100 }]);
    }
  });

  it('trap: revisions younger than minAgeHours survive even beyond keep', async () => {
    const { plan } = await planFor(USER_SERVICE, { keep: 1, minAgeHours: 20 * 24 });
    expect(planned(plan)).toEqual([rev('v1-0-3'), rev('v1-0-6'), rev('v1-0-7'), rev('v1-0-8')].sort());
    for (const young of ['v1-0-11', 'v1-0-10', 'v1-0-9']) {
      expect(keptReason(plan, rev(young))).toMatch(/^created \d+\.\d h ago, younger than the minimum age of 480 h$/);
    }
    expect(keptReason(plan, rev('v1-0-12'))).toContain('among the newest 1');
  });

  it('trap: the latest ready revision survives when the latest one is not ready', async () => {
    const latest = app().revisions.find((revision) => revision.name === rev('v1-0-12'));
    if (latest === undefined) throw new Error('sandbox: v1-0-12 missing');
    latest.healthy = false;
    // Traffic follows the ready revision, as an operator would have pinned it.
    containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [{ revisionName: rev('v1-0-11'), weight: 100 }]);
    try {
      const { plan } = await planFor(USER_SERVICE, { keep: 1, minAgeHours: 0 });
      expect(keptReason(plan, rev('v1-0-12'))).toBe('among the newest 1 active revision(s); is the latest revision');
      expect(keptReason(plan, rev('v1-0-11'))).toBe('carries 100% of ingress traffic; is the latest ready revision');
      expect(planned(plan)).toEqual(['v1-0-10', 'v1-0-9', 'v1-0-8', 'v1-0-7', 'v1-0-6', 'v1-0-3'].map(rev).sort());
    } finally {
      latest.healthy = true;
      containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [{ latestRevision: true, weight: 100 }]);
    }
  });

  it('trap: the latest revision survives even when nothing else protects it (rule on an inventory entry)', async () => {
    const entry = await withContext(({ clients }) => readContainerAppInventory(clients, appId(USER_SERVICE)));
    // Creation times that disagree with latestRevisionName (clock skew, a re-created revision): keep still cannot take the latest.
    const skewed = {
      ...entry,
      traffic: [{ revisionName: rev('v1-0-11'), latestRevision: false, weight: 100 }],
      revisions: entry.revisions.map((revision) =>
        revision.name === rev('v1-0-12') ? { ...revision, createdTime: '2000-01-01T00:00:00.000Z', trafficWeight: 0 } : revision,
      ),
    };
    const plan = planRevisionCleanup(skewed, { keep: 1, minAgeHours: 0 }, new Date());
    expect(planned(plan)).not.toContain(rev('v1-0-12'));
    expect(keptReason(plan, rev('v1-0-12'))).toBe('is the latest revision; is the latest ready revision');
  });

  it('Single revision mode: nothing is planned; the one active revision is kept', async () => {
    const { plan } = await planFor('ca-auth-service', { keep: 1, minAgeHours: 0 });
    expect(plan.actions).toEqual([]);
    expect(plan.kept.map((item) => item.resource)).toEqual(['ca-auth-service--v1-0-40']);
    expect(keptReason(plan, 'ca-auth-service--v1-0-40')).toContain('is the latest revision');

    // A second active revision in Single mode (a deployment mid-way) is left to the platform.
    const auth = containerApps.getApp(SUBSCRIPTION, RG, 'ca-auth-service');
    const older = auth?.revisions.find((revision) => revision.name === 'ca-auth-service--v1-0-39');
    if (older === undefined) throw new Error('sandbox: ca-auth-service--v1-0-39 missing');
    older.active = true;
    try {
      const second = await planFor('ca-auth-service', { keep: 1, minAgeHours: 0 });
      expect(second.plan.actions).toEqual([]);
      expect(keptReason(second.plan, 'ca-auth-service--v1-0-39')).toContain('Single revision mode');
    } finally {
      older.active = false;
    }
  });

  it('apply refuses when the revision gained traffic after the plan, and changes nothing', async () => {
    const { plan, policy } = await planFor(USER_SERVICE);
    const action = plan.actions.find((candidate) => candidate.details.revision === rev('v1-0-7'));
    if (action === undefined) throw new Error('expected v1-0-7 in the plan');
    containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [
      { latestRevision: true, weight: 95 },
      { revisionName: rev('v1-0-7'), weight: 5 },
    ]);
    try {
      await sandbox().clearRequests();
      const error = await withContext(({ context, config }) =>
        revisionCleanupRunbook.apply(context, targetOf(config, USER_SERVICE), policy, action).then(
          () => undefined,
          (failure: unknown) => failure,
        ),
      );
      expect(error).toBeInstanceOf(RevisionStateChangedError);
      expect((error as Error).message).toContain('found it now receives 5% of ingress traffic');
      expect((error as Error).message).toContain(rev('v1-0-7'));
      expect(mutatingRequests(await sandbox().requests())).toEqual([]);
      expect(app().revisions.find((revision) => revision.name === rev('v1-0-7'))?.active).toBe(true);
    } finally {
      containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [{ latestRevision: true, weight: 100 }]);
    }
  });

  it('trap: an old revision addressed by a label (weight 0) survives the plan, and apply refuses once a label is added', async () => {
    const before = await planFor(USER_SERVICE);
    const action = before.plan.actions.find((candidate) => candidate.details.revision === rev('v1-0-7'));
    if (action === undefined) throw new Error('expected v1-0-7 in the plan');
    containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [
      { latestRevision: true, weight: 100 },
      { revisionName: rev('v1-0-7'), weight: 0, label: 'blue' },
    ]);
    try {
      const { plan } = await planFor(USER_SERVICE);
      expect(planned(plan)).not.toContain(rev('v1-0-7'));
      expect(keptReason(plan, rev('v1-0-7'))).toContain("is addressed by traffic label 'blue'");
      await sandbox().clearRequests();
      const error = await withContext(({ context, config }) =>
        revisionCleanupRunbook.apply(context, targetOf(config, USER_SERVICE), before.policy, action).then(
          () => undefined,
          (failure: unknown) => failure,
        ),
      );
      expect(error).toBeInstanceOf(RevisionStateChangedError);
      expect((error as Error).message).toContain("it is now addressed by traffic label 'blue'");
      expect(mutatingRequests(await sandbox().requests())).toEqual([]);
      expect(app().revisions.find((revision) => revision.name === rev('v1-0-7'))?.active).toBe(true);
    } finally {
      containerApps.setTraffic(SUBSCRIPTION, RG, USER_SERVICE, [{ latestRevision: true, weight: 100 }]);
    }
  });

  it('sandbox: deactivating a revision with traffic is rejected (400); activate, restart and their errors', async () => {
    await withContext(async ({ clients }) => {
      const client = await clients.containerAppsClient(SUBSCRIPTION);
      const failure = await client.containerAppsRevisions.deactivateRevision(RG, USER_SERVICE, rev('v1-0-12')).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isRestError(failure) && failure.statusCode).toBe(400);
      expect(app().revisions.at(-1)?.active).toBe(true);

      const failedRestart = await client.containerAppsRevisions.restartRevision(RG, USER_SERVICE, rev('v1-0-1')).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isRestError(failedRestart) && failedRestart.statusCode).toBe(400);
      const singleActivate = await client.containerAppsRevisions.activateRevision(RG, 'ca-auth-service', 'ca-auth-service--v1-0-38').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isRestError(singleActivate) && singleActivate.statusCode).toBe(400);

      await client.containerAppsRevisions.activateRevision(RG, USER_SERVICE, rev('v1-0-1'));
      expect((await client.containerAppsRevisions.getRevision(RG, USER_SERVICE, rev('v1-0-1'))).active).toBe(true);
      await client.containerAppsRevisions.restartRevision(RG, USER_SERVICE, rev('v1-0-1'));
      await client.containerAppsRevisions.deactivateRevision(RG, USER_SERVICE, rev('v1-0-1'));
      // Deactivating an inactive revision is a no-op, not an error.
      await client.containerAppsRevisions.deactivateRevision(RG, USER_SERVICE, rev('v1-0-1'));
      const revision = await client.containerAppsRevisions.getRevision(RG, USER_SERVICE, rev('v1-0-1'));
      expect({ active: revision.active, replicas: revision.replicas, runningState: revision.runningState }).toEqual({ active: false, replicas: 0, runningState: 'Stopped' });
    });
  });

  it('apply deactivates exactly the plan; apply again is skipped; re-planning plans nothing', async () => {
    const { plan, policy } = await planFor(USER_SERVICE);
    expect(plan.actions).toHaveLength(3);
    await withContext(async ({ context, config }) => {
      const target = targetOf(config, USER_SERVICE);
      for (const action of plan.actions) {
        expect(await revisionCleanupRunbook.apply(context, target, policy, action)).toMatchObject({ outcome: 'applied' });
      }
      for (const action of plan.actions) {
        expect(await revisionCleanupRunbook.apply(context, target, policy, action)).toEqual({
          outcome: 'skipped',
          message: `revision ${String(action.details.revision)} is already inactive`,
        });
      }
    });
    const active = app()
      .revisions.filter((revision) => revision.active)
      .map((revision) => revision.name);
    expect(active).toEqual(['v1-0-8', 'v1-0-9', 'v1-0-10', 'v1-0-11', 'v1-0-12'].map(rev));
    const again = await planFor(USER_SERVICE);
    expect(again.plan.actions).toEqual([]);
    expect(again.plan.kept).toHaveLength(5);
  });
});
