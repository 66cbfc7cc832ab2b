/**
 * `image-purge` apply re-checks each deletion against the registry and the apps as they are
 * now, not as they were when planned: between plan and apply (e.g. an interactive `run` prompt)
 * an image can be deployed or a tag moved.
 *
 * World: xshopai. The plan for user-service (vX.Y.Z tags, keep 2, older than 30 days, no inactive
 * revisions kept, so the images of the inactive revisions are candidates) deletes v1.0.1,
 * v1.0.2, v1.0.4, v1.0.5 and v0.9.1..v0.9.30; after planning, the test points the active
 * revision ca-user-service--v1-0-6 at v1.0.1 and moves the tag v1.0.2 to v1.0.4's digest.
 */
import { describe, expect, it } from 'vitest';
import { imagePurgePolicySchema, type EstateConfig, type TargetConfig } from '../../../src/config/schema.ts';
import { ImageChangedSincePlanError, imagePurgeRunbook, ImageInUseError, type ImagePurgePolicy } from '../../../src/runbooks/image-purge.ts';
import { InUseResolutionError } from '../../../src/runbooks/shared/images-in-use.ts';
import type { PlannedAction } from '../../../src/runbooks/runbook.ts';
import { ContainerAppsProvider, ContainerRegistriesProvider, defaultProviders } from '../../../sandbox/providers/index.ts';
import { providerOf, runbookContextFor, withRunbookPolicy, type TestRunbookContext } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const RG = 'rg-xshopai-prod';
const ACR_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerRegistry/registries/crxshopaiprod`;

const providers = defaultProviders();
const registries = providerOf(providers, ContainerRegistriesProvider);
const apps = providerOf(providers, ContainerAppsProvider);

const policy: ImagePurgePolicy = imagePurgePolicySchema.parse({
  repositories: ['user-service'],
  tagFilter: String.raw`v\d+\.\d+\.\d+`,
  keep: 2,
  olderThanDays: 30,
  maxDeletionsPerRun: 500,
  keepInactiveRevisions: 0,
});

function userServiceTags(): Map<string, string> {
  const repository = registries.getRegistry('crxshopaiprod')?.repositories.get('user-service');
  if (repository === undefined) throw new Error('expected crxshopaiprod/user-service in the sandbox, found none');
  return new Map([...repository.tags.values()].map((tag) => [tag.name, tag.digest]));
}

/** Points a revision of ca-user-service at another image (a deployment the plan did not see). */
function setRevisionImage(suffix: string, image: string): void {
  const revision = apps.getApp(SUB, RG, 'ca-user-service')?.revisions.find((candidate) => candidate.suffix === suffix);
  if (revision === undefined) throw new Error(`expected revision ca-user-service--${suffix} in the sandbox, found none`);
  revision.image = image;
}

/** Applies every action as the executor does: each on its own, failures recorded, not fatal. */
async function applyEach(ctx: TestRunbookContext, target: TargetConfig, actions: readonly PlannedAction[]): Promise<Map<string, string | Error>> {
  const results = new Map<string, string | Error>();
  const width = imagePurgeRunbook.applyConcurrency?.(ctx.context, target) ?? 1;
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < actions.length) {
        const action = actions[next];
        next += 1;
        if (action === undefined) continue;
        try {
          results.set(action.id, (await imagePurgeRunbook.apply(ctx.context, target, policy, action)).outcome);
        } catch (error) {
          results.set(action.id, error instanceof Error ? error : new Error(String(error)));
        }
      }
    }),
  );
  return results;
}

describe('image-purge apply re-checks before deleting', () => {
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml'], postgres: false, azurite: false, providers, throttling: { acrPerSecond: 200, acrBurst: 200 } });

  async function withRun<T>(work: (ctx: TestRunbookContext, target: TargetConfig) => Promise<T>): Promise<T> {
    const edit = (config: EstateConfig): EstateConfig => {
      const edited = withRunbookPolicy('image-purge', ACR_ID, policy)(config);
      return { ...edited, azure: { ...edited.azure, requestBudget: { ...edited.azure.requestBudget, acrPerSecond: 150, acrBurst: 50 } } };
    };
    const ctx = await runbookContextFor(sandbox(), 'xshopai', { edit });
    try {
      const target = ctx.config.targets.find((candidate) => candidate.id.toLowerCase() === ACR_ID.toLowerCase());
      if (target === undefined) throw new Error(`expected target ${ACR_ID}, found none`);
      return await work(ctx, target);
    } finally {
      await ctx.close();
    }
  }

  it('fails closed when the apps in use cannot be read at apply time: nothing is deleted', async () => {
    await withRun(async (ctx, target) => {
      const plan = await imagePurgeRunbook.plan(ctx.context, target, policy);
      expect(plan.actions.length).toBeGreaterThan(30);
      const before = userServiceTags();
      await sandbox().injectFault({ pathPattern: 'containerApps/ca-cart-service', status: 403, count: 1000 });
      let results: Map<string, string | Error>;
      try {
        results = await applyEach(ctx, target, plan.actions);
      } finally {
        await sandbox().clearFaults();
      }
      expect([...results.values()].every((result) => result instanceof InUseResolutionError)).toBe(true);
      expect((results.get('delete-tag:user-service:v1.0.1') as Error).message).toMatch(/ca-cart-service.*crxshopaiprod/);
      expect(userServiceTags()).toEqual(before);
    });
  });

  it('refuses a tag deployed or moved since the plan, with a typed error; the other deletions apply', async () => {
    await withRun(async (ctx, target) => {
      await sandbox().clearRequests();
      const plan = await imagePurgeRunbook.plan(ctx.context, target, policy);
      const planArmReads = (await sandbox().requests()).filter((entry) => entry.host === 'arm').length;
      const ids = plan.actions.map((action) => action.id);
      expect(ids).toEqual(expect.arrayContaining(['delete-tag:user-service:v1.0.1', 'delete-tag:user-service:v1.0.2', 'delete-tag:user-service:v1.0.4']));

      // While the run waits (e.g. at the prompt): v1.0.1 is deployed, v1.0.2 is re-pointed.
      setRevisionImage('v1-0-6', 'crxshopaiprod.azurecr.io/user-service:v1.0.1');
      const tags = userServiceTags();
      const v101 = tags.get('v1.0.1');
      const v104 = tags.get('v1.0.4');
      const v102Tag = registries.getRegistry('crxshopaiprod')?.repositories.get('user-service')?.tags.get('v1.0.2');
      if (v104 === undefined || v102Tag === undefined) throw new Error('expected tags v1.0.2 and v1.0.4 in the sandbox');
      v102Tag.digest = v104;

      await sandbox().clearRequests();
      const results = await applyEach(ctx, target, plan.actions);
      const applyArmReads = (await sandbox().requests()).filter((entry) => entry.host === 'arm').length;

      const inUse = results.get('delete-tag:user-service:v1.0.1');
      expect(inUse).toBeInstanceOf(ImageInUseError);
      expect((inUse as ImageInUseError).image).toBe('crxshopaiprod/user-service:v1.0.1');
      expect((inUse as ImageInUseError).usedBy.join(' ')).toContain('ca-user-service (revision ca-user-service--v1-0-6)');
      expect((inUse as Error).message).toContain(v101);

      const moved = results.get('delete-tag:user-service:v1.0.2');
      expect(moved).toBeInstanceOf(ImageChangedSincePlanError);
      expect((moved as Error).message).toContain(`found ${v104}`);

      // Everything else went through.
      for (const id of ids.filter((candidate) => !candidate.endsWith(':v1.0.1') && !candidate.endsWith(':v1.0.2'))) expect(results.get(id)).toBe('applied');
      const after = userServiceTags();
      expect(after.get('v1.0.1')).toBe(v101);
      expect(after.get('v1.0.2')).toBe(v104);
      expect(after.has('v1.0.4')).toBe(false);
      expect(after.has('v0.9.1')).toBe(false);

      // The apps were read afresh for apply, but once for all deletions, not once per deletion.
      expect(applyArmReads).toBeGreaterThan(0);
      expect(applyArmReads).toBeLessThanOrEqual(2 * planArmReads);
      expect(plan.actions.length * planArmReads).toBeGreaterThan(4 * applyArmReads);
    });
  });
});
