/**
 * Human output of runbook runs: per target the checks (with evidence), the actions, the items
 * kept and any failure; then the outcome of applied actions and one summary line. Long lists
 * are cut to a few lines each (the JSON output and the run record hold everything).
 */
import type { ExecuteRunbookResult } from '../runbooks/execute-runbook.ts';
import type { TargetPlan } from '../runbooks/runbook.ts';
import type { ActionRecord, TargetRecord } from '../runs/run-record.ts';

/** Options of the formatters. */
export interface RunbookFormatOptions {
  /** Lines per list (checks, actions, kept) before "... and N more"; default 12. */
  readonly maxLines?: number;
  /** Leave out checks that passed (status ok). */
  readonly hideOk?: boolean;
}

const shortName = (id: string): string => id.split('/').filter((part) => part !== '').at(-1) ?? id;

function capped(lines: readonly string[], max: number, indent: string): string[] {
  if (lines.length <= max) return lines.map((line) => `${indent}${line}`);
  return [...lines.slice(0, max).map((line) => `${indent}${line}`), `${indent}... and ${lines.length - max} more`];
}

/** The plans of a run, target by target, including targets whose plan failed. */
export function formatPlans(plans: readonly TargetPlan[], targets: readonly TargetRecord[], options: RunbookFormatOptions = {}): string {
  const max = options.maxLines ?? 12;
  const out: string[] = [];
  const byId = new Map(plans.map((plan) => [plan.targetId.toLowerCase(), plan]));
  for (const target of targets) {
    const plan = byId.get(target.targetId.toLowerCase());
    out.push(`-- ${shortName(target.targetId)} (${target.kind ?? 'unknown'})`);
    if (plan === undefined) {
      out.push(`  FAILED: ${target.error?.message ?? 'no plan'}`);
      continue;
    }
    const checks = plan.checks.filter((check) => !(options.hideOk === true && check.status === 'ok'));
    const okHidden = plan.checks.length - checks.length;
    if (checks.length > 0 || okHidden > 0) {
      out.push(`  checks:${okHidden > 0 ? ` (${okHidden} ok not shown)` : ''}`);
      out.push(
        ...capped(
          checks.map((check) => `${check.status.toUpperCase().padEnd(4)} ${check.message} (expected ${check.expected}; found ${check.found})`),
          max,
          '    ',
        ),
      );
    }
    out.push(`  actions: ${plan.actions.length === 0 ? 'none' : String(plan.actions.length)}`);
    out.push(...capped(plan.actions.map((action) => `- ${action.description}${action.destructive ? ' [destructive]' : ''}`), max, '    '));
    if (plan.kept.length > 0) {
      out.push(`  kept: ${plan.kept.length}`);
      out.push(...capped(plan.kept.map((item) => `- ${item.resource}: ${item.reason}`), max, '    '));
    }
  }
  return out.length === 0 ? 'no targets opt into this runbook\n' : `${out.join('\n')}\n`;
}

function isPlanAction(action: ActionRecord): boolean {
  return action.outcome !== 'planned' && action.action !== 'plan';
}

/** What apply did, target by target: counts per outcome and the failed (and a few applied) actions. */
export function formatApplied(result: ExecuteRunbookResult, options: RunbookFormatOptions = {}): string {
  const max = options.maxLines ?? 12;
  const out: string[] = [];
  for (const target of result.record.targets) {
    const actions = target.actions.filter(isPlanAction);
    if (actions.length === 0) continue;
    const count = (outcome: ActionRecord['outcome']): number => actions.filter((action) => action.outcome === outcome).length;
    out.push(`-- ${shortName(target.targetId)}: ${count('applied')} applied, ${count('skipped')} skipped, ${count('failed')} failed`);
    out.push(...capped(actions.filter((action) => action.outcome === 'failed').map((action) => `FAILED ${action.message}`), max, '    '));
    out.push(...capped(actions.filter((action) => action.outcome !== 'failed').map((action) => `${action.outcome} ${action.message}`), Math.min(max, 6), '    '));
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
