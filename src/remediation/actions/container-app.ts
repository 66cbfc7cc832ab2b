/**
 * Remediation actions on container apps (`Microsoft.App/containerApps`): `restart`, `scale-out`
 * and `rollback`, following Azure's change scopes ("Update and deploy changes in Azure Container
 * Apps"):
 *
 * - a change to `properties.template` (image, init containers, resources, `scale` min/max and
 *   rules, a revision suffix) is **revision-scope**: it creates a new revision from the app's
 *   current template, which keeps its own template afterwards; in Single mode it takes over once
 *   ready, in Multiple mode it gets traffic only through a `latestRevision: true` rule;
 * - `configuration.ingress.traffic` and the revision mode are **application-scope**: no new
 *   revision.
 *
 * So `scale-out` is a new revision of the same image (and refused when that revision would get
 * no traffic, or when the template it copies is a revision that never became ready), a Multiple
 * mode `rollback` is activate + traffic (no new revision; the bad one stays for inspection), and a
 * Single mode `rollback` is a template change back to the previous revision's containers (a new
 * revision; the bad one is deactivated by the take-over but kept). New revisions get a suffix
 * derived from the plan, so a retried apply finds the revision it made instead of making another.
 */
import { createHash } from 'node:crypto';
import type { Container, ContainerApp, ContainerAppsAPIClient, InitContainer, Revision, TrafficWeight } from '@azure/arm-appcontainers';
import { callAzure } from '../../azure/errors.ts';
import { parseResourceId, type ResourceId } from '../../azure/resource-id.ts';
import { collect } from '../../util/collect.ts';
import { awaitOperation } from './long-running.ts';
import { containerRestartParamsSchema, containerScaleOutParamsSchema, parseParams, rollbackParamsSchema } from './params.ts';
import {
  ActionNotEffectiveError,
  ActionRefusedError,
  ActionStateChangedError,
  checkPlanFor,
  type ActionContext,
  type ActionPlan,
  type ActionResult,
  type JsonValue,
  type RemediationAction,
  type UndoRecord,
} from './types.ts';

const KIND = 'containerApp' as const;

/** Azure's defaults when a template leaves scale out. */
const DEFAULT_MIN_REPLICAS = 0;
const DEFAULT_MAX_REPLICAS = 10;

const str = (value: unknown): string => (typeof value === 'string' ? value : '');
const num = (value: unknown): number => (typeof value === 'number' ? value : Number.NaN);

async function apps(ctx: ActionContext, id: ResourceId): Promise<ContainerAppsAPIClient> {
  return ctx.clients.containerAppsClient(id.subscriptionId);
}

async function readApp(ctx: ActionContext, id: ResourceId): Promise<ContainerApp> {
  const client = await apps(ctx, id);
  return callAzure({ resourceId: id.id, operation: 'get container app' }, () => client.containerApps.get(id.resourceGroup, id.name));
}

async function readRevisions(ctx: ActionContext, id: ResourceId): Promise<Revision[]> {
  const client = await apps(ctx, id);
  return callAzure({ resourceId: `${id.id}/revisions`, operation: 'list container app revisions' }, () => collect(client.containerAppsRevisions.listRevisions(id.resourceGroup, id.name), ctx.signal));
}

/** Revision name → its share of traffic, resolving `latestRevision: true` to the latest ready revision. */
function trafficByRevision(app: ContainerApp): Map<string, number> {
  const weights = new Map<string, number>();
  for (const rule of app.configuration?.ingress?.traffic ?? []) {
    const name = rule.latestRevision === true ? app.latestReadyRevisionName : rule.revisionName;
    if (name !== undefined && (rule.weight ?? 0) > 0) weights.set(name, (weights.get(name) ?? 0) + (rule.weight ?? 0));
  }
  return weights;
}

/** The traffic rules as JSON (for plans and undo records). */
function trafficJson(traffic: readonly TrafficWeight[] | undefined): JsonValue[] {
  return (traffic ?? []).map((rule) => ({
    ...(rule.revisionName === undefined ? {} : { revisionName: rule.revisionName }),
    ...(rule.latestRevision === true ? { latestRevision: true } : {}),
    weight: rule.weight ?? 0,
    ...(typeof rule.label === 'string' && rule.label !== '' ? { label: rule.label } : {}),
  }));
}

function trafficFromJson(value: JsonValue | undefined): TrafficWeight[] {
  if (!Array.isArray(value)) return [];
  return value.map((entry) => {
    const rule = (typeof entry === 'object' && entry !== null && !Array.isArray(entry) ? entry : {}) as Record<string, JsonValue>;
    return {
      ...(typeof rule.revisionName === 'string' ? { revisionName: rule.revisionName } : {}),
      ...(typeof rule.latestRevision === 'boolean' ? { latestRevision: rule.latestRevision } : {}),
      weight: typeof rule.weight === 'number' ? rule.weight : 0,
      ...(typeof rule.label === 'string' ? { label: rule.label } : {}),
    };
  });
}

const sameTraffic = (a: readonly TrafficWeight[] | undefined, b: readonly TrafficWeight[]): boolean => JSON.stringify(trafficJson(a)) === JSON.stringify(trafficJson(b));

/** A revision suffix derived from what the plan does, so a re-run recognises its own revision. */
function planSuffix(prefix: string, ...parts: readonly string[]): string {
  return `${prefix}-${createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 8)}`;
}

/** The images a revision runs (containers and init containers), to tell whether two revisions run the same deploy. */
function imagesOf(revision: Revision): string {
  const images = [...(revision.template?.containers ?? []).map((c) => c.image ?? ''), '|', ...(revision.template?.initContainers ?? []).map((c) => c.image ?? '')];
  return images.join(',');
}

/** PATCHes the app (a JSON merge patch) and waits for the operation. */
async function patchApp(ctx: ActionContext, id: ResourceId, app: ContainerApp, change: Partial<ContainerApp>, what: string): Promise<ContainerApp> {
  const client = await apps(ctx, id);
  const body: ContainerApp = { location: app.location, ...change };
  return awaitOperation(ctx, { resourceId: id.id, operation: what }, (options) => client.containerApps.beginUpdate(id.resourceGroup, id.name, body, options));
}

// ---------------------------------------------------------------------------------------------
// restart
// ---------------------------------------------------------------------------------------------

/** `restart`: restart the active revisions that receive traffic. */
export const containerAppRestart: RemediationAction = {
  name: 'restart',
  kinds: [KIND],
  description: 'restart every active revision (revisions: active) or only the latest ready one (revisions: latest); not reversible',
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(containerRestartParamsSchema, raw, 'restart', id.id);
    const app = await readApp(ctx, id);
    const revisions = await readRevisions(ctx, id);
    const traffic = trafficByRevision(app);
    const serving = revisions.filter(
      (revision) => revision.active === true && revision.name !== undefined && (params.revisions === 'active' || revision.name === app.latestReadyRevisionName),
    );
    if (serving.length === 0) {
      throw new ActionRefusedError('restart', id.id, `expected ${params.revisions === 'active' ? 'an active revision' : 'the latest ready revision to be active'}, found none`, {
        expected: params.revisions === 'active' ? 'an active revision' : 'an active latest ready revision',
        found: revisions.map((revision) => `${revision.name ?? '?'} (${revision.active === true ? 'active' : 'inactive'}, ${traffic.get(revision.name ?? '') ?? 0} %)`).join(', ') || 'no revisions',
      });
    }
    const names = serving.map((revision) => revision.name ?? '');
    const idle = revisions.filter((revision) => revision.active === true && !names.includes(revision.name ?? '')).map((revision) => revision.name ?? '');
    return {
      action: 'restart',
      kind: KIND,
      targetId: id.id,
      summary: `restart revision${names.length === 1 ? '' : 's'} ${names.join(', ')} of ${id.name}`,
      changes: names.map((name) => ({ resource: `${id.id}/revisions/${name}`, field: 'replicas', from: 'running', to: 'restarted' })),
      reversible: false,
      irreversibleReason: 'a restart cannot be undone (and needs no undo: the revisions run the same image)',
      params: { ...params },
      observed: { revisions: names, traffic: trafficJson(app.configuration?.ingress?.traffic) },
      notes: [
        ...(idle.length === 0 ? [] : [`active revisions left alone: ${idle.join(', ')}`]),
        ...names.filter((name) => (traffic.get(name) ?? 0) === 0).map((name) => `${name} receives no traffic`),
      ],
      plannedAt: ctx.now().toISOString(),
    };
  },
  async apply(ctx, target, plan) {
    checkPlanFor(plan, 'restart', KIND, target);
    const id = parseResourceId(target.id);
    const names = Array.isArray(plan.observed.revisions) ? plan.observed.revisions.map(str) : [];
    const revisions = await readRevisions(ctx, id);
    const client = await apps(ctx, id);
    for (const name of names) {
      const revision = revisions.find((candidate) => candidate.name === name);
      if (revision?.active !== true) {
        throw new ActionStateChangedError('restart', `${id.id}/revisions/${name}`, 'expected the planned revision to still be active', { expected: 'active', found: revision === undefined ? 'gone' : 'inactive' });
      }
    }
    for (const name of names) {
      await callAzure({ resourceId: `${id.id}/revisions/${name}`, operation: 'restart container app revision' }, () => client.containerAppsRevisions.restartRevision(id.resourceGroup, id.name, name));
    }
    return { action: 'restart', targetId: id.id, outcome: 'applied', message: `restarted ${names.join(', ')}`, after: { revisions: names } };
  },
};

// ---------------------------------------------------------------------------------------------
// scale-out
// ---------------------------------------------------------------------------------------------

interface ScaleTarget {
  readonly min: number;
  readonly max: number;
}

function currentScale(app: ContainerApp): ScaleTarget {
  return { min: app.template?.scale?.minReplicas ?? DEFAULT_MIN_REPLICAS, max: app.template?.scale?.maxReplicas ?? DEFAULT_MAX_REPLICAS };
}

/**
 * A template scale change as a new revision: checked against the app as planned (its latest
 * revision), `skipped` when the revision with `suffix` exists already.
 */
async function scaleRevision(
  ctx: ActionContext,
  id: ResourceId,
  expected: { readonly latestRevision: string; readonly from: ScaleTarget; readonly to: ScaleTarget; readonly suffix: string },
  what: string,
): Promise<{ outcome: 'applied' | 'skipped'; revision: string; after: ScaleTarget }> {
  const app = await readApp(ctx, id);
  const revisionName = `${id.name}--${expected.suffix}`;
  if (app.latestRevisionName === revisionName) return { outcome: 'skipped', revision: revisionName, after: currentScale(app) };
  const now = currentScale(app);
  if (app.latestRevisionName !== expected.latestRevision || now.min !== expected.from.min || now.max !== expected.from.max) {
    throw new ActionStateChangedError('scale-out', id.id, 'the app changed since the plan was made; not creating a revision from a template nobody planned for', {
      expected: `latest revision ${expected.latestRevision} with ${expected.from.min}–${expected.from.max} replicas`,
      found: `latest revision ${app.latestRevisionName ?? 'none'} with ${now.min}–${now.max} replicas`,
    });
  }
  const updated = await patchApp(ctx, id, app, { template: { revisionSuffix: expected.suffix, scale: { minReplicas: expected.to.min, maxReplicas: expected.to.max } } }, what);
  const after = currentScale(updated);
  if (updated.latestRevisionName !== revisionName || after.min !== expected.to.min || after.max !== expected.to.max) {
    throw new ActionNotEffectiveError('scale-out', id.id, 'the update completed but the app does not report the new revision and scale', {
      expected: `${revisionName} with ${expected.to.min}–${expected.to.max} replicas`,
      found: `${updated.latestRevisionName ?? 'none'} with ${after.min}–${after.max} replicas`,
    });
  }
  return { outcome: 'applied', revision: revisionName, after };
}

/** `scale-out`: raise minReplicas by a step up to a maximum; a new revision of the same image. */
export const containerAppScaleOut: RemediationAction = {
  name: 'scale-out',
  kinds: [KIND],
  description: 'raise minReplicas (and maxReplicas when below it) by a step up to a maximum; a revision-scope change, so a new revision of the same image; reversible (another revision with the old scale)',
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(containerScaleOutParamsSchema, raw, 'scale-out', id.id);
    const maximum = params.maxReplicas;
    const app = await readApp(ctx, id);
    const latest = app.latestRevisionName;
    if (latest === undefined || latest !== app.latestReadyRevisionName) {
      throw new ActionRefusedError('scale-out', id.id, `expected the app's template to be a ready revision, found latest revision ${latest ?? 'none'} but latest ready ${app.latestReadyRevisionName ?? 'none'}: a scale change would create a revision from a template that never became ready`, {
        expected: 'latestRevisionName = latestReadyRevisionName',
        found: `${latest ?? 'none'} / ${app.latestReadyRevisionName ?? 'none'}`,
      });
    }
    const mode = app.configuration?.activeRevisionsMode ?? 'Single';
    const rules = app.configuration?.ingress?.traffic ?? [];
    if (mode.toLowerCase() === 'multiple' && rules.length > 0 && !rules.some((rule) => rule.latestRevision === true && (rule.weight ?? 0) > 0)) {
      throw new ActionRefusedError('scale-out', id.id, 'a scale change creates a new revision, and in Multiple mode with traffic pinned to named revisions it would get 0 % of traffic: scaling out would add no serving replicas', {
        expected: 'Single mode, or a latestRevision traffic rule',
        found: `Multiple mode, traffic ${rules.map((rule) => `${rule.revisionName ?? 'latest'}=${rule.weight ?? 0}`).join(', ')}`,
      });
    }
    const from = currentScale(app);
    const toMin = Math.min(from.min + params.step, maximum);
    if (toMin <= from.min) {
      throw new ActionRefusedError('scale-out', id.id, `expected minReplicas below the maximum ${maximum}, found ${from.min}: already at the maximum`, { expected: `minReplicas < ${maximum}`, found: String(from.min) });
    }
    const to = { min: toMin, max: Math.max(from.max, toMin) };
    const suffix = planSuffix('ap-scale', id.id.toLowerCase(), latest, String(to.min), String(to.max));
    const image = app.template?.containers?.[0]?.image ?? 'unknown';
    const changes = [{ resource: id.id, field: 'properties.template.scale.minReplicas', from: from.min, to: to.min }];
    if (to.max !== from.max) changes.push({ resource: id.id, field: 'properties.template.scale.maxReplicas', from: from.max, to: to.max });
    return {
      action: 'scale-out',
      kind: KIND,
      targetId: id.id,
      summary: `scale ${id.name} out: minReplicas ${from.min} → ${to.min}${to.max === from.max ? '' : `, maxReplicas ${from.max} → ${to.max}`} (new revision ${id.name}--${suffix} of ${image})`,
      changes: [...changes, { resource: `${id.id}/revisions/${id.name}--${suffix}`, field: 'revision', from: null, to: `new revision of ${image}` }],
      reversible: true,
      undo: {
        action: 'scale-out',
        kind: KIND,
        targetId: id.id,
        summary: `a new revision of ${id.name} with ${from.min}–${from.max} replicas`,
        data: { latestRevision: `${id.name}--${suffix}`, fromMin: to.min, fromMax: to.max, toMin: from.min, toMax: from.max },
      },
      params: { step: params.step, maxReplicas: maximum },
      observed: { latestRevision: latest, mode, fromMin: from.min, fromMax: from.max, toMin: to.min, toMax: to.max, suffix, image },
      notes: [
        'scale is part of the template: Azure creates a new revision from the current one, with the same image (if the image is bad, scaling does not help)',
        mode.toLowerCase() === 'single' ? 'Single mode: the new revision takes over once ready and the current one is deactivated' : 'Multiple mode: the new revision gets the latestRevision share of traffic',
      ],
      plannedAt: ctx.now().toISOString(),
    };
  },
  async apply(ctx, target, plan) {
    checkPlanFor(plan, 'scale-out', KIND, target);
    const id = parseResourceId(target.id);
    const o = plan.observed;
    const to = { min: num(o.toMin), max: num(o.toMax) };
    const done = await scaleRevision(ctx, id, { latestRevision: str(o.latestRevision), from: { min: num(o.fromMin), max: num(o.fromMax) }, to, suffix: str(o.suffix) }, 'scale out container app');
    const undo: UndoRecord = {
      action: 'scale-out',
      kind: KIND,
      targetId: id.id,
      summary: `a new revision of ${id.name} with ${num(o.fromMin)}–${num(o.fromMax)} replicas`,
      data: { latestRevision: done.revision, fromMin: to.min, fromMax: to.max, toMin: num(o.fromMin), toMax: num(o.fromMax) },
    };
    return {
      action: 'scale-out',
      targetId: id.id,
      outcome: done.outcome,
      message: `${done.outcome === 'applied' ? 'created' : 'found'} revision ${done.revision} with ${done.after.min}–${done.after.max} replicas`,
      after: { latestRevision: done.revision, minReplicas: done.after.min, maxReplicas: done.after.max },
      undo,
    };
  },
  async undo(ctx, target, record) {
    checkPlanFor(record, 'scale-out', KIND, target);
    const id = parseResourceId(target.id);
    const d = record.data;
    const latest = str(d.latestRevision);
    const to = { min: num(d.toMin), max: num(d.toMax) };
    const suffix = planSuffix('ap-unscale', id.id.toLowerCase(), latest, String(to.min), String(to.max));
    const done = await scaleRevision(ctx, id, { latestRevision: latest, from: { min: num(d.fromMin), max: num(d.fromMax) }, to, suffix }, 'undo scale-out of container app');
    return {
      action: 'scale-out',
      targetId: id.id,
      outcome: done.outcome,
      message: `${done.outcome === 'applied' ? 'created' : 'found'} revision ${done.revision} with the previous ${done.after.min}–${done.after.max} replicas`,
      after: { latestRevision: done.revision, minReplicas: done.after.min, maxReplicas: done.after.max },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// rollback
// ---------------------------------------------------------------------------------------------

interface Candidate {
  readonly revision: Revision;
  readonly name: string;
}

/**
 * The revision to roll back to: the newest revision older than the serving one that did not
 * fail to provision, runs other images than the serving one (a bad image is bad wherever it
 * runs), and, if active, reports Healthy. Every revision passed over is listed with why.
 */
function chooseRollback(id: ResourceId, revisions: readonly Revision[], current: Revision, notBefore: number): { chosen?: Candidate; skipped: string[] } {
  const created = (revision: Revision): number => revision.createdTime?.getTime() ?? 0;
  const skipped: string[] = [];
  const older = revisions.filter((revision) => revision.name !== current.name && created(revision) < created(current)).sort((a, b) => created(b) - created(a));
  for (const revision of older) {
    const name = revision.name ?? '';
    if (created(revision) < notBefore) {
      skipped.push(`${name}: created ${revision.createdTime?.toISOString() ?? 'at an unknown time'}, older than the rollback window`);
      continue;
    }
    if ((revision.provisioningState ?? '').toLowerCase() === 'failed') {
      skipped.push(`${name}: failed to provision`);
      continue;
    }
    if (imagesOf(revision) === imagesOf(current)) {
      skipped.push(`${name}: runs the same image as ${current.name ?? 'the serving revision'}`);
      continue;
    }
    if (revision.active === true && (revision.healthState ?? '').toLowerCase() !== 'healthy') {
      skipped.push(`${name}: active but ${revision.healthState ?? 'health unknown'} (${revision.runningState ?? 'state unknown'})`);
      continue;
    }
    return { chosen: { revision, name }, skipped };
  }
  return { skipped };
}

/** `rollback`: the previous healthy revision takes 100 % of traffic; the bad one is kept. */
export const containerAppRollback: RemediationAction = {
  name: 'rollback',
  kinds: [KIND],
  description: 'move 100 % of traffic to the previous healthy revision (activating it; a new revision of its images in Single mode) and keep the bad one for inspection; reversible in Multiple mode',
  async plan(ctx, target, raw): Promise<ActionPlan> {
    const id = parseResourceId(target.id);
    const params = parseParams(rollbackParamsSchema, raw, 'rollback', id.id);
    const app = await readApp(ctx, id);
    const revisions = await readRevisions(ctx, id);
    const traffic = trafficByRevision(app);
    const servingRevisions = revisions.filter((revision) => (traffic.get(revision.name ?? '') ?? 0) > 0).sort((a, b) => (b.createdTime?.getTime() ?? 0) - (a.createdTime?.getTime() ?? 0));
    const current = servingRevisions[0];
    if (current?.name === undefined) {
      throw new ActionRefusedError('rollback', id.id, 'expected a revision that receives traffic (the one to roll back from), found none', { expected: 'a serving revision', found: 'none' });
    }
    const { chosen, skipped } = chooseRollback(id, revisions, current, ctx.now().getTime() - params.maxRevisionAgeDays * 86_400_000);
    if (chosen === undefined) {
      throw new ActionRefusedError('rollback', id.id, `expected a previous healthy revision older than ${current.name}, found none${skipped.length === 0 ? ' (no older revision)' : `: ${skipped.join('; ')}`}`, {
        expected: 'an older revision that provisioned, runs another image and is not unhealthy',
        found: skipped.length === 0 ? 'no older revision' : skipped.join('; '),
      });
    }
    const mode = (app.configuration?.activeRevisionsMode ?? 'Single').toLowerCase() === 'multiple' ? 'Multiple' : 'Single';
    const previousTraffic = trafficJson(app.configuration?.ingress?.traffic);
    const image = chosen.revision.template?.containers?.[0]?.image ?? 'unknown';
    const base = {
      action: 'rollback' as const,
      kind: KIND,
      targetId: id.id,
      params: { maxRevisionAgeDays: params.maxRevisionAgeDays },
      plannedAt: ctx.now().toISOString(),
    };
    const notes = [
      ...(skipped.length === 0 ? [] : [`passed over: ${skipped.join('; ')}`]),
      chosen.revision.active === true ? `${chosen.name} is active and Healthy` : `${chosen.name} is inactive: its health is known only once it serves again, so verification decides`,
    ];
    if (mode === 'Multiple') {
      return {
        ...base,
        summary: `roll ${id.name} back from ${current.name} to ${chosen.name} (${image}): ${chosen.revision.active === true ? '' : 'activate it, '}100 % of traffic to it; ${current.name} stays active for inspection`,
        changes: [
          ...(chosen.revision.active === true ? [] : [{ resource: `${id.id}/revisions/${chosen.name}`, field: 'active', from: false, to: true }]),
          { resource: id.id, field: 'properties.configuration.ingress.traffic', from: previousTraffic, to: [{ revisionName: chosen.name, weight: 100 }] },
        ],
        reversible: true,
        undo: {
          action: 'rollback',
          kind: KIND,
          targetId: id.id,
          summary: `traffic of ${id.name} back to ${JSON.stringify(previousTraffic)}${chosen.revision.active === true ? '' : `, ${chosen.name} deactivated again`}`,
          data: { mode, revision: chosen.name, traffic: previousTraffic, deactivate: chosen.revision.active !== true },
        },
        observed: { mode, current: current.name, revision: chosen.name, wasActive: chosen.revision.active === true, traffic: previousTraffic, image },
        notes: [...notes, 'traffic labels of the current rules are not kept while rolled back; the undo restores them'],
      };
    }
    const suffix = planSuffix('ap-rollback', id.id.toLowerCase(), current.name, chosen.name);
    return {
      ...base,
      summary: `roll ${id.name} back from ${current.name} to the images of ${chosen.name} (${image}): new revision ${id.name}--${suffix} takes over (Single mode); ${current.name} is deactivated and kept`,
      changes: [
        { resource: id.id, field: 'properties.template.containers', from: current.template?.containers?.[0]?.image ?? 'unknown', to: image },
        { resource: `${id.id}/revisions/${id.name}--${suffix}`, field: 'revision', from: null, to: `new revision of ${image}` },
      ],
      reversible: false,
      irreversibleReason: `in Single mode the rollback is a new revision; undoing it would deploy ${current.name}'s image again, which is what failed`,
      observed: { mode, current: current.name, latestRevision: app.latestRevisionName ?? '', revision: chosen.name, suffix, image },
      notes: [...notes, 'Single mode refuses revision activation, so the previous images return as a new revision (Azure keeps the current scale)'],
    };
  },
  async apply(ctx, target, plan): Promise<ActionResult> {
    checkPlanFor(plan, 'rollback', KIND, target);
    const id = parseResourceId(target.id);
    const o = plan.observed;
    const revision = str(o.revision);
    const current = str(o.current);
    const client = await apps(ctx, id);
    const app = await readApp(ctx, id);
    if (str(o.mode) === 'Multiple') {
      const wanted: TrafficWeight[] = [{ revisionName: revision, weight: 100 }];
      if (sameTraffic(app.configuration?.ingress?.traffic, wanted)) {
        return { action: 'rollback', targetId: id.id, outcome: 'skipped', message: `${revision} already has 100 % of traffic`, after: { traffic: trafficJson(wanted) }, ...(plan.undo === undefined ? {} : { undo: plan.undo }) };
      }
      if (!sameTraffic(app.configuration?.ingress?.traffic, trafficFromJson(o.traffic))) {
        throw new ActionStateChangedError('rollback', id.id, 'traffic changed since the plan was made; not moving traffic nobody planned for', {
          expected: JSON.stringify(o.traffic),
          found: JSON.stringify(trafficJson(app.configuration?.ingress?.traffic)),
        });
      }
      const target_ = await callAzure({ resourceId: `${id.id}/revisions/${revision}`, operation: 'get container app revision' }, () => client.containerAppsRevisions.getRevision(id.resourceGroup, id.name, revision));
      if (target_.active !== true) {
        await callAzure({ resourceId: `${id.id}/revisions/${revision}`, operation: 'activate container app revision' }, () => client.containerAppsRevisions.activateRevision(id.resourceGroup, id.name, revision));
      }
      const updated = await patchApp(ctx, id, app, { configuration: { ingress: { traffic: wanted } } }, 'move container app traffic');
      if (!sameTraffic(updated.configuration?.ingress?.traffic, wanted)) {
        throw new ActionNotEffectiveError('rollback', id.id, 'the update completed but traffic is not on the rollback revision', { expected: `${revision}=100`, found: JSON.stringify(trafficJson(updated.configuration?.ingress?.traffic)) });
      }
      return {
        action: 'rollback',
        targetId: id.id,
        outcome: 'applied',
        message: `rolled ${id.name} back: ${revision} has 100 % of traffic, ${current} kept for inspection`,
        after: { traffic: trafficJson(updated.configuration?.ingress?.traffic), revision },
        ...(plan.undo === undefined ? {} : { undo: plan.undo }),
      };
    }
    // Single mode: a template change back to the previous revision's containers.
    const suffix = str(o.suffix);
    const created = `${id.name}--${suffix}`;
    if (app.latestRevisionName === created) {
      return { action: 'rollback', targetId: id.id, outcome: 'skipped', message: `revision ${created} (the rollback) exists already`, after: { latestRevision: created } };
    }
    if (app.latestRevisionName !== str(o.latestRevision)) {
      throw new ActionStateChangedError('rollback', id.id, 'the app has another latest revision than planned', { expected: str(o.latestRevision), found: app.latestRevisionName ?? 'none' });
    }
    const previous = await callAzure({ resourceId: `${id.id}/revisions/${revision}`, operation: 'get container app revision' }, () => client.containerAppsRevisions.getRevision(id.resourceGroup, id.name, revision));
    const containers: Container[] = previous.template?.containers ?? [];
    const initContainers: InitContainer[] = previous.template?.initContainers ?? [];
    if (containers.length === 0) {
      throw new ActionStateChangedError('rollback', `${id.id}/revisions/${revision}`, 'expected the rollback revision to report its containers, found none', { expected: 'template.containers', found: 'none' });
    }
    const updated = await patchApp(ctx, id, app, { template: { revisionSuffix: suffix, containers, initContainers } }, 'roll back container app template');
    if (updated.latestRevisionName !== created || updated.latestReadyRevisionName !== created) {
      throw new ActionNotEffectiveError('rollback', id.id, 'the update completed but the rollback revision is not the latest ready revision', {
        expected: created,
        found: `latest ${updated.latestRevisionName ?? 'none'}, latest ready ${updated.latestReadyRevisionName ?? 'none'}`,
      });
    }
    return { action: 'rollback', targetId: id.id, outcome: 'applied', message: `rolled ${id.name} back to the images of ${revision} as revision ${created}; ${current} kept (inactive)`, after: { latestRevision: created, image: str(o.image) } };
  },
  async undo(ctx, target, record) {
    checkPlanFor(record, 'rollback', KIND, target);
    const id = parseResourceId(target.id);
    const d = record.data;
    if (str(d.mode) !== 'Multiple') {
      throw new ActionRefusedError('rollback', id.id, 'a Single mode rollback is not reversible', { expected: 'a Multiple mode rollback', found: str(d.mode) });
    }
    const revision = str(d.revision);
    const previous = trafficFromJson(d.traffic);
    const app = await readApp(ctx, id);
    if (sameTraffic(app.configuration?.ingress?.traffic, previous)) {
      return { action: 'rollback', targetId: id.id, outcome: 'skipped', message: 'traffic is already back as before the rollback', after: { traffic: trafficJson(previous) } };
    }
    if (!sameTraffic(app.configuration?.ingress?.traffic, [{ revisionName: revision, weight: 100 }])) {
      throw new ActionStateChangedError('rollback', id.id, 'traffic changed since the rollback; not restoring over it', { expected: `${revision}=100`, found: JSON.stringify(trafficJson(app.configuration?.ingress?.traffic)) });
    }
    const updated = await patchApp(ctx, id, app, { configuration: { ingress: { traffic: previous } } }, 'restore container app traffic');
    if (d.deactivate === true) {
      const client = await apps(ctx, id);
      await callAzure({ resourceId: `${id.id}/revisions/${revision}`, operation: 'deactivate container app revision' }, () => client.containerAppsRevisions.deactivateRevision(id.resourceGroup, id.name, revision));
    }
    return { action: 'rollback', targetId: id.id, outcome: 'applied', message: `traffic of ${id.name} restored${d.deactivate === true ? `, ${revision} deactivated again` : ''}`, after: { traffic: trafficJson(updated.configuration?.ingress?.traffic) } };
  },
};
