/**
 * Emits a run record as structured log lines: one line per action and per finding, then one
 * summary line. Each line is a flat JSON object carrying `runId`, `runbook` and `estate`, so a
 * log query (App Insights `traces`, `jq`) can join them to the blob record.
 */
import type { ActionRecord, FindingRecord, RunRecord, TargetRecord } from './run-record.ts';
import { assertNoSecrets } from './secret-guard.ts';

/** Log levels the run log uses. */
export type RunLogLevel = 'info' | 'warn' | 'error';

/** One structured log entry. */
export type RunLogEntry = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** Where run log lines go. Azure Functions hosts adapt `InvocationContext.log/warn/error`. */
export interface RunLogger {
  log(level: RunLogLevel, entry: RunLogEntry): void;
}

/** A logger writing one JSON object per line to a stream (stderr by default). */
export function jsonLineLogger(write: (line: string) => void = (line) => process.stderr.write(line)): RunLogger {
  return {
    log(level, entry) {
      write(`${JSON.stringify({ level, ...entry })}\n`);
    },
  };
}

/** A logger that keeps entries in memory, for tests and for callers that batch. */
export function memoryLogger(): RunLogger & { readonly entries: { level: RunLogLevel; entry: RunLogEntry }[] } {
  const entries: { level: RunLogLevel; entry: RunLogEntry }[] = [];
  return {
    entries,
    log(level, entry) {
      entries.push({ level, entry });
    },
  };
}

function actionLevel(action: ActionRecord): RunLogLevel {
  return action.outcome === 'failed' ? 'error' : 'info';
}

function findingLevel(finding: FindingRecord): RunLogLevel {
  return finding.severity === 'fail' ? 'error' : finding.severity === 'warn' ? 'warn' : 'info';
}

function detailFields(details: Readonly<Record<string, string | number | boolean | null>> | undefined): Record<string, string | number | boolean | null> {
  if (details === undefined) return {};
  return Object.fromEntries(Object.entries(details).map(([key, value]) => [`detail.${key}`, value]));
}

/**
 * Emits the record. The record is checked for secrets first, so a record that would be refused
 * by the store is not logged either.
 */
export function emitRunRecord(record: RunRecord, logger: RunLogger): void {
  assertNoSecrets(record, `run record ${record.runId}`);
  const base = { runId: record.runId, runbook: record.runbook, estate: record.estate, trigger: record.trigger, dryRun: record.dryRun };
  const targetBase = (target: TargetRecord): Record<string, string | undefined> => ({ targetId: target.targetId, kind: target.kind });
  for (const target of record.targets) {
    for (const action of target.actions) {
      logger.log(actionLevel(action), {
        event: 'run.action',
        ...base,
        ...targetBase(target),
        action: action.action,
        outcome: action.outcome,
        message: action.message,
        resource: action.resource,
        at: action.at,
        ...detailFields(action.details),
      });
    }
    for (const finding of target.findings) {
      logger.log(findingLevel(finding), {
        event: 'run.finding',
        ...base,
        ...targetBase(target),
        severity: finding.severity,
        code: finding.code,
        message: finding.message,
        resource: finding.resource,
        ...detailFields(finding.details),
      });
    }
    if (target.error !== undefined) {
      logger.log('error', {
        event: 'run.target.failed',
        ...base,
        ...targetBase(target),
        errorName: target.error.name,
        errorCode: target.error.code,
        statusCode: target.error.statusCode,
        message: target.error.message,
      });
    }
  }
  const { summary } = record;
  logger.log(record.status === 'succeeded' ? 'info' : record.status === 'partial' ? 'warn' : 'error', {
    event: 'run.completed',
    ...base,
    status: record.status,
    startedAt: record.startedAt,
    endedAt: record.endedAt,
    durationMs: record.durationMs,
    targets: summary.targets,
    targetsFailed: summary.targetsFailed,
    actionsPlanned: summary.actions.planned,
    actionsApplied: summary.actions.applied,
    actionsSkipped: summary.actions.skipped,
    actionsFailed: summary.actions.failed,
    findingsWarn: summary.findings.warn,
    findingsFail: summary.findings.fail,
    errorName: record.error?.name,
    message: record.error?.message,
  });
}
