/**
 * A manual run requested over HTTP (`POST /api/runs/{runbook}` with `mode: apply`), as the
 * durable activity `runbookRunActivity` performs it: once per run id, through the one executor.
 *
 * The activity runs at least once (a crash of the worker re-runs it), so it must be idempotent,
 * and the run id is what makes it so:
 * - the run record is keyed by the run id and written once: if it exists, the run finished
 *   (the crash came after the record), and its outcome is returned without running again;
 * - the locks' lease ids derive from the run id, so a retry re-enters the run lock and the
 *   resource locks its crashed attempt still held, instead of being refused by itself;
 * - the run journal (`journal/<runId>.jsonl`) lists what the crashed attempt applied, and the
 *   executor does not apply it again (and still reports it).
 *
 * Nothing here imports `@azure/functions` or `durable-functions`.
 */
import type { AzureClients } from '../azure/clients.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { summariseRecord, type RunOutcome, type RunSummaryView } from '../runs/run-history.ts';
import { openRunJournal } from '../runs/run-journal.ts';
import type { RunLogger } from '../runs/run-log.ts';
import { createRunRecordStore, runRecordDestination } from '../runs/run-record-store.ts';
import { assertNoSecrets } from '../runs/secret-guard.ts';
import { executeRunbook, RunbookTargetError } from './execute-runbook.ts';
import { planDigest } from './plan-digest.ts';
import { getRunbook } from './registry.ts';
import type { TargetPlan } from './runbook.ts';

/** The input of the orchestration and its activity: references and choices only, no secrets. */
export interface ManualRunInput {
  /** The run id: also the orchestration instance id and the record's id. */
  readonly runId: string;
  readonly runbook: string;
  /** Full target ids, as the starter resolved them; absent = every target of the runbook. */
  readonly targets?: readonly string[];
  readonly force: boolean;
  readonly requestedBy: string;
  /** The HTTP request's invocation id. */
  readonly correlationId: string;
  /** When the run was requested (ISO); the record is looked for from that day on. */
  readonly requestedAt: string;
  /** The {@link planDigest} a person confirmed: only a plan with this digest is applied. */
  readonly confirmedPlan?: string;
}

/** What the orchestration returns: the outcome of the run, and where its record is. */
export interface ManualRunOutput {
  readonly runId: string;
  readonly runbook: string;
  readonly outcome: RunOutcome;
  /** One line for people (the executor's summary). */
  readonly summary: string;
  /** The record's summary, when a record exists (always, unless the estate has no run-record store). */
  readonly run?: RunSummaryView;
  /** True when an earlier attempt had finished the run and nothing ran again. */
  readonly alreadyRecorded: boolean;
  /** Why the record could not be written, when it could not. */
  readonly recordError?: string;
  /** True when the plan at apply time was not the confirmed one, so nothing was applied. */
  readonly planChanged?: boolean;
}

/** What the activity is given (from the client layer), so tests can pass their own. */
export interface ManualRunDependencies {
  readonly config: EstateConfig;
  readonly clients: AzureClients;
  readonly logger: RunLogger;
  readonly now: () => Date;
}

function hasStore(config: EstateConfig): boolean {
  return config.runRecords.blobServiceUrl !== undefined || config.runRecords.storageAccountId !== undefined;
}

/**
 * Runs `input.runbook` in apply mode (the dry-run gate decides what is applied), once per run
 * id; see the module comment.
 *
 * @throws typed Azure errors when the run-record store cannot be read (the durable retry then
 * tries again later; nothing was applied).
 */
export async function runManualRun(input: ManualRunInput, deps: ManualRunDependencies): Promise<ManualRunOutput> {
  const runbook = getRunbook(input.runbook);
  const { config, clients } = deps;
  const store = hasStore(config) ? await createRunRecordStore(config, clients) : undefined;
  const hint = { runbook: runbook.name, from: new Date(input.requestedAt), now: deps.now() };
  const existing = await store?.findById(input.runId, hint);
  if (existing !== undefined) {
    const run = summariseRecord(existing.record, existing.blobName);
    return { runId: input.runId, runbook: runbook.name, outcome: run.outcome, summary: `${runbook.name} on ${config.estate}: ${run.outcome} (recorded by an earlier attempt of this run)`, run, alreadyRecorded: true };
  }
  let journal;
  if (store !== undefined) {
    const service = await clients.blobServiceClient(runRecordDestination(config));
    journal = await openRunJournal(service.getContainerClient(config.runRecords.container), input.runId);
  }
  const gate = { planChanged: false };
  // A person confirmed one plan; the state may have moved since. Anything else is declined.
  const confirm =
    input.confirmedPlan === undefined
      ? undefined
      : (plans: readonly TargetPlan[]): Promise<boolean> => {
          gate.planChanged = planDigest(plans) !== input.confirmedPlan;
          return Promise.resolve(!gate.planChanged);
        };
  let result;
  try {
    result = await executeRunbook(runbook, { config, clients, logger: deps.logger, now: deps.now }, {
      trigger: 'http',
      mode: 'apply',
      force: input.force,
      runId: input.runId,
      requestedBy: input.requestedBy,
      correlationId: input.correlationId,
      ...(input.targets === undefined ? {} : { targets: input.targets }),
      ...(journal === undefined ? {} : { journal }),
      ...(confirm === undefined ? {} : { confirm }),
    });
  } catch (error) {
    // The starter checked the targets; the config changed since. Retrying would not help.
    if (!(error instanceof RunbookTargetError)) throw error;
    return { runId: input.runId, runbook: runbook.name, outcome: 'failed', summary: errorMessage(error), alreadyRecorded: false };
  }
  if (result.stored === undefined && store !== undefined) {
    // Another attempt of this run (a worker thought dead) wrote the record first: that one stands.
    const raced = await store.findById(input.runId, hint);
    if (raced !== undefined) {
      const run = summariseRecord(raced.record, raced.blobName);
      return { runId: input.runId, runbook: runbook.name, outcome: run.outcome, summary: `${runbook.name} on ${config.estate}: ${run.outcome} (recorded by another attempt of this run)`, run, alreadyRecorded: true };
    }
  }
  // The same reading of the record as every listing, so the status route and `runs list` agree.
  const run = summariseRecord(result.record, result.stored?.blobName ?? '');
  const output: ManualRunOutput = {
    runId: input.runId,
    runbook: runbook.name,
    outcome: run.outcome,
    summary: gate.planChanged ? `${result.summary}; the plan changed since it was confirmed, so nothing was applied` : result.summary,
    alreadyRecorded: false,
    ...(gate.planChanged ? { planChanged: true } : {}),
    ...(result.stored === undefined ? {} : { run }),
    ...(result.recordError === undefined ? {} : { recordError: result.recordError }),
  };
  // The output goes into the orchestration's history, which the extension persists.
  assertNoSecrets(output, `output of run ${input.runId}`);
  return output;
}
