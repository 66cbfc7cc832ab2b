/**
 * Fault injection: faults registered through the control endpoint answer matching requests
 * with an error (or extra latency), or make the long-running operation they start fail.
 */
import { z } from 'zod';
import type { FaultSpec } from './types.ts';
import { ControlRequestError } from './errors.ts';

const faultSpecSchema = z
  .object({
    operationId: z.string().min(1).optional(),
    pathPattern: z.string().min(1).optional(),
    method: z.string().min(1).optional(),
    status: z.number().int().min(400).max(599).optional(),
    count: z.number().int().min(1).optional(),
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    retryAfterSeconds: z.number().int().min(0).optional(),
    failLongRunningOperation: z.boolean().optional(),
    errorCode: z.string().min(1).optional(),
    message: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.operationId === undefined && spec.pathPattern === undefined) {
      ctx.addIssue({ code: 'custom', path: ['operationId'], message: 'expected operationId or pathPattern, found neither' });
    }
    if (spec.pathPattern !== undefined) {
      try {
        new RegExp(spec.pathPattern);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['pathPattern'], message: `expected a regular expression: ${(error as Error).message}` });
      }
    }
    if (spec.status === undefined && spec.latencyMs === undefined && spec.failLongRunningOperation !== true) {
      ctx.addIssue({ code: 'custom', path: ['status'], message: 'expected status, latencyMs or failLongRunningOperation, found none' });
    }
  });

/** Parses and validates a fault from a control request body. */
export function parseFaultSpec(body: unknown): FaultSpec {
  const parsed = faultSpecSchema.safeParse(body);
  if (!parsed.success) {
    throw new ControlRequestError(
      'POST /_sandbox/faults',
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; '),
    );
  }
  return parsed.data;
}

interface ActiveFault {
  readonly spec: FaultSpec;
  readonly pattern: RegExp | undefined;
  remaining: number;
}

/** Default error codes for injected statuses, as the services use them. */
export function defaultErrorCode(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'AuthenticationFailed';
    case 403:
      return 'AuthorizationFailed';
    case 404:
      return 'ResourceNotFound';
    case 409:
      return 'Conflict';
    case 429:
      return 'TooManyRequests';
    case 502:
      return 'BadGateway';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'GatewayTimeout';
    default:
      return status >= 500 ? 'InternalServerError' : 'BadRequest';
  }
}

/** The registered faults of one sandbox. */
export class FaultRegistry {
  private faults: ActiveFault[] = [];

  add(spec: FaultSpec): void {
    this.faults.push({
      spec,
      pattern: spec.pathPattern === undefined ? undefined : new RegExp(spec.pathPattern),
      remaining: spec.count ?? 1,
    });
  }

  clear(): void {
    this.faults = [];
  }

  list(): FaultSpec[] {
    return this.faults.map((fault) => ({ ...fault.spec, count: fault.remaining }));
  }

  /**
   * Finds the first fault matching a request and consumes one use of it. The caller applies a
   * `failLongRunningOperation` fault to the operation the request starts instead of answering with it.
   */
  take(request: { method: string; path: string; operationId: string | undefined }): FaultSpec | undefined {
    const index = this.faults.findIndex((fault) => {
      const { spec } = fault;
      if (spec.method !== undefined && spec.method.toUpperCase() !== request.method) return false;
      if (spec.operationId !== undefined && spec.operationId !== request.operationId) return false;
      if (fault.pattern !== undefined && !fault.pattern.test(request.path)) return false;
      return true;
    });
    const fault = this.faults[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(index, 1);
    return fault.spec;
  }

  /** Consumes a `failLongRunningOperation` fault registered for an operation id, if any. */
  takeOperationFailure(operationId: string): FaultSpec | undefined {
    const index = this.faults.findIndex((fault) => fault.spec.failLongRunningOperation === true && fault.spec.operationId === operationId);
    const fault = this.faults[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(index, 1);
    return fault.spec;
  }
}
