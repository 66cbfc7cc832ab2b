/**
 * Shared state in Azure Table storage: guardrail counts, cooldowns, breakers and dedupe keys
 * (issue 9), drill history (issue 10), rotation progress (issue 11). State outlives a restart
 * and is shared by every instance of the app, so every write is conditional on the entity's
 * ETag: two instances updating one counter never lose an update, one of them re-reads and
 * tries again ({@link StateTable.update}).
 *
 * Where: the Table service of `state.tableServiceUrl`, else of `state.storageAccountId`, else of
 * `runRecords.storageAccountId` ({@link stateDestination}). The sandbox points generated configs
 * at Azurite's Table service. Requests go through the client layer's table client, which draws
 * on the storage account's request budget.
 *
 * Entities are flat: string, number, boolean or Date properties. Nothing secret may be stored
 * (every write passes the secret guard): state is read by people and by the status page.
 *
 * @example
 * const tables = createStateTables(config, clients);
 * const guardrails = tables.table(STATE_TABLES.guardrails);
 * const { row } = await guardrails.update(stateKey(targetId), 'restart', (current) => ({
 *   count: (typeof current?.count === 'number' ? current.count : 0) + 1,
 * }));
 */
import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { delay } from '@azure/core-util';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceConflictError, ResourceNotFoundError, toAzureError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { EstateConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { assertNoSecrets } from '../runs/secret-guard.ts';

/** The tables the app uses (design.md, "Storage the app uses"). One name each, here only. */
export const STATE_TABLES = {
  /** Cooldowns, counts, breakers and dedupe keys of alert remediation (issue 9). */
  guardrails: 'guardrails',
  /** One row per restore drill (issue 10). */
  drillHistory: 'drillhistory',
  /** Rotation progress per secret (issue 11). */
  rotations: 'rotations',
} as const;

/** A scalar property value of a state entity. Dates are stored as `Edm.DateTime`. */
export type StateValue = string | number | boolean | Date;

/** The properties of a state entity, without its keys and system properties. */
export type StateEntity = Readonly<Record<string, StateValue>>;

/** An entity as read: its keys, its ETag (for the next conditional write) and its properties. */
export interface StateRow<T extends StateEntity = StateEntity> {
  readonly partitionKey: string;
  readonly rowKey: string;
  /** The entity's ETag; a write conditional on it fails if anyone wrote since. */
  readonly etag: string;
  /** When the service last wrote it. */
  readonly timestamp: Date | undefined;
  readonly value: T;
}

/** Result of {@link StateTable.update}. */
export interface StateUpdate<T extends StateEntity> {
  /** The entity after the update (or as it stood, when nothing was written); undefined if absent. */
  readonly row: StateRow<T> | undefined;
  /** Whether this call wrote the entity. */
  readonly written: boolean;
  /** Read-modify-write rounds it took (1 without contention). */
  readonly attempts: number;
}

/** Options of {@link StateTable.update}. */
export interface StateUpdateOptions {
  /** Rounds before giving up with {@link StateConcurrencyError} (default 10, at most 50). */
  readonly maxAttempts?: number;
  /** First back-off after a lost race, doubled each round up to 1 s, with jitter (default 25 ms). */
  readonly backoffMs?: number;
}

/** No state store configured, or a value the Table service cannot hold. */
export class StateStoreError extends OpsAutopilotError {
  override readonly name: string = 'StateStoreError';
}

/**
 * A conditional write lost: the entity was created or changed by someone else since it was
 * read (HTTP 409 on create, 412 on replace or delete with an ETag).
 */
export class StateConflictError extends OpsAutopilotError {
  override readonly name: string = 'StateConflictError';
}

/** {@link StateTable.update} lost the race `maxAttempts` times in a row. */
export class StateConcurrencyError extends OpsAutopilotError {
  override readonly name: string = 'StateConcurrencyError';
}

/** Largest key the Table service accepts (1 KiB). */
const MAX_KEY_LENGTH = 1024;
const INT32 = 2 ** 31;
/** Table system properties and OData annotations: never part of {@link StateRow.value}. */
const SYSTEM_PROPERTIES = new Set(['partitionKey', 'rowKey', 'etag', 'timestamp', 'odata.metadata', 'odata.etag']);

/**
 * A PartitionKey or RowKey from any text (an ARM id, an alert id): percent-encoded, so the
 * characters keys may not hold (`/`, `\`, `#`, `?`, control characters) never reach the
 * service. ARM ids are case-insensitive: lower-case them first when they are the key.
 *
 * @throws {@link StateStoreError} when the encoded key is empty or longer than 1 KiB.
 */
export function stateKey(text: string): string {
  const key = encodeURIComponent(text);
  if (key === '' || key.length > MAX_KEY_LENGTH) {
    throw new StateStoreError(`state key: expected 1-${String(MAX_KEY_LENGTH)} characters once encoded, found ${String(key.length)}`, { context: { length: key.length } });
  }
  return key;
}

/**
 * The Table service (URL or account name) that holds the state: `state.tableServiceUrl`, else
 * the account of `state.storageAccountId`, else the account of `runRecords.storageAccountId`.
 *
 * @throws {@link StateStoreError} when none is configured.
 */
export function stateDestination(config: Pick<EstateConfig, 'state' | 'runRecords' | 'estate'>): string {
  const { tableServiceUrl, storageAccountId } = config.state;
  if (tableServiceUrl !== undefined) return tableServiceUrl;
  const accountId = storageAccountId ?? config.runRecords.storageAccountId;
  if (accountId !== undefined) return parseResourceId(accountId).name;
  throw new StateStoreError(
    `estate ${config.estate}: expected state.tableServiceUrl, state.storageAccountId or runRecords.storageAccountId for the state tables, found none`,
    { context: { estate: config.estate } },
  );
}

/** Whether the config names a state store (see {@link stateDestination}). */
export function hasStateStore(config: Pick<EstateConfig, 'state' | 'runRecords'>): boolean {
  return config.state.tableServiceUrl !== undefined || config.state.storageAccountId !== undefined || config.runRecords.storageAccountId !== undefined;
}

function checkValue(table: string, value: StateEntity): void {
  for (const [name, property] of Object.entries(value)) {
    if (SYSTEM_PROPERTIES.has(name)) {
      throw new StateStoreError(`table ${table}: expected entity properties other than the system property "${name}"`, { context: { table, property: name } });
    }
    // Without an Edm annotation the service stores a whole number as Int32; a larger one is refused.
    if (typeof property === 'number' && (!Number.isFinite(property) || (Number.isInteger(property) && (property >= INT32 || property < -INT32)))) {
      throw new StateStoreError(`table ${table}: property ${name}: expected a finite number within Int32 for whole numbers, found ${String(property)} (store large values as an ISO date or a string)`, {
        context: { table, property: name },
      });
    }
  }
  assertNoSecrets(value, `state entity in table ${table}`);
}

function toRow<T extends StateEntity>(entity: TableEntityResult<Record<string, unknown>>): StateRow<T> {
  const value: Record<string, StateValue> = {};
  for (const [name, property] of Object.entries(entity)) {
    if (SYSTEM_PROPERTIES.has(name)) continue;
    if (typeof property === 'string' || typeof property === 'number' || typeof property === 'boolean' || property instanceof Date) value[name] = property;
  }
  const timestamp = typeof entity.timestamp === 'string' ? new Date(entity.timestamp) : undefined;
  return {
    partitionKey: entity.partitionKey ?? '',
    rowKey: entity.rowKey ?? '',
    etag: entity.etag,
    timestamp,
    value: value as T,
  };
}

/** One state table; get one from {@link StateTables.table}. */
export class StateTable {
  private ready: Promise<void> | undefined;

  /** @internal Built by {@link StateTables.table}. */
  constructor(
    private readonly client: () => Promise<TableClient>,
    /** The table's name. */
    readonly name: string,
    /** Where it lives, for messages (service URL or account, and table). */
    readonly location: string,
    /**
     * Read, never write (the status page): the table is not created (a missing one reads as
     * empty) and every write throws before it reaches the service.
     */
    readonly readOnly: boolean = false,
  ) {}

  /** Throws when this table is read-only: a status read must never change state. */
  private refuseWrite(operation: string): void {
    if (this.readOnly) throw new StateStoreError(`state table ${this.location}: expected no writes from a read-only reader, found a ${operation}`, { context: { table: this.name, operation } });
  }

  /** Creates the table if it does not exist; once per process (a failure is retried next time). */
  ensure(): Promise<void> {
    // A read-only table never creates anything; reads treat a missing table as empty.
    if (this.readOnly) return Promise.resolve();
    this.ready ??= callAzure({ resourceId: this.location, operation: 'create state table' }, async () => {
      const client = await this.client();
      // createTable answers 409 TableAlreadyExists as success.
      await client.createTable();
    }).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /** Reads one entity, or undefined when it does not exist. */
  async get<T extends StateEntity = StateEntity>(partitionKey: string, rowKey: string): Promise<StateRow<T> | undefined> {
    await this.ensure();
    const client = await this.client();
    try {
      const entity = await client.getEntity(partitionKey, rowKey);
      return toRow<T>(entity);
    } catch (error) {
      const typed = toAzureError(error, { resourceId: this.entityId(partitionKey, rowKey), operation: 'read state entity' });
      if (typed instanceof ResourceNotFoundError) return undefined;
      throw typed;
    }
  }

  /**
   * Creates an entity that must not exist yet.
   *
   * @throws {@link StateConflictError} when it exists (someone else created it first).
   */
  async create<T extends StateEntity>(partitionKey: string, rowKey: string, value: T): Promise<StateRow<T>> {
    this.refuseWrite('create');
    checkValue(this.name, value);
    await this.ensure();
    const client = await this.client();
    try {
      const response = await client.createEntity({ ...value, partitionKey, rowKey });
      return { partitionKey, rowKey, etag: response.etag ?? '', timestamp: response.date, value };
    } catch (error) {
      throw this.conflictOr(error, partitionKey, rowKey, 'create state entity', 'no entity with these keys yet');
    }
  }

  /**
   * Replaces an entity if nobody wrote it since `row` was read.
   *
   * @throws {@link StateConflictError} when its ETag changed (or it was deleted).
   */
  async replace<T extends StateEntity>(row: Pick<StateRow, 'partitionKey' | 'rowKey' | 'etag'>, value: T): Promise<StateRow<T>> {
    this.refuseWrite('replace');
    checkValue(this.name, value);
    await this.ensure();
    const client = await this.client();
    const { partitionKey, rowKey } = row;
    try {
      const response = await client.updateEntity({ ...value, partitionKey, rowKey }, 'Replace', { etag: row.etag });
      return { partitionKey, rowKey, etag: response.etag ?? '', timestamp: response.date, value };
    } catch (error) {
      throw this.conflictOr(error, partitionKey, rowKey, 'replace state entity', `the entity unchanged since ETag ${row.etag}`);
    }
  }

  /**
   * Deletes an entity; with an ETag only if nobody wrote it since. Returns false when it did
   * not exist.
   *
   * @throws {@link StateConflictError} when `etag` is given and no longer matches.
   */
  async delete(partitionKey: string, rowKey: string, etag?: string): Promise<boolean> {
    this.refuseWrite('delete');
    await this.ensure();
    const client = await this.client();
    try {
      await client.deleteEntity(partitionKey, rowKey, etag === undefined ? {} : { etag });
      return true;
    } catch (error) {
      const typed = toAzureError(error, { resourceId: this.entityId(partitionKey, rowKey), operation: 'delete state entity' });
      if (typed instanceof ResourceNotFoundError) return false;
      throw this.conflictOr(typed, partitionKey, rowKey, 'delete state entity', `the entity unchanged since ETag ${etag ?? '*'}`);
    }
  }

  /**
   * The entities of one partition, in RowKey order, at most `maxRows` (default 1,000; the
   * listing stops there and `truncated` says so), so a partition that grew without bound
   * cannot make a request unbounded.
   */
  async list<T extends StateEntity = StateEntity>(partitionKey: string, options: { readonly maxRows?: number } = {}): Promise<{ rows: StateRow<T>[]; truncated: boolean }> {
    const maxRows = Math.max(1, Math.min(options.maxRows ?? 1000, 100_000));
    await this.ensure();
    const client = await this.client();
    const rows: StateRow<T>[] = [];
    let truncated = false;
    const filter = `PartitionKey eq '${partitionKey.replaceAll("'", "''")}'`;
    try {
      await callAzure({ resourceId: `${this.location}(PartitionKey='${partitionKey}')`, operation: 'list state entities' }, async () => {
        for await (const entity of client.listEntities({ queryOptions: { filter } })) {
          if (rows.length >= maxRows) {
            truncated = true;
            break;
          }
          rows.push(toRow<T>(entity));
        }
      });
    } catch (error) {
      // Only a read-only table can be missing here (the others were created first): no rows yet.
      if (this.readOnly && error instanceof ResourceNotFoundError) return { rows: [], truncated: false };
      throw error;
    }
    return { rows, truncated };
  }

  /**
   * Read-modify-write, safe with any number of concurrent writers: reads the entity, calls
   * `change` with its value (undefined when absent), and writes the result conditionally (create
   * if absent, replace if its ETag still matches). When another writer got there first, it
   * re-reads and calls `change` again, after a short jittered back-off, up to `maxAttempts`
   * rounds. `change` must be a pure function of what it is given: it may run several times.
   * Returning `undefined` leaves the entity as it is (nothing is written).
   *
   * @throws {@link StateConcurrencyError} after `maxAttempts` lost races.
   */
  async update<T extends StateEntity>(
    partitionKey: string,
    rowKey: string,
    change: (current: T | undefined, attempt: number) => T | undefined,
    options: StateUpdateOptions = {},
  ): Promise<StateUpdate<T>> {
    this.refuseWrite('update');
    const maxAttempts = Math.max(1, Math.min(options.maxAttempts ?? 10, 50));
    let backoff = Math.max(1, options.backoffMs ?? 25);
    for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
      const current = await this.get<T>(partitionKey, rowKey);
      const next = change(current?.value, attempt);
      if (next === undefined) return { row: current, written: false, attempts: attempt };
      try {
        const row = current === undefined ? await this.create(partitionKey, rowKey, next) : await this.replace(current, next);
        return { row, written: true, attempts: attempt };
      } catch (error) {
        if (!(error instanceof StateConflictError)) throw error;
      }
      if (attempt < maxAttempts) {
        // Full jitter, so writers that collided do not collide again in lock-step.
        await delay(Math.round(Math.random() * backoff));
        backoff = Math.min(backoff * 2, 1000);
      }
    }
    throw new StateConcurrencyError(
      `${this.entityId(partitionKey, rowKey)}: expected a conditional write to succeed within ${String(maxAttempts)} attempts, found another writer changing it each time`,
      { context: { table: this.name, partitionKey, rowKey, attempts: maxAttempts } },
    );
  }

  private entityId(partitionKey: string, rowKey: string): string {
    return `${this.location}(PartitionKey='${partitionKey}',RowKey='${rowKey}')`;
  }

  private conflictOr(error: unknown, partitionKey: string, rowKey: string, operation: string, expected: string): Error {
    const typed = toAzureError(error, { resourceId: this.entityId(partitionKey, rowKey), operation, expected });
    if (typed instanceof ResourceConflictError) {
      return new StateConflictError(`${operation} ${this.entityId(partitionKey, rowKey)}: expected ${expected}, found it written by someone else (HTTP ${String(typed.statusCode)})`, {
        context: { table: this.name, partitionKey, rowKey, statusCode: typed.statusCode },
        cause: typed,
      });
    }
    return typed;
  }
}

/** The state tables of one estate. */
export class StateTables {
  private readonly tables = new Map<string, StateTable>();

  constructor(
    private readonly clients: Pick<AzureClients, 'tableClient'>,
    /** Table service URL or storage account name ({@link stateDestination}). */
    readonly destination: string,
    /** Tables that read and never write ({@link StateTable.readOnly}). */
    readonly readOnly: boolean = false,
  ) {}

  /** One table by name (see {@link STATE_TABLES}); the table is created on first use. */
  table(name: string): StateTable {
    if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(name)) {
      throw new StateStoreError(`state table: expected 3-63 letters and digits starting with a letter, found "${name}"`, { context: { table: name } });
    }
    let table = this.tables.get(name);
    if (table === undefined) {
      const location = `${this.destination.replace(/\/+$/, '')}/${name}`;
      table = new StateTable(() => this.clients.tableClient(this.destination, name), name, location, this.readOnly);
      this.tables.set(name, table);
    }
    return table;
  }
}

/**
 * The state tables of an estate, at {@link stateDestination}.
 *
 * @throws {@link StateStoreError} when the config names no state store.
 */
export function createStateTables(config: Pick<EstateConfig, 'state' | 'runRecords' | 'estate'>, clients: Pick<AzureClients, 'tableClient'>, options: { readonly readOnly?: boolean } = {}): StateTables {
  return new StateTables(clients, stateDestination(config), options.readOnly === true);
}
