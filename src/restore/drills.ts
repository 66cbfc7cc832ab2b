/**
 * The steps of a restore drill (issue 10) that a restore does not have, one per durable
 * activity, as plain functions over the runbook context: the drill's targets, the heartbeat rows
 * it writes to the source (the RPO's evidence), the RPO measured on the scratch server, the
 * scratch record the sweeper recognises leftovers by, and the drill history row.
 *
 * Free of `@azure/functions` and `durable-functions`. Every step is idempotent (an activity may
 * run more than once), and no input or output holds a secret: the admin password is read from
 * Key Vault inside a step and never returned.
 */
import type pg from 'pg';
import { callAzure, ResourceNotFoundError } from '../azure/errors.ts';
import { parseResourceId, resourceIdKey } from '../azure/resource-id.ts';
import type { DrillPolicy } from '../config/restore-schema.ts';
import type { EstateConfig } from '../config/schema.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { createStateTables, STATE_TABLES, stateKey, type StateEntity, type StateTable } from '../state/tables.ts';
import { connectAsAdmin, readAdminPassword } from './data-checks.ts';
import { findRestoreTarget, RestoreValidationError, serverOwner } from './servers.ts';
import { deleteStep, type DeleteStepInput } from './steps.ts';

/** The table on the source the drill writes its heartbeat rows to. */
export const HEARTBEAT_TABLE = 'ops_autopilot_drill_heartbeat';
/** Heartbeat rows older than this are deleted by the next drill, so the table stays small. */
const HEARTBEAT_RETENTION_DAYS = 35;

/** One server a drill covers. */
export interface DrillTarget {
  readonly serverId: string;
  readonly name: string;
  readonly drill: DrillPolicy;
  /** The server's `restore.restoreTimeoutHours` (the drill's own timeout bounds it too). */
  readonly restoreTimeoutHours: number;
}

/** The servers of the estate with a drill policy, or the one `server` names (id or unique name). */
export function drillTargets(config: EstateConfig, server?: string): DrillTarget[] {
  const toTarget = (target: NonNullable<ReturnType<typeof findRestoreTarget>>): DrillTarget | undefined =>
    target.restore.drill === undefined
      ? undefined
      : { serverId: target.id, name: parseResourceId(target.id).name, drill: target.restore.drill, restoreTimeoutHours: target.restore.restoreTimeoutHours };
  if (server !== undefined) {
    const target = findRestoreTarget(config, server);
    const drill = target === undefined ? undefined : toTarget(target);
    if (drill === undefined) {
      throw new RestoreValidationError([`server: expected a PostgreSQL flexible server target of estate ${config.estate} with restore.drill configured (by ARM id or unique name), found "${server.slice(0, 300)}"`], {
        server: server.slice(0, 300),
      });
    }
    return [drill];
  }
  return config.targets.flatMap((target) => (target.restore === undefined ? [] : [toTarget({ ...target, restore: target.restore })].filter((entry): entry is DrillTarget => entry !== undefined)));
}

/** The activity form of {@link drillTargets}. */
export function drillTargetsStep(ctx: RunbookContext, input: { readonly server?: string }): Promise<DrillTarget[]> {
  return Promise.resolve(drillTargets(ctx.config, input.server));
}

/**
 * The scratch server's name: the source's name (shortened), `-drill-`, and a digest of the drill
 * instance, so that two drills never pick the same name. Names alone never make a server a
 * drill's (see the sweeper): this only keeps them apart and readable.
 */
export function scratchServerName(sourceName: string, owner: string): string {
  let hash = 0x811c9dc5;
  for (const char of owner) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  const suffix = `-drill-${hash.toString(36).padStart(7, '0')}`;
  return `${sourceName.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

async function sourceConnection(ctx: RunbookContext, sourceServerId: string): Promise<{ client: pg.Client; target: NonNullable<ReturnType<typeof findRestoreTarget>> }> {
  const target = findRestoreTarget(ctx.config, sourceServerId);
  if (target === undefined) throw new RestoreValidationError([`server: expected a target with a restore policy, found none for ${sourceServerId}`], { server: sourceServerId });
  const id = parseResourceId(target.id);
  const client = await ctx.clients.postgresClient(id.subscriptionId);
  const server = await callAzure({ resourceId: target.id, operation: 'get flexible server', expected: 'the source server to exist' }, () => client.servers.get(id.resourceGroup, id.name));
  const password = await readAdminPassword(ctx.clients, target.restore);
  const connection = await connectAsAdmin(ctx.clients, server.fullyQualifiedDomainName ?? `${id.name}.postgres.database.azure.com`, server.administratorLogin ?? '', password, target.restore.database);
  return { client: connection, target };
}

/** Input of the heartbeat step. */
export interface HeartbeatStepInput {
  readonly sourceServerId: string;
  /** The drill (per-server orchestration) the row belongs to. */
  readonly drillId: string;
  readonly seq: number;
  /** The orchestration's clock when the row is written (ISO). */
  readonly at: string;
}

/**
 * Writes one heartbeat row to the source, committed before this returns: `(drill_id, seq, at)`,
 * idempotent by `(drill_id, seq)`. Creates the table when missing and deletes rows older than
 * 35 days. This is the only write a drill makes to the source.
 */
export async function heartbeatStep(ctx: RunbookContext, input: HeartbeatStepInput): Promise<{ readonly seq: number; readonly at: string }> {
  const { client } = await sourceConnection(ctx, input.sourceServerId);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${HEARTBEAT_TABLE} (drill_id text NOT NULL, seq integer NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (drill_id, seq))`);
    await client.query(`INSERT INTO ${HEARTBEAT_TABLE} (drill_id, seq, at) VALUES ($1, $2, $3) ON CONFLICT (drill_id, seq) DO NOTHING`, [input.drillId, input.seq, input.at]);
    await client.query(`DELETE FROM ${HEARTBEAT_TABLE} WHERE at < $1::timestamptz - interval '${String(HEARTBEAT_RETENTION_DAYS)} days'`, [input.at]);
  } finally {
    await client.end().catch(() => undefined);
  }
  return { seq: input.seq, at: input.at };
}

/** Input of the RPO step. */
export interface MeasureRpoStepInput {
  readonly sourceServerId: string;
  readonly drillId: string;
  readonly restorePoint: string;
  readonly restoredFqdn: string;
  readonly login: string;
}

/** What the heartbeats say about the restore point. JSON-serialisable, no secrets. */
export interface RpoEvidence {
  readonly restorePoint: string;
  /** The newest heartbeat of this drill the scratch server holds, or null when none came back. */
  readonly newestRestored: string | null;
  /** The newest heartbeat the source had at the restore point (what a perfect restore brings back). */
  readonly newestSourceAtPoint: string | null;
  /** Heartbeats written after the point that the scratch server holds (must be 0: the restore is not at its point otherwise). */
  readonly afterPointRestored: number;
  /** Heartbeats of this drill the source holds. */
  readonly heartbeats: number;
  /** Restore point − newest restored heartbeat, in seconds; null when none came back. */
  readonly rpoSeconds: number | null;
  readonly detail: string;
}

async function heartbeats(client: pg.Client, drillId: string, point: string): Promise<{ newest: string | null; after: number; total: number }> {
  const exists = await client.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [HEARTBEAT_TABLE]);
  if (exists.rows[0]?.found !== true) return { newest: null, after: 0, total: 0 };
  const result = await client.query<{ newest: Date | null; after: string; total: string }>(
    `SELECT max(at) FILTER (WHERE at <= $2::timestamptz) AS newest, count(*) FILTER (WHERE at > $2::timestamptz)::text AS after, count(*)::text AS total FROM ${HEARTBEAT_TABLE} WHERE drill_id = $1`,
    [drillId, point],
  );
  const row = result.rows[0];
  return { newest: row?.newest instanceof Date ? row.newest.toISOString() : null, after: Number(row?.after ?? 0), total: Number(row?.total ?? 0) };
}

/**
 * Measures the RPO: reads this drill's heartbeats on the scratch server and on the source. The
 * RPO is the restore point minus the newest heartbeat that came back (its resolution is the
 * heartbeat interval); a heartbeat from after the point on the scratch server means the restore
 * was not at its point.
 */
export async function measureRpoStep(ctx: RunbookContext, input: MeasureRpoStepInput): Promise<RpoEvidence> {
  const target = findRestoreTarget(ctx.config, input.sourceServerId);
  if (target === undefined) throw new RestoreValidationError([`server: expected a target with a restore policy, found none for ${input.sourceServerId}`], { server: input.sourceServerId });
  const password = await readAdminPassword(ctx.clients, target.restore);
  const restored = await connectAsAdmin(ctx.clients, input.restoredFqdn, input.login, password, target.restore.database);
  let onRestored;
  try {
    onRestored = await heartbeats(restored, input.drillId, input.restorePoint);
  } finally {
    await restored.end().catch(() => undefined);
  }
  const { client: source } = await sourceConnection(ctx, input.sourceServerId);
  let onSource;
  try {
    onSource = await heartbeats(source, input.drillId, input.restorePoint);
  } finally {
    await source.end().catch(() => undefined);
  }
  const point = new Date(input.restorePoint).getTime();
  const rpoSeconds = onRestored.newest === null ? null : Math.round((point - new Date(onRestored.newest).getTime()) / 1000);
  const lost = onSource.newest !== null && onRestored.newest !== onSource.newest;
  const detail =
    onRestored.newest === null
      ? `no heartbeat of this drill came back (the source had ${onSource.newest ?? 'none'} at the point)`
      : `newest heartbeat restored ${onRestored.newest}, the source had ${onSource.newest ?? 'none'} at the point${lost ? ' (heartbeats committed before the point are missing)' : ''}; ${String(onRestored.after)} from after the point restored`;
  return {
    restorePoint: new Date(point).toISOString(),
    newestRestored: onRestored.newest,
    newestSourceAtPoint: onSource.newest,
    afterPointRestored: onRestored.after,
    heartbeats: onSource.total,
    rpoSeconds,
    detail,
  };
}

/**
 * Tears a scratch server down: deleted (the operation awaited), `absent`, `not-owned` (never
 * deleted), or `busy` while it is still being created or deleted, which Azure refuses to
 * delete (409): the drill waits on a durable timer and asks again.
 */
export async function teardownStep(ctx: RunbookContext, input: DeleteStepInput): Promise<'deleted' | 'absent' | 'not-owned' | 'busy'> {
  const id = parseResourceId(input.serverId);
  const client = await ctx.clients.postgresClient(id.subscriptionId);
  const server = await callAzure({ resourceId: input.serverId, operation: 'get flexible server' }, () => client.servers.get(id.resourceGroup, id.name)).catch((error: unknown) => {
    if (error instanceof ResourceNotFoundError) return undefined;
    throw error;
  });
  if (server === undefined) return 'absent';
  if (serverOwner(server) !== input.owner) return 'not-owned';
  if (server.state === 'Provisioning' || server.state === 'Dropping' || server.state === 'Updating') return 'busy';
  return deleteStep(ctx, input);
}

/** The drill history table of an estate. */
function historyTable(config: EstateConfig, ctx: RunbookContext, readOnly = false): StateTable {
  return createStateTables(config, ctx.clients, { readOnly }).table(STATE_TABLES.drillHistory);
}

/** PartitionKey of an estate's drill rows (design.md). */
export function drillPartition(estate: string): string {
  return stateKey(estate);
}

/** PartitionKey of an estate's scratch records (kept apart from the drill rows the status page reads). */
export function scratchPartition(estate: string): string {
  return `${stateKey(estate)}~scratch`;
}

/** A scratch server's record: written before it is created, updated when it is torn down. */
export interface ScratchRecord extends StateEntity {
  readonly serverId: string;
  readonly sourceServerId: string;
  /** The drill instance whose owner tag the server carries. */
  readonly owner: string;
  /** The drill's deadline on the orchestration clock: after it (and its teardown) nothing of the drill runs. */
  readonly deadline: Date;
  readonly state: 'creating' | 'deleted' | 'kept';
  readonly updatedAt: Date;
}

/** Input of the scratch step. */
export interface ScratchStepInput {
  readonly serverId: string;
  readonly sourceServerId: string;
  readonly owner: string;
  readonly deadline: string;
  readonly state: ScratchRecord['state'];
  /** The orchestration's clock (ISO). */
  readonly at: string;
}

/** Writes (or updates) the scratch record of a drill server; idempotent. */
export async function scratchStep(ctx: RunbookContext, input: ScratchStepInput): Promise<ScratchRecord['state']> {
  const table = historyTable(ctx.config, ctx);
  const value: ScratchRecord = {
    serverId: input.serverId,
    sourceServerId: input.sourceServerId,
    owner: input.owner,
    deadline: new Date(input.deadline),
    state: input.state,
    updatedAt: new Date(input.at),
  };
  await table.update<ScratchRecord>(scratchPartition(ctx.config.estate), stateKey(resourceIdKey(input.serverId)), (current) => {
    // A replayed 'creating' after the teardown must not make a deleted server look pending again.
    if (current !== undefined && current.owner !== input.owner) throw new RestoreValidationError([`scratch server ${input.serverId}: expected it to be recorded for ${input.owner}, found it recorded for ${current.owner}`], { server: input.serverId });
    if (current?.state === 'deleted' && input.state === 'creating') return undefined;
    return value;
  });
  return input.state;
}

/** Every scratch record of an estate (bounded). */
export async function listScratchRecords(ctx: RunbookContext): Promise<{ rows: ScratchRecord[]; keys: string[]; truncated: boolean }> {
  const { rows, truncated } = await historyTable(ctx.config, ctx).list<ScratchRecord>(scratchPartition(ctx.config.estate), { maxRows: 5000 });
  return { rows: rows.map((row) => row.value), keys: rows.map((row) => row.rowKey), truncated };
}

/** One check of a drill, as the history row's `checks` holds it. */
export interface DrillCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly detail: string;
}

/** A drill history row (design.md, "drillhistory row shape"). Measurements absent when not taken. */
export interface DrillHistoryRow {
  readonly estate: string;
  readonly serverId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly restorePoint?: string;
  readonly rtoSeconds?: number;
  readonly rpoSeconds?: number;
  readonly rtoTargetSeconds: number;
  readonly rpoTargetSeconds: number;
  readonly checks: readonly DrillCheck[];
  readonly verdict: 'passed' | 'failed';
  readonly reason: string;
  readonly instanceId: string;
  readonly runId: string;
  readonly scratchServerId: string;
  readonly tornDown: boolean;
}

/** The RowKey of a drill row: sortable by start. */
export function drillRowKey(startedAt: string, instanceId: string): string {
  const key = `${new Date(startedAt).toISOString()}~${instanceId}`;
  // Instance ids are letters, digits, dashes and colons: legal in a key as they are.
  return /^[A-Za-z0-9:.~-]{1,1024}$/.test(key) ? key : stateKey(key);
}

/** Writes the drill history row (the same row again when the activity is retried). */
export async function recordDrillStep(ctx: RunbookContext, row: DrillHistoryRow): Promise<{ readonly partitionKey: string; readonly rowKey: string }> {
  const table = historyTable(ctx.config, ctx);
  const partitionKey = drillPartition(ctx.config.estate);
  const rowKey = drillRowKey(row.startedAt, row.instanceId);
  const entity: Record<string, string | number | boolean | Date> = {
    estate: ctx.config.estate,
    serverId: row.serverId,
    startedAt: new Date(row.startedAt),
    finishedAt: new Date(row.finishedAt),
    rtoTargetSeconds: row.rtoTargetSeconds,
    rpoTargetSeconds: row.rpoTargetSeconds,
    // A row holds at most 64 KiB per string property; the checks are few and their details bounded.
    checks: JSON.stringify(row.checks.map((check) => ({ name: check.name.slice(0, 200), passed: check.passed, detail: check.detail.slice(0, 500) }))).slice(0, 30_000),
    verdict: row.verdict,
    reason: row.reason.slice(0, 2000),
    instanceId: row.instanceId,
    runId: row.runId,
    scratchServerId: row.scratchServerId,
    tornDown: row.tornDown,
  };
  if (row.restorePoint !== undefined) entity.restorePoint = new Date(row.restorePoint);
  if (row.rtoSeconds !== undefined) entity.rtoSeconds = row.rtoSeconds;
  if (row.rpoSeconds !== undefined) entity.rpoSeconds = row.rpoSeconds;
  await table.update(partitionKey, rowKey, () => entity);
  return { partitionKey, rowKey };
}

/** A drill row as the history route answers it. */
export interface DrillHistoryEntry extends Omit<DrillHistoryRow, 'checks'> {
  readonly checks: readonly DrillCheck[];
}

function isoOf(value: unknown): string | undefined {
  return value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : undefined;
}

/**
 * The newest `limit` drill rows of the estate, newest first (at most 5,000 rows are read).
 * `readOnly` (the status page) neither creates the table nor writes: a missing table reads as no drills.
 */
export async function drillHistory(ctx: RunbookContext, options: { readonly limit?: number; readonly server?: string; readonly readOnly?: boolean } = {}): Promise<{ drills: DrillHistoryEntry[]; truncated: boolean }> {
  const limit = Math.max(1, Math.min(options.limit ?? 50, 500));
  const { rows, truncated } = await historyTable(ctx.config, ctx, options.readOnly === true).list(drillPartition(ctx.config.estate), { maxRows: 5000 });
  const serverKey = options.server === undefined ? undefined : resourceIdKey(findRestoreTarget(ctx.config, options.server)?.id ?? options.server);
  const drills = rows
    .map((row): DrillHistoryEntry => {
      const v = row.value;
      let checks: DrillCheck[] = [];
      try {
        checks = typeof v.checks === 'string' ? (JSON.parse(v.checks) as DrillCheck[]) : [];
      } catch {
        checks = [];
      }
      const restorePoint = isoOf(v.restorePoint);
      return {
        estate: String(v.estate ?? ''),
        serverId: String(v.serverId ?? ''),
        startedAt: isoOf(v.startedAt) ?? '',
        finishedAt: isoOf(v.finishedAt) ?? '',
        ...(restorePoint === undefined ? {} : { restorePoint }),
        ...(typeof v.rtoSeconds === 'number' ? { rtoSeconds: v.rtoSeconds } : {}),
        ...(typeof v.rpoSeconds === 'number' ? { rpoSeconds: v.rpoSeconds } : {}),
        rtoTargetSeconds: Number(v.rtoTargetSeconds ?? 0),
        rpoTargetSeconds: Number(v.rpoTargetSeconds ?? 0),
        checks,
        verdict: v.verdict === 'passed' ? 'passed' : 'failed',
        reason: String(v.reason ?? ''),
        instanceId: String(v.instanceId ?? ''),
        runId: String(v.runId ?? ''),
        scratchServerId: String(v.scratchServerId ?? ''),
        tornDown: v.tornDown === true,
      };
    })
    .filter((entry) => serverKey === undefined || resourceIdKey(entry.serverId) === serverKey)
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  return { drills: drills.slice(0, limit), truncated: truncated || drills.length > limit };
}
