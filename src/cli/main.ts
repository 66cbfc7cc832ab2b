/**
 * The `ops-autopilot` command line.
 *
 * Exit codes (each command's `--help` lists the ones it uses):
 * 0 ok; 1 failure or invalid input; 2 usage error, or nothing applied by decision (refused by a
 * guard or the lock, declined at the prompt, no terminal to ask on); 3 findings (warn/fail
 * checks); 130 cancelled (Ctrl-C).
 * Errors print as one line (`error: ...`); `--verbose` adds the stack. A configuration error
 * lists every issue, one per line. Under `--json` an error is also one JSON line on stdout
 * (`{ "error": { name, message, exitCode, issues? } }`) with the same non-zero exit code.
 */
import { statusCommand, type StatusCommandOptions } from './commands/status.ts';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { TargetSelectorError } from '../config/target-selector.ts';
import { ConfigError, errorMessage, type ConfigIssue } from '../errors.ts';
import { configValidateCommand } from './commands/config.ts';
import { demoCommand } from './commands/demo.ts';
import { inventoryCommand, type InventoryCommandOptions } from './commands/inventory.ts';
import { explainAlertCommand, explainEventCommand, guardrailsResetCommand, guardrailsStatusCommand, type ExplainOptions, type GuardrailsCommandOptions } from './commands/remediation.ts';
import { planCommand, runCommand, type RunbookCommandOptions } from './commands/runbook.ts';
import { remediateCli } from './commands/remediate.ts';
import { registerRestoreCommands } from './commands/restore-cli.ts';
import { runsListCommand, runsShowCommand, runsStartCommand, type RunsListOptions, type RunsSourceOptions, type RunsStartOptions } from './commands/runs.ts';
import { sandboxCommand, type SandboxCommandOptions } from './commands/sandbox.ts';
import { RUNBOOK_NAMES } from '../runbooks/registry.ts';
import { appOptions, examples, exitCodes } from './help.ts';
import { CliExit, EXIT, processIo, type CliIo } from './output.ts';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`expected a port number 0-65535, found "${value}"`);
  return port;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const TARGET_HELP = 'only this target: its name, a unique end of its id (rg/providers/type/name) or the full id (repeatable)';
const WORLD_HELP = 'a seed world by name (lms, xshopai, ...) or a world file (a path, or a name ending in .yaml); repeatable; default: every seed world';

/** Builds the command tree; each action stores its exit code in `exit.code`. */
function buildProgram(io: CliIo, exit: { code: number }, json: boolean): Command {
  const program = new Command('ops-autopilot')
    .description('Runs the operations runbooks of Azure-hosted web backends, safely.')
    .version(packageJson.version, '-V, --version', 'print the version (package.json) and exit')
    .option('--verbose', 'print stack traces and diagnostics')
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // Under --json a usage error becomes the JSON error object instead (see main).
      outputError: (text, write) => {
        if (!json) write(text);
      },
    })
    .showHelpAfterError(json ? false : '(run with --help for usage)')
    .addHelpText(
      'after',
      `${exitCodes([
        [0, 'ok'],
        [1, 'failure (a target, an action or the run record failed) or invalid input (configuration)'],
        [2, 'usage error, or nothing applied by decision (refused by the deletion cap or the lock, declined at the prompt)'],
        [3, 'findings: warn or fail checks (the run itself worked)'],
        [130, 'cancelled (Ctrl-C or Ctrl-D at the prompt, Ctrl-C during a run)'],
      ])}\n\nRun "ops-autopilot <command> --help" for a command's options, examples and exit codes.`,
    );

  const config = program.command('config').description('estate configuration');
  config
    .command('validate')
    .description('validate an estate configuration file and list every problem, with its path and line')
    .argument('<file>', 'YAML or JSON estate configuration')
    .option('--json', 'print one JSON object: { valid, file, estate, targets, dryRun } or { valid: false, issues: [...] }')
    .addHelpText(
      'after',
      `${examples(['ops-autopilot config validate examples/xshopai.yaml', 'ops-autopilot config validate my-estate.yaml --json | jq .issues'])}\n${exitCodes([
        [0, 'valid'],
        [1, 'invalid: every issue is listed (stderr, or the JSON on stdout)'],
        [2, 'usage error'],
      ])}`,
    )
    .action(async (file: string, options: { json?: boolean }) => {
      exit.code = await configValidateCommand(file, options, io);
    });

  program
    .command('inventory')
    .description('show every configured target as Azure reports it; reads only, writes nothing unless --record')
    .requiredOption('-c, --config <file>', 'estate configuration file')
    .option('--json', 'print one JSON document instead of tables')
    .option('-t, --target <name>', TARGET_HELP, collect)
    .option('--record', 'also write the run record to the configured run-records store')
    .option('--no-record', 'do not write the run record (the default)')
    .option('--log', 'also emit the run record as JSON log lines on stderr')
    .addHelpText(
      'after',
      `${examples([
        'ops-autopilot inventory --config examples/xshopai.yaml',
        'ops-autopilot inventory --config estate.yaml --target ca-user-service --json',
      ])}\n${exitCodes([
        [0, 'every target read'],
        [1, 'a target could not be read, the run record could not be written, or the configuration is invalid'],
        [2, 'usage error, or a --target that names no target or several'],
      ])}`,
    )
    .action(async (options: InventoryCommandOptions) => {
      exit.code = await inventoryCommand(options, io);
    });

  program
    .command('status')
    .description('the go/no-go evidence of an estate (seed 003: backups, restore drill, alerts, secrets; cleanups and remediations reported), as GET /api/status serves it; reads only')
    .requiredOption('-c, --config <file>', 'estate configuration file')
    .option('--json', 'print the evidence as one JSON document (the shape of GET /api/status)')
    .option('--runbook <name>', 'recent runs: only this runbook')
    .option('--outcome <outcome>', 'recent runs: only this outcome (ok, findings, failed, refused, cancelled)')
    .option('--since <age>', 'recent runs: since this long ago (e.g. 7d, 12h)', '7d')
    .option('--page <file>', 'also write the HTML status page to this file')
    .addHelpText(
      'after',
      `${examples(['ops-autopilot status --config examples/lms.yaml', 'ops-autopilot status --config estate.yaml --json', 'ops-autopilot status --config estate.yaml --page status.html'])}\n${exitCodes([
        [0, 'go: every critical item passes'],
        [1, 'failure or invalid input (configuration)'],
        [2, 'usage error'],
        [3, 'no-go: a critical item fails (the reasons are printed)'],
      ])}`,
    )
    .action(async (options: StatusCommandOptions) => {
      exit.code = await statusCommand(options, io);
    });

  // plan and run take the same runbook argument and the same options, so they cannot drift.
  const runbookCommand = (name: string): Command =>
    program
      .command(name)
      .argument('<runbook>', `runbook name: ${RUNBOOK_NAMES.join(', ')}`)
      .requiredOption('-c, --config <file>', 'estate configuration file')
      .option('--json', 'print one JSON document (plans and the run record)')
      .option('-t, --target <name>', TARGET_HELP, collect)
      .addOption(new Option('--show <what>', 'how much of the plan to print: changes (lists cut to 12 lines, passed checks hidden) or all').choices(['changes', 'all']).default('changes'))
      .option('--record', 'write the run record even when nothing can be applied (a plan, or dryRun: true)')
      .option('--notify', 'send the configured notifications even when nothing can be applied (a plan, or dryRun: true)')
      .option('--log', 'also emit the run record as JSON log lines on stderr');

  runbookCommand('plan')
    .description('show what a runbook would do: checks, actions and kept items per target, and anything an apply would refuse. Reads Azure only: writes nothing and notifies nobody unless --record/--notify')
    .option('--force', 'plan as a forced run would: let the guard (e.g. the deletion cap) pass the plan')
    .addHelpText(
      'after',
      `${examples([
        'ops-autopilot plan backup-verify --config examples/lms.yaml',
        'ops-autopilot plan image-purge --config estate.yaml --target crxshopaiprod --show all',
        'ops-autopilot plan revision-cleanup --config estate.yaml --json | jq ".plans[].actions | length"',
      ])}\n${exitCodes([
        [0, 'ok: every check passed'],
        [1, 'a target could not be planned, or the configuration is invalid'],
        [2, 'usage error (unknown runbook, a --target that names no target or several), or an apply of this plan would be refused (above the deletion cap)'],
        [3, 'findings: warn or fail checks'],
      ])}`,
    )
    .action(async (name: string, options: RunbookCommandOptions) => {
      exit.code = await planCommand(name, options, io);
    });

  runbookCommand('run')
    .description(
      'plan a runbook, show the whole plan, ask, and apply it through the dry-run gate (dryRun in the config is the authority: with dryRun: true nothing is applied). A destructive plan needs "yes" or the number of deletions typed out. Records the run and notifies as the timers do.',
    )
    .option('-y, --yes', 'apply without asking (needed when stdin is not a terminal)')
    .option('--force', "apply even when the runbook's guard refuses the plan (e.g. above the deletion cap)")
    .addHelpText(
      'after',
      `${examples([
        'ops-autopilot run revision-cleanup --config estate.yaml                # shows the plan, asks',
        'ops-autopilot run revision-cleanup --config estate.yaml | tee run.log  # still asks: the prompt reads stdin',
        'ops-autopilot run image-purge --config estate.yaml --target crxshopaiprod --yes',
      ])}\n${exitCodes([
        [0, 'ok: applied (or nothing to apply) and every check passed'],
        [1, 'a target or an action failed, the run record could not be written, or the configuration is invalid'],
        [2, 'usage error, or nothing applied by decision: refused (deletion cap, another run holds the lock), declined at the prompt, or no terminal and no --yes'],
        [3, 'findings: warn or fail checks (the run itself worked)'],
        [130, 'cancelled: Ctrl-C or Ctrl-D at the prompt (nothing applied, nobody notified, the record says cancelled), or Ctrl-C during the run (no further action starts)'],
      ])}`,
    )
    .action(async (name: string, options: RunbookCommandOptions) => {
      exit.code = await runCommand(name, options, io);
    });

  const explainCommand = (name: 'explain-alert' | 'explain-event', what: string, run: typeof explainAlertCommand): void => {
    program
      .command(name)
      .description(`read-only: parse ${what}, show the matching target and rule, each guardrail's decision as of now and the ladder that would run; writes nothing, notifies nobody, takes no lock`)
      .argument('<payload.json>', name === 'explain-alert' ? 'an Azure Monitor alert in the common alert schema, as an action group posts it' : 'an Event Grid delivery (Event Grid schema or CloudEvents; one event or an array)')
      .requiredOption('-c, --config <file>', 'estate configuration file')
      .option('--json', 'print one JSON object: { decision: remediate|ignore|reject, reason, target, rule, actions, ladder, guardrails, intake }')
      .addHelpText(
        'after',
        `${examples([`ops-autopilot ${name} ${name === 'explain-alert' ? 'alert.json' : 'event.json'} --config examples/kilometers.yaml`, `ops-autopilot ${name} ${name === 'explain-alert' ? 'alert.json' : 'event.json'} --config estate.yaml --json | jq .decision`])}\n${exitCodes([
          [0, 'a valid payload (whatever the decision)'],
          [1, 'an invalid payload (the reason is printed), or an invalid configuration'],
          [2, 'usage error'],
        ])}`,
      )
      .action(async (file: string, options: ExplainOptions) => {
        exit.code = await run(file, options, io);
      });
  };
  explainCommand('explain-alert', 'an alert', explainAlertCommand);
  explainCommand('explain-event', 'an Event Grid event', explainEventCommand);

  const guardrails = program.command('guardrails').description('remediation guardrail state: breakers, caps, cooldowns, suppressed alerts');
  guardrails
    .command('status')
    .description('show the guardrail state of every target with state (or of one, with its recent alerts and events); reads only')
    .requiredOption('-c, --config <file>', 'estate configuration file')
    .option('-t, --target <name>', 'only this target (name, unique end of its id, or the full id), with its recent triggers')
    .option('--dry-run', 'show the dry-run state (what dry-run remediations would have counted)')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `${examples(['ops-autopilot guardrails status --config estate.yaml', 'ops-autopilot guardrails status --config estate.yaml --target app-kilometers-api-k7x2 --json'])}\n${exitCodes([
      [0, 'read'],
      [1, 'the state could not be read, or the configuration is invalid'],
      [2, 'usage error, or a --target that names no target or several'],
    ])}`)
    .action(async (options: GuardrailsCommandOptions) => {
      exit.code = await guardrailsStatusCommand(options, io);
    });
  guardrails
    .command('reset')
    .description("a person's reset of one target: close its circuit breaker, end its cooldowns and back-off and any running claim (caps keep counting); recorded with who did it")
    .argument('<target>', 'the target: its name, a unique end of its id, or the full id')
    .requiredOption('-c, --config <file>', 'estate configuration file')
    .option('--by <who>', 'who resets, for the record (default: your user name)')
    .option('--dry-run', 'reset the dry-run state instead')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `${examples(['ops-autopilot guardrails reset app-kilometers-api-k7x2 --config estate.yaml --by alice'])}\n${exitCodes([
      [0, 'reset (or nothing to reset)'],
      [1, 'the state could not be written, or the configuration is invalid'],
      [2, 'usage error, or a target that names no estate target or several'],
    ])}`)
    .action(async (target: string, options: GuardrailsCommandOptions) => {
      exit.code = await guardrailsResetCommand(target, options, io);
    });

  // runs: past runs (blob storage or the app) and manual runs in the app.
  const runs = program.command('runs').description('past runs (list, show) and runs started in the app (start)');
  appOptions(
    runs
      .command('list')
      .description('past runs, newest first: outcome, trigger, counts and duration. From blob storage with --config, or from the app with --app')
      .option('-c, --config <file>', 'estate configuration: read the run records from its run-record store')
      .option('-r, --runbook <name>', `only this runbook (${RUNBOOK_NAMES.join(', ')}, inventory)`)
      .option('--since <when>', 'runs started since: 30m, 12h, 7d, 2w or an ISO 8601 time (at most 366 days back)', '7d')
      .option('--limit <n>', 'at most this many runs (1-200)', '50')
      .option('--json', 'print one JSON document: { since, runs: [...], truncated }'),
  )
    .addHelpText(
      'after',
      `${examples([
        'ops-autopilot runs list --config estate.yaml',
        'ops-autopilot runs list --config estate.yaml --runbook image-purge --since 30d',
        'ops-autopilot runs list --app https://func-ops.azurewebsites.net --key "$KEY" --json | jq ".runs[0]"',
      ])}\n${exitCodes([
        [0, 'ok'],
        [1, 'the store or the app could not be read, or the configuration is invalid'],
        [2, 'usage error (a bad --since or --limit, neither --config nor --app)'],
      ])}`,
    )
    .action(async (options: RunsListOptions) => {
      exit.code = await runsListCommand(options, io);
    });
  appOptions(
    runs
      .command('show')
      .description('one run: its record (targets, findings, actions with outcomes), or where it stands while the app runs it')
      .argument('<runId>', 'the run id (runs list shows it)')
      .option('-c, --config <file>', 'estate configuration: read the record from its run-record store')
      .option('--json', 'print one JSON document: { run, record }'),
  )
    .addHelpText('after', `${examples(['ops-autopilot runs show 3f2a…-… --config estate.yaml', 'ops-autopilot runs show 3f2a…-… --app "$APP" --json'])}\n${exitCodes([[0, 'ok'], [1, 'no such run, or the store or app could not be read'], [2, 'usage error']])}`)
    .action(async (runId: string, options: RunsSourceOptions) => {
      exit.code = await runsShowCommand(runId, options, io);
    });
  appOptions(
    runs
      .command('start')
      .description(
        'ask the app to run a runbook: durably, in the app, through the same executor, locks, deletion cap and dry-run gate as its timers. Shows the app\'s plan and asks first (a destructive plan needs "yes" or the number typed), unless --yes; then follows the run until it ends',
      )
      .argument('<runbook>', `runbook name: ${RUNBOOK_NAMES.join(', ')}`)
      .option('-t, --target <name>', TARGET_HELP, collect)
      .option('--force', "apply even when the runbook's guard refuses the plan (e.g. above the deletion cap)")
      .option('--plan', 'only print the app\'s plan (read-only: no record, no notification, no lock)')
      .option('-y, --yes', 'start without asking (needed when stdin is not a terminal)')
      .option('--no-wait', 'return at once with the run id and its status URL')
      .option('--timeout <duration>', 'follow at most this long (90s, 30m, 2h; default 1h, at most 24h); the run goes on in the app after')
      .option('--json', 'print the app\'s answer as JSON (the plan, or the final status with the record)'),
  )
    .addHelpText(
      'after',
      `${examples([
        'ops-autopilot runs start revision-cleanup --plan --app http://127.0.0.1:7071 --key "$KEY"',
        'ops-autopilot runs start image-purge --target crxshopaiprod --app "$APP" --key "$KEY"   # shows the plan, asks, follows',
        'OPS_AUTOPILOT_APP_URL=... OPS_AUTOPILOT_APP_KEY=... ops-autopilot runs start backup-verify --yes --no-wait',
      ])}\n${exitCodes([
        [0, 'ok (or started, with --no-wait)'],
        [1, 'the run failed, or the app could not be reached (401: the key; 404: the URL)'],
        [2, 'usage error (unknown runbook or target, as the app answers 400), refused (deletion cap, lock), declined, or no terminal and no --yes'],
        [3, 'findings: warn or fail checks'],
        [130, 'cancelled at the prompt (nothing started), or Ctrl-C while following (the run goes on in the app)'],
      ])}`,
    )
    .action(async (name: string, options: RunsStartOptions) => {
      exit.code = await runsStartCommand(name, options, io);
    });

  program
    .command('sandbox')
    .description('run the local Azure sandbox (HTTPS on 127.0.0.1, Azurite, embedded PostgreSQL) with seed worlds and your own estate files, until Ctrl-C')
    .option('-w, --world <name|file>', WORLD_HELP, collect)
    .option(
      '-e, --estate <file>',
      'your own estate config (repeatable): the sandbox serves every target it names (resources of a loaded world as planted, any other with healthy defaults) and prints a copy of the config pointing at itself',
      collect,
    )
    .option('--json', 'print one JSON object with the endpoints, CA file and generated estate configs once ready')
    .addOption(new Option('-p, --port <n>', 'HTTPS port on 127.0.0.1 (default: a free one)').argParser(parsePort))
    .addHelpText(
      'after',
      `${examples([
        'ops-autopilot sandbox                                # every seed world',
        'ops-autopilot sandbox --world lms --world xshopai',
        'ops-autopilot sandbox --estate my-estate.yaml --json # then: plan <runbook> --config <estates[0].configFile>',
      ])}\n${exitCodes([
        [0, 'stopped (Ctrl-C, SIGTERM, or the parent process went away)'],
        [1, 'could not start: an invalid world or estate file, or a child process failed'],
        [2, 'usage error, or an unknown world name'],
      ])}`,
    )
    .action(async (options: SandboxCommandOptions) => {
      exit.code = await sandboxCommand(options);
    });

  appOptions(
    program
      .command('remediate')
      .description("post an alert payload to the app's POST /api/alerts as an action group does, then follow the remediation (it runs in the app, durably)")
      .argument('<payload.json>', 'an alert in the common alert schema'),
  )
    .option('--no-wait', 'print the status URL and return without following')
    .option('--timeout <seconds>', 'longest follow (default 3600)', (value) => {
      const seconds = Number(value);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) throw new InvalidArgumentError(`expected whole seconds 1-86400, found "${value}"`);
      return seconds;
    })
    .option('--json', 'print the final status as one JSON object')
    .addHelpText('after', `${examples(['ops-autopilot remediate alert.json --app http://127.0.0.1:7071 --key <function key>', 'OPS_AUTOPILOT_APP_URL=https://func-ops.azurewebsites.net ops-autopilot remediate alert.json --no-wait'])}\n${exitCodes([
      [0, 'remediated, healthy, notified, resolved or ignored'],
      [1, 'escalated, failed, or the app could not be reached or refused the key'],
      [2, 'usage error, or the app refused the payload (each issue printed)'],
      [3, 'nothing changed by decision: suppressed by a guardrail, or planned in dry run'],
      [130, 'Ctrl-C: stopped following; the remediation goes on in the app'],
    ])}`)
    .action(async (file: string, options: { app?: string; key?: string; appCa?: string; wait?: boolean; timeout?: number; json?: boolean }) => {
      exit.code = await remediateCli(file, options, io);
    });

  registerRestoreCommands(program, io, exit);

  program
    .command('demo')
    .description(
      'start the sandbox with the seed estates; per estate print the planted problems and the inventory, then run every runbook and APPLY its cleanups inside the sandbox (nothing outside it is touched); stop',
    )
    .option('-w, --world <name|file>', WORLD_HELP, collect)
    .addHelpText('after', `${examples(['ops-autopilot demo', 'ops-autopilot demo --world lms'])}\n${exitCodes([
      [0, 'every estate inventoried and every runbook ran (findings are expected)'],
      [1, 'something unexpected failed'],
      [2, 'usage error, or an unknown world name'],
    ])}`)
    .action(async (options: { world?: string[] }) => {
      exit.code = await demoCommand({ ...options, verbose: program.opts<{ verbose?: boolean }>().verbose === true }, io);
    });

  return program;
}

/** The exit code of an error a command threw. */
function exitCodeOfError(error: unknown): number {
  if (error instanceof CliExit) return error.exitCode;
  if (error instanceof TargetSelectorError) return EXIT.usage;
  return EXIT.failure;
}

/** The one-line message of an error, without a leading `error: `. */
function messageOf(error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  const message = errorMessage(error).replace(/^error: /, '');
  return message.split('\n')[0] ?? 'unknown error';
}

/**
 * The JSON error object printed on stdout under `--json`: one line, so a script reading a
 * long-running command's stdout line by line (`sandbox --json`) gets it whole.
 */
export function jsonError(error: { name: string; message: string; exitCode: number; issues?: readonly ConfigIssue[] }): string {
  return `${JSON.stringify({ error })}\n`;
}

/**
 * Runs the CLI with `argv` (the arguments after the program name) and returns the exit code.
 * Never throws: every failure becomes a message on `io.stderr` (under `--json` also a JSON
 * error object on `io.stdout`) and a non-zero code.
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const exit = { code: EXIT.ok as number };
  const json = argv.includes('--json');
  const program = buildProgram(io, exit, json);
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
      if (json) {
        io.stdout(jsonError({ name: 'UsageError', message: error.message.replace(/^error: /, ''), exitCode: EXIT.usage }));
        io.stderr(`${error.message}\n`);
      }
      return EXIT.usage;
    }
    const code = exitCodeOfError(error);
    if (json) {
      io.stdout(
        jsonError({
          name: error instanceof Error ? error.name : 'Error',
          message: error instanceof ConfigError ? (error.message.split('\n')[0] ?? '') : messageOf(error),
          exitCode: code,
          ...(error instanceof ConfigError ? { issues: error.issues } : {}),
        }),
      );
    }
    // The human line goes to stderr under --json too: a person redirecting stdout still sees it.
    io.stderr(error instanceof CliExit ? `${error.message}\n` : `error: ${messageOf(error)}\n`);
    if (verbose && error instanceof Error && error.stack !== undefined) io.stderr(`${error.stack}\n`);
    return code;
  }
}
