/**
 * A remediation world on the local host with the REAL remediation binding (src/functions/index.ts,
 * which loads src/remediation/services.ts): one sandbox per test file (the kilometers and xshopai
 * seed worlds), one estate config built from their generated configs with the test's rules and
 * guardrail settings, a PagerDuty target whose events land in the sandbox's webhook capture, one
 * local host on a virtual clock, and the helpers the tests drive remediations with.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { parse, stringify } from 'yaml';
import { VirtualClock } from '../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../local-host/local-host.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';
import { createAzureClients, type AzureClients } from '../../src/azure/clients.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import type { EstateConfig } from '../../src/config/schema.ts';
import type { RemediationView } from '../../src/functions/remediations.ts';
import { remediationRunId } from '../../src/remediation/flow-ids.ts';
import { createRunRecordStore } from '../../src/runs/run-record-store.ts';
import type { RunRecord } from '../../src/runs/run-record.ts';
import { isMutatingRequest, sandboxRequest, useSandbox, worldConfigFile } from './sandbox.ts';

export const KM_SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
export const KM_RG = `/subscriptions/${KM_SUB}/resourceGroups/rg-kilometers-prod/providers`;
export const SITE = `${KM_RG}/Microsoft.Web/sites/app-kilometers-api-k7x2`;
export const PLAN = `${KM_RG}/Microsoft.Web/serverfarms/asp-kilometers-prod-k7x2`;
export const PSQL = `${KM_RG}/Microsoft.DBforPostgreSQL/flexibleServers/psql-kilometers-prod-k7x2`;
export const XS_SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
export const XS_RG = `/subscriptions/${XS_SUB}/resourceGroups/rg-xshopai-prod/providers`;
export const caId = (name: string): string => `${XS_RG}/Microsoft.App/containerApps/${name}`;
export const FUNC_APP = '/subscriptions/1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001/resourceGroups/rg-limpopo-connect-prod/providers/Microsoft.Web/sites/func-limpopo-connect-prod';
export const PROD_IMAGE = 'ghcr.io/kilometers-ai/kilometers-api:2.4.1';
export const STAGING_IMAGE = 'ghcr.io/kilometers-ai/kilometers-api:2.4.0';
export const PAGER = 'oncall-pager';
export const PAGER_SECRET = 'PagerDuty-RoutingKey';
export const PAGER_KEY = 'R0UT1NGKEY-canary-0123456789abcdef';
/** Quick verification: 2 good probes 30 s apart within 90 s. */
export const VERIFY = { consecutive: 2, intervalSeconds: 30, deadlineSeconds: 90 };

/** Estate settings and rules a test file wants: merged over the generated kilometers + xshopai configs. */
export interface RemediationWorldOptions {
  /** The top-level `remediation` block. */
  readonly remediation: Record<string, unknown>;
  /** `targets[].remediation` by ARM id (the target is added when the generated config has none); a function gets the sandbox's time at start. */
  readonly targets: Readonly<Record<string, Record<string, unknown>>> | ((now: Date) => Readonly<Record<string, Record<string, unknown>>>);
  readonly settings?: Readonly<Record<string, string>>;
  readonly setupTimeoutMs?: number;
}

/** The world and what tests do with it. */
export interface RemediationWorld {
  readonly sandbox: () => SandboxHandle;
  readonly host: () => LocalHost;
  readonly clock: () => VirtualClock;
  readonly config: () => EstateConfig;
  readonly configFile: () => string;
  /** A client layer for the test's own reads (closed after the file). */
  readonly clients: () => AzureClients;
  /** A common-schema alert for `target` from the template (a fresh alert id unless given). */
  readonly alert: (options?: { rule?: string; target?: string; condition?: 'Fired' | 'Resolved'; alertId?: string; metricName?: string }) => { body: Record<string, unknown>; alertId: string };
  readonly postAlert: (body: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;
  /** Drives timers on both clocks until the instance ends, or `until` holds for its phase. */
  readonly settle: (id: string, until?: (view: { phase?: string; rung?: number }) => boolean) => Promise<void>;
  readonly view: (id: string) => Promise<RemediationView>;
  readonly api: (method: string, route: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;
  /** Mutating ARM requests since the last `clearRequests`, `METHOD path`. */
  readonly mutations: (filter?: RegExp) => Promise<string[]>;
  readonly recordOf: (instanceId: string) => Promise<RunRecord>;
  /** `POST /_sandbox/health`. */
  readonly health: (body: Record<string, unknown>) => Promise<void>;
  /** Moves both clocks. */
  readonly advance: (ms: number) => Promise<void>;
}

function targetsOf(document: Record<string, unknown>): Record<string, unknown>[] {
  const targets = document.targets;
  return Array.isArray(targets) ? (targets as Record<string, unknown>[]) : [];
}

/** Starts the world around a test file. */
export function useRemediationWorld(options: RemediationWorldOptions): RemediationWorld {
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', 'sandbox/worlds/xshopai.yaml', 'sandbox/worlds/limpopo-connect.yaml'], postgres: false });
  let host: LocalHost | undefined;
  let clock: VirtualClock | undefined;
  let config: EstateConfig | undefined;
  let configFile: string | undefined;
  let clients: AzureClients | undefined;
  let template: Record<string, unknown> | undefined;
  let counter = 0;
  const need = <T,>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready (use it inside a test)`);
    return value;
  };

  const world: RemediationWorld = {
    sandbox,
    host: () => need(host, 'the local host'),
    clock: () => need(clock, 'the virtual clock'),
    config: () => need(config, 'the estate config'),
    configFile: () => need(configFile, 'the estate config'),
    clients: () => need(clients, 'the client layer'),
    alert(alertOptions = {}) {
      counter += 1;
      const alertId = alertOptions.alertId ?? `/subscriptions/${KM_SUB}/providers/Microsoft.AlertsManagement/alerts/00000000-0000-4000-8000-${String(Date.now() % 1e6).padStart(6, '0')}${String(counter).padStart(6, '0')}`;
      const body = structuredClone(need(template, 'the alert template')) as { data: { essentials: Record<string, unknown>; alertContext: { condition: { allOf: { metricName: string }[] } } } };
      Object.assign(body.data.essentials, {
        alertId,
        alertRule: alertOptions.rule ?? 'km-health-check',
        monitorCondition: alertOptions.condition ?? 'Fired',
        alertTargetIDs: [(alertOptions.target ?? SITE).toLowerCase()],
        ...(alertOptions.condition === 'Resolved' ? { resolvedDateTime: new Date().toISOString() } : {}),
      });
      if (alertOptions.metricName !== undefined) {
        const first = body.data.alertContext.condition.allOf[0];
        if (first !== undefined) first.metricName = alertOptions.metricName;
      }
      return { body, alertId };
    },
    async postAlert(body) {
      const running = world.host();
      const response = await fetch(`${running.baseUrl}/api/alerts`, {
        method: 'POST',
        headers: { 'x-functions-key': running.keys.function, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    },
    async settle(id, until) {
      const running = world.host();
      for (let round = 0; round < 200; round++) {
        await running.idle();
        const status = running.durable.getStatus(id);
        if (status !== undefined && ['Completed', 'Failed', 'Terminated'].includes(status.runtimeStatus)) return;
        if (until !== undefined && status !== undefined && until((status.customStatus ?? {}))) return;
        await world.advance(30_000);
      }
      throw new Error(`remediation ${id} did not finish: ${JSON.stringify(running.durable.getStatus(id)?.customStatus)}`);
    },
    async view(id) {
      const running = world.host();
      const response = await fetch(`${running.baseUrl}/api/remediations/${id}`, { headers: { 'x-functions-key': running.keys.function } });
      return (await response.json()) as RemediationView;
    },
    async api(method, route, body) {
      const running = world.host();
      const response = await fetch(`${running.baseUrl}/api/${route}`, {
        method,
        headers: { 'x-functions-key': running.keys.function, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    },
    async mutations(filter = /Microsoft\.(Web|App|DBforPostgreSQL)/i) {
      return (await sandbox().requests())
        .filter((entry) => isMutatingRequest(entry) && !entry.path.includes('/_sandbox') && filter.test(entry.path))
        .map((entry) => `${entry.method} ${entry.path.replace(/\?.*$/, '')}`);
    },
    async recordOf(instanceId) {
      const store = await createRunRecordStore(world.config(), world.clients());
      const runId = remediationRunId(instanceId);
      const name = (await store.list('remediation/')).find((blob) => blob.includes(runId));
      if (name === undefined) throw new Error(`no run record for ${instanceId}`);
      return store.read(name);
    },
    async health(body) {
      const answer = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body });
      if (answer.status >= 300) throw new Error(`sandbox health ${String(answer.status)}: ${answer.text}`);
    },
    async advance(ms) {
      await sandbox().advanceClock(ms);
      await world.clock().advance(ms);
    },
  };

  beforeAll(async () => {
    const s = sandbox();
    const km = parse(await readFile(worldConfigFile(s, 'kilometers'), 'utf8')) as Record<string, unknown>;
    const xs = parse(await readFile(worldConfigFile(s, 'xshopai'), 'utf8')) as Record<string, unknown>;
    const lc = parse(await readFile(worldConfigFile(s, 'limpopo-connect'), 'utf8')) as Record<string, unknown>;
    const targets = [
      ...targetsOf(km),
      ...targetsOf(xs).filter((target) => String(target.id).includes('/Microsoft.App/containerApps/')),
      ...targetsOf(lc).filter((target) => String(target.id).includes('/Microsoft.Web/sites/')),
    ];
    const startedAt = new Date((await sandboxRequest(s, { url: '/_sandbox/clock' })).json<{ now: string }>().now);
    const wanted = typeof options.targets === 'function' ? options.targets(startedAt) : options.targets;
    for (const [id, remediation] of Object.entries(wanted)) {
      const existing = targets.find((target) => String(target.id).toLowerCase() === id.toLowerCase());
      if (existing === undefined) targets.push({ id, remediation });
      else existing.remediation = remediation;
    }
    const notifications = (km.notifications ?? {}) as { webhooks?: unknown[] };
    const estate = {
      ...km,
      estate: 'remediation-world',
      targets,
      remediation: options.remediation,
      notifications: {
        ...notifications,
        pagerduty: [{ name: PAGER, routingKey: { vault: 'kv-kilometers-k7x2', secret: PAGER_SECRET }, eventsUrl: `${s.baseUrl}/_sandbox/webhooks/${PAGER}` }],
      },
    };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'remediation-world-'));
    configFile = path.join(dir, 'estate.yaml');
    await writeFile(configFile, stringify(estate));
    config = await loadConfigFile(configFile);
    clients = createAzureClients(config.azure);
    // The PagerDuty routing key lives in Key Vault, as in production; the canary must never leave it.
    await (await clients.secretClient('kv-kilometers-k7x2')).setSecret(PAGER_SECRET, PAGER_KEY);
    template = JSON.parse(await readFile('test/fixtures/alerts/metric-static.json', 'utf8')) as Record<string, unknown>;
    clock = new VirtualClock(startedAt);
    host = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, clock, enableTimers: false, settings: { OPS_AUTOPILOT_CONFIG_FILE: configFile, ...options.settings } });
  }, options.setupTimeoutMs ?? 90_000);
  afterAll(async () => {
    await host?.stop();
    await clients?.close();
  });
  beforeEach(async () => {
    world.host().durable.setCrashPlan(undefined);
    await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
    await sandbox().clearRequests();
  });
  return world;
}
