/**
 * The body of the durable activity {@link PROBE_HEALTH_ACTIVITY}: one probe of one configured
 * target. The activity input names the target by ARM id only; the target and everything about
 * it (paths, timeout) come from the estate config, and an id the config does not list is
 * refused, so a forged input cannot make the app probe an arbitrary host.
 *
 * Idempotent (a probe only reads) and free of `@azure/functions` / `durable-functions`.
 */
import { resolveWithArm } from '../azure/discovery.ts';
import { sameResourceId } from '../azure/resource-id.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { HealthProbeRefusedError, probeHealth, type ProbeResult } from './probe.ts';
import type { ProbeHealthActivityInput } from './verify-health.ts';

/**
 * Probes the configured target `input.targetId` once.
 *
 * @throws {@link HealthProbeRefusedError} when the id is not a target of the estate config;
 * typed Azure errors when ARM cannot be read.
 */
export async function runProbeHealthActivity(input: ProbeHealthActivityInput, ctx: RunbookContext): Promise<ProbeResult> {
  const targetId = typeof input.targetId === 'string' ? input.targetId : '';
  // The resolved targets: a web app or container app a scope selected is probed as well.
  const { targets } = await resolveWithArm(ctx.config, ctx.clients, ctx.resolution);
  const target = targets.find((candidate) => sameResourceId(candidate.id, targetId));
  if (target === undefined) {
    throw new HealthProbeRefusedError(targetId, `health probe: expected a target of estate ${ctx.config.estate}, found "${targetId.slice(0, 300)}", which the config does not list`, {
      expected: 'a configured target id',
      found: targetId.slice(0, 300),
    });
  }
  return probeHealth(ctx, target, {
    ...(input.paths === undefined ? {} : { paths: input.paths }),
    ...(input.slot === undefined ? {} : { slot: input.slot }),
  });
}
