/**
 * `ops-autopilot sandbox [--world <name|file>...] [--estate <file>...] [--json] [--port <n>]`:
 * runs the local Azure sandbox until Ctrl-C. The engine lives in `sandbox/`; it is imported on
 * demand so the other commands do not load it.
 */
import { CliExit, EXIT } from '../output.ts';

/** Options of {@link sandboxCommand}. */
export interface SandboxCommandOptions {
  /** Seed world names or world files. */
  readonly world?: string[];
  /** Estate config files to serve without a world. */
  readonly estate?: string[];
  readonly json?: boolean;
  readonly port?: number;
}

/**
 * Turns an unknown `--world` into a usage error (exit 2); anything else propagates.
 * Shared by `sandbox` and `demo`, the two commands that take `--world`.
 */
export async function asWorldUsageError<T>(work: () => Promise<T>): Promise<T> {
  const { UnknownWorldError } = await import('../../../sandbox/engine/errors.ts');
  try {
    return await work();
  } catch (error) {
    if (error instanceof UnknownWorldError) throw new CliExit(EXIT.usage, `error: ${error.message}`);
    throw error;
  }
}

/** Runs the sandbox in the foreground; resolves with the exit code once it has stopped. */
export async function sandboxCommand(options: SandboxCommandOptions): Promise<number> {
  const { runSandboxCommand } = await import('../../../sandbox/cli-entry.ts');
  await asWorldUsageError(() =>
    runSandboxCommand({
      ...(options.world === undefined ? {} : { world: options.world }),
      ...(options.estate === undefined ? {} : { estate: options.estate }),
      ...(options.json === undefined ? {} : { json: options.json }),
      ...(options.port === undefined ? {} : { port: options.port }),
    }),
  );
  return EXIT.ok;
}
