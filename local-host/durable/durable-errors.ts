import { LocalHostError } from '../host-errors.ts';

/** An orchestrator's replay diverged from its history the way DurableTask.Core refuses (another action kind or name at a sequence number). */
export class NonDeterministicOrchestrationError extends LocalHostError {}

/** An orchestration used a Durable feature the in-memory task hub does not implement (entities, callHttp). */
export class UnsupportedDurableFeatureError extends LocalHostError {}

/** A client operation named an instance that does not exist, or the instance is in the wrong state. */
export class OrchestrationInstanceError extends LocalHostError {
  readonly status: number;
  constructor(message: string, status: number, context: Record<string, string> = {}) {
    super(message, context);
    this.status = status;
  }
}

/** A test-requested simulated crash happened; thrown into nothing, recorded on the hub. */
export class SimulatedCrash extends LocalHostError {}

/**
 * On the Durable extension the orchestration would wait forever (the extension swallowed an error
 * or ended a retry loop without telling the JS library); the local hub fails it instead.
 */
export class OrchestrationWouldHangError extends LocalHostError {}
