/**
 * The per-runbook lock: no two runs of the same runbook on the same estate overlap, whatever
 * triggered them and in whichever process or instance they run.
 *
 * The lock is a blob lease on `locks/<estate>/<runbook>` in the run-records container. Blob
 * storage grants a lease to one holder at a time and lets another holder in only after the
 * lease expires (or is broken), so a crashed run frees the lock within {@link LEASE_SECONDS}
 * seconds. The holder renews the lease while the run lasts and releases it at the end. Nobody
 * here ever breaks a lease: an expired one is simply acquired.
 *
 * Without a run-record store there is no shared place to lease, so the lock falls back to an
 * in-process one; the executor says so in the run record.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { callAzure, ResourceConflictError, toAzureError } from '../azure/errors.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';

/** Lease length in seconds (blob leases last 15-60 s or forever; 60 keeps crash recovery short). */
export const LEASE_SECONDS = 60;

/** How often the holder renews, well inside the lease. */
export const RENEW_EVERY_MS = 20_000;

/**
 * The longest one renewal (or the release) may take, storage's own retries included: 15 s.
 * A renewal that starts at most {@link RENEW_EVERY_MS} after the last good one and gives up
 * after this long has reported the lock lost 35 s into a 60 s lease, before another run could
 * take it; and it ends before the next renewal starts, so renewals never overlap.
 */
export const LEASE_CALL_TIMEOUT_MS = 15_000;

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

/** Takes locks for an estate's runbooks. */
export interface RunLockProvider {
  /** @throws {@link RunLockHeldError} when another run holds it. */
  acquire(estate: string, runbook: string): Promise<RunLock>;
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
  const renewEveryMs = options.renewEveryMs ?? RENEW_EVERY_MS;
  const callTimeoutMs = options.callTimeoutMs ?? LEASE_CALL_TIMEOUT_MS;
  /** Why a lease call failed: its deadline, or what storage said. */
  const reason = (error: unknown, signal: AbortSignal): string =>
    signal.aborted ? `expected an answer within ${callTimeoutMs} ms, found none` : errorMessage(error);
  let containerReady: Promise<void> | undefined;
  const ensureContainer = (): Promise<void> => {
    containerReady ??= callAzure({ resourceId: container.url.split('?')[0] ?? container.url, operation: 'create lock container' }, async () => {
      await container.createIfNotExists();
    }).catch((error: unknown) => {
      containerReady = undefined;
      throw error;
    });
    return containerReady;
  };
  return {
    async acquire(estate, runbook) {
      const blobName = lockBlobName(estate, runbook);
      const location = `${container.containerName}/${blobName}`;
      await ensureContainer();
      const blob = container.getBlockBlobClient(blobName);
      try {
        // ifNoneMatch '*': create once, never overwrite (overwriting a leased blob fails anyway).
        await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
      } catch (error) {
        // 409 BlobAlreadyExists, or 412 when a holder's lease protects it: the blob is there.
        const typed = toAzureError(error, { resourceId: location, operation: 'create lock blob' });
        if (!(typed instanceof ResourceConflictError)) throw typed;
      }
      const leaseClient = blob.getBlobLeaseClient();
      try {
        await leaseClient.acquireLease(LEASE_SECONDS);
      } catch (error) {
        const typed = toAzureError(error, { resourceId: location, operation: 'acquire lock lease' });
        // 409 LeaseAlreadyPresent: another run holds it.
        if (typed instanceof ResourceConflictError) {
          throw new RunLockHeldError(
            `runbook ${runbook} on estate ${estate}: expected no other run in progress, found the lock ${location} leased by another run (it frees within ${LEASE_SECONDS} s if that run died)`,
            { context: { estate, runbook, lock: location }, cause: typed },
          );
        }
        throw typed;
      }
      let lostReason: string | undefined;
      let released = false;
      let renewing: Promise<void> = Promise.resolve();
      const timer = setInterval(() => {
        const deadline = AbortSignal.timeout(callTimeoutMs);
        renewing = leaseClient.renewLease({ abortSignal: deadline }).then(
          () => undefined,
          (error: unknown) => {
            lostReason = `renewing the lease on ${location} failed: ${reason(error, deadline)}`;
          },
        );
      }, renewEveryMs);
      // The run itself keeps the process alive; the renewal timer must not.
      timer.unref();
      return {
        kind: 'blob-lease',
        location,
        lost: () => lostReason,
        async release() {
          if (released) return;
          released = true;
          clearInterval(timer);
          // Bounded: a renewal gives up after callTimeoutMs.
          await renewing;
          const deadline = AbortSignal.timeout(callTimeoutMs);
          try {
            await callAzure({ resourceId: location, operation: 'release lock lease' }, async () => {
              await leaseClient.releaseLease({ abortSignal: deadline });
            });
          } catch (error) {
            // An unreleased lease frees itself within LEASE_SECONDS; say so rather than hang.
            if (!deadline.aborted) throw error;
            throw new RunLockReleaseError(
              `releasing the lock ${location}: expected an answer within ${callTimeoutMs} ms, found none (the lease frees itself within ${LEASE_SECONDS} s)`,
              { context: { lock: location }, cause: error },
            );
          }
        },
      };
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
