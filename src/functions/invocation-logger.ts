/**
 * The run log of a function invocation: run log lines go to the invocation's log, so they reach
 * Application Insights with the invocation. Shared by every trigger that runs a runbook.
 */
import type { InvocationContext } from '@azure/functions';
import type { RunLogger } from '../runs/run-log.ts';

/** Adapts the run log to the invocation's log. */
export function invocationLogger(context: InvocationContext): RunLogger {
  return {
    log(level, entry) {
      const line = JSON.stringify(entry);
      if (level === 'error') context.error(line);
      else if (level === 'warn') context.warn(line);
      else context.log(line);
    },
  };
}
