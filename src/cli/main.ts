/**
 * The `ops-autopilot` command line.
 *
 * Exit codes: 0 ok, 1 failure or invalid input, 2 usage error or refused run, 3 findings
 * (warn/fail checks).
 * Errors print as one line (`error: ...`); `--verbose` adds the stack. A configuration error
 * lists every issue, one per line.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { ConfigError, errorMessage } from '../errors.ts';
import { configValidateCommand } from './commands/config.ts';
import { demoCommand } from './commands/demo.ts';
import { inventoryCommand } from './commands/inventory.ts';
import { planCommand, runCommand, type RunbookCommandOptions } from './commands/runbook.ts';
import { sandboxCommand } from './commands/sandbox.ts';
import { RUNBOOK_NAMES } from '../runbooks/registry.ts';
import { CliExit, EXIT, processIo, type CliIo } from './output.ts';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`expected a port number 0-65535, found "${value}"`);
  return port;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Builds the command tree; each action stores its exit code in `exit.code`. */
function buildProgram(io: CliIo, exit: { code: number }): Command {
  const program = new Command('ops-autopilot')
    .description('Runs the operations runbooks of Azure-hosted web backends, safely.')
    .version(packageJson.version, '-V, --version', 'print the version (package.json) and exit')
    .option('--verbose', 'print stack traces and diagnostics')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)');

  const config = program.command('config').description('estate configuration');
  config
    .command('validate')
    .description('validate an estate configuration file and list every problem')
    .argument('<file>', 'YAML or JSON estate configuration')
    .action(async (file: string) => {
      exit.code = await configValidateCommand(file, io);
    });

  program
    .command('inventory')
    .description('show every configured target, read-only, as Azure reports it')
    .requiredOption('-c, --config <file>', 'estate configuration file')
    .option('--json', 'print one JSON document instead of tables')
    .option('--no-record', 'do not write the run record to blob storage')
    .option('--log', 'also emit the run record as JSON log lines on stderr')
    .action(async (options: { config: string; json?: boolean; record: boolean; log?: boolean }) => {
      exit.code = await inventoryCommand(options, io);
    });

  // plan and run take the same runbook argument and the same options, so they cannot drift.
  const runbookCommand = (name: string): Command =>
    program
      .command(name)
      .argument('<runbook>', 'runbook name')
      .requiredOption('-c, --config <file>', 'estate configuration file')
      .option('--json', 'print one JSON document (plans and the run record)')
      .option('-t, --target <id>', 'only this target id (repeatable)', collect)
      .option('--log', 'also emit the run record as JSON log lines on stderr');

  runbookCommand('plan')
    .description(`show what a runbook would do, read-only: checks, actions, kept items per target (${RUNBOOK_NAMES.join(', ')})`)
    .action(async (name: string, options: RunbookCommandOptions) => {
      exit.code = await planCommand(name, options, io);
    });

  runbookCommand('run')
    .description('plan a runbook, confirm, and apply it through the dry-run gate (dryRun in the config is the authority)')
    .option('-y, --yes', 'apply without asking (needed when stdin is not a terminal)')
    .option('--force', "apply even when the runbook's guard refuses the plan (e.g. above the deletion cap)")
    .action(async (name: string, options: RunbookCommandOptions) => {
      exit.code = await runCommand(name, options, io);
    });

  program
    .command('sandbox')
    .description('run the local Azure sandbox until Ctrl-C')
    .option('-w, --world <file>', 'world file (repeatable; default: every seed world)', collect)
    .option('--json', 'print one JSON object with the endpoints once ready')
    .addOption(new Option('-p, --port <n>', 'HTTPS port on 127.0.0.1 (default: a free one)').argParser(parsePort))
    .action(async (options: { world?: string[]; json?: boolean; port?: number }) => {
      exit.code = await sandboxCommand(options);
    });

  program
    .command('demo')
    .description('start the sandbox with the seed estates, print the inventory of each, stop')
    .option('-w, --world <file>', 'world file (repeatable; default: every seed world)', collect)
    .action(async (options: { world?: string[] }) => {
      exit.code = await demoCommand({ ...options, verbose: program.opts<{ verbose?: boolean }>().verbose === true }, io);
    });

  return program;
}

/**
 * Runs the CLI with `argv` (the arguments after the program name) and returns the exit code.
 * Never throws: every failure becomes a message on `io.stderr` and a non-zero code.
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const exit = { code: EXIT.ok as number };
  const program = buildProgram(io, exit);
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.usage;
    }
    return exit.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successful exits; anything else commander rejects is usage.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (error instanceof CliExit) {
      io.stderr(`${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof ConfigError) {
      io.stderr(`error: ${error.message}\n`);
    } else {
      io.stderr(`error: ${errorMessage(error).split('\n')[0] ?? 'unknown error'}\n`);
    }
    if (verbose && error instanceof Error && error.stack !== undefined) io.stderr(`${error.stack}\n`);
    return EXIT.failure;
  }
}
