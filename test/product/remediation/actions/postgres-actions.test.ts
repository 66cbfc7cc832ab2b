/**
 * The PostgreSQL flexible server actions against the sandbox with the real SDK client: restart
 * and scale-up (a SKU ladder), both long-running operations awaited through the SDK poller with a
 * deadline; undo restores the SKU; refusals (not Ready, off the ladder, Burstable with high
 * availability) change nothing; a failed operation is a typed error.
 */
import { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
import { afterEach, describe, expect, it } from 'vitest';
import { AzureOperationError } from '../../../../src/azure/errors.ts';
import { ActionRefusedError, getRemediationAction, OperationDeadlineError } from '../../../../src/remediation/actions/index.ts';
import { actionContextFor, expectNoMutation, planWithoutSideEffects, targetNamed } from '../../../support/actions.ts';
import type { TestRunbookContext } from '../../../support/runbook-context.ts';
import { sandboxCredential, useSandbox } from '../../../support/sandbox.ts';

const KM = '5f504e96-b142-4ec0-8e99-50424fa25005';
const KRG = 'rg-kilometers-prod';
const KPG = 'psql-kilometers-prod-k7x2';
const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', 'sandbox/worlds/xshopai.yaml'], postgres: false, azurite: false, lroDurationMs: 100, lroRetryAfterSeconds: 0 });

function pg(subscription = KM): PostgreSQLManagementFlexibleServerClient {
  return new PostgreSQLManagementFlexibleServerClient(sandboxCredential(sandbox()), subscription, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
}
const open: TestRunbookContext[] = [];
async function contextOf(world: string): Promise<Awaited<ReturnType<typeof actionContextFor>>> {
  const context = await actionContextFor(sandbox(), world);
  open.push(context);
  return context;
}
afterEach(async () => {
  await sandbox().clearFaults();
  await Promise.all(open.splice(0).map((context) => context.close()));
});

describe('PostgreSQL actions', () => {
  it('restart: the server goes through Restarting and is Ready after; the poller is awaited', async () => {
    const { action: ctx, ...c } = await contextOf('kilometers');
    const target = targetNamed(c, KPG);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'postgresFlexibleServer', 'restart', {});
    expect(plan).toMatchObject({ reversible: false, observed: { state: 'Ready' } });
    await sandbox().clearRequests();
    const result = await getRemediationAction('postgresFlexibleServer', 'restart').apply(ctx, target, plan);
    expect(result).toMatchObject({ outcome: 'applied', after: { state: 'Ready' } });
    const log = await sandbox().requests();
    expect(log.some((entry) => entry.operationId === 'Microsoft.Resources/operationStatuses.get' || entry.path.includes('operationResults'))).toBe(true);
  });

  it('scale-up: the next size of the ladder; re-apply is a no-op; undo restores the size', async () => {
    const { action: ctx, ...c } = await contextOf('kilometers');
    const target = targetNamed(c, KPG);
    const server = await pg().servers.get(KRG, KPG);
    const before = server.sku?.name ?? '';
    const skus = [{ name: before, tier: server.sku?.tier ?? '' }, { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' }, { name: 'Standard_D4ds_v5', tier: 'GeneralPurpose' }];
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'postgresFlexibleServer', 'scale-up', { skus });
    expect(plan).toMatchObject({ reversible: true, changes: [{ field: 'sku.name', from: before, to: 'Standard_D2ds_v5' }] });
    const action = getRemediationAction('postgresFlexibleServer', 'scale-up');
    const result = await action.apply(ctx, target, plan);
    expect(result.outcome).toBe('applied');
    expect((await pg().servers.get(KRG, KPG)).sku).toMatchObject({ name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' });
    expect((await action.apply(ctx, target, plan)).outcome).toBe('skipped');
    if (result.undo === undefined || action.undo === undefined) throw new Error('scale-up is reversible');
    expect((await action.undo(ctx, target, result.undo)).outcome).toBe('applied');
    expect((await pg().servers.get(KRG, KPG)).sku?.name).toBe(before);
  });

  it('refuses a size off the ladder and Burstable for a server with high availability; nothing changes', async () => {
    const { action: ctx, ...c } = await contextOf('xshopai');
    const target = targetNamed(c, 'psql-xshopai-prod');
    const sku = (await pg('3d3e2c74-9f20-4cae-9c77-3e202d803003').servers.get('rg-xshopai-prod', 'psql-xshopai-prod')).sku;
    const current = sku?.name ?? '';
    const off = await expectNoMutation(sandbox(), () =>
      getRemediationAction('postgresFlexibleServer', 'scale-up').plan(ctx, target, { skus: [{ name: 'Standard_B1ms', tier: 'Burstable' }, { name: 'Standard_B2s', tier: 'Burstable' }] }),
    );
    expect(off).toMatchObject({ name: 'ActionRefusedError', found: current });
    const burst = await expectNoMutation(sandbox(), () =>
      getRemediationAction('postgresFlexibleServer', 'scale-up').plan(ctx, target, { skus: [{ name: current, tier: sku?.tier ?? '' }, { name: 'Standard_B2ms', tier: 'Burstable' }] }),
    );
    expect(burst).toBeInstanceOf(ActionRefusedError);
    expect((burst as Error).message).toContain('high availability');
  });

  it('a failed operation is a typed error, and an operation past its deadline says it may still run', async () => {
    const { action: ctx, ...c } = await contextOf('kilometers');
    const target = targetNamed(c, KPG);
    const plan = await planWithoutSideEffects(sandbox(), ctx, target, 'postgresFlexibleServer', 'restart', {});
    await sandbox().injectFault({ operationId: 'Microsoft.DBforPostgreSQL/flexibleServers.restart', failLongRunningOperation: true, status: 500 });
    await expect(getRemediationAction('postgresFlexibleServer', 'restart').apply(ctx, target, plan)).rejects.toBeInstanceOf(AzureOperationError);
    await sandbox().injectFault({ pathPattern: 'operation(Statuses|Results)', latencyMs: 3000, count: 5 });
    const error = await getRemediationAction('postgresFlexibleServer', 'restart').apply({ ...ctx, operationDeadlineMs: 300 }, target, plan).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OperationDeadlineError);
    expect((error as Error).message).toContain('it may still complete in Azure');
  });
});
