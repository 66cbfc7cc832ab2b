/**
 * `ops-autopilot restore start|status|approve|reject` and `ops-autopilot drill run|history`:
 * point-in-time restores and restore drills, started and followed through the app's HTTP API
 * (src/cli/app-client.ts), never in the CLI's own process, so a restore survives the laptop.
 *
 * Every start goes through the app's dry-run gate first: the CLI asks the app for the plan
 * (`mode: plan`: validated, nothing created) and prints it; an estate in dry-run mode ends there.
 * Then it asks for confirmation (or takes `--yes`), starts with an id of its own (a retried
 * request is recognised as the same restore), and follows it, with progress on a terminal.
 * A restore that waits for approval is left waiting, with the commands that decide it.
 *
 * Exit codes: 0 ok (restored, cut over, drill passed, started with --no-wait, plan only);
 * 1 failed, invalid input (the app's 400 with every problem), or the app could not be reached;
 * 2 usage error, declined, or no terminal and no --yes; 130 cancelled or Ctrl-C while following.
 */
import { randomUUID } from 'node:crypto';
import { AppClient, AppConnectionError, AppNotFoundError, AppRequestError, MAX_FOLLOW_MS, resolveAppConnection, type AppConnectionOptions, type OperationStatus } from '../app-client.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';
import { formatTable } from '../table.ts';
import { CANCELLED_EXIT_CODE, processTerminal, type Terminal } from '../terminal.ts';

/** Options shared by the commands. */
export interface RestoreCliOptions extends AppConnectionOptions {
  readonly json?: boolean;
}

/** Options of `restore start`. */
export interface RestoreStartOptions extends RestoreCliOptions {
  readonly server?: string;
  readonly point?: string;
  readonly name?: string;
  readonly yes?: boolean;
  /** False with `--no-wait`. */
  readonly wait?: boolean;
  readonly timeout?: string;
}

/** Options of `drill run`. */
export interface DrillRunOptions extends RestoreCliOptions {
  readonly server?: string;
  readonly yes?: boolean;
  readonly wait?: boolean;
  readonly timeout?: string;
}

/** Options of `restore approve|reject`. */
export interface DecisionOptions extends RestoreCliOptions {
  readonly by?: string;
  readonly reason?: string;
}

/** Options of `drill history`. */
export interface DrillHistoryOptions extends RestoreCliOptions {
  readonly server?: string;
  readonly limit?: string;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const record = (value: unknown): Record<string, unknown> => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {});

/** The app client of `--app`/`--key` (a usage error when they are missing or wrong); shared with `rotate`. */
export function appClient(options: AppConnectionOptions, command: string): AppClient {
  try {
    return new AppClient(resolveAppConnection(options));
  } catch (error) {
    if (error instanceof AppConnectionError) throw new CliExit(EXIT.usage, `error: ${command}: ${error.message}`);
    throw error;
  }
}

/** Runs `fn`; the app's 400 (invalid input) is exit 1 with every problem, a 409 exit 1 with its reason. */
export async function callingApp<T>(command: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof AppRequestError && (error.status === 400 || error.status === 409 || error.status === 503)) {
      const body = record(error.body);
      const problems = Array.isArray(body.problems) ? body.problems.filter((line): line is string => typeof line === 'string') : [];
      throw new CliExit(EXIT.failure, [`error: ${command}: ${error.message}`, ...problems.map((line) => `  ${line}`)].join('\n'));
    }
    if (error instanceof AppNotFoundError) throw new CliExit(EXIT.failure, `error: ${command}: ${error.message}`);
    throw error;
  }
}

/** `--timeout` as milliseconds (1 s to 24 h), the default when absent. */
export function parseTimeout(value: string | undefined, defaultMs: number): number {
  if (value === undefined) return defaultMs;
  const match = /^(\d{1,6})(s|m|h)$/.exec(value.trim());
  const ms = match === null ? Number.NaN : Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
  if (!Number.isFinite(ms) || ms < 1000 || ms > MAX_FOLLOW_MS) throw new CliExit(EXIT.usage, `error: --timeout: expected a duration from 1s to 24h such as 90s, 30m or 2h, found "${value}"`);
  return ms;
}

function formatElapsed(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return seconds < 60 ? `${String(seconds)}s` : seconds < 3600 ? `${String(Math.floor(seconds / 60))}m${String(seconds % 60).padStart(2, '0')}s` : `${String(Math.floor(seconds / 3600))}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** A one-line progress display of the orchestration's phase, on a terminal only. */
function phaseProgress(label: string, terminal: Terminal, io: CliIo): { onProgress: (status: OperationStatus, elapsedMs: number) => void; done: () => void } {
  let drawn = false;
  return {
    onProgress(status, elapsedMs) {
      if (!terminal.progress) return;
      io.stderr(`\r\x1b[2K${label}: ${text(status.body.phase) || status.status} (${formatElapsed(elapsedMs)})`);
      drawn = true;
    },
    done() {
      if (drawn) io.stderr('\r\x1b[2K');
    },
  };
}

/** Asks for "yes" unless `--yes`; the exit code when declined or cancelled, undefined to go on. */
export async function confirm(question: string, options: { readonly yes?: boolean }, command: string, terminal: Terminal, io: CliIo): Promise<number | undefined> {
  if (options.yes === true) return undefined;
  if (!terminal.interactive) throw new CliExit(EXIT.usage, `error: ${command}: expected --yes or an interactive terminal to confirm, found neither (stdin is not a TTY); nothing was started`);
  const answer = await terminal.ask(question);
  if (answer === undefined) {
    io.stderr('cancelled: nothing was started\n');
    return CANCELLED_EXIT_CODE;
  }
  if (answer.trim().toLowerCase() !== 'yes') {
    io.stderr('declined: nothing was started\n');
    return EXIT.usage;
  }
  return undefined;
}

/**
 * Follows `started` until done (or, when `stopAt` says so, until a phase that waits for a person),
 * with Ctrl-C stopping the follow, never the work.
 */
export async function followStarted(
  app: AppClient,
  started: OperationStatus,
  label: string,
  options: { readonly timeoutMs: number; readonly stopAt?: (phase: string) => boolean },
  terminal: Terminal,
  io: CliIo,
): Promise<OperationStatus | number> {
  const interrupts = terminal.interrupts(() => undefined);
  const progress = phaseProgress(label, terminal, io);
  const stop = new AbortController();
  const signal = AbortSignal.any([interrupts.signal, stop.signal]);
  let waiting: OperationStatus | undefined;
  try {
    return await app.follow(started.statusUrl, {
      maxWaitMs: options.timeoutMs,
      signal,
      onProgress: (status, elapsedMs) => {
        progress.onProgress(status, elapsedMs);
        if (!status.done && options.stopAt?.(text(status.body.phase)) === true) {
          waiting = status;
          stop.abort(new Error('waiting for a person'));
        }
      },
    });
  } catch (error) {
    if (waiting !== undefined) return waiting;
    if (interrupts.signal.aborted) {
      io.stderr(`\nstopped following; ${label} goes on in the app: ${started.statusUrl}\n`);
      return CANCELLED_EXIT_CODE;
    }
    throw error;
  } finally {
    progress.done();
    interrupts.dispose();
  }
}

/** `restore start`. Returns the exit code. */
export async function restoreStartCommand(options: RestoreStartOptions, io: CliIo, terminal: Terminal = processTerminal): Promise<number> {
  const command = 'restore start';
  if (options.server === undefined || options.server.trim() === '') throw new CliExit(EXIT.usage, `error: ${command}: expected --server <id|name>, found none`);
  if (options.point === undefined || options.point.trim() === '') throw new CliExit(EXIT.usage, `error: ${command}: expected --point <ISO 8601|latest>, found none`);
  const timeoutMs = parseTimeout(options.timeout, MAX_FOLLOW_MS);
  const app = appClient(options, command);
  const request = { server: options.server, point: options.point, ...(options.name === undefined ? {} : { name: options.name }) };
  // The dry-run gate: the app validates and plans; nothing is created.
  const planned = await callingApp(command, () => app.request('POST', 'restores', { body: { ...request, mode: 'plan' } }));
  const answer = record(planned.body);
  const plan = record(answer.plan);
  const steps = Array.isArray(plan.steps) ? plan.steps.map(text) : [];
  if (options.json !== true || answer.dryRun === true) {
    const lines = [`Restore plan (estate ${text(answer.estate)}), validated by the app:`, `  source:  ${text(plan.sourceServerId)}`, `  point:   ${text(plan.pointInTime)}`, `  new:     ${text(plan.newServerId)}`, ...steps.map((step, index) => `  ${String(index + 1)}. ${step}`)];
    if (options.json !== true) io.stdout(`${lines.join('\n')}\n`);
  }
  if (answer.dryRun === true) {
    if (options.json === true) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    else io.stdout('dry run (the estate has dryRun: true): nothing was created\n');
    return EXIT.ok;
  }
  const declined = await confirm(`Restore ${text(plan.sourceName)} as of ${text(plan.pointInTime)} to the NEW server ${text(plan.newServerName)}? Type "yes" to start: `, options, command, terminal, io);
  if (declined !== undefined) return declined;
  const id = `restore-${randomUUID()}`;
  const started = await callingApp(command, () => app.start('restores', { ...request, mode: 'apply', id }));
  if (options.wait === false) {
    if (options.json === true) io.stdout(`${JSON.stringify(started.body, null, 2)}\n`);
    else io.stdout(`restore ${started.id} started in the app; status: ${started.statusUrl}\n(follow it with: ops-autopilot restore status ${started.id})\n`);
    return EXIT.ok;
  }
  if (options.json !== true) io.stderr(`restore ${started.id} started in the app; following ${started.statusUrl}\n`);
  const final = await followStarted(app, started, `restore ${started.id}`, { timeoutMs, stopAt: (phase) => phase === 'awaiting-approval' }, terminal, io);
  if (typeof final === 'number') return final;
  return printRestore(final, options, io);
}

function printRestore(status: OperationStatus, options: RestoreCliOptions, io: CliIo): number {
  if (options.json === true) io.stdout(`${JSON.stringify(status.body, null, 2)}\n`);
  const phase = text(status.body.phase);
  if (!status.done) {
    if (options.json !== true) {
      const custom = record(status.body.status);
      io.stdout(
        phase === 'awaiting-approval'
          ? `restore ${status.id} is validated and waits for approval until ${text(custom.approvalDeadline)} (${text(custom.evidence)}):\n  ops-autopilot restore approve ${status.id}\n  ops-autopilot restore reject ${status.id} --reason "..."\n`
          : `restore ${status.id}: ${phase} (in progress in the app)\n`,
      );
    }
    return EXIT.ok;
  }
  const output = record(status.body.output);
  if (options.json !== true) io.stdout(`${text(output.outcome) || text(status.body.runtimeStatus)}: ${text(output.summary)}\n`);
  return output.succeeded === true ? EXIT.ok : EXIT.failure;
}

/** `restore status <id>`. */
export async function restoreStatusCommand(id: string, options: RestoreCliOptions, io: CliIo): Promise<number> {
  const app = appClient(options, 'restore status');
  const status = await callingApp('restore status', () => app.status(`restores/${encodeURIComponent(id)}`));
  return printRestore(status, options, io);
}

/** `restore approve|reject <id>`. */
export async function restoreDecisionCommand(id: string, decision: 'approve' | 'reject', options: DecisionOptions, io: CliIo): Promise<number> {
  const command = `restore ${decision}`;
  const app = appClient(options, command);
  const body = { ...(options.by === undefined ? {} : { by: options.by }), ...(options.reason === undefined ? {} : { reason: options.reason }) };
  const response = await callingApp(command, () => app.request('POST', `restores/${encodeURIComponent(id)}/${decision}`, { body }));
  if (options.json === true) io.stdout(`${JSON.stringify(response.body, null, 2)}\n`);
  else io.stdout(`restore ${id}: ${decision === 'approve' ? 'approved' : 'rejected'}; follow it with: ops-autopilot restore status ${id}\n`);
  return EXIT.ok;
}

function seconds(value: unknown): string {
  return typeof value === 'number' ? `${String(value)} s` : '—';
}

/** `drill run`. Returns the exit code. */
export async function drillRunCommand(options: DrillRunOptions, io: CliIo, terminal: Terminal = processTerminal): Promise<number> {
  const command = 'drill run';
  const timeoutMs = parseTimeout(options.timeout, MAX_FOLLOW_MS);
  const app = appClient(options, command);
  const request = options.server === undefined ? {} : { server: options.server };
  const planned = await callingApp(command, () => app.request('POST', 'drills', { body: { ...request, mode: 'plan' } }));
  const answer = record(planned.body);
  const servers = Array.isArray(answer.servers) ? answer.servers.map(record) : [];
  if (options.json !== true) {
    io.stdout(`Restore drill plan (estate ${text(answer.estate)}), validated by the app:\n`);
    for (const server of servers) {
      io.stdout(`  ${text(server.serverId)}${server.valid === false ? ' — NOT VALID' : ''}\n`);
      const lines = Array.isArray(server.steps) ? server.steps.map(text) : Array.isArray(server.problems) ? server.problems.map(text) : [];
      for (const [index, line] of lines.entries()) io.stdout(`    ${String(index + 1)}. ${line}\n`);
    }
  }
  if (answer.dryRun === true) {
    if (options.json === true) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    else io.stdout('dry run (the estate has dryRun: true): nothing was created\n');
    return EXIT.ok;
  }
  if (servers.some((server) => server.valid === false)) {
    if (options.json === true) io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
    throw new CliExit(EXIT.failure, `error: ${command}: the app refused the drill of ${servers.filter((server) => server.valid === false).map((server) => text(server.serverId)).join(', ')}; nothing was started`);
  }
  const declined = await confirm(`Drill ${String(servers.length)} server(s): create scratch servers by point-in-time restore, measure RTO and RPO, delete them? Type "yes" to start: `, options, command, terminal, io);
  if (declined !== undefined) return declined;
  const id = `drill-${randomUUID()}`;
  const started = await callingApp(command, () => app.start('drills', { ...request, mode: 'apply', id }));
  if (options.wait === false) {
    if (options.json === true) io.stdout(`${JSON.stringify(started.body, null, 2)}\n`);
    else io.stdout(`drill ${started.id} started in the app; status: ${started.statusUrl}\n`);
    return EXIT.ok;
  }
  if (options.json !== true) io.stderr(`drill ${started.id} started in the app; following ${started.statusUrl}\n`);
  const final = await followStarted(app, started, `drill ${started.id}`, { timeoutMs }, terminal, io);
  if (typeof final === 'number') return final;
  const output = record(final.body.output);
  const results = Array.isArray(output.servers) ? output.servers.map(record) : [];
  if (options.json === true) {
    io.stdout(`${JSON.stringify({ id: final.id, verdict: output.verdict ?? 'failed', summary: output.summary ?? text(final.body.runtimeStatus), servers: results }, null, 2)}\n`);
  } else {
    io.stdout(formatDrillResults(results));
    io.stdout(`${text(output.verdict) || 'failed'}: ${text(output.summary)}\n`);
  }
  return output.verdict === 'passed' ? EXIT.ok : EXIT.failure;
}

/** The per-server table of a drill's output (`servers[]` of the drill orchestration): verdict, RTO and RPO against their targets, teardown. */
export function formatDrillResults(results: readonly Record<string, unknown>[]): string {
  return `${formatTable(results, [
    { header: 'SERVER', value: (row) => text(row.serverId).split('/').pop() },
    { header: 'VERDICT', value: (row) => text(row.verdict) },
    { header: 'RTO', value: (row) => `${seconds(record(row.rto).seconds)} / ${seconds(record(row.rto).targetSeconds)}` },
    { header: 'RPO', value: (row) => `${seconds(record(row.rpo).seconds)} / ${seconds(record(row.rpo).targetSeconds)}` },
    { header: 'TORN DOWN', value: (row) => (row.tornDown === true ? 'yes' : 'NO') },
    { header: 'REASON', value: (row) => text(row.reason) },
  ])}\n`;
}

/** `drill history`. */
export async function drillHistoryCommand(options: DrillHistoryOptions, io: CliIo): Promise<number> {
  const command = 'drill history';
  const limit = options.limit ?? '20';
  if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 500) throw new CliExit(EXIT.usage, `error: ${command}: --limit: expected 1-500, found "${limit}"`);
  const app = appClient(options, command);
  const query = new URLSearchParams({ limit, ...(options.server === undefined ? {} : { server: options.server }) });
  const response = await callingApp(command, () => app.request('GET', `drills/history?${query.toString()}`));
  const body = record(response.body);
  const drills = Array.isArray(body.drills) ? body.drills.map(record) : [];
  if (options.json === true) {
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return EXIT.ok;
  }
  if (drills.length === 0) {
    io.stdout('no drills recorded yet\n');
    return EXIT.ok;
  }
  io.stdout(
    formatTable(drills, [
      { header: 'STARTED', value: (row) => text(row.startedAt).slice(0, 16).replace('T', ' ') },
      { header: 'SERVER', value: (row) => text(row.serverId).split('/').pop() },
      { header: 'POINT', value: (row) => text(row.restorePoint).slice(0, 19).replace('T', ' ') },
      { header: 'RTO', value: (row) => `${seconds(row.rtoSeconds)} / ${seconds(row.rtoTargetSeconds)}` },
      { header: 'RPO', value: (row) => `${seconds(row.rpoSeconds)} / ${seconds(row.rpoTargetSeconds)}` },
      { header: 'VERDICT', value: (row) => text(row.verdict) },
      { header: 'REASON', value: (row) => text(row.reason) },
    ]),
  );
  return EXIT.ok;
}
