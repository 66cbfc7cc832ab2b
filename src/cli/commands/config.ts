/**
 * `ops-autopilot config validate <file>`: validates an estate configuration and lists every
 * problem, one line each, with its path.
 */
import { loadConfigFile } from '../../config/load.ts';
import { ConfigError } from '../../errors.ts';
import { EXIT, type CliIo } from '../output.ts';

/** Validates `file`; returns the exit code (0 valid, 1 invalid). */
export async function configValidateCommand(file: string, io: CliIo): Promise<number> {
  try {
    const config = await loadConfigFile(file);
    const count = config.targets.length;
    io.stdout(`valid: ${count} target${count === 1 ? '' : 's'} (estate ${config.estate}, dryRun ${String(config.dryRun)})\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`invalid: ${file}: ${error.issues.length} issue${error.issues.length === 1 ? '' : 's'}\n`);
      for (const line of error.lines()) io.stderr(`  ${line}\n`);
      return EXIT.failure;
    }
    throw error;
  }
}
