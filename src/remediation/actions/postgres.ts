/**
 * Remediation actions on PostgreSQL flexible servers: `restart` and `scale-up` (the next compute
 * size of an explicit ladder). Both are long-running operations, awaited through the SDK poller
 * with a deadline. Both need the server `Ready`: Azure fails them otherwise, and a server that is
 * already restarting or updating is not one to act on again.
 */
import type { PostgreSQLManagementFlexibleServerClient, Server } from '@azure/arm-postgresql-flexible';
import { callAzure } from '../../azure/errors.ts';
import { parseResourceId, type ResourceId } from '../../azure/resource-id.ts';
import { awaitOperation } from './long-running.ts';
import { parseParams, postgresRestartParamsSchema, postgresScaleUpParamsSchema } from './params.ts';
import { nextOnLadder, postgresSkuRank, postgresTier } from './sku-tables.ts';
import { ActionNotEffectiveError, ActionRefusedError, ActionStateChangedError, checkPlanFor, type ActionContext, type RemediationAction, type UndoRecord } from './types.ts';

const KIND = 'postgresFlexibleServer' as const;
const str = (value: unknown): string => (typeof value === 'string' ? value : '');

async function pg(ctx: ActionContext, id: ResourceId): Promise<PostgreSQLManagementFlexibleServerClient> {
  return ctx.clients.postgresClient(id.subscriptionId);
}

async function readServer(ctx: ActionContext, id: ResourceId): Promise<Server> {
  const client = await pg(ctx, id);
  return callAzure({ resourceId: id.id, operation: 'get PostgreSQL flexible server' }, () => client.servers.get(id.resourceGroup, id.name));
}

function requireReady(action: 'restart' | 'scale-up', id: ResourceId, server: Server, refused: typeof ActionRefusedError): void {
  if (server.state !== 'Ready') {
    throw new refused(action, id.id, `expected the server to be Ready, found ${server.state ?? 'Unknown'}`, { expected: 'state Ready', found: server.state ?? 'Unknown' });
  }
}

const highAvailability = (server: Server): boolean => (server.highAvailability?.mode ?? 'Disabled') !== 'Disabled';

/** `restart` of a PostgreSQL flexible server. */
export const postgresRestart: RemediationAction = {
  name: 'restart',
  kinds: [KIND],
  description: 'restart the PostgreSQL flexible server (connections drop while it restarts); not reversible',
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(postgresRestartParamsSchema, raw, 'restart', id.id);
    const server = await readServer(ctx, id);
    requireReady('restart', id, server, ActionRefusedError);
    if (params.failover && !highAvailability(server)) {
      throw new ActionRefusedError('restart', id.id, 'expected high availability for a restart with failover, found none', { expected: 'highAvailability ZoneRedundant or SameZone', found: server.highAvailability?.mode ?? 'Disabled' });
    }
    return {
      action: 'restart',
      kind: KIND,
      targetId: id.id,
      summary: `restart PostgreSQL server ${id.name}${params.failover ? ' with a planned failover to the standby' : ''}`,
      changes: [{ resource: id.id, field: 'state', from: 'Ready', to: 'Ready (restarted)' }],
      reversible: false,
      irreversibleReason: 'a restart cannot be undone (and needs no undo: the server keeps its configuration)',
      params: { ...params },
      observed: { state: server.state ?? 'Unknown', sku: server.sku?.name ?? '', highAvailability: server.highAvailability?.mode ?? 'Disabled' },
      notes: ['open connections drop; clients reconnect once the server is Ready again'],
      plannedAt: ctx.now().toISOString(),
    };
  },
  async apply(ctx, target, plan) {
    checkPlanFor(plan, 'restart', KIND, target);
    const id = parseResourceId(target.id);
    requireReady('restart', id, await readServer(ctx, id), ActionStateChangedError);
    const client = await pg(ctx, id);
    const failover = plan.params.failover === true ? { parameters: { restartWithFailover: true, failoverMode: 'PlannedFailover' } } : {};
    await awaitOperation(ctx, { resourceId: id.id, operation: 'restart PostgreSQL server' }, (options) => client.servers.beginRestart(id.resourceGroup, id.name, { ...options, ...failover }));
    const after = await readServer(ctx, id);
    return { action: 'restart', targetId: id.id, outcome: 'applied', message: `restarted ${id.name}; state ${after.state ?? 'Unknown'}`, after: { state: after.state ?? 'Unknown' } };
  },
};

async function setSku(ctx: ActionContext, id: ResourceId, from: string, to: string, toTier: string, what: string): Promise<{ outcome: 'applied' | 'skipped'; after: string }> {
  const server = await readServer(ctx, id);
  const now = server.sku?.name ?? '';
  if (now.toLowerCase() === to.toLowerCase()) return { outcome: 'skipped', after: now };
  if (now.toLowerCase() !== from.toLowerCase()) {
    throw new ActionStateChangedError('scale-up', id.id, 'the compute size changed since the plan was made', { expected: from, found: now });
  }
  requireReady('scale-up', id, server, ActionStateChangedError);
  const tier = postgresTier(to) ?? (toTier as ReturnType<typeof postgresTier>);
  if (tier === undefined || (toTier !== '' && toTier !== tier)) {
    throw new ActionRefusedError('scale-up', id.id, `expected a flexible server compute size with its tier, found ${to} (${toTier || 'no tier'})`, { expected: 'e.g. Standard_D2ds_v5 (GeneralPurpose)', found: `${to} (${toTier || 'no tier'})` });
  }
  const client = await pg(ctx, id);
  await awaitOperation(ctx, { resourceId: id.id, operation: what }, (options) => client.servers.beginUpdate(id.resourceGroup, id.name, { sku: { name: to, tier } }, options));
  const after = (await readServer(ctx, id)).sku?.name ?? '';
  if (after.toLowerCase() !== to.toLowerCase()) {
    throw new ActionNotEffectiveError('scale-up', id.id, 'the update completed but the server reports another compute size', { expected: to, found: after });
  }
  return { outcome: 'applied', after };
}

function undoRecord(id: ResourceId, from: string, fromTier: string, to: string, toTier: string): UndoRecord {
  return { action: 'scale-up', kind: KIND, targetId: id.id, summary: `compute size of ${id.name} back to ${from}`, data: { fromSku: to, fromTier: toTier, toSku: from, toTier: fromTier } };
}

/** `scale-up`: the next compute size of an explicit ladder. */
export const postgresScaleUp: RemediationAction = {
  name: 'scale-up',
  kinds: [KIND],
  description: 'move the PostgreSQL server to the next compute size of an explicit ladder (the server restarts); reversible',
  async plan(ctx, target, raw) {
    const id = parseResourceId(target.id);
    const params = parseParams(postgresScaleUpParamsSchema, raw, 'scale-up', id.id);
    const ladder = params.skus.map((sku) => sku.name);
    const mismatched = params.skus.filter((sku) => postgresTier(sku.name) !== undefined && postgresTier(sku.name) !== sku.tier);
    if (mismatched.length > 0) {
      throw new ActionRefusedError('scale-up', id.id, `expected each SKU's tier to match its name, found ${mismatched.map((sku) => `${sku.name} (${sku.tier})`).join(', ')}`, {
        expected: 'Standard_B* Burstable, Standard_D* GeneralPurpose, Standard_E* MemoryOptimized',
        found: mismatched.map((sku) => `${sku.name} (${sku.tier})`).join(', '),
      });
    }
    const server = await readServer(ctx, id);
    requireReady('scale-up', id, server, ActionRefusedError);
    const current = server.sku?.name ?? '';
    const next = nextOnLadder(ladder, current, postgresSkuRank);
    if (next === undefined) {
      throw new ActionRefusedError('scale-up', id.id, `expected a compute size on the ladder [${ladder.join(', ')}] above the server's ${current || 'unknown size'}, found none: already at or above the maximum, or not comparable`, {
        expected: `a size above ${current || 'the current one'} on ${ladder.join(', ')}`,
        found: current || 'none',
      });
    }
    const tier = params.skus.find((sku) => sku.name === next)?.tier ?? postgresTier(next);
    if (tier === 'Burstable' && highAvailability(server)) {
      throw new ActionRefusedError('scale-up', id.id, `expected a General Purpose or Memory Optimized size for a server with high availability, found ${next} (Burstable)`, { expected: 'a non-Burstable size', found: next });
    }
    return {
      action: 'scale-up',
      kind: KIND,
      targetId: id.id,
      summary: `scale PostgreSQL server ${id.name} up from ${current} to ${next} (${tier ?? 'unknown tier'})`,
      changes: [{ resource: id.id, field: 'sku.name', from: current, to: next }],
      reversible: true,
      undo: undoRecord(id, current, server.sku?.tier ?? '', next, tier ?? ''),
      params: { skus: params.skus.map((sku) => ({ name: sku.name, tier: sku.tier })) },
      observed: { state: server.state ?? 'Unknown', fromSku: current, fromTier: server.sku?.tier ?? '', toSku: next, toTier: tier ?? '', highAvailability: server.highAvailability?.mode ?? 'Disabled' },
      notes: [highAvailability(server) ? 'with high availability the standby is scaled first, then a failover: a short interruption' : 'the server restarts on the new compute size: connections drop for a few minutes'],
      plannedAt: ctx.now().toISOString(),
    };
  },
  async apply(ctx, target, plan) {
    checkPlanFor(plan, 'scale-up', KIND, target);
    const id = parseResourceId(target.id);
    const from = str(plan.observed.fromSku);
    const to = str(plan.observed.toSku);
    const done = await setSku(ctx, id, from, to, str(plan.observed.toTier), 'scale up PostgreSQL server');
    return {
      action: 'scale-up',
      targetId: id.id,
      outcome: done.outcome,
      message: `${done.outcome === 'applied' ? 'set' : 'already at'} ${to} on ${id.name} (was ${from})`,
      after: { sku: done.after },
      undo: undoRecord(id, from, str(plan.observed.fromTier), to, str(plan.observed.toTier)),
    };
  },
  async undo(ctx, target, record) {
    checkPlanFor(record, 'scale-up', KIND, target);
    const id = parseResourceId(target.id);
    const done = await setSku(ctx, id, str(record.data.fromSku), str(record.data.toSku), str(record.data.toTier), 'undo scale-up of PostgreSQL server');
    return { action: 'scale-up', targetId: id.id, outcome: done.outcome, message: `${done.outcome === 'applied' ? 'set' : 'already at'} ${str(record.data.toSku)} on ${id.name}`, after: { sku: done.after } };
  },
};
