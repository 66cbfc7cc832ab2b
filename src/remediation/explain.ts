/**
 * What an alert or event would do, as of now, without doing any of it: the parsed essentials,
 * the allow-list decision (target and rule), every guardrail's verdict for the ladder's first
 * rung, and the ladder that would run. Used by `ops-autopilot explain-alert` / `explain-event`.
 *
 * Read-only by construction: the guardrail store is opened read-only (its writes throw before
 * they reach the service), nothing is notified, no lock is taken.
 */
import type { RemediationActionName } from '../config/remediation-schema.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { evaluateGuardrails, killSwitchDecision, type GuardrailDecision, type GuardrailStore } from './guardrails.ts';
import { matchRemediation, summariseIntake, type AllowedTarget, type IntakeSummary, type RemediationIntake } from './rules.ts';

/** One rung as explain shows it. */
export interface ExplainedRung {
  readonly action: RemediationActionName;
  readonly params: Readonly<Record<string, unknown>>;
  readonly verify: { readonly paths?: readonly string[]; readonly consecutive: number; readonly intervalSeconds: number; readonly deadlineSeconds: number };
  readonly cooldownMinutes: number;
}

/** The explanation of one alert or event. */
export interface Explanation {
  /** remediate: a rule matches and every guardrail passes now; ignore: nothing to do or suppressed; reject: refused. */
  readonly decision: 'remediate' | 'ignore' | 'reject';
  readonly reason: string;
  readonly intake: IntakeSummary;
  readonly target: string | null;
  readonly rule: string | null;
  /** The ladder's actions in order (empty when nothing matches). */
  readonly actions: readonly RemediationActionName[];
  readonly ladder: readonly ExplainedRung[];
  readonly escalate: readonly string[];
  /** Every guardrail's verdict for the first rung, as of now. */
  readonly guardrails: readonly GuardrailDecision[];
  /** The dry-run gate would hold: plan and record only. */
  readonly dryRun: boolean;
}

/**
 * Explains one intake.
 *
 * @param store a read-only guardrail store, or undefined when no state store is configured or
 * it cannot be reached (`stateProblem` says why); the stateful guardrails are then not judged
 * and the decision fails closed to `ignore`
 */
export async function explainIntake(
  config: Pick<EstateConfig, 'estate' | 'dryRun' | 'remediation' | 'targets'>,
  targets: readonly AllowedTarget[],
  intake: RemediationIntake,
  store: GuardrailStore | undefined,
  options: { now?: Date; env?: Readonly<Record<string, string | undefined>>; stateProblem?: string } = {},
): Promise<Explanation> {
  const now = options.now ?? new Date();
  const summary = summariseIntake(intake);
  const match = matchRemediation(config, targets, intake);
  if (match.decision !== 'remediate') {
    return {
      decision: match.decision,
      reason: match.reason,
      intake: summary,
      target: match.target?.id ?? null,
      rule: null,
      actions: [],
      ladder: [],
      escalate: [],
      guardrails: [killSwitchDecision(options.env ?? store?.env ?? process.env), { guardrail: 'allow-list', verdict: 'block', reason: match.reason }],
      dryRun: config.dryRun,
    };
  }
  const { target, rule } = match;
  const ladder = rule.ladder.map((rung) => ({ action: rung.action, params: rung.params, verify: rung.verify, cooldownMinutes: rung.cooldown.minutes }));
  const base = { intake: summary, target: target.id, rule: rule.name, actions: rule.ladder.map((rung) => rung.action), ladder, escalate: rule.escalate.notify };
  const first = rule.ladder[0];
  if (first === undefined) return { ...base, decision: 'ignore', reason: 'the rule has no rungs', guardrails: [], dryRun: config.dryRun };
  const input = {
    estate: config.estate,
    target,
    rule,
    action: first.action,
    rung: 0,
    triggerKey: summary.idempotencyKey,
    monitorCondition: summary.monitorCondition,
    now,
    dryRun: false,
  };
  if (store === undefined) {
    const reason = `guardrail state not read (${options.stateProblem ?? 'no state store configured'}): the stateful guardrails cannot be judged, so nothing would act`;
    return { ...base, decision: 'ignore', reason, guardrails: [killSwitchDecision(options.env ?? process.env), { guardrail: 'dedupe', verdict: 'block', reason }], dryRun: config.dryRun };
  }
  try {
    const evaluation = await evaluateGuardrails(store, input);
    return {
      ...base,
      decision: evaluation.allowed ? 'remediate' : 'ignore',
      reason: evaluation.allowed ? `${match.reason}; ${evaluation.reason}` : `suppressed: ${evaluation.reason}`,
      guardrails: evaluation.decisions,
      dryRun: evaluation.dryRun,
    };
  } catch (error) {
    const reason = `guardrail state at ${store.location} could not be read (${errorMessage(error)}): nothing would act (fail closed)`;
    return { ...base, decision: 'ignore', reason, guardrails: [killSwitchDecision(store.env), { guardrail: 'dedupe', verdict: 'block', reason }], dryRun: config.dryRun };
  }
}
