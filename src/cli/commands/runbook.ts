/**
 * `ops-autopilot plan <runbook>` and `ops-autopilot run <runbook>`: both go through
 * {@link executeRunbook}, the same path as the timers.
 *
 * - `plan` reads Azure and prints. It writes nothing and notifies nobody unless asked
 *   (`--record`, `--notify`), and it reports what an apply would refuse (the deletion cap) with
 *   the exit code the apply would have.
 * - `run` plans, shows the whole plan and asks on a terminal (stdin), then applies through the
 *   dry-run gate. A destructive plan needs `yes` (or the number of deletions) typed out;
 *   anything else declines. Ctrl-C or Ctrl-D at the prompt cancels (exit 130, nothing applied,
 *   nobody notified). With no terminal and no `--yes` it refuses (exit 2) instead of waiting for
 *   an answer that cannot come. With `dryRun: true` in the config nothing is asked and nothing is
 *   applied: the gate keeps the run to a plan, which, like a plan, writes and notifies nothing
 *   unless asked.
 */
import { createAzureClients } from '../../azure/clients.ts';
import { loadConfigFile } from '../../config/load.ts';
import { executeRunbook, type ConfirmAnswer, type ExecuteRunbookResult, type RunExit } from '../../runbooks/execute-runbook.ts';
import { getRunbook, UnknownRunbookError } from '../../runbooks/registry.ts';
import type { ProgressEvent, Runbook, TargetPlan } from '../../runbooks/runbook.ts';
import { jsonLineLogger, memoryLogger } from '../../runs/run-log.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';
import { formatPlans, formatRun, SHOW_EVERYTHING, type RunbookFormatOptions } from '../runbook-format.ts';
import { CANCELLED_EXIT_CODE, processTerminal, type Terminal } from '../terminal.ts';

export { processTerminal, type Terminal } from '../terminal.ts';

/** How much of a plan the human output shows. */
export type ShowLevel = 'changes' | 'all';

/** Options of `plan` and `run`. */
export interface RunbookCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  /** `run` only: apply without asking. */
  readonly yes?: boolean;
  /** Apply (or, for a plan, preview) even when the runbook's guard (e.g. the deletion cap) refuses. */
  readonly force?: boolean;
  /** Only these targets: name, unique end of the id, or full id. */
  readonly target?: readonly string[];
  /** Emit the run record as JSON log lines on stderr. */
  readonly log?: boolean;
  /** Write the run record even for a plan or a dry run. */
  readonly record?: boolean;
  /** Send the configured notifications even for a plan or a dry run. */
  readonly notify?: boolean;
  /** `changes` (default): lists cut to 12 lines, passed checks hidden; `all`: everything. */
  readonly show?: ShowLevel;
}

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
    case 'declined':
      return EXIT.usage;
    case 'cancelled':
      return CANCELLED_EXIT_CODE;
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
      exitCode: exitCodeOf(result.exit),
      summary: result.summary,
      gate: result.gate ?? null,
      refusal: result.refusal ?? null,
      plans: result.plans,
      record: result.record,
      stored: result.stored?.blobName ?? null,
      recordError: result.recordError ?? null,
      selection: result.selection ?? [],
    },
    null,
    2,
  )}\n`;
}

/** What the person must type to apply: `yes`, or for a destructive plan also the number of deletions. */
export function confirmationQuestion(plans: readonly TargetPlan[], estate: string): { text: string; accepts: (answer: string) => boolean } {
  const actions = plans.flatMap((plan) => plan.actions);
  const destructive = actions.filter((action) => action.destructive).length;
  if (destructive === 0) {
    return { text: `Apply ${actions.length} action(s) to estate ${estate}? Type yes to apply: `, accepts: (answer) => /^(y|yes)$/i.test(answer.trim()) };
  }
  return {
    text: `${destructive} of the ${actions.length} action(s) delete or deactivate something in estate ${estate}. Type yes (or ${destructive}) to apply: `,
    accepts: (answer) => answer.trim() === 'yes' || answer.trim() === String(destructive),
  };
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
  // A plan and a dry run are previews: no record, no notification, unless asked. A run that can
  // apply records and notifies like any other trigger.
  const preview = mode === 'plan' || config.dryRun;
  const clients = createAzureClients(config.azure);
  const progress = progressLine(io, terminal);
  const human = options.json !== true;
  const show: RunbookFormatOptions = options.show === 'all' ? { ...SHOW_EVERYTHING, moreHint: '' } : { hideOk: true, moreHint: '(--show all lists them)' };
  const prompt = { asked: false };
  const interrupts = mode === 'run' ? terminal.interrupts(() => { io.stderr('\ncancelling: no further action starts (Ctrl-C again to quit at once)\n'); }) : undefined;
  try {
    const confirm =
      mode === 'run' && options.yes !== true
        ? async (plans: readonly TargetPlan[]): Promise<ConfirmAnswer> => {
            progress.done();
            prompt.asked = true;
            // The whole plan: a person confirms only what they were shown.
            io.stdout(`Plan of ${name} on estate ${config.estate}:\n`);
            io.stdout(formatPlans(plans, plans.map((plan) => ({ targetId: plan.targetId, kind: plan.kind, status: 'succeeded', actions: [], findings: [] })), { ...show, maxActions: Number.POSITIVE_INFINITY }));
            const ask = confirmationQuestion(plans, config.estate);
            const answer = await terminal.ask(ask.text);
            if (answer === undefined) return 'cancelled';
            return ask.accepts(answer);
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
        ...(interrupts === undefined ? {} : { signal: interrupts.signal }),
      },
      {
        trigger: 'cli',
        mode: mode === 'plan' ? 'plan' : 'apply',
        force: options.force === true,
        requestedBy: `cli ${process.env.USER ?? process.env.USERNAME ?? 'user'}`,
        writeRecord: !preview || options.record === true,
        notify: !preview || options.notify === true,
        ...(options.target === undefined || options.target.length === 0 ? {} : { targets: options.target }),
        ...(confirm === undefined ? {} : { confirm }),
      },
    );
    progress.done();
    if (!human) {
      io.stdout(jsonResult(mode, result));
    } else {
      // Refused by the lock or failed before planning (e.g. the lock's store is unreachable):
      // there are no plans to show, and "no targets" would be the wrong reason (the summary says why).
      const notPlanned = result.gate === undefined && result.record.targets.length === 0;
      if (result.gate?.apply === true) {
        io.stdout(`Applied ${name} on estate ${config.estate} (run ${result.record.runId}):\n`);
        io.stdout(formatRun(result, show));
      } else if (!prompt.asked) {
        // After a declined or cancelled prompt the plan is on the screen already.
        io.stdout(`${mode === 'plan' ? 'Plan' : 'Run'} of ${name} on estate ${config.estate} (run ${result.record.runId}):\n`);
        if (!notPlanned) io.stdout(formatPlans(result.plans, result.record.targets, { ...show, runbook: runbook.name, ...(result.selection === undefined ? {} : { selection: result.selection }) }));
      }
      // The summary carries the gate's decision or the refusal: said once.
      io.stdout(`${result.summary}\n`);
      if (result.stored !== undefined) io.stdout(`run record: ${result.stored.container}/${result.stored.blobName}\n`);
    }
    if (result.recordError !== undefined) io.stderr(`error: run record not written: ${result.recordError}\n`);
    return exitCodeOf(result.exit);
  } finally {
    interrupts?.dispose();
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
