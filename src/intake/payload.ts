/**
 * What the alert and event intakes share: reading a request body as JSON within a size limit,
 * and one error type that says, per field, what was expected and what was found. Pure: no
 * `@azure/functions`, no I/O, so triggers, the CLI's `explain-*` and tests parse alike.
 */
import type { z } from 'zod';
import { describeFound, expectation, formatPath, valueAt } from '../config/load.ts';
import { OpsAutopilotError } from '../errors.ts';

/** One problem with a payload: where, what was expected, what was found. */
export interface PayloadIssue {
  /** e.g. `data.essentials.monitorCondition`; empty for the whole body. */
  readonly path: string;
  /** e.g. `expected one of "Fired", "Resolved"`. */
  readonly expected: string;
  /** e.g. `"Open"`, `nothing`, `a mapping`; values are cut and secret-looking ones redacted. */
  readonly found: string;
}

/** Formats an issue as one line: `path: expected ..., found ...`. */
export function formatPayloadIssue(issue: PayloadIssue): string {
  return `${issue.path === '' ? '(body)' : issue.path}: ${issue.expected}, found ${issue.found}`;
}

/**
 * A payload that is not what the intake accepts: not JSON, too large, another schema, or
 * missing essentials. The trigger answers 400 with {@link PayloadError.issues} and changes
 * nothing. The message is the first issue (what a log line or a CLI shows), with a count.
 */
export class PayloadError extends OpsAutopilotError {
  override readonly name: string = 'PayloadError';

  constructor(
    /** What was being read, e.g. `alert` or `Event Grid event`. */
    readonly what: string,
    readonly issues: readonly PayloadIssue[],
  ) {
    const [first] = issues;
    super(
      `invalid ${what}: ${first === undefined ? 'no issue reported' : formatPayloadIssue(first)}${issues.length > 1 ? ` (and ${String(issues.length - 1)} more)` : ''}`,
      { context: { what, issueCount: issues.length, paths: issues.map((issue) => issue.path) } },
    );
  }

  /** Every issue as one line each. */
  lines(): string[] {
    return this.issues.map(formatPayloadIssue);
  }

  /** The body of a 400 answer: `{ error: { code, message, issues } }`. */
  toResponseBody(code: string): { error: { code: string; message: string; issues: readonly PayloadIssue[] } } {
    return { error: { code, message: this.message, issues: this.issues } };
  }
}

/** Options of {@link readJsonBody}. */
export interface ReadJsonOptions {
  /** What is being read, for errors: `alert`, `Event Grid event`. */
  readonly what: string;
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number;
  /** The request's `content-type`, when known; it must name JSON. */
  readonly contentType?: string | undefined;
  /** Content types besides `application/json` that are JSON (e.g. `application/cloudevents+json`). */
  readonly jsonContentTypes?: readonly string[];
}

/**
 * Reads a request body as JSON: at most `maxBytes`, a JSON content type when one is given,
 * UTF-8, and parseable.
 *
 * @throws {@link PayloadError} saying which of these failed and what was found.
 */
export function readJsonBody(body: string | Uint8Array | undefined, options: ReadJsonOptions): unknown {
  const fail = (expected: string, found: string): never => {
    throw new PayloadError(options.what, [{ path: '', expected, found }]);
  };
  if (options.contentType !== undefined && options.contentType !== '') {
    const type = options.contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    const accepted = ['application/json', 'text/json', ...(options.jsonContentTypes ?? [])];
    if (!accepted.includes(type)) fail(`expected content-type ${accepted.join(' or ')}`, JSON.stringify(options.contentType.slice(0, 80)));
  }
  if (body === undefined) return fail('expected a JSON body', 'no body');
  const bytes = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  if (bytes === 0) fail('expected a JSON body', 'an empty body');
  if (bytes > options.maxBytes) fail(`expected a body of at most ${String(options.maxBytes)} bytes`, `${String(bytes)} bytes`);
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      return fail('expected a UTF-8 JSON body', 'bytes that are not UTF-8');
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const start = text.trimStart().slice(0, 40);
    return fail('expected a JSON body', `text that is not JSON (${error instanceof SyntaxError ? error.message : 'unparseable'}), starting ${JSON.stringify(start)}`);
  }
}

/** A payload path as errors show it: `data.essentials.alertTargetIDs[0]`, `[2].data.siteName`. */
export function payloadPath(path: readonly PropertyKey[]): string {
  return formatPath(path);
}

/**
 * Turns zod issues into payload issues. `value` is what the schema validated (the found values
 * are read from it); `prefix` is where it sits in the body, for the paths shown.
 */
export function payloadIssues(error: z.ZodError, value: unknown, prefix: readonly PropertyKey[] = []): PayloadIssue[] {
  return error.issues.map((issue) => {
    const found = valueAt(value, issue.path);
    const path = [...prefix, ...issue.path];
    return { path: formatPath(path), expected: expectation(issue), found: describeFound(found.value, path, found.present) };
  });
}
