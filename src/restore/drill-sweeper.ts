/**
 * The drill sweeper: deletes scratch servers that restore drills created and did not tear down
 * (a teardown that failed, a create that finished after its drill gave up), and reports them.
 *
 * A server is a drill's only when BOTH hold: it carries the drill tags (`ops-autopilot-created-by`,
 * `ops-autopilot-purpose: drill`, `ops-autopilot-owner: <drill instance>`), AND the drill history
 * table holds a scratch record for exactly that server id with the same owner, written by the
 * drill before it created the server. A name that looks like a drill's, a tag without a record,
 * or a record for another owner is never enough: such a server is reported and left alone.
 *
 * A recorded server is deleted only once its drill is over: the drill instance no longer runs,
 * or its deadline (plus a grace) has passed. Deadlines are on the orchestration clock, so the
 * sweeper compares them with its timer's scheduled occurrence (the same clock on the local
 * host's virtual time as on Azure's), never with the process's wall clock.
 *
 * Under the estate's dry-run gate it reports what it would delete and deletes nothing.
 */
import type { Server } from '@azure/arm-postgresql-flexible';
import { callAzure, ResourceNotFoundError } from '../azure/errors.ts';
import { formatResourceId, parseResourceId, resourceIdKey } from '../azure/resource-id.ts';
import { errorMessage } from '../errors.ts';
import { sendRunNotifications } from '../notify/send-notifications.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { createRunRecordStore } from '../runs/run-record-store.ts';
import { startRun, type RunTrigger } from '../runs/run-record.ts';
import { hasStateStore } from '../state/tables.ts';
import { drillTargets, listScratchRecords, scratchStep, type ScratchRecord } from './drills.ts';
import { CREATED_BY, TAGS } from './servers.ts';
import { deleteStep } from './steps.ts';

/** A recorded drill server is left to its own drill until this long after the drill's deadline. */
export const SWEEP_GRACE_MS = 60 * 60_000;

/** Options of {@link sweepDrillServers}. */
export interface SweepOptions {
  /** The sweep's time on the orchestration clock (the timer's scheduled occurrence). */
  readonly now: Date;
  /** Whether the drill instance `owner` is still running (then its own teardown is due). */
  readonly isActive: (owner: string) => Promise<boolean>;
  readonly trigger?: RunTrigger;
  /** Write a run record and notify when something was found (default true). */
  readonly record?: boolean;
}

/** One server the sweep looked at. */
export interface SweptServer {
  readonly serverId: string;
  readonly owner?: string;
  readonly outcome: 'deleted' | 'would-delete' | 'kept' | 'failed' | 'absent';
  readonly reason: string;
}

/** What a sweep did. */
export interface SweepReport {
  readonly servers: readonly SweptServer[];
  readonly deleted: number;
  readonly failed: number;
  readonly summary: string;
  readonly record?: string;
}

function drillOwner(server: Server): string | undefined {
  const tags = server.tags ?? {};
  return tags[TAGS.createdBy] === CREATED_BY && tags[TAGS.purpose] === 'drill' ? tags[TAGS.owner] : undefined;
}

/** The resource groups drills create in: each drill policy's `resourceGroup`, else its source's. */
function drillResourceGroups(ctx: RunbookContext): { subscriptionId: string; resourceGroup: string }[] {
  const seen = new Map<string, { subscriptionId: string; resourceGroup: string }>();
  for (const target of drillTargets(ctx.config)) {
    const id = parseResourceId(target.serverId);
    const resourceGroup = target.drill.resourceGroup ?? id.resourceGroup;
    seen.set(`${id.subscriptionId}/${resourceGroup}`.toLowerCase(), { subscriptionId: id.subscriptionId, resourceGroup });
  }
  return [...seen.values()];
}

async function listDrillServers(ctx: RunbookContext, group: { subscriptionId: string; resourceGroup: string }): Promise<Server[]> {
  const client = await ctx.clients.postgresClient(group.subscriptionId);
  const scope = `/subscriptions/${group.subscriptionId}/resourceGroups/${group.resourceGroup}`;
  return callAzure({ resourceId: scope, operation: 'list flexible servers' }, async () => {
    const servers: Server[] = [];
    for await (const server of client.servers.listByResourceGroup(group.resourceGroup)) {
      if (drillOwner(server) !== undefined) servers.push(server);
      // A resource group with thousands of servers is not a drill resource group; stop listing.
      if (servers.length >= 1000) break;
    }
    return servers;
  }).catch((error: unknown) => {
    if (error instanceof ResourceNotFoundError) return [];
    throw error;
  });
}

async function getServer(ctx: RunbookContext, serverId: string): Promise<Server | undefined> {
  const id = parseResourceId(serverId);
  const client = await ctx.clients.postgresClient(id.subscriptionId);
  try {
    return await callAzure({ resourceId: serverId, operation: 'get flexible server' }, () => client.servers.get(id.resourceGroup, id.name));
  } catch (error) {
    if (error instanceof ResourceNotFoundError) return undefined;
    throw error;
  }
}

/**
 * Sweeps leftover drill servers; see the module comment. Each server is handled on its own: one
 * that cannot be deleted is reported as failed and the others still go.
 */
export async function sweepDrillServers(ctx: RunbookContext, options: SweepOptions): Promise<SweepReport> {
  // Without a state store no drill can have recorded a server (drills need one): nothing is a drill's.
  if (!hasStateStore(ctx.config) && drillTargets(ctx.config).length === 0) return { servers: [], deleted: 0, failed: 0, summary: 'no drill policy and no state store: nothing to sweep' };
  const { rows: records } = await listScratchRecords(ctx);
  const byId = new Map<string, ScratchRecord>(records.map((record) => [resourceIdKey(record.serverId), record]));
  // Tagged servers in the drill resource groups, and every recorded server not torn down yet.
  const found = new Map<string, Server & { id: string }>();
  for (const group of drillResourceGroups(ctx)) {
    for (const server of await listDrillServers(ctx, group)) {
      const id = server.id ?? formatResourceId({ subscriptionId: group.subscriptionId, resourceGroup: group.resourceGroup, type: 'Microsoft.DBforPostgreSQL/flexibleServers', name: server.name ?? '' });
      found.set(resourceIdKey(id), { ...server, id });
    }
  }
  for (const record of records) {
    if (record.state === 'deleted' || found.has(resourceIdKey(record.serverId))) continue;
    const server = await getServer(ctx, record.serverId);
    if (server !== undefined && drillOwner(server) !== undefined) found.set(resourceIdKey(record.serverId), { ...server, id: record.serverId });
  }
  const results: SweptServer[] = [];
  for (const [key, server] of found) {
    const owner = drillOwner(server) ?? '';
    const record = byId.get(key);
    if (record === undefined) {
      results.push({ serverId: server.id, owner, outcome: 'kept', reason: 'tagged as a drill server, but no drill recorded it: a tag alone does not make it a drill server (left alone)' });
      continue;
    }
    if (record.owner !== owner) {
      results.push({ serverId: server.id, owner, outcome: 'kept', reason: `recorded for drill ${record.owner}, but tagged for ${owner} (left alone)` });
      continue;
    }
    const overdue = options.now.getTime() > record.deadline.getTime() + SWEEP_GRACE_MS;
    if (!overdue && (await options.isActive(owner))) {
      results.push({ serverId: server.id, owner, outcome: 'kept', reason: `its drill ${owner} is still running; its own teardown deletes it` });
      continue;
    }
    if (ctx.config.dryRun) {
      results.push({ serverId: server.id, owner, outcome: 'would-delete', reason: `left over by drill ${owner}; not deleted (dry run)` });
      continue;
    }
    try {
      const deleted = await deleteStep(ctx, { serverId: server.id, owner, sourceServerId: record.sourceServerId });
      if (deleted !== 'not-owned') await scratchStep(ctx, { serverId: record.serverId, sourceServerId: record.sourceServerId, owner, deadline: record.deadline.toISOString(), state: 'deleted', at: options.now.toISOString() });
      results.push({
        serverId: server.id,
        owner,
        outcome: deleted === 'deleted' ? 'deleted' : deleted === 'absent' ? 'absent' : 'kept',
        reason: deleted === 'not-owned' ? 'its tags changed before the delete (left alone)' : `left over by drill ${owner} (${record.state})`,
      });
    } catch (error) {
      results.push({ serverId: server.id, owner, outcome: 'failed', reason: `delete failed: ${errorMessage(error).slice(0, 300)}` });
    }
  }
  const deleted = results.filter((entry) => entry.outcome === 'deleted').length;
  const failed = results.filter((entry) => entry.outcome === 'failed').length;
  const summary =
    results.length === 0
      ? 'no leftover drill servers'
      : `${String(deleted)} leftover drill server(s) deleted, ${String(results.filter((entry) => entry.outcome === 'would-delete').length)} would be (dry run), ${String(results.filter((entry) => entry.outcome === 'kept').length)} left alone, ${String(failed)} failed`;
  for (const entry of results) ctx.logger.log(entry.outcome === 'failed' || entry.outcome === 'deleted' ? 'warn' : 'info', { event: 'drill-sweeper.server', server: entry.serverId, outcome: entry.outcome, reason: entry.reason });
  let location: string | undefined;
  if (results.length > 0 && options.record !== false) location = await recordSweep(ctx, options, results, summary);
  return { servers: results, deleted, failed, summary, ...(location === undefined ? {} : { record: location }) };
}

async function recordSweep(ctx: RunbookContext, options: SweepOptions, results: readonly SweptServer[], summary: string): Promise<string> {
  const run = startRun({ runbook: 'restore-drill-sweep', trigger: options.trigger ?? 'timer', dryRun: ctx.config.dryRun, estate: ctx.config.estate, now: () => options.now });
  for (const entry of results) {
    const target = run.target(entry.serverId, 'postgresFlexibleServer');
    target.action({
      action: 'delete',
      outcome: entry.outcome === 'deleted' || entry.outcome === 'absent' ? 'applied' : entry.outcome === 'failed' ? 'failed' : entry.outcome === 'would-delete' ? 'planned' : 'skipped',
      message: entry.reason,
      resource: entry.serverId,
    });
    if (entry.outcome === 'failed') target.fail(new Error(entry.reason), 'delete');
  }
  const record = run.finish({ notes: [summary] });
  if (ctx.config.runRecords.blobServiceUrl === undefined && ctx.config.runRecords.storageAccountId === undefined) return 'not stored (no runRecords configured)';
  const store = await createRunRecordStore(ctx.config, ctx.clients);
  const location = (await store.write(record)).url;
  await sendRunNotifications(ctx.config, record, { agent: await ctx.clients.agent() });
  return location;
}
