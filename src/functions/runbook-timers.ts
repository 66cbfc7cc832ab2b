/**
 * Timer functions, one per runbook. Each is thin: check the app settings and load the estate
 * config (`checkReadiness`, the check of app start and `/api/ready`), build the client layer, call {@link executeRunbook} with trigger `timer` and mode `apply`
 * (the dry-run gate decides whether anything is applied), log the summary, and throw when the
 * run failed so the host records a failed invocation.
 *
 * Schedules: app setting `<RUNBOOK>_SCHEDULE` (six-field NCRONTAB, UTC unless the app sets
 * `WEBSITE_TIME_ZONE`), else the default below. The schedule is resolved here, when the module
 * registers its functions, and registered as a literal expression rather than `%SETTING%`:
 * both the Functions host and the local host refuse to index a function whose `%SETTING%` is
 * not defined, so a `%...%` expression could not have a default. App settings are environment
 * variables of the worker before it loads the app, on the real host as on the local host, so
 * a setting still overrides the default (a change restarts the app, as every setting change does).
 * An invalid setting does not keep the app from loading: the timer keeps its default schedule
 * and fails every run, naming the setting, until it is fixed (see `resolveSchedule`).
 *
 * Overlap: the host never overlaps a timer with itself on one instance and runs a timer on one
 * instance at a time (singleton lock); the executor's per-runbook blob lease also keeps a timer
 * run and a CLI or HTTP run of the same runbook apart. Past-due slots are collapsed by the host
 * into one invocation with `isPastDue` set.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { createAzureClients } from '../azure/clients.ts';
import { OpsAutopilotError } from '../errors.ts';
import { executeRunbook, type ExecuteRunbookResult } from '../runbooks/execute-runbook.ts';
import { getRunbook } from '../runbooks/registry.ts';
import { AppNotReadyError, checkReadiness } from '../startup/readiness.ts';
import { invocationLogger } from './invocation-logger.ts';
import { RUNBOOK_TIMERS, resolveSchedule, type RunbookTimer } from './runbook-schedules.ts';

export { RUNBOOK_TIMERS, resolveSchedule, type RunbookTimer } from './runbook-schedules.ts';

/** Thrown by a timer function whose run failed or was refused by its guard, so the host records a failure. */
export class RunbookRunFailedError extends OpsAutopilotError {
  override readonly name: string = 'RunbookRunFailedError';
}


/**
 * The body of every runbook timer: one run of `runbook` through the executor.
 *
 * @throws {@link AppNotReadyError} while a setting or the estate configuration is invalid (the
 * message lists every problem, as the start-up log and `GET /api/ready` do).
 * @throws {@link RunbookRunFailedError} when the run failed or its guard refused it. A run
 * refused because another run holds the lock is logged as a warning and is not a failure.
 */
export async function runRunbookTimer(timer: RunbookTimer, myTimer: Timer, context: InvocationContext): Promise<ExecuteRunbookResult> {
  // The same check as app start and /api/ready: with any setting or config problem, nothing runs.
  const readiness = await checkReadiness();
  if (!readiness.ready) {
    const error = new AppNotReadyError(readiness.problems);
    context.error(error.message);
    throw error;
  }
  const config = readiness.config;
  const clients = createAzureClients(config.azure);
  try {
    const result = await executeRunbook(
      getRunbook(timer.runbook),
      { config, clients, logger: invocationLogger(context), now: () => new Date() },
      { trigger: 'timer', mode: 'apply', requestedBy: `timer ${timer.functionName}`, correlationId: context.invocationId },
    );
    const line = `${result.summary}${myTimer.isPastDue ? ' (past due: one run for the missed schedule)' : ''}`;
    if (result.refusal?.kind === 'lock') {
      context.warn(line);
      return result;
    }
    if (result.exit === 'failed' || result.exit === 'refused') {
      context.error(line);
      throw new RunbookRunFailedError(line, { context: { runbook: timer.runbook, estate: config.estate, runId: result.record.runId } });
    }
    context.log(line);
    return result;
  } finally {
    await clients.close();
  }
}

for (const timer of RUNBOOK_TIMERS) {
  app.timer(timer.functionName, {
    schedule: resolveSchedule(timer),
    runOnStartup: false,
    useMonitor: true,
    handler: async (myTimer, context) => {
      await runRunbookTimer(timer, myTimer, context);
    },
  });
}
