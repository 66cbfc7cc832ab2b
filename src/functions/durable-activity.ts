/**
 * Registers a durable activity whose body is a runbook-side step: loads the settings and the
 * estate config (the same readiness check as every function; thrown while invalid, so the
 * durable retry tries again once fixed), builds the client layer, runs the step with the
 * runbook context, and closes the clients. Thin, like every trigger.
 */
import type { InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { createAzureClients } from '../azure/clients.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { AppNotReadyError, checkReadiness } from '../startup/readiness.ts';
import { invocationLogger } from './invocation-logger.ts';

/** Registers `name` as an activity running `step`. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- I ties the activity's input to the step's parameter
export function registerStepActivity<I, O>(name: string, step: (ctx: RunbookContext, input: I) => Promise<O>): void {
  df.app.activity(name, {
    handler: async (input: I, context: InvocationContext): Promise<O> => {
      const readiness = await checkReadiness();
      if (!readiness.ready) throw new AppNotReadyError(readiness.problems);
      const { config } = readiness;
      const clients = createAzureClients(config.azure);
      try {
        return await step({ config, clients, now: () => new Date(), logger: invocationLogger(context) }, input);
      } finally {
        await clients.close();
      }
    },
  });
}
