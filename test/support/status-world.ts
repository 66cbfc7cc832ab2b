/**
 * The status page's test world (issue 12): the kilometers seed world in a sandbox with Azurite,
 * its generated estate config with a restore drill policy added to its PostgreSQL server, and
 * the real app on the local host reading it. `plant()` records what the timers would have
 * (backup-verify and secret-expiry runs); `fix()` repairs every planted problem as an operator
 * would, in the sandbox: the retention raised to the promised 7 days (and, since the sandbox
 * cannot wait a week, the 7 days of backups that retention then keeps), backup-verify run again,
 * a passed drill recorded in the drill history, the disabled alert rule enabled, and the secrets
 * without expiry given a new version with one.
 *
 * Used by the API test and the browser test alike, so both judge the same world.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { parse, stringify } from 'yaml';
import { createAzureClients, type AzureClients } from '../../src/azure/clients.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import type { EstateConfig } from '../../src/config/schema.ts';
import { recordDrillStep } from '../../src/restore/drills.ts';
import { executeRunbook } from '../../src/runbooks/execute-runbook.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import type { RunbookContext } from '../../src/runbooks/runbook.ts';
import { startLocalHost, type LocalHost } from '../../local-host/local-host.ts';
import { defaultProviders, PostgresFlexibleProvider } from '../../sandbox/providers/index.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';
import type { SandboxProvider } from '../../sandbox/contract.ts';
import { providerOf } from './runbook-context.ts';
import { sandboxRequest, sandboxToken, useSandbox } from './sandbox.ts';

/** The kilometers world's resources the fixes touch. */
export const KM = {
  subscription: '5f504e96-b142-4ec0-8e99-50424fa25005',
  resourceGroup: 'rg-kilometers-prod',
  server: 'psql-kilometers-prod-k7x2',
  vault: 'kv-kilometers-k7x2',
  memoryRule: 'opsap-asp-kilometers-prod-k7x2-memory',
  serverId: '/subscriptions/5f504e96-b142-4ec0-8e99-50424fa25005/resourceGroups/rg-kilometers-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-kilometers-prod-k7x2',
} as const;

/** Function key of the test host. */
export const STATUS_KEYS = { master: 'status-master-key', function: 'status-function-key' } as const;
const FAR = '0 0 0 1 1 *';
/** The host the world's action group calls: the deployed app's name (the local host answers on 127.0.0.1). */
export const APP_HOST = 'func-opsap-kilometers.azurewebsites.net';

/** What a status test gets. */
export interface StatusWorld {
  sandbox(): SandboxHandle;
  host(): LocalHost;
  configFile(): string;
  config(): EstateConfig;
  /** Runs backup-verify and secret-expiry through the executor (dry run: records, no changes), as the timers would. */
  plant(): Promise<void>;
  /** Fixes every planted problem in the sandbox (see the module comment). */
  fix(): Promise<void>;
  /** A client layer over the config (closed after the file). */
  clients(): AzureClients;
}

/** The generated kilometers config with a restore drill policy on its server, written to a temp file. */
function withDrillPolicy(configFile: string): string {
  const raw = parse(readFileSync(configFile, 'utf8')) as { targets: { id: string; restore?: unknown }[] };
  for (const target of raw.targets) {
    if (target.id.toLowerCase() === KM.serverId.toLowerCase()) {
      target.restore = { credentials: { vault: KM.vault, secret: 'DatabaseConnectionString' }, database: 'kilometers', drill: { rtoTargetMinutes: 60, rpoTargetMinutes: 15 } };
    }
  }
  const file = join(mkdtempSync(join(tmpdir(), 'ops-autopilot-status-')), 'kilometers.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

/** Starts the world before the file's tests and stops it after them. */
export function useStatusWorld(): StatusWorld {
  const providers: SandboxProvider[] = defaultProviders();
  const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false, providers });
  let host: LocalHost | undefined;
  let file = '';
  let config: EstateConfig | undefined;
  let clients: AzureClients | undefined;
  beforeAll(async () => {
    const world = sandbox().worlds.find((entry) => entry.name === 'kilometers');
    if (world === undefined) throw new Error('the kilometers world is not loaded');
    file = withDrillPolicy(world.configFile);
    config = await loadConfigFile(file);
    clients = createAzureClients(config.azure);
    host = await startLocalHost({
      entryPoint: 'src/functions/index.ts',
      port: 0,
      keys: STATUS_KEYS,
      enableTimers: false,
      settings: { OPS_AUTOPILOT_CONFIG_FILE: file, OPS_AUTOPILOT_APP_HOSTNAME: APP_HOST, BACKUP_VERIFY_SCHEDULE: '0 0 6 * * *', KEYVAULT_BACKUP_SCHEDULE: FAR, REVISION_CLEANUP_SCHEDULE: FAR, IMAGE_PURGE_SCHEDULE: FAR, SECRET_EXPIRY_SCHEDULE: FAR },
    });
  });
  afterAll(async () => {
    await host?.stop();
    await clients?.close();
  });
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready: call inside a test`);
    return value;
  };
  const context = (): RunbookContext => ({ config: need(config, 'config'), clients: need(clients, 'clients'), now: () => new Date(), logger: { log: () => undefined } });
  const run = async (runbook: 'backup-verify' | 'secret-expiry'): Promise<void> => {
    await executeRunbook(RUNBOOKS[runbook], context(), { trigger: 'timer', mode: 'apply', notify: false, requestedBy: 'status test' });
  };
  return {
    sandbox,
    host: () => need(host, 'host'),
    configFile: () => file,
    config: () => need(config, 'config'),
    clients: () => need(clients, 'clients'),
    plant: async () => {
      await run('backup-verify');
      await run('secret-expiry');
    },
    fix: async () => {
      const ctx = context();
      // The retention raised through ARM (Servers_Update), as an operator would.
      const postgres = await ctx.clients.postgresClient(KM.subscription);
      await postgres.servers.beginUpdateAndWait(KM.resourceGroup, KM.server, { backup: { backupRetentionDays: 7 } }, { updateIntervalInMs: 50 });
      // A longer retention keeps backups from then on; the sandbox cannot wait the week it takes
      // for the window to fill, so the test gives the server the 7 days of daily backups it would have.
      const server = providerOf(providers, PostgresFlexibleProvider).getServer(KM.subscription, KM.resourceGroup, KM.server);
      if (server === undefined) throw new Error('the kilometers server is not in the sandbox');
      server.earliestRestoreOverride = undefined;
      const now = Date.now();
      server.backups = Array.from({ length: 8 }, (_, index) => {
        const completed = new Date(now - (4 + index * 24) * 3_600_000);
        return { name: `backup_fix_${String(index)}`, completed, backupType: 'Full', source: 'Automatic' };
      });
      await run('backup-verify');
      // A passed drill, recorded as the drill orchestration records one.
      const started = new Date(now - 3_600_000);
      await recordDrillStep(ctx, {
        estate: ctx.config.estate,
        serverId: KM.serverId,
        startedAt: started.toISOString(),
        finishedAt: new Date(started.getTime() + 25 * 60_000).toISOString(),
        restorePoint: new Date(started.getTime() + 60_000).toISOString(),
        rtoSeconds: 1320,
        rpoSeconds: 45,
        rtoTargetSeconds: 3600,
        rpoTargetSeconds: 900,
        checks: [{ name: 'row counts', passed: true, detail: 'users 3 = 3, orders 4 = 4' }],
        verdict: 'passed',
        reason: 'restored, validated and torn down within the targets',
        instanceId: 'drill-status-test:psql-kilometers-prod-k7x2',
        runId: '3c7f1c7e-5d2a-4f7e-9a55-1a2b3c4d5e6f',
        scratchServerId: `${KM.serverId}-drill-test`,
        tornDown: true,
      });
      // The disabled alert rule enabled (MetricAlerts_Update).
      const token = await sandboxToken(sandbox(), 'https://management.azure.com/.default');
      const patched = await sandboxRequest(sandbox(), {
        method: 'PATCH',
        url: `/subscriptions/${KM.subscription}/resourceGroups/${KM.resourceGroup}/providers/Microsoft.Insights/metricAlerts/${KM.memoryRule}?api-version=2018-03-01`,
        body: { properties: { enabled: true } },
        token,
      });
      if (patched.status !== 200) throw new Error(`enabling ${KM.memoryRule}: expected 200, found ${String(patched.status)} ${patched.text}`);
      // New versions with an expiry for the secrets that have none.
      const secrets = await ctx.clients.secretClient(KM.vault);
      const expiresOn = new Date(now + 60 * 86_400_000);
      for (const name of ['DatabaseConnectionString', 'ApiKey-Maps']) await secrets.setSecret(name, `rotated-${name}-${String(now)}`, { expiresOn });
      await run('secret-expiry');
    },
  };
}
