/**
 * Human output of runbook runs: per target, in plan order, the checks (with evidence), the
 * actions, the items kept and any failure; after an apply, the same with each action's outcome.
 * Long lists are cut to a few lines each unless told otherwise (`--show all`); the JSON output
 * and the run record hold everything.
 */
import { selectionLine, type TargetSelection } from '../config/resolve.ts';
import type { RunbookName } from '../config/schema.ts';
import type { ExecuteRunbookResult } from '../runbooks/execute-runbook.ts';
import type { TargetPlan } from '../runbooks/runbook.ts';
import type { ActionRecord, TargetRecord } from '../runs/run-record.ts';

/** Options of the formatters. */
export interface RunbookFormatOptions {
  /** Lines per list (checks, kept) before "... and N more"; default 12. */
  readonly maxLines?: number;
  /** Lines of actions before "... and N more"; default {@link maxLines}. */
  readonly maxActions?: number;
  /** Leave out checks that passed (status ok). */
  readonly hideOk?: boolean;
  /** Appended to "... and N more", e.g. `(--show all lists them)`. */
  readonly moreHint?: string;
  /** Which scope or entry selected each target (from the run's result); a line per target names it and the policy that won. */
  readonly selection?: readonly TargetSelection[];
  /** The runbook, to name only its policy in that line. */
  readonly runbook?: RunbookName;
}

/** Every line of every list: what `--show all` and the confirmation use. */
export const SHOW_EVERYTHING: RunbookFormatOptions = { maxLines: Number.POSITIVE_INFINITY, hideOk: false };

const shortName = (id: string): string => id.split('/').filter((part) => part !== '').at(-1) ?? id;

function capped(lines: readonly string[], max: number, indent: string, hint: string | undefined): string[] {
  if (lines.length <= max) return lines.map((line) => `${indent}${line}`);
  return [...lines.slice(0, max).map((line) => `${indent}${line}`), `${indent}... and ${lines.length - max} more${hint === undefined ? '' : ` ${hint}`}`];
}

function checkLines(plan: TargetPlan, options: RunbookFormatOptions, max: number): string[] {
  const checks = plan.checks.filter((check) => !(options.hideOk === true && check.status === 'ok'));
  const okHidden = plan.checks.length - checks.length;
  if (checks.length === 0 && okHidden === 0) return [];
  return [
    `  checks:${okHidden > 0 ? ` (${okHidden} ok not shown)` : ''}`,
    ...capped(
      checks.map((check) => `${check.status.toUpperCase().padEnd(4)} ${check.message} (expected ${check.expected}; found ${check.found})`),
      max,
      '    ',
      options.moreHint,
    ),
  ];
}

function keptLines(plan: TargetPlan, options: RunbookFormatOptions, max: number): string[] {
  if (plan.kept.length === 0) return [];
  return [`  kept: ${plan.kept.length}`, ...capped(plan.kept.map((item) => `- ${item.resource}: ${item.reason}`), max, '    ', options.moreHint)];
}

function failedLine(target: TargetRecord): string {
  return `  FAILED${target.failedDuring === undefined ? '' : ` (${target.failedDuring})`}: ${target.error?.message ?? 'no plan'}`;
}

/** The plans of a run, target by target, including targets whose plan failed. */
export function formatPlans(plans: readonly TargetPlan[], targets: readonly TargetRecord[], options: RunbookFormatOptions = {}): string {
  const max = options.maxLines ?? 12;
  const maxActions = options.maxActions ?? max;
  const out: string[] = [];
  const byId = new Map(plans.map((plan) => [plan.targetId.toLowerCase(), plan]));
  for (const target of targets) {
    const plan = byId.get(target.targetId.toLowerCase());
    out.push(`-- ${shortName(target.targetId)} (${target.kind ?? 'unknown'})`);
    const selection = options.selection?.find((entry) => entry.targetId.toLowerCase() === target.targetId.toLowerCase());
    // Said only when more than the target's own entry is involved (a scope, a default): an
    // explicit-only estate reads as it always has.
    const layered = selection !== undefined && (selection.alsoSelectedBy.length > 0 || !selection.selectedBy.startsWith('targets') || selection.policies.some((policy) => policy.source !== selection.selectedBy || policy.over.length > 0));
    if (selection !== undefined && layered) out.push(`  ${selectionLine(selection, options.runbook)}`);
    if (plan === undefined) {
      out.push(failedLine(target));
      continue;
    }
    out.push(...checkLines(plan, options, max));
    out.push(`  actions: ${plan.actions.length === 0 ? 'none' : String(plan.actions.length)}`);
    out.push(...capped(plan.actions.map((action) => `- ${action.description}${action.destructive ? ' [destructive]' : ''}`), maxActions, '    ', options.moreHint));
    out.push(...keptLines(plan, options, max));
  }
  return out.length === 0 ? 'no targets opt into this runbook\n' : `${out.join('\n')}\n`;
}

/** The record of each planned action of a target, by the plan's action id. */
function outcomesByActionId(target: TargetRecord | undefined): Map<string, ActionRecord> {
  const byId = new Map<string, ActionRecord>();
  for (const action of target?.actions ?? []) {
    const id = action.details?.actionId;
    if (typeof id === 'string') byId.set(id, action);
  }
  return byId;
}

/**
 * What a run did, target by target in plan order: the checks that found something (warn and
 * fail, or all with `hideOk: false`), then every planned action in plan order with its outcome
 * (`applied`, `skipped`, `FAILED`, or `planned` when it was not started), then the kept items.
 * Failed actions are always listed, even past the cap.
 */
export function formatRun(result: ExecuteRunbookResult, options: RunbookFormatOptions = {}): string {
  const max = options.maxLines ?? 12;
  const maxActions = options.maxActions ?? max;
  const out: string[] = [];
  const plans = new Map(result.plans.map((plan) => [plan.targetId.toLowerCase(), plan]));
  for (const target of result.record.targets) {
    const plan = plans.get(target.targetId.toLowerCase());
    if (plan === undefined) {
      out.push(`-- ${shortName(target.targetId)} (${target.kind ?? 'unknown'})`, failedLine(target));
      continue;
    }
    const outcomes = outcomesByActionId(target);
    const rows = plan.actions.map((action) => {
      const record = outcomes.get(action.id);
      const outcome = record?.outcome ?? 'planned';
      return { outcome, line: `${outcome === 'failed' ? 'FAILED' : outcome} ${record?.message ?? action.description}` };
    });
    const count = (outcome: ActionRecord['outcome']): number => rows.filter((row) => row.outcome === outcome).length;
    const counts = plan.actions.length === 0 ? 'no actions' : `${count('applied')} applied, ${count('skipped')} skipped, ${count('failed')} failed${count('planned') > 0 ? `, ${count('planned')} not applied` : ''}`;
    out.push(`-- ${shortName(target.targetId)} (${target.kind ?? plan.kind}): ${counts}`);
    out.push(...checkLines(plan, options, max));
    if (rows.length > 0) {
      const shown = rows.slice(0, maxActions);
      const hiddenFailures = rows.slice(maxActions).filter((row) => row.outcome === 'failed');
      const hidden = rows.length - shown.length - hiddenFailures.length;
      out.push('  actions:');
      out.push(...[...shown, ...hiddenFailures].map((row) => `    ${row.line}`));
      if (hidden > 0) out.push(`    ... and ${hidden} more${options.moreHint === undefined ? '' : ` ${options.moreHint}`}`);
    }
    out.push(...keptLines(plan, options, max));
  }
  return out.length === 0 ? 'no targets opt into this runbook\n' : `${out.join('\n')}\n`;
}
