/**
 * `ops-autopilot config validate <file> [--json]`: validates an estate configuration and lists
 * every problem, one line each, with its path (and line); `--json` prints the same as one object.
 */
import { loadConfigFile } from '../../config/load.ts';
import { ConfigError } from '../../errors.ts';
import { EXIT, type CliIo } from '../output.ts';

/** Options of {@link configValidateCommand}. */
export interface ConfigValidateOptions {
  /** Print `{ valid, file, estate, targets, dryRun }` or `{ valid: false, file, issues }` on stdout. */
  readonly json?: boolean;
}

/** Validates `file`; returns the exit code (0 valid, 1 invalid). */
export async function configValidateCommand(file: string, options: ConfigValidateOptions, io: CliIo): Promise<number> {
  try {
    const config = await loadConfigFile(file);
    const count = config.targets.length;
    const scopes = config.scopes.length;
    if (options.json === true) {
      io.stdout(`${JSON.stringify({ valid: true, file, estate: config.estate, targets: count, scopes, dryRun: config.dryRun }, null, 2)}\n`);
    } else {
      // Scopes select their targets when a runbook runs (ARM list operations); validation reads nothing.
      const scopeText = scopes === 0 ? '' : ` and ${String(scopes)} scope${scopes === 1 ? '' : 's'}`;
      io.stdout(`valid: ${count} target${count === 1 ? '' : 's'}${scopeText} (estate ${config.estate}, dryRun ${String(config.dryRun)})\n`);
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      if (options.json === true) {
        io.stdout(`${JSON.stringify({ valid: false, file, issues: error.issues }, null, 2)}\n`);
      } else {
        io.stderr(`invalid: ${file}: ${error.issues.length} issue${error.issues.length === 1 ? '' : 's'}\n`);
        for (const line of error.lines()) io.stderr(`  ${line}\n`);
      }
      return EXIT.failure;
    }
    throw error;
  }
}
