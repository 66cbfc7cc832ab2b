/**
 * A held blob lease that renews itself: the one primitive under the per-runbook lock
 * (`run-lock.ts`) and the per-resource lock (`resource-lock.ts`).
 *
 * Blob storage grants a lease to one lease id at a time and lets another id in only after the
 * lease expires (or is broken; nobody here breaks one). Acquiring with the lease id that already
 * holds it succeeds and restarts its duration, so an owner that derives its lease id from a
 * stable name ({@link leaseIdFor}: a run id, an orchestration instance id) gets its own lease
 * back after a crash and a retry, instead of being locked out by itself for a minute.
 *
 * Renewal is bounded: every renewal request has a timeout, a failed renewal is not retried
 * (the lease is reported lost, since it may expire before another attempt), and renewals stop
 * after `maxHoldMs`, so no holder can keep a lock forever.
 */
import { createHash } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { callAzure, ResourceConflictError, toAzureError } from '../azure/errors.ts';
import { errorMessage } from '../errors.ts';

/** Lease length in seconds (blob leases last 15-60 s or forever; 60 keeps crash recovery short). */
export const LEASE_SECONDS = 60;

/** How often the holder renews, well inside the lease. */
export const RENEW_EVERY_MS = 20_000;

/**
 * The longest one renewal (or the release) may take, storage's own retries included: 15 s.
 * A renewal that starts at most {@link RENEW_EVERY_MS} after the last good one and gives up
 * after this long has reported the lock lost 35 s into a 60 s lease, before another holder could
 * take it; and it ends before the next renewal starts, so renewals never overlap.
 */
export const LEASE_CALL_TIMEOUT_MS = 15_000;

/** Options of {@link acquireBlobLease}. */
export interface BlobLeaseOptions {
  /** The lease id to propose (see {@link leaseIdFor}); random when absent. */
  readonly leaseId?: string;
  /** For messages and records, e.g. `autopilot-runs/locks/xshopai/image-purge`. */
  readonly location: string;
  /** Renewal period; tests shorten it. */
  readonly renewEveryMs?: number;
  /** Bound of one renewal or the release ({@link LEASE_CALL_TIMEOUT_MS}); tests shorten it. */
  readonly callTimeoutMs?: number;
  /** Renewals stop after this long; the lease then expires within {@link LEASE_SECONDS}. Default: no limit. */
  readonly maxHoldMs?: number;
  /** Metadata written on the lock blob once the lease is held (who holds it, since when). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Turns the 409 "another lease is present" into the caller's typed error (it may read {@link leaseHolder}). */
  readonly held: (cause: ResourceConflictError) => Error | Promise<Error>;
  /** The caller's typed error for a release that got no answer within `callTimeoutMs`. */
  readonly releaseTimedOut: (message: string, cause: unknown) => Error;
  /** The clock; tests pass theirs. */
  readonly now?: () => number;
}

/** A held lease. */
export interface HeldBlobLease {
  readonly leaseId: string;
  /** Set once a renewal failed or the hold limit passed: another holder may have it now. */
  lost(): string | undefined;
  /** Stops renewing and releases the lease; idempotent. */
  release(): Promise<void>;
}

/**
 * A lease id (a GUID, as blob storage requires) derived from an owner's stable name: the same
 * owner always proposes the same id, so it re-enters its own lease after a crash.
 */
export function leaseIdFor(owner: string): string {
  const hex = createHash('sha256').update(`ops-autopilot-lease:${owner}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Creates the lock container once per provider (the first acquire pays for it); a failure is
 * not cached, so the next acquire tries again.
 */
export function lockContainerCreator(container: ContainerClient): () => Promise<void> {
  let containerReady: Promise<void> | undefined;
  return () => {
    containerReady ??= callAzure({ resourceId: container.url.split('?')[0] ?? container.url, operation: 'create lock container' }, async () => {
      await container.createIfNotExists();
    }).catch((error: unknown) => {
      containerReady = undefined;
      throw error;
    });
    return containerReady;
  };
}

/** The owner named in a lock blob's metadata, for "held by ..." messages; undefined when unreadable. */
export async function leaseHolder(container: ContainerClient, blobName: string): Promise<Readonly<Record<string, string>> | undefined> {
  try {
    const properties = await container.getBlockBlobClient(blobName).getProperties();
    return properties.metadata;
  } catch {
    return undefined;
  }
}

/**
 * Creates the lock blob if needed (never overwriting it), takes the lease and keeps renewing it.
 *
 * @throws what `options.held` returns when another lease id holds it; a typed Azure error when
 * the store cannot be reached.
 */
export async function acquireBlobLease(container: ContainerClient, blobName: string, options: BlobLeaseOptions): Promise<HeldBlobLease> {
  const { location } = options;
  const blob = container.getBlockBlobClient(blobName);
  try {
    // ifNoneMatch '*': create once, never overwrite (overwriting a leased blob fails anyway).
    await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
  } catch (error) {
    // 409 BlobAlreadyExists, or 412 when a holder's lease protects it: the blob is there.
    const typed = toAzureError(error, { resourceId: location, operation: 'create lock blob' });
    if (!(typed instanceof ResourceConflictError)) throw typed;
  }
  const leaseClient = blob.getBlobLeaseClient(options.leaseId);
  try {
    await leaseClient.acquireLease(LEASE_SECONDS);
  } catch (error) {
    const typed = toAzureError(error, { resourceId: location, operation: 'acquire lock lease' });
    // 409 LeaseAlreadyPresent: another lease id holds it.
    if (typed instanceof ResourceConflictError) throw await options.held(typed);
    throw typed;
  }
  const leaseId = leaseClient.leaseId;
  if (options.metadata !== undefined) {
    // Best effort: the metadata only names the holder in messages; the lease is the lock.
    await blob.setMetadata({ ...options.metadata }, { conditions: { leaseId } }).catch(() => undefined);
  }
  const now = options.now ?? Date.now;
  const heldSince = now();
  const renewEveryMs = options.renewEveryMs ?? RENEW_EVERY_MS;
  const callTimeoutMs = options.callTimeoutMs ?? LEASE_CALL_TIMEOUT_MS;
  /** Why a lease call failed: its deadline, or what storage said. */
  const reason = (error: unknown, signal: AbortSignal): string =>
    signal.aborted ? `expected an answer within ${String(callTimeoutMs)} ms, found none` : errorMessage(error);
  let lostReason: string | undefined;
  let released = false;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (lostReason !== undefined) return;
    if (options.maxHoldMs !== undefined && now() - heldSince >= options.maxHoldMs) {
      lostReason = `held ${location} for its limit of ${String(Math.round(options.maxHoldMs / 1000))} s; renewals stopped`;
      clearInterval(timer);
      return;
    }
    const deadline = AbortSignal.timeout(callTimeoutMs);
    renewing = leaseClient.renewLease({ abortSignal: deadline }).then(
      () => undefined,
      (error: unknown) => {
        lostReason = `renewing the lease on ${location} failed: ${reason(error, deadline)}`;
      },
    );
  }, renewEveryMs);
  // The work itself keeps the process alive; the renewal timer must not.
  timer.unref();
  return {
    leaseId,
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
        throw options.releaseTimedOut(
          `releasing the lock ${location}: expected an answer within ${String(callTimeoutMs)} ms, found none (the lease frees itself within ${String(LEASE_SECONDS)} s)`,
          error,
        );
      }
    },
  };
}
