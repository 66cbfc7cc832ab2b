/**
 * Run records: what every run of every runbook did, from any trigger.
 *
 * A record names the run (uuid), the runbook, the trigger, whether it was a dry run, the estate,
 * start and end times, and for each target the actions taken with their outcome (`planned`,
 * `applied`, `skipped`, `failed`) and a message. Records are written to blob storage
 * ({@link ./run-record-store.ts}) and emitted as structured logs ({@link ./run-log.ts}).
 *
 * Nothing secret may go into a record: every string passes through the secret guard while the
 * record is built, and {@link RunRecorder.finish} refuses a record that still holds one.
 */
import { randomUUID } from 'node:crypto';
import { AzureOperationError } from '../azure/errors.ts';
import { errorCode, errorMessage } from '../errors.ts';
import { assertNoSecrets, redactSecrets, redactString } from './secret-guard.ts';

/** What started a run. */
export type RunTrigger = 'timer' | 'http' | 'cli' | 'alert' | 'event' | 'orchestration';

/** All triggers, for validation of external input. */
export const RUN_TRIGGERS: readonly RunTrigger[] = ['timer', 'http', 'cli', 'alert', 'event', 'orchestration'];

/** What became of one action. */
export type ActionOutcome = 'planned' | 'applied' | 'skipped' | 'failed';

/**
 * How a run ended.
 * - `succeeded`: every target was processed without error;
 * - `partial`: some targets failed, others succeeded;
 * - `failed`: every target failed, or the run itself failed before or after the targets;
 * - `cancelled`: stopped on request before finishing.
 */
export type RunStatus = 'succeeded' | 'partial' | 'failed' | 'cancelled';

/** How one target ended. */
export type TargetStatus = 'succeeded' | 'failed' | 'skipped';

/**
 * Severity of a finding, as notifications filter on it. `ok` records a check that passed, with
 * its evidence, so a record shows what was verified and not only what went wrong.
 */
export type FindingSeverity = 'ok' | 'info' | 'warn' | 'fail';

/** A scalar detail value; records stay flat and easy to query. */
export type DetailValue = string | number | boolean | null;

/** One action on one target. */
export interface ActionRecord {
  /** Short verb phrase, e.g. `read server`, `deactivate revision`, `delete tag`. */
  readonly action: string;
  readonly outcome: ActionOutcome;
  /** For humans: what was (or would have been) done and why. */
  readonly message: string;
  /** The resource acted on when it is not the target itself (a revision, a tag, a secret). */
  readonly resource?: string;
  /** ISO time the action was recorded. */
  readonly at: string;
  readonly details?: Readonly<Record<string, DetailValue>>;
}

/** The outcome of a check, e.g. a stale backup (fail) or a secret about to expire (warn). */
export interface FindingRecord {
  readonly severity: FindingSeverity;
  /** Stable machine code, e.g. `backup.stale`, `secret.expiring`. */
  readonly code: string;
  readonly message: string;
  readonly resource?: string;
  readonly details?: Readonly<Record<string, DetailValue>>;
}

/** A failure, reduced to what may be recorded: type, message, and the Azure error code. */
export interface ErrorRecord {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly statusCode?: number;
}

/** Everything done for one target. */
export interface TargetRecord {
  /** Full ARM resource ID. */
  readonly targetId: string;
  /** Resource kind, e.g. `postgresFlexibleServer`. */
  readonly kind?: string;
  readonly status: TargetStatus;
  readonly actions: readonly ActionRecord[];
  readonly findings: readonly FindingRecord[];
  readonly error?: ErrorRecord;
  /** What the target was doing when it failed (`plan`, `read containerApp`), with {@link error}. */
  readonly failedDuring?: string;
}

/** Counts over the whole run. */
export interface RunSummary {
  readonly targets: number;
  readonly targetsSucceeded: number;
  readonly targetsFailed: number;
  readonly targetsSkipped: number;
  readonly actions: Readonly<Record<ActionOutcome, number>>;
  /** Counts per severity; `ok` appears only when some check passed (records before it had none). */
  readonly findings: Readonly<Record<Exclude<FindingSeverity, 'ok'>, number>> & { readonly ok?: number };
}

/** What became of one notification of a run (sent after the run's own outcome was decided). */
export interface NotificationRecord {
  /** The webhook's configured name (never its URL, which may carry a key). */
  readonly webhook: string;
  readonly outcome: 'applied' | 'failed';
  /** Why it was sent (`fail`, `warn`, `destructive`) or why it failed. */
  readonly message: string;
  readonly events: readonly ('fail' | 'warn' | 'destructive')[];
}

/** The record of one run. */
export interface RunRecord {
  /** Format version of the record. */
  readonly schemaVersion: 1;
  readonly runId: string;
  readonly runbook: string;
  readonly trigger: RunTrigger;
  readonly dryRun: boolean;
  readonly estate: string;
  /** Who or what asked: a user, an alert rule, an orchestration instance. Never a credential. */
  readonly requestedBy?: string;
  /** Correlation id of the trigger (alert id, orchestration instance id, HTTP request id). */
  readonly correlationId?: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly status: RunStatus;
  readonly targets: readonly TargetRecord[];
  readonly summary: RunSummary;
  /** A failure of the run as a whole (e.g. the configuration could not be read). */
  readonly error?: ErrorRecord;
  /** Run-level remarks: the dry-run gate's decision, the kind of lock held, a refusal. */
  readonly notes?: readonly string[];
  /** Notifications sent about this run; a failed one never changes `status`. */
  readonly notifications?: readonly NotificationRecord[];
}

/** Reduces any thrown value to an {@link ErrorRecord}, with secrets masked. */
export function toErrorRecord(error: unknown): ErrorRecord {
  const name = error instanceof Error ? error.name : 'Error';
  const record: { name: string; message: string; code?: string; statusCode?: number } = {
    name,
    message: redactString(errorMessage(error)),
  };
  const code = errorCode(error);
  if (code !== undefined) record.code = code;
  // The typed errors of the client layer carry the HTTP status (undefined without a response).
  if (error instanceof AzureOperationError && error.statusCode !== undefined) record.statusCode = error.statusCode;
  return record;
}

/** Options of {@link startRun}: the fields the record takes from its start, plus the id and clock. */
export interface StartRunOptions extends Pick<RunRecord, 'runbook' | 'trigger' | 'dryRun' | 'estate' | 'requestedBy' | 'correlationId'> {
  /** Defaults to a new random uuid. */
  readonly runId?: string;
  /** Clock; defaults to the system clock. Tests and the sandbox inject their own. */
  readonly now?: () => Date;
}

/** Input of {@link TargetRecorder.action}. */
export interface ActionInput {
  readonly action: string;
  readonly outcome: ActionOutcome;
  readonly message: string;
  readonly resource?: string;
  readonly details?: Readonly<Record<string, DetailValue>>;
}

/** Records what happens to one target during a run. */
export class TargetRecorder {
  private readonly actions: ActionRecord[] = [];
  private readonly findings: FindingRecord[] = [];
  private error: ErrorRecord | undefined;
  private failedDuring: string | undefined;
  private skippedReason: string | undefined;

  /** @internal Created by {@link RunRecorder.target}. */
  constructor(
    readonly targetId: string,
    readonly kind: string | undefined,
    private readonly now: () => Date,
  ) {}

  /** Records an action; strings and details pass through the secret guard. */
  action(input: ActionInput): this {
    const record: ActionRecord = {
      action: redactString(input.action),
      outcome: input.outcome,
      message: redactString(input.message),
      at: this.now().toISOString(),
      ...(input.resource === undefined ? {} : { resource: redactString(input.resource) }),
      ...(input.details === undefined ? {} : { details: redactSecrets(input.details) }),
    };
    this.actions.push(record);
    return this;
  }

  /** Records a read-only observation (outcome `applied`: the read happened). */
  read(action: string, message: string, details?: Readonly<Record<string, DetailValue>>): this {
    return this.action({ action, outcome: 'applied', message, ...(details === undefined ? {} : { details }) });
  }

  /** Records a finding. */
  finding(input: FindingRecord): this {
    this.findings.push(redactSecrets(input));
    return this;
  }

  /**
   * Marks the target failed; the error's message is masked, its type and code kept. A failed
   * target is counted as one (`summary.targetsFailed`), not as a failed action: no action
   * record is added, `during` says what it was doing.
   */
  fail(error: unknown, during = 'process target'): this {
    this.error = toErrorRecord(error);
    this.failedDuring = during;
    return this;
  }

  /** Marks the target skipped (e.g. not applicable, locked), with the reason as an action. */
  skip(reason: string): this {
    this.skippedReason = reason;
    this.action({ action: 'skip target', outcome: 'skipped', message: reason });
    return this;
  }

  /** @internal */
  toRecord(): TargetRecord {
    const status: TargetStatus =
      this.error !== undefined || this.actions.some((action) => action.outcome === 'failed')
        ? 'failed'
        : this.skippedReason !== undefined
          ? 'skipped'
          : 'succeeded';
    return {
      targetId: this.targetId,
      ...(this.kind === undefined ? {} : { kind: this.kind }),
      status,
      actions: [...this.actions],
      findings: [...this.findings],
      ...(this.error === undefined ? {} : { error: this.error }),
      ...(this.failedDuring === undefined ? {} : { failedDuring: this.failedDuring }),
    };
  }
}

/** Builds one run record. Create with {@link startRun}. */
export class RunRecorder {
  readonly runId: string;
  readonly startedAt: Date;
  private readonly targets = new Map<string, TargetRecorder>();
  private readonly now: () => Date;
  private finished: RunRecord | undefined;

  /** @internal Use {@link startRun}. */
  constructor(private readonly options: StartRunOptions) {
    this.now = options.now ?? (() => new Date());
    this.runId = options.runId ?? randomUUID();
    this.startedAt = this.now();
  }

  /** The recorder of a target, created on first use (one per target ID, case-insensitively). */
  target(targetId: string, kind?: string): TargetRecorder {
    const key = targetId.toLowerCase();
    let recorder = this.targets.get(key);
    if (recorder === undefined) {
      recorder = new TargetRecorder(targetId, kind, this.now);
      this.targets.set(key, recorder);
    }
    return recorder;
  }

  /**
   * Ends the run and returns the record. Calling it again returns the same record.
   *
   * @throws {@link ./secret-guard.ts#SecretLeakError} when the record still holds a secret
   * (a secret-named detail field slipped past the guard); the record is then not produced.
   */
  finish(options: { error?: unknown; cancelled?: boolean; notes?: readonly string[] } = {}): RunRecord {
    if (this.finished !== undefined) return this.finished;
    const endedAt = this.now();
    const targets = [...this.targets.values()].map((target) => target.toRecord());
    const summary = summarise(targets);
    let status: RunStatus;
    if (options.cancelled === true) status = 'cancelled';
    else if (options.error !== undefined) status = 'failed';
    else if (summary.targetsFailed === 0) status = 'succeeded';
    else if (summary.targetsFailed === summary.targets) status = 'failed';
    else status = 'partial';
    const record: RunRecord = {
      schemaVersion: 1,
      runId: this.runId,
      runbook: this.options.runbook,
      trigger: this.options.trigger,
      dryRun: this.options.dryRun,
      estate: this.options.estate,
      ...(this.options.requestedBy === undefined ? {} : { requestedBy: redactString(this.options.requestedBy) }),
      ...(this.options.correlationId === undefined ? {} : { correlationId: this.options.correlationId }),
      startedAt: this.startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      durationMs: Math.max(0, endedAt.getTime() - this.startedAt.getTime()),
      status,
      targets,
      summary,
      ...(options.error === undefined ? {} : { error: toErrorRecord(options.error) }),
      ...(options.notes === undefined || options.notes.length === 0 ? {} : { notes: options.notes.map(redactString) }),
    };
    assertNoSecrets(record, `run record ${this.runId}`);
    this.finished = record;
    return record;
  }
}

/** Starts recording a run. */
export function startRun(options: StartRunOptions): RunRecorder {
  return new RunRecorder(options);
}

function summarise(targets: readonly TargetRecord[]): RunSummary {
  const actions: Record<ActionOutcome, number> = { planned: 0, applied: 0, skipped: 0, failed: 0 };
  const findings: Record<Exclude<FindingSeverity, 'ok'>, number> = { info: 0, warn: 0, fail: 0 };
  let ok = 0;
  for (const target of targets) {
    for (const action of target.actions) actions[action.outcome] += 1;
    for (const finding of target.findings) {
      if (finding.severity === 'ok') ok += 1;
      else findings[finding.severity] += 1;
    }
  }
  return {
    targets: targets.length,
    targetsSucceeded: targets.filter((target) => target.status === 'succeeded').length,
    targetsFailed: targets.filter((target) => target.status === 'failed').length,
    targetsSkipped: targets.filter((target) => target.status === 'skipped').length,
    actions,
    findings: ok === 0 ? findings : { ...findings, ok },
  };
}

/** The blob name of a record: `<runbook>/<yyyy>/<mm>/<dd>/<runId>.json`, dated by its UTC start. */
export function runRecordBlobName(record: Pick<RunRecord, 'runbook' | 'startedAt' | 'runId'>): string {
  const started = new Date(record.startedAt);
  if (Number.isNaN(started.getTime())) throw new RangeError(`run ${record.runId}: expected an ISO startedAt, found "${record.startedAt}"`);
  const yyyy = String(started.getUTCFullYear()).padStart(4, '0');
  const mm = String(started.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(started.getUTCDate()).padStart(2, '0');
  if (!/^[a-z0-9][a-z0-9-]*$/.test(record.runbook)) {
    throw new RangeError(`run ${record.runId}: expected a runbook name of lower-case letters, digits and dashes, found "${record.runbook}"`);
  }
  if (!/^[0-9a-f-]{36}$/i.test(record.runId)) throw new RangeError(`expected a uuid run id, found "${record.runId}"`);
  return `${record.runbook}/${yyyy}/${mm}/${dd}/${record.runId}.json`;
}
