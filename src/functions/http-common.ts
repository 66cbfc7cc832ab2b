/**
 * What the restore and drill HTTP triggers share: JSON answers, bounded JSON bodies checked
 * against a schema, the 503 while the app is not ready, instance lookups and URLs.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import type { DurableClient, DurableOrchestrationStatus } from 'durable-functions';
import type { z } from 'zod';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { checkReadiness, formatReadinessProblem } from '../startup/readiness.ts';

/** Largest request body accepted. */
const MAX_BODY_BYTES = 16 * 1024;

/** A JSON answer that no cache keeps. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, jsonBody: body };
}

/** `{ error: { code, message } }`. */
export function errorBody(status: number, code: string, message: string): HttpResponseInit {
  return json(status, { error: { code, message } });
}

/** Reads and validates a JSON body, or the 400/413 answer. */
export async function readJsonBody<S extends z.ZodType>(
  request: HttpRequest,
  schema: S,
  expected: string,
  options: { allowEmpty?: boolean } = {},
): Promise<{ body: z.output<S> } | { response: HttpResponseInit }> {
  const length = Number(request.headers.get('content-length') ?? '0');
  if (length > MAX_BODY_BYTES) return { response: errorBody(413, 'BodyTooLarge', `${expected}, found ${String(length)} bytes (at most ${String(MAX_BODY_BYTES)})`) };
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) return { response: errorBody(413, 'BodyTooLarge', `${expected}, found more than ${String(MAX_BODY_BYTES)} bytes`) };
  let parsed: unknown = {};
  if (text.trim() === '') {
    if (options.allowEmpty !== true) return { response: errorBody(400, 'InvalidBody', `${expected}, found an empty body`) };
  } else {
    try {
      parsed = JSON.parse(text);
    } catch {
      return { response: errorBody(400, 'InvalidBody', `${expected}, found text that is not JSON`) };
    }
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.length === 0 ? '(body)' : issue.path.join('.')}: ${issue.message}`);
    return { response: errorBody(400, 'InvalidBody', `${expected}; found: ${issues.join('; ')}`) };
  }
  return { body: result.data };
}

/** The estate config, or the 503 answer while the settings or config are invalid. */
export async function readyConfig(): Promise<{ config: EstateConfig } | { response: HttpResponseInit }> {
  const readiness = await checkReadiness();
  if (readiness.ready) return { config: readiness.config };
  return {
    response: json(
      503,
      {
        error: { code: 'NotReady', message: `the app is not ready: ${String(readiness.problems.length)} problem(s) in its settings or estate configuration (GET /api/ready lists them)` },
        problems: readiness.problems.map(formatReadinessProblem),
      },
      { 'retry-after': '30' },
    ),
  };
}

/** The status of an instance, or undefined when the task hub has none with this id. */
export async function instanceStatus(client: DurableClient, instanceId: string): Promise<DurableOrchestrationStatus | undefined> {
  try {
    return await client.getStatus(instanceId, { showInput: false });
  } catch (error) {
    // durable-functions reports an unknown instance only in its message ("... HTTP 404 ...").
    if (/\bHTTP 404\b/.test(errorMessage(error))) return undefined;
    throw error;
  }
}

/** Who asked: the authenticated principal when App Service authentication names one, else the key. */
export function requestedByOf(request: HttpRequest): string {
  const principal = request.headers.get('x-ms-client-principal-name');
  return `http ${principal === null ? '(function key)' : principal.slice(0, 200)}`;
}

/** The URL of another route of this app (`restores/{id}`), keeping the host's route prefix. */
export function siblingUrl(request: HttpRequest, path: string): string {
  const url = new URL(request.url);
  const prefix = url.pathname.split('/').filter((segment) => segment !== '')[0] ?? 'api';
  return `${url.origin}/${prefix}/${path}`;
}
