/**
 * `ops-autopilot sandbox [--world <file>...] [--json] [--port <n>]`: runs the local Azure
 * sandbox until Ctrl-C. The engine lives in `sandbox/`; it is imported on demand so the other
 * commands do not load it.
 */
import { EXIT } from '../output.ts';

/** Options of {@link sandboxCommand}. */
export interface SandboxCommandOptions {
  readonly world?: string[];
  readonly json?: boolean;
  readonly port?: number;
}

/** Runs the sandbox in the foreground; resolves with the exit code once it has stopped. */
export async function sandboxCommand(options: SandboxCommandOptions): Promise<number> {
  const { runSandboxCommand } = await import('../../../sandbox/cli-entry.ts');
  await runSandboxCommand({
    ...(options.world === undefined ? {} : { world: options.world }),
    ...(options.json === undefined ? {} : { json: options.json }),
    ...(options.port === undefined ? {} : { port: options.port }),
  });
  return EXIT.ok;
}
