/**
 * The per-resource lock (src/runs/resource-lock.ts) against Azurite: one lock per resource
 * however its id is spelled, contention with a typed error naming the holder, re-entry by the
 * same owner, bounded renewal (lost on a broken lease, stopped after the hold limit); and the
 * executor holding each target's lock from before its plan to its last action, skipping a
 * target another operation holds, never locking in plan mode, and not applying twice what a
 * crashed attempt of the same run already applied (the run journal).
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { afterEach, describe, expect, it } from 'vitest';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import { estateConfigSchema, type EstateConfig, type TargetConfig } from '../../../src/config/schema.ts';
import { executeRunbook } from '../../../src/runbooks/execute-runbook.ts';
import type { PlannedAction, Runbook, RunbookContext } from '../../../src/runbooks/runbook.ts';
import { leaseIdFor } from '../../../src/runs/blob-lease.ts';
import {
  blobResourceLocks,
  inProcessResourceLocks,
  normaliseResourceId,
  RESOURCE_LOCK_PREFIX,
  ResourceLockError,
  ResourceLockHeldError,
  resourceLockBlobName,
  withResourceLock,
} from '../../../src/runs/resource-lock.ts';
import { journalBlobName, openRunJournal } from '../../../src/runs/run-journal.ts';
import { memoryLogger } from '../../../src/runs/run-log.ts';
import { useSandbox } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: [], postgres: false });
const SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const appId = (name: string): string => `/subscriptions/${SUB}/resourceGroups/rg-xshopai-prod/providers/Microsoft.App/containerApps/${name}`;

const opened: AzureClients[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((clients) => clients.close()));
});

function setup(names: readonly string[]): { config: EstateConfig; context: RunbookContext; container: () => Promise<ContainerClient> } {
  const s = sandbox();
  const config = estateConfigSchema.parse({
    version: 1,
    estate: 'locks',
    dryRun: false,
    azure: s.azureSettings(),
    runRecords: { blobServiceUrl: `${s.azurite?.blobEndpoint ?? ''}/stautopilotruns` },
    targets: names.map((name) => ({ id: appId(name), runbooks: { 'revision-cleanup': {} } })),
  });
  const clients = createAzureClients(config.azure);
  opened.push(clients);
  return {
    config,
    context: { config, clients, logger: memoryLogger(), now: () => new Date() },
    container: async () => (await clients.blobServiceClient(config.runRecords.blobServiceUrl ?? '')).getContainerClient('autopilot-runs'),
  };
}

/** A test-only runbook: `actions` deletions per app; `hold` keeps a target's plan open; `planning` names the targets whose plan has begun. */
function fakeRunbook(actions: number, hold: Record<string, Promise<void>> = {}) {
  const applied: string[] = [];
  const planning = new Set<string>();
  const runbook: Runbook<Record<string, never>> = {
    name: 'revision-cleanup',
    description: 'test-only fake',
    policyOf: (target: TargetConfig) => (target.runbooks['revision-cleanup'] === undefined ? undefined : {}),
    async plan(_context, target) {
      const name = target.id.split('/').at(-1) ?? '';
      planning.add(name);
      await hold[name];
      const planned: PlannedAction[] = Array.from({ length: actions }, (_, i) => ({
        id: `deactivate-revision:${name}--r${String(i)}`,
        kind: 'deactivate-revision',
        resource: `${target.id}/revisions/${name}--r${String(i)}`,
        description: `deactivate revision ${name}--r${String(i)}`,
        destructive: true,
        details: {},
      }));
      return { targetId: target.id, kind: 'containerApp', actions: planned, checks: [], kept: [] };
    },
    apply(_context, _target, _policy, action) {
      applied.push(action.id);
      return Promise.resolve({ outcome: 'applied', message: 'deactivated' });
    },
  };
  return { runbook, applied, planning };
}

describe('resource lock', () => {
  it('normalises the id as ARM compares it and refuses what is not an ARM id', () => {
    const id = appId('ca-user-service');
    expect(resourceLockBlobName(id)).toBe(resourceLockBlobName(`${id.toUpperCase()}/`));
    expect(resourceLockBlobName(id)).toBe(`${RESOURCE_LOCK_PREFIX}${id.toLowerCase()}`);
    expect(() => normaliseResourceId('ca-user-service')).toThrow(ResourceLockError);
    expect(() => normaliseResourceId(`/subscriptions/${SUB}/../x`)).toThrow(/expected an ARM resource id/);
    expect(leaseIdFor('run-1')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(leaseIdFor('run-1')).toBe(leaseIdFor('run-1'));
    expect(leaseIdFor('run-1')).not.toBe(leaseIdFor('run-2'));
  });

  it('one holder at a time, whatever the spelling: the other gets a typed error naming the holder; the same owner re-enters', async () => {
    const { container } = setup(['ca-unused']);
    const locks = blobResourceLocks(await container());
    const id = appId('ca-contended');
    const held = await locks.acquire(id, { owner: 'remediation-alert-42', purpose: 'restart (alert 42)' });
    const error = await locks.acquire(id.toUpperCase(), { owner: 'run-7' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ResourceLockHeldError);
    expect((error as ResourceLockHeldError).holder).toBe('remediation-alert-42 (restart (alert 42))');
    expect((error as ResourceLockHeldError).message).toMatch(/expected no other operation on it, found its lock autopilot-runs\/locks\/resources\/subscriptions\/.*\/ca-contended held by remediation-alert-42/);
    // A retry of the holder (same owner, e.g. after a crash) gets its own lock back at once; it is
    // not a counting lock, so that release frees it and the other owner gets it.
    const again = await locks.acquire(id, { owner: 'remediation-alert-42' });
    await again.release();
    const mine = await withResourceLock(locks, id, { owner: 'run-7' }, (lock) => Promise.resolve(lock.owner));
    expect(mine).toBe('run-7');
    await expect(held.release()).rejects.toThrow(/release lock lease/);
  });

  it('renewal is bounded: a broken lease is reported lost, and renewals stop after the hold limit', async () => {
    const { container } = setup(['ca-unused']);
    const client = await container();
    const locks = blobResourceLocks(client, { renewEveryMs: 50, callTimeoutMs: 2000 });
    const broken = await locks.acquire(appId('ca-broken'), { owner: 'a' });
    await client.getBlockBlobClient(resourceLockBlobName(appId('ca-broken'))).getBlobLeaseClient().breakLease(0);
    await expect.poll(() => broken.lost(), { timeout: 5000 }).toMatch(/renewing the lease on .*ca-broken failed/);
    const limited = await locks.acquire(appId('ca-limited'), { owner: 'b', maxHoldMs: 120 });
    expect(limited.lost()).toBeUndefined();
    await expect.poll(() => limited.lost(), { timeout: 5000 }).toMatch(/for its limit of 0 s; renewals stopped/);
    await limited.release();
  });
});

describe('a hold across durable waits (remediation)', () => {
  it('is taken and renewed by its owner without a renewal timer, refuses others, and is released', async () => {
    const { container } = setup(['ca-unused']);
    const client = await container();
    const locks = blobResourceLocks(client);
    const id = appId('ca-held');
    const first = await locks.hold(id, { owner: 'rem-1', purpose: 'restart', holdMs: 600_000 });
    expect(first).toMatchObject({ acquired: true, brokeExpired: false, kind: 'blob-lease' });
    // Another activity of the same orchestration (another process) re-enters and moves the expiry on.
    const renewed = await locks.hold(id.toUpperCase(), { owner: 'rem-1', holdMs: 1_200_000 });
    expect(renewed.acquired).toBe(false);
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(Date.parse(first.expiresAt));
    // An infinite lease: no renewal runs, yet a runbook run and another remediation are refused well after 60 s would have passed.
    const properties = await client.getBlockBlobClient(resourceLockBlobName(id)).getProperties();
    expect(properties.leaseDuration).toBe('infinite');
    await expect(locks.acquire(id, { owner: 'run-9' })).rejects.toThrow(/held by rem-1/);
    await expect(locks.hold(id, { owner: 'rem-2', holdMs: 1000 })).rejects.toBeInstanceOf(ResourceLockHeldError);
    expect(await locks.releaseHold(id, 'rem-2')).toBe(false);
    expect(await locks.releaseHold(id, 'rem-1')).toBe(true);
    expect(await locks.releaseHold(id, 'rem-1')).toBe(false);
    // Released, with its expiry cleared: a runbook's 60 s lease now is never mistaken for an expired hold.
    const run = await locks.acquire(id, { owner: 'run-9' });
    await expect(locks.hold(id, { owner: 'rem-3', holdMs: 1000 })).rejects.toThrow(/held by run-9/);
    await run.release();
  });

  it('is bounded: a crashed holder past its expiry is broken by the next runbook run or remediation, never before', async () => {
    const { container } = setup(['ca-unused']);
    const locks = blobResourceLocks(await container());
    const id = appId('ca-crashed');
    let now = Date.now();
    await locks.hold(id, { owner: 'rem-crashed', holdMs: 60_000, now: () => now });
    await expect(locks.acquire(id, { owner: 'run-1' })).rejects.toThrow(/held by rem-crashed/);
    // The hold is capped at the longest hold, whatever the caller asks.
    const capped = await locks.hold(id, { owner: 'rem-crashed', holdMs: 10 * 24 * 3600_000, now: () => now });
    expect(Date.parse(capped.expiresAt) - now).toBe(2 * 3600_000);
    // Its owner never comes back; once the expiry is past, a runbook run takes the resource.
    now = Date.now() - 3 * 3600_000;
    await locks.hold(id, { owner: 'rem-crashed', holdMs: 1000, now: () => now });
    const run = await locks.acquire(id, { owner: 'run-1' });
    expect(run.owner).toBe('run-1');
    await run.release();
    // And a remediation likewise.
    await locks.hold(id, { owner: 'rem-crashed-2', holdMs: 1000, now: () => Date.now() - 10_000 });
    const next = await locks.hold(id, { owner: 'rem-next', holdMs: 60_000 });
    expect(next).toMatchObject({ acquired: true, brokeExpired: true });
    expect(await locks.releaseHold(id, 'rem-crashed-2')).toBe(false);
    expect(await locks.releaseHold(id, 'rem-next')).toBe(true);
  });

  it('in-process (no run-record store): the same rules within the process', async () => {
    const locks = inProcessResourceLocks();
    const id = appId('ca-in-process');
    await locks.hold(id, { owner: 'rem-a', holdMs: 60_000 });
    await expect(locks.acquire(id, { owner: 'run-a' })).rejects.toBeInstanceOf(ResourceLockHeldError);
    await expect(locks.hold(id, { owner: 'rem-b', holdMs: 60_000 })).rejects.toBeInstanceOf(ResourceLockHeldError);
    expect(await locks.releaseHold(id, 'rem-a')).toBe(true);
    await locks.hold(id, { owner: 'rem-b', holdMs: 1, now: () => Date.now() - 1000 });
    const run = await locks.acquire(id, { owner: 'run-a' });
    await run.release();
  });
});

describe('the executor holds each target lock', () => {
  it('from before the plan to the last action: a remediation cannot take it meanwhile, and gets it once the run is done', async () => {
    const { context, container } = setup(['ca-a', 'ca-b']);
    let open = (): void => undefined;
    const planning = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { runbook, applied, planning: planned } = fakeRunbook(2, { 'ca-a': planning });
    const runId = randomUUID();
    const run = executeRunbook(runbook, context, { trigger: 'timer', mode: 'apply', runId });
    const remediation = blobResourceLocks(await container());
    // The executor takes the target's lock before planning it: once the plan has begun, the lock
    // is the run's. (Trying earlier raced the run: the remediation could take the lock first,
    // and the run then rightly skipped the target.)
    await expect.poll(() => planned.has('ca-a'), { timeout: 20_000 }).toBe(true);
    await expect
      .poll(async () => remediation.acquire(appId('ca-a'), { owner: 'alert-1' }).then((lock) => lock.release().then(() => 'acquired'), (error: unknown) => (error as Error).message), { timeout: 5000 })
      .toMatch(new RegExp(`held by ${runId} \\(revision-cleanup run ${runId}\\)`));
    open();
    const result = await run;
    expect(result.exit).toBe('ok');
    expect(applied).toHaveLength(4);
    const after = await remediation.acquire(appId('ca-a'), { owner: 'alert-1' });
    await after.release();
  });

  it('skips a target another operation holds, applies the others, and plan mode takes no lock', async () => {
    const { context, container } = setup(['ca-free', 'ca-busy']);
    const remediation = blobResourceLocks(await container());
    const held = await remediation.acquire(appId('ca-busy'), { owner: 'alert-9', purpose: 'rollback' });
    try {
      const { runbook, applied } = fakeRunbook(1);
      const result = await executeRunbook(runbook, context, { trigger: 'timer', mode: 'apply' });
      expect(applied).toEqual(['deactivate-revision:ca-free--r0']);
      const busy = result.record.targets.find((target) => target.targetId.endsWith('ca-busy'));
      expect(busy?.status).toBe('skipped');
      expect(busy?.actions.map((action) => action.message)).toEqual([expect.stringMatching(/not planned: resource .*ca-busy: .* held by alert-9 \(rollback\)/)]);
      expect(result.record.summary).toMatchObject({ targetsSkipped: 1, targetsFailed: 0 });

      // A plan (read-only) neither waits for nor takes resource locks.
      const planned = await executeRunbook(fakeRunbook(1).runbook, context, { trigger: 'cli', mode: 'plan', writeRecord: false, notify: false });
      expect(planned.record.targets.map((target) => target.status)).toEqual(['succeeded', 'succeeded']);
      const names: string[] = [];
      for await (const blob of (await container()).listBlobsFlat({ prefix: `${RESOURCE_LOCK_PREFIX}/` })) names.push(blob.name);
      expect(names.some((name) => name.endsWith('/ca-free'))).toBe(true); // from the apply above
      const freeLock = await remediation.acquire(appId('ca-free'), { owner: 'alert-10' });
      await freeLock.release();
    } finally {
      await held.release();
    }
  });

  it('a retry with the same run id re-enters the locks of its crashed attempt and does not apply again what it journaled', async () => {
    const { context, container } = setup(['ca-retry']);
    const runId = randomUUID();
    const client = await container();
    // The crashed attempt: still holding the target's lock (its lease has not expired) and having
    // journaled one deactivation, plus one its plan will no longer show (done and gone).
    const crashed = await blobResourceLocks(client).acquire(appId('ca-retry'), { owner: runId });
    const first = await openRunJournal(client, runId);
    const at = new Date().toISOString();
    first.record({ targetId: appId('ca-retry'), actionId: 'deactivate-revision:ca-retry--r0', action: { action: 'deactivate-revision', outcome: 'applied', message: 'deactivate revision ca-retry--r0: deactivated', at } });
    first.record({ targetId: appId('ca-retry'), actionId: 'deactivate-revision:ca-retry--old', action: { action: 'deactivate-revision', outcome: 'applied', message: 'deactivate revision ca-retry--old: deactivated', at } });
    expect(await first.flush()).toBeUndefined();

    const { runbook, applied } = fakeRunbook(3);
    const journal = await openRunJournal(client, runId);
    const result = await executeRunbook(runbook, context, { trigger: 'http', mode: 'apply', runId, journal });
    expect(result.record.runId).toBe(runId);
    expect(result.exit).toBe('ok');
    expect(applied).toEqual(['deactivate-revision:ca-retry--r1', 'deactivate-revision:ca-retry--r2']);
    const messages = result.record.targets[0]?.actions.map((action) => action.message) ?? [];
    expect(messages).toEqual([
      'deactivate revision ca-retry--r0: deactivated (in an earlier attempt of this run, not applied again)',
      'deactivate revision ca-retry--r1: deactivated',
      'deactivate revision ca-retry--r2: deactivated',
      'deactivate revision ca-retry--old: deactivated (in an earlier attempt of this run)',
    ]);
    expect(result.record.summary.actions.applied).toBe(4);
    // This attempt journaled what it applied, for a further retry.
    const text = (await client.getAppendBlobClient(journalBlobName(runId)).downloadToBuffer()).toString('utf8');
    expect(text.trim().split('\n')).toHaveLength(4);
    await crashed.release().catch(() => undefined);
  });
});
