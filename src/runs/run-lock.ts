/**
 * The per-runbook lock: no two runs of the same runbook on the same estate overlap, whatever
 * triggered them and in whichever process or instance they run.
 *
 * The lock is a blob lease on `locks/<estate>/<runbook>` in the run-records container
 * ({@link ./blob-lease.ts}). Blob storage grants a lease to one holder at a time and lets another
 * holder in only after the lease expires (or is broken), so a crashed run frees the lock within
 * {@link LEASE_SECONDS} seconds, and the same run (same lease id, from its run id) gets it back at
 * once. The holder renews the lease while the run lasts and releases it at the end. Nobody here
 * ever breaks a lease: an expired one is simply acquired.
 *
 * Without a run-record store there is no shared place to lease, so the lock falls back to an
 * in-process one; the executor says so in the run record.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { OpsAutopilotError } from '../errors.ts';
import { acquireBlobLease, LEASE_SECONDS, leaseIdFor, lockContainerCreator } from './blob-lease.ts';

export { LEASE_CALL_TIMEOUT_MS, LEASE_SECONDS, RENEW_EVERY_MS } from './blob-lease.ts';

/** Thrown when another run holds the lock. */
export class RunLockHeldError extends OpsAutopilotError {
  override readonly name: string = 'RunLockHeldError';
}

/** The release of a lock got no answer in time; the lease expires by itself. */
export class RunLockReleaseError extends OpsAutopilotError {
  override readonly name: string = 'RunLockReleaseError';
}

/**
 * The lock could not be taken because the store that holds it (the run-record store) could
 * not be reached or refused the request. The run does nothing: without the lock it cannot prove
 * that no other run is applying at the same time.
 */
export class RunLockUnavailableError extends OpsAutopilotError {
  override readonly name: string = 'RunLockUnavailableError';
}

/** A held lock. */
export interface RunLock {
  /** `blob-lease` (shared across processes and instances) or `in-process` (this process only). */
  readonly kind: 'blob-lease' | 'in-process';
  /** Where the lock lives, for records and logs, e.g. `autopilot-runs/locks/xshopai/image-purge`. */
  readonly location: string;
  /** Set when a renewal failed: the lease may have expired and another run may have started. */
  lost(): string | undefined;
  /** Releases the lock; idempotent. */
  release(): Promise<void>;
}

/** Options of {@link RunLockProvider.acquire}. */
export interface RunLockOptions {
  /**
   * The run that takes the lock (its run id). The lease id derives from it, so the same run
   * retried after a crash (a durable activity runs at least once) re-enters its own lock instead
   * of waiting a minute for its own lease to expire. Default: a new lease id.
   */
  readonly owner?: string;
}

/** Takes locks for an estate's runbooks. */
export interface RunLockProvider {
  /** @throws {@link RunLockHeldError} when another run holds it. */
  acquire(estate: string, runbook: string, options?: RunLockOptions): Promise<RunLock>;
}

/** Blob name of the lock of one runbook of one estate. */
export function lockBlobName(estate: string, runbook: string): string {
  return `locks/${estate}/${runbook}`;
}

/**
 * Locks backed by blob leases in `container` (the run-records container).
 *
 * @param options.renewEveryMs renewal period; tests shorten it.
 * @param options.callTimeoutMs bound of one renewal or the release; tests shorten it.
 */
export function blobLeaseLocks(container: ContainerClient, options: { renewEveryMs?: number; callTimeoutMs?: number } = {}): RunLockProvider {
  const timing = {
    ...(options.renewEveryMs === undefined ? {} : { renewEveryMs: options.renewEveryMs }),
    ...(options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs }),
  };
  const ensureContainer = lockContainerCreator(container);
  return {
    async acquire(estate, runbook, acquireOptions = {}) {
      const blobName = lockBlobName(estate, runbook);
      const location = `${container.containerName}/${blobName}`;
      await ensureContainer();
      const lease = await acquireBlobLease(container, blobName, {
        location,
        ...timing,
        ...(acquireOptions.owner === undefined ? {} : { leaseId: leaseIdFor(acquireOptions.owner), metadata: { owner: acquireOptions.owner } }),
        held: (cause) =>
          new RunLockHeldError(
            `runbook ${runbook} on estate ${estate}: expected no other run in progress, found the lock ${location} leased by another run (it frees within ${String(LEASE_SECONDS)} s if that run died)`,
            { context: { estate, runbook, lock: location }, cause },
          ),
        releaseTimedOut: (message, cause) => new RunLockReleaseError(message, { context: { lock: location }, cause }),
      });
      return { kind: 'blob-lease', location, lost: () => lease.lost(), release: () => lease.release() };
    },
  };
}

const heldInProcess = new Set<string>();

/** Locks that exclude runs within this process only (the fallback without a run-record store). */
export function inProcessLocks(): RunLockProvider {
  return {
    acquire(estate, runbook) {
      const key = `${estate}/${runbook}`;
      if (heldInProcess.has(key)) {
        return Promise.reject(
          new RunLockHeldError(`runbook ${runbook} on estate ${estate}: expected no other run in progress, found one running in this process`, {
            context: { estate, runbook, lock: `in-process:${key}` },
          }),
        );
      }
      heldInProcess.add(key);
      let released = false;
      return Promise.resolve({
        kind: 'in-process',
        location: `in-process:${key}`,
        lost: () => undefined,
        release() {
          if (!released) {
            released = true;
            heldInProcess.delete(key);
          }
          return Promise.resolve();
        },
      });
    },
  };
}
