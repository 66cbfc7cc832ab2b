/**
 * Human output of past runs: the `runs list` table and the `runs show` / `runs start` record.
 * The JSON output is the {@link RunSummaryView}s and the record themselves.
 */
import type { RunSummaryView } from '../runs/run-history.ts';
import type { RunRecord } from '../runs/run-record.ts';
import { formatDuration } from './app-client.ts';
import { formatTable } from './table.ts';

const shortName = (id: string): string => id.split('/').filter((part) => part !== '').at(-1) ?? id;

/** `2026-03-02 06:59Z`: minutes are enough to tell runs apart in a table; `runs show` has the rest. */
function when(iso: string): string {
  return iso.length >= 16 ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z` : iso;
}

/** The `runs list` table, newest first. */
export function formatRunList(runs: readonly RunSummaryView[]): string {
  return `${formatTable(runs, [
    { header: 'STARTED', value: (run) => when(run.startedAt) },
    { header: 'RUNBOOK', value: (run) => run.runbook },
    { header: 'RUN ID', value: (run) => run.runId, maxWidth: 36 },
    { header: 'TRIGGER', value: (run) => run.trigger },
    { header: 'OUTCOME', value: (run) => `${run.outcome}${run.dryRun ? ' (dry run)' : ''}` },
    { header: 'TARGETS', value: (run) => `${String(run.counts.targets)}${run.counts.targetsFailed > 0 ? ` (${String(run.counts.targetsFailed)} failed)` : ''}` },
    { header: 'APPLIED', value: (run) => run.counts.applied },
    { header: 'FAILED', value: (run) => run.counts.failed },
    { header: 'PLANNED', value: (run) => run.counts.planned },
    { header: 'FINDINGS', value: (run) => `${String(run.counts.findingsWarn)} warn / ${String(run.counts.findingsFail)} fail` },
    { header: 'DURATION', value: (run) => formatDuration(run.durationMs), align: 'right' },
  ], '')}\n`;
}

/** One run: its summary, then per target the findings that are not ok and every action with its outcome. */
export function formatRecord(record: RunRecord, view: RunSummaryView, options: { readonly maxLines?: number } = {}): string {
  const max = options.maxLines ?? Number.POSITIVE_INFINITY;
  const lines = [
    `run ${record.runId}: ${record.runbook} on ${record.estate}, ${view.outcome} (status ${record.status}${record.dryRun ? ', nothing applied' : ''})`,
    `  trigger ${record.trigger}${record.requestedBy === undefined ? '' : `, requested by ${record.requestedBy}`}`,
    `  started ${record.startedAt}, ended ${record.endedAt} (${formatDuration(record.durationMs)})`,
    `  ${String(view.counts.targets)} target(s), ${String(view.counts.targetsFailed)} failed, ${String(view.counts.targetsSkipped)} skipped; actions ${String(view.counts.applied)} applied / ${String(view.counts.skipped)} skipped / ${String(view.counts.failed)} failed / ${String(view.counts.planned)} planned; findings ${String(view.counts.findingsWarn)} warn / ${String(view.counts.findingsFail)} fail`,
  ];
  if (record.error !== undefined) lines.push(`  error ${record.error.name}: ${record.error.message}`);
  for (const target of record.targets) {
    lines.push(`-- ${shortName(target.targetId)} (${target.kind ?? 'unknown'}): ${target.status}${target.failedDuring === undefined ? '' : ` during ${target.failedDuring}`}`);
    if (target.error !== undefined) lines.push(`  FAILED: ${target.error.message}`);
    const findings = target.findings.filter((finding) => finding.severity !== 'ok');
    for (const finding of findings.slice(0, max)) lines.push(`  ${finding.severity.toUpperCase().padEnd(4)} ${finding.message}`);
    if (findings.length > max) lines.push(`  ... and ${String(findings.length - max)} more finding(s)`);
    for (const action of target.actions.slice(0, max)) lines.push(`  ${action.outcome === 'failed' ? 'FAILED' : action.outcome} ${action.message}`);
    if (target.actions.length > max) lines.push(`  ... and ${String(target.actions.length - max)} more action(s)`);
  }
  for (const note of record.notes ?? []) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
