/**
 * `ops-autopilot plan <runbook>` and `ops-autopilot run <runbook>`: both go through
 * {@link executeRunbook}, the same path as the timers.
 *
 * - `plan` is always read-only: it prints the checks, actions and kept items of every target.
 * - `run` plans, then applies through the dry-run gate. Without `--yes` it shows the plan and
 *   asks on a terminal; with no terminal and no `--yes` it refuses (exit 2) instead of waiting
 *   for an answer that cannot come. With `dryRun: true` in the config nothing is asked and
 *   nothing is applied: the gate keeps the run to a plan and says so.
 *
 * Exit codes: 0 ok, 3 findings (warn/fail checks), 1 failure, 2 usage or refused.
 */
import { createInterface } from 'node:readline/promises';
import { createAzureClients } from '../../azure/clients.ts';
import { loadConfigFile } from '../../config/load.ts';
import { executeRunbook, type ExecuteRunbookResult, type RunExit } from '../../runbooks/execute-runbook.ts';
import { getRunbook, UnknownRunbookError } from '../../runbooks/registry.ts';
import type { ProgressEvent, Runbook, TargetPlan } from '../../runbooks/runbook.ts';
import { jsonLineLogger, memoryLogger } from '../../runs/run-log.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';
import { formatApplied, formatPlans } from '../runbook-format.ts';

/** Options of `plan` and `run`. */
export interface RunbookCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  /** `run` only: apply without asking. */
  readonly yes?: boolean;
  /** `run` only: apply even when the runbook's guard (e.g. the deletion cap) refuses. */
  readonly force?: boolean;
  /** Only these target ids. */
  readonly target?: readonly string[];
  /** Emit the run record as JSON log lines on stderr. */
  readonly log?: boolean;
}

/** The terminal, injectable for tests. */
export interface Terminal {
  /** Whether stdin and stdout are a terminal a person can answer on. */
  readonly interactive: boolean;
  /** Whether stderr is a terminal (progress is shown only then). */
  readonly progress: boolean;
  ask(question: string): Promise<string>;
}

/** The process's terminal. */
export const processTerminal: Terminal = {
  interactive: process.stdin.isTTY && process.stdout.isTTY,
  progress: process.stderr.isTTY,
  async ask(question) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  },
};

/** Exit code of a run. */
export function exitCodeOf(exit: RunExit): number {
  switch (exit) {
    case 'ok':
      return EXIT.ok;
    case 'findings':
      return EXIT.findings;
    case 'failed':
      return EXIT.failure;
    case 'refused':
      return EXIT.usage;
  }
}

function resolveRunbook(name: string): Runbook {
  try {
    return getRunbook(name);
  } catch (error) {
    if (error instanceof UnknownRunbookError) throw new CliExit(EXIT.usage, `error: ${error.message}`);
    throw error;
  }
}

/** Draws `plan 3/5` / `apply 120/400` on one stderr line, only on a terminal. */
function progressLine(io: CliIo, terminal: Terminal): { report: (event: ProgressEvent) => void; done: () => void } {
  let shown = false;
  return {
    report(event) {
      if (!terminal.progress) return;
      shown = true;
      io.stderr(`\r\x1b[2K${event.phase} ${event.done}/${event.total} (${event.targetId.split('/').at(-1) ?? ''})`);
    },
    done() {
      if (shown) io.stderr('\r\x1b[2K');
      shown = false;
    },
  };
}

function jsonResult(mode: 'plan' | 'run', result: ExecuteRunbookResult): string {
  return `${JSON.stringify(
    {
      mode,
      runbook: result.record.runbook,
      estate: result.record.estate,
      exit: result.exit,
      summary: result.summary,
      gate: result.gate ?? null,
      refusal: result.refusal ?? null,
      plans: result.plans,
      record: result.record,
      stored: result.stored?.blobName ?? null,
      recordError: result.recordError ?? null,
    },
    null,
    2,
  )}\n`;
}

async function execute(
  mode: 'plan' | 'run',
  name: string,
  options: RunbookCommandOptions,
  io: CliIo,
  terminal: Terminal,
): Promise<number> {
  const runbook = resolveRunbook(name);
  const config = await loadConfigFile(options.config);
  if (mode === 'run' && options.yes !== true && !config.dryRun && !terminal.interactive) {
    throw new CliExit(
      EXIT.usage,
      `error: run ${name}: expected --yes or an interactive terminal to confirm the plan, found neither (stdin is not a TTY); nothing was planned or applied`,
    );
  }
  const clients = createAzureClients(config.azure);
  const progress = progressLine(io, terminal);
  const human = options.json !== true;
  try {
    const confirm =
      mode === 'run' && options.yes !== true
        ? async (plans: readonly TargetPlan[]): Promise<boolean> => {
            progress.done();
            const count = plans.reduce((total, plan) => total + plan.actions.length, 0);
            io.stdout(`Plan of ${name} on estate ${config.estate}:\n`);
            io.stdout(formatPlans(plans, plans.map((plan) => ({ targetId: plan.targetId, kind: plan.kind, status: 'succeeded', actions: [], findings: [] })), { hideOk: true }));
            const answer = await terminal.ask(`Apply ${count} action(s) to estate ${config.estate}? [y/N] `);
            return /^y(es)?$/i.test(answer.trim());
          }
        : undefined;
    const result = await executeRunbook(
      runbook,
      {
        config,
        clients,
        logger: options.log === true ? jsonLineLogger(io.stderr) : memoryLogger(),
        now: () => new Date(),
        progress: progress.report,
      },
      {
        trigger: 'cli',
        mode: mode === 'plan' ? 'plan' : 'apply',
        force: options.force === true,
        requestedBy: `cli ${process.env.USER ?? process.env.USERNAME ?? 'user'}`,
        ...(options.target === undefined || options.target.length === 0 ? {} : { targets: options.target }),
        ...(confirm === undefined ? {} : { confirm }),
      },
    );
    progress.done();
    if (!human) {
      io.stdout(jsonResult(mode, result));
    } else {
      if (mode === 'plan' || result.gate?.apply !== true) {
        io.stdout(`${mode === 'plan' ? 'Plan' : 'Run'} of ${name} on estate ${config.estate} (run ${result.record.runId}):\n`);
        io.stdout(formatPlans(result.plans, result.record.targets, { hideOk: true }));
      } else {
        io.stdout(`Applied ${name} on estate ${config.estate} (run ${result.record.runId}):\n`);
        io.stdout(formatApplied(result));
      }
      if (mode === 'run' && result.gate?.apply !== true) {
        io.stdout(`nothing applied: ${result.refusal === undefined ? (result.gate?.reason ?? '') : `refused: ${result.refusal.message}`}\n`);
      }
      io.stdout(`${result.summary}\n`);
      if (result.stored !== undefined) io.stdout(`run record: ${result.stored.container}/${result.stored.blobName}\n`);
    }
    if (result.refusal !== undefined) io.stderr(`refused: ${result.refusal.message}\n`);
    if (result.recordError !== undefined) io.stderr(`error: run record not written: ${result.recordError}\n`);
    return exitCodeOf(result.exit);
  } finally {
    progress.done();
    await clients.close();
  }
}

/** `plan <runbook>`: read-only. Returns the exit code. */
export function planCommand(name: string, options: RunbookCommandOptions, io: CliIo, terminal: Terminal = processTerminal): Promise<number> {
  return execute('plan', name, options, io, terminal);
}

/** `run <runbook>`: plan, confirm, apply through the gate. Returns the exit code. */
export function runCommand(name: string, options: RunbookCommandOptions, io: CliIo, terminal: Terminal = processTerminal): Promise<number> {
  return execute('run', name, options, io, terminal);
}
