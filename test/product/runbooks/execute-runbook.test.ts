/**
 * The executor over a test-only fake runbook: per-target isolation, the dry-run gate for every
 * trigger, confirm, the refuse guard and --force, the lock (blob lease in Azurite), run records
 * in Azurite and notifications captured by the sandbox.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import { TransientAzureError } from '../../../src/azure/errors.ts';
import { estateConfigSchema, type EstateConfig, type EstateConfigInput, type TargetConfig } from '../../../src/config/schema.ts';
import { OpsAutopilotError } from '../../../src/errors.ts';
import { dryRunGate, executeRunbook, RunbookTargetError } from '../../../src/runbooks/execute-runbook.ts';
import type { PlannedAction, Runbook, RunbookContext, TargetPlan } from '../../../src/runbooks/runbook.ts';
import { memoryLogger } from '../../../src/runs/run-log.ts';
import { blobLeaseLocks, inProcessLocks, lockBlobName } from '../../../src/runs/run-lock.ts';
import { RUN_TRIGGERS } from '../../../src/runs/run-record.ts';
import { createRunRecordStore } from '../../../src/runs/run-record-store.ts';
import { sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: [], postgres: false, azurite: true });

const SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const registryId = (name: string): string => `/subscriptions/${SUB}/resourceGroups/rg-fake/providers/Microsoft.ContainerRegistry/registries/${name}`;

class FakeTargetError extends OpsAutopilotError {
  override readonly name: string = 'FakeTargetError';
}

/** What the fake runbook does per registry name. */
interface FakeBehaviour {
  actions?: number;
  failPlan?: boolean;
  failActions?: readonly number[];
  checks?: readonly ('ok' | 'warn' | 'fail')[];
  /** Awaited inside plan, so a test can hold a run open. */
  hold?: Promise<void>;
}

function fakeRunbook(behaviour: Record<string, FakeBehaviour>, options: { cap?: number } = {}) {
  const applied: string[] = [];
  const planned: string[] = [];
  const runbook: Runbook<{ keep: number }> = {
    name: 'image-purge',
    description: 'test-only fake',
    policyOf: (target: TargetConfig) => (target.runbooks['image-purge'] === undefined ? undefined : { keep: 1 }),
    async plan(_context, target): Promise<TargetPlan> {
      const name = target.id.split('/').at(-1) ?? '';
      const b = behaviour[name] ?? {};
      planned.push(name);
      if (b.hold !== undefined) await b.hold;
      if (b.failPlan === true) {
        throw new FakeTargetError(`registry ${name}: expected a readable catalog, found HTTP 500`, { context: { resourceId: target.id } });
      }
      const actions: PlannedAction[] = Array.from({ length: b.actions ?? 0 }, (_, i) => ({
        id: `delete-tag:${name}:${i}`,
        kind: 'delete-tag',
        resource: `${name}/app:v${i}`,
        description: `delete tag app:v${i}`,
        destructive: true,
        details: { index: i },
      }));
      return {
        targetId: target.id,
        kind: 'containerRegistry',
        actions,
        checks: (b.checks ?? []).map((status, i) => ({ status, code: `fake.check.${i}`, message: `${name} check ${i} is ${status}`, expected: 'x', found: status })),
        kept: [{ resource: `${name}/app:latest`, reason: 'in use' }],
      };
    },
    apply(_context, target, _policy, action) {
      const name = target.id.split('/').at(-1) ?? '';
      const index = Number(action.details.index);
      if (behaviour[name]?.failActions?.includes(index) === true) {
        return Promise.reject(new FakeTargetError(`tag ${action.resource}: expected deletion to succeed, found 409 locked`));
      }
      applied.push(action.id);
      return Promise.resolve({ outcome: 'applied', message: 'deleted' });
    },
    refuse(_context, plans, { force }) {
      const total = plans.reduce((sum, plan) => sum + plan.actions.length, 0);
      return options.cap !== undefined && total > options.cap && !force ? `plan deletes ${total} tags, above the cap of ${options.cap}` : undefined;
    },
  };
  return { runbook, applied, planned };
}

const opened: AzureClients[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((clients) => clients.close()));
});

function context(overrides: Partial<EstateConfigInput> & { names: string[] }): { context: RunbookContext; config: EstateConfig; logger: ReturnType<typeof memoryLogger> } {
  const s = sandbox();
  const { names, ...rest } = overrides;
  const config = estateConfigSchema.parse({
    version: 1,
    estate: 'fake-estate',
    dryRun: false,
    azure: s.azureSettings(),
    runRecords: { blobServiceUrl: `${s.azurite?.blobEndpoint ?? ''}/stautopilotruns` },
    notifications: {
      webhooks: [
        { name: 'teams-all', url: `${s.baseUrl}/_sandbox/webhooks/teams-all`, format: 'teams', on: ['fail', 'warn', 'destructive'] },
        { name: 'slack-destructive', url: `${s.baseUrl}/_sandbox/webhooks/slack-destructive`, format: 'slack', on: ['destructive'] },
        { name: 'generic-fail', url: `${s.baseUrl}/_sandbox/webhooks/generic-fail`, format: 'generic', on: ['fail'] },
      ],
    },
    targets: names.map((name) => ({ id: registryId(name), runbooks: { 'image-purge': {} } })),
    ...rest,
  });
  const clients = createAzureClients(config.azure);
  opened.push(clients);
  const logger = memoryLogger();
  return { context: { config, clients, logger, now: () => new Date() }, config, logger };
}

async function clearWebhooks(): Promise<void> {
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/webhooks' });
}

describe('executeRunbook', () => {
  it('isolates a failing target: the others are planned and applied, the run ends failed with a summary', async () => {
    const { runbook, applied } = fakeRunbook({ a: { actions: 2 }, broken: { failPlan: true }, c: { actions: 1 } });
    const { context: ctx } = context({ names: ['a', 'broken', 'c'] });
    const result = await executeRunbook(runbook, ctx, { trigger: 'cli', mode: 'apply' });
    expect(applied.sort()).toEqual(['delete-tag:a:0', 'delete-tag:a:1', 'delete-tag:c:0']);
    expect(result.exit).toBe('failed');
    expect(result.record.status).toBe('partial');
    const broken = result.record.targets.find((t) => t.targetId.endsWith('/broken'));
    expect(broken?.status).toBe('failed');
    expect(broken?.error).toMatchObject({ name: 'FakeTargetError', message: expect.stringContaining('expected a readable catalog') as string });
    expect(result.summary).toMatch(/image-purge on fake-estate: failed; 3 target\(s\), 1 failed/);
    expect(result.plans).toHaveLength(2);
  });

  it('records each action outcome; one failing action fails its target but not the other actions', async () => {
    const { runbook, applied } = fakeRunbook({ a: { actions: 3, failActions: [1] } });
    const { context: ctx } = context({ names: ['a'] });
    const result = await executeRunbook(runbook, ctx, { trigger: 'timer', mode: 'apply' });
    expect(applied.sort()).toEqual(['delete-tag:a:0', 'delete-tag:a:2']);
    const actions = result.record.targets[0]?.actions ?? [];
    expect(actions.map((a) => a.outcome).sort()).toEqual(['applied', 'applied', 'failed']);
    expect(actions.find((a) => a.outcome === 'failed')?.message).toMatch(/expected deletion to succeed, found 409 locked/);
    expect(result.record.targets[0]?.status).toBe('failed');
    expect(result.exit).toBe('failed');
  });

  it('the gate: a dryRun config never applies, for every trigger, and the record says dryRun', async () => {
    for (const trigger of RUN_TRIGGERS) {
      const { runbook, applied } = fakeRunbook({ a: { actions: 2 } });
      const { context: ctx } = context({ names: ['a'], dryRun: true });
      const result = await executeRunbook(runbook, ctx, { trigger, mode: 'apply', force: true, confirm: () => Promise.resolve(true) });
      expect(applied, trigger).toEqual([]);
      expect(result.gate).toEqual({ apply: false, reason: expect.stringMatching(/dryRun is true/) as string });
      expect(result.record.dryRun).toBe(true);
      expect(result.record.summary.actions).toMatchObject({ planned: 2, applied: 0 });
    }
  });

  it('the gate: confirm false never applies; confirm true applies; plan mode never applies or asks', async () => {
    const asked: number[] = [];
    const confirm = (answer: boolean) => (plans: readonly TargetPlan[]) => {
      asked.push(plans.length);
      return Promise.resolve(answer);
    };
    const no = fakeRunbook({ a: { actions: 1 } });
    const rNo = await executeRunbook(no.runbook, context({ names: ['a'] }).context, { trigger: 'cli', mode: 'apply', confirm: confirm(false) });
    expect(no.applied).toEqual([]);
    expect(rNo.gate?.reason).toMatch(/declined at the confirmation/);
    expect(rNo.exit).toBe('declined');
    const yes = fakeRunbook({ a: { actions: 1 } });
    await executeRunbook(yes.runbook, context({ names: ['a'] }).context, { trigger: 'cli', mode: 'apply', confirm: confirm(true) });
    expect(yes.applied).toEqual(['delete-tag:a:0']);
    const plan = fakeRunbook({ a: { actions: 1 } });
    const rPlan = await executeRunbook(plan.runbook, context({ names: ['a'] }).context, { trigger: 'cli', mode: 'plan', confirm: confirm(true) });
    expect(plan.applied).toEqual([]);
    expect(rPlan.record.targets[0]?.actions.map((a) => a.outcome)).toEqual(['planned']);
    expect(asked).toEqual([1, 1]);
    expect(await dryRunGate({ mode: 'apply', dryRun: false, plans: [] })).toMatchObject({ apply: false });
  });

  it('refuse: above the cap the run is refused (nothing applied); with force it applies', async () => {
    const capped = fakeRunbook({ a: { actions: 3 } }, { cap: 2 });
    const refused = await executeRunbook(capped.runbook, context({ names: ['a'] }).context, { trigger: 'timer', mode: 'apply' });
    expect(refused.exit).toBe('refused');
    expect(refused.refusal).toEqual({ kind: 'guard', message: 'plan deletes 3 tags, above the cap of 2' });
    expect(capped.applied).toEqual([]);
    expect(refused.record.error?.name).toBe('RunRefusedError');
    const forced = await executeRunbook(capped.runbook, context({ names: ['a'] }).context, { trigger: 'cli', mode: 'apply', force: true });
    expect(forced.exit).toBe('ok');
    expect(capped.applied).toHaveLength(3);
    expect(forced.record.notes?.some((note) => note.startsWith('forced: '))).toBe(true);
  });

  it('the lock: while another run holds the lease, a run is refused with nothing planned or applied; two concurrent runs never overlap', async () => {
    const { context: ctx, config } = context({ names: ['a'] });
    const service = await ctx.clients.blobServiceClient(config.runRecords.blobServiceUrl ?? '');
    const locks = blobLeaseLocks(service.getContainerClient(config.runRecords.container));
    const held = await locks.acquire('fake-estate', 'image-purge');
    const blocked = fakeRunbook({ a: { actions: 1 } });
    const refused = await executeRunbook(blocked.runbook, ctx, { trigger: 'timer', mode: 'apply' });
    expect(refused.exit).toBe('refused');
    expect(refused.refusal?.kind).toBe('lock');
    expect(refused.refusal?.message).toContain(`autopilot-runs/${lockBlobName('fake-estate', 'image-purge')}`);
    expect(refused.record.status).toBe('cancelled');
    expect(blocked.planned).toEqual([]);
    expect(blocked.applied).toEqual([]);
    await held.release();

    let open!: () => void;
    const hold = new Promise<void>((resolve) => {
      open = resolve;
    });
    const slow = fakeRunbook({ a: { actions: 1, hold } });
    const first = executeRunbook(slow.runbook, ctx, { trigger: 'timer', mode: 'apply' });
    // Wait until the first run is inside plan (it holds the lock by then).
    while (slow.planned.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = await executeRunbook(slow.runbook, ctx, { trigger: 'cli', mode: 'apply' });
    open();
    const firstResult = await first;
    expect(second.exit).toBe('refused');
    expect(firstResult.exit).toBe('ok');
    expect(slow.applied).toEqual(['delete-tag:a:0']);
    // Released at the end: a third run goes ahead.
    const third = await executeRunbook(fakeRunbook({ a: {} }).runbook, ctx, { trigger: 'timer', mode: 'apply' });
    expect(third.exit).toBe('ok');
  });

  it('the lock: a lease whose renewal fails is reported lost; the run then applies nothing more and ends failed', async () => {
    const { context: ctx, config } = context({ names: ['a'] });
    const service = await ctx.clients.blobServiceClient(config.runRecords.blobServiceUrl ?? '');
    const container = service.getContainerClient(config.runRecords.container);
    // The renewal loop really runs: break the lease behind its back, and the next renewal notices.
    const lock = await blobLeaseLocks(container, { renewEveryMs: 20 }).acquire('fake-estate', 'revision-cleanup');
    expect(lock.lost()).toBeUndefined();
    await container.getBlobClient(lockBlobName('fake-estate', 'revision-cleanup')).getBlobLeaseClient().breakLease(0);
    for (let i = 0; i < 500 && lock.lost() === undefined; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(lock.lost()).toMatch(/renewing the lease on autopilot-runs\/locks\/fake-estate\/revision-cleanup failed/);
    await lock.release().catch(() => undefined);

    // Once the lock is lost, another run may hold it: no further action is applied.
    const fake = fakeRunbook({ a: { actions: 5 } });
    let lostReason: string | undefined;
    const locks = {
      acquire: () =>
        Promise.resolve({
          kind: 'blob-lease' as const,
          location: 'autopilot-runs/locks/fake-estate/image-purge',
          lost: () => lostReason,
          release: () => Promise.resolve(),
        }),
    };
    const runbook: typeof fake.runbook = {
      ...fake.runbook,
      async apply(context, target, policy, action) {
        const result = await fake.runbook.apply(context, target, policy, action);
        if (fake.applied.length === 2) lostReason = 'renewing the lease failed: 409 LeaseIsBrokenAndCannotBeRenewed';
        return result;
      },
    };
    const result = await executeRunbook(runbook, ctx, { trigger: 'timer', mode: 'apply', locks, notify: false });
    expect(fake.applied).toEqual(['delete-tag:a:0', 'delete-tag:a:1']);
    expect(result.exit).toBe('failed');
    expect(result.record.status).toBe('failed');
    expect(result.record.error?.name).toBe('RunLockLostError');
    expect(result.record.summary.actions).toMatchObject({ applied: 2, planned: 3 });
    const notApplied = result.record.targets.flatMap((target) => target.actions).filter((action) => action.outcome === 'planned');
    expect(notApplied).toHaveLength(3);
    for (const action of notApplied) expect(action.message).toMatch(/^not applied \(lock lost: renewing the lease failed/);
  });

  it('the lock: when the run-record store cannot be reached, the run fails naming the store, plans nothing and writes no record there', async () => {
    const { context: ctx, config } = context({ names: ['a'] });
    const fake = fakeRunbook({ a: { actions: 1 } });
    const locks = {
      acquire: () =>
        Promise.reject(
          new TransientAzureError('create lock container on https://127.0.0.1:9/x failed: expected a successful response, found network error ECONNREFUSED', {
            resourceId: 'https://127.0.0.1:9/x',
            operation: 'create lock container',
            statusCode: undefined,
            code: 'ECONNREFUSED',
            requestId: undefined,
            retryAfterMs: undefined,
          }),
        ),
    };
    const result = await executeRunbook(fake.runbook, ctx, { trigger: 'timer', mode: 'apply', locks, notify: false });
    expect(fake.planned).toEqual([]);
    expect(result.exit).toBe('failed');
    expect(result.record.error?.name).toBe('RunLockUnavailableError');
    expect(result.record.error?.message).toBe(
      `the run lock could not be taken: expected the run-record store ${config.runRecords.blobServiceUrl ?? ''} (runRecords.blobServiceUrl) to be reachable, found it unreachable (create lock container on https://127.0.0.1:9/x failed: expected a successful response, found network error ECONNREFUSED); runbook image-purge on estate fake-estate: nothing was planned or applied`,
    );
    expect(result.summary).toMatch(/; the run lock could not be taken: /);
    expect(result.stored).toBeUndefined();
    expect(result.recordError).toBeUndefined();
    expect(result.record.notes).toContain('run record: not written to the run-record store (unreachable, see above); emitted to the log only');
  });

  it('falls back to an in-process lock without run records, and says so', async () => {
    const { runbook } = fakeRunbook({ a: {} });
    const { context: ctx, logger } = context({ names: ['a'], runRecords: {} });
    const result = await executeRunbook(runbook, ctx, { trigger: 'cli', mode: 'apply' });
    expect(result.record.notes?.[0]).toMatch(/lock: in-process only, because runRecords is not configured/);
    expect(logger.entries.some((e) => e.entry.event === 'run.lock')).toBe(true);
    expect(result.stored).toBeUndefined();
    const held = await inProcessLocks().acquire('fake-estate', 'image-purge');
    const blocked = await executeRunbook(runbook, ctx, { trigger: 'cli', mode: 'apply' });
    expect(blocked.exit).toBe('refused');
    await held.release();
  });

  it('writes the run record to Azurite with findings (ok/warn/fail with expected/found) and emits it to the log', async () => {
    const { runbook } = fakeRunbook({ a: { checks: ['ok', 'warn', 'fail'] } });
    const { context: ctx, config, logger } = context({ names: ['a'] });
    const result = await executeRunbook(runbook, ctx, { trigger: 'timer', mode: 'apply', notify: false });
    expect(result.exit).toBe('findings');
    expect(result.stored?.blobName).toMatch(/^image-purge\/\d{4}\/\d{2}\/\d{2}\/[0-9a-f-]{36}\.json$/);
    const store = await createRunRecordStore(config, ctx.clients);
    const read = await store.read(result.stored?.blobName ?? '');
    expect(read.targets[0]?.findings.map((f) => [f.severity, f.details])).toEqual([
      ['ok', { expected: 'x', found: 'ok' }],
      ['warn', { expected: 'x', found: 'warn' }],
      ['fail', { expected: 'x', found: 'fail' }],
    ]);
    expect(read.summary.findings).toEqual({ info: 0, warn: 1, fail: 1, ok: 1 });
    expect(logger.entries.some((e) => e.entry.event === 'run.completed' && e.entry.runId === result.record.runId)).toBe(true);
  });

  it('notifies per webhook `on`: fail and warn to teams and generic, destructive applied to slack, in each format', async () => {
    await clearWebhooks();
    const { runbook } = fakeRunbook({ a: { actions: 1, checks: ['warn'] }, broken: { failPlan: true } });
    const { context: ctx } = context({ names: ['a', 'broken'] });
    const result = await executeRunbook(runbook, ctx, { trigger: 'timer', mode: 'apply' });
    expect(result.notifications.map((n) => [n.webhook, n.outcome, [...n.events]])).toEqual([
      ['teams-all', 'applied', ['fail', 'warn', 'destructive']],
      ['slack-destructive', 'applied', ['destructive']],
      ['generic-fail', 'applied', ['fail']],
    ]);
    const teams = await sandbox().webhooks('teams-all');
    expect(teams).toHaveLength(1);
    expect(teams[0]?.body).toMatchObject({ '@type': 'MessageCard', summary: expect.stringContaining('image-purge on fake-estate failed') as string, text: expect.stringContaining('FAILED broken') as string });
    const slack = await sandbox().webhooks('slack-destructive');
    expect(slack[0]?.body).toMatchObject({ text: expect.any(String) as string, blocks: expect.arrayContaining([expect.objectContaining({ type: 'header' })]) as unknown[] });
    expect(JSON.stringify(slack[0]?.body)).toContain('APPLIED a: delete tag app:v0');
    const generic = await sandbox().webhooks('generic-fail');
    expect(generic[0]?.body).toMatchObject({ runId: result.record.runId, status: 'partial', events: ['fail'] });
  });

  it('posts a teams-workflow webhook an Adaptive Card message, secrets masked', async () => {
    await clearWebhooks();
    const { runbook } = fakeRunbook({ a: { actions: 1, checks: ['warn'] }, broken: { failPlan: true } });
    const s = sandbox();
    const { context: ctx } = context({
      names: ['a', 'broken'],
      notifications: { webhooks: [{ name: 'teams-flow', url: `${s.baseUrl}/_sandbox/webhooks/teams-flow?sig=abcdef123456`, format: 'teams-workflow' }] },
    });
    const result = await executeRunbook(runbook, ctx, { trigger: 'timer', mode: 'apply' });
    expect(result.notifications.map((n) => [n.webhook, n.outcome])).toEqual([['teams-flow', 'applied']]);
    const posted = await sandbox().webhooks('teams-flow');
    expect(posted).toHaveLength(1);
    expect(posted[0]?.body).toMatchObject({
      type: 'message',
      attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4' } }],
    });
    expect(JSON.stringify(posted[0]?.body)).toContain('FAILED broken');
    expect(JSON.stringify(result.record)).not.toContain('abcdef123456');
  });

  it('a warn-only dry run notifies warn subscribers only; a failing webhook is recorded and does not change the outcome', async () => {
    await clearWebhooks();
    const { runbook } = fakeRunbook({ a: { actions: 1, checks: ['warn'] } });
    const s = sandbox();
    const { context: ctx } = context({
      names: ['a'],
      dryRun: true,
      notifications: {
        webhooks: [
          { name: 'teams-all', url: `${s.baseUrl}/_sandbox/webhooks/teams-all`, format: 'teams' },
          { name: 'slack-destructive', url: `${s.baseUrl}/_sandbox/webhooks/slack-destructive`, format: 'slack', on: ['destructive'] },
          { name: 'broken-hook', url: `${s.baseUrl}/_sandbox/no-such-hook/x?sig=abcdef123456`, format: 'generic' },
        ],
      },
    });
    const result = await executeRunbook(runbook, ctx, { trigger: 'timer', mode: 'apply' });
    expect(result.exit).toBe('findings');
    expect(result.record.status).toBe('succeeded');
    expect(result.notifications.map((n) => [n.webhook, n.outcome])).toEqual([
      ['teams-all', 'applied'],
      ['broken-hook', 'failed'],
    ]);
    expect(result.notifications[1]?.message).toMatch(/webhook broken-hook \(https:\/\/127\.0\.0\.1:\d+\): expected a 2xx response, found 4\d\d/);
    expect(JSON.stringify(result.record)).not.toContain('abcdef123456');
    expect(await sandbox().webhooks('slack-destructive')).toEqual([]);
  });

  it('refuses a target id that does not opt into the runbook before doing anything', async () => {
    const { runbook, planned } = fakeRunbook({ a: {} });
    await expect(executeRunbook(runbook, context({ names: ['a'] }).context, { trigger: 'cli', mode: 'plan', targets: [registryId('zzz')] })).rejects.toThrow(RunbookTargetError);
    expect(planned).toEqual([]);
    const only = await executeRunbook(runbook, context({ names: ['a', 'b'] }).context, { trigger: 'cli', mode: 'plan', targets: [registryId('B')] });
    expect(only.record.targets.map((t) => t.targetId)).toEqual([registryId('b')]);
  });
});
