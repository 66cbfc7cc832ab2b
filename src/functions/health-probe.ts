/**
 * The durable activity `probeHealthActivity`, which every `verifyHealth` step calls: thin, like
 * every trigger here. It loads the estate config (the same readiness check as every function),
 * builds the client layer and runs one probe of a configured target
 * (`src/health/probe-activity.ts`). It throws on failure, so the orchestration sees the reason.
 */
import type { InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { createAzureClients } from '../azure/clients.ts';
import { runProbeHealthActivity } from '../health/probe-activity.ts';
import type { ProbeResult } from '../health/probe.ts';
import { PROBE_HEALTH_ACTIVITY, type ProbeHealthActivityInput } from '../health/verify-health.ts';
import { AppNotReadyError, checkReadiness } from '../startup/readiness.ts';

df.app.activity(PROBE_HEALTH_ACTIVITY, {
  handler: async (input: ProbeHealthActivityInput, context: InvocationContext): Promise<ProbeResult> => {
    const readiness = await checkReadiness();
    if (!readiness.ready) throw new AppNotReadyError(readiness.problems);
    const { config } = readiness;
    const clients = createAzureClients(config.azure);
    try {
      const result = await runProbeHealthActivity(input, {
        config,
        clients,
        now: () => new Date(),
        logger: {
          log(level, entry) {
            const line = JSON.stringify(entry);
            if (level === 'error') context.error(line);
            else if (level === 'warn') context.warn(line);
            else context.log(line);
          },
        },
      });
      context.log(`probe ${result.targetId}: ${result.healthy ? 'healthy' : 'unhealthy'}: ${result.reason}`);
      return result;
    } finally {
      await clients.close();
    }
  },
});
