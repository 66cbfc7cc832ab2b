/**
 * Persistence of run records in blob storage: container `autopilot-runs` (configurable), blob
 * `<runbook>/<yyyy>/<mm>/<dd>/<runId>.json`. A record is written once and never overwritten,
 * so the history cannot be rewritten by a later run with the same id.
 *
 * Beside each record: its summary in the blob's metadata (so a listing needs no download; see
 * {@link recordMetadata}) and a pointer `by-id/<runId>.json` naming its blob, so a run is found
 * by id alone ({@link RunRecordStore.findById}). The container's other top-level folders
 * (`locks/`, `journal/`, `by-id/`) are not runbooks ({@link RESERVED_PREFIXES}).
 */
import type { BlobItem, BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceConflictError, ResourceNotFoundError, toAzureError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { EstateConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { runRecordBlobName, type RunRecord } from './run-record.ts';
import { assertNoSecrets } from './secret-guard.ts';

/** Default container of run records. */
export const RUN_RECORD_CONTAINER = 'autopilot-runs';

/** Top-level folders of the container that hold no records: locks, run journals, the id index. */
export const RESERVED_PREFIXES: readonly string[] = ['locks', 'journal', 'by-id'];

/** The blob of the id index entry of a run. */
export function runIdPointerName(runId: string): string {
  if (!/^[0-9a-f-]{36}$/i.test(runId)) throw new RangeError(`expected a uuid run id, found "${runId}"`);
  return `by-id/${runId.toLowerCase()}.json`;
}

/**
 * The summary of a record kept in its blob's metadata (lower-case keys, string values, as blob
 * metadata must be), so listing runs reads no record.
 */
export function recordMetadata(record: RunRecord): Record<string, string> {
  const { summary } = record;
  return {
    runbook: record.runbook,
    status: record.status,
    estate: record.estate,
    dryrun: String(record.dryRun),
    runid: record.runId,
    trigger: record.trigger,
    startedat: record.startedAt,
    endedat: record.endedAt,
    durationms: String(record.durationMs),
    targets: String(summary.targets),
    targetsfailed: String(summary.targetsFailed),
    targetsskipped: String(summary.targetsSkipped),
    applied: String(summary.actions.applied),
    skipped: String(summary.actions.skipped),
    failed: String(summary.actions.failed),
    planned: String(summary.actions.planned),
    findingswarn: String(summary.findings.warn),
    findingsfail: String(summary.findings.fail),
    ...(record.error === undefined ? {} : { error: record.error.name }),
  };
}

/** A record's blob as a listing shows it: its name and the metadata of {@link recordMetadata}. */
export interface ListedRecord {
  readonly blobName: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly lastModified: Date | undefined;
}

/** Thrown when no run-record destination is configured or a stored record is not one. */
export class RunRecordStoreError extends OpsAutopilotError {
  override readonly name: string = 'RunRecordStoreError';
}

/** Where a record was written. */
export interface StoredRunRecord {
  readonly container: string;
  readonly blobName: string;
  readonly url: string;
}

/** Reads and writes run records in one blob container. */
export class RunRecordStore {
  private readonly containerClient: ContainerClient;
  private containerReady: Promise<void> | undefined;

  constructor(
    service: BlobServiceClient,
    readonly container: string = RUN_RECORD_CONTAINER,
  ) {
    this.containerClient = service.getContainerClient(container);
  }

  /** Where the store lives, for messages: the container URL without any query string. */
  get location(): string {
    return this.containerClient.url.split('?')[0] ?? this.containerClient.url;
  }

  /**
   * Writes a record as JSON. Creates the container on first use.
   *
   * @throws {@link ./secret-guard.ts#SecretLeakError} when the record holds anything secret-looking.
   * @throws {@link ../azure/errors.ts#ResourceConflictError} when a record with this id already exists.
   */
  async write(record: RunRecord): Promise<StoredRunRecord> {
    assertNoSecrets(record, `run record ${record.runId}`);
    const blobName = runRecordBlobName(record);
    await this.ensureContainer();
    const blob = this.containerClient.getBlockBlobClient(blobName);
    const body = `${JSON.stringify(record, null, 2)}\n`;
    await callAzure({ resourceId: `${this.location}/${blobName}`, operation: 'write run record', expected: 'no record with this run id yet' }, () =>
      blob.upload(body, Buffer.byteLength(body), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
        metadata: recordMetadata(record),
        // A record is evidence: never overwrite one.
        conditions: { ifNoneMatch: '*' },
      }),
    );
    // The id index, written after the record so it never names a record that is not there.
    const pointer = JSON.stringify({ runId: record.runId, blobName });
    const pointerBlob = this.containerClient.getBlockBlobClient(runIdPointerName(record.runId));
    try {
      await pointerBlob.upload(pointer, Buffer.byteLength(pointer), { blobHTTPHeaders: { blobContentType: 'application/json' }, conditions: { ifNoneMatch: '*' } });
    } catch (error) {
      const typed = toAzureError(error, { resourceId: `${this.location}/${runIdPointerName(record.runId)}`, operation: 'write run id index' });
      if (!(typed instanceof ResourceConflictError)) throw typed;
    }
    return { container: this.container, blobName, url: blob.url };
  }

  /**
   * The record of a run by id: through the id index, else (a record whose index entry was
   * never written, e.g. after a crash between the two writes) by looking in the days of
   * `hint.runbook` from `hint.from` on, at most 8 days. Undefined when there is none.
   */
  async findById(runId: string, hint?: { readonly runbook: string; readonly from: Date; readonly now?: Date }): Promise<{ record: RunRecord; blobName: string } | undefined> {
    const pointerName = runIdPointerName(runId);
    let blobName: string | undefined;
    try {
      const buffer = await this.containerClient.getBlockBlobClient(pointerName).downloadToBuffer();
      const parsed = JSON.parse(buffer.toString('utf8')) as { blobName?: unknown };
      if (typeof parsed.blobName === 'string') blobName = parsed.blobName;
    } catch (error) {
      if (error instanceof SyntaxError) throw new RunRecordStoreError(`run id index ${pointerName}: expected JSON naming a record, found unparseable content`, { context: { runId } });
      const typed = toAzureError(error, { resourceId: `${this.location}/${pointerName}`, operation: 'read run id index' });
      if (!(typed instanceof ResourceNotFoundError)) throw typed;
    }
    if (blobName === undefined && hint !== undefined) {
      const until = Math.min((hint.now ?? new Date()).getTime(), hint.from.getTime() + 8 * 86_400_000);
      for (let day = startOfUtcDay(hint.from); day <= until && blobName === undefined; day += 86_400_000) {
        const prefix = `${hint.runbook}/${datePath(new Date(day))}/`;
        const { items } = await this.listRecords(prefix, 10_000);
        const names = items.map((item) => item.blobName);
        blobName = names.find((name) => name.toLowerCase() === `${prefix}${runId.toLowerCase()}.json`);
      }
    }
    if (blobName === undefined) return undefined;
    try {
      return { record: await this.read(blobName), blobName };
    } catch (error) {
      if (error instanceof ResourceNotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * The records under `prefix` (e.g. `image-purge/2026/03/`) with their metadata, at most
   * `maxItems` (the listing stops there and says so).
   */
  async listRecords(prefix: string, maxItems: number): Promise<{ items: ListedRecord[]; truncated: boolean }> {
    const items: ListedRecord[] = [];
    let truncated = false;
    try {
      await callAzure({ resourceId: `${this.location}/${prefix}`, operation: 'list run records' }, async () => {
        for await (const item of this.containerClient.listBlobsFlat({ prefix, includeMetadata: true })) {
          if (!item.name.endsWith('.json')) continue;
          if (items.length >= maxItems) {
            truncated = true;
            break;
          }
          items.push(listed(item));
        }
      });
    } catch (error) {
      // No container yet: nothing was ever recorded.
      if (error instanceof ResourceNotFoundError) return { items: [], truncated: false };
      throw error;
    }
    return { items, truncated };
  }

  /** The top-level folders that hold records (runbook names), without the reserved ones. */
  async runbookPrefixes(): Promise<string[]> {
    const names: string[] = [];
    try {
      await callAzure({ resourceId: this.location, operation: 'list run-record folders' }, async () => {
        for await (const item of this.containerClient.listBlobsByHierarchy('/')) {
          if (item.kind !== 'prefix') continue;
          const name = item.name.replace(/\/$/, '');
          if (/^[a-z0-9][a-z0-9-]*$/.test(name) && !RESERVED_PREFIXES.includes(name)) names.push(name);
        }
      });
    } catch (error) {
      if (error instanceof ResourceNotFoundError) return [];
      throw error;
    }
    return names;
  }

  /**
   * Reads a record back, by blob name or by the record's identifying fields.
   *
   * @throws {@link ../azure/errors.ts#ResourceNotFoundError} when there is no such record.
   * @throws {@link RunRecordStoreError} when the blob is not a run record.
   */
  async read(which: string | Pick<RunRecord, 'runbook' | 'startedAt' | 'runId'>): Promise<RunRecord> {
    const blobName = typeof which === 'string' ? which : runRecordBlobName(which);
    const blob = this.containerClient.getBlockBlobClient(blobName);
    const buffer = await callAzure({ resourceId: `${this.location}/${blobName}`, operation: 'read run record' }, () => blob.downloadToBuffer());
    let parsed: unknown;
    try {
      parsed = JSON.parse(buffer.toString('utf8'));
    } catch (error) {
      throw new RunRecordStoreError(`run record ${blobName}: expected JSON, found unparseable content`, {
        context: { blobName, container: this.container },
        cause: error,
      });
    }
    if (!isRunRecord(parsed)) {
      throw new RunRecordStoreError(`run record ${blobName}: expected a run record (schemaVersion 1, runId, runbook, targets), found something else`, {
        context: { blobName, container: this.container },
      });
    }
    return parsed;
  }

  /** Lists blob names under a prefix, e.g. `inventory/2026/11/`. */
  async list(prefix = ''): Promise<string[]> {
    const names: string[] = [];
    await callAzure({ resourceId: this.location, operation: 'list run records' }, async () => {
      for await (const item of this.containerClient.listBlobsFlat({ prefix })) names.push(item.name);
    });
    return names;
  }

  private ensureContainer(): Promise<void> {
    this.containerReady ??= callAzure({ resourceId: this.location, operation: 'create run-record container' }, async () => {
      await this.containerClient.createIfNotExists();
    }).catch((error: unknown) => {
      // Let the next write try again rather than caching the failure.
      this.containerReady = undefined;
      throw error;
    });
    return this.containerReady;
  }
}

function listed(item: BlobItem): ListedRecord {
  return { blobName: item.name, metadata: item.metadata ?? {}, lastModified: item.properties.lastModified };
}

function startOfUtcDay(date: Date): number {
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}

/** `yyyy/mm/dd` of a UTC date, as record blob names have it. */
function datePath(date: Date): string {
  return `${String(date.getUTCFullYear()).padStart(4, '0')}/${String(date.getUTCMonth() + 1).padStart(2, '0')}/${String(date.getUTCDate()).padStart(2, '0')}`;
}

function isRunRecord(value: unknown): value is RunRecord {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Partial<Record<keyof RunRecord, unknown>>;
  return (
    record.schemaVersion === 1 &&
    typeof record.runId === 'string' &&
    typeof record.runbook === 'string' &&
    typeof record.startedAt === 'string' &&
    Array.isArray(record.targets)
  );
}

/**
 * The blob service URL or account name run records go to: `runRecords.blobServiceUrl` when
 * set, otherwise the account named by `runRecords.storageAccountId`.
 *
 * @throws {@link RunRecordStoreError} when neither is configured.
 */
export function runRecordDestination(config: Pick<EstateConfig, 'runRecords' | 'estate'>): string {
  const { blobServiceUrl, storageAccountId } = config.runRecords;
  if (blobServiceUrl !== undefined) return blobServiceUrl;
  if (storageAccountId !== undefined) return parseResourceId(storageAccountId).name;
  throw new RunRecordStoreError(
    `estate ${config.estate}: expected runRecords.blobServiceUrl or runRecords.storageAccountId, found neither`,
    { context: { estate: config.estate } },
  );
}

/** Builds the store of an estate from its configuration and client layer. */
export async function createRunRecordStore(
  config: Pick<EstateConfig, 'runRecords' | 'estate'>,
  clients: Pick<AzureClients, 'blobServiceClient'>,
): Promise<RunRecordStore> {
  const service = await clients.blobServiceClient(runRecordDestination(config));
  return new RunRecordStore(service, config.runRecords.container);
}
