/**
 * The guardrails of alert and event remediation: one module, on every path (alert, event, HTTP,
 * CLI). Before each rung of a ladder the caller asks {@link evaluateGuardrails}; after the rung it
 * tells {@link commitGuardrails} how it went. The guardrails, in the issue's order, each decision
 * returned with its reason:
 *
 * 1. `kill-switch` (OPS_AUTOPILOT_KILL_SWITCH=on; any value but on/off also stops, fail closed)
 *    and `target-off` (`remediation: off` / mode off);
 * 2. `allow-list`: the caller matched the target and rule with `matchRemediation`; the action must
 *    be a rung of that rule;
 * 3. `fired` (a Resolved alert never acts) and `dedupe` (by alert / event id: a second delivery,
 *    or another orchestration for the same trigger, is a duplicate);
 * 4. `maintenance`: no action while a declared window is open;
 * 5. `breaker`: per target, open after N failed remediations (every rung failed), closed by a
 *    person ({@link resetGuardrails}) or after the cool-off;
 * 6. `cap`: per target and action in any hour and any 24 hours, and per estate in any 24 hours;
 * 7. `cooldown`: per target and action, doubling on each repeat up to a cap (CrashLoopBackOff),
 *    back to the base after a healthy period; and `in-progress`: while one trigger's ladder runs
 *    on a target, every other trigger for it is suppressed (the restart-storm guard);
 * 8. `lock`: the per-resource lock (`src/runs/resource-lock.ts`), shared with the runbook
 *    executor, taken by the caller before its first change and held until it finishes;
 * 9. `dry-run`: the same gate as the runbooks: in dry-run the rung is allowed to be planned and
 *    recorded, never applied.
 *
 * State lives in the Azure Table `guardrails` (src/state/tables.ts), shared by every instance:
 * one row per target (breaker, per-action counts and cooldowns, the running trigger), one row
 * for the estate's daily count, one row per trigger (dedupe). Every write is ETag-conditional
 * (read-modify-write): a reservation is made atomically on the target's row, so of 100
 * concurrent alerts for one target exactly one wins and the rest are suppressed with the
 * reason; counts are never lost to a race. Reserve, then commit: a rung reserves before it acts
 * (counts and cooldown move at once) and commits afterwards; `not-applied` gives the reservation
 * back. A reservation never committed (a crash) expires; its count stays (conservative).
 *
 * Dry-run state is kept apart (partition keys prefixed `dry-run~`), so a dry-run storm shows
 * what the guardrails would have done without touching the real counters.
 *
 * A store opened `readOnly` (explain-alert, explain-event, the status page) reads and never
 * writes: every write path throws before it reaches the service.
 */
import { delay } from '@azure/core-util';
import { resourceIdKey } from '../azure/resource-id.ts';
import type { AzureClients } from '../azure/clients.ts';
import { cooldownCapMinutes, WEEKDAYS, type MaintenanceWindow, type RemediationActionName } from '../config/remediation-schema.ts';
import type { EstateConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { createStateTables, STATE_TABLES, StateConflictError, stateKey, type StateEntity, type StateRow, type StateTable } from '../state/tables.ts';
import { effectiveRemediation, type RemediationTarget, type ResolvedRule } from './rules.ts';

/** The app setting of the global kill switch. */
export const KILL_SWITCH_SETTING = 'OPS_AUTOPILOT_KILL_SWITCH';

/** Guardrail names, in evaluation order. */
export const GUARDRAILS = ['kill-switch', 'target-off', 'allow-list', 'fired', 'dedupe', 'maintenance', 'breaker', 'cap', 'cooldown', 'in-progress', 'lock', 'dry-run'] as const;
/** A guardrail's name. */
export type GuardrailName = (typeof GUARDRAILS)[number];

/** One guardrail's decision. */
export interface GuardrailDecision {
  readonly guardrail: GuardrailName;
  /** pass: allows; block: stops the action; skip: not judged (an earlier one blocked, or it does not apply). */
  readonly verdict: 'pass' | 'block' | 'skip';
  readonly reason: string;
}

/** A reservation: what {@link commitGuardrails} needs to settle it. JSON-serialisable, no secrets. */
export interface GuardrailReservation {
  readonly id: string;
  readonly estate: string;
  readonly targetId: string;
  readonly action: RemediationActionName;
  readonly rung: number;
  /** Rungs of the rule's ladder, so the last rung's failure counts as a failed remediation. */
  readonly ladderLength: number;
  readonly rule: string;
  readonly triggerKey: string;
  readonly dryRun: boolean;
  readonly reservedAt: string;
  /** The running-trigger claim on the target ends here if never committed. */
  readonly expiresAt: string;
  /** The caller's {@link GuardrailInput.reservationKey}, when given. */
  readonly key?: string;
}

/** What {@link evaluateGuardrails} answers. */
export interface GuardrailEvaluation {
  readonly allowed: boolean;
  /** Every guardrail, in order. */
  readonly decisions: readonly GuardrailDecision[];
  /** The first blocking decision's reason, or why it is allowed. */
  readonly reason: string;
  /** The dry-run gate is closed: plan and record, do not apply. */
  readonly dryRun: boolean;
  /** Present when allowed and the store writes (not a read-only evaluation). */
  readonly reservation?: GuardrailReservation;
}

/** Input of {@link evaluateGuardrails}. */
export interface GuardrailInput {
  readonly estate: string;
  readonly target: RemediationTarget;
  readonly rule: ResolvedRule;
  readonly action: RemediationActionName;
  /** Index of the rung in the rule's ladder; default the first rung with this action. */
  readonly rung?: number;
  /** The alert's or event's idempotency key (ParsedAlert/ParsedEvent.idempotencyKey). */
  readonly triggerKey: string;
  /** Alerts: Fired or Resolved; events: undefined. */
  readonly monitorCondition?: 'Fired' | 'Resolved' | undefined;
  readonly now: Date;
  /** Dry-run asked by the caller (the estate's dryRun and the target's mode dry-run also count). */
  readonly dryRun: boolean;
  /**
   * Who evaluates (the orchestration instance id). The same owner re-evaluating a rung (an
   * activity retried after a crash) gets its reservation back instead of a duplicate verdict.
   */
  readonly owner?: string;
  /**
   * A key that is the same on every attempt of one rung (e.g. `<instance id>:<rung>`): an
   * evaluation with a key already holding a reservation gets that reservation back. Without
   * `owner`, the owner is this key up to its last `:`.
   */
  readonly reservationKey?: string;
}

/** Outcome of a rung. */
export type GuardrailOutcome = 'succeeded' | 'failed' | 'undone' | 'not-applied';

/** What {@link commitGuardrails} answers. */
export interface GuardrailCommit {
  /** False when this reservation had already been committed (a retry): nothing changed. */
  readonly committed: boolean;
  readonly breaker: 'closed' | 'open';
  /** True exactly once: this commit opened the breaker; the caller escalates. */
  readonly breakerOpened: boolean;
  /** Consecutive failed remediations of the target after this commit. */
  readonly failures: number;
}

/** A store that cannot do what was asked (read-only, or no state store configured). */
export class GuardrailStoreError extends OpsAutopilotError {
  override readonly name: string = 'GuardrailStoreError';
}

/** The table operations the guardrails use. */
type GuardrailTable = Pick<StateTable, 'get' | 'list' | 'create' | 'replace' | 'update' | 'delete' | 'location'>;

/** The guardrails' state of one estate. Open with {@link openGuardrailStore}. */
export interface GuardrailStore {
  readonly config: Pick<EstateConfig, 'estate' | 'dryRun' | 'remediation' | 'targets'>;
  readonly table: GuardrailTable;
  /** App settings (the kill switch is read at every evaluation). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readOnly: boolean;
  /** Where the state lives, for messages. */
  readonly location: string;
}

/** Options of {@link openGuardrailStore}. */
export interface GuardrailStoreOptions {
  /** Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Read, never write (explain, status). */
  readonly readOnly?: boolean;
  /** A table to use instead of the config's (tests of the read-only guarantee). */
  readonly table?: GuardrailTable;
}

/** A table wrapper whose writes throw: what a read-only store hands out. */
function readOnlyTable(table: GuardrailTable): GuardrailTable {
  const refuse = (operation: string) => (): never => {
    throw new GuardrailStoreError(`guardrail state at ${table.location}: expected no writes from a read-only evaluation, found a ${operation}`, { context: { operation } });
  };
  return {
    location: table.location,
    get: (partitionKey, rowKey) => table.get(partitionKey, rowKey),
    list: (partitionKey, options) => table.list(partitionKey, options),
    create: refuse('create'),
    replace: refuse('replace'),
    update: refuse('update'),
    delete: refuse('delete'),
  };
}

/**
 * Opens the guardrail state of an estate: the `guardrails` table of its state store.
 *
 * @throws {@link StateStoreError} when the config names no state store (guardrails fail closed:
 * without shared state nothing may act)
 */
export function openGuardrailStore(config: GuardrailStore['config'] & Pick<EstateConfig, 'state' | 'runRecords'>, clients: Pick<AzureClients, 'tableClient'>, options: GuardrailStoreOptions = {}): GuardrailStore {
  const table = options.table ?? createStateTables(config, clients).table(STATE_TABLES.guardrails);
  const readOnly = options.readOnly === true;
  return { config, table: readOnly ? readOnlyTable(table) : table, env: options.env ?? process.env, readOnly, location: table.location };
}

// ---------------------------------------------------------------------------------------------
// State shapes
// ---------------------------------------------------------------------------------------------

interface ActionState {
  /** Reservation times (ISO) within the last 24 hours that count against the caps. */
  times: string[];
  cooldownUntil?: string;
  /** Back-off level: the next cooldown is minutes × 2^level, capped. */
  level: number;
  lastAt?: string;
  lastOutcome?: GuardrailOutcome;
  lastSucceededAt?: string;
}

interface TargetState {
  targetId: string;
  breaker: 'closed' | 'open';
  failures: number;
  openedAt?: string;
  resetBy?: string;
  resetAt?: string;
  actions: Record<string, ActionState>;
  /** The trigger whose ladder is running on the target, and until when that claim holds. */
  activeTrigger?: string;
  activeUntil?: string;
  /** Reservations not yet committed, by id. */
  pending: Record<string, { action: string; at: string; rung: number; prevCooldownUntil?: string; prevLevel: number; estateTime: string }>;
  /** The last commits (id → outcome), so a retried commit changes nothing. */
  commits: [string, GuardrailOutcome][];
}

type TargetRow = StateEntity & { targetId: string; breaker: string; failures: number; stateJson: string };
type EstateRow = StateEntity & { timesJson: string };
type TriggerRow = StateEntity & { trigger: string; targetId: string; firstSeen: string; expiresAt: string; owner: string; suppressed: boolean; reason: string; rungsJson: string };

interface RungRecord {
  verdict: 'allowed' | 'blocked' | 'evaluating';
  reason: string;
  at: string;
  reservation?: GuardrailReservation;
}

const MAX_COMMITS_KEPT = 20;
/** How long an evaluation waits for the same remediation's other, still running evaluation of a rung (at-least-once activities). */
const SAME_OWNER_WAIT_MS = 10_000;
const SAME_OWNER_POLL_MS = 100;
const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** The longest a running-trigger claim holds without a commit (the resource lock's hold limit). */
const MAX_CLAIM_MS = 2 * HOUR;

const ns = (dryRun: boolean): string => (dryRun ? 'dry-run~' : '');
const targetsPartition = (dryRun: boolean): string => `${ns(dryRun)}targets`;
const estatePartition = (dryRun: boolean): string => `${ns(dryRun)}estate`;
const triggersPartition = (dryRun: boolean, targetId: string): string => `${ns(dryRun)}triggers~${stateKey(resourceIdKey(targetId))}`;
const targetRowKey = (targetId: string): string => stateKey(resourceIdKey(targetId));

function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string' || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function readTarget(row: TargetRow | undefined, targetId: string): TargetState {
  const stored = parseJson<Partial<TargetState>>(row?.stateJson, {});
  return {
    targetId,
    breaker: stored.breaker === 'open' ? 'open' : 'closed',
    failures: typeof stored.failures === 'number' ? stored.failures : 0,
    ...(stored.openedAt === undefined ? {} : { openedAt: stored.openedAt }),
    ...(stored.resetBy === undefined ? {} : { resetBy: stored.resetBy }),
    ...(stored.resetAt === undefined ? {} : { resetAt: stored.resetAt }),
    actions: stored.actions ?? {},
    ...(stored.activeTrigger === undefined ? {} : { activeTrigger: stored.activeTrigger }),
    ...(stored.activeUntil === undefined ? {} : { activeUntil: stored.activeUntil }),
    pending: stored.pending ?? {},
    commits: stored.commits ?? [],
  };
}

function writeTarget(state: TargetState): TargetRow {
  return { targetId: state.targetId, breaker: state.breaker, failures: state.failures, stateJson: JSON.stringify(state) };
}

const within = (times: readonly string[], now: number, ms: number): string[] => times.filter((time) => now - Date.parse(time) < ms && Date.parse(time) <= now + 60_000);

// ---------------------------------------------------------------------------------------------
// Pure judgements
// ---------------------------------------------------------------------------------------------

/** The kill switch's verdict from the app setting: on stops, off or unset allows, anything else stops. */
export function killSwitchDecision(env: Readonly<Record<string, string | undefined>>): GuardrailDecision {
  const raw = env[KILL_SWITCH_SETTING];
  const value = raw?.trim().toLowerCase() ?? '';
  if (value === '' || value === 'off') return { guardrail: 'kill-switch', verdict: 'pass', reason: `${KILL_SWITCH_SETTING} is ${value === '' ? 'not set' : 'off'}` };
  if (value === 'on') return { guardrail: 'kill-switch', verdict: 'block', reason: `${KILL_SWITCH_SETTING} is on: all remediation is stopped` };
  return { guardrail: 'kill-switch', verdict: 'block', reason: `${KILL_SWITCH_SETTING} is "${raw?.slice(0, 20) ?? ''}", expected on or off: remediation stops until it is fixed` };
}

/** The maintenance window open at `now`, if any. */
export function openMaintenanceWindow(windows: readonly (MaintenanceWindow & { readonly source?: string })[], now: Date): (MaintenanceWindow & { readonly source?: string }) | undefined {
  const t = now.getTime();
  const minutes = now.getUTCHours() * 60 + now.getUTCMinutes();
  // getUTCDay: 0 = Sunday; WEEKDAYS starts on Monday.
  const today = WEEKDAYS[(now.getUTCDay() + 6) % 7];
  const yesterday = WEEKDAYS[(now.getUTCDay() + 5) % 7];
  const toMinutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  return windows.find((window) => {
    if (window.start !== undefined && window.end !== undefined) return Date.parse(window.start) <= t && t < Date.parse(window.end);
    const weekly = window.weekly;
    if (weekly === undefined) return false;
    const from = toMinutes(weekly.from);
    const to = toMinutes(weekly.to);
    const days = new Set<string>(weekly.days);
    if (from < to) return today !== undefined && days.has(today) && minutes >= from && minutes < to;
    return (today !== undefined && days.has(today) && minutes >= from) || (yesterday !== undefined && days.has(yesterday) && minutes < to);
  });
}

/** The cooldown (ms) a reservation at back-off `level` sets. */
function cooldownMs(rung: ResolvedRule['ladder'][number], level: number): number {
  const capped = Math.min(rung.cooldown.minutes * 2 ** Math.min(level, 20), cooldownCapMinutes(rung.cooldown));
  return capped * 60_000;
}

interface Judgement {
  decisions: GuardrailDecision[];
  next: TargetState | undefined;
}

/**
 * Guardrails 5-7 on the target's state: breaker, caps, cooldown, in-progress. Returns the
 * decisions and, when all pass, the state with the reservation made. Pure.
 */
function judgeTarget(state: TargetState, input: GuardrailInput, rungIndex: number, reservationId: string | undefined, estateTime: string): Judgement {
  const now = input.now.getTime();
  const nowIso = input.now.toISOString();
  const settings = input.target.remediation;
  const rung = input.rule.ladder[rungIndex];
  const decisions: GuardrailDecision[] = [];
  const skipRest = (from: GuardrailName): void => {
    for (const name of ['breaker', 'cap', 'cooldown', 'in-progress'] as const) {
      if (GUARDRAILS.indexOf(name) > GUARDRAILS.indexOf(from)) decisions.push({ guardrail: name, verdict: 'skip', reason: `not judged: ${from} blocked` });
    }
  };
  if (rung === undefined) return { decisions, next: undefined };
  const next: TargetState = { ...state, actions: { ...state.actions }, pending: { ...state.pending } };
  // 5. breaker
  if (state.breaker === 'open') {
    const coolOff = settings.breaker.coolOffMinutes;
    const opened = state.openedAt === undefined ? now : Date.parse(state.openedAt);
    if (coolOff === 'manual' || now - opened < coolOff * 60_000) {
      decisions.push({
        guardrail: 'breaker',
        verdict: 'block',
        reason: `circuit breaker open since ${state.openedAt ?? '?'} after ${String(state.failures)} failed remediation(s); ${coolOff === 'manual' ? 'closes only by guardrails reset' : `closes at ${new Date(opened + coolOff * 60_000).toISOString()} or by guardrails reset`}`,
      });
      skipRest('breaker');
      return { decisions, next: undefined };
    }
    next.breaker = 'closed';
    next.failures = 0;
    decisions.push({ guardrail: 'breaker', verdict: 'pass', reason: `circuit breaker closed by its ${String(coolOff)}-minute cool-off (opened ${state.openedAt ?? '?'})` });
  } else {
    decisions.push({ guardrail: 'breaker', verdict: 'pass', reason: `circuit breaker closed (${String(state.failures)} of ${String(settings.breaker.failures)} failed remediations)` });
  }
  // 6. caps (the estate's part is judged on its own row afterwards)
  const action = state.actions[input.action] ?? { times: [], level: 0 };
  const lastHour = within(action.times, now, HOUR).length;
  const lastDay = within(action.times, now, DAY);
  const caps = settings.caps;
  if (lastHour >= caps.perTargetActionPerHour || lastDay.length >= caps.perTargetActionPerDay) {
    const hourly = lastHour >= caps.perTargetActionPerHour;
    decisions.push({
      guardrail: 'cap',
      verdict: 'block',
      reason: `daily cap: ${input.action} ran ${String(hourly ? lastHour : lastDay.length)} time(s) on this target in the last ${hourly ? 'hour' : '24 hours'} (cap ${String(hourly ? caps.perTargetActionPerHour : caps.perTargetActionPerDay)})`,
    });
    skipRest('cap');
    return { decisions, next: undefined };
  }
  decisions.push({ guardrail: 'cap', verdict: 'pass', reason: `${input.action}: ${String(lastHour)}/${String(caps.perTargetActionPerHour)} this hour, ${String(lastDay.length)}/${String(caps.perTargetActionPerDay)} in 24 hours on this target` });
  // 7. cooldown with back-off
  const healthyFor = action.lastAt === undefined ? Infinity : now - Date.parse(action.lastAt);
  const level = healthyFor >= rung.cooldown.resetAfterHealthyMinutes * 60_000 ? 0 : action.level;
  if (action.cooldownUntil !== undefined && Date.parse(action.cooldownUntil) > now) {
    decisions.push({ guardrail: 'cooldown', verdict: 'block', reason: `cooldown: ${input.action} on this target cools down until ${action.cooldownUntil} (back-off level ${String(action.level)})` });
    skipRest('cooldown');
    return { decisions, next: undefined };
  }
  const until = new Date(now + cooldownMs(rung, level)).toISOString();
  decisions.push({ guardrail: 'cooldown', verdict: 'pass', reason: `no cooldown running; this ${input.action} starts one until ${until} (back-off level ${String(level)}${level === 0 && action.level > 0 ? ', reset after a healthy period' : ''})` });
  // in-progress: one trigger's ladder at a time per target
  const claimed = state.activeTrigger !== undefined && state.activeUntil !== undefined && Date.parse(state.activeUntil) > now;
  if (claimed && state.activeTrigger !== input.triggerKey) {
    decisions.push({ guardrail: 'in-progress', verdict: 'block', reason: `another remediation (trigger ${state.activeTrigger ?? '?'}) is running on this target until ${state.activeUntil ?? '?'} at the latest` });
    return { decisions, next: undefined };
  }
  decisions.push({ guardrail: 'in-progress', verdict: 'pass', reason: claimed ? 'this trigger\'s ladder holds the target' : 'no other remediation is running on this target' });
  if (reservationId === undefined) return { decisions, next: undefined };
  // Reserve: counts, cooldown and the claim move together, in one conditional write.
  const remaining = input.rule.ladder.slice(rungIndex).reduce((sum, r) => sum + r.verify.deadlineSeconds * 1000 + 10 * 60_000, 0);
  next.actions[input.action] = {
    ...action,
    times: [...lastDay, nowIso],
    cooldownUntil: until,
    level: Math.min(level + 1, 20),
    lastAt: nowIso,
  };
  next.pending[reservationId] = {
    action: input.action,
    at: nowIso,
    rung: rungIndex,
    ...(action.cooldownUntil === undefined ? {} : { prevCooldownUntil: action.cooldownUntil }),
    prevLevel: action.level,
    estateTime,
  };
  next.activeTrigger = input.triggerKey;
  next.activeUntil = new Date(now + Math.min(remaining, MAX_CLAIM_MS)).toISOString();
  // Pending reservations older than the claim limit were never committed (a crash): drop them.
  next.pending = Object.fromEntries(Object.entries(next.pending).filter(([, pending]) => now - Date.parse(pending.at) <= MAX_CLAIM_MS));
  return { decisions, next };
}

// ---------------------------------------------------------------------------------------------
// Evaluate, commit, status, reset
// ---------------------------------------------------------------------------------------------

function newReservationId(input: GuardrailInput, rung: number): string {
  return `${input.now.getTime().toString(36)}-${rung.toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

function finish(decisions: GuardrailDecision[], dryRun: boolean, reservation?: GuardrailReservation): GuardrailEvaluation {
  const present = new Set(decisions.map((decision) => decision.guardrail));
  const blocked = decisions.find((decision) => decision.verdict === 'block');
  const all = [...decisions];
  for (const name of GUARDRAILS) {
    if (!present.has(name)) all.push({ guardrail: name, verdict: 'skip', reason: blocked === undefined ? 'not judged' : `not judged: ${blocked.guardrail} blocked` });
  }
  all.sort((a, b) => GUARDRAILS.indexOf(a.guardrail) - GUARDRAILS.indexOf(b.guardrail));
  const allowed = blocked === undefined;
  return {
    allowed,
    decisions: all,
    reason: blocked?.reason ?? (dryRun ? 'every guardrail passed; dry-run: plan and record, apply nothing' : 'every guardrail passed'),
    dryRun,
    ...(allowed && reservation !== undefined ? { reservation } : {}),
  };
}

/**
 * Judges one rung against every guardrail, in order, and (unless the store is read-only)
 * reserves it when all pass: the target's counts, cooldown and running-trigger claim move in one
 * conditional write, then the estate's count. Blocked evaluations are remembered per trigger
 * (`dedupe`), so a suppressed alert stays suppressed for its later rungs and redeliveries.
 *
 * @throws the state store's errors (unreachable, throttled): the caller fails closed and acts not
 */
export async function evaluateGuardrails(store: GuardrailStore, input: GuardrailInput): Promise<GuardrailEvaluation> {
  const decisions: GuardrailDecision[] = [];
  const settings = input.target.remediation;
  const dryRun = input.dryRun || store.config.dryRun || settings.mode === 'dry-run';
  const dryRunReason = input.dryRun ? 'the caller asked for a dry run' : store.config.dryRun ? 'the estate config has dryRun: true' : settings.mode === 'dry-run' ? `remediation mode dry-run (${settings.modeSource})` : '';
  // 1. kill switch, remediation off
  const kill = killSwitchDecision(store.env);
  decisions.push(kill);
  if (kill.verdict === 'block') return finish(decisions, dryRun);
  if (settings.mode === 'off') {
    decisions.push({ guardrail: 'target-off', verdict: 'block', reason: `remediation is off for this target (${settings.modeSource})` });
    return finish(decisions, dryRun);
  }
  decisions.push({ guardrail: 'target-off', verdict: 'pass', reason: `remediation mode ${settings.mode} (${settings.modeSource})` });
  // 2. allow-list: the caller matched target and rule; the action must be one of its rungs.
  const rungIndex = input.rung ?? input.rule.ladder.findIndex((rung) => rung.action === input.action);
  const rung = input.rule.ladder[rungIndex];
  if (rung?.action !== input.action) {
    decisions.push({ guardrail: 'allow-list', verdict: 'block', reason: `${input.action} is not rung ${String(rungIndex)} of rule ${input.rule.name} (${input.rule.ladder.map((r) => r.action).join(' → ')})` });
    return finish(decisions, dryRun);
  }
  decisions.push({ guardrail: 'allow-list', verdict: 'pass', reason: `${input.target.id} is an estate target; rule ${input.rule.name} rung ${String(rungIndex + 1)}/${String(input.rule.ladder.length)}: ${input.action}` });
  // 3. Fired only; dedupe
  if (input.monitorCondition === 'Resolved') {
    decisions.push({ guardrail: 'fired', verdict: 'block', reason: 'a Resolved alert starts nothing (it closes the open remediation)' });
    return finish(decisions, dryRun);
  }
  decisions.push({ guardrail: 'fired', verdict: input.monitorCondition === undefined ? 'skip' : 'pass', reason: input.monitorCondition === undefined ? 'an event has no monitor condition' : 'the alert fired' });
  const table = store.table;
  const triggerPk = triggersPartition(dryRun, input.target.id);
  const triggerRk = stateKey(input.triggerKey);
  const nowIso = input.now.toISOString();
  const owner = input.owner ?? input.reservationKey?.replace(/:[^:]*$/, '') ?? '';
  // Activities run at least once: after a crash the same remediation's evaluation can run again
  // while the first is still running (or after it died between claiming the trigger and
  // reserving). Wait, bounded, for the other one to finish, so that it is answered from the
  // reservation that one made instead of being blocked as a duplicate of itself.
  const readTrigger = async (): Promise<{ existing: StateRow<TriggerRow> | undefined; seen: StateRow<TriggerRow> | undefined; rungs: Record<string, RungRecord> }> => {
    const row = await table.get<TriggerRow>(triggerPk, triggerRk);
    const live = row !== undefined && Date.parse(row.value.expiresAt) > input.now.getTime() ? row : undefined;
    return { existing: row, seen: live, rungs: parseJson<Record<string, RungRecord>>(live?.value.rungsJson, {}) };
  };
  let { existing, seen, rungs } = await readTrigger();
  const ownEvaluationRunning = (): boolean => {
    const record = rungs[String(rungIndex)];
    return seen !== undefined && owner !== '' && seen.value.owner === owner && record?.verdict === 'evaluating' && record.reservation === undefined;
  };
  for (let waited = 0; ownEvaluationRunning() && waited < SAME_OWNER_WAIT_MS; waited += SAME_OWNER_POLL_MS) {
    await delay(SAME_OWNER_POLL_MS);
    ({ existing, seen, rungs } = await readTrigger());
  }
  // Still evaluating: the earlier attempt died mid-way; this one takes its evaluation over.
  const resumed = ownEvaluationRunning();
  if (seen !== undefined) {
    const record = rungs[String(rungIndex)];
    const sameKey = input.reservationKey !== undefined && record?.reservation?.key === input.reservationKey;
    const sameOwner = sameKey || (owner !== '' && seen.value.owner === owner);
    if (seen.value.suppressed) {
      decisions.push({ guardrail: 'dedupe', verdict: 'block', reason: `trigger ${input.triggerKey} was suppressed at ${seen.value.firstSeen}: ${seen.value.reason}` });
      return finish(decisions, dryRun);
    }
    if (record !== undefined && sameOwner && record.reservation !== undefined) {
      // The same owner asking again (its activity retried): the reservation it already holds.
      decisions.push({ guardrail: 'dedupe', verdict: 'pass', reason: `the same remediation (${owner}) re-evaluated rung ${String(rungIndex + 1)}: its reservation ${record.reservation.id} stands` });
      return finish([...decisions, { guardrail: 'dry-run', verdict: 'pass', reason: dryRun ? `dry-run (${dryRunReason}): plan and record, apply nothing` : 'not a dry run' }], dryRun, record.reservation);
    }
    if ((record !== undefined && !resumed) || (owner !== '' && seen.value.owner !== '' && seen.value.owner !== owner)) {
      decisions.push({ guardrail: 'dedupe', verdict: 'block', reason: `duplicate: trigger ${input.triggerKey} was first seen at ${seen.value.firstSeen}${seen.value.owner === '' ? '' : ` and is handled by ${seen.value.owner}`}` });
      return finish(decisions, dryRun);
    }
    decisions.push({
      guardrail: 'dedupe',
      verdict: 'pass',
      reason: resumed ? `the same remediation (${owner}) takes over its interrupted evaluation of rung ${String(rungIndex + 1)}` : `the ladder of trigger ${input.triggerKey} continues at rung ${String(rungIndex + 1)}`,
    });
  } else {
    decisions.push({ guardrail: 'dedupe', verdict: 'pass', reason: `trigger ${input.triggerKey} not seen in the last ${String(settings.dedupeHours)} h` });
  }
  // Claim the trigger before judging the rest, so two deliveries racing both see one of them.
  let triggerRow: StateRow<TriggerRow> | undefined = seen;
  if (!store.readOnly) {
    const value: TriggerRow = {
      trigger: input.triggerKey,
      targetId: input.target.id,
      firstSeen: seen?.value.firstSeen ?? nowIso,
      expiresAt: seen?.value.expiresAt ?? new Date(input.now.getTime() + settings.dedupeHours * HOUR).toISOString(),
      owner: seen?.value.owner ?? owner,
      suppressed: false,
      reason: '',
      rungsJson: JSON.stringify({ ...rungs, [String(rungIndex)]: { verdict: 'evaluating', reason: '', at: nowIso } satisfies RungRecord }),
    };
    try {
      triggerRow = existing === undefined ? await table.create(triggerPk, triggerRk, value) : await table.replace(existing, value);
    } catch (error) {
      if (error instanceof StateConflictError) {
        decisions.push({ guardrail: 'dedupe', verdict: 'block', reason: `duplicate: another delivery of trigger ${input.triggerKey} was claimed at the same moment` });
        return finish(decisions.filter((decision) => decision.guardrail !== 'dedupe' || decision.verdict === 'block'), dryRun);
      }
      throw error;
    }
  }
  const suppress = async (evaluation: GuardrailEvaluation): Promise<GuardrailEvaluation> => {
    if (!store.readOnly && triggerRow !== undefined) await recordRung(table, triggerRow, rungIndex, { verdict: 'blocked', reason: evaluation.reason, at: nowIso }, rungIndex === 0 || !evaluation.allowed);
    return evaluation;
  };
  // 4. maintenance windows
  const window = openMaintenanceWindow(settings.maintenanceWindows, input.now);
  if (window !== undefined) {
    decisions.push({ guardrail: 'maintenance', verdict: 'block', reason: `maintenance window "${window.name}" (${window.source ?? 'config'}) is open` });
    return suppress(finish(decisions, dryRun));
  }
  decisions.push({ guardrail: 'maintenance', verdict: 'pass', reason: settings.maintenanceWindows.length === 0 ? 'no maintenance windows declared' : `none of ${String(settings.maintenanceWindows.length)} maintenance window(s) is open` });
  // 5-7 on the target row, atomically; then the estate cap.
  const reservationId = store.readOnly ? undefined : newReservationId(input, rungIndex);
  const targetRk = targetRowKey(input.target.id);
  let judged: Judgement = { decisions: [], next: undefined };
  if (store.readOnly) {
    const row = await table.get<TargetRow>(targetsPartition(dryRun), targetRk);
    judged = judgeTarget(readTarget(row?.value, input.target.id), input, rungIndex, undefined, nowIso);
  } else {
    await table.update<TargetRow>(targetsPartition(dryRun), targetRk, (current) => {
      judged = judgeTarget(readTarget(current, input.target.id), input, rungIndex, reservationId, nowIso);
      return judged.next === undefined ? undefined : writeTarget(judged.next);
    });
  }
  const targetDecisions = judged.decisions;
  const capIndex = targetDecisions.findIndex((decision) => decision.guardrail === 'cap');
  if (targetDecisions.some((decision) => decision.verdict === 'block')) {
    decisions.push(...targetDecisions);
    return suppress(finish(decisions, dryRun));
  }
  // Estate cap: counted once the target's reservation stands; given back if the estate is full.
  const cap = store.config.remediation?.caps?.perEstatePerDay ?? settings.caps.perEstatePerDay;
  let estateDecision: GuardrailDecision;
  if (store.readOnly) {
    const row = await table.get<EstateRow>(estatePartition(dryRun), stateKey(store.config.estate));
    const count = within(parseJson<string[]>(row?.value.timesJson, []), input.now.getTime(), DAY).length;
    estateDecision = count >= cap ? { guardrail: 'cap', verdict: 'block', reason: `estate cap: ${String(count)} action(s) on estate ${store.config.estate} in the last 24 hours (cap ${String(cap)})` } : { guardrail: 'cap', verdict: 'pass', reason: `estate: ${String(count)}/${String(cap)} in 24 hours` };
  } else {
    let count = 0;
    await table.update<EstateRow>(estatePartition(dryRun), stateKey(store.config.estate), (current) => {
      const times = within(parseJson<string[]>(current?.timesJson, []), input.now.getTime(), DAY);
      count = times.length;
      return count >= cap ? undefined : { timesJson: JSON.stringify([...times, nowIso]) };
    });
    estateDecision = count >= cap ? { guardrail: 'cap', verdict: 'block', reason: `estate cap: ${String(count)} action(s) on estate ${store.config.estate} in the last 24 hours (cap ${String(cap)})` } : { guardrail: 'cap', verdict: 'pass', reason: `estate: ${String(count + 1)}/${String(cap)} in 24 hours with this one` };
    if (estateDecision.verdict === 'block' && reservationId !== undefined) await giveBack(table, targetsPartition(dryRun), targetRk, reservationId, input.target.id, false);
  }
  const targetCap = targetDecisions[capIndex];
  const capDecision: GuardrailDecision =
    estateDecision.verdict === 'block' ? estateDecision : { guardrail: 'cap', verdict: 'pass', reason: `${targetCap?.reason ?? ''}; ${estateDecision.reason}` };
  decisions.push(...targetDecisions.map((decision) => (decision.guardrail === 'cap' ? capDecision : decision)));
  if (estateDecision.verdict === 'block') {
    for (const decision of decisions) if (decision.guardrail === 'cooldown' || decision.guardrail === 'in-progress') Object.assign(decision, { verdict: 'skip', reason: 'not judged: cap blocked' });
    return suppress(finish(decisions, dryRun));
  }
  // 8. lock (the caller's), 9. dry-run gate
  decisions.push({ guardrail: 'lock', verdict: 'skip', reason: 'taken by the remediation before its first change and held until it finishes (per-resource lock, shared with the runbook executor)' });
  decisions.push({ guardrail: 'dry-run', verdict: 'pass', reason: dryRun ? `dry-run (${dryRunReason}): plan and record, apply nothing` : 'not a dry run: the rung may apply' });
  if (store.readOnly || reservationId === undefined) return finish(decisions, dryRun);
  const reservation: GuardrailReservation = {
    id: reservationId,
    estate: store.config.estate,
    targetId: input.target.id,
    action: input.action,
    rung: rungIndex,
    ladderLength: input.rule.ladder.length,
    rule: input.rule.name,
    triggerKey: input.triggerKey,
    dryRun,
    reservedAt: nowIso,
    expiresAt: judged.next?.activeUntil ?? nowIso,
    ...(input.reservationKey === undefined ? {} : { key: input.reservationKey }),
  };
  if (triggerRow !== undefined) await recordRung(table, triggerRow, rungIndex, { verdict: 'allowed', reason: 'every guardrail passed', at: nowIso, reservation }, false);
  return finish(decisions, dryRun, reservation);
}

/** A copy of `record` without `key`. */
function withoutKey<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([name]) => name !== key));
}

/** Writes one rung's verdict into the trigger's row (and marks the trigger suppressed when asked). */
async function recordRung(table: GuardrailTable, row: StateRow<TriggerRow>, rung: number, record: RungRecord, suppressed: boolean): Promise<void> {
  await table.update<TriggerRow>(row.partitionKey, row.rowKey, (current) => {
    const base = current ?? row.value;
    const rungs = parseJson<Record<string, RungRecord>>(base.rungsJson, {});
    rungs[String(rung)] = record;
    return { ...base, rungsJson: JSON.stringify(rungs), suppressed: base.suppressed || (suppressed && record.verdict === 'blocked'), reason: suppressed && record.verdict === 'blocked' ? record.reason : base.reason };
  });
}

/** Gives a reservation back on the target's row: counts, cooldown and claim as before it. */
async function giveBack(table: GuardrailTable, partitionKey: string, rowKey: string, reservationId: string, targetId: string, keepClaim: boolean): Promise<void> {
  await table.update<TargetRow>(partitionKey, rowKey, (current) => {
    const state = readTarget(current, targetId);
    const pending = state.pending[reservationId];
    if (pending === undefined) return undefined;
    const action = state.actions[pending.action];
    const actions = { ...state.actions };
    if (action !== undefined) {
      const times = [...action.times];
      const at = times.lastIndexOf(pending.at);
      if (at >= 0) times.splice(at, 1);
      const restored: ActionState = { ...action, times, level: pending.prevLevel };
      if (pending.prevCooldownUntil === undefined) delete restored.cooldownUntil;
      else restored.cooldownUntil = pending.prevCooldownUntil;
      actions[pending.action] = restored;
    }
    const rest = withoutKey(state.pending, reservationId);
    const next: TargetState = { ...state, actions, pending: rest };
    if (!keepClaim) {
      delete next.activeTrigger;
      delete next.activeUntil;
    }
    return writeTarget(next);
  });
}

/**
 * Settles a reservation after its rung:
 * - `succeeded` (verification passed): the target's failure count goes back to 0 and the running
 *   trigger's claim ends (the ladder is done);
 * - `failed` / `undone` (verification failed; undone when reversible): the action still counts;
 *   on the ladder's last rung it is a failed remediation, and N of them in a row open the breaker
 *   (`breakerOpened` is true for that one commit: escalate once);
 * - `not-applied` (the rung did not change anything: lock held, plan refused, crash before apply):
 *   counts, cooldown and, on the first rung, the claim are given back.
 * Idempotent: a second commit of one reservation changes nothing.
 */
export async function commitGuardrails(store: GuardrailStore, reservation: GuardrailReservation, outcome: GuardrailOutcome, options: { now?: Date } = {}): Promise<GuardrailCommit> {
  if (store.readOnly) throw new GuardrailStoreError(`guardrail state at ${store.location}: expected a writable store to commit reservation ${reservation.id}, found a read-only one`);
  const settings = effectiveRemediation(store.config, reservation.targetId);
  const nowIso = (options.now ?? new Date()).toISOString();
  let result: GuardrailCommit = { committed: false, breaker: 'closed', breakerOpened: false, failures: 0 };
  const partition = targetsPartition(reservation.dryRun);
  const rowKey = targetRowKey(reservation.targetId);
  let giveBackEstate: string | undefined;
  await store.table.update<TargetRow>(partition, rowKey, (current) => {
    const state = readTarget(current, reservation.targetId);
    giveBackEstate = undefined;
    if (state.commits.some(([id]) => id === reservation.id)) {
      result = { committed: false, breaker: state.breaker, breakerOpened: false, failures: state.failures };
      return undefined;
    }
    const pending = state.pending[reservation.id];
    const next: TargetState = { ...state, actions: { ...state.actions }, pending: withoutKey(state.pending, reservation.id), commits: [...state.commits, [reservation.id, outcome] as [string, GuardrailOutcome]].slice(-MAX_COMMITS_KEPT) };
    const action = next.actions[reservation.action];
    const last = reservation.rung >= reservation.ladderLength - 1;
    let opened = false;
    if (outcome === 'not-applied') {
      if (action !== undefined && pending !== undefined) {
        const times = [...action.times];
        const at = times.lastIndexOf(pending.at);
        if (at >= 0) times.splice(at, 1);
        const restored: ActionState = { ...action, times, level: pending.prevLevel, lastOutcome: outcome };
        if (pending.prevCooldownUntil === undefined) delete restored.cooldownUntil;
        else restored.cooldownUntil = pending.prevCooldownUntil;
        next.actions[reservation.action] = restored;
        giveBackEstate = pending.estateTime;
      }
      if ((reservation.rung === 0 || last) && next.activeTrigger === reservation.triggerKey) {
        delete next.activeTrigger;
        delete next.activeUntil;
      }
    } else {
      if (action !== undefined) next.actions[reservation.action] = { ...action, lastOutcome: outcome, ...(outcome === 'succeeded' ? { lastSucceededAt: nowIso } : {}) };
      if (outcome === 'succeeded') {
        next.failures = 0;
      } else if (last) {
        next.failures = state.failures + 1;
        if (state.breaker === 'closed' && next.failures >= settings.breaker.failures) {
          next.breaker = 'open';
          next.openedAt = nowIso;
          opened = true;
        }
      }
      if ((outcome === 'succeeded' || last) && next.activeTrigger === reservation.triggerKey) {
        delete next.activeTrigger;
        delete next.activeUntil;
      }
    }
    result = { committed: true, breaker: next.breaker, breakerOpened: opened, failures: next.failures };
    return writeTarget(next);
  });
  if (giveBackEstate !== undefined) {
    const time = giveBackEstate;
    await store.table.update<EstateRow>(estatePartition(reservation.dryRun), stateKey(reservation.estate), (current) => {
      const times = parseJson<string[]>(current?.timesJson, []);
      const at = times.lastIndexOf(time);
      if (at < 0) return undefined;
      times.splice(at, 1);
      return { timesJson: JSON.stringify(times) };
    });
  }
  return result;
}

/** One target's guardrail state, as the status page and CLI show it. */
export interface TargetGuardrailStatus {
  readonly targetId: string;
  readonly breaker: { readonly state: 'closed' | 'open'; readonly failures: number; readonly threshold: number; readonly openedAt?: string; readonly closesAt?: string; readonly resetBy?: string; readonly resetAt?: string };
  readonly actions: readonly { readonly action: string; readonly lastHour: number; readonly lastDay: number; readonly cooldownUntil?: string; readonly backoffLevel: number; readonly lastAt?: string; readonly lastOutcome?: string }[];
  readonly inProgress?: { readonly trigger: string; readonly until: string };
  /** Recent triggers (with a target filter only), newest first, at most 100. */
  readonly recent?: readonly { readonly trigger: string; readonly firstSeen: string; readonly suppressed: boolean; readonly reason: string }[];
}

/** The guardrail state of the estate. */
export interface GuardrailStatus {
  readonly estate: string;
  readonly at: string;
  readonly killSwitch: GuardrailDecision;
  readonly estateActionsLastDay: number;
  readonly estateCap: number;
  readonly targets: readonly TargetGuardrailStatus[];
  /** True when more target rows exist than were read. */
  readonly truncated: boolean;
}

/**
 * The guardrail state of every target with state (or of one), as of now. Reads only.
 *
 * @param targetId one target (any spelling of its ARM id), with its recent triggers
 */
export async function guardrailStatus(store: GuardrailStore, targetId?: string, options: { now?: Date; dryRun?: boolean } = {}): Promise<GuardrailStatus> {
  const now = options.now ?? new Date();
  const dryRun = options.dryRun ?? false;
  const t = now.getTime();
  let rows: StateRow<TargetRow>[];
  let truncated = false;
  if (targetId === undefined) {
    const listed = await store.table.list<TargetRow>(targetsPartition(dryRun), { maxRows: 1000 });
    rows = listed.rows;
    truncated = listed.truncated;
  } else {
    const row = await store.table.get<TargetRow>(targetsPartition(dryRun), targetRowKey(targetId));
    rows = row === undefined ? [] : [row];
  }
  const estateRow = await store.table.get<EstateRow>(estatePartition(dryRun), stateKey(store.config.estate));
  const targets: TargetGuardrailStatus[] = [];
  for (const row of rows) {
    const state = readTarget(row.value, row.value.targetId);
    const settings = effectiveRemediation(store.config, state.targetId);
    const coolOff = settings.breaker.coolOffMinutes;
    const closesAt = state.breaker === 'open' && state.openedAt !== undefined && coolOff !== 'manual' ? new Date(Date.parse(state.openedAt) + coolOff * 60_000).toISOString() : undefined;
    const status: TargetGuardrailStatus = {
      targetId: state.targetId,
      breaker: {
        state: state.breaker === 'open' && closesAt !== undefined && Date.parse(closesAt) <= t ? 'closed' : state.breaker,
        failures: state.failures,
        threshold: settings.breaker.failures,
        ...(state.openedAt === undefined || state.breaker !== 'open' ? {} : { openedAt: state.openedAt }),
        ...(closesAt === undefined ? {} : { closesAt }),
        ...(state.resetBy === undefined ? {} : { resetBy: state.resetBy }),
        ...(state.resetAt === undefined ? {} : { resetAt: state.resetAt }),
      },
      actions: Object.entries(state.actions).map(([action, entry]) => ({
        action,
        lastHour: within(entry.times, t, HOUR).length,
        lastDay: within(entry.times, t, DAY).length,
        ...(entry.cooldownUntil !== undefined && Date.parse(entry.cooldownUntil) > t ? { cooldownUntil: entry.cooldownUntil } : {}),
        backoffLevel: entry.level,
        ...(entry.lastAt === undefined ? {} : { lastAt: entry.lastAt }),
        ...(entry.lastOutcome === undefined ? {} : { lastOutcome: entry.lastOutcome }),
      })),
      ...(state.activeTrigger !== undefined && state.activeUntil !== undefined && Date.parse(state.activeUntil) > t ? { inProgress: { trigger: state.activeTrigger, until: state.activeUntil } } : {}),
    };
    if (targetId !== undefined) {
      const triggers = await store.table.list<TriggerRow>(triggersPartition(dryRun, state.targetId), { maxRows: 1000 });
      const recent = triggers.rows
        .map((trigger) => ({ trigger: trigger.value.trigger, firstSeen: trigger.value.firstSeen, suppressed: trigger.value.suppressed, reason: trigger.value.reason }))
        .sort((a, b) => b.firstSeen.localeCompare(a.firstSeen))
        .slice(0, 100);
      targets.push({ ...status, recent });
    } else targets.push(status);
  }
  return {
    estate: store.config.estate,
    at: now.toISOString(),
    killSwitch: killSwitchDecision(store.env),
    estateActionsLastDay: within(parseJson<string[]>(estateRow?.value.timesJson, []), t, DAY).length,
    estateCap: store.config.remediation?.caps?.perEstatePerDay ?? effectiveRemediation(store.config, targetId ?? '').caps.perEstatePerDay,
    targets,
    truncated,
  };
}

/** What {@link resetGuardrails} did. */
export interface GuardrailReset {
  readonly targetId: string;
  /** False when the target had no guardrail state (nothing to reset). */
  readonly found: boolean;
  readonly breakerWas: 'closed' | 'open';
  readonly by: string;
  readonly at: string;
}

/**
 * Ends the running-trigger claim (`in-progress`) of the remediation a reservation belongs to, once
 * that remediation is over however it ended: resolved before its next rung, suppressed on a later
 * rung, stopped by a failure. Commits end it only on success or the last rung; without this the
 * claim would block every other alert for the target until it expires. Idempotent: it removes
 * the claim only while it is still this trigger's. Counts, cooldowns and the breaker stay.
 */
export async function endGuardrailClaim(store: GuardrailStore, reservation: Pick<GuardrailReservation, 'targetId' | 'triggerKey' | 'dryRun'>): Promise<boolean> {
  if (store.readOnly) throw new GuardrailStoreError(`guardrail state at ${store.location}: expected a writable store to end the claim of ${reservation.triggerKey}, found a read-only one`);
  let ended = false;
  await store.table.update<TargetRow>(targetsPartition(reservation.dryRun), targetRowKey(reservation.targetId), (current) => {
    ended = false;
    if (current === undefined) return undefined;
    const state = readTarget(current, reservation.targetId);
    if (state.activeTrigger !== reservation.triggerKey) return undefined;
    const next: TargetState = { ...state };
    delete next.activeTrigger;
    delete next.activeUntil;
    ended = true;
    return writeTarget(next);
  });
  return ended;
}

/**
 * A person's reset of one target: closes the breaker, zeroes the failure count, ends every
 * cooldown and back-off and the running-trigger claim. The caps' counts stay: they are a rate,
 * not a verdict. Recorded (who and when) on the target's row.
 */
export async function resetGuardrails(store: GuardrailStore, targetId: string, by: string, options: { now?: Date; dryRun?: boolean } = {}): Promise<GuardrailReset> {
  if (store.readOnly) throw new GuardrailStoreError(`guardrail state at ${store.location}: expected a writable store to reset ${targetId}, found a read-only one`);
  const at = (options.now ?? new Date()).toISOString();
  let found = false;
  let breakerWas: 'closed' | 'open' = 'closed';
  const who = by.trim().slice(0, 200) || 'unknown';
  await store.table.update<TargetRow>(targetsPartition(options.dryRun ?? false), targetRowKey(targetId), (current) => {
    if (current === undefined) {
      found = false;
      return undefined;
    }
    found = true;
    const state = readTarget(current, current.targetId);
    breakerWas = state.breaker;
    const actions: Record<string, ActionState> = {};
    for (const [name, action] of Object.entries(state.actions)) {
      const reset: ActionState = { ...action, level: 0 };
      delete reset.cooldownUntil;
      actions[name] = reset;
    }
    const next: TargetState = { ...state, breaker: 'closed', failures: 0, actions, resetBy: who, resetAt: at };
    delete next.openedAt;
    delete next.activeTrigger;
    delete next.activeUntil;
    return writeTarget(next);
  });
  return { targetId, found, breakerWas, by: who, at };
}
