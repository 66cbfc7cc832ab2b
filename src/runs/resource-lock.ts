/**
 * The per-resource lock: no two operations touch one Azure resource at once, whatever started
 * them — a runbook run (the executor takes it per target), a remediation, a restore, a rotation.
 * The per-runbook lock (`run-lock.ts`) keeps two runs of one runbook apart; this one keeps a
 * timer run and an alert remediation of the same container app apart.
 *
 * The lock is a blob lease ({@link ./blob-lease.ts}) on `locks/resources/<normalised ARM id>`
 * in the run-records container. The id is normalised as ARM compares ids (case-insensitively,
 * trailing slashes ignored), so every spelling of one resource is one lock. Hold it from the
 * reading your decision rests on until the change is done: a plan made before someone else's
 * change is the race the lock exists to prevent.
 *
 * Ownership: the caller names itself (`owner`: a run id, an orchestration instance id). The lease
 * id derives from the owner, so an owner retried after a crash (a durable activity runs at least
 * once) re-enters its own lock at once; anyone else gets {@link ResourceLockHeldError}, naming the
 * holder when the lock blob says who it is. It is not a counting lock: one release by the owner
 * frees it.
 *
 * Bounds: the lease is 60 s and renewed every 20 s, each renewal and the release within 15 s; a
 * holder whose renewal failed sees `lost()` set and must start nothing more; renewals stop after
 * `maxHoldMs` (default 2 h), so a stuck holder frees the resource within a minute of that.
 *
 * **Held across durable waits** ({@link ResourceLockProvider.hold}): a remediation keeps the lock
 * from its first change through the verification's durable timers to its undo, across many
 * activities and possibly several workers, so nobody in-process can renew it. `hold` takes an
 * *infinite* lease (lease id from the owner, so every activity of the orchestration re-enters it)
 * and writes `expiresAt` into the lock blob's metadata; each later `hold` by the owner moves it
 * on (bounded by `maxHoldMs`, at most {@link RESOURCE_LOCK_MAX_HOLD_MS} from now), and
 * `releaseHold` frees it. A holder that crashed and never came back is bounded by `expiresAt`:
 * the next contender (a runbook run, another remediation) finds it past and breaks the lease.
 * A live 60 s lease is never broken (its metadata has no `expiresAt`).
 *
 * Without a run-record store there is nowhere shared to lease: {@link resourceLocksFor} falls
 * back to in-process locks and says so.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { AzureClients } from '../azure/clients.ts';
import type { EstateConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { callAzure, ResourceConflictError, ResourceNotFoundError, toAzureError } from '../azure/errors.ts';
import { acquireBlobLease, LEASE_SECONDS, leaseHolder, leaseIdFor, lockContainerCreator } from './blob-lease.ts';
import { runRecordDestination } from './run-record-store.ts';
import { redactString } from './secret-guard.ts';

/** Blob-name prefix of resource locks in the run-records container. */
export const RESOURCE_LOCK_PREFIX = 'locks/resources';

/** Default longest hold: renewals stop after 2 hours. */
export const RESOURCE_LOCK_MAX_HOLD_MS = 2 * 60 * 60 * 1000;

/** Another owner holds the lock of this resource. */
export class ResourceLockHeldError extends OpsAutopilotError {
  override readonly name: string = 'ResourceLockHeldError';
  /** The normalised ARM id. */
  readonly resourceId: string;
  /** Who holds it, when the lock blob says (owner and purpose), else undefined. */
  readonly holder: string | undefined;

  constructor(message: string, details: { resourceId: string; holder: string | undefined; location: string; cause?: unknown }) {
    super(message, { context: { resourceId: details.resourceId, holder: details.holder, lock: details.location }, cause: details.cause });
    this.resourceId = details.resourceId;
    this.holder = details.holder;
  }
}

/** The id is not an ARM resource id, or the release got no answer in time. */
export class ResourceLockError extends OpsAutopilotError {
  override readonly name: string = 'ResourceLockError';
}

/** A held resource lock. */
export interface ResourceLock {
  /** The normalised ARM id ({@link normaliseResourceId}). */
  readonly resourceId: string;
  /** `blob-lease` (every process and instance) or `in-process` (this process only). */
  readonly kind: 'blob-lease' | 'in-process';
  /** Where it lives, e.g. `autopilot-runs/locks/resources/subscriptions/…/containerapps/ca-api`. */
  readonly location: string;
  readonly owner: string;
  /** Set once a renewal failed or the hold limit passed: start nothing more on the resource. */
  lost(): string | undefined;
  /** Releases it; idempotent. */
  release(): Promise<void>;
}

/** Options of {@link ResourceLockProvider.acquire}. */
export interface ResourceLockOptions {
  /** Who takes it: a run id, an orchestration instance id. The same owner re-enters its lock. */
  readonly owner: string;
  /** What for, shown to whoever finds it held, e.g. `revision-cleanup run 1f0c…`. No secrets. */
  readonly purpose?: string;
  /** Renewals stop after this long (default {@link RESOURCE_LOCK_MAX_HOLD_MS}). */
  readonly maxHoldMs?: number;
}

/** Options of {@link ResourceLockProvider.hold}. */
export interface ResourceLockHoldOptions {
  /** The orchestration instance id (or another stable owner): every hold by it re-enters. */
  readonly owner: string;
  readonly purpose?: string;
  /** How long from now the hold lasts unless renewed (capped at {@link RESOURCE_LOCK_MAX_HOLD_MS}). */
  readonly holdMs: number;
  /** The clock (ms); default `Date.now`. */
  readonly now?: () => number;
}

/** A lock held across activities: no renewal timer, an expiry instead. */
export interface HeldResourceLock {
  readonly resourceId: string;
  readonly kind: ResourceLock['kind'];
  readonly location: string;
  readonly owner: string;
  /** ISO time after which a contender may break it. */
  readonly expiresAt: string;
  /** True when this call took it (false: the owner held it already and moved the expiry on). */
  readonly acquired: boolean;
  /** True when a crashed holder's expired hold was broken to take it. */
  readonly brokeExpired: boolean;
}

/** Takes resource locks. */
export interface ResourceLockProvider {
  /**
   * @throws {@link ResourceLockHeldError} when another owner holds it.
   * @throws {@link ResourceLockError} when `resourceId` is not an ARM resource id.
   * @throws a typed Azure error when the store cannot be reached (fail closed: no lock, no change).
   */
  acquire(resourceId: string, options: ResourceLockOptions): Promise<ResourceLock>;
  /**
   * Takes the lock for `owner`, or moves its expiry on when `owner` holds it already, so that it
   * stays held across durable waits without anyone renewing it (see the module comment).
   *
   * @throws {@link ResourceLockHeldError} when another owner holds it (and its hold, if any, has not expired).
   */
  hold(resourceId: string, options: ResourceLockHoldOptions): Promise<HeldResourceLock>;
  /** Releases a hold of `owner`; `false` when it did not hold it (already released, expired and taken). Idempotent. */
  releaseHold(resourceId: string, owner: string): Promise<boolean>;
}

/** Metadata key of a durable hold's expiry on the lock blob. */
const EXPIRES_AT = 'expiresat';

function holdExpiry(options: ResourceLockHoldOptions): { now: number; expiresAt: string } {
  const now = (options.now ?? Date.now)();
  const ms = Math.max(1, Math.min(options.holdMs, RESOURCE_LOCK_MAX_HOLD_MS));
  return { now, expiresAt: new Date(now + ms).toISOString() };
}

/**
 * Breaks the lease on `blobName` when the lock blob says it is a durable hold past its expiry
 * (a crashed orchestration). True when broken.
 */
async function breakExpiredHold(container: ContainerClient, blobName: string, location: string, now: number): Promise<boolean> {
  const metadata = await leaseHolder(container, blobName);
  const expiresAt = metadata?.[EXPIRES_AT];
  if (expiresAt === undefined || !(Date.parse(expiresAt) < now)) return false;
  await callAzure({ resourceId: location, operation: 'break expired lock hold' }, async () => {
    await container.getBlockBlobClient(blobName).getBlobLeaseClient().breakLease(0);
  });
  return true;
}

/**
 * An ARM id as ARM compares them: lower-case, no trailing slash.
 *
 * @throws {@link ResourceLockError} for anything that is not `/subscriptions/...`.
 */
export function normaliseResourceId(resourceId: string): string {
  const id = resourceId.trim().replace(/\/+$/, '').toLowerCase();
  if (!/^\/subscriptions\/[^/]+(\/[^/]+)*$/.test(id) || id.split('/').some((segment, index) => index > 0 && (segment === '' || segment === '.' || segment === '..'))) {
    throw new ResourceLockError(`resource lock: expected an ARM resource id (/subscriptions/...), found "${redactString(resourceId)}"`, { context: { resourceId: redactString(resourceId) } });
  }
  return id;
}

/** Blob name of the lock of one resource. */
export function resourceLockBlobName(resourceId: string): string {
  return `${RESOURCE_LOCK_PREFIX}${normaliseResourceId(resourceId)}`;
}

function holderText(metadata: Readonly<Record<string, string>> | undefined): string | undefined {
  if (metadata?.owner === undefined) return undefined;
  return metadata.purpose === undefined ? metadata.owner : `${metadata.owner} (${metadata.purpose})`;
}

/**
 * Resource locks backed by blob leases in `container` (the run-records container).
 *
 * @param options.renewEveryMs / options.callTimeoutMs renewal period and the bound of one lease call; tests shorten them.
 */
export function blobResourceLocks(container: ContainerClient, options: { renewEveryMs?: number; callTimeoutMs?: number } = {}): ResourceLockProvider {
  const ensureContainer = lockContainerCreator(container);
  return {
    async acquire(resourceId, acquireOptions) {
      const id = normaliseResourceId(resourceId);
      const blobName = resourceLockBlobName(id);
      const location = `${container.containerName}/${blobName}`;
      await ensureContainer();
      const metadata: Record<string, string> = { owner: redactString(acquireOptions.owner), since: new Date().toISOString() };
      if (acquireOptions.purpose !== undefined) metadata.purpose = redactString(acquireOptions.purpose);
      const take = () => acquireBlobLease(container, blobName, {
        location,
        leaseId: leaseIdFor(acquireOptions.owner),
        maxHoldMs: acquireOptions.maxHoldMs ?? RESOURCE_LOCK_MAX_HOLD_MS,
        metadata,
        ...(options.renewEveryMs === undefined ? {} : { renewEveryMs: options.renewEveryMs }),
        ...(options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs }),
        held: async (cause) => {
          const heldBy = holderText(await leaseHolder(container, blobName));
          return new ResourceLockHeldError(
            `resource ${id}: expected no other operation on it, found its lock ${location} held${heldBy === undefined ? '' : ` by ${heldBy}`} (it frees within ${String(LEASE_SECONDS)} s if the holder died)`,
            { resourceId: id, holder: heldBy, location, cause },
          );
        },
        releaseTimedOut: (message, cause) => new ResourceLockError(message, { context: { resourceId: id, lock: location }, cause }),
      });
      let lease;
      try {
        lease = await take();
      } catch (error) {
        // A remediation that crashed mid-hold frees the resource once its hold expires.
        if (!(error instanceof ResourceLockHeldError) || !(await breakExpiredHold(container, blobName, location, Date.now()))) throw error;
        lease = await take();
      }
      return { resourceId: id, kind: 'blob-lease', location, owner: acquireOptions.owner, lost: () => lease.lost(), release: () => lease.release() };
    },
    async hold(resourceId, holdOptions) {
      const id = normaliseResourceId(resourceId);
      const blobName = resourceLockBlobName(id);
      const location = `${container.containerName}/${blobName}`;
      const { now, expiresAt } = holdExpiry(holdOptions);
      await ensureContainer();
      const blob = container.getBlockBlobClient(blobName);
      try {
        await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
      } catch (error) {
        const typed = toAzureError(error, { resourceId: location, operation: 'create lock blob' });
        if (!(typed instanceof ResourceConflictError)) throw typed;
      }
      const leaseId = leaseIdFor(holdOptions.owner);
      const before = await leaseHolder(container, blobName);
      const heldAlready = before?.owner === redactString(holdOptions.owner);
      const acquireInfinite = async (): Promise<void> => {
        try {
          // -1: infinite. With the owner's lease id this also succeeds while the owner holds it.
          await blob.getBlobLeaseClient(leaseId).acquireLease(-1);
        } catch (error) {
          const typed = toAzureError(error, { resourceId: location, operation: 'acquire lock hold' });
          if (!(typed instanceof ResourceConflictError)) throw typed;
          const heldBy = holderText(await leaseHolder(container, blobName));
          throw new ResourceLockHeldError(
            `resource ${id}: expected no other operation on it, found its lock ${location} held${heldBy === undefined ? '' : ` by ${heldBy}`}`,
            { resourceId: id, holder: heldBy, location, cause: typed },
          );
        }
      };
      let brokeExpired = false;
      try {
        await acquireInfinite();
      } catch (error) {
        if (!(error instanceof ResourceLockHeldError) || !(await breakExpiredHold(container, blobName, location, now))) throw error;
        brokeExpired = true;
        await acquireInfinite();
      }
      const metadata: Record<string, string> = {
        owner: redactString(holdOptions.owner),
        since: heldAlready && before.since !== undefined ? before.since : new Date(now).toISOString(),
        [EXPIRES_AT]: expiresAt,
      };
      if (holdOptions.purpose !== undefined) metadata.purpose = redactString(holdOptions.purpose);
      try {
        // Not best effort: the expiry is what bounds a hold whose owner crashed.
        await callAzure({ resourceId: location, operation: 'write lock hold expiry' }, async () => {
          await blob.setMetadata(metadata, { conditions: { leaseId } });
        });
      } catch (error) {
        if (!heldAlready) await blob.getBlobLeaseClient(leaseId).releaseLease().catch(() => undefined);
        throw error;
      }
      return { resourceId: id, kind: 'blob-lease', location, owner: holdOptions.owner, expiresAt, acquired: !heldAlready, brokeExpired };
    },
    async releaseHold(resourceId, owner) {
      const id = normaliseResourceId(resourceId);
      const blobName = resourceLockBlobName(id);
      const location = `${container.containerName}/${blobName}`;
      const blob = container.getBlockBlobClient(blobName);
      const leaseId = leaseIdFor(owner);
      try {
        // Clear the expiry first: a later 60 s holder must never look like an expired hold.
        await blob.setMetadata({}, { conditions: { leaseId } });
        await blob.getBlobLeaseClient(leaseId).releaseLease();
        return true;
      } catch (error) {
        const typed = toAzureError(error, { resourceId: location, operation: 'release lock hold' });
        // 404: never created; 409/412: not leased, or leased by someone else. Either way not ours.
        if (typed instanceof ResourceConflictError || typed instanceof ResourceNotFoundError) return false;
        throw typed;
      }
    },
  };
}

const heldInProcess = new Map<string, string>();
/** Expiries (ms) of in-process holds. */
const holdsInProcess = new Map<string, number>();

function inProcessHolder(id: string): string | undefined {
  const expires = holdsInProcess.get(id);
  if (expires !== undefined && expires < Date.now()) {
    holdsInProcess.delete(id);
    heldInProcess.delete(id);
  }
  return heldInProcess.get(id);
}

/** Resource locks that exclude owners within this process only (the fallback without a store). */
export function inProcessResourceLocks(): ResourceLockProvider {
  return {
    hold(resourceId, options) {
      const id = normaliseResourceId(resourceId);
      const holder = inProcessHolder(id);
      if (holder !== undefined && holder !== options.owner) {
        return Promise.reject(
          new ResourceLockHeldError(`resource ${id}: expected no other operation on it, found one in this process (${holder})`, { resourceId: id, holder, location: `in-process:${id}` }),
        );
      }
      const { expiresAt } = holdExpiry(options);
      heldInProcess.set(id, options.owner);
      holdsInProcess.set(id, Date.parse(expiresAt));
      return Promise.resolve({ resourceId: id, kind: 'in-process', location: `in-process:${id}`, owner: options.owner, expiresAt, acquired: holder === undefined, brokeExpired: false });
    },
    releaseHold(resourceId, owner) {
      const id = normaliseResourceId(resourceId);
      if (inProcessHolder(id) !== owner) return Promise.resolve(false);
      heldInProcess.delete(id);
      holdsInProcess.delete(id);
      return Promise.resolve(true);
    },
    acquire(resourceId, options) {
      const id = normaliseResourceId(resourceId);
      const holder = inProcessHolder(id);
      if (holder !== undefined && holder !== options.owner) {
        return Promise.reject(
          new ResourceLockHeldError(`resource ${id}: expected no other operation on it, found one in this process (${holder})`, { resourceId: id, holder, location: `in-process:${id}` }),
        );
      }
      heldInProcess.set(id, options.owner);
      let released = false;
      return Promise.resolve({
        resourceId: id,
        kind: 'in-process',
        location: `in-process:${id}`,
        owner: options.owner,
        lost: () => undefined,
        release() {
          if (!released) {
            released = true;
            if (heldInProcess.get(id) === options.owner) heldInProcess.delete(id);
          }
          return Promise.resolve();
        },
      });
    },
  };
}

/**
 * The resource locks of an estate: blob leases in its run-record container, or in-process ones
 * (with `note` saying so) when it has no run-record store.
 */
export async function resourceLocksFor(
  config: Pick<EstateConfig, 'runRecords' | 'estate'>,
  clients: Pick<AzureClients, 'blobServiceClient'>,
): Promise<{ provider: ResourceLockProvider; note: string | undefined }> {
  if (config.runRecords.blobServiceUrl === undefined && config.runRecords.storageAccountId === undefined) {
    return {
      provider: inProcessResourceLocks(),
      note: 'resource locks: in-process only, because runRecords is not configured; operations in other processes or instances are not excluded',
    };
  }
  const service = await clients.blobServiceClient(runRecordDestination(config));
  return { provider: blobResourceLocks(service.getContainerClient(config.runRecords.container)), note: undefined };
}

/**
 * Runs `fn` holding the lock of `resourceId`, and releases it afterwards (also when `fn`
 * throws). `fn` receives the lock so it can check `lost()` before each change.
 */
export async function withResourceLock<T>(provider: ResourceLockProvider, resourceId: string, options: ResourceLockOptions, fn: (lock: ResourceLock) => Promise<T>): Promise<T> {
  const lock = await provider.acquire(resourceId, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
