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
 * Without a run-record store there is nowhere shared to lease: {@link resourceLocksFor} falls
 * back to in-process locks and says so.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { AzureClients } from '../azure/clients.ts';
import type { EstateConfig } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
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

/** Takes resource locks. */
export interface ResourceLockProvider {
  /**
   * @throws {@link ResourceLockHeldError} when another owner holds it.
   * @throws {@link ResourceLockError} when `resourceId` is not an ARM resource id.
   * @throws a typed Azure error when the store cannot be reached (fail closed: no lock, no change).
   */
  acquire(resourceId: string, options: ResourceLockOptions): Promise<ResourceLock>;
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
      const lease = await acquireBlobLease(container, blobName, {
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
      return { resourceId: id, kind: 'blob-lease', location, owner: acquireOptions.owner, lost: () => lease.lost(), release: () => lease.release() };
    },
  };
}

const heldInProcess = new Map<string, string>();

/** Resource locks that exclude owners within this process only (the fallback without a store). */
export function inProcessResourceLocks(): ResourceLockProvider {
  return {
    acquire(resourceId, options) {
      const id = normaliseResourceId(resourceId);
      const holder = heldInProcess.get(id);
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
