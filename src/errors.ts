/**
 * The project's error hierarchy. Every error Ops Autopilot raises on purpose derives from
 * {@link OpsAutopilotError}, carries a `context` record naming what it was working on (resource
 * ID, runbook, file, ...) and has a message that says what was expected and what was found.
 *
 * Nothing secret may go into a message or a context: callers pass identifiers, never values
 * read from a vault, a connection string or a token.
 */

/** Scalar context values; kept flat so they serialise cleanly into logs and run records. */
export type ErrorContextValue = string | number | boolean | null | undefined | readonly string[];

/** Identifying facts about what failed, e.g. `{ resourceId, runbook }`. Never secrets. */
export type ErrorContext = Readonly<Record<string, ErrorContextValue>>;

/** Base class of every error the autopilot raises deliberately. */
export class OpsAutopilotError extends Error {
  override readonly name: string = 'OpsAutopilotError';
  /** Identifying facts about the failure (resource ID, runbook, path, ...). Never secrets. */
  readonly context: ErrorContext;

  constructor(message: string, options: { context?: ErrorContext; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.context = Object.freeze({ ...(options.context ?? {}) });
  }

  /** A JSON-friendly view for structured logs: name, message and context, no stack. */
  toJSON(): { name: string; message: string; context: ErrorContext } {
    return { name: this.name, message: this.message, context: this.context };
  }
}

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Dotted path with indexes, e.g. `targets[2].runbooks.revision-cleanup.keep`; empty for the root. */
  readonly path: string;
  /** What was expected, phrased for a human: `expected a number >= 1`. */
  readonly message: string;
  /** What was found, already rendered and redacted (e.g. `0`, `"http://x"`, `a string`). */
  readonly found?: string;
  /** 1-based line in the YAML/JSON source, when known. */
  readonly line?: number;
}

/** Formats one issue as a single line: `path: message, found X (line N)`. */
export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.path === '' ? '(root)' : issue.path;
  const found = issue.found === undefined || /\bfound\b/.test(issue.message) ? '' : `, found ${issue.found}`;
  const line = issue.line === undefined ? '' : ` (line ${issue.line})`;
  return `${where}: ${issue.message}${found}${line}`;
}

/**
 * A configuration that cannot be used. Holds every issue found, not just the first, and
 * prints one line per issue so an operator can fix the file in one pass.
 */
export class ConfigError extends OpsAutopilotError {
  override readonly name: string = 'ConfigError';
  /** Every problem found, in document order where known. */
  readonly issues: readonly ConfigIssue[];
  /** Where the configuration came from: a file path or the app setting name. */
  readonly source: string;

  constructor(source: string, issues: readonly ConfigIssue[], options: { cause?: unknown } = {}) {
    const count = issues.length;
    const header = `invalid configuration in ${source}: ${count} issue${count === 1 ? '' : 's'}`;
    super([header, ...issues.map((issue) => `  ${formatConfigIssue(issue)}`)].join('\n'), {
      context: { source, issueCount: count },
      cause: options.cause,
    });
    this.source = source;
    this.issues = Object.freeze([...issues]);
  }

  /** The issues, one formatted line each, without the header. */
  lines(): string[] {
    return this.issues.map(formatConfigIssue);
  }
}

/**
 * The string `code` of anything thrown (Node's `ENOENT`/`ECONNRESET`, a RestError's
 * `REQUEST_SEND_ERROR`, an Azure error code), or undefined when it has none. Use it instead of
 * casting a caught value to `NodeJS.ErrnoException`: a thrown value need not be an Error.
 */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** Returns the message of anything thrown, for one-line reports. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  // JSON.stringify returns undefined for undefined and functions despite its declared type.
  const json = JSON.stringify(error) as string | undefined;
  return json ?? 'unknown error';
}
