/**
 * `rotationOrchestrator`: rotates one Key Vault secret by its policy without ever losing a
 * working credential.
 *
 * plan (the current version works? due? stale?) → per-secret lock → store the new credential
 * first, as a pending version (for a storage key: regenerate the key not in use, then store it
 * with the flipped CredentialId) → reset the server's password (PostgreSQL, a long-running
 * PATCH) → verify the new credential for real (a login, a storage request) → mark it active →
 * derived secrets → consumers pick it up (restart or the references refresh) → verifyHealth of
 * each → unlock → after the grace period, disable the previous version.
 *
 * On a failure after the store: the previous password goes back on the server (it is still the
 * previous version in Key Vault), that login is verified, the pending version is marked failed
 * and disabled, the previous value becomes the latest version again (so references without a
 * version still resolve), derived secrets and consumers follow, and the run escalates. At every
 * point some enabled version works: the old one until the new one is proven, both in between.
 *
 * Inputs, outputs, custom status and history carry references (vault, name, version) and facts,
 * never a value. Deterministic: time from `context.df.currentUtcDateTime`, all I/O in activities.
 */
import type { OrchestrationContext, Task } from 'durable-functions';
import { verifyHealth, type VerifyHealthResult } from '../health/verify-health.ts';
import { ROTATION_ACTIVITIES as A } from '../rotation/names.ts';
import type { RotationFinishInput, RotationPlan, RotationStepRecord, SecretRef } from '../rotation/steps.ts';
import type { RunTrigger } from '../runs/run-record.ts';
import { activityRetry, failureText } from './restore.ts';

/** Input of {@link rotationOrchestrator}: references only. */
export interface RotationInput {
  readonly vault: string;
  readonly secret: string;
  readonly trigger: RunTrigger;
  readonly requestedBy?: string;
  /** The version an event named: when it is no longer the latest, the secret was rotated already and nothing is done. */
  readonly expectedVersion?: string;
  /** Rotate only when the policy says it is due (the daily timer, near-expiry events). */
  readonly onlyIfDue?: boolean;
}

/** How a rotation ended. */
export type RotationOutcome =
  | 'invalid'
  | 'stale'
  | 'not-due'
  | 'locked'
  | 'current-broken'
  | 'store-failed'
  | 'rotated'
  | 'rolled-back'
  | 'rollback-failed';

/** The output of {@link rotationOrchestrator} (also in the run record). */
export interface RotationOutput {
  readonly id: string;
  readonly runId: string;
  readonly vault: string;
  readonly secret: string;
  readonly outcome: RotationOutcome;
  /** The rotation did what was asked (including "nothing to do"). */
  readonly succeeded: boolean;
  /** A new credential was stored and proven to work, and is the active version. */
  readonly verified: boolean;
  readonly summary: string;
  readonly plan?: RotationPlan;
  readonly previousVersion?: string;
  readonly newVersion?: string;
  readonly derived?: readonly SecretRef[];
  readonly health?: readonly VerifyHealthResult[];
  readonly rollbackHealth?: readonly VerifyHealthResult[];
  readonly steps: readonly RotationStepRecord[];
  readonly startedAt: string;
  readonly endedAt: string;
}

/** The rotation orchestration; see the module comment. */
export function* rotationOrchestrator(context: OrchestrationContext): Generator<Task, RotationOutput, unknown> {
  const input = context.df.getInput<RotationInput>();
  const id = context.df.instanceId;
  const runId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? id : context.df.newGuid(id);
  const startedAt = context.df.currentUtcDateTime.toISOString();
  const steps: RotationStepRecord[] = [];
  const log = (step: string, outcome: RotationStepRecord['outcome'], message: string): void => {
    steps.push({ at: context.df.currentUtcDateTime.toISOString(), step, outcome, message });
  };
  const now = (): string => context.df.currentUtcDateTime.toISOString();
  const status = (phase: string, extra: Record<string, unknown> = {}): void => {
    context.df.setCustomStatus({ phase, vault: input.vault, secret: input.secret, steps: steps.length, ...extra });
  };
  let plan: RotationPlan | undefined;
  let pending: SecretRef | undefined;
  let locked = false;
  const derived: SecretRef[] = [];
  const health: VerifyHealthResult[] = [];
  const rollbackHealth: VerifyHealthResult[] = [];
  let verified = false;

  function* unlock(outcome: string): Generator<Task, void, unknown> {
    if (!locked) return;
    try {
      yield context.df.callActivityWithRetry(A.lock, activityRetry(), { vault: input.vault, secret: input.secret, owner: id, action: 'release', now: now(), outcome });
      locked = false;
    } catch (error) {
      log('unlock', 'failed', failureText(error));
    }
  }

  function* finish(outcome: RotationOutcome, succeeded: boolean, summary: string, escalate = false): Generator<Task, RotationOutput, unknown> {
    yield* unlock(`${outcome}: ${summary}`);
    status('finishing', { outcome });
    const endedAt = now();
    const finishInput: RotationFinishInput = {
      runId,
      trigger: input.trigger,
      ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }),
      startedAt,
      endedAt,
      vaultId: plan?.vaultId ?? `/unknown/vaults/${input.vault}`,
      secret: input.secret,
      outcome: `${outcome}: ${summary}`,
      succeeded,
      escalate,
      steps: [...steps],
    };
    if (plan !== undefined) {
      try {
        yield context.df.callActivityWithRetry(A.finish, activityRetry(), finishInput);
      } catch (error) {
        log('record', 'failed', `the run record or notifications failed: ${failureText(error)}`);
      }
    }
    const output: RotationOutput = {
      id,
      runId,
      vault: input.vault,
      secret: input.secret,
      outcome,
      succeeded,
      verified,
      summary,
      ...(plan === undefined ? {} : { plan }),
      ...(plan?.current === undefined ? {} : { previousVersion: plan.current.version }),
      ...(pending === undefined ? {} : { newVersion: pending.version }),
      ...(derived.length === 0 ? {} : { derived: [...derived] }),
      ...(health.length === 0 ? {} : { health: [...health] }),
      ...(rollbackHealth.length === 0 ? {} : { rollbackHealth: [...rollbackHealth] }),
      steps: [...steps],
      startedAt,
      endedAt,
    };
    status('done', { outcome, summary, verified });
    return output;
  }

  // 1. Plan: read-only.
  status('planning');
  try {
    plan = (yield context.df.callActivityWithRetry(A.plan, activityRetry(), { vault: input.vault, secret: input.secret, now: now(), ...(input.expectedVersion === undefined ? {} : { expectedVersion: input.expectedVersion }) })) as RotationPlan;
  } catch (error) {
    log('plan', 'failed', failureText(error));
    return yield* finish('invalid', false, failureText(error));
  }
  const previous: SecretRef | undefined = plan.current === undefined ? undefined : { vault: plan.vault, name: plan.secret, version: plan.current.version };
  log('plan', 'applied', `current version ${previous?.version ?? '(none)'}: ${plan.currentDetail}; ${plan.dueDetail}`);
  if (plan.stale) {
    log('plan', 'skipped', `version ${input.expectedVersion ?? ''} is no longer the latest (${previous?.version ?? 'none'}): already rotated`);
    return yield* finish('stale', true, `${plan.vault}/${plan.secret}: version ${input.expectedVersion ?? ''} was already rotated; nothing to do`);
  }
  if (input.onlyIfDue === true && !plan.due) return yield* finish('not-due', true, `${plan.vault}/${plan.secret} is not due (${plan.dueDetail})`);

  // 2. The per-secret lock.
  status('locking');
  try {
    yield context.df.callActivityWithRetry(A.lock, activityRetry(), { vault: plan.vault, secret: plan.secret, owner: id, action: 'acquire', now: now() });
    locked = true;
  } catch (error) {
    log('lock', 'failed', failureText(error));
    return yield* finish('locked', false, failureText(error));
  }
  if (previous !== undefined && !plan.currentWorks) {
    log('check', 'failed', plan.currentDetail);
    return yield* finish('current-broken', false, `the current credential does not work (${plan.currentDetail}); rotating now could leave nothing to fall back to, so nothing was changed`, true);
  }

  // 3. Store the new credential first, as a pending version.
  status('storing');
  try {
    pending = (yield context.df.callActivityWithRetry(A.store, activityRetry(), { plan, owner: id, now: now() })) as SecretRef;
  } catch (error) {
    log('store', 'failed', failureText(error));
    return yield* finish('store-failed', false, `the new version could not be stored (${failureText(error)}); the current version is unchanged`, true);
  }
  log('store', 'applied', `stored version ${pending.version} (pending)${plan.nextCredentialId === undefined ? '' : ` holding ${plan.nextCredentialId}`}`);
  const stored: SecretRef = pending;
  const currentPlan: RotationPlan = plan;

  function* rollback(reason: string, pickedUp: boolean): Generator<Task, RotationOutput, unknown> {
    status('rolling-back', { reason });
    let restoredWorks = previous === undefined;
    if (previous !== undefined) {
      if (currentPlan.kind === 'postgresAdminPassword') {
        try {
          yield context.df.callActivityWithRetry(A.reset, activityRetry(), { plan: currentPlan, ref: previous });
          log('restore-password', 'applied', `admin password set back to version ${previous.version}`);
        } catch (error) {
          log('restore-password', 'failed', failureText(error));
        }
      }
      try {
        const check = (yield context.df.callActivityWithRetry(A.verify, activityRetry(), { plan: currentPlan, ref: previous })) as { works: boolean; detail: string };
        restoredWorks = check.works;
        log('verify-previous', check.works ? 'applied' : 'failed', check.detail);
      } catch (error) {
        log('verify-previous', 'failed', failureText(error));
      }
    }
    if (!restoredWorks) {
      // The pending version stays enabled: it may be the only one that works.
      return yield* finish('rollback-failed', false, `${reason}; the previous credential could NOT be verified after putting it back, so version ${stored.version} was left enabled; escalated`, true);
    }
    try {
      yield context.df.callActivityWithRetry(A.mark, activityRetry(), { ref: stored, state: 'failed', disable: true });
      log('mark-failed', 'applied', `version ${stored.version} marked failed and disabled`);
    } catch (error) {
      log('mark-failed', 'failed', failureText(error));
    }
    if (previous !== undefined) {
      try {
        const reinstated = (yield context.df.callActivityWithRetry(A.reinstate, activityRetry(), { plan: currentPlan, previous, owner: id, now: now() })) as SecretRef;
        log('reinstate', 'applied', `version ${reinstated.version} holds the previous value again as the latest`);
        if (currentPlan.derived.length > 0) {
          const refs = (yield context.df.callActivityWithRetry(A.derived, activityRetry(), { plan: currentPlan, source: reinstated, owner: id })) as SecretRef[];
          log('derived-back', 'applied', refs.map((ref) => `${ref.name}/${ref.version}`).join(', '));
        }
      } catch (error) {
        log('reinstate', 'failed', failureText(error));
      }
    }
    if (pickedUp) {
      for (const consumer of currentPlan.consumers) {
        try {
          yield context.df.callActivityWithRetry(A.pickUp, activityRetry(), { consumerId: consumer.id, pickUp: consumer.pickUp });
        } catch (error) {
          log('pick-up-back', 'failed', `${consumer.id}: ${failureText(error)}`);
        }
        const verdict = yield* verifyHealth(context, { targetId: consumer.id, ...currentPlan.verify });
        rollbackHealth.push(verdict);
        log('verify-back', verdict.healthy ? 'applied' : 'failed', `${consumer.id}: ${verdict.reason}`);
      }
    }
    pending = stored;
    return yield* finish('rolled-back', false, `${reason}; the previous credential is back and verified, version ${stored.version} is failed and disabled; escalated`, true);
  }

  // 4. Reset the server (PostgreSQL).
  if (plan.kind === 'postgresAdminPassword') {
    status('resetting', { version: stored.version });
    try {
      yield context.df.callActivityWithRetry(A.reset, activityRetry(), { plan, ref: stored });
      log('reset', 'applied', `admin password of ${plan.resourceId ?? ''} reset to version ${stored.version}`);
    } catch (error) {
      log('reset', 'failed', failureText(error));
      return yield* rollback(`the password reset failed (${failureText(error)})`, false);
    }
  }

  // 5. Verify the new credential for real.
  status('verifying-credential', { version: stored.version });
  let check: { works: boolean; detail: string };
  try {
    check = (yield context.df.callActivityWithRetry(A.verify, activityRetry(), { plan, ref: stored })) as { works: boolean; detail: string };
  } catch (error) {
    check = { works: false, detail: failureText(error) };
  }
  log('verify', check.works ? 'applied' : 'failed', check.detail);
  if (!check.works) return yield* rollback(`the new credential does not work (${check.detail})`, false);
  verified = true;

  // 6. Active, derived secrets, consumers.
  status('activating', { version: stored.version });
  try {
    yield context.df.callActivityWithRetry(A.mark, activityRetry(), { ref: stored, state: 'active', disable: false });
    log('mark-active', 'applied', `version ${stored.version} is active`);
    if (plan.derived.length > 0) {
      const refs = (yield context.df.callActivityWithRetry(A.derived, activityRetry(), { plan, source: stored, owner: id })) as SecretRef[];
      derived.push(...refs);
      log('derived', 'applied', refs.map((ref) => `${ref.name}/${ref.version}`).join(', '));
    }
  } catch (error) {
    log('activate', 'failed', failureText(error));
    verified = false;
    return yield* rollback(`activating the new version failed (${failureText(error)})`, false);
  }
  status('picking-up', { consumers: plan.consumers.map((consumer) => consumer.id) });
  for (const consumer of plan.consumers) {
    try {
      yield context.df.callActivityWithRetry(A.pickUp, activityRetry(), { consumerId: consumer.id, pickUp: consumer.pickUp });
      log('pick-up', 'applied', `${consumer.pickUp} ${consumer.id}`);
    } catch (error) {
      log('pick-up', 'failed', `${consumer.id}: ${failureText(error)}`);
    }
  }
  status('verifying-consumers', { consumers: plan.consumers.map((consumer) => consumer.id) });
  for (const consumer of plan.consumers) {
    const verdict = yield* verifyHealth(context, { targetId: consumer.id, ...plan.verify });
    health.push(verdict);
    log('verify-health', verdict.healthy ? 'applied' : 'failed', `${consumer.id}: ${verdict.reason}`);
  }
  const unhealthy = health.filter((verdict) => !verdict.healthy);
  if (unhealthy.length > 0) {
    verified = false;
    return yield* rollback(`${unhealthy.map((verdict) => verdict.targetId).join(', ')} not healthy with the new credential`, true);
  }
  yield* unlock(`rotated to ${stored.version}`);

  // 7. Grace, then the previous version is disabled.
  if (previous !== undefined) {
    if (plan.graceHours > 0) {
      status('grace', { until: new Date(context.df.currentUtcDateTime.getTime() + plan.graceHours * 3_600_000).toISOString() });
      yield context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + plan.graceHours * 3_600_000));
    }
    try {
      yield context.df.callActivityWithRetry(A.disable, activityRetry(), { ref: previous });
      log('disable-previous', 'applied', `version ${previous.version} disabled after ${plan.graceHours} h of grace`);
    } catch (error) {
      log('disable-previous', 'failed', failureText(error));
    }
  }
  return yield* finish('rotated', true, `${plan.vault}/${plan.secret} rotated to version ${stored.version}: verified${plan.consumers.length === 0 ? '' : `, ${plan.consumers.length} consumer(s) healthy`}`);
}
