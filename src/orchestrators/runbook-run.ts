/**
 * `runbookRunOrchestrator`: a manual run (`POST /api/runs/{runbook}` with `mode: apply`) as a
 * durable orchestration, so it completes even when it outlasts the HTTP request, the caller
 * goes away or the worker restarts. The instance id is the run id, so the starter detects a
 * duplicate request and the run record, the locks and the journal all share one id.
 *
 * One step: the activity `runbookRunActivity` runs the runbook through the one executor (lock,
 * resource locks, cap, dry-run gate, record, notifications). It is idempotent by run id (see
 * `src/runbooks/manual-run.ts`), so the at-least-once delivery of activities never applies an
 * action twice. A failing activity (the run-record store unreachable before anything ran) is
 * retried a bounded number of times, never by time (see this folder's README).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import type { ManualRunInput, ManualRunOutput } from '../runbooks/manual-run.ts';
import { FUNCTION_NAMES } from '../functions/function-names.ts';

/** Attempts of the activity: the first and two retries, 30 s then 60 s apart. */
export const RUNBOOK_RUN_ATTEMPTS = 3;

/** The orchestrator: deterministic, no I/O; everything happens in the activity. */
export const runbookRunOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput<ManualRunInput>();
  const retry = new df.RetryOptions(30_000, RUNBOOK_RUN_ATTEMPTS);
  retry.backoffCoefficient = 2;
  retry.maxRetryIntervalInMilliseconds = 60_000;
  context.df.setCustomStatus({ phase: 'running', runbook: input.runbook });
  const output = (yield context.df.callActivityWithRetry(FUNCTION_NAMES.runbookRunActivity, retry, input)) as ManualRunOutput;
  context.df.setCustomStatus({ phase: 'done', runbook: input.runbook, outcome: output.outcome });
  return output;
};

df.app.orchestration(FUNCTION_NAMES.runbookRunOrchestrator, runbookRunOrchestrator);
