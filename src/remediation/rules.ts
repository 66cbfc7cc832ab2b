/**
 * Which target and rule an alert or event asks for: guardrail 2, the allow-list. A payload acts
 * only on a resource the estate's resolved targets name AND through a rule of that target that
 * matches it; anything else is acknowledged and ignored, so a forged or foreign alert changes
 * nothing. Pure: no I/O, the same answer on every path (alert trigger, Event Grid, CLI explain).
 *
 * The kill switch and `remediation: off` (guardrail 1) are judged by `evaluateGuardrails`, which
 * runs before any action; a match here is not a permission to act.
 */
import { resourceIdKey, parseResourceId, type ResourceKind } from '../azure/resource-id.ts';
import type { ParsedAlert } from '../alerts/common-alert-schema.ts';
import type { ParsedEvent } from '../events/event-grid-schema.ts';
import {
  actionParamsSchema,
  mergeRemediation,
  REMEDIATION_KINDS,
  rungCooldown,
  type CooldownSettings,
  type EffectiveRemediation,
  type RemediationActionName,
  type RemediationLayer,
  type RemediationRule,
  type RuleMatch,
  type VerifySettings,
} from '../config/remediation-schema.ts';
import type { EstateConfig, TargetConfig } from '../config/schema.ts';

/** What the intake modules hand over: a parsed alert or a parsed event. */
export type RemediationIntake = ParsedAlert | ParsedEvent;

/** One entry of the allow-list: a resolved target (an explicit one until scopes resolve). */
export type AllowedTarget = Pick<TargetConfig, 'id'> & Partial<Pick<TargetConfig, 'displayName' | 'health'>> & {
  /** What selected it (`targets[2]`, `scope services`), when resolution says so. */
  readonly selectedBy?: readonly string[];
  /** Its remediation levels below the top level (a scope's, its entry's), from {@link ../config/resolve.ts}. */
  readonly remediationLayers?: readonly RemediationLayer[];
};

/** A target remediation may act on, with its effective remediation settings. */
export interface RemediationTarget {
  /** The ARM id as configured. */
  readonly id: string;
  readonly kind: ResourceKind;
  readonly name: string;
  readonly displayName: string | undefined;
  readonly health: TargetConfig['health'];
  /** The effective remediation (levels merged). */
  readonly remediation: EffectiveRemediation;
}

/** One rung with its params parsed for the target's kind and its cooldown resolved. */
export interface ResolvedRung {
  readonly action: RemediationActionName;
  /** Params with defaults filled, as `actionParamsSchema(action, kind)` parses them. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly verify: VerifySettings;
  /** The cooldown that applies (the rung's, else the effective default, else built-in). */
  readonly cooldown: CooldownSettings;
}

/** A rule as it applies to one target. */
export interface ResolvedRule {
  readonly name: string;
  /** Where it is written, e.g. `targets[0].remediation.rules[1]`. */
  readonly path: string;
  readonly match: RuleMatch;
  readonly watch: VerifySettings | undefined;
  readonly ladder: readonly ResolvedRung[];
  /** Notification entries that hear the escalation (the rule's, else the effective default; `notify` may be empty). */
  readonly escalate: { readonly notify: readonly string[] };
}

/** The outcome of {@link matchRemediation}. */
export type RemediationMatch =
  | {
      readonly decision: 'remediate';
      readonly target: RemediationTarget;
      readonly rule: ResolvedRule;
      readonly reason: string;
      /** The dry-run gate will hold: the estate's dryRun, or the target's mode dry-run. */
      readonly dryRun: boolean;
    }
  | { readonly decision: 'ignore' | 'reject'; readonly reason: string; readonly target?: RemediationTarget };

/** The essentials of an intake, for explain and records. */
export interface IntakeSummary {
  readonly type: 'alert' | 'event';
  readonly id: string;
  readonly idempotencyKey: string;
  /** Alert: `Fired` or `Resolved`; events have none. */
  readonly monitorCondition: 'Fired' | 'Resolved' | undefined;
  readonly alertRule?: string | undefined;
  readonly severity?: string | undefined;
  readonly signalType?: string | undefined;
  readonly monitoringService?: string | undefined;
  readonly metricNames?: readonly string[];
  readonly eventType?: string;
  /** The resources it names, as sent. */
  readonly resources: readonly string[];
}

/** True for a parsed alert, false for a parsed event. */
export function isAlert(intake: RemediationIntake): intake is ParsedAlert {
  return 'alertId' in intake;
}

/** The essentials of an alert or event. */
export function summariseIntake(intake: RemediationIntake): IntakeSummary {
  if (isAlert(intake)) {
    return {
      type: 'alert',
      id: intake.alertId,
      idempotencyKey: intake.idempotencyKey,
      monitorCondition: intake.monitorCondition,
      alertRule: intake.alertRule,
      severity: intake.severity,
      signalType: intake.signalType,
      monitoringService: intake.monitoringService,
      metricNames: intake.metrics.map((metric) => metric.name),
      resources: intake.targetIds,
    };
  }
  return {
    type: 'event',
    id: intake.id,
    idempotencyKey: intake.idempotencyKey,
    monitorCondition: undefined,
    eventType: intake.type,
    resources: eventResources(intake),
  };
}

/** The resource an event is about, when it names one. */
function eventResources(event: ParsedEvent): string[] {
  switch (event.kind) {
    case 'slot-swap':
      return event.siteId === undefined ? [] : [event.siteId];
    case 'resource':
      return [event.resourceId];
    default:
      return event.source !== undefined && event.source.toLowerCase().startsWith('/subscriptions/') ? [event.source] : [];
  }
}

/**
 * The remediation layers of one configured target, lowest precedence first: the top-level
 * `remediation`, then the target's own entry (`targets[i]`). Scopes slot in between once target
 * resolution names them.
 */
export function remediationLayers(config: Pick<EstateConfig, 'remediation' | 'targets'>, targetId: string, resolved?: Pick<AllowedTarget, 'remediationLayers'>): RemediationLayer[] {
  const layers: RemediationLayer[] = [{ source: 'remediation', value: config.remediation }];
  // A resolved target knows its levels (the scope that selected it, its own entry): the allow-list's word.
  if (resolved?.remediationLayers !== undefined) return [...layers, ...resolved.remediationLayers];
  const key = resourceIdKey(targetId);
  const index = config.targets.findIndex((target) => resourceIdKey(target.id) === key);
  const entry = index < 0 ? undefined : config.targets[index];
  if (entry !== undefined) layers.push({ source: `targets[${String(index)}]`, value: entry.remediation });
  return layers;
}

/** The effective remediation of one target of the config. */
export function effectiveRemediation(config: Pick<EstateConfig, 'remediation' | 'targets'>, targetId: string, resolved?: Pick<AllowedTarget, 'remediationLayers'>): EffectiveRemediation {
  return mergeRemediation(remediationLayers(config, targetId, resolved));
}

/** The target as remediation sees it, or undefined when its kind cannot be remediated. */
export function remediationTarget(config: Pick<EstateConfig, 'remediation' | 'targets'>, allowed: AllowedTarget): RemediationTarget | undefined {
  const parsed = parseResourceId(allowed.id);
  if (parsed.kind === undefined || !REMEDIATION_KINDS.includes(parsed.kind)) return undefined;
  const configured = config.targets.find((target) => resourceIdKey(target.id) === resourceIdKey(allowed.id));
  return {
    id: allowed.id,
    kind: parsed.kind,
    name: parsed.name,
    displayName: allowed.displayName ?? configured?.displayName,
    health: allowed.health ?? configured?.health,
    remediation: effectiveRemediation(config, allowed.id, allowed),
  };
}

/**
 * Resolves a rule for a target's kind: params parsed (defaults filled), cooldowns resolved,
 * escalation defaulted.
 *
 * @throws Error when a rung's params do not fit the kind (the config loader refuses such a file,
 * so this only happens with a config built in code)
 */
export function resolveRule(rule: RemediationRule, path: string, target: Pick<RemediationTarget, 'kind' | 'remediation' | 'id'>): ResolvedRule {
  const ladder = rule.ladder.map((rung, index): ResolvedRung => {
    const schema = actionParamsSchema(rung.action, target.kind);
    if (schema === undefined) throw new Error(`${path}.ladder[${String(index)}]: expected an action a ${target.kind} has, found ${rung.action} (${target.id})`);
    const params = schema.safeParse(rung.params);
    if (!params.success) throw new Error(`${path}.ladder[${String(index)}].params: ${params.error.issues.map((issue) => issue.message).join('; ')}`);
    const cooldown = rungCooldown(rung, target.remediation);
    if (cooldown === undefined) throw new Error(`${path}.ladder[${String(index)}]: expected a cooldown for ${rung.action}, found none`);
    return { action: rung.action, params: params.data as Record<string, unknown>, verify: rung.verify, cooldown };
  });
  return {
    name: rule.name,
    path,
    match: rule.match,
    watch: rule.watch,
    ladder,
    escalate: { notify: (rule.escalate ?? target.remediation.escalate)?.notify ?? [] },
  };
}

const list = <T>(value: T | readonly T[] | undefined): readonly T[] | undefined => (value === undefined ? undefined : Array.isArray(value) ? (value as readonly T[]) : [value as T]);
const fold = (text: string): string => text.toLowerCase();
/** Monitoring services compare without case or spaces (`ResourceHealth` = `Resource Health`), as the parser does. */
const serviceKey = (service: string): string => service.toLowerCase().replace(/[\s_-]+/g, '');

/**
 * Why a rule does not match an intake, or undefined when it does: every criterion it sets must
 * hold (any of a criterion's values will do).
 */
export function ruleMismatch(match: RuleMatch, intake: RemediationIntake): string | undefined {
  if (isAlert(intake)) {
    if (match.eventType !== undefined) return 'the rule matches events, this is an alert';
    const checks: [string, readonly string[] | undefined, readonly string[], (value: string) => string][] = [
      ['alertRule', list(match.alertRule), intake.alertRule === undefined ? [] : [intake.alertRule], fold],
      ['signalType', list(match.signalType), intake.signalType === undefined ? [] : [intake.signalType], fold],
      ['monitoringService', list(match.monitoringService), [intake.monitoringService], serviceKey],
      ['severity', list(match.severity), intake.severity === undefined ? [] : [intake.severity], fold],
      ['metricName', list(match.metricName), intake.metrics.map((metric) => metric.name), fold],
    ];
    for (const [field, wanted, found, key] of checks) {
      if (wanted === undefined) continue;
      const keys = new Set(wanted.map(key));
      if (!found.some((value) => keys.has(key(value)))) {
        return `${field}: expected ${wanted.map((value) => JSON.stringify(value)).join(' or ')}, found ${found.length === 0 ? 'none' : found.map((value) => JSON.stringify(value)).join(', ')}`;
      }
    }
    return undefined;
  }
  const types = list(match.eventType);
  if (types === undefined) return 'the rule matches alerts, this is an event';
  return types.some((type) => fold(type) === fold(intake.type)) ? undefined : `eventType: expected ${types.join(' or ')}, found ${intake.type}`;
}

/**
 * The allow-list decision for an alert or event.
 *
 * - `remediate`: exactly one allow-listed target is named and one of its rules matches (the
 *   first, in order: the target's own rules, then its scope's);
 * - `ignore`: nothing of ours is named, or no rule matches, or the event has nothing to act on;
 * - `reject`: ambiguous (several allow-listed targets in one alert), so nothing acts.
 *
 * @param targets the estate's resolved targets (the allow-list); nothing outside it is ever acted on
 */
export function matchRemediation(config: Pick<EstateConfig, 'remediation' | 'targets' | 'dryRun'>, targets: readonly AllowedTarget[], intake: RemediationIntake): RemediationMatch {
  const named = summariseIntake(intake).resources.map(resourceIdKey);
  if (!isAlert(intake)) {
    if (intake.kind === 'subscription-validation') return { decision: 'ignore', reason: 'an Event Grid subscription validation handshake, not an incident' };
    if (intake.kind === 'unknown') return { decision: 'ignore', reason: `event type ${intake.type} is not one the autopilot acts on` };
  }
  if (named.length === 0) return { decision: 'ignore', reason: `the ${isAlert(intake) ? 'alert names no target resource (alertTargetIDs is empty)' : 'event names no resource'}` };
  const allowed = new Map(targets.map((target) => [resourceIdKey(target.id), target] as const));
  const matched = new Map<string, AllowedTarget>();
  for (const id of named) {
    // An event about a child resource (a revision, a slot's config) is about its parent target.
    const target = allowed.get(id) ?? (isAlert(intake) ? undefined : [...allowed.entries()].find(([key]) => id.startsWith(`${key}/`))?.[1]);
    if (target !== undefined) matched.set(resourceIdKey(target.id), target);
  }
  if (matched.size === 0) {
    return { decision: 'ignore', reason: `not an estate target: ${named.slice(0, 3).join(', ')}${named.length > 3 ? ', …' : ''} is not among the ${String(targets.length)} resolved targets` };
  }
  if (matched.size > 1) {
    return { decision: 'reject', reason: `ambiguous: the ${isAlert(intake) ? 'alert' : 'event'} names ${String(matched.size)} estate targets (${[...matched.values()].map((target) => target.id).join(', ')}); one remediation acts on one target` };
  }
  const allowedTarget = [...matched.values()][0];
  if (allowedTarget === undefined) return { decision: 'ignore', reason: 'no target' };
  const target = remediationTarget(config, allowedTarget);
  if (target === undefined) return { decision: 'ignore', reason: `${allowedTarget.id} is not a kind remediation acts on (web apps, container apps, PostgreSQL servers)` };
  const rules = target.remediation.rules;
  if (rules.length === 0) return { decision: 'ignore', reason: `no remediation rules for ${target.id}`, target };
  const misses: string[] = [];
  for (const { rule, path } of rules) {
    const miss = ruleMismatch(rule.match, intake);
    if (miss === undefined) {
      return { decision: 'remediate', target, rule: resolveRule(rule, path, target), reason: `rule ${rule.name} (${path}) matches`, dryRun: config.dryRun || target.remediation.mode === 'dry-run' };
    }
    misses.push(`${rule.name}: ${miss}`);
  }
  return { decision: 'ignore', reason: `no rule of ${target.id} matches (${misses.join('; ')})`, target };
}
