/**
 * The `restore` and `drill` command trees of `ops-autopilot` (see ./restore.ts for what they do),
 * registered by main.ts with one call.
 */
import type { Command } from 'commander';
import { appOptions, examples, exitCodes } from '../help.ts';
import type { CliIo } from '../output.ts';
import { rotateCommand, rotateStatusCommand, type RotateOptions } from './rotate.ts';
import { drillHistoryCommand, drillRunCommand, restoreDecisionCommand, restoreStartCommand, restoreStatusCommand, type DecisionOptions, type DrillHistoryOptions, type DrillRunOptions, type RestoreCliOptions, type RestoreStartOptions } from './restore.ts';

/** The app options of every restore and drill command, with `--json` (they all print the app's answer). */
function appJsonOptions(command: Command): Command {
  return appOptions(command).option('--json', 'print the app\'s answer as JSON');
}

function help(lines: readonly string[], codes: readonly [number, string][]): string {
  return `${examples(lines)}\n${exitCodes(codes)}`;
}

const START_CODES: readonly [number, string][] = [
  [0, 'done and succeeded, waiting for approval, started (--no-wait), or a dry run (nothing created)'],
  [1, 'failed, invalid input (the app\'s reason printed, nothing created), or the app could not be reached'],
  [2, 'usage error, declined at the prompt, or no terminal and no --yes'],
  [130, 'cancelled at the prompt, or Ctrl-C while following (the work goes on in the app)'],
];

/** Adds `restore start|status|approve|reject` and `drill run|history` to `program`. */
export function registerRestoreCommands(program: Command, io: CliIo, exit: { code: number }): void {
  const restore = program.command('restore').description('point-in-time restores of PostgreSQL flexible servers to a new server, run durably by the app');
  appJsonOptions(
    restore
      .command('start')
      .description('validate and plan in the app (nothing created), confirm, start the restore in the app and follow it until done or waiting for approval')
      .option('-s, --server <id|name>', 'the source server (ARM id or unique name of a target with a restore policy)')
      .option('-p, --point <when>', 'the restore point: ISO 8601 with a zone (2026-12-01T10:00:00Z) or "latest" (now − 5 min)')
      .option('-n, --name <server>', 'the new server\'s name (default: <source>-r<yyyymmddhhmm>)')
      .option('-y, --yes', 'start without asking (needed when stdin is not a terminal)')
      .option('--no-wait', 'return at once with the restore id and its status URL')
      .option('--timeout <duration>', 'follow at most this long (90s, 30m, 2h; default and at most 24h); the restore goes on in the app after'),
  )
    .addHelpText('after', help(['ops-autopilot restore start --server psql-prod --point latest --app "$APP" --key "$KEY"', 'ops-autopilot restore start --server psql-prod --point 2026-12-01T10:00:00Z --name psql-prod-r1 --yes --no-wait --json'], START_CODES))
    .action(async (options: RestoreStartOptions) => {
      exit.code = await restoreStartCommand(options, io);
    });
  appJsonOptions(restore.command('status').description('where a restore is, and its outcome once done').argument('<id>', 'the restore id (restore start prints it)'))
    .addHelpText('after', help(['ops-autopilot restore status restore-3f2a…'], [[0, 'running, waiting, or done and succeeded'], [1, 'failed, no such restore, or the app could not be reached'], [2, 'usage error']]))
    .action(async (id: string, options: RestoreCliOptions) => {
      exit.code = await restoreStatusCommand(id, options, io);
    });
  for (const decision of ['approve', 'reject'] as const) {
    appJsonOptions(
      restore
        .command(decision)
        .description(decision === 'approve' ? 'approve the cutover of a restore waiting for approval' : 'reject the cutover of a restore waiting for approval (the new server is kept or deleted as configured)')
        .argument('<id>', 'the restore id')
        .option('--by <who>', 'who decided (default: the caller the app sees)')
        .option('--reason <text>', 'why'),
    )
      .addHelpText('after', help([`ops-autopilot restore ${decision} restore-3f2a… --reason "checked the data"`], [[0, 'the decision was delivered'], [1, 'the restore is not waiting for approval (409), is unknown, or the app could not be reached'], [2, 'usage error']]))
      .action(async (id: string, options: DecisionOptions) => {
        exit.code = await restoreDecisionCommand(id, decision, options, io);
      });
  }

  appJsonOptions(
    program
      .command('rotate')
      .description('rotate a Key Vault secret by its rotation policy, in the app: plan (the current credential checked, nothing changed), confirm, rotate, follow; `rotate status <id>` for one started before')
      .argument('<vault/secret|status>', 'the secret, as <vault>/<secret>, or "status"')
      .argument('[id]', 'with status: the rotation id')
      .option('-y, --yes', 'rotate without asking (needed when stdin is not a terminal)')
      .option('--timeout <duration>', 'follow at most this long (default and at most 24h); the rotation goes on in the app after'),
  )
    .addHelpText('after', help(['ops-autopilot rotate kv-prod/PostgresAdminPassword --app "$APP" --key "$KEY"', 'ops-autopilot rotate kv-prod/StorageAccountKey --yes --json', 'ops-autopilot rotate status rotation-3f2a…'], [
      [0, 'the new credential was verified (a dry run: the current one works)'],
      [1, 'failed, rolled back, invalid input, or the app could not be reached'],
      [2, 'usage error, declined, or no terminal and no --yes'],
      [130, 'cancelled at the prompt, or Ctrl-C while following'],
    ]))
    .action(async (target: string, id: string | undefined, options: RotateOptions) => {
      if (target === 'status') {
        if (id === undefined) {
          io.stderr('error: rotate status: expected a rotation id, found none\n');
          exit.code = 2;
          return;
        }
        exit.code = await rotateStatusCommand(id, options, io);
        return;
      }
      exit.code = await rotateCommand(target, options, io);
    });

  const drill = program.command('drill').description('restore drills: restore to a scratch server, validate, measure RTO and RPO, tear down');
  appJsonOptions(
    drill
      .command('run')
      .description('plan in the app (nothing created), confirm, run a drill in the app and follow it; prints RTO and RPO per server (JSON: servers[].rto and .rpo)')
      .option('-s, --server <id|name>', 'only this server (default: every server with restore.drill)')
      .option('-y, --yes', 'start without asking (needed when stdin is not a terminal)')
      .option('--no-wait', 'return at once with the drill id and its status URL')
      .option('--timeout <duration>', 'follow at most this long (default and at most 24h)'),
  )
    .addHelpText('after', help(['ops-autopilot drill run --app "$APP" --key "$KEY"', 'ops-autopilot drill run --server psql-prod --yes --json | jq ".servers[] | {serverId, rto, rpo}"'], [
      [0, 'every server passed, started (--no-wait), or a dry run'],
      [1, 'a server failed its drill (RTO or RPO over target, validation, teardown), invalid input, or the app could not be reached'],
      [2, 'usage error, declined, or no terminal and no --yes'],
      [130, 'cancelled at the prompt, or Ctrl-C while following'],
    ]))
    .action(async (options: DrillRunOptions) => {
      exit.code = await drillRunCommand(options, io);
    });
  appJsonOptions(
    drill
      .command('history')
      .description('past drills, newest first: server, restore point, RTO and RPO against their targets, verdict')
      .option('-s, --server <id|name>', 'only this server')
      .option('--limit <n>', 'at most this many drills (1-500)', '20'),
  )
    .addHelpText('after', help(['ops-autopilot drill history --app "$APP" --key "$KEY"', 'ops-autopilot drill history --json'], [[0, 'ok'], [1, 'the app could not be reached or the history read'], [2, 'usage error']]))
    .action(async (options: DrillHistoryOptions) => {
      exit.code = await drillHistoryCommand(options, io);
    });
}
