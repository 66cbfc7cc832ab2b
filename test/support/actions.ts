/**
 * Helpers for the remediation action tests: an action context over a sandbox world (short poll
 * interval and operation deadline), plan-without-side-effects checks, scripted health.
 */
import { expect } from 'vitest';
import type { TargetConfig } from '../../src/config/schema.ts';
import { getRemediationAction, type ActionContext, type ActionPlan } from '../../src/remediation/actions/index.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';
import { mutatingRequests, runbookContextFor, type TestRunbookContext } from './runbook-context.ts';
import { sandboxRequest } from './sandbox.ts';

/** An action context over a world, polling every 20 ms and giving up on an operation after 20 s. */
export async function actionContextFor(sandbox: SandboxHandle, world: string, now?: () => Date): Promise<TestRunbookContext & { readonly action: ActionContext }> {
  const base = await runbookContextFor(sandbox, world, now === undefined ? {} : { now });
  return { ...base, action: { ...base.context, pollIntervalMs: 20, operationDeadlineMs: 20_000 } };
}

/** The configured target whose id ends with `/name` (or equals it). */
export function targetNamed(context: TestRunbookContext, name: string): TargetConfig {
  const target = context.config.targets.find((candidate) => candidate.id.toLowerCase() === name.toLowerCase() || candidate.id.toLowerCase().endsWith(`/${name.toLowerCase()}`));
  if (target === undefined) throw new Error(`config ${context.config.estate}: no target ${name}`);
  return target;
}

/** Plans an action and checks that planning sent no mutating request to the sandbox. */
export async function planWithoutSideEffects(sandbox: SandboxHandle, ctx: ActionContext, target: TargetConfig, kind: string, action: string, params: unknown): Promise<ActionPlan> {
  await sandbox.clearRequests();
  const plan = await getRemediationAction(kind, action).plan(ctx, target, params);
  expect(mutatingRequests(await sandbox.requests())).toEqual([]);
  expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  return plan;
}

/** Asserts that a refused plan (or anything else) sent no mutating request. */
export async function expectNoMutation(sandbox: SandboxHandle, run: () => Promise<unknown>): Promise<unknown> {
  await sandbox.clearRequests();
  const outcome = await run().then(
    (value: unknown) => value,
    (error: unknown) => error,
  );
  expect(mutatingRequests(await sandbox.requests())).toEqual([]);
  return outcome;
}

/** Sets a health script or image verdict through the control endpoint. */
export async function setHealth(sandbox: SandboxHandle, body: unknown): Promise<void> {
  const response = await sandboxRequest(sandbox, { method: 'POST', url: '/_sandbox/health', body });
  expect(response.status, response.text).toBe(200);
}

/** The status of an app host path. */
export async function hostStatus(sandbox: SandboxHandle, host: string, path: string): Promise<number> {
  return (await sandboxRequest(sandbox, { url: `/_hosts/${host}${path}` })).status;
}
