/**
 * `ops-autopilot runs list|show|start`: past runs and manual runs in the app.
 *
 * - `runs list [--runbook R] [--since 7d] [--limit N] [--json]` and `runs show <runId>` read the
 *   run records: from blob storage with `--config <estate.yaml>` (the store the config names),
 *   or through the app's `GET /api/runs` with `--app`/`--key` (or `OPS_AUTOPILOT_APP_URL` /
 *   `OPS_AUTOPILOT_APP_KEY`). Newest first, with outcome, trigger, counts and duration; one
 *   implementation (`src/runs/run-history.ts`) behind both.
 * - `runs start <runbook>` asks the app to run a runbook (`POST /api/runs/{runbook}`): `--plan`
 *   prints the app's plan and changes nothing; otherwise the app applies it durably through the
 *   same executor, locks, cap and dry-run gate as its timers, and the CLI follows the run until
 *   it ends (`--no-wait` returns at once with the run id). Without `--yes` the CLI first shows
 *   the app's plan and asks on a terminal, as `run` does; the apply carries the confirmed plan's
 *   digest, and the app, which plans again when it applies, applies nothing unless its plan is
 *   the confirmed one (the estate may have changed while the person read the plan).
 *   Ctrl-C stops following; the run goes on in the app (`runs show <id>` finds it).
 */
import { randomUUID } from 'node:crypto';
import { loadConfigFile } from '../../config/load.ts';
import { createAzureClients } from '../../azure/clients.ts';
import type { TargetPlan } from '../../runbooks/runbook.ts';
import { DEFAULT_SINCE, listRuns, parseLimit, parseSince, RunQueryError, summariseRecord, type RunListPage, type RunOutcome, type RunSummaryView } from '../../runs/run-history.ts';
import { createRunRecordStore } from '../../runs/run-record-store.ts';
import type { RunRecord, TargetRecord } from '../../runs/run-record.ts';
import {
  AppClient,
  AppConnectionError,
  AppNotFoundError,
  AppRequestError,
  followProgress,
  MAX_FOLLOW_MS,
  resolveAppConnection,
  type AppConnectionOptions,
  type OperationStatus,
} from '../app-client.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';
import { formatPlans } from '../runbook-format.ts';
import { formatRecord, formatRunList } from '../runs-format.ts';
import { CANCELLED_EXIT_CODE, processTerminal, type Terminal } from '../terminal.ts';
import { confirmationQuestion, exitCodeOf } from './runbook.ts';

/** Where `runs list|show` read from: `--config` (blob storage), else the app. */
export interface RunsSourceOptions extends AppConnectionOptions {
  readonly config?: string;
  readonly json?: boolean;
}

/** Options of `runs list`. */
export interface RunsListOptions extends RunsSourceOptions {
  readonly runbook?: string;
  readonly since?: string;
  readonly limit?: string;
}

/** Options of `runs start`. */
export interface RunsStartOptions extends AppConnectionOptions {
  readonly target?: readonly string[];
  readonly force?: boolean;
  readonly plan?: boolean;
  readonly yes?: boolean;
  /** False with `--no-wait`. */
  readonly wait?: boolean;
  /** How long to follow, e.g. `30m` (default 1h, at most 24h). */
  readonly timeout?: string;
  readonly json?: boolean;
}

/** Exit code of a run's outcome, as `run` has it. */
function outcomeExit(outcome: RunOutcome | undefined): number {
  return outcome === undefined ? EXIT.failure : outcome === 'cancelled' ? EXIT.failure : exitCodeOf(outcome);
}

function client(options: AppConnectionOptions): AppClient {
  try {
    return new AppClient(resolveAppConnection(options));
  } catch (error) {
    if (error instanceof AppConnectionError) throw new CliExit(EXIT.usage, `error: ${error.message}`);
    throw error;
  }
}

/** Runs `fn`, turning the app's 400 (invalid input) into a usage error and a 503 into its problems. */
async function callingApp<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof AppConnectionError) throw new CliExit(EXIT.usage, `error: ${error.message}`);
    if (error instanceof AppRequestError && error.status === 400) throw new CliExit(EXIT.usage, `error: ${error.message}`);
    if (error instanceof AppRequestError && error.code === 'NotReady') {
      const problems = (error.body as { problems?: unknown } | undefined)?.problems;
      const lines = Array.isArray(problems) ? problems.filter((line): line is string => typeof line === 'string').map((line) => `  ${line}`) : [];
      throw new CliExit(EXIT.failure, [`error: ${error.message}`, ...lines].join('\n'));
    }
    throw error;
  }
}

function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d{1,6})(s|m|h)$/.exec(text.trim());
  const ms = match === null ? Number.NaN : Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
  if (!Number.isFinite(ms) || ms < 1000 || ms > MAX_FOLLOW_MS) {
    throw new CliExit(EXIT.usage, `error: --timeout: expected a duration from 1s to 24h such as 90s, 30m or 2h, found "${text}"`);
  }
  return ms;
}

function usingConfig(options: RunsSourceOptions): boolean {
  if (options.config !== undefined) return true;
  if (options.app === undefined && (process.env.OPS_AUTOPILOT_APP_URL ?? '') === '') {
    throw new CliExit(EXIT.usage, 'error: expected --config <estate.yaml> (reads the run records from blob storage) or --app <url> (asks the app), found neither');
  }
  return false;
}

async function withStore<T>(configFile: string, fn: (store: Awaited<ReturnType<typeof createRunRecordStore>>) => Promise<T>): Promise<T> {
  const config = await loadConfigFile(configFile);
  if (config.runRecords.blobServiceUrl === undefined && config.runRecords.storageAccountId === undefined) {
    throw new CliExit(EXIT.failure, `error: estate ${config.estate}: expected runRecords.blobServiceUrl or runRecords.storageAccountId in ${configFile}, found neither: no run is recorded`);
  }
  const clients = createAzureClients(config.azure);
  try {
    return await fn(await createRunRecordStore(config, clients));
  } finally {
    await clients.close();
  }
}

/** `runs list`. Returns the exit code. */
export async function runsListCommand(options: RunsListOptions, io: CliIo): Promise<number> {
  let since: Date;
  let limit: number;
  try {
    since = parseSince(options.since ?? DEFAULT_SINCE);
    limit = parseLimit(options.limit);
  } catch (error) {
    if (error instanceof RunQueryError) throw new CliExit(EXIT.usage, `error: --${error.message}`);
    throw error;
  }
  if (options.runbook !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(options.runbook)) {
    throw new CliExit(EXIT.usage, `error: --runbook: expected a runbook name, found "${options.runbook}"`);
  }
  let page: RunListPage;
  if (usingConfig(options)) {
    page = await withStore(options.config ?? '', (store) => listRuns(store, { since, limit, ...(options.runbook === undefined ? {} : { runbook: options.runbook }) }));
  } else {
    const app = client(options);
    const query = new URLSearchParams({ since: since.toISOString(), limit: String(limit), ...(options.runbook === undefined ? {} : { runbook: options.runbook }) });
    const response = await callingApp(() => app.request('GET', `runs?${query.toString()}`));
    page = response.body as RunListPage;
  }
  if (options.json === true) {
    io.stdout(`${JSON.stringify({ since: since.toISOString(), runs: page.runs, truncated: page.truncated, ...(page.next === undefined ? {} : { next: page.next }) }, null, 2)}\n`);
    return EXIT.ok;
  }
  io.stdout(formatRunList(page.runs));
  if (page.next !== undefined || page.truncated) io.stdout(`(more runs than shown: narrow --since or --runbook, or raise --limit up to 200)\n`);
  return EXIT.ok;
}

/** `runs show <runId>`. Returns the exit code (1 when there is no such run). */
export async function runsShowCommand(runId: string, options: RunsSourceOptions, io: CliIo): Promise<number> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(runId)) {
    throw new CliExit(EXIT.usage, `error: runs show: expected a run id (a uuid, as runs list shows it), found "${runId}"`);
  }
  let record: RunRecord | undefined;
  let view: RunSummaryView | undefined;
  let running: OperationStatus | undefined;
  if (usingConfig(options)) {
    const found = await withStore(options.config ?? '', (store) => store.findById(runId));
    if (found !== undefined) {
      record = found.record;
      view = summariseRecord(found.record, found.blobName);
    }
  } else {
    const app = client(options);
    const status = await callingApp(() => app.status(`runs/${runId.toLowerCase()}`)).catch((error: unknown) => {
      if (error instanceof AppNotFoundError) return undefined;
      throw error;
    });
    if (status !== undefined) {
      if (status.done && typeof status.body.record === 'object' && status.body.record !== null) {
        record = status.body.record as RunRecord;
        view = status.body.run as RunSummaryView;
      } else {
        running = status;
      }
    }
  }
  if (running !== undefined) {
    if (options.json === true) io.stdout(`${JSON.stringify(running.body, null, 2)}\n`);
    else io.stdout(`run ${runId}: ${running.status}${running.done ? '' : ' (in progress in the app)'}\n`);
    return EXIT.ok;
  }
  if (record === undefined || view === undefined) throw new CliExit(EXIT.failure, `error: run ${runId}: expected a recorded run, found none`);
  if (options.json === true) io.stdout(`${JSON.stringify({ run: view, record }, null, 2)}\n`);
  else io.stdout(formatRecord(record, view));
  return EXIT.ok;
}

interface PlanAnswer {
  readonly outcome: RunOutcome;
  readonly summary: string;
  readonly estate: string;
  readonly plans: readonly TargetPlan[];
  /** Sent back with the apply, so the app applies only this plan. */
  readonly planDigest: string;
  readonly record: { readonly targets: readonly TargetRecord[] };
}

/** `runs start <runbook>`. Returns the exit code. */
export async function runsStartCommand(runbook: string, options: RunsStartOptions, io: CliIo, terminal: Terminal = processTerminal): Promise<number> {
  const app = client(options);
  const maxWaitMs = parseTimeout(options.timeout);
  const targets = options.target === undefined || options.target.length === 0 ? {} : { targets: options.target };
  const force = options.force === true ? { force: true } : {};
  if (options.plan !== true && options.yes !== true && !terminal.interactive) {
    throw new CliExit(EXIT.usage, `error: runs start ${runbook}: expected --yes or an interactive terminal to confirm the plan, found neither (stdin is not a TTY); nothing was started`);
  }
  let confirmedPlan: string | undefined;
  if (options.plan === true || options.yes !== true) {
    const response = await callingApp(() => app.request('POST', `runs/${encodeURIComponent(runbook)}`, { body: { mode: 'plan', ...targets, ...force } }));
    const plan = response.body as PlanAnswer;
    if (options.plan === true) {
      if (options.json === true) io.stdout(`${JSON.stringify(plan, null, 2)}\n`);
      else io.stdout(`Plan of ${runbook} on estate ${plan.estate}, by the app:\n${formatPlans(plan.plans, plan.record.targets)}${plan.summary}\n`);
      return outcomeExit(plan.outcome);
    }
    io.stdout(`Plan of ${runbook} on estate ${plan.estate}, by the app:\n${formatPlans(plan.plans, plan.record.targets, { maxLines: Number.POSITIVE_INFINITY })}${plan.summary}\n`);
    if (plan.outcome === 'refused') return outcomeExit(plan.outcome);
    if (plan.plans.every((entry) => entry.actions.length === 0)) {
      io.stdout('nothing to apply: the plan has no actions; nothing was started\n');
      return outcomeExit(plan.outcome);
    }
    const ask = confirmationQuestion(plan.plans, plan.estate);
    const answer = await terminal.ask(ask.text);
    if (answer === undefined) {
      io.stderr('cancelled: nothing was started\n');
      return CANCELLED_EXIT_CODE;
    }
    if (!ask.accepts(answer)) {
      io.stderr('declined: nothing was started\n');
      return EXIT.usage;
    }
    confirmedPlan = plan.planDigest;
  }
  // A run id of our own, so a retried request (a lost answer) is recognised as the same run.
  const runId = randomUUID();
  // Ctrl-C from here on stops the CLI, never the run: installed before the start request, so an
  // interrupt at any moment gets an answer saying where the run is, not a bare SIGINT death.
  const interrupts = terminal.interrupts(() => undefined);
  const progress = followProgress(`run ${runId}`);
  let started: OperationStatus | undefined;
  let final: OperationStatus;
  try {
    started = await callingApp(() =>
      app.start(`runs/${encodeURIComponent(runbook)}`, { mode: 'apply', runId, ...targets, ...force, ...(confirmedPlan === undefined ? {} : { confirmedPlan }) }, interrupts.signal),
    );
    if (options.wait === false) {
      if (options.json === true) io.stdout(`${JSON.stringify(started.body, null, 2)}\n`);
      else io.stdout(`run ${started.id} of ${runbook} started in the app; status: ${started.statusUrl}\n(follow it with: ops-autopilot runs show ${started.id} --app ...)\n`);
      return EXIT.ok;
    }
    if (options.json !== true) io.stderr(`run ${started.id} of ${runbook} started in the app; following ${started.statusUrl}\n`);
    final = await app.follow(started.statusUrl, { onProgress: progress.onProgress, signal: interrupts.signal, ...(maxWaitMs === undefined ? {} : { maxWaitMs }) });
  } catch (error) {
    progress.done();
    if (interrupts.signal.aborted) {
      io.stderr(
        started === undefined
          ? `stopped; run ${runId} may have started in the app (the request was under way): see ops-autopilot runs show ${runId}\n`
          : `stopped following; run ${started.id} goes on in the app: ${started.statusUrl}\n`,
      );
      return CANCELLED_EXIT_CODE;
    }
    throw error;
  } finally {
    interrupts.dispose();
  }
  progress.done();
  const outcome = final.body.outcome as RunOutcome | undefined;
  const notes = (final.body.record as { notes?: unknown } | undefined)?.notes;
  if (confirmedPlan !== undefined && outcome === 'cancelled' && Array.isArray(notes) && notes.some((note) => typeof note === 'string' && note.includes('declined at the confirmation'))) {
    // The app planned again when it ran, and its plan was not the one confirmed here.
    if (options.json === true) io.stdout(`${JSON.stringify(final.body, null, 2)}\n`);
    io.stderr(`run ${runId}: the app's plan changed between your confirmation and the run (the estate changed meanwhile), so it applied nothing; run runs start ${runbook} again to see the plan as it is now\n`);
    return EXIT.usage;
  }
  if (options.json === true) {
    io.stdout(`${JSON.stringify(final.body, null, 2)}\n`);
  } else if (typeof final.body.record === 'object' && final.body.record !== null && typeof final.body.run === 'object') {
    io.stdout(formatRecord(final.body.record as RunRecord, final.body.run as RunSummaryView, { maxLines: 12 }));
  } else {
    io.stdout(`run ${runId}: ${outcome ?? final.status}: ${typeof final.body.summary === 'string' ? final.body.summary : ''}\n`);
  }
  return outcomeExit(outcome);
}
