/**
 * Health of a target: one probe ({@link probeHealth}) and a durable verification that repeats it
 * ({@link verifyHealth}, for `yield*` inside orchestrators; its activity is
 * {@link PROBE_HEALTH_ACTIVITY}).
 */
export * from './probe.ts';
export * from './verify-health.ts';
export { runProbeHealthActivity } from './probe-activity.ts';
