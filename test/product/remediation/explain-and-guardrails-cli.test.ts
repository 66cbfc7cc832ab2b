/**
 * explain-alert and explain-event are read-only (proved against the sandbox: no mutating Azure
 * request, no guardrail state written, no webhook posted) and answer remediate / ignore / reject
 * with exit 0 for a valid payload and 1 for an invalid one; `guardrails status` and
 * `guardrails reset` from the CLI; GET /api/guardrails and POST /api/guardrails/{target}/reset
 * through the local host, behind the function key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { evaluateGuardrails, guardrailStatus, openGuardrailStore } from '../../../src/remediation/guardrails.ts';
import { matchRemediation } from '../../../src/remediation/rules.ts';
import { cli } from '../../support/cli.ts';
import { alert, alertPayload, FOREIGN, SITE } from '../../support/remediation-fixtures.ts';
import { isMutatingRequest, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false });
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'explain-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function payloadFile(name: string, body: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

async function statusOf(config: EstateConfig): Promise<unknown> {
  const clients = createAzureClients(config.azure);
  try {
    return await guardrailStatus(openGuardrailStore(config, clients, { readOnly: true }), undefined, { now: new Date('2026-12-02T00:00:00Z') });
  } finally {
    await clients.close();
  }
}

describe('explain-alert and explain-event', () => {
  it('explain a matching alert and a slot swap with every guardrail, and change nothing anywhere', async () => {
    const configFile = worldConfigFile(sandbox(), 'kilometers');
    const config = await loadConfigFile(configFile);
    const memory = await payloadFile('memory.json', alertPayload({ targets: [SITE], metric: 'MemoryPercentage', rule: 'kilometers memory' }));
    await sandbox().clearRequests();
    const before = await statusOf(config);
    const run = await cli(['explain-alert', memory, '--config', configFile, '--json'], { timeoutMs: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { decision: string; reason: string; target: string; rule: string; actions: string[]; guardrails: { guardrail: string; verdict: string }[]; ladder: { params: Record<string, unknown> }[] };
    expect(result.decision).toBe('remediate');
    expect(result.target.toLowerCase()).toBe(SITE.toLowerCase());
    expect(result.rule).toBe('high-memory');
    expect(result.actions).toEqual(['scale-out', 'scale-up']);
    expect(result.ladder[0]?.params).toEqual({ step: 1, maxWorkers: 2 });
    expect(result.guardrails.map((decision) => decision.guardrail)).toEqual(['kill-switch', 'target-off', 'allow-list', 'fired', 'dedupe', 'maintenance', 'breaker', 'cap', 'cooldown', 'in-progress', 'lock', 'dry-run']);

    const [swapFixture] = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile('test/fixtures/events/slot-swap-completed.json', 'utf8'))) as unknown[];
    const swap = await payloadFile('swap.json', [swapFixture]);
    const event = await cli(['explain-event', swap, '--config', configFile], { timeoutMs: 60_000 });
    expect(event.code).toBe(0);
    expect(event.stdout).toContain('decision: remediate');
    expect(event.stdout).toContain('rule: bad-swap');
    expect(event.stdout).toContain('1. swap-back slot="staging" withinMinutes=30');

    // Read-only: no Azure change, no guardrail state, no notification.
    expect((await sandbox().requests()).filter(isMutatingRequest)).toEqual([]);
    expect(await statusOf(config)).toEqual(before);
    expect(await sandbox().webhooks()).toEqual([]);
  }, 120_000);

  it('ignores a foreign target (exit 0) and rejects an invalid payload (exit 1, with the reason)', async () => {
    const configFile = worldConfigFile(sandbox(), 'kilometers');
    const foreign = await payloadFile('foreign.json', alertPayload({ targets: [FOREIGN] }));
    const ignored = await cli(['explain-alert', foreign, '--config', configFile, '--json'], { timeoutMs: 60_000 });
    expect(ignored.code).toBe(0);
    expect(JSON.parse(ignored.stdout)).toMatchObject({ decision: 'ignore', rule: null, actions: [] });
    const broken = await payloadFile('broken.json', '{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{}}}');
    const rejected = await cli(['explain-alert', broken, '--config', configFile, '--json'], { timeoutMs: 60_000 });
    expect(rejected.code).toBe(1);
    expect(JSON.parse(rejected.stdout)).toMatchObject({ valid: false, decision: 'reject' });
    const plain = await cli(['explain-alert', await payloadFile('not-json.json', 'not json'), '--config', configFile], { timeoutMs: 60_000 });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/^invalid alert payload: /);
  }, 120_000);
});

describe('guardrails status and reset', () => {
  it('show the state from the CLI and over HTTP, and reset it (function key required)', async () => {
    const configFile = worldConfigFile(sandbox(), 'kilometers');
    const config = await loadConfigFile(configFile);
    // One evaluation, so the target has state.
    const clients = createAzureClients(config.azure);
    try {
      const parsed = alert({ targets: [SITE], metric: 'MemoryPercentage', id: '00000000-0000-4000-8000-00000000a001' });
      const match = matchRemediation(config, config.targets, parsed);
      if (match.decision !== 'remediate') throw new Error(match.reason);
      const evaluation = await evaluateGuardrails(openGuardrailStore(config, clients, { env: {} }), {
        estate: config.estate,
        target: match.target,
        rule: match.rule,
        action: 'scale-out',
        triggerKey: parsed.idempotencyKey,
        monitorCondition: 'Fired',
        now: new Date(),
        dryRun: false,
      });
      expect(evaluation.allowed).toBe(true);
    } finally {
      await clients.close();
    }
    const status = await cli(['guardrails', 'status', '--config', configFile, '--target', 'app-kilometers-api-k7x2', '--json'], { timeoutMs: 60_000 });
    expect(status.code).toBe(0);
    const body = JSON.parse(status.stdout) as { targets: { actions: { action: string; lastDay: number; cooldownUntil?: string }[]; recent: unknown[] }[] };
    expect(body.targets[0]?.actions[0]).toMatchObject({ action: 'scale-out', lastDay: 1 });
    expect(body.targets[0]?.recent).toHaveLength(1);
    const unknown = await cli(['guardrails', 'reset', 'app-nobody', '--config', configFile], { timeoutMs: 60_000 });
    expect(unknown.code).toBe(2);

    const keys = { master: 'gr-master-key', function: 'gr-function-key' };
    let host: LocalHost | undefined;
    try {
      host = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, clock: new VirtualClock(new Date()), keys, settings: { OPS_AUTOPILOT_CONFIG_FILE: configFile }, enableTimers: false });
      const anonymous = await fetch(`${host.baseUrl}/api/guardrails`);
      expect(anonymous.status).toBe(401);
      const listed = await fetch(`${host.baseUrl}/api/guardrails?target=app-kilometers-api-k7x2`, { headers: { 'x-functions-key': keys.function } });
      expect(listed.status).toBe(200);
      const listedBody = (await listed.json()) as { targets: { actions: { cooldownUntil?: string }[] }[] };
      expect(listedBody.targets[0]?.actions[0]?.cooldownUntil).toBeDefined();
      const notOurs = await fetch(`${host.baseUrl}/api/guardrails/${encodeURIComponent(FOREIGN)}/reset`, { method: 'POST', headers: { 'x-functions-key': keys.function } });
      expect(notOurs.status).toBe(404);
      const reset = await fetch(`${host.baseUrl}/api/guardrails/${encodeURIComponent(SITE)}/reset`, { method: 'POST', headers: { 'x-functions-key': keys.function, 'content-type': 'application/json' }, body: JSON.stringify({ by: 'alice' }) });
      expect(reset.status).toBe(200);
      expect(await reset.json()).toMatchObject({ found: true, by: 'alice (HTTP)' });
    } finally {
      await host?.stop();
    }
    const after = await cli(['guardrails', 'status', '--config', configFile, '--json'], { timeoutMs: 60_000 });
    const afterBody = JSON.parse(after.stdout) as { targets: { breaker: { resetBy?: string }; actions: { cooldownUntil?: string; lastDay: number }[] }[] };
    expect(afterBody.targets[0]?.breaker.resetBy).toBe('alice (HTTP)');
    expect(afterBody.targets[0]?.actions[0]?.cooldownUntil).toBeUndefined();
    // Caps keep counting after a reset.
    expect(afterBody.targets[0]?.actions[0]?.lastDay).toBe(1);
  }, 180_000);
});
