/**
 * The flexible-server side of a point-in-time restore: validation before anything is created,
 * the create (`createMode: PointInTimeRestore`, a long-running operation started here and
 * followed by durable timers in the orchestrator), its status, and the delete of a server the
 * automation created (recognised by its tags, never by name alone).
 *
 * Free of `@azure/functions` and `durable-functions`; every function takes its clients.
 */
import type { Server } from '@azure/arm-postgresql-flexible';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, firstLineOf, ResourceNotFoundError, TransientAzureError } from '../azure/errors.ts';
import { formatResourceId, parseResourceId, sameResourceId } from '../azure/resource-id.ts';
import type { RestorePolicy } from '../config/restore-schema.ts';
import type { EstateConfig, TargetConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';

/** Azure refuses restore points in the last few minutes (the WAL is not archived yet). */
export const LATEST_RESTORE_LAG_MS = 5 * 60 * 1000;

/** Tags every server the automation creates carries: who made it, for which run, from what. */
export const TAGS = {
  createdBy: 'ops-autopilot-created-by',
  purpose: 'ops-autopilot-purpose',
  owner: 'ops-autopilot-owner',
  source: 'ops-autopilot-source',
} as const;

/** The value of {@link TAGS.createdBy}. */
export const CREATED_BY = 'ops-autopilot';

/** Flexible server names: 3-63 lower-case letters, digits and hyphens, no leading, trailing or double hyphen. */
const SERVER_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** The request was invalid; nothing was created. Each problem names the field, what was expected and what was found. */
export class RestoreValidationError extends OpsAutopilotError {
  override readonly name: string = 'RestoreValidationError';
  readonly problems: readonly string[];
  constructor(problems: readonly string[], context: Record<string, string>) {
    super(`restore refused, nothing created: ${problems.join('; ')}`, { context });
    this.problems = problems;
  }
}

/** What a restore request names (references only). */
export interface RestoreRequest {
  /** ARM id or name of the source server (a configured target with a `restore` policy). */
  readonly server: string;
  /** ISO 8601 with a zone, or `latest` (now − 5 minutes). */
  readonly point: string;
  /** The new server's name; default `{source}-r{yyyymmddhhmm}` of the point. */
  readonly newServerName?: string;
  /** Resource group of the new server; default the source's. */
  readonly resourceGroup?: string;
}

/** A validated restore: everything the create needs, all references. JSON-serialisable. */
export interface RestorePlan {
  readonly sourceServerId: string;
  readonly sourceName: string;
  /** The source's `fullyQualifiedDomainName`, for the row-count comparison. */
  readonly sourceFqdn: string;
  readonly location: string;
  readonly pointInTime: string;
  readonly earliestRestoreDate: string;
  readonly latestRestorePoint: string;
  readonly newServerId: string;
  readonly newServerName: string;
  readonly administratorLogin: string;
  /** Steps the restore will take, for a plan or a dry run. */
  readonly steps: readonly string[];
}

/** The configured target of a source server, by ARM id or by name. */
export function findRestoreTarget(config: EstateConfig, server: string): (TargetConfig & { restore: RestorePolicy }) | undefined {
  const candidates = config.targets.filter((target): target is TargetConfig & { restore: RestorePolicy } => target.restore !== undefined);
  if (server.startsWith('/')) return candidates.find((target) => sameResourceId(target.id, server));
  const byName = candidates.filter((target) => parseResourceId(target.id).name.toLowerCase() === server.toLowerCase());
  return byName.length === 1 ? byName[0] : undefined;
}

function defaultServerName(source: string, point: Date): string {
  const stamp = point.toISOString().replace(/[-:T]/g, '').slice(0, 12);
  const suffix = `-r${stamp}`;
  return `${source.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

function nameProblem(name: string): string | undefined {
  if (!SERVER_NAME.test(name) || name.includes('--')) {
    return `newServerName: expected 3-63 lower-case letters, digits and hyphens (not at either end, never two in a row), found "${name.slice(0, 100)}"`;
  }
  return undefined;
}

/**
 * Validates a restore before anything is created: the source is a configured target with a
 * restore policy, exists and is Ready; the point lies in [earliestRestoreDate, now − 5 min]; the
 * new name is valid and free (Azure's name check and the target resource group).
 *
 * @param now the orchestration's (or caller's) clock.
 * @throws {@link RestoreValidationError} listing every problem found.
 */
export async function validateRestore(config: EstateConfig, clients: AzureClients, request: RestoreRequest, now: Date, purpose = 'restore'): Promise<RestorePlan> {
  const target = findRestoreTarget(config, request.server);
  if (target === undefined) {
    throw new RestoreValidationError(
      [`server: expected a PostgreSQL flexible server target of estate ${config.estate} with a restore policy (by ARM id or unique name), found "${request.server.slice(0, 300)}"`],
      { server: request.server.slice(0, 300) },
    );
  }
  const id = parseResourceId(target.id);
  const client = await clients.postgresClient(id.subscriptionId);
  const source: Server = await callAzure({ resourceId: target.id, operation: 'get flexible server', expected: 'the source server to exist' }, () =>
    client.servers.get(id.resourceGroup, id.name),
  ).catch((error: unknown) => {
    if (error instanceof ResourceNotFoundError) throw new RestoreValidationError([`server: expected ${target.id} to exist, found no such server`], { server: target.id });
    throw error;
  });
  const problems: string[] = [];
  if (source.state !== 'Ready') problems.push(`server: expected the source ${id.name} to be Ready, found ${source.state ?? 'no state'}`);
  const earliestText = source.backup?.earliestRestoreDate;
  const earliest = earliestText === undefined ? undefined : new Date(earliestText);
  const latest = new Date(now.getTime() - LATEST_RESTORE_LAG_MS);
  let point: Date | undefined;
  if (request.point === 'latest') point = latest;
  else if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(request.point) || Number.isNaN(new Date(request.point).getTime())) {
    problems.push(`point: expected an ISO 8601 date and time with a zone (e.g. 2026-12-01T10:00:00Z) or "latest", found "${request.point.slice(0, 100)}"`);
  } else point = new Date(request.point);
  if (point !== undefined) {
    if (earliest === undefined) problems.push(`point: expected the source to report backup.earliestRestoreDate, found none (no restore window)`);
    else if (point < earliest || point > latest) {
      problems.push(`point: expected a time between the earliest restore date ${earliest.toISOString()} and now − 5 min (${latest.toISOString()}), found ${point.toISOString()}`);
    }
  }
  const resourceGroup = request.resourceGroup ?? id.resourceGroup;
  const newServerName = request.newServerName ?? (point === undefined ? '' : defaultServerName(id.name, point));
  if (point !== undefined || request.newServerName !== undefined) {
    const invalid = nameProblem(newServerName);
    if (invalid !== undefined) problems.push(invalid);
    else if (newServerName === id.name) problems.push(`newServerName: expected a new server, found the source's own name ${id.name} (a restore never overwrites the source)`);
    else {
      const availability = await callAzure({ resourceId: `/subscriptions/${id.subscriptionId}/providers/Microsoft.DBforPostgreSQL`, operation: 'check name availability' }, () =>
        client.nameAvailability.checkGlobally({ name: newServerName, type: 'Microsoft.DBforPostgreSQL/flexibleServers' }),
      );
      if (availability.nameAvailable !== true) problems.push(`newServerName: expected a free server name, found "${newServerName}" ${availability.reason === 'AlreadyExists' ? 'already in use' : `refused (${availability.message ?? availability.reason ?? 'no reason given'})`}`);
    }
  }
  if (problems.length > 0 || point === undefined || earliest === undefined) throw new RestoreValidationError(problems, { server: target.id });
  const newServerId = formatResourceId({ subscriptionId: id.subscriptionId, resourceGroup, type: 'Microsoft.DBforPostgreSQL/flexibleServers', name: newServerName });
  return {
    sourceServerId: target.id,
    sourceName: id.name,
    sourceFqdn: source.fullyQualifiedDomainName ?? `${id.name}.postgres.database.azure.com`,
    location: source.location,
    pointInTime: point.toISOString(),
    earliestRestoreDate: earliest.toISOString(),
    latestRestorePoint: latest.toISOString(),
    newServerId,
    newServerName,
    administratorLogin: source.administratorLogin ?? '',
    steps: [
      `create ${newServerName} in ${resourceGroup} (${source.location}) from ${id.name} as of ${point.toISOString()} (createMode PointInTimeRestore, tagged ${TAGS.purpose}=${purpose})`,
      `wait for it to be Ready (durable timers, at most ${target.restore.restoreTimeoutHours} h)`,
      `validate its data: ${target.restore.checks.tables.length} row count(s), ${target.restore.checks.sql.length} SQL check(s)`,
    ],
  };
}

/** What {@link startRestoreServer} did. */
export interface RestoreStart {
  /** `started` now, or `existing` (an earlier attempt of the same owner started it). */
  readonly outcome: 'started' | 'existing';
  /** The poller's serialised state (operation URLs only; no secrets), to resume polling from. */
  readonly pollerState: string | undefined;
}

/** The tags a created server carries. */
export function ownerTags(owner: string, purpose: 'restore' | 'drill', sourceServerId: string): Record<string, string> {
  return { [TAGS.createdBy]: CREATED_BY, [TAGS.purpose]: purpose, [TAGS.owner]: owner, [TAGS.source]: sourceServerId.toLowerCase().slice(0, 256) };
}

/** A server another owner created, or nobody: the automation may not touch it. */
export class ServerNotOwnedError extends OpsAutopilotError {
  override readonly name: string = 'ServerNotOwnedError';
}

function ownedBy(server: Server, owner: string): boolean {
  return server.tags?.[TAGS.createdBy] === CREATED_BY && server.tags[TAGS.owner] === owner;
}

async function getServer(clients: AzureClients, serverId: string): Promise<Server | undefined> {
  const id = parseResourceId(serverId);
  const client = await clients.postgresClient(id.subscriptionId);
  try {
    return await callAzure({ resourceId: serverId, operation: 'get flexible server' }, () => client.servers.get(id.resourceGroup, id.name));
  } catch (error) {
    if (error instanceof ResourceNotFoundError) return undefined;
    throw error;
  }
}

/**
 * Starts the point-in-time restore of `plan` (idempotent per owner): when the server already
 * exists with this owner's tags (a retried or replayed activity), nothing is started again;
 * when it exists otherwise, the name was taken meanwhile and nothing is touched.
 *
 * @throws {@link ServerNotOwnedError} when a server of that name exists that this owner did not create.
 */
export async function startRestoreServer(clients: AzureClients, plan: RestorePlan, owner: string, purpose: 'restore' | 'drill'): Promise<RestoreStart> {
  const existing = await getServer(clients, plan.newServerId);
  if (existing !== undefined) {
    if (ownedBy(existing, owner)) return { outcome: 'existing', pollerState: undefined };
    throw new ServerNotOwnedError(`restore ${owner}: expected ${plan.newServerName} to be free or created by this restore, found a server of that name that it did not create (left untouched)`, {
      context: { resourceId: plan.newServerId },
    });
  }
  const id = parseResourceId(plan.newServerId);
  const client = await clients.postgresClient(id.subscriptionId);
  const poller = await callAzure({ resourceId: plan.newServerId, operation: 'create flexible server (PointInTimeRestore)' }, () =>
    client.servers.beginCreateOrUpdate(id.resourceGroup, id.name, {
      location: plan.location,
      tags: ownerTags(owner, purpose, plan.sourceServerId),
      createMode: 'PointInTimeRestore',
      sourceServerResourceId: plan.sourceServerId,
      pointInTimeUTC: new Date(plan.pointInTime),
    }),
  );
  return { outcome: 'started', pollerState: poller.toString() };
}

/** Where a restored server is. */
export interface RestoreServerStatus {
  readonly state: 'provisioning' | 'ready' | 'failed';
  readonly detail: string;
  readonly fullyQualifiedDomainName?: string;
}

/**
 * One look at a restore in progress: the long-running operation polled once (resumed from its
 * serialised state, so its failure and message are Azure's), then the server itself.
 */
export async function restoreServerStatus(clients: AzureClients, plan: RestorePlan, owner: string, pollerState: string | undefined): Promise<RestoreServerStatus> {
  const id = parseResourceId(plan.newServerId);
  if (pollerState !== undefined) {
    const client = await clients.postgresClient(id.subscriptionId);
    const poller = await client.servers.beginCreateOrUpdate(id.resourceGroup, id.name, { location: plan.location }, { resumeFrom: pollerState });
    try {
      await callAzure({ resourceId: plan.newServerId, operation: 'poll restore operation' }, () => poller.poll());
    } catch (error) {
      // Azure unreachable says nothing about the operation: the orchestration looks again later.
      if (error instanceof TransientAzureError) throw error;
      return { state: 'failed', detail: `the restore operation failed: ${firstLineOf(error)}` };
    }
    const state = poller.getOperationState();
    if (state.status === 'failed' || state.status === 'canceled') {
      return { state: 'failed', detail: `the restore operation ${state.status}: ${state.error?.message ?? 'no reason given'}` };
    }
  }
  const server = await getServer(clients, plan.newServerId);
  if (server === undefined) return { state: 'failed', detail: `the restore operation left no server ${plan.newServerName} behind` };
  if (!ownedBy(server, owner)) return { state: 'failed', detail: `${plan.newServerName} exists but was not created by ${owner}` };
  if (server.state === 'Ready') return { state: 'ready', detail: `${plan.newServerName} is Ready`, fullyQualifiedDomainName: server.fullyQualifiedDomainName ?? `${plan.newServerName}.postgres.database.azure.com` };
  return { state: 'provisioning', detail: `${plan.newServerName} is ${server.state ?? 'being created'}` };
}

/**
 * Deletes a server this owner created and awaits the operation. A server that is gone already
 * counts as deleted; one without this owner's tags is never deleted.
 *
 * @returns `deleted`, `absent` or `not-owned`.
 */
export async function deleteOwnedServer(clients: AzureClients, serverId: string, owner: string): Promise<'deleted' | 'absent' | 'not-owned'> {
  const server = await getServer(clients, serverId);
  if (server === undefined) return 'absent';
  if (!ownedBy(server, owner)) return 'not-owned';
  const id = parseResourceId(serverId);
  const client = await clients.postgresClient(id.subscriptionId);
  await callAzure({ resourceId: serverId, operation: 'delete flexible server' }, () => client.servers.beginDeleteAndWait(id.resourceGroup, id.name));
  return 'deleted';
}

/** Re-exported for the drill's sweeper: whether a listed server carries an owner's tags. */
export function serverOwner(server: Server): string | undefined {
  return server.tags?.[TAGS.createdBy] === CREATED_BY ? server.tags[TAGS.owner] : undefined;
}
