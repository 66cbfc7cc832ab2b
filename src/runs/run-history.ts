/**
 * Past runs, as `GET /api/runs`, `GET /api/runs/{runId}` and `ops-autopilot runs list|show` show
 * them: one summary per run ({@link RunSummaryView}), newest first, read from the run-record
 * store. One implementation for the HTTP routes and the CLI, so they cannot disagree.
 *
 * Listing is bounded: it walks month folders (`<runbook>/<yyyy>/<mm>/`) from the newest back
 * to `since`, reads summaries from blob metadata (no record is downloaded, except at most
 * {@link MAX_LEGACY_READS} records written before records carried their summary), stops once a
 * page is full, and looks at no more than {@link MAX_SCANNED} blobs per request; a page that
 * stopped early says so and carries the cursor to continue from.
 */
import { OpsAutopilotError } from '../errors.ts';
import type { RunRecord } from './run-record.ts';
import type { ListedRecord, RunRecordStore } from './run-record-store.ts';

/** Default look-back of a listing. */
export const DEFAULT_SINCE = '7d';
/** Longest look-back a listing accepts, in days. */
export const MAX_SINCE_DAYS = 366;
/** Default and largest page. */
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;
/** Blobs one listing request looks at, at most. */
export const MAX_SCANNED = 5000;
/** Records without summary metadata downloaded per request, at most. */
export const MAX_LEGACY_READS = 50;

/**
 * How a run ended, for people and exit codes: `ok`, `findings` (warn or fail checks),
 * `failed` (a target, an action or the run failed), `refused` (the lock was held or the
 * runbook's guard refused the plan), `cancelled`.
 */
export type RunOutcome = 'ok' | 'findings' | 'failed' | 'refused' | 'cancelled';

/** One run in a listing. */
export interface RunSummaryView {
  readonly runId: string;
  readonly runbook: string;
  readonly estate: string;
  /** A run trigger (`timer`, `http`, ...); a string, since records are read back from storage. */
  readonly trigger: string;
  /** A run status (`succeeded`, `partial`, `failed`, `cancelled`). */
  readonly status: string;
  readonly outcome: RunOutcome;
  /** True when nothing was applied (a plan, a dry run, a refusal). */
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly counts: {
    readonly targets: number;
    readonly targetsFailed: number;
    readonly targetsSkipped: number;
    readonly applied: number;
    readonly skipped: number;
    readonly failed: number;
    readonly planned: number;
    readonly findingsWarn: number;
    readonly findingsFail: number;
  };
  /** The record's blob in the run-record container. */
  readonly blobName: string;
}

/** What a listing asks for. */
export interface RunListQuery {
  /** Only this runbook (any name the store holds, e.g. `inventory`). */
  readonly runbook?: string;
  /** Runs started at or after this time. */
  readonly since: Date;
  /** Page size (1..{@link MAX_LIMIT}). */
  readonly limit: number;
  /** Continue after this cursor ({@link RunListPage.next}). */
  readonly cursor?: string;
}

/** One page of a listing. */
export interface RunListPage {
  /** Newest first. */
  readonly runs: readonly RunSummaryView[];
  /** Pass as `cursor` for the next (older) page; absent when there is none. */
  readonly next?: string;
  /** True when the request stopped at {@link MAX_SCANNED} blobs before filling the page. */
  readonly truncated: boolean;
}

/** A listing request that cannot be answered as asked (bad `since`, `limit` or cursor). */
export class RunQueryError extends OpsAutopilotError {
  override readonly name: string = 'RunQueryError';
}

/** Names of the error a refused run records ({@link RunOutcome} `refused`). */
const REFUSAL_ERRORS = new Set(['RunLockHeldError', 'RunRefusedError']);

function outcomeOf(status: string, error: string | undefined, counts: RunSummaryView['counts']): RunOutcome {
  if (error !== undefined && REFUSAL_ERRORS.has(error)) return 'refused';
  if (status === 'cancelled') return 'cancelled';
  if (status !== 'succeeded' || counts.targetsFailed > 0 || counts.failed > 0 || error !== undefined) return 'failed';
  return counts.findingsWarn + counts.findingsFail > 0 ? 'findings' : 'ok';
}

/** The summary of a full record. */
export function summariseRecord(record: RunRecord, blobName: string): RunSummaryView {
  const { summary } = record;
  const counts = {
    targets: summary.targets,
    targetsFailed: summary.targetsFailed,
    targetsSkipped: summary.targetsSkipped,
    applied: summary.actions.applied,
    skipped: summary.actions.skipped,
    failed: summary.actions.failed,
    planned: summary.actions.planned,
    findingsWarn: summary.findings.warn,
    findingsFail: summary.findings.fail,
  };
  return {
    runId: record.runId,
    runbook: record.runbook,
    estate: record.estate,
    trigger: record.trigger,
    status: record.status,
    outcome: outcomeOf(record.status, record.error?.name, counts),
    dryRun: record.dryRun,
    startedAt: record.startedAt,
    endedAt: record.endedAt,
    durationMs: record.durationMs,
    counts,
    blobName,
  };
}

/** The summary of a listed record from its metadata, or undefined when it has none. */
function summariseListed(item: ListedRecord): RunSummaryView | undefined {
  const m = item.metadata;
  const startedAt = m.startedat;
  const runId = m.runid;
  if (startedAt === undefined || runId === undefined || m.status === undefined) return undefined;
  const count = (key: string): number => {
    const value = Number(m[key] ?? '0');
    return Number.isFinite(value) ? value : 0;
  };
  const counts = {
    targets: count('targets'),
    targetsFailed: count('targetsfailed'),
    targetsSkipped: count('targetsskipped'),
    applied: count('applied'),
    skipped: count('skipped'),
    failed: count('failed'),
    planned: count('planned'),
    findingsWarn: count('findingswarn'),
    findingsFail: count('findingsfail'),
  };
  return {
    runId,
    runbook: m.runbook ?? item.blobName.split('/')[0] ?? '',
    estate: m.estate ?? '',
    trigger: m.trigger ?? 'unknown',
    status: m.status,
    outcome: outcomeOf(m.status, m.error, counts),
    dryRun: m.dryrun === 'true',
    startedAt,
    endedAt: m.endedat ?? startedAt,
    durationMs: count('durationms'),
    counts,
    blobName: item.blobName,
  };
}

/**
 * Parses a look-back: `30m`, `12h`, `7d`, `2w`, or an ISO 8601 time.
 *
 * @throws {@link RunQueryError} for anything else, or a look-back beyond {@link MAX_SINCE_DAYS} days.
 */
export function parseSince(text: string, now: Date = new Date()): Date {
  const relative = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  let since: Date;
  if (relative !== null) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[relative[2] as 'm' | 'h' | 'd' | 'w'];
    since = new Date(now.getTime() - Number(relative[1]) * unit);
  } else if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(text.trim())) {
    since = new Date(text.trim());
    if (Number.isNaN(since.getTime())) throw new RunQueryError(`since: expected a valid date, found "${text}"`, { context: { since: text } });
  } else {
    throw new RunQueryError(`since: expected a duration such as 30m, 12h, 7d or 2w, or an ISO 8601 time, found "${text}"`, { context: { since: text } });
  }
  if (now.getTime() - since.getTime() > MAX_SINCE_DAYS * 86_400_000) {
    throw new RunQueryError(`since: expected at most ${String(MAX_SINCE_DAYS)} days back, found "${text}"`, { context: { since: text } });
  }
  return since;
}

/**
 * Parses a page size.
 *
 * @throws {@link RunQueryError} unless a whole number 1..{@link MAX_LIMIT}.
 */
export function parseLimit(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_LIMIT;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new RunQueryError(`limit: expected a whole number from 1 to ${String(MAX_LIMIT)}, found "${text}"`, { context: { limit: text } });
  }
  return limit;
}

/** Cursor: the start time and run id of the last run of the page, base64url. */
function encodeCursor(view: RunSummaryView): string {
  return Buffer.from(`${view.startedAt}|${view.runId}`).toString('base64url');
}

function decodeCursor(cursor: string): { startedAt: string; runId: string } {
  const [startedAt, runId, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (startedAt === undefined || runId === undefined || rest.length > 0 || Number.isNaN(new Date(startedAt).getTime()) || !/^[0-9a-f-]{36}$/i.test(runId)) {
    throw new RunQueryError('cursor: expected the `next` value of an earlier page, found something else', { context: {} });
  }
  return { startedAt, runId };
}

/** Newest first; ties broken by run id, so the cursor order is total. */
function newerFirst(a: RunSummaryView, b: RunSummaryView): number {
  return b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId);
}

function monthsBack(from: Date, to: Date): string[] {
  const months: string[] = [];
  let year = from.getUTCFullYear();
  let month = from.getUTCMonth();
  const stop = to.getUTCFullYear() * 12 + to.getUTCMonth();
  while (year * 12 + month >= stop) {
    months.push(`${String(year).padStart(4, '0')}/${String(month + 1).padStart(2, '0')}`);
    month -= 1;
    if (month < 0) {
      month = 11;
      year -= 1;
    }
  }
  return months;
}

/**
 * One page of runs, newest first.
 *
 * @throws {@link RunQueryError} for a bad cursor; typed Azure errors when the store cannot be read.
 */
export async function listRuns(store: RunRecordStore, query: RunListQuery, now: Date = new Date()): Promise<RunListPage> {
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const newest = after === undefined ? now : new Date(after.startedAt);
  const runbooks = query.runbook === undefined ? await store.runbookPrefixes() : [query.runbook];
  const isOlderThanCursor = (view: RunSummaryView): boolean =>
    after === undefined || view.startedAt < after.startedAt || (view.startedAt === after.startedAt && view.runId < after.runId);
  const found: RunSummaryView[] = [];
  let scanned = 0;
  let legacyReads = 0;
  let truncated = false;
  for (const month of monthsBack(newest, query.since)) {
    for (const runbook of runbooks) {
      const budget = MAX_SCANNED - scanned;
      if (budget <= 0) {
        truncated = true;
        break;
      }
      const { items, truncated: cut } = await store.listRecords(`${runbook}/${month}/`, budget);
      scanned += items.length;
      if (cut) truncated = true;
      for (const item of items) {
        let view = summariseListed(item);
        if (view === undefined && legacyReads < MAX_LEGACY_READS) {
          legacyReads += 1;
          view = summariseRecord(await store.read(item.blobName), item.blobName);
        }
        if (view === undefined) continue;
        if (new Date(view.startedAt).getTime() < query.since.getTime() || !isOlderThanCursor(view)) continue;
        found.push(view);
      }
    }
    // A month is complete once read: with a full page, older months cannot come first.
    if (truncated || found.length >= query.limit) break;
  }
  found.sort(newerFirst);
  const runs = found.slice(0, query.limit);
  const last = runs.at(-1);
  const more = found.length > query.limit || truncated;
  return { runs, truncated, ...(more && last !== undefined ? { next: encodeCursor(last) } : {}) };
}
