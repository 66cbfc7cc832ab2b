/**
 * The lock's own waits are bounded: a lease renewal (or the release) that storage never
 * answers gives up after its deadline, reports the lock lost well inside the lease, and the
 * release returns instead of hanging the run. Storage that hangs is played by a container
 * whose lease calls never settle until their abort signal fires (as the SDK's do).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { blobLeaseLocks, LEASE_CALL_TIMEOUT_MS, LEASE_SECONDS, RENEW_EVERY_MS, RunLockReleaseError } from '../../../src/runs/run-lock.ts';

interface Signalled {
  abortSignal?: AbortSignal;
}

/** A call that never answers; it rejects like the SDK does when its abort signal fires. */
function never(options?: Signalled): Promise<never> {
  return new Promise((_, reject) => {
    options?.abortSignal?.addEventListener('abort', () => {
      const error = new Error('The operation was aborted.');
      error.name = 'AbortError';
      reject(error);
    });
  });
}

function hangingStorage(): { container: ContainerClient; calls: string[] } {
  const calls: string[] = [];
  const lease = {
    acquireLease: () => Promise.resolve({}),
    renewLease: (options?: Signalled) => {
      calls.push(`renew:${options?.abortSignal === undefined ? 'unbounded' : 'bounded'}`);
      return never(options);
    },
    releaseLease: (options?: Signalled) => {
      calls.push(`release:${options?.abortSignal === undefined ? 'unbounded' : 'bounded'}`);
      return never(options);
    },
  };
  const container = {
    url: 'https://127.0.0.1:1/account/autopilot-runs',
    containerName: 'autopilot-runs',
    createIfNotExists: () => Promise.resolve({}),
    getBlockBlobClient: () => ({ upload: () => Promise.resolve({}), getBlobLeaseClient: () => lease }),
  };
  return { container: container as unknown as ContainerClient, calls };
}

describe('blob lease lock: bounded lease calls', () => {
  it('a renewal storage never answers reports the lock lost after the call deadline; the release gives up too', async () => {
    const { container, calls } = hangingStorage();
    const lock = await blobLeaseLocks(container, { renewEveryMs: 30, callTimeoutMs: 150 }).acquire('estate', 'image-purge');
    const started = Date.now();
    while (lock.lost() === undefined && Date.now() - started < 3000) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(lock.lost()).toBe('renewing the lease on autopilot-runs/locks/estate/image-purge failed: expected an answer within 150 ms, found none');
    expect(Date.now() - started).toBeLessThan(1500);
    const releasing = Date.now();
    const error = await lock.release().catch((e: unknown) => e);
    expect(Date.now() - releasing).toBeLessThan(1500);
    expect(error).toBeInstanceOf(RunLockReleaseError);
    expect((error as Error).message).toBe(
      `releasing the lock autopilot-runs/locks/estate/image-purge: expected an answer within 150 ms, found none (the lease frees itself within ${LEASE_SECONDS} s)`,
    );
    expect(calls.every((call) => call.endsWith(':bounded'))).toBe(true);
  });

  it('the defaults report a hung renewal lost well inside the lease, and renewals never overlap', () => {
    expect(RENEW_EVERY_MS + LEASE_CALL_TIMEOUT_MS).toBeLessThan(LEASE_SECONDS * 1000);
    expect(LEASE_CALL_TIMEOUT_MS).toBeLessThan(RENEW_EVERY_MS);
  });
});
