/**
 * rotationOrchestrator through durable-functions' own replay in the local task hub, with the
 * real activities against the sandbox (real Key Vault, ARM and storage SDK clients, `pg` over the
 * TLS front door to the embedded PostgreSQL): each kind end to end, each failure branch (the
 * reset fails, the new password does not log in, the consumer is unhealthy afterwards), the dry
 * run, the canaries (planted and generated values) searched in the hub's full history, status,
 * output and logs, and a crash at every step with a working enabled version after each.
 */
import { describe, expect, it } from 'vitest';
import type { RotationOutput } from '../../../src/orchestrators/rotation.ts';
import { ROTATION_ORCHESTRATOR } from '../../../src/rotation/names.ts';
import { rotateCommand, rotateStatusCommand } from '../../../src/cli/commands/rotate.ts';
import type { Terminal } from '../../../src/cli/terminal.ts';
import { sandboxRequest } from '../../support/sandbox.ts';
import { JWT_CANARY, PG_CANARY, ROTATION_APP_ID, ROTATION_VAULT as VAULT, useRotationWorld } from '../../support/rotation-world.ts';

const world = useRotationWorld();
const { sandbox, logsIn, authenticates, versions, someEnabledWorks, latest, health } = world;


function start(id: string, secret: string): void {
  world.driver().host.durable.startNew(ROTATION_ORCHESTRATOR, { instanceId: id, input: { vault: VAULT, secret, trigger: 'http', requestedBy: 'tests' } });
}

function output(id: string): RotationOutput {
  const status = world.driver().host.durable.getStatus(id);
  expect(status?.runtimeStatus, JSON.stringify(status?.output)).toBe('Completed');
  return status?.output as RotationOutput;
}

/** Everything the hub and the host kept about an instance: status with history and input, the full history, the logs. */
function everything(id: string): string {
  const host = world.driver().host;
  return JSON.stringify([host.durable.getStatus(id, { showHistory: true, showInput: true }), host.durable.history(id), host.logs]);
}

/** No value of any version of the rotated secrets (planted or generated) is anywhere the hub or host kept. */
async function expectNoSecretsIn(id: string): Promise<void> {
  const text = everything(id);
  const values = [PG_CANARY, JWT_CANARY];
  for (const name of ['PostgresAdminPassword', 'DatabaseUrl', 'JwtSecret', 'StorageAccountKey']) {
    for (const version of await versions(name)) if (version.value !== undefined) values.push(version.value);
  }
  for (const value of values) {
    expect(text.includes(value), `a secret value (${value.length} characters) leaked into the hub or the logs`).toBe(false);
    expect(text.includes(encodeURIComponent(value))).toBe(false);
  }
}

async function setHealthScript(script: unknown): Promise<void> {
  const response = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { target: ROTATION_APP_ID, script } });
  expect(response.status, response.text).toBe(200);
}

describe('rotationOrchestrator', () => {
  it('a dry run (mode plan) checks the current credential for real and prints the steps, changing nothing', async () => {
    const before = await versions('PostgresAdminPassword');
    const answer = await world.driver().api('POST', 'rotations', { secret: `${VAULT}/PostgresAdminPassword`, mode: 'plan' });
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json).toMatchObject({ mode: 'plan', plan: { kind: 'postgresAdminPassword', currentWorks: true, due: true } });
    expect(JSON.stringify(answer.json)).toMatch(/logs in to psql-rotation-prod/);
    expect(JSON.stringify(answer.json)).not.toContain(PG_CANARY);
    expect(await versions('PostgresAdminPassword')).toEqual(before);
    const unknown = await world.driver().api('POST', 'rotations', { secret: `${VAULT}/NoSuchSecret` });
    expect(unknown.status).toBe(400);
  });

  it('PostgreSQL admin password: stored first, reset, a real login, derived DatabaseUrl, consumer restarted and healthy, the old version disabled', async () => {
    expect(await health()).toBe(200);
    const id = 'rotation-pg-happy';
    start(id, 'PostgresAdminPassword');
    await world.driver().drive(id, undefined, { stepMs: 5_000 });
    const result = output(id);
    expect(result.outcome, result.summary).toBe('rotated');
    expect(result.verified).toBe(true);
    const password = await latest('PostgresAdminPassword');
    expect(password).not.toBe(PG_CANARY);
    expect(await logsIn(password)).toBe(true);
    expect(await logsIn(PG_CANARY)).toBe(false);
    const url = new URL(await latest('DatabaseUrl'));
    expect(decodeURIComponent(url.password)).toBe(password);
    expect(await health()).toBe(200);
    const all = await versions('PostgresAdminPassword');
    expect(all.map((version) => [version.enabled, version.tags['ops-autopilot-state'] ?? 'seed'])).toEqual([
      [false, 'retired'],
      [true, 'active'],
    ]);
    await expectNoSecretsIn(id);
  }, 180_000);

  it('storage key: regenerates the key not in use, stores it with the flipped CredentialId, the other key stays valid', async () => {
    const before = await latest('StorageAccountKey');
    const id = 'rotation-storage-happy';
    start(id, 'StorageAccountKey');
    await world.driver().drive(id, undefined, { stepMs: 5_000 });
    const result = output(id);
    expect(result.outcome, result.summary).toBe('rotated');
    const all = await versions('StorageAccountKey');
    const current = all[all.length - 1];
    expect(current?.tags.CredentialId).toBe('key2');
    expect(await authenticates(current?.value ?? '')).toBe(true);
    // key1 is left valid for a full period (only its Key Vault version is retired).
    expect(await authenticates(before)).toBe(true);
    expect(await health()).toBe(200);
    await expectNoSecretsIn(id);
  }, 180_000);

  it('random secret: a new value of the policy length, the consumer refreshes its references and stays healthy', async () => {
    const id = 'rotation-jwt-happy';
    start(id, 'JwtSecret');
    await world.driver().drive(id, undefined, { stepMs: 600_000 });
    const result = output(id);
    expect(result.outcome, result.summary).toBe('rotated');
    const value = await latest('JwtSecret');
    expect(value).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(value).not.toBe(JWT_CANARY);
    expect(await health()).toBe(200);
    await expectNoSecretsIn(id);
  }, 180_000);

  it('the reset fails: nothing is lost, the pending version is failed and disabled, the previous value is the latest again, escalated', async () => {
    const previous = await latest('PostgresAdminPassword');
    await sandbox().injectFault({ operationId: 'Microsoft.DBforPostgreSQL/flexibleServers.update', failLongRunningOperation: true, count: 3 });
    const id = 'rotation-pg-reset-fails';
    start(id, 'PostgresAdminPassword');
    await world.driver().drive(id, undefined, { stepMs: 15_000 });
    const result = output(id);
    expect(result.outcome, result.summary).toBe('rolled-back');
    expect(result.verified).toBe(false);
    expect(await latest('PostgresAdminPassword')).toBe(previous);
    expect(await logsIn(previous)).toBe(true);
    const failed = (await versions('PostgresAdminPassword')).find((version) => version.version === result.newVersion);
    expect(failed).toMatchObject({ enabled: false, tags: { 'ops-autopilot-state': 'failed' } });
    expect(await health()).toBe(200);
    await expectNoSecretsIn(id);
  }, 180_000);

  it('the new password does not log in (the reset did not take): the previous password goes back, verified, escalated', async () => {
    const previous = await latest('PostgresAdminPassword');
    expect((await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/postgres', body: { server: 'psql-rotation-prod', ignorePasswordChanges: 1 } })).status).toBe(200);
    const id = 'rotation-pg-login-fails';
    start(id, 'PostgresAdminPassword');
    await world.driver().drive(id, undefined, { stepMs: 15_000 });
    const result = output(id);
    expect(result.outcome, result.summary).toBe('rolled-back');
    expect(result.steps.find((step) => step.step === 'verify')?.outcome).toBe('failed');
    expect(await logsIn(previous)).toBe(true);
    expect(await latest('PostgresAdminPassword')).toBe(previous);
    expect(await health()).toBe(200);
  }, 180_000);

  it('the consumer is unhealthy afterwards: the previous password, DatabaseUrl and consumer are put back, escalated', async () => {
    const previous = await latest('PostgresAdminPassword');
    await setHealthScript({ mode: 'unhealthy' });
    const id = 'rotation-pg-unhealthy';
    start(id, 'PostgresAdminPassword');
    try {
      await world.driver().drive(id, undefined, { stepMs: 15_000 });
    } finally {
      await setHealthScript(null);
    }
    const result = output(id);
    expect(result.outcome, result.summary).toBe('rolled-back');
    expect(result.health?.[0]?.healthy).toBe(false);
    expect(await logsIn(previous)).toBe(true);
    expect(await latest('PostgresAdminPassword')).toBe(previous);
    expect(decodeURIComponent(new URL(await latest('DatabaseUrl')).password)).toBe(previous);
    expect(await health()).toBe(200);
  }, 240_000);

  for (const secret of ['PostgresAdminPassword', 'StorageAccountKey'] as const) {
    it(`${secret}: a crash at every step, and after each one (and after the resumed run) an enabled version works`, async () => {
      const id = `rotation-crash-${secret.toLowerCase()}`;
      const host = world.driver().host;
      const seen = new Set<string>();
      const lost: string[] = [];
      let crashChecks = 0;
      host.durable.setCrashPlan((point) => {
        if (point.instanceId !== id) return false;
        const key = `${point.kind}|${point.name}|${host.durable.history(id).current.length}`;
        if (seen.has(key)) return false;
        seen.add(key);
        // At the crash itself: the state the resumed run starts from must hold a working enabled version.
        crashChecks += 1;
        if (!world.someEnabledWorksNow(secret)) lost.push(key);
        return true;
      });
      start(id, secret);
      let checks = 0;
      for (let step = 0; step < 300; step += 1) {
        await host.idle();
        const status = host.durable.getStatus(id);
        // After every crash (and every step between): some enabled version works for real.
        expect(await someEnabledWorks(secret), `no enabled version of ${secret} works at step ${step} (${JSON.stringify(status?.customStatus)})`).toBe(true);
        checks += 1;
        if (status !== undefined && !['Running', 'Pending'].includes(status.runtimeStatus)) break;
        await world.driver().advance(5_000);
      }
      host.durable.setCrashPlan(undefined);
      const result = output(id);
      expect(result.outcome, result.summary).toBe('rotated');
      expect(host.durable.crashes.filter((point) => point.instanceId === id).length).toBeGreaterThan(10);
      // After the resumed run, the current (latest) version is the one that works.
      const current = await latest(secret);
      expect(secret === 'PostgresAdminPassword' ? await logsIn(current) : await authenticates(current)).toBe(true);
      expect(await health()).toBe(200);
      expect(lost, 'crash points with no working enabled version').toEqual([]);
      expect(crashChecks).toBe(host.durable.crashes.filter((point) => point.instanceId === id).length);
      expect(checks).toBeGreaterThan(0);
      await expectNoSecretsIn(id);
    }, 600_000);
  }

  it('SecretNearExpiry pushed by the sandbox starts the rotation of that version; a duplicate starts nothing; a stale version changes nothing', async () => {
    const host = world.driver().host;
    await sandbox().subscribeEventGrid({ name: 'app', endpoint: `${host.baseUrl}/runtime/webhooks/EventGrid?functionName=eventGrid&code=${host.keys.master}`, eventTypes: ['Microsoft.KeyVault.SecretNearExpiry'] });
    const before = await versions('PostgresAdminPassword');
    const current = before[before.length - 1];
    const oldest = before[0];
    // 29 days left: the sandbox's Key Vault sends SecretNearExpiry on its next clock tick.
    const clock = await sandbox().now();
    await world.secrets().updateSecretProperties('PostgresAdminPassword', current?.version ?? '', { expiresOn: new Date(clock.getTime() + 29 * 86_400_000) });
    await world.driver().advance(2_000);
    const deliveries = await sandbox().eventGridDeliveries();
    expect(deliveries.some((delivery) => delivery.eventType === 'Microsoft.KeyVault.SecretNearExpiry' && delivery.subject === 'PostgresAdminPassword' && (delivery.status ?? 0) >= 200 && (delivery.status ?? 0) < 300), JSON.stringify(deliveries)).toBe(true);
    const id = `rotation-${VAULT}-postgresadminpassword-${current?.version ?? ''}`;
    expect(host.durable.getStatus(id), 'the event started the rotation of that version').toBeDefined();
    await world.driver().drive(id, undefined, { stepMs: 5_000 });
    expect(output(id)).toMatchObject({ outcome: 'rotated', verified: true, previousVersion: current?.version });
    expect(await logsIn(await latest('PostgresAdminPassword'))).toBe(true);

    // The same event again (Event Grid redelivers): the same instance, nothing new.
    const event = (await sandbox().eventGridEvents()).find((entry) => entry.eventType === 'Microsoft.KeyVault.SecretNearExpiry' && entry.subject === 'PostgresAdminPassword');
    const instances = host.durable.listInstances().length;
    const again = await fetch(`${host.baseUrl}/runtime/webhooks/EventGrid?functionName=eventGrid&code=${host.keys.master}`, { method: 'POST', headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' }, body: JSON.stringify([event]) });
    expect(again.status).toBeLessThan(300);
    await host.idle();
    expect(host.durable.listInstances().length).toBe(instances);

    // An event naming a version that is no longer the latest: already rotated, nothing changes.
    const afterRotation = await versions('PostgresAdminPassword');
    const stale = { ...event, id: 'stale-event-1', data: { ...(event?.data ?? {}), Version: oldest?.version, Id: `https://${VAULT}.vault.azure.net/secrets/PostgresAdminPassword/${oldest?.version ?? ''}` } };
    await fetch(`${host.baseUrl}/runtime/webhooks/EventGrid?functionName=eventGrid&code=${host.keys.master}`, { method: 'POST', headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' }, body: JSON.stringify([stale]) });
    const staleId = `rotation-${VAULT}-postgresadminpassword-${oldest?.version ?? ''}`;
    await world.driver().drive(staleId, undefined, { stepMs: 5_000 });
    expect(output(staleId)).toMatchObject({ outcome: 'stale', succeeded: true, verified: false });
    expect(await versions('PostgresAdminPassword')).toEqual(afterRotation);
  }, 240_000);

  it('CLI: rotate prints the app\'s plan and, with nobody to confirm, changes nothing (exit 2); rotate status exits 0 only for a verified rotation', async () => {
    const host = world.driver().host;
    const connection = { app: host.baseUrl, key: host.keys.function };
    const out: string[] = [];
    const io = { stdout: (line: string) => out.push(line), stderr: (line: string) => out.push(line) };
    const noTerminal: Terminal = { interactive: false, progress: false, ask: () => Promise.resolve(undefined), interrupts: () => ({ signal: new AbortController().signal, dispose: () => undefined }) };
    const before = await versions('JwtSecret');
    await expect(rotateCommand(`${VAULT}/JwtSecret`, connection, io, noTerminal)).rejects.toMatchObject({ exitCode: 2 });
    expect(out.join('')).toContain(`of ${VAULT}/JwtSecret (random)`);
    expect(out.join('')).toMatch(/current: [0-9a-f]+: version [0-9a-f]+ is enabled and readable/);
    expect(await versions('JwtSecret')).toEqual(before);
    expect(out.join('')).not.toContain(await latest('JwtSecret'));
    expect(await rotateStatusCommand('rotation-pg-happy', connection, io)).toBe(0);
    expect(await rotateStatusCommand('rotation-pg-reset-fails', connection, io)).toBe(1);
  }, 60_000);
});

