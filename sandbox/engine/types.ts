/**
 * Public data shapes of the sandbox's control surface, re-exported by `sandbox/index.ts`.
 */
import type { RouteHost, ThrottleClass } from '../contract.ts';

/** One request the sandbox served (control endpoints excluded). */
export interface RequestLogEntry {
  /** When the request arrived (real time, ISO 8601). */
  readonly time: string;
  readonly method: string;
  /** The full path, including any host prefix, without the query string. */
  readonly path: string;
  /** The query string without the leading `?`, or empty. */
  readonly query: string;
  /** The route's operation id, an engine operation id (e.g. `Identity.token`), or undefined when no route matched. */
  readonly operationId: string | undefined;
  readonly host: RouteHost | 'identity';
  readonly status: number;
  readonly throttleClass: ThrottleClass;
  /** Object id of the caller when a valid sandbox token was presented. */
  readonly principal?: string;
  readonly durationMs: number;
  /** The `x-ms-request-id` the sandbox returned. */
  readonly requestId: string;
  /** True when the response was a throttling 429 from a token bucket. */
  readonly throttled: boolean;
  /** True when an injected fault shaped the response. */
  readonly faulted: boolean;
}

/** A fault to inject into matching requests (`POST /_sandbox/faults`). */
export interface FaultSpec {
  /** Match requests routed to this operation id (e.g. `Microsoft.Web/sites.restart`). */
  readonly operationId?: string;
  /** Or match the full request path (with host prefix) against this regular expression. */
  readonly pathPattern?: string;
  /** Only this HTTP method (any when omitted). */
  readonly method?: string;
  /**
   * HTTP status to answer with (400..599). Omit for a latency-only fault. Ignored when
   * `failLongRunningOperation` is set, except that a Failed operation's `Location` URL answers with it.
   */
  readonly status?: number;
  /** How many matching requests the fault applies to. Default 1. */
  readonly count?: number;
  /** Extra delay before answering. */
  readonly latencyMs?: number;
  /** Adds a `Retry-After` header to the fault response. */
  readonly retryAfterSeconds?: number;
  /**
   * Let the request through, but make the long-running operation it starts end `Failed`
   * with no mutation applied.
   */
  readonly failLongRunningOperation?: boolean;
  /** Error code in the error body; defaults from the status (e.g. `InternalServerError`). */
  readonly errorCode?: string;
  /** Error message in the error body. */
  readonly message?: string;
}

/** A webhook body captured at `POST /_sandbox/webhooks/{name}`. */
export interface CapturedWebhook {
  readonly name: string;
  /** Real time of receipt, ISO 8601. */
  readonly time: string;
  readonly contentType: string | undefined;
  /** Parsed JSON body, or the raw text when it was not JSON. */
  readonly body: unknown;
}

/** A long-running operation as `GET /_sandbox/state` shows it. */
export interface OperationSnapshot {
  readonly id: string;
  readonly operationId: string;
  readonly resourceId: string;
  readonly status: 'InProgress' | 'Succeeded' | 'Failed';
  readonly startTime: string;
  /** Sandbox time at which it completes (its duration after `startTime` on the sandbox clock). */
  readonly dueAt: string;
  readonly endTime?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

/** An event recorded by a provider or the engine. */
export interface SandboxEvent {
  readonly time: string;
  readonly kind: string;
  readonly details: Record<string, unknown>;
}

/**
 * An event in the sandbox's Event Grid outbox (`GET /_sandbox/eventgrid`), in the Event Grid
 * schema as a system topic delivers it.
 */
export interface EventGridOutboxEvent {
  readonly id: string;
  readonly topic: string;
  readonly subject: string;
  readonly eventType: string;
  /** Sandbox clock, ISO 8601. */
  readonly eventTime: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly dataVersion: string;
  readonly metadataVersion: '1';
}

/** The same event in the CloudEvents 1.0 schema (`GET /_sandbox/eventgrid?schema=cloudevents`). */
export interface CloudEventOutboxEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly subject: string;
  readonly type: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: Readonly<Record<string, unknown>>;
}
