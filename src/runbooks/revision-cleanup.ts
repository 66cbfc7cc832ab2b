/**
 * The `revision-cleanup` runbook: deactivates old Container Apps revisions.
 *
 * Plan (read-only): the active revisions, newest first by `createdTime`; the newest
 * `policy.keep` stay; every older one is deactivated unless it
 * - receives ingress traffic (a weight above 0 by name, or through `latestRevision: true`),
 * - is addressed by a traffic label (`<app>---<label>.<domain>` serves it even at weight 0),
 * - is the latest revision or the latest ready revision, or
 * - is younger than `policy.minAgeHours` (or reports no creation time).
 * Each revision left alone becomes a kept item with every reason that applies.
 *
 * Single revision mode: the platform itself keeps one revision active and deactivates the one
 * it supersedes, so the runbook plans nothing there and keeps any extra active revision (a
 * deployment in progress) with that reason.
 *
 * Apply re-reads the app and the revision right before deactivating: state may have moved since
 * the plan (traffic shifted, a new deployment). A revision that now carries traffic or became
 * the latest, or is now addressed by a label, is refused with {@link RevisionStateChangedError}; one already inactive is `skipped`.
 */
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceNotFoundError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { TargetConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { readContainerAppInventory, type ContainerAppInventory, type RevisionInventory } from './shared/container-apps.ts';
import type { ApplyResult, Check, KeptItem, PlannedAction, Runbook, RunbookContext, TargetPlan } from './runbook.ts';

/** The `revision-cleanup` policy of a target, as the config schema parses it. */
export type RevisionCleanupPolicy = NonNullable<TargetConfig['runbooks']['revision-cleanup']>;

const HOUR_MS = 3_600_000;
const ACTION_KIND = 'deactivate-revision';

/**
 * Apply refused to deactivate a revision because its state changed since the plan: it now
 * receives traffic, or it became the latest (or latest ready) revision. Nothing was changed.
 */
export class RevisionStateChangedError extends OpsAutopilotError {
  override readonly name: string = 'RevisionStateChangedError';
  /** ARM ID of the container app. */
  readonly resourceId: string;
  readonly revision: string;

  constructor(resourceId: string, revision: string, found: string) {
    super(
      `deactivate revision ${revision} of ${resourceId} refused: expected the revision to carry no traffic and not to be the latest or latest ready revision (as planned), found ${found}; nothing was changed, re-plan`,
      { context: { resourceId, revision, found } },
    );
    this.resourceId = resourceId;
    this.revision = revision;
  }
}

/** A planned action's details that apply does not find as expected (a hand-edited plan). */
export class InvalidPlannedActionError extends OpsAutopilotError {
  override readonly name: string = 'InvalidPlannedActionError';
}

/** Traffic a revision receives from the app's ingress rules, in percent. */
export function trafficOf(
  revisionName: string,
  traffic: ContainerAppInventory['traffic'],
  latestRevisionName: string | undefined,
): number {
  const lower = revisionName.toLowerCase();
  return traffic
    .filter(
      (rule) =>
        rule.revisionName?.toLowerCase() === lower ||
        (rule.latestRevision && latestRevisionName !== undefined && latestRevisionName.toLowerCase() === lower),
    )
    .reduce((sum, rule) => sum + rule.weight, 0);
}

/** Traffic labels that address a revision by name (a label serves its revision whatever the weight). */
export function labelsOf(revisionName: string, traffic: ContainerAppInventory['traffic']): string[] {
  const lower = revisionName.toLowerCase();
  return traffic
    .filter((rule) => rule.label !== undefined && rule.label !== '' && rule.revisionName?.toLowerCase() === lower)
    .map((rule) => `'${rule.label ?? ''}'`);
}

/** Reasons a revision must not be deactivated whatever the keep count; empty when none. */
function protections(app: ContainerAppInventory, revision: RevisionInventory, now: Date, minAgeHours: number): string[] {
  const reasons: string[] = [];
  // The revision's own trafficWeight and the ingress rules can disagree while an update rolls out; either one protects.
  const weight = Math.max(revision.trafficWeight, trafficOf(revision.name, app.traffic, app.latestRevisionName));
  if (weight > 0) reasons.push(`carries ${String(weight)}% of ingress traffic`);
  const labels = labelsOf(revision.name, app.traffic);
  if (labels.length > 0) reasons.push(`is addressed by traffic label ${labels.join(', ')}`);
  if (sameName(revision.name, app.latestRevisionName)) reasons.push('is the latest revision');
  if (sameName(revision.name, app.latestReadyRevisionName)) reasons.push('is the latest ready revision');
  if (revision.createdTime === undefined) {
    reasons.push('reports no creation time, so its age cannot be checked against minAgeHours');
  } else {
    const ageHours = (now.getTime() - new Date(revision.createdTime).getTime()) / HOUR_MS;
    if (ageHours < minAgeHours) {
      reasons.push(`created ${ageHours.toFixed(1)} h ago, younger than the minimum age of ${String(minAgeHours)} h`);
    }
  }
  return reasons;
}

function sameName(a: string, b: string | undefined): boolean {
  return b !== undefined && a.toLowerCase() === b.toLowerCase();
}

function ageDays(createdTime: string | undefined, now: Date): string {
  if (createdTime === undefined) return 'unknown age';
  return `created ${String(Math.floor((now.getTime() - new Date(createdTime).getTime()) / (24 * HOUR_MS)))} days ago`;
}

/**
 * Plans the cleanup of one Container App from its inventory entry (pure: no Azure call).
 * Exported for the executor's previews and for tests of the rules.
 */
export function planRevisionCleanup(app: ContainerAppInventory, policy: RevisionCleanupPolicy, now: Date): TargetPlan {
  const active = app.revisions
    .filter((revision) => revision.active)
    .sort((a, b) => (b.createdTime ?? '').localeCompare(a.createdTime ?? ''));
  const actions: PlannedAction[] = [];
  const kept: KeptItem[] = [];
  const single = app.activeRevisionsMode?.toLowerCase() === 'single';

  active.forEach((revision, index) => {
    const reasons = protections(app, revision, now, policy.minAgeHours);
    if (index < policy.keep) reasons.unshift(`among the newest ${String(policy.keep)} active revision(s)`);
    if (single && reasons.length === 0) {
      reasons.push('the app is in Single revision mode, where the platform deactivates superseded revisions itself');
    }
    if (reasons.length > 0) {
      kept.push({ resource: revision.name, reason: reasons.join('; ') });
      return;
    }
    actions.push({
      id: `${ACTION_KIND}:${revision.name}`,
      kind: ACTION_KIND,
      resource: `${app.targetId}/revisions/${revision.name}`,
      description: `deactivate revision ${revision.name} of ${app.name} (${ageDays(revision.createdTime, now)}, no traffic, not latest)`,
      destructive: true,
      details: {
        app: app.targetId,
        revision: revision.name,
        createdTime: revision.createdTime ?? null,
        images: revision.images.join(' '),
      },
    });
  });

  const remaining = active.length - actions.length;
  const checks: Check[] = [
    {
      status: 'ok',
      code: 'revision-cleanup.active-revisions',
      message: `${app.name}: ${String(active.length)} active revision(s), ${String(actions.length)} to deactivate, ${String(remaining)} stay active`,
      expected: `at most ${String(policy.keep)} active revision(s) plus those carrying traffic, latest or younger than ${String(policy.minAgeHours)} h`,
      found: `${String(active.length)} active (${app.activeRevisionsMode ?? 'unknown'} revision mode); ${String(remaining)} after cleanup`,
    },
  ];
  return { targetId: app.targetId, kind: 'containerApp', actions, checks, kept };
}

function detailString(action: PlannedAction, key: string): string {
  const value = action.details[key];
  if (typeof value !== 'string' || value === '') {
    throw new InvalidPlannedActionError(`${action.kind} ${action.id}: expected details.${key} to be a non-empty string, found ${JSON.stringify(value ?? null)}`, {
      context: { actionId: action.id, field: key },
    });
  }
  return value;
}

/** Re-reads the app and the revision, refuses on changed state, then deactivates. */
async function applyDeactivation(clients: AzureClients, target: TargetConfig, action: PlannedAction): Promise<ApplyResult> {
  if (action.kind !== ACTION_KIND) {
    throw new InvalidPlannedActionError(`revision-cleanup on ${target.id}: expected an action of kind ${ACTION_KIND}, found ${action.kind}`, {
      context: { resourceId: target.id, actionId: action.id },
    });
  }
  const id = parseResourceId(target.id);
  const revisionName = detailString(action, 'revision');
  const revisionId = `${id.id}/revisions/${revisionName}`;
  const client = await clients.containerAppsClient(id.subscriptionId);
  const app = await callAzure({ resourceId: id.id, operation: 'get Container App' }, () => client.containerApps.get(id.resourceGroup, id.name));
  let revision;
  try {
    revision = await callAzure({ resourceId: revisionId, operation: 'get Container App revision' }, () =>
      client.containerAppsRevisions.getRevision(id.resourceGroup, id.name, revisionName),
    );
  } catch (error) {
    // Inactive revisions beyond maxInactiveRevisions are purged by the platform: gone is as good as inactive.
    if (error instanceof ResourceNotFoundError) return { outcome: 'skipped', message: `revision ${revisionName} no longer exists` };
    throw error;
  }
  if (revision.active !== true) return { outcome: 'skipped', message: `revision ${revisionName} is already inactive` };

  const traffic = (app.configuration?.ingress?.traffic ?? []).map((rule) => ({
    ...(rule.revisionName === undefined ? {} : { revisionName: rule.revisionName }),
    latestRevision: rule.latestRevision === true,
    weight: rule.weight ?? 0,
    ...(rule.label === undefined ? {} : { label: rule.label }),
  }));
  const changes: string[] = [];
  const weight = Math.max(revision.trafficWeight ?? 0, trafficOf(revisionName, traffic, app.latestRevisionName));
  if (weight > 0) changes.push(`it now receives ${String(weight)}% of ingress traffic`);
  const labels = labelsOf(revisionName, traffic);
  if (labels.length > 0) changes.push(`it is now addressed by traffic label ${labels.join(', ')}`);
  if (sameName(revisionName, app.latestRevisionName)) changes.push('it is now the latest revision');
  if (sameName(revisionName, app.latestReadyRevisionName)) changes.push('it is now the latest ready revision');
  if (changes.length > 0) throw new RevisionStateChangedError(id.id, revisionName, changes.join(' and '));

  await callAzure({ resourceId: revisionId, operation: 'Microsoft.App/containerApps/revisions.deactivate', expected: 'the revision to be deactivated' }, () =>
    client.containerAppsRevisions.deactivateRevision(id.resourceGroup, id.name, revisionName),
  );
  return { outcome: 'applied', message: `deactivated revision ${revisionName} of ${id.name}` };
}

/** The `revision-cleanup` runbook. */
export const revisionCleanupRunbook: Runbook<RevisionCleanupPolicy> = {
  name: 'revision-cleanup',
  description: 'Deactivate old Container Apps revisions: keep the newest N active, never one with traffic, the latest, or a young one',
  policyOf: (target) => target.runbooks['revision-cleanup'],
  async plan(context: RunbookContext, target: TargetConfig, policy: RevisionCleanupPolicy): Promise<TargetPlan> {
    const app = await readContainerAppInventory(context.clients, target.id, target.displayName);
    return planRevisionCleanup(app, policy, context.now());
  },
  apply(context: RunbookContext, target: TargetConfig, _policy: RevisionCleanupPolicy, action: PlannedAction): Promise<ApplyResult> {
    return applyDeactivation(context.clients, target, action);
  },
};
