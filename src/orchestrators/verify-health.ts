/**
 * `verifyHealthOrchestrator`: {@link verifyHealth} as an orchestration of its own, for callers
 * that prefer `callSubOrchestrator` (its own history, its own instance id) to `yield*`.
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';
import { verifyHealth, VERIFY_HEALTH_ORCHESTRATOR, type VerifyHealthInput } from '../health/verify-health.ts';

/** Runs one verification with the orchestration's input. */
export const verifyHealthOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  return yield* verifyHealth(context, context.df.getInput<VerifyHealthInput>());
};

df.app.orchestration(VERIFY_HEALTH_ORCHESTRATOR, verifyHealthOrchestrator);
