/**
 * Remediation actions on web apps, function apps and their slots (`Microsoft.Web/sites`):
 * `restart`, `swap-back`, and `scale-out` / `scale-up` of the App Service plan the site runs on.
 *
 * Scaling acts on the plan, which every app on it shares; the plan says so. A plan the platform
 * scales itself (Consumption, Elastic Premium, Flex Consumption) is refused: its workers cannot
 * be set and it cannot change into a dedicated tier.
 */
import type { AppServicePlan, Site, WebSiteManagementClient } from '@azure/arm-appservice';
import { callAzure } from '../../azure/errors.ts';
import { parseResourceId, type ResourceId } from '../../azure/resource-id.ts';
import type { TargetConfig } from '../../config/schema.ts';
import { awaitOperation } from './long-running.ts';
import { parseParams, swapBackParamsSchema, webRestartParamsSchema, webScaleOutParamsSchema, webScaleUpParamsSchema } from './params.ts';
import { isPlatformScaledTier, nextOnLadder, planFamily, planSkuRank } from './sku-tables.ts';
import {
  ActionNotEffectiveError,
  ActionRefusedError,
  ActionStateChangedError,
  checkPlanFor,
  type ActionContext,
  type ActionPlan,
  type ActionResult,
  type RemediationAction,
  type UndoRecord,
} from './types.ts';

const KIND = 'webSite' as const;

async function web(ctx: ActionContext, id: ResourceId): Promise<WebSiteManagementClient> {
  return ctx.clients.webClient(id.subscriptionId);
}

async function readSite(ctx: ActionContext, id: ResourceId, slot?: string): Promise<Site> {
  const client = await web(ctx, id);
  return slot === undefined
    ? callAzure({ resourceId: id.id, operation: 'get web app' }, () => client.webApps.get(id.resourceGroup, id.name))
    : callAzure({ resourceId: `${id.id}/slots/${slot}`, operation: 'get web app slot' }, () => client.webApps.getSlot(id.resourceGroup, id.name, slot));
}

/** The artifact a site or slot runs (`DOCKER|image`, `NODE|20-lts`, ...), as the swap moves it. */
async function readArtifact(ctx: ActionContext, id: ResourceId, slot?: string): Promise<string> {
  const client = await web(ctx, id);
  const config = await (slot === undefined
    ? callAzure({ resourceId: `${id.id}/config/web`, operation: 'get web app configuration' }, () => client.webApps.getConfiguration(id.resourceGroup, id.name))
    : callAzure({ resourceId: `${id.id}/slots/${slot}/config/web`, operation: 'get slot configuration' }, () => client.webApps.getConfigurationSlot(id.resourceGroup, id.name, slot)));
  return config.linuxFxVersion ?? config.windowsFxVersion ?? '';
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');
const num = (value: unknown): number => (typeof value === 'number' ? value : Number.NaN);

// ---------------------------------------------------------------------------------------------
// restart
// ---------------------------------------------------------------------------------------------

/** `restart` of a web app, function app or one of its slots. */
export const webRestart: RemediationAction = {
  name: 'restart',
  kinds: [KIND],
  description: 'restart the web app or function app (or one deployment slot); not reversible',
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(webRestartParamsSchema, raw, 'restart', id.id);
    const resource = params.slot === undefined ? id.id : `${id.id}/slots/${params.slot}`;
    const site = await readSite(ctx, id, params.slot);
    const state = site.state ?? 'Unknown';
    if (state.toLowerCase() !== 'running') {
      throw new ActionRefusedError('restart', resource, `expected the app to be Running, found ${state}: a restart does not start a stopped app`, { expected: 'state Running', found: state });
    }
    return {
      action: 'restart',
      kind: KIND,
      targetId: id.id,
      summary: `${params.softRestart ? 'soft-' : ''}restart ${params.slot === undefined ? 'web app' : `slot ${params.slot} of`} ${id.name}`,
      changes: [{ resource, field: 'state', from: 'Running', to: 'Running (restarted)' }],
      reversible: false,
      irreversibleReason: 'a restart cannot be undone (and needs no undo: the app runs the same deploy)',
      params: { ...(params.slot === undefined ? {} : { slot: params.slot }), softRestart: params.softRestart },
      observed: { state, ...(site.defaultHostName === undefined ? {} : { host: site.defaultHostName }) },
      notes: ['the app answers 503 while it restarts; verification waits for it'],
      plannedAt: ctx.now().toISOString(),
    };
  },
  async apply(ctx, target, plan) {
    checkPlanFor(plan, 'restart', KIND, target);
    const id = parseResourceId(target.id);
    const slot = str(plan.params.slot) === '' ? undefined : str(plan.params.slot);
    const resource = slot === undefined ? id.id : `${id.id}/slots/${slot}`;
    const site = await readSite(ctx, id, slot);
    if ((site.state ?? '').toLowerCase() !== 'running') {
      throw new ActionStateChangedError('restart', resource, `expected the app to still be Running, found ${site.state ?? 'Unknown'}`, { expected: 'state Running', found: site.state ?? 'Unknown' });
    }
    const client = await web(ctx, id);
    const options = { softRestart: plan.params.softRestart === true, synchronous: false, ...(ctx.signal === undefined ? {} : { abortSignal: ctx.signal }) };
    await callAzure({ resourceId: resource, operation: 'restart web app' }, () =>
      slot === undefined ? client.webApps.restart(id.resourceGroup, id.name, options) : client.webApps.restartSlot(id.resourceGroup, id.name, slot, options),
    );
    return { action: 'restart', targetId: id.id, outcome: 'applied', message: `restarted ${slot === undefined ? id.name : `${id.name}/${slot}`}`, after: { state: 'Running' } };
  },
};

// ---------------------------------------------------------------------------------------------
// swap-back
// ---------------------------------------------------------------------------------------------

interface SwapState {
  readonly at: string;
  readonly source: string;
  readonly destination: string;
}

function swapState(site: Site): SwapState | undefined {
  const status = site.slotSwapStatus;
  if (status?.timestampUtc === undefined || status.sourceSlotName === undefined || status.destinationSlotName === undefined) return undefined;
  return { at: status.timestampUtc.toISOString(), source: status.sourceSlotName, destination: status.destinationSlotName };
}

/** The slot production was swapped with, from production's swap status (either direction). */
function otherSlot(swap: SwapState): string | undefined {
  const production = (name: string): boolean => name.toLowerCase() === 'production';
  if (production(swap.destination) && !production(swap.source)) return swap.source;
  if (production(swap.source) && !production(swap.destination)) return swap.destination;
  return undefined;
}

async function swapWithProduction(ctx: ActionContext, id: ResourceId, slot: string): Promise<void> {
  const client = await web(ctx, id);
  await awaitOperation(ctx, { resourceId: id.id, operation: `swap slot ${slot} with production` }, (options) =>
    client.webApps.swapSlotWithProduction(id.resourceGroup, id.name, { targetSlot: slot, preserveVnet: true }, options),
  );
}

/**
 * Swaps production with `slot` when the site is still as `expected` describes (the swap status
 * and both artifacts); `skipped` when the swap already happened after `since` (a re-run).
 */
async function swapIfUnchanged(
  ctx: ActionContext,
  id: ResourceId,
  action: 'swap-back',
  expected: { readonly swapAt: string; readonly slot: string; readonly productionArtifact: string; readonly slotArtifact: string; readonly since: string },
): Promise<{ outcome: 'applied' | 'skipped'; after: SwapState; productionArtifact: string; slotArtifact: string }> {
  const site = await readSite(ctx, id);
  const swap = swapState(site);
  const production = await readArtifact(ctx, id);
  const slotNow = await readArtifact(ctx, id, expected.slot);
  if (swap !== undefined && swap.at !== expected.swapAt) {
    if (swap.at >= expected.since && otherSlot(swap)?.toLowerCase() === expected.slot.toLowerCase() && production === expected.slotArtifact && slotNow === expected.productionArtifact) {
      return { outcome: 'skipped', after: swap, productionArtifact: production, slotArtifact: slotNow };
    }
    throw new ActionStateChangedError(action, id.id, 'the last swap is no longer the one planned; not swapping again (another swap would move the planned-away deploy back)', {
      expected: `last swap at ${expected.swapAt}`,
      found: `last swap at ${swap.at} (${swap.source} → ${swap.destination})`,
    });
  }
  if (production !== expected.productionArtifact || slotNow !== expected.slotArtifact) {
    throw new ActionStateChangedError(action, id.id, 'production or the slot runs another deploy than planned', {
      expected: `production ${expected.productionArtifact || '(code)'}, ${expected.slot} ${expected.slotArtifact || '(code)'}`,
      found: `production ${production || '(code)'}, ${expected.slot} ${slotNow || '(code)'}`,
    });
  }
  await swapWithProduction(ctx, id, expected.slot);
  const after = swapState(await readSite(ctx, id));
  if (after === undefined || after.at === expected.swapAt) {
    throw new ActionNotEffectiveError(action, id.id, 'the swap completed but production reports no newer swap', { expected: `a swap after ${expected.swapAt}`, found: after?.at ?? 'none' });
  }
  return { outcome: 'applied', after, productionArtifact: await readArtifact(ctx, id), slotArtifact: await readArtifact(ctx, id, expected.slot) };
}

/** `swap-back`: swap production with the slot of its last swap, if that swap is recent. */
export const webSwapBack: RemediationAction = {
  name: 'swap-back',
  kinds: [KIND],
  description: 'swap production back with the slot of its last swap, if that swap completed within the window; reversible (swap again)',
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(swapBackParamsSchema, raw, 'swap-back', id.id);
    const site = await readSite(ctx, id);
    const swap = swapState(site);
    if (swap === undefined) {
      throw new ActionRefusedError('swap-back', id.id, 'expected a recorded slot swap into production, found none (slotSwapStatus is empty): nothing to swap back', { expected: 'a slot swap', found: 'none' });
    }
    const slot = otherSlot(swap);
    if (slot === undefined) {
      throw new ActionRefusedError('swap-back', id.id, `expected the last swap to involve production, found ${swap.source} → ${swap.destination}`, { expected: 'a swap with production', found: `${swap.source} → ${swap.destination}` });
    }
    if (params.slot.toLowerCase() !== slot.toLowerCase()) {
      throw new ActionRefusedError('swap-back', id.id, `expected the last swap to be with slot ${params.slot}, found ${slot}`, { expected: `a swap with ${params.slot}`, found: slot });
    }
    const now = ctx.now();
    const ageMinutes = (now.getTime() - Date.parse(swap.at)) / 60_000;
    if (ageMinutes > params.withinMinutes) {
      throw new ActionRefusedError('swap-back', id.id, `expected the last swap within ${params.withinMinutes} min, found it ${Math.round(ageMinutes)} min ago (${swap.at}): too old to be the cause`, {
        expected: `a swap within ${params.withinMinutes} min`,
        found: `${Math.round(ageMinutes)} min ago`,
      });
    }
    const slotSite = await readSite(ctx, id, slot);
    if ((slotSite.state ?? '').toLowerCase() !== 'running') {
      throw new ActionRefusedError('swap-back', `${id.id}/slots/${slot}`, `expected slot ${slot} to be Running, found ${slotSite.state ?? 'Unknown'}`, { expected: 'state Running', found: slotSite.state ?? 'Unknown' });
    }
    const productionArtifact = await readArtifact(ctx, id);
    const slotArtifact = await readArtifact(ctx, id, slot);
    const plannedAt = now.toISOString();
    return {
      action: 'swap-back',
      kind: KIND,
      targetId: id.id,
      summary: `swap ${id.name} production back with slot ${slot} (last swap ${swap.at}, ${Math.round(ageMinutes)} min ago)`,
      changes: [
        { resource: id.id, field: 'artifact', from: productionArtifact, to: slotArtifact },
        { resource: `${id.id}/slots/${slot}`, field: 'artifact', from: slotArtifact, to: productionArtifact },
      ],
      reversible: true,
      params: { slot, withinMinutes: params.withinMinutes },
      observed: { swapAt: swap.at, swapSource: swap.source, swapDestination: swap.destination, productionArtifact, slotArtifact },
      notes: ['app settings move with the deploy except slot-sticky ones; both slots restart', "the undo record (swap again) comes with apply's result: it names the swap apply made"],
      plannedAt,
    };
  },
  async apply(ctx, target, plan) {
    checkPlanFor(plan, 'swap-back', KIND, target);
    const id = parseResourceId(target.id);
    const slot = str(plan.params.slot);
    const done = await swapIfUnchanged(ctx, id, 'swap-back', {
      swapAt: str(plan.observed.swapAt),
      slot,
      productionArtifact: str(plan.observed.productionArtifact),
      slotArtifact: str(plan.observed.slotArtifact),
      since: plan.plannedAt,
    });
    const undo: UndoRecord = {
      action: 'swap-back',
      kind: KIND,
      targetId: id.id,
      summary: `swap ${id.name} production with slot ${slot} again`,
      data: { slot, swapAt: done.after.at, productionArtifact: done.productionArtifact, slotArtifact: done.slotArtifact, since: done.after.at },
    };
    return {
      action: 'swap-back',
      targetId: id.id,
      outcome: done.outcome,
      message: done.outcome === 'applied' ? `swapped ${id.name} production back with ${slot}` : `${id.name} was already swapped back with ${slot} (at ${done.after.at})`,
      after: { swapAt: done.after.at, productionArtifact: done.productionArtifact, slotArtifact: done.slotArtifact },
      undo,
    };
  },
  async undo(ctx, target, record) {
    checkPlanFor(record, 'swap-back', KIND, target);
    const id = parseResourceId(target.id);
    const slot = str(record.data.slot);
    const done = await swapIfUnchanged(ctx, id, 'swap-back', {
      swapAt: str(record.data.swapAt),
      slot,
      productionArtifact: str(record.data.productionArtifact),
      slotArtifact: str(record.data.slotArtifact),
      since: str(record.data.since),
    });
    return {
      action: 'swap-back',
      targetId: id.id,
      outcome: done.outcome,
      message: done.outcome === 'applied' ? `undid the swap-back: swapped ${id.name} production with ${slot} again` : `${id.name} was already swapped again with ${slot}`,
      after: { swapAt: done.after.at, productionArtifact: done.productionArtifact, slotArtifact: done.slotArtifact },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// scale-out / scale-up of the App Service plan
// ---------------------------------------------------------------------------------------------

interface PlanState {
  readonly planId: ResourceId;
  readonly plan: AppServicePlan;
  readonly skuName: string;
  readonly tier: string;
  readonly capacity: number;
}

async function readPlan(ctx: ActionContext, action: 'scale-out' | 'scale-up', siteId: ResourceId, planIdText?: string): Promise<PlanState> {
  let planIdValue = planIdText;
  if (planIdValue === undefined) {
    const site = await readSite(ctx, siteId);
    planIdValue = site.serverFarmId;
    if (planIdValue === undefined || planIdValue === '') {
      throw new ActionRefusedError(action, siteId.id, 'expected the site to name its App Service plan (serverFarmId), found none', { expected: 'a serverFarmId', found: 'none' });
    }
  }
  const planId = parseResourceId(planIdValue);
  const client = await ctx.clients.webClient(planId.subscriptionId);
  const plan = await callAzure({ resourceId: planId.id, operation: 'get App Service plan' }, () => client.appServicePlans.get(planId.resourceGroup, planId.name));
  const skuName = plan.sku?.name ?? '';
  const tier = plan.sku?.tier ?? planFamily(skuName)?.tier ?? '';
  const capacity = plan.sku?.capacity ?? 1;
  if (skuName === '') throw new ActionRefusedError(action, planId.id, 'expected the plan to report its SKU, found none', { expected: 'sku.name', found: 'none' });
  if (isPlatformScaledTier(tier)) {
    throw new ActionRefusedError(action, planId.id, `expected a dedicated App Service plan, found ${tier} (${skuName}), which the platform scales itself: its workers cannot be set and it cannot change tier`, {
      expected: 'a dedicated plan (Basic, Standard, Premium, Isolated)',
      found: `${tier} (${skuName})`,
    });
  }
  return { planId, plan, skuName, tier, capacity };
}

async function putPlan(ctx: ActionContext, state: PlanState, sku: { name: string; capacity: number }, what: string): Promise<AppServicePlan> {
  const client = await ctx.clients.webClient(state.planId.subscriptionId);
  const tier = planFamily(sku.name)?.tier;
  // A PUT replaces: send the plan as read with only the SKU changed (the way `az appservice plan update` does).
  const body: AppServicePlan = { ...state.plan, sku: { name: sku.name, ...(tier === undefined ? {} : { tier }), capacity: sku.capacity } };
  return awaitOperation(ctx, { resourceId: state.planId.id, operation: what }, (options) => client.appServicePlans.createOrUpdate(state.planId.resourceGroup, state.planId.name, body, options));
}

/** Applies a plan SKU change when the plan is still at `from`; `skipped` when already at `to`. */
async function changePlanSku(
  ctx: ActionContext,
  action: 'scale-out' | 'scale-up',
  siteId: ResourceId,
  planId: string,
  from: { name: string; capacity: number },
  to: { name: string; capacity: number },
  what: string,
): Promise<{ outcome: 'applied' | 'skipped'; after: { name: string; capacity: number } }> {
  const state = await readPlan(ctx, action, siteId, planId);
  const same = (a: { name: string; capacity: number }): boolean => state.skuName.toLowerCase() === a.name.toLowerCase() && state.capacity === a.capacity;
  if (same(to)) return { outcome: 'skipped', after: to };
  if (!same(from)) {
    throw new ActionStateChangedError(action, state.planId.id, 'the plan changed since the plan was made; not scaling a state nobody planned for', {
      expected: `${from.name} × ${from.capacity}`,
      found: `${state.skuName} × ${state.capacity}`,
    });
  }
  const updated = await putPlan(ctx, state, to, what);
  const after = { name: updated.sku?.name ?? '', capacity: updated.sku?.capacity ?? Number.NaN };
  if (after.name.toLowerCase() !== to.name.toLowerCase() || after.capacity !== to.capacity) {
    throw new ActionNotEffectiveError(action, state.planId.id, 'the update completed but the plan reports another SKU', { expected: `${to.name} × ${to.capacity}`, found: `${after.name} × ${after.capacity}` });
  }
  return { outcome: 'applied', after };
}

function planUndo(action: 'scale-out' | 'scale-up', targetId: string, planId: string, from: { name: string; capacity: number }, to: { name: string; capacity: number }): UndoRecord {
  return {
    action,
    kind: KIND,
    targetId,
    summary: `set App Service plan ${parseResourceId(planId).name} back to ${from.name} × ${from.capacity}`,
    data: { planId, fromName: to.name, fromCapacity: to.capacity, toName: from.name, toCapacity: from.capacity },
  };
}

function planAction(action: 'scale-out' | 'scale-up'): Pick<RemediationAction, 'apply' | 'undo'> {
  return {
    async apply(ctx: ActionContext, target: TargetConfig, plan: ActionPlan): Promise<ActionResult> {
      checkPlanFor(plan, action, KIND, target);
      const id = parseResourceId(target.id);
      const planId = str(plan.observed.planId);
      const from = { name: str(plan.observed.skuName), capacity: num(plan.observed.capacity) };
      const to = { name: str(plan.observed.toSkuName), capacity: num(plan.observed.toCapacity) };
      const done = await changePlanSku(ctx, action, id, planId, from, to, `${action} App Service plan`);
      return {
        action,
        targetId: id.id,
        outcome: done.outcome,
        message: `${done.outcome === 'applied' ? 'set' : 'already at'} App Service plan ${parseResourceId(planId).name} ${to.name} × ${to.capacity} (was ${from.name} × ${from.capacity})`,
        after: { planId, skuName: done.after.name, capacity: done.after.capacity },
        undo: planUndo(action, id.id, planId, from, to),
      };
    },
    async undo(ctx: ActionContext, target: TargetConfig, record: UndoRecord): Promise<ActionResult> {
      checkPlanFor(record, action, KIND, target);
      const id = parseResourceId(target.id);
      const planId = str(record.data.planId);
      const from = { name: str(record.data.fromName), capacity: num(record.data.fromCapacity) };
      const to = { name: str(record.data.toName), capacity: num(record.data.toCapacity) };
      const done = await changePlanSku(ctx, action, id, planId, from, to, `undo ${action} of App Service plan`);
      return {
        action,
        targetId: id.id,
        outcome: done.outcome,
        message: `${done.outcome === 'applied' ? 'set' : 'already at'} App Service plan ${parseResourceId(planId).name} back to ${to.name} × ${to.capacity}`,
        after: { planId, skuName: done.after.name, capacity: done.after.capacity },
      };
    },
  };
}

/** `scale-out`: more workers on the site's App Service plan, by a step, up to a maximum. */
export const webScaleOut: RemediationAction = {
  name: 'scale-out',
  kinds: [KIND],
  description: "add workers to the site's App Service plan by a step, up to a maximum (and the tier's limit); reversible",
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(webScaleOutParamsSchema, raw, 'scale-out', id.id);
    const maximum = params.maxWorkers;
    const state = await readPlan(ctx, 'scale-out', id);
    const family = planFamily(state.skuName);
    if (family === undefined) {
      throw new ActionRefusedError('scale-out', state.planId.id, `expected an App Service SKU whose worker limit is known, found ${state.skuName}`, { expected: 'a known SKU', found: state.skuName });
    }
    const ceiling = Math.min(maximum, family.maxWorkers);
    const to = Math.min(state.capacity + params.step, ceiling);
    if (to <= state.capacity) {
      throw new ActionRefusedError('scale-out', state.planId.id, `expected fewer than ${ceiling} workers (maximum ${maximum}, ${family.tier} allows ${family.maxWorkers}), found ${state.capacity}: already at the maximum`, {
        expected: `fewer than ${ceiling} workers`,
        found: String(state.capacity),
      });
    }
    const notes = [`the plan is shared by every app on it: all of them get ${to} workers`];
    if (ceiling < maximum) notes.push(`the ${family.tier} tier allows at most ${family.maxWorkers} workers, below the configured maximum ${maximum}`);
    return {
      action: 'scale-out',
      kind: KIND,
      targetId: id.id,
      summary: `scale App Service plan ${state.planId.name} out from ${state.capacity} to ${to} workers (${state.skuName}, maximum ${ceiling})`,
      changes: [{ resource: state.planId.id, field: 'sku.capacity', from: state.capacity, to }],
      reversible: true,
      undo: planUndo('scale-out', id.id, state.planId.id, { name: state.skuName, capacity: state.capacity }, { name: state.skuName, capacity: to }),
      params: { step: params.step, maxWorkers: maximum },
      observed: { planId: state.planId.id, skuName: state.skuName, tier: state.tier, capacity: state.capacity, toSkuName: state.skuName, toCapacity: to },
      notes,
      plannedAt: ctx.now().toISOString(),
    };
  },
  ...planAction('scale-out'),
};

/** `scale-up`: the next SKU of an explicit ladder for the site's App Service plan. */
export const webScaleUp: RemediationAction = {
  name: 'scale-up',
  kinds: [KIND],
  description: "move the site's App Service plan to the next SKU of an explicit ladder; reversible",
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(webScaleUpParamsSchema, raw, 'scale-up', id.id);
    const ladder = params.skus;
    const unknown = ladder.filter((name) => planFamily(name) === undefined);
    if (unknown.length > 0) {
      throw new ActionRefusedError('scale-up', id.id, `expected App Service SKU names on the ladder, found ${unknown.join(', ')}`, { expected: 'SKUs such as B1, S1, P1v2, P1v3', found: unknown.join(', ') });
    }
    const state = await readPlan(ctx, 'scale-up', id);
    const next = nextOnLadder(ladder, state.skuName, planSkuRank);
    if (next === undefined) {
      throw new ActionRefusedError('scale-up', state.planId.id, `expected a SKU on the ladder [${ladder.join(', ')}] above the plan's ${state.skuName}, found none: already at or above the maximum, or not comparable`, {
        expected: `a SKU above ${state.skuName} on ${ladder.join(', ')}`,
        found: state.skuName,
      });
    }
    const family = planFamily(next);
    if (family === undefined || isPlatformScaledTier(family.tier)) {
      throw new ActionRefusedError('scale-up', state.planId.id, `expected a dedicated SKU as the next step, found ${next}`, { expected: 'a dedicated SKU', found: next });
    }
    if (state.capacity > family.maxWorkers) {
      throw new ActionRefusedError('scale-up', state.planId.id, `expected at most ${family.maxWorkers} workers for ${next} (${family.tier}), found ${state.capacity}`, {
        expected: `at most ${family.maxWorkers} workers`,
        found: String(state.capacity),
      });
    }
    return {
      action: 'scale-up',
      kind: KIND,
      targetId: id.id,
      summary: `scale App Service plan ${state.planId.name} up from ${state.skuName} to ${next} (${state.capacity} workers)`,
      changes: [{ resource: state.planId.id, field: 'sku.name', from: state.skuName, to: next }],
      reversible: true,
      undo: planUndo('scale-up', id.id, state.planId.id, { name: state.skuName, capacity: state.capacity }, { name: next, capacity: state.capacity }),
      params: { skus: [...ladder] },
      observed: { planId: state.planId.id, skuName: state.skuName, tier: state.tier, capacity: state.capacity, toSkuName: next, toCapacity: state.capacity },
      notes: [`the plan is shared by every app on it: all of them move to ${next}`, 'the apps restart on new workers while the plan changes tier'],
      plannedAt: ctx.now().toISOString(),
    };
  },
  ...planAction('scale-up'),
};
