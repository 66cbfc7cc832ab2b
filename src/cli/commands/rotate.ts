/**
 * `ops-autopilot rotate <vault>/<secret> [--yes] [--json]` and `ops-autopilot rotate status <id>`:
 * credential rotation, run durably by the app (POST /api/rotations, GET /api/rotations/{id}),
 * never in the CLI's own process.
 *
 * Every rotation goes through the app's dry-run gate first: the CLI asks for the plan
 * (`mode: plan`: the current credential checked for real, the steps; nothing changed) and prints
 * it; an estate in dry-run mode ends there. Then it asks for confirmation (or takes `--yes`),
 * starts the rotation with an id of its own and follows it. Output names versions, never values.
 *
 * Exit codes: 0 only when the new credential was verified (or, for a dry run, the current one
 * works); 1 otherwise (failed, rolled back, invalid input, unreachable app); 2 usage error or
 * declined; 130 cancelled or Ctrl-C while following (the rotation goes on in the app).
 */
import { randomUUID } from 'node:crypto';
import { MAX_FOLLOW_MS, type OperationStatus } from '../app-client.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';
import { processTerminal, type Terminal } from '../terminal.ts';
import { appClient, callingApp, confirm, followStarted, parseTimeout, type RestoreCliOptions } from './restore.ts';

/** Options of `rotate`. */
export interface RotateOptions extends RestoreCliOptions {
  readonly yes?: boolean;
  readonly timeout?: string;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const record = (value: unknown): Record<string, unknown> => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {});

/** `rotate <vault>/<secret>`. Returns the exit code. */
export async function rotateCommand(target: string, options: RotateOptions, io: CliIo, terminal: Terminal = processTerminal): Promise<number> {
  const command = 'rotate';
  if (!/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]\/[0-9a-zA-Z-]{1,127}$/.test(target)) throw new CliExit(EXIT.usage, `error: ${command}: expected <vault>/<secret> (e.g. kv-prod/PostgresAdminPassword), found "${target}"`);
  const timeoutMs = parseTimeout(options.timeout, MAX_FOLLOW_MS);
  const app = appClient(options, command);
  // The dry-run gate: the app checks the current credential and lists the steps; nothing changes.
  const planned = await callingApp(command, () => app.request('POST', 'rotations', { body: { secret: target, mode: 'plan' } }));
  const answer = record(planned.body);
  const plan = record(answer.plan);
  const steps = Array.isArray(plan.steps) ? plan.steps.map(text) : [];
  const currentWorks = plan.currentWorks === true;
  if (options.json !== true) {
    io.stdout(
      [
        `Rotation plan (estate ${text(answer.estate)}) of ${text(plan.vault)}/${text(plan.secret)} (${text(plan.kind)}), by the app:`,
        `  current: ${text(record(plan.current).version) || '(none)'}: ${text(plan.currentDetail)}`,
        `  due:     ${plan.due === true ? 'yes' : 'no'} (${text(plan.dueDetail)})`,
        ...steps.map((step, index) => `  ${String(index + 1)}. ${step}`),
      ].join('\n') + '\n',
    );
  }
  if (answer.dryRun === true) {
    if (options.json === true) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    else io.stdout(`dry run (the estate has dryRun: true): nothing was changed; the current credential ${currentWorks ? 'works' : 'does NOT work'}\n`);
    return currentWorks ? EXIT.ok : EXIT.failure;
  }
  const declined = await confirm(`Rotate ${text(plan.vault)}/${text(plan.secret)} now? Type "yes" to start: `, options, command, terminal, io);
  if (declined !== undefined) return declined;
  const id = `rotation-${randomUUID()}`;
  const started = await callingApp(command, () => app.start('rotations', { secret: target, mode: 'apply', id }));
  if (options.json !== true) io.stderr(`rotation ${started.id} started in the app; following ${started.statusUrl}\n`);
  const final = await followStarted(app, started, `rotation ${started.id}`, { timeoutMs }, terminal, io);
  if (typeof final === 'number') return final;
  return printRotation(final, options, io);
}

function printRotation(status: OperationStatus, options: RestoreCliOptions, io: CliIo): number {
  if (options.json === true) io.stdout(`${JSON.stringify(status.body, null, 2)}\n`);
  if (!status.done) {
    if (options.json !== true) io.stdout(`rotation ${status.id}: ${text(status.body.phase)} (in progress in the app)\n`);
    return EXIT.failure;
  }
  const output = record(status.body.output);
  if (options.json !== true) {
    io.stdout(`${text(output.outcome) || text(status.body.runtimeStatus)}: ${text(output.summary)}\n`);
    const steps = Array.isArray(output.steps) ? output.steps.map(record) : [];
    for (const step of steps) io.stdout(`  ${text(step.outcome).padEnd(8)} ${text(step.step)}: ${text(step.message)}\n`);
  }
  return output.verified === true ? EXIT.ok : EXIT.failure;
}

/** `rotate status <id>`: exit 0 only for a done rotation whose new credential was verified. */
export async function rotateStatusCommand(id: string, options: RestoreCliOptions, io: CliIo): Promise<number> {
  const app = appClient(options, 'rotate status');
  const status = await callingApp('rotate status', () => app.status(`rotations/${encodeURIComponent(id)}`));
  return printRotation(status, options, io);
}
