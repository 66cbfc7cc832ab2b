/**
 * Typed errors raised by the sandbox engine. Messages name the file, resource or process
 * concerned and say what was expected and what was found.
 */

/** A world file is malformed or names a resource type no provider serves. */
export class WorldValidationError extends Error {
  override readonly name = 'WorldValidationError';
  constructor(
    readonly file: string,
    readonly issues: readonly { readonly path: string; readonly message: string }[],
  ) {
    super(`invalid world file ${file}:\n${issues.map((issue) => `  ${issue.path || '(root)'}: ${issue.message}`).join('\n')}`);
  }
}

/** The estate configuration generated for a world does not satisfy the estate config schema. */
export class GeneratedConfigError extends Error {
  override readonly name = 'GeneratedConfigError';
  constructor(
    readonly world: string,
    readonly source: string,
    readonly issues: readonly { readonly path: string; readonly message: string }[],
  ) {
    // The first issue goes on the first line, which is all a CLI prints of an error.
    const lines = issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`);
    super(
      `the estate config generated for world "${world}" (from ${source}) is invalid: ${lines[0] ?? 'no issue reported'}${
        lines.length > 1 ? ` (and ${String(lines.length - 1)} more)\n${lines.slice(1).map((line) => `  ${line}`).join('\n')}` : ''
      }`,
    );
  }
}

/** A child process (PostgreSQL, Azurite) failed to start or stop. */
export class ChildProcessError extends Error {
  override readonly name = 'ChildProcessError';
  constructor(
    readonly processName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${processName}: ${message}`, options);
  }
}

/** An operation on the embedded PostgreSQL backend failed. */
export class PostgresBackendError extends Error {
  override readonly name = 'PostgresBackendError';
  constructor(
    readonly serverName: string,
    readonly operation: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`PostgreSQL backend, server "${serverName}", ${operation}: ${message}`, options);
  }
}

/** A request to a control endpoint (`/_sandbox/*`) was malformed. */
export class ControlRequestError extends Error {
  override readonly name = 'ControlRequestError';
  constructor(
    readonly endpoint: string,
    message: string,
  ) {
    super(`${endpoint}: ${message}`);
  }
}

/** The sandbox could not be started. */
export class SandboxStartError extends Error {
  override readonly name = 'SandboxStartError';
}

/** A `--world` value is neither a seed world's name nor an existing world file. */
export class UnknownWorldError extends Error {
  override readonly name = 'UnknownWorldError';
  constructor(
    readonly value: string,
    readonly known: readonly string[],
    readonly kind: 'name' | 'file',
  ) {
    super(
      kind === 'name'
        ? `--world "${value}": expected a seed world name (${known.join(', ') || 'none found'}) or a world file (a path, or a name ending in .yaml), found neither`
        : `--world "${value}": expected a world file at ${value}, found none`,
    );
  }
}
