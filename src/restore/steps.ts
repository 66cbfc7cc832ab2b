/**
 * The steps of the restore orchestration, one per durable activity, as plain functions over
 * the runbook context (config, clients, clock). Inputs and outputs are references and facts
 * only; values from Key Vault are read inside a step and never returned. Every step is
 * idempotent, because an activity may run more than once.
 */
import { ResourceConflictError } from '../azure/errors.ts';
import { parseResourceId, sameResourceId } from '../azure/resource-id.ts';
import type { CutoverPolicy, RestorePolicy } from '../config/restore-schema.ts';
import type { EstateConfig } from '../config/schema.ts';
import { sendRunNotifications } from '../notify/send-notifications.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { resourceLocksFor, withResourceLock } from '../runs/resource-lock.ts';
import { createRunRecordStore } from '../runs/run-record-store.ts';
import { startRun, type RunRecord, type RunTrigger } from '../runs/run-record.ts';
import { cutoverConsumer, rollbackConsumer, type CutoverRecord } from './cutover.ts';
import { validateRestoredData, type DataEvidence } from './data-checks.ts';
import {
  deleteOwnedServer,
  findRestoreTarget,
  restoreServerStatus,
  RestoreValidationError,
  startRestoreServer,
  validateRestore,
  type RestorePlan,
  type RestoreRequest,
  type RestoreServerStatus,
  type RestoreStart,
} from './servers.ts';

/** The policy of a source server, or a validation error when the config no longer has one. */
export function restorePolicyOf(config: EstateConfig, sourceServerId: string): RestorePolicy {
  const target = findRestoreTarget(config, sourceServerId);
  if (target === undefined) throw new RestoreValidationError([`server: expected a target with a restore policy, found none for ${sourceServerId}`], { server: sourceServerId });
  return target.restore;
}

function cutoverOf(config: EstateConfig, sourceServerId: string): RestorePolicy & { cutover: CutoverPolicy } {
  const policy = restorePolicyOf(config, sourceServerId);
  if (policy.cutover === undefined) throw new RestoreValidationError([`cutover: expected ${sourceServerId} to have restore.cutover configured, found none`], { server: sourceServerId });
  return { ...policy, cutover: policy.cutover };
}

/** Input of the validate step. */
export interface ValidateStepInput {
  readonly request: RestoreRequest;
  /** The orchestration's clock (ISO). */
  readonly now: string;
  readonly purpose: 'restore' | 'drill';
}

/** The parts of a restore policy the orchestration needs to decide (no secrets, no config reads in the orchestrator). */
export interface PolicySummary {
  readonly restoreTimeoutHours: number;
  readonly approval: RestorePolicy['approval'];
  readonly cutover?: {
    readonly consumers: readonly { readonly id: string; readonly setting: string; readonly restart: boolean }[];
    readonly verify: CutoverPolicy['verify'];
  };
  readonly drill?: NonNullable<RestorePolicy['drill']>;
}

/** A validated plan with what the orchestration needs besides. */
export type ValidatedPlan = RestorePlan & { readonly policy: PolicySummary };

/** Summarises a policy for the orchestration. */
export function policySummary(policy: RestorePolicy): PolicySummary {
  return {
    restoreTimeoutHours: policy.restoreTimeoutHours,
    approval: policy.approval,
    ...(policy.cutover === undefined
      ? {}
      : { cutover: { consumers: policy.cutover.consumers.map((consumer) => ({ id: consumer.id, setting: consumer.setting, restart: consumer.restart })), verify: policy.cutover.verify } }),
    ...(policy.drill === undefined ? {} : { drill: policy.drill }),
  };
}

/** Validates a request; see {@link validateRestore}. The plan gains the source's FQDN and the policy's summary. */
export async function validateStep(ctx: RunbookContext, input: ValidateStepInput): Promise<ValidatedPlan> {
  const plan = await validateRestore(ctx.config, ctx.clients, input.request, new Date(input.now), input.purpose);
  return { ...plan, policy: policySummary(restorePolicyOf(ctx.config, plan.sourceServerId)) };
}

/** Input of the create step. */
export interface CreateStepInput {
  readonly plan: RestorePlan;
  readonly owner: string;
  readonly purpose: 'restore' | 'drill';
}

/** Starts the restore under the source's and the new server's locks (never the old server's data: the source is only read). */
export async function createStep(ctx: RunbookContext, input: CreateStepInput): Promise<RestoreStart> {
  const { provider } = await resourceLocksFor(ctx.config, ctx.clients);
  return withResourceLock(provider, input.plan.newServerId, { owner: input.owner, purpose: `${input.purpose} ${input.owner}` }, () =>
    startRestoreServer(ctx.clients, input.plan, input.owner, input.purpose),
  );
}

/** Input of the status step. */
export interface StatusStepInput {
  readonly plan: RestorePlan;
  readonly owner: string;
  readonly pollerState: string | undefined;
}

/** One look at the restore; see {@link restoreServerStatus}. */
export function statusStep(ctx: RunbookContext, input: StatusStepInput): Promise<RestoreServerStatus> {
  return restoreServerStatus(ctx.clients, input.plan, input.owner, input.pollerState);
}

/** Input of the data validation step. */
export interface ValidateDataStepInput {
  readonly plan: RestorePlan;
  readonly restoredFqdn: string;
  readonly now: string;
}

/** Validates the restored data with the source's policy; see {@link validateRestoredData}. */
export function validateDataStep(ctx: RunbookContext, input: ValidateDataStepInput): Promise<DataEvidence> {
  const policy = restorePolicyOf(ctx.config, input.plan.sourceServerId);
  return validateRestoredData(
    ctx.clients,
    policy,
    { login: input.plan.administratorLogin, sourceFqdn: input.plan.sourceFqdn, restoredFqdn: input.restoredFqdn, restoredName: input.plan.newServerName },
    new Date(input.now),
  );
}

/** Input of the delete step. */
export interface DeleteStepInput {
  readonly serverId: string;
  readonly owner: string;
  /** The source: a delete of it is refused whatever its tags say. */
  readonly sourceServerId: string;
}

/** Deletes a server this owner created (never the source). */
export async function deleteStep(ctx: RunbookContext, input: DeleteStepInput): Promise<'deleted' | 'absent' | 'not-owned'> {
  if (sameResourceId(input.serverId, input.sourceServerId)) return 'not-owned';
  const { provider } = await resourceLocksFor(ctx.config, ctx.clients);
  return withResourceLock(provider, input.serverId, { owner: input.owner, purpose: `delete ${input.owner}` }, () => deleteOwnedServer(ctx.clients, input.serverId, input.owner));
}

/** Input of the cutover step: one consumer. */
export interface CutoverStepInput {
  readonly sourceServerId: string;
  readonly consumerId: string;
  readonly owner: string;
  readonly fqdn: string;
  readonly login: string;
}

/** Repoints one configured consumer at the restored server, under the consumer's lock. */
export async function cutoverStep(ctx: RunbookContext, input: CutoverStepInput): Promise<CutoverRecord> {
  const policy = cutoverOf(ctx.config, input.sourceServerId);
  const consumer = policy.cutover.consumers.find((candidate) => sameResourceId(candidate.id, input.consumerId));
  if (consumer === undefined) throw new RestoreValidationError([`cutover: expected ${input.consumerId} to be a consumer of ${input.sourceServerId}, found it is not`], { server: input.sourceServerId });
  const { provider } = await resourceLocksFor(ctx.config, ctx.clients);
  return withResourceLock(provider, consumer.id, { owner: input.owner, purpose: `restore cutover ${input.owner}` }, () =>
    cutoverConsumer(ctx.clients, policy, consumer, { owner: input.owner, fqdn: input.fqdn, login: input.login }),
  );
}

/** Input of the rollback step. */
export interface RollbackStepInput {
  readonly sourceServerId: string;
  readonly record: CutoverRecord;
  readonly owner: string;
}

/** Puts one consumer's previous connection string back, under its lock. */
export async function rollbackStep(ctx: RunbookContext, input: RollbackStepInput): Promise<{ readonly consumerId: string; readonly restored: string | null; readonly restarted: boolean }> {
  const policy = cutoverOf(ctx.config, input.sourceServerId);
  const consumer = policy.cutover.consumers.find((candidate) => sameResourceId(candidate.id, input.record.consumerId));
  const { provider } = await resourceLocksFor(ctx.config, ctx.clients);
  return withResourceLock(provider, input.record.consumerId, { owner: input.owner, purpose: `restore rollback ${input.owner}` }, () =>
    rollbackConsumer(ctx.clients, input.record, consumer?.restart ?? true),
  );
}

/** One step of a restore or drill as its record shows it. */
export interface StepRecord {
  readonly at: string;
  readonly step: string;
  readonly outcome: 'applied' | 'skipped' | 'failed' | 'planned';
  readonly message: string;
  readonly resource?: string;
}

/** Input of the finish step: what the orchestration did, for the run record and the notifications. */
export interface FinishStepInput {
  readonly runId: string;
  readonly runbook: 'restore' | 'restore-drill';
  readonly trigger: RunTrigger;
  readonly requestedBy?: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly sourceServerId: string;
  readonly outcome: string;
  readonly succeeded: boolean;
  readonly steps: readonly StepRecord[];
  readonly findings: readonly { readonly code: string; readonly severity: 'ok' | 'info' | 'warn' | 'fail'; readonly message: string }[];
}

/**
 * Writes the run record (once: a retried step finds it written) and sends the notifications
 * the record calls for.
 */
export async function finishStep(ctx: RunbookContext, input: FinishStepInput): Promise<{ readonly record: string; readonly notifications: number }> {
  let clock = new Date(input.startedAt);
  const run = startRun({ runbook: input.runbook, trigger: input.trigger, dryRun: false, estate: ctx.config.estate, runId: input.runId, correlationId: input.runId, now: () => clock, ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }) });
  const target = run.target(input.sourceServerId, 'postgresFlexibleServer');
  for (const step of input.steps) target.action({ action: step.step, outcome: step.outcome, message: `${step.at}: ${step.message}`, ...(step.resource === undefined ? {} : { resource: step.resource }) });
  for (const finding of input.findings) target.finding(finding);
  if (!input.succeeded) target.fail(new Error(input.outcome), 'restore');
  clock = new Date(input.endedAt);
  const record: RunRecord = run.finish({ notes: [`outcome: ${input.outcome}`] });
  let location = 'not stored (no runRecords configured)';
  if (ctx.config.runRecords.blobServiceUrl !== undefined || ctx.config.runRecords.storageAccountId !== undefined) {
    const store = await createRunRecordStore(ctx.config, ctx.clients);
    try {
      location = (await store.write(record)).url;
    } catch (error) {
      if (!(error instanceof ResourceConflictError)) throw error;
      // Written by an earlier attempt of this step; its notifications went out with it.
      return { record: `${store.location} (already written)`, notifications: 0 };
    }
  }
  ctx.logger.log(input.succeeded ? 'info' : 'warn', { event: `${input.runbook}.finished`, runId: input.runId, outcome: input.outcome, server: input.sourceServerId });
  const sent = await sendRunNotifications(ctx.config, record, { agent: await ctx.clients.agent() });
  return { record: location, notifications: sent.length };
}

/** The subscription of a server id (for messages). */
export function subscriptionOf(serverId: string): string {
  return parseResourceId(serverId).subscriptionId;
}
