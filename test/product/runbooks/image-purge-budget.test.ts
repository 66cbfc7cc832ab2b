/**
 * `image-purge` on a registry with thousands of tags: the request log shows the client's ACR
 * budget is never exceeded (no sandbox throttling, no 1-second window above rate + burst), and
 * 429s with `Retry-After` injected during apply are honoured (no request to the registry
 * inside the pause) while every deletion still completes.
 *
 * The world is generated here: 20 repositories of 100 tags (2,000 tags). The sandbox's ACR
 * bucket (250/s, burst 50) stands for the registry's limit; the client budget sits under it
 * (200/s, burst 20, 8 in flight).
 */
import { describe, expect, it } from 'vitest';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { imagePurgeRunbook } from '../../../src/runbooks/image-purge.ts';
import type { RequestLogEntry } from '../../../sandbox/index.ts';
import { ContainerRegistriesProvider, defaultProviders } from '../../../sandbox/providers/index.ts';
import { applyActions, providerOf, purgeAllButNewest, runbookContextFor, writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SUB = '8c837fc9-e475-4f61-9022-837f5d828008';
const REGISTRY = 'crbudget';
const REGISTRY_ID = `/subscriptions/${SUB}/resourceGroups/rg-budget/providers/Microsoft.ContainerRegistry/registries/${REGISTRY}`;
const REPOSITORIES = 20;
const TAGS = 100;
const KEEP = 40;
const BUDGET = { acrPerSecond: 200, acrBurst: 20, maxConcurrency: 8 };
const RETRY_AFTER_SECONDS = 1;

const worldFile = writeWorldFile(
  'purge-budget',
  `name: purge-budget
description: ${String(REPOSITORIES * TAGS)} tags for the image-purge budget test.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-budget
    name: ${REGISTRY}
    location: eastus
    spec:
      sku: Premium
      generate: { repositories: ${String(REPOSITORIES)}, tagsPerRepository: ${String(TAGS)}, prefix: svc-, newestDaysAgo: 1, intervalDays: 1 }
`,
);

const providers = defaultProviders();
const registries = providerOf(providers, ContainerRegistriesProvider);

/** The largest number of entries whose arrival falls in any 1-second window. */
function busiestSecond(entries: readonly RequestLogEntry[]): number {
  const times = entries.map((entry) => Date.parse(entry.time)).sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end += 1) {
    while ((times[end] ?? 0) - (times[start] ?? 0) >= 1000) start += 1;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

describe('image-purge under the ACR budget', () => {
  const sandbox = useSandbox({
    worlds: [worldFile],
    postgres: false,
    azurite: false,
    providers,
    throttling: { acrPerSecond: 250, acrBurst: 50 },
  });

  it('deletes thousands of tags without exceeding the budget, honouring injected 429 Retry-After', async () => {
    const edit = (config: EstateConfig): EstateConfig => ({
      ...config,
      azure: { ...config.azure, requestBudget: { ...config.azure.requestBudget, ...BUDGET } },
      targets: config.targets.map((target) =>
        target.id.toLowerCase() === REGISTRY_ID.toLowerCase()
          ? {
              ...target,
              runbooks: { 'image-purge': purgeAllButNewest(['svc-.*'], KEEP) },
            }
          : target,
      ),
    });
    const ctx = await runbookContextFor(sandbox(), 'purge-budget', { edit });
    try {
      const target = ctx.config.targets.find((candidate) => candidate.id === REGISTRY_ID);
      const policy = target === undefined ? undefined : imagePurgeRunbook.policyOf(target);
      if (target === undefined || policy === undefined) throw new Error(`expected ${REGISTRY_ID} with an image-purge policy, found none`);

      const plan = await imagePurgeRunbook.plan(ctx.context, target, policy);
      expect(plan.actions).toHaveLength(REPOSITORIES * (TAGS - KEEP));

      await sandbox().clearRequests();
      await sandbox().injectFault({ operationId: 'ContainerRegistry.deleteTag', status: 429, retryAfterSeconds: RETRY_AFTER_SECONDS, count: 3 });
      const width = imagePurgeRunbook.applyConcurrency?.(ctx.context, target) ?? 1;
      expect(width).toBe(BUDGET.maxConcurrency);
      const outcomes = await applyActions(imagePurgeRunbook, ctx.context, target, policy, plan.actions, width);
      expect(outcomes.filter((outcome) => outcome === 'applied')).toHaveLength(plan.actions.length);
      for (const repository of registries.getRegistry(REGISTRY)?.repositories.values() ?? []) expect(repository.tags.size).toBe(KEEP);

      const log = (await sandbox().requests()).filter((entry) => entry.host === 'acr' && entry.path.startsWith(`/registries/${REGISTRY}/`));
      const faults = log.filter((entry) => entry.faulted);
      expect(faults.map((entry) => entry.status)).toEqual([429, 429, 429]);
      // Retry-After honoured: after each 429 answer, nothing reaches the registry until the pause
      // is nearly over (requests already in flight when it was sent arrive within the grace).
      for (const fault of faults) {
        const answered = Date.parse(fault.time) + fault.durationMs;
        const during = log.filter((entry) => {
          const at = Date.parse(entry.time);
          return at > answered + 150 && at < answered + RETRY_AFTER_SECONDS * 1000 - 150;
        });
        expect(during).toEqual([]);
      }
      // The budget: the registry never throttled us, and no second saw more than rate + burst
      // (+ the requests in flight, whose arrival jitter the client cannot control).
      expect(log.filter((entry) => entry.throttled)).toEqual([]);
      expect(busiestSecond(log)).toBeLessThanOrEqual(BUDGET.acrPerSecond + BUDGET.acrBurst + BUDGET.maxConcurrency);
      const stats = ctx.clients.budgets.acr(REGISTRY).stats();
      expect(stats.peakInFlight).toBeLessThanOrEqual(BUDGET.maxConcurrency);
      expect(stats.throttledResponses).toBe(3);
    } finally {
      await ctx.close();
    }
  });
});
