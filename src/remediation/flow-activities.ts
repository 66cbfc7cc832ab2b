/**
 * The activities of the remediation flow, as plain functions of their input and their
 * dependencies (config, client layer, services): no `@azure/functions`, no `durable-functions`.
 * `src/orchestrators/remediation.ts` registers them and calls them in order.
 *
 * Every activity runs at least once (a worker may die after it ran and before its result was
 * kept), so each is idempotent:
 * - `match` and `checkResolved` only read;
 * - `guardrails` passes a reservation key that is the same for every attempt of one rung;
 * - `act` and `undo` keep a step journal (one blob per rung and step in the run-record
 *   container): the plan is written before the change and the result after it, so a retry
 *   reuses the plan it made (a scale to N stays a scale to N, never N + step again) and does not
 *   apply again what the journal says was applied. Only a crash between the change and the
 *   journal write can repeat it, and every action's `apply` is idempotent against its plan.
 * - `finish` writes the run record once (a record is never overwritten) and sends its
 *   notifications only when it wrote it.
 * Every one of them throws on failure; the orchestrator decides what a failure means.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { AzureClients } from '../azure/clients.ts';
import { ResourceConflictError, ResourceNotFoundError, callAzure } from '../azure/errors.ts';
import { parseResourceId, resourceIdKey } from '../azure/resource-id.ts';
import { parseCommonAlert } from '../alerts/common-alert-schema.ts';
import { parseEvent, type ParsedEvent } from '../events/event-grid-schema.ts';
import { targetKind, type EstateConfig, type TargetConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { sendRunNotifications } from '../notify/send-notifications.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { ResourceLockHeldError, resourceLocksFor } from '../runs/resource-lock.ts';
import { createRunRecordStore, runRecordDestination } from '../runs/run-record-store.ts';
import { startRun, type NotificationRecord, type RunRecord, runRecordBlobName } from '../runs/run-record.ts';
import type { RunLogger } from '../runs/run-log.ts';
import { redactSecrets, redactString } from '../runs/secret-guard.ts';
import { incidentDedupKey, remediationRunId } from './flow-ids.ts';
import type {
  ActionPlan,
  GuardrailDecision,
  GuardrailOutcome,
  Json,
  MatchResult,
  RemediationRule,
  RemediationServices,
  VerifySpec,
} from './flow-services.ts';

/** What an activity works with. */
export interface FlowDeps {
  readonly config: EstateConfig;
  /**
   * The allow-list: the estate's resolved targets ({@link ../config/resolve.ts}, scope matches
   * included). Default: the config's explicit targets.
   */
  readonly targets?: readonly TargetConfig[];
  readonly clients: AzureClients;
  readonly services: RemediationServices;
  readonly logger: RunLogger;
  readonly now: () => Date;
}

/** The input of a remediation orchestration, as the intake triggers start it. No secrets: payloads are redacted. */
export interface RemediationInput {
  readonly source: 'alert' | 'event';
  /** The alert body or the one event, redacted by the secret guard. */
  readonly payload: Json;
  /** The idempotency key the instance id derives from. */
  readonly triggerKey: string;
  /** Who delivered it: `action group`, `Event Grid`, `cli`; never a credential. */
  readonly requestedBy: string;
  readonly receivedAt: string;
}

/** How the flow goes on after matching. */
export type FlowKind = 'ladder' | 'watch' | 'notify' | 'none';

/** The target, as the flow carries it. */
export interface FlowTarget {
  readonly id: string;
  readonly kind: string;
  readonly displayName: string;
}

/** What `match` decided. */
export interface MatchOutcome {
  readonly decision: 'remediate' | 'notify' | 'ignore' | 'reject';
  readonly reason: string;
  readonly flow: FlowKind;
  readonly estate: string;
  readonly dryRun: boolean;
  readonly trigger: 'alert' | 'event';
  readonly monitorCondition: 'Fired' | 'Resolved' | undefined;
  /** One line: the alert rule and severity, or the event type and subject. */
  readonly summary: string;
  readonly target?: FlowTarget;
  readonly rule?: RemediationRule;
  /** For `notify`: what to tell. */
  readonly notice?: { readonly severity: 'warn' | 'fail'; readonly code: string; readonly message: string };
}

/** Reads the target of `id` from the allow-list (as ARM compares ids). */
function configuredTarget(targets: readonly TargetConfig[], id: string): TargetConfig | undefined {
  const key = resourceIdKey(id);
  return targets.find((target) => resourceIdKey(target.id) === key);
}

function flowTarget(target: TargetConfig): FlowTarget {
  return { id: target.id, kind: targetKind(target), displayName: target.displayName ?? parseResourceId(target.id).name };
}

function eventSummary(event: ParsedEvent): string {
  return `${event.type}${event.subject === undefined ? '' : ` ${event.subject}`}`;
}

/** The site an App Service event is about, when the config has it (slots count as their site). */
function siteTargetOf(targets: readonly TargetConfig[], event: ParsedEvent & { kind: 'slot-swap' }): TargetConfig | undefined {
  if (event.siteId === undefined) return undefined;
  const site = event.siteId.replace(/\/slots\/[^/]+$/i, '');
  return configuredTarget(targets, site);
}

/**
 * `match`: reads the alert or event again (the trigger validated it; this is the same pure
 * parser), decides which flow it starts and, for alerts and watch events, asks
 * `matchRemediation` for the target and rule. Foreign targets are ignored, never acted on.
 */
export function matchActivity(input: RemediationInput, deps: Pick<FlowDeps, 'config' | 'services' | 'targets'>): MatchOutcome {
  const { config, services } = deps;
  const targets = deps.targets ?? config.targets;
  const base = { estate: config.estate, dryRun: config.dryRun };
  if (input.source === 'alert') {
    const alert = parseCommonAlert(input.payload);
    const summary = `alert ${alert.alertRule ?? alert.alertId} (${alert.severity ?? 'no severity'}, ${alert.monitorCondition})`;
    const common = { ...base, trigger: 'alert' as const, monitorCondition: alert.monitorCondition, summary };
    if (alert.monitorCondition !== 'Fired') return { ...common, decision: 'ignore', flow: 'none', reason: 'only Fired alerts start a remediation; Resolved closes one' };
    return fromMatch(services.matchRemediation(config, targets, alert), common, 'ladder');
  }
  const event = parseEvent(input.payload);
  const common = { ...base, trigger: 'event' as const, monitorCondition: undefined, summary: eventSummary(event) };
  switch (event.kind) {
    case 'slot-swap': {
      if (event.phase === 'Completed') return fromMatch(services.matchRemediation(config, targets, event), common, 'watch');
      if (event.phase === 'Failed') {
        const target = siteTargetOf(targets, event);
        if (target === undefined) return { ...common, decision: 'ignore', flow: 'none', reason: `site ${event.siteId ?? event.siteName} is not a configured target` };
        return {
          ...common,
          decision: 'notify',
          flow: 'notify',
          reason: 'a slot swap failed',
          target: flowTarget(target),
          notice: {
            severity: 'fail',
            code: 'slot-swap.failed',
            message: `slot swap of ${event.siteName} (${event.sourceSlot ?? '?'} → ${event.targetSlot ?? 'production'}) failed; production was not swapped${event.data.requestId === undefined ? '' : ` (request ${event.data.requestId})`}`,
          },
        };
      }
      return { ...common, decision: 'ignore', flow: 'none', reason: `slot swap ${event.phase} needs no action` };
    }
    case 'resource': {
      const target = configuredTarget(targets, event.resourceId);
      if (target === undefined || targetKind(target) !== 'containerApp') {
        return { ...common, decision: 'ignore', flow: 'none', reason: `${event.resourceId} is not a configured container app` };
      }
      if (event.action !== 'Write' || event.outcome !== 'Success') return { ...common, decision: 'ignore', flow: 'none', reason: `${event.type} needs no action` };
      return fromMatch(services.matchRemediation(config, targets, event), common, 'watch');
    }
    case 'key-vault-secret': {
      const vault = targets.find((target) => targetKind(target) === 'keyVault' && parseResourceId(target.id).name.toLowerCase() === event.vaultName.toLowerCase());
      if (vault === undefined) return { ...common, decision: 'ignore', flow: 'none', reason: `vault ${event.vaultName} is not a configured target` };
      if (event.change === 'NewVersionCreated') return { ...common, decision: 'ignore', flow: 'none', reason: 'a new secret version needs no action' };
      const expires = event.expiresAt === undefined ? 'no expiry date in the event' : `expires ${event.expiresAt.toISOString()}`;
      return {
        ...common,
        decision: 'notify',
        flow: 'notify',
        reason: `secret ${event.change === 'Expired' ? 'expired' : 'near expiry'}; rotation is not automated yet, so a person must rotate it`,
        target: flowTarget(vault),
        notice: {
          severity: event.change === 'Expired' ? 'fail' : 'warn',
          code: event.change === 'Expired' ? 'secret.expired' : 'secret.near-expiry',
          message: `Key Vault secret ${event.vaultName}/${event.secretName} version ${event.version} ${event.change === 'Expired' ? 'has expired' : 'is near expiry'} (${expires}): rotate it`,
        },
      };
    }
    case 'subscription-validation':
      return { ...common, decision: 'ignore', flow: 'none', reason: 'subscription validation is answered by the Event Grid extension' };
    case 'unknown':
      return { ...common, decision: 'ignore', flow: 'none', reason: `event type ${event.type} is not handled; acknowledged and recorded` };
  }
}

function fromMatch(
  match: MatchResult,
  common: Omit<MatchOutcome, 'decision' | 'reason' | 'flow' | 'target' | 'rule' | 'notice'>,
  flow: 'ladder' | 'watch',
): MatchOutcome {
  if (match.decision !== 'remediate') {
    return { ...common, decision: match.decision, flow: 'none', reason: match.reason, ...(match.target === undefined ? {} : { target: flowTarget(match.target) }) };
  }
  if (match.rule.ladder.length === 0) return { ...common, decision: 'reject', flow: 'none', reason: `rule ${match.rule.name} has no ladder`, target: flowTarget(match.target) };
  return {
    ...common,
    decision: 'remediate',
    flow,
    dryRun: common.dryRun || match.dryRun === true,
    reason: `rule ${match.rule.name} matches ${match.target.id}`,
    target: flowTarget(match.target),
    rule: match.rule,
  };
}

/** The verification of a watch: the rule's `watch`, else its first rung's verify. */
export function watchSpec(rule: RemediationRule): VerifySpec | undefined {
  return rule.watch ?? rule.ladder[0]?.verify;
}

function targetOf(deps: Pick<FlowDeps, 'config' | 'targets'>, id: string): TargetConfig {
  const target = configuredTarget(deps.targets ?? deps.config.targets, id);
  if (target === undefined) throw new OpsAutopilotError(`remediation: expected ${id} to be a configured target, found it no longer in the estate configuration; nothing was changed`, { context: { target: id } });
  return target;
}

/** Input of `guardrails`. */
export interface GuardrailsInput {
  readonly targetId: string;
  readonly rule: RemediationRule;
  readonly action: string;
  readonly triggerKey: string;
  readonly monitorCondition: 'Fired' | 'Resolved' | undefined;
  readonly now: string;
  readonly dryRun: boolean;
  readonly reservationKey: string;
  readonly rung: number;
  readonly owner: string;
}

/** What `guardrails` returns. */
export interface GuardrailsOutcome {
  readonly allowed: boolean;
  /** The dry-run gate is closed: plan only. */
  readonly dryRun: boolean;
  readonly decisions: readonly GuardrailDecision[];
  readonly reservation?: Json;
}

/** `guardrails`: every guardrail in the issue's order, through the guardrails module. */
export async function guardrailsActivity(input: GuardrailsInput, deps: FlowDeps): Promise<GuardrailsOutcome> {
  const store = await deps.services.openGuardrailStore(deps.config, deps.clients);
  const result = await deps.services.evaluateGuardrails(store, {
    estate: deps.config.estate,
    target: targetOf(deps, input.targetId),
    rule: input.rule,
    action: input.action,
    triggerKey: input.triggerKey,
    monitorCondition: input.monitorCondition,
    now: new Date(input.now),
    dryRun: input.dryRun,
    reservationKey: input.reservationKey,
    rung: input.rung,
    owner: input.owner,
  });
  return { allowed: result.allowed, dryRun: result.dryRun === true, decisions: result.decisions, ...(result.reservation === undefined ? {} : { reservation: result.reservation }) };
}

/** Input of `commit`. */
export interface CommitInput {
  readonly reservation: Json;
  readonly outcome: GuardrailOutcome;
  /** The orchestration's time (ISO). */
  readonly now?: string;
}

/** `commit`: tells the guardrails how the rung ended (counts, cooldowns, breaker). */
export async function commitActivity(input: CommitInput, deps: FlowDeps): Promise<void> {
  const store = await deps.services.openGuardrailStore(deps.config, deps.clients);
  await deps.services.commitGuardrails(store, input.reservation, input.outcome, input.now === undefined ? undefined : new Date(input.now));
}

/**
 * One step's journal: the plan and an intent before the change (created once: of two attempts
 * that run at once, one applies), the result after it, or the failure that let a retry apply.
 */
interface StepJournal {
  readonly plan?: ActionPlan;
  readonly applying?: boolean;
  readonly result?: ActStepResult;
  readonly failed?: string;
}

/** Where the flow keeps its step journals and resolution markers. */
export interface FlowStore {
  read(name: string): Promise<Json | undefined>;
  write(name: string, value: Json): Promise<void>;
  /** Writes only if nothing is there yet; false when something is. */
  create(name: string, value: Json): Promise<boolean>;
  readonly location: string;
}

/** The flow store in the run-record container (blobs under `remediations/`). */
export async function flowStoreFor(config: EstateConfig, clients: AzureClients): Promise<FlowStore> {
  const service = await clients.blobServiceClient(runRecordDestination(config));
  const container = service.getContainerClient(config.runRecords.container);
  return blobFlowStore(container);
}

function blobFlowStore(container: ContainerClient): FlowStore {
  let ready: Promise<unknown> | undefined;
  const location = container.url.split('?')[0] ?? container.url;
  const put = async (name: string, value: Json, createOnly: boolean): Promise<void> => {
    ready ??= callAzure({ resourceId: location, operation: 'create run-record container' }, () => container.createIfNotExists());
    await ready;
    const body = JSON.stringify(redactSecrets(value));
    const blob = container.getBlockBlobClient(`remediations/${name}`);
    await callAzure({ resourceId: `${location}/remediations/${name}`, operation: 'write remediation journal', expected: createOnly ? 'no journal entry yet' : 'a writable journal' }, () =>
      blob.upload(body, Buffer.byteLength(body), { blobHTTPHeaders: { blobContentType: 'application/json' }, ...(createOnly ? { conditions: { ifNoneMatch: '*' } } : {}) }),
    );
  };
  return {
    location,
    async read(name) {
      const blob = container.getBlockBlobClient(`remediations/${name}`);
      try {
        const buffer = await callAzure({ resourceId: `${location}/remediations/${name}`, operation: 'read remediation journal' }, () => blob.downloadToBuffer());
        return JSON.parse(buffer.toString('utf8')) as Json;
      } catch (error) {
        if (error instanceof ResourceNotFoundError) return undefined;
        throw error;
      }
    },
    async write(name, value) {
      await put(name, value, false);
    },
    async create(name, value) {
      try {
        await put(name, value, true);
        return true;
      } catch (error) {
        if (error instanceof ResourceConflictError) return false;
        throw error;
      }
    },
  };
}

/** Input of `act`. */
export interface ActInput {
  readonly instanceId: string;
  readonly targetId: string;
  readonly rung: number;
  readonly action: string;
  readonly params: Readonly<Record<string, Json>>;
  readonly dryRun: boolean;
}

/** What `act` did. */
export type ActStepResult =
  | { readonly outcome: 'planned'; readonly plan: ActionPlan }
  | { readonly outcome: 'applied' | 'skipped'; readonly plan: ActionPlan; readonly message: string; readonly undo?: Json; readonly replayed?: boolean }
  | { readonly outcome: 'locked'; readonly message: string; readonly holder: string | undefined };

function runbookContext(deps: FlowDeps): RunbookContext {
  return { config: deps.config, clients: deps.clients, logger: deps.logger, now: deps.now };
}

function actionOf(deps: FlowDeps, kind: string, name: string): NonNullable<ReturnType<RemediationServices['getRemediationAction']>> {
  const action = deps.services.getRemediationAction(kind, name);
  if (action === undefined) throw new OpsAutopilotError(`remediation: expected an action ${name} for a ${kind}, found none in the registry; nothing was changed`, { context: { kind, action: name } });
  return action;
}

const stepName = (instanceId: string, rung: number, step: 'act' | 'undo'): string => `${remediationRunId(instanceId)}/rung-${String(rung)}-${step}.json`;

/**
 * `act`: the one dry-run gate and the action. In dry run it only plans (read-only, no lock, no
 * journal). Otherwise it takes (or renews) the remediation's hold on the per-resource lock
 * (owner: the instance id, so a retry re-enters it and anyone else — a runbook run, another
 * remediation — is refused), plans, journals the plan, applies and journals the result. The hold
 * stays: verification and undo run under it, and the finish releases it.
 */
export async function actActivity(input: ActInput, deps: FlowDeps, store: FlowStore): Promise<ActStepResult> {
  const target = targetOf(deps, input.targetId);
  const kind = targetKind(target);
  const action = actionOf(deps, kind, input.action);
  const ctx = runbookContext(deps);
  if (input.dryRun) return { outcome: 'planned', plan: await action.plan(ctx, target, input.params) };
  const name = stepName(input.instanceId, input.rung, 'act');
  const earlier = (await store.read(name)) as StepJournal | undefined;
  if (earlier?.result !== undefined) return { ...earlier.result, ...(earlier.result.outcome === 'locked' ? {} : { replayed: true }) };
  if (earlier?.applying === true && earlier.plan !== undefined) return begunEarlier(earlier.plan);
  const locked = await holdLock(deps, target.id, input.instanceId, input.action, ACT_HOLD_MS);
  if (locked !== undefined) return locked;
  const plan = earlier?.plan ?? (await action.plan(ctx, target, input.params));
  const intent = { plan, applying: true } as unknown as Json;
  // Of two attempts of this step at once (the same activity, re-dispatched), the one that creates the journal applies.
  if (!(await claim(store, name, earlier !== undefined, intent))) return begunEarlier(plan);
  let applied;
  try {
    applied = await action.apply(ctx, target, plan);
  } catch (error) {
    // A failed apply may be retried: the journal no longer claims it began.
    await store.write(name, { plan, failed: failureText(error) } as unknown as Json);
    throw error;
  }
  const result: ActStepResult = { outcome: applied.outcome, plan, message: applied.message, ...(applied.undo === undefined ? {} : { undo: applied.undo }) };
  await store.write(name, { plan, result } as unknown as Json);
  return result;
}

/**
 * How long a hold taken or renewed by `act` or `undo` lasts: the longest long-running operation
 * an action awaits (8 min) and a margin. The orchestration renews it before each verification
 * for that verification's deadline (see {@link lockActivity}).
 */
export const ACT_HOLD_MS = 15 * 60_000;

/**
 * Takes or renews the remediation's hold on the resource lock (owner: the instance id). Returns
 * the `locked` answer when another operation holds it, undefined when this remediation does.
 */
async function holdLock(deps: FlowDeps, targetId: string, owner: string, what: string, holdMs: number): Promise<{ outcome: 'locked'; message: string; holder: string | undefined } | undefined> {
  const { provider } = await resourceLocksFor(deps.config, deps.clients);
  try {
    await provider.hold(targetId, { owner, purpose: `remediation ${owner} ${what}`, holdMs });
    return undefined;
  } catch (error) {
    if (error instanceof ResourceLockHeldError) return { outcome: 'locked', message: error.message, holder: error.holder };
    throw error;
  }
}

/** Input of `lock`: take or renew the hold for `holdSeconds` from now, or release it. */
export interface LockInput {
  readonly instanceId: string;
  readonly targetId: string;
  readonly release?: boolean;
  readonly holdSeconds?: number;
  readonly purpose?: string;
}

/** What `lock` did. */
export type LockResult =
  | { readonly outcome: 'held'; readonly expiresAt: string }
  | { readonly outcome: 'locked'; readonly message: string; readonly holder: string | undefined }
  | { readonly outcome: 'released' | 'not-held' };

/**
 * `lock`: the per-resource lock of a remediation, held across its durable waits (verification
 * timers) as a bounded hold (`src/runs/resource-lock.ts`, `hold`): renewed before each wait for
 * that wait's length, released by the finish of every path. A remediation that crashes and never
 * resumes frees the resource when the hold expires.
 */
export async function lockActivity(input: LockInput, deps: FlowDeps): Promise<LockResult> {
  const { provider } = await resourceLocksFor(deps.config, deps.clients);
  if (input.release === true) return { outcome: (await provider.releaseHold(input.targetId, input.instanceId)) ? 'released' : 'not-held' };
  try {
    const held = await provider.hold(input.targetId, {
      owner: input.instanceId,
      purpose: `remediation ${input.instanceId}${input.purpose === undefined ? '' : ` ${input.purpose}`}`,
      holdMs: (input.holdSeconds ?? ACT_HOLD_MS / 1000) * 1000,
    });
    return { outcome: 'held', expiresAt: held.expiresAt };
  } catch (error) {
    if (error instanceof ResourceLockHeldError) return { outcome: 'locked', message: error.message, holder: error.holder };
    throw error;
  }
}

/** Claims a step: creates its journal entry, or (after a failed attempt, which left one) overwrites it. */
async function claim(store: FlowStore, name: string, exists: boolean, intent: Json): Promise<boolean> {
  if (!exists) return store.create(name, intent);
  await store.write(name, intent);
  return true;
}

/**
 * An earlier attempt of this step began applying it and never recorded how it ended (it crashed,
 * or it still runs): the action is not applied a second time. Verification decides whether it
 * helped, as for any applied action.
 */
function begunEarlier(plan: ActionPlan): ActStepResult {
  return { outcome: 'applied', plan, message: `an earlier attempt of this step began to ${plan.summary}; not repeated (at most once)`, replayed: true };
}

/** Input of `undo`. */
export interface UndoInput {
  readonly instanceId: string;
  readonly targetId: string;
  readonly rung: number;
  readonly action: string;
  readonly undo: Json;
}

/** What `undo` did. */
export type UndoResult = { readonly outcome: 'applied' | 'skipped'; readonly message: string } | { readonly outcome: 'locked'; readonly message: string };

/** `undo`: reverses a rung's action under the same lock, journaled like `act`. */
export async function undoActivity(input: UndoInput, deps: FlowDeps, store: FlowStore): Promise<UndoResult> {
  const target = targetOf(deps, input.targetId);
  const action = actionOf(deps, targetKind(target), input.action);
  if (action.undo === undefined) return { outcome: 'skipped', message: `${input.action} cannot be undone` };
  const name = stepName(input.instanceId, input.rung, 'undo');
  const earlier = (await store.read(name)) as { result?: UndoResult; applying?: boolean } | undefined;
  if (earlier?.result !== undefined) return earlier.result;
  if (earlier?.applying === true) return { outcome: 'applied', message: `an earlier attempt began to undo ${input.action}; not repeated (at most once)` };
  const locked = await holdLock(deps, target.id, input.instanceId, `undo ${input.action}`, ACT_HOLD_MS);
  if (locked !== undefined) return { outcome: 'locked', message: locked.message };
  const intent = { applying: true } as unknown as Json;
  if (!(await claim(store, name, earlier !== undefined, intent))) return { outcome: 'applied', message: `another attempt is undoing ${input.action}; not repeated (at most once)` };
  let done;
  try {
    done = await action.undo(runbookContext(deps), target, input.undo);
  } catch (error) {
    await store.write(name, { failed: failureText(error) });
    throw error;
  }
  const result: UndoResult = { outcome: done.outcome, message: done.message };
  await store.write(name, { result });
  return result;
}

/** The marker a `Resolved` alert leaves for the remediation of its `Fired` notification. */
export interface ResolutionMarker {
  readonly firedInstanceId: string;
  readonly resolvedAt: string;
  readonly alertId: string;
}

/** Where the resolution marker of a remediation lives. */
export const resolutionName = (firedInstanceId: string): string => `resolved/${firedInstanceId}.json`;

/** `checkResolved`: whether a `Resolved` alert arrived for this remediation. */
export async function checkResolvedActivity(input: { readonly instanceId: string }, store: FlowStore): Promise<ResolutionMarker | undefined> {
  const marker = await store.read(resolutionName(input.instanceId));
  return marker === undefined ? undefined : (marker as unknown as ResolutionMarker);
}

/** How a remediation ended. */
export type RemediationOutcome =
  | 'remediated'
  | 'healthy'
  | 'escalated'
  | 'suppressed'
  | 'planned'
  | 'notified'
  | 'ignored'
  | 'rejected'
  | 'resolved'
  | 'failed';

/** The evidence of one rung. */
export interface StepEvidence {
  readonly rung: number;
  readonly action: string;
  readonly guardrails?: readonly GuardrailDecision[];
  readonly allowed?: boolean;
  readonly plan?: { readonly summary: string; readonly reversible: boolean };
  readonly result?: { readonly outcome: string; readonly message: string };
  readonly verify?: { readonly healthy: boolean; readonly reason: string; readonly probes: readonly { readonly at: string; readonly healthy: boolean; readonly summary: string }[] };
  readonly undo?: { readonly outcome: string; readonly message: string };
  readonly commit?: GuardrailOutcome;
  readonly error?: string;
}

/** Input of `finish`. */
export interface FinishInput {
  readonly instanceId: string;
  readonly startedAt: string;
  readonly input: Pick<RemediationInput, 'source' | 'triggerKey' | 'requestedBy'>;
  readonly match: MatchOutcome | undefined;
  readonly outcome: RemediationOutcome;
  readonly reason: string;
  readonly watch?: StepEvidence['verify'];
  readonly steps: readonly StepEvidence[];
  /** Page: trigger on escalation, resolve on a later success or Resolved. */
  readonly page?: 'trigger' | 'resolve';
  /** The last guardrail reservation the remediation made: its in-progress claim ends with the finish. */
  readonly reservation?: Json;
  readonly error?: string;
}

/** What `finish` did. */
export interface FinishResult {
  readonly recordBlob: string;
  readonly written: boolean;
  readonly notifications: readonly NotificationRecord[];
  readonly page?: { readonly outcome: string; readonly message: string };
}

/** Outcomes that tell a person (webhooks, and a page when escalated). */
const NOTIFYING: readonly RemediationOutcome[] = ['escalated', 'planned', 'notified', 'remediated', 'failed'];

/** Builds the run record of a remediation: one target, every step as actions, findings for what a person must know. */
export function remediationRecord(input: FinishInput, deps: Pick<FlowDeps, 'config'>, endedAt: Date): RunRecord {
  const started = new Date(input.startedAt);
  let first = true;
  const recorder = startRun({
    runbook: 'remediation',
    trigger: input.input.source,
    dryRun: input.match?.dryRun ?? deps.config.dryRun,
    estate: deps.config.estate,
    requestedBy: input.input.requestedBy,
    correlationId: input.instanceId,
    runId: remediationRunId(input.instanceId),
    now: () => {
      if (first) {
        first = false;
        return started;
      }
      return endedAt;
    },
  });
  const match = input.match;
  const targetId = match?.target?.id ?? '(no target)';
  const target = recorder.target(targetId, match?.target?.kind);
  target.read('match', `${match?.summary ?? input.input.triggerKey}: ${match?.decision ?? 'not matched'} — ${match?.reason ?? input.reason}`, {
    trigger: input.input.source,
    rule: match?.rule?.name ?? null,
    flow: match?.flow ?? null,
  });
  if (input.watch !== undefined) target.read('watch health', `${input.watch.healthy ? 'healthy' : 'unhealthy'}: ${input.watch.reason}`, { probes: input.watch.probes.length });
  for (const step of input.steps) {
    const blocked = step.guardrails?.filter((decision) => decision.verdict === 'block') ?? [];
    if (step.guardrails !== undefined) {
      target.read(`guardrails ${step.action}`, step.guardrails.map((decision) => `${decision.guardrail}: ${decision.verdict} (${decision.reason})`).join('; ') || 'no guardrail reported', {
        rung: step.rung,
        allowed: step.allowed ?? null,
      });
    }
    if (blocked.length > 0 && step.allowed === false) {
      target.action({ action: step.action, outcome: 'skipped', message: `suppressed: ${blocked.map((decision) => `${decision.guardrail}: ${decision.reason}`).join('; ')}`, details: { rung: step.rung } });
    }
    if (step.result !== undefined) {
      const outcome = step.result.outcome === 'planned' ? 'planned' : step.result.outcome === 'applied' ? 'applied' : step.result.outcome === 'failed' ? 'failed' : 'skipped';
      target.action({ action: step.action, outcome, message: `${step.plan?.summary ?? ''}${step.plan === undefined ? '' : ': '}${step.result.message}`, details: { rung: step.rung, reversible: step.plan?.reversible ?? null } });
    }
    if (step.error !== undefined) target.action({ action: step.action, outcome: 'failed', message: step.error, details: { rung: step.rung } });
    if (step.verify !== undefined) {
      target.read(`verify ${step.action}`, `${step.verify.healthy ? 'healthy' : 'still unhealthy'}: ${step.verify.reason}`, { rung: step.rung, probes: step.verify.probes.length });
    }
    if (step.undo !== undefined) {
      target.action({ action: `undo ${step.action}`, outcome: step.undo.outcome === 'applied' ? 'applied' : 'skipped', message: step.undo.message, details: { rung: step.rung } });
    }
  }
  const finding = findingOf(input);
  if (finding !== undefined) target.finding(finding);
  return recorder.finish({
    ...(input.error === undefined ? {} : { error: new OpsAutopilotError(input.error) }),
    notes: [`remediation ${input.instanceId}: ${input.outcome} — ${input.reason}`],
  });
}

function findingOf(input: FinishInput): { severity: 'ok' | 'info' | 'warn' | 'fail'; code: string; message: string } | undefined {
  switch (input.outcome) {
    case 'escalated':
      return { severity: 'fail', code: 'remediation.escalated', message: `escalated: ${input.reason}` };
    case 'planned':
      return { severity: 'warn', code: 'remediation.dry-run', message: `dry run, nothing was changed; would have done: ${input.steps.map((step) => step.plan?.summary ?? step.action).join(' → ')}` };
    case 'notified':
      return input.match?.notice === undefined ? undefined : { severity: input.match.notice.severity, code: input.match.notice.code, message: input.match.notice.message };
    case 'remediated':
      return { severity: 'warn', code: 'remediation.applied', message: `remediated: ${input.reason}` };
    case 'failed':
      return { severity: 'fail', code: 'remediation.failed', message: `failed: ${input.reason}` };
    case 'suppressed':
      return { severity: 'info', code: 'remediation.suppressed', message: input.reason };
    default:
      return { severity: 'info', code: `remediation.${input.outcome}`, message: input.reason };
  }
}

/**
 * `finish`: writes the run record (once), sends its notifications when it wrote it, and pages
 * (trigger on escalation, resolve on a later success or a Resolved alert) with the incident's
 * dedup key, so a retry neither records nor notifies twice.
 */
export async function finishActivity(input: FinishInput, deps: FlowDeps): Promise<FinishResult> {
  if (input.reservation !== undefined && deps.services.endClaim !== undefined) {
    // Before the record: a retry after a crash ends it again (idempotent), never leaves it held.
    await deps.services.endClaim(await deps.services.openGuardrailStore(deps.config, deps.clients), input.reservation);
  }
  const record = remediationRecord(input, deps, deps.now());
  const blobName = runRecordBlobName(record);
  const store = await createRunRecordStore(deps.config, deps.clients);
  let written = true;
  let notifications: NotificationRecord[] = [];
  let page: FinishResult['page'];
  try {
    await store.read(blobName);
    written = false;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundError)) throw error;
  }
  if (written) {
    if (NOTIFYING.includes(input.outcome) && !(input.outcome === 'remediated' && input.page !== 'resolve')) {
      const agent = await deps.clients.agent();
      notifications = await sendRunNotifications(deps.config, record, agent === undefined ? {} : { agent });
    }
    if (input.page !== undefined) {
      const sent = await deps.services.page(deps.config, deps.clients, {
        event: input.page,
        dedupKey: incidentDedupKey(input.instanceId),
        summary: redactString(`${input.match?.summary ?? input.input.triggerKey}: ${input.outcome} — ${input.reason}`).slice(0, 1024),
        source: input.match?.target?.id ?? deps.config.estate,
        severity: 'critical',
        ...(input.match?.rule?.escalate === undefined ? {} : { targets: escalationNames(input.match.rule.escalate) }),
        details: redactSecrets({ steps: input.steps.map((step) => `${String(step.rung)} ${step.action}: ${step.result?.outcome ?? (step.allowed === false ? 'suppressed' : '-')}${step.verify === undefined ? '' : `, verify ${step.verify.healthy ? 'healthy' : 'unhealthy'}`}${step.undo === undefined ? '' : `, undo ${step.undo.outcome}`}`) }),
      });
      if (sent !== undefined) page = sent;
    }
    const final: RunRecord = { ...record, ...(notifications.length === 0 ? {} : { notifications }), ...(page === undefined ? {} : { notes: [...(record.notes ?? []), `page ${input.page ?? ''}: ${page.outcome} (${page.message})`] }) };
    try {
      await store.write(final);
    } catch (error) {
      // Another attempt wrote it first: the record is evidence and stays as that attempt wrote it.
      if (!(error instanceof ResourceConflictError)) throw error;
      written = false;
    }
  }
  return { recordBlob: blobName, written, notifications, ...(page === undefined ? {} : { page }) };
}

/** The notification names of a rule's escalation (`{ notify: [...] }`), when it says. */
function escalationNames(escalate: unknown): string[] | undefined {
  if (escalate === null || typeof escalate !== 'object' || !('notify' in escalate) || !Array.isArray(escalate.notify)) return undefined;
  return escalate.notify.filter((name): name is string => typeof name === 'string');
}

/** A short, secret-free message of a failure, for evidence. */
export function failureText(error: unknown): string {
  return redactString(errorMessage(error)).slice(0, 2000);
}
