/**
 * The journal of a run that may be retried with the same run id (a durable activity runs at
 * least once): every action applied, as it happens, so a retry after a crash
 * - does not apply again what the crashed attempt already applied (the executor asks
 *   {@link RunJournal.earlier} before each action and records the earlier outcome instead), and
 * - still reports it: the retry's record lists actions the crashed attempt applied even when the
 *   fresh plan no longer contains them (a deleted tag is not planned again), via {@link RunJournal.unseen}.
 *
 * Storage: an append blob `journal/<runId>.jsonl` in the run-records container, one JSON line per
 * action, appended in batches (at most every second or every 50 actions, and at the end). A
 * crash can lose the last batch: those actions are then planned again (the runbooks' plans read
 * the current state, and every `apply` is idempotent), so the journal narrows the window in
 * which an action can run twice to the last second; it never widens anything.
 */
import type { AppendBlobClient, ContainerClient } from '@azure/storage-blob';
import { callAzure, ResourceNotFoundError, toAzureError } from '../azure/errors.ts';
import { errorMessage } from '../errors.ts';
import type { ActionRecord } from './run-record.ts';
import { assertNoSecrets } from './secret-guard.ts';

/** Blob-name prefix of journals in the run-records container. */
export const JOURNAL_PREFIX = 'journal';

/** One journaled action. */
export interface JournalEntry {
  readonly targetId: string;
  readonly actionId: string;
  readonly action: ActionRecord;
}

/** What the executor needs of a journal. */
export interface RunJournal {
  /** The outcome an earlier attempt of this run recorded for this action, if any. */
  earlier(targetId: string, actionId: string): JournalEntry | undefined;
  /** Records an action this attempt applied or skipped (buffered; see {@link flush}). */
  record(entry: JournalEntry): void;
  /** Entries of earlier attempts that this attempt did not meet through {@link earlier}. */
  unseen(): readonly JournalEntry[];
  /** Writes what is buffered; returns why it could not, or undefined. Never throws. */
  flush(): Promise<string | undefined>;
}

const FLUSH_EVERY_MS = 1000;
const FLUSH_AT_ENTRIES = 50;
/** An append block holds at most 4 MiB; stay far below. */
const MAX_BLOCK_BYTES = 1024 * 1024;

const keyOf = (targetId: string, actionId: string): string => `${targetId.toLowerCase()}\n${actionId}`;

function isEntry(value: unknown): value is JournalEntry {
  if (value === null || typeof value !== 'object') return false;
  const entry = value as Partial<Record<keyof JournalEntry, unknown>>;
  const action = entry.action as Partial<Record<keyof ActionRecord, unknown>> | undefined;
  return typeof entry.targetId === 'string' && typeof entry.actionId === 'string' && typeof action?.action === 'string' && typeof action.outcome === 'string';
}

/** The blob name of a run's journal. */
export function journalBlobName(runId: string): string {
  if (!/^[0-9a-f-]{36}$/i.test(runId)) throw new RangeError(`expected a uuid run id, found "${runId}"`);
  return `${JOURNAL_PREFIX}/${runId.toLowerCase()}.jsonl`;
}

/**
 * Opens the journal of `runId` in `container`, reading what earlier attempts wrote.
 *
 * @throws a typed Azure error when the journal exists but cannot be read (the caller should not
 * run without knowing what was already applied).
 */
export async function openRunJournal(container: ContainerClient, runId: string): Promise<RunJournal> {
  const blobName = journalBlobName(runId);
  const location = `${container.containerName}/${blobName}`;
  const blob: AppendBlobClient = container.getAppendBlobClient(blobName);
  const earlier = new Map<string, JournalEntry>();
  try {
    const text = (await blob.downloadToBuffer()).toString('utf8');
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue; // A torn line cannot come from an append block; ignore rather than fail the run.
      }
      if (isEntry(parsed)) earlier.set(keyOf(parsed.targetId, parsed.actionId), parsed);
    }
  } catch (error) {
    const typed = toAzureError(error, { resourceId: location, operation: 'read run journal' });
    if (!(typed instanceof ResourceNotFoundError)) throw typed;
  }
  const met = new Set<string>();
  let pending: string[] = [];
  let created = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let flushing: Promise<string | undefined> = Promise.resolve(undefined);

  const write = async (lines: readonly string[]): Promise<void> => {
    if (!created) {
      await callAzure({ resourceId: location, operation: 'create run journal' }, () => blob.createIfNotExists());
      created = true;
    }
    let block = '';
    const append = async (): Promise<void> => {
      if (block === '') return;
      const body = block;
      block = '';
      await callAzure({ resourceId: location, operation: 'append to run journal' }, () => blob.appendBlock(body, Buffer.byteLength(body)));
    };
    for (const line of lines) {
      if (Buffer.byteLength(block) + Buffer.byteLength(line) > MAX_BLOCK_BYTES) await append();
      block += line;
    }
    await append();
  };

  const flush = (): Promise<string | undefined> => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    // One flush at a time, in order.
    flushing = flushing.then(async () => {
      if (pending.length === 0) return undefined;
      const lines = pending;
      pending = [];
      try {
        await write(lines);
        return undefined;
      } catch (error) {
        // Keep them for the next flush.
        pending = [...lines, ...pending];
        return `run journal ${location} not written: ${errorMessage(error)}`;
      }
    });
    return flushing;
  };

  return {
    earlier(targetId, actionId) {
      const key = keyOf(targetId, actionId);
      const entry = earlier.get(key);
      if (entry !== undefined) met.add(key);
      return entry;
    },
    record(entry) {
      assertNoSecrets(entry, `run journal entry of run ${runId}`);
      pending.push(`${JSON.stringify(entry)}\n`);
      if (pending.length >= FLUSH_AT_ENTRIES) void flush();
      else {
        timer ??= setTimeout(() => {
          timer = undefined;
          void flush();
        }, FLUSH_EVERY_MS);
        timer.unref();
      }
    },
    unseen() {
      return [...earlier.entries()].filter(([key]) => !met.has(key)).map(([, entry]) => entry);
    },
    flush,
  };
}
