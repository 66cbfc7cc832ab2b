/**
 * Persistence of run records in blob storage: container `autopilot-runs` (configurable), blob
 * `<runbook>/<yyyy>/<mm>/<dd>/<runId>.json`. A record is written once and never overwritten,
 * so the history cannot be rewritten by a later run with the same id.
 */
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { EstateConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { runRecordBlobName, type RunRecord } from './run-record.ts';
import { assertNoSecrets } from './secret-guard.ts';

/** Default container of run records. */
export const RUN_RECORD_CONTAINER = 'autopilot-runs';

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
        metadata: { runbook: record.runbook, status: record.status, estate: record.estate, dryrun: String(record.dryRun) },
        // A record is evidence: never overwrite one.
        conditions: { ifNoneMatch: '*' },
      }),
    );
    return { container: this.container, blobName, url: blob.url };
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
