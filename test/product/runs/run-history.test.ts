/**
 * Run history (`src/runs/run-history.ts` over the run-record store), against Azurite through the
 * sandbox: summaries come from blob metadata, newest first across runbooks and months; pages
 * chain by cursor without a gap or a repeat; `since` and `runbook` filter; records written before
 * records carried metadata are still listed; the container's lock, journal and id-index folders
 * are not runbooks; a run is found by id through the index, and without it from a hint; bad
 * look-backs, limits and cursors are refused with the reason.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { listRuns, parseLimit, parseSince, RunQueryError, type RunSummaryView } from '../../../src/runs/run-history.ts';
import { createRunRecordStore, runIdPointerName, runRecordDestination } from '../../../src/runs/run-record-store.ts';
import { runRecordBlobName, startRun, type RunRecord } from '../../../src/runs/run-record.ts';
import { useSandbox } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/lms.yaml'], postgres: false });
const SERVER = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-lms';
const NOW = new Date('2026-03-15T12:00:00.000Z');

function record(runbook: string, startedAt: string, shape: 'ok' | 'warn' | 'failed' | 'applied'): RunRecord {
  const run = startRun({ runbook, trigger: 'timer', dryRun: shape !== 'applied', estate: 'lms' });
  const target = run.target(SERVER, 'postgresFlexibleServer');
  if (shape === 'warn') target.finding({ severity: 'warn', code: 'x.warn', message: 'retention 7 days' });
  if (shape === 'failed') target.fail(new Error('server unreadable'));
  if (shape === 'applied') target.action({ action: 'deactivate', outcome: 'applied', message: 'deactivated r1' });
  const finished = run.finish();
  const ended = new Date(new Date(startedAt).getTime() + 4200).toISOString();
  return { ...finished, runId: randomUUID(), startedAt, endedAt: ended, durationMs: 4200 };
}

async function withStore<T>(fn: (store: Awaited<ReturnType<typeof createRunRecordStore>>, config: EstateConfig, clients: ReturnType<typeof createAzureClients>) => Promise<T>): Promise<T> {
  const loaded = await loadConfigFile(sandbox().worlds[0]?.configFile ?? '');
  const config: EstateConfig = { ...loaded, runRecords: { ...loaded.runRecords, container: `history-${randomUUID().slice(0, 8)}` } };
  const clients = createAzureClients(config.azure);
  try {
    return await fn(await createRunRecordStore(config, clients), config, clients);
  } finally {
    await clients.close();
  }
}

describe('run history', () => {
  it('lists newest first across runbooks and months, from metadata, paging by cursor without gaps or repeats; since and runbook filter', async () => {
    await withStore(async (store, config, clients) => {
      const records = [
        record('backup-verify', '2026-01-20T06:00:00.000Z', 'ok'),
        record('backup-verify', '2026-02-10T06:00:00.000Z', 'warn'),
        record('revision-cleanup', '2026-02-11T03:00:00.000Z', 'applied'),
        record('backup-verify', '2026-03-01T06:00:00.000Z', 'failed'),
        record('revision-cleanup', '2026-03-01T06:00:00.000Z', 'applied'),
        record('image-purge', '2026-03-14T04:00:00.000Z', 'ok'),
        record('backup-verify', '2026-03-15T06:00:00.000Z', 'ok'),
      ];
      for (const entry of records) await store.write(entry);
      const container = (await clients.blobServiceClient(runRecordDestination(config))).getContainerClient(config.runRecords.container);
      // A record from before records carried their summary in metadata: still listed (read once).
      const legacy = record('secret-expiry', '2026-03-10T07:00:00.000Z', 'warn');
      const body = JSON.stringify(legacy);
      await container.getBlockBlobClient(runRecordBlobName(legacy)).upload(body, Buffer.byteLength(body));
      // Locks and journals share the container; they are not runs.
      await container.getBlockBlobClient('locks/lms/backup-verify').upload('', 0);
      await container.getBlockBlobClient(`journal/${randomUUID()}.jsonl`).upload('{}', 2);

      const newestFirst = [...records, legacy].sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
      const since = new Date('2026-01-01T00:00:00.000Z');
      const all = await listRuns(store, { since, limit: 50 }, NOW);
      expect(all.runs.map((run) => run.runId)).toEqual(newestFirst.map((entry) => entry.runId));
      expect(all).toMatchObject({ truncated: false });
      expect(all.next).toBeUndefined();
      const byId = new Map(all.runs.map((run) => [run.runId, run]));
      expect(byId.get(records[1]?.runId ?? '')).toMatchObject({ runbook: 'backup-verify', outcome: 'findings', trigger: 'timer', durationMs: 4200, counts: { findingsWarn: 1 } });
      expect(byId.get(records[3]?.runId ?? '')).toMatchObject({ outcome: 'failed', counts: { targetsFailed: 1 } });
      expect(byId.get(records[4]?.runId ?? '')).toMatchObject({ outcome: 'ok', dryRun: false, counts: { applied: 1 } });
      expect(byId.get(legacy.runId)).toMatchObject({ runbook: 'secret-expiry', outcome: 'findings', blobName: runRecordBlobName(legacy) });

      const paged: RunSummaryView[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page += 1) {
        const result = await listRuns(store, { since, limit: 3, ...(cursor === undefined ? {} : { cursor }) }, NOW);
        expect(result.runs.length).toBeLessThanOrEqual(3);
        paged.push(...result.runs);
        cursor = result.next;
        if (cursor === undefined) break;
      }
      expect(paged.map((run) => run.runId)).toEqual(newestFirst.map((entry) => entry.runId));

      const recent = await listRuns(store, { since: new Date('2026-03-01T00:00:00.000Z'), limit: 50 }, NOW);
      expect(recent.runs.map((run) => run.startedAt)).toEqual(['2026-03-15T06:00:00.000Z', '2026-03-14T04:00:00.000Z', '2026-03-10T07:00:00.000Z', '2026-03-01T06:00:00.000Z', '2026-03-01T06:00:00.000Z']);
      const cleanups = await listRuns(store, { since, limit: 50, runbook: 'revision-cleanup' }, NOW);
      expect(cleanups.runs.map((run) => run.runId)).toEqual([records[4]?.runId, records[2]?.runId]);
      expect(await store.runbookPrefixes()).toEqual(['backup-verify', 'image-purge', 'revision-cleanup', 'secret-expiry']);
    });
  });

  it('finds a run by id through the index, and from a hint when its index entry was never written', async () => {
    await withStore(async (store, config, clients) => {
      const entry = record('revision-cleanup', new Date(NOW.getTime() - 2 * 86_400_000).toISOString(), 'applied');
      const stored = await store.write(entry);
      expect(await store.findById(entry.runId.toUpperCase())).toEqual({ record: entry, blobName: stored.blobName });
      const container = (await clients.blobServiceClient(runRecordDestination(config))).getContainerClient(config.runRecords.container);
      await container.getBlockBlobClient(runIdPointerName(entry.runId)).delete();
      expect(await store.findById(entry.runId)).toBeUndefined();
      const hint = { runbook: 'revision-cleanup', from: new Date(NOW.getTime() - 3 * 86_400_000), now: NOW };
      expect(await store.findById(entry.runId, hint)).toEqual({ record: entry, blobName: stored.blobName });
      expect(await store.findById(randomUUID(), hint)).toBeUndefined();
    });
  });

  it('an empty store lists nothing rather than failing', async () => {
    await withStore(async (store) => {
      expect(await listRuns(store, { since: new Date('2026-03-01T00:00:00.000Z'), limit: 5 }, NOW)).toEqual({ runs: [], truncated: false });
    });
  });

  it('refuses bad look-backs, limits and cursors with the reason', async () => {
    expect(parseSince('30m', NOW).toISOString()).toBe('2026-03-15T11:30:00.000Z');
    expect(parseSince('7d', NOW).toISOString()).toBe('2026-03-08T12:00:00.000Z');
    expect(parseSince('2w', NOW).toISOString()).toBe('2026-03-01T12:00:00.000Z');
    expect(parseSince('2026-03-01', NOW).toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(() => parseSince('yesterday', NOW)).toThrow(/since: expected a duration such as 30m, 12h, 7d or 2w, or an ISO 8601 time, found "yesterday"/);
    expect(() => parseSince('400d', NOW)).toThrow(/since: expected at most 366 days back, found "400d"/);
    expect(() => parseSince('2026-13-45', NOW)).toThrow(RunQueryError);
    expect(parseLimit(undefined)).toBe(50);
    for (const bad of ['0', '201', '1.5', 'ten']) expect(() => parseLimit(bad)).toThrow(/limit: expected a whole number from 1 to 200/);
    await withStore(async (store) => {
      await expect(listRuns(store, { since: new Date('2026-03-01T00:00:00.000Z'), limit: 5, cursor: 'not-a-cursor' }, NOW)).rejects.toThrow(/cursor: expected the `next` value of an earlier page/);
    });
  });
});
