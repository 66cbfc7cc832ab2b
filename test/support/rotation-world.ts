/**
 * The rotation world on the local host: one sandbox with `test/fixtures/worlds/rotation.yaml`
 * (its providers kept, so a test can make real storage requests with a key), the app on a
 * virtual clock, and what the rotation tests check against the real services: whether a
 * password logs in to the embedded PostgreSQL, whether a key authenticates to Azurite, and
 * whether some enabled version of a secret does.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { startAppDriver, type AppDriver } from '../../local-host/app-driver.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';
import { defaultProviders, KeyVaultsProvider, PostgresFlexibleProvider, StorageAccountsProvider } from '../../sandbox/providers/index.ts';
import { sandboxCredential, sandboxRequest, useSandbox, worldConfigFile } from './sandbox.ts';

export const ROTATION_SUB = '6a6b6c6d-0000-4000-8000-000000000011';
export const ROTATION_RG = `/subscriptions/${ROTATION_SUB}/resourceGroups/rg-rotation-prod`;
export const ROTATION_VAULT = 'kv-rotation-prod';
export const ROTATION_APP_ID = `${ROTATION_RG}/providers/Microsoft.Web/sites/app-rotation-api`;
/** The planted credentials: they must never leave Key Vault. */
export const PG_CANARY = 'Sbx-Rotation-Canary-5d2e8a41';
export const JWT_CANARY = 'Jwt-Rotation-Canary-9b7c3f02d1e4';

/** The rotation world and its checks. */
export interface RotationWorld {
  readonly sandbox: () => SandboxHandle;
  readonly driver: () => AppDriver;
  readonly secrets: () => SecretClient;
  /** Whether `password` logs in to psql-rotation-prod as its admin, over TLS to its FQDN. */
  readonly logsIn: (password: string) => Promise<boolean>;
  /** Whether `key` authenticates to strotationprod (a real request to Azurite). */
  readonly authenticates: (key: string) => Promise<boolean>;
  /** Every version of a secret: version, enabled, tags and (for enabled ones) value. */
  readonly versions: (name: string) => Promise<{ version: string; enabled: boolean; tags: Record<string, string>; value?: string }[]>;
  /** Whether some enabled version of `name` works (logs in, or authenticates). */
  readonly someEnabledWorks: (name: 'PostgresAdminPassword' | 'StorageAccountKey') => Promise<boolean>;
  /**
   * The same, answered synchronously from the sandbox's state (for a crash plan, which cannot
   * wait): an enabled version holding the password the server's role has now (as the provider
   * applied it with ALTER ROLE), or a key Azurite accepts now.
   */
  readonly someEnabledWorksNow: (name: 'PostgresAdminPassword' | 'StorageAccountKey') => boolean;
  /** The latest version's value. */
  readonly latest: (name: string) => Promise<string>;
  /** The app's health status code. */
  readonly health: () => Promise<number>;
}

/** Starts the rotation world around a test file. */
export function useRotationWorld(): RotationWorld {
  const providers = defaultProviders();
  const storage = providers.find((provider): provider is StorageAccountsProvider => provider instanceof StorageAccountsProvider);
  const vaults = providers.find((provider): provider is KeyVaultsProvider => provider instanceof KeyVaultsProvider);
  const postgres = providers.find((provider): provider is PostgresFlexibleProvider => provider instanceof PostgresFlexibleProvider);
  const sandbox = useSandbox({ providers, worlds: ['test/fixtures/worlds/rotation.yaml'], lroDurationMs: 1000 });
  let driver: AppDriver | undefined;
  const driverOf = (): AppDriver => {
    if (driver === undefined) throw new Error('the local host is not started (use it inside a test)');
    return driver;
  };
  const secrets = (): SecretClient => new SecretClient(`${sandbox().baseUrl}/vaults/${ROTATION_VAULT}`, sandboxCredential(sandbox()), { disableChallengeResourceVerification: true, tlsOptions: { ca: sandbox().caPem } });
  const world: RotationWorld = {
    sandbox,
    driver: driverOf,
    secrets,
    async logsIn(password) {
      const client = new pg.Client({ host: '127.0.0.1', port: sandbox().postgres?.frontDoorPort ?? 0, user: 'rotadmin', password, database: 'app', ssl: { ca: sandbox().caPem, servername: 'psql-rotation-prod.postgres.database.azure.com' }, connectionTimeoutMillis: 5000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async authenticates(key) {
      if (storage === undefined) throw new Error('no storage provider');
      return (await storage.checkKey('strotationprod', key)).ok;
    },
    async versions(name) {
      const client = secrets();
      const out: { version: string; enabled: boolean; tags: Record<string, string>; value?: string; created: number }[] = [];
      for await (const properties of client.listPropertiesOfSecretVersions(name)) {
        const enabled = properties.enabled !== false;
        const value = enabled ? (await client.getSecret(name, { version: properties.version ?? '' })).value : undefined;
        out.push({ version: properties.version ?? '', enabled, tags: properties.tags ?? {}, created: properties.createdOn?.getTime() ?? 0, ...(value === undefined ? {} : { value }) });
      }
      return out.sort((a, b) => a.created - b.created).map(({ created: _created, ...rest }) => rest);
    },
    async someEnabledWorks(name) {
      for (const version of await world.versions(name)) {
        if (!version.enabled || version.value === undefined) continue;
        if (name === 'PostgresAdminPassword' ? await world.logsIn(version.value) : await world.authenticates(version.value)) return true;
      }
      return false;
    },
    someEnabledWorksNow(name) {
      const versions = vaults?.getVaultByName(ROTATION_VAULT)?.secrets.get(name.toLowerCase())?.versions ?? [];
      if (name === 'PostgresAdminPassword') {
        const password = postgres?.getServer(ROTATION_SUB, 'rg-rotation-prod', 'psql-rotation-prod')?.administratorPassword;
        return versions.some((version) => version.enabled && version.value === password);
      }
      return versions.some((version) => version.enabled && storage?.keyAuthenticates('strotationprod', version.value).ok === true);
    },
    async latest(name) {
      return (await secrets().getSecret(name)).value ?? '';
    },
    async health() {
      return (await sandboxRequest(sandbox(), { url: '/_hosts/app-rotation-api.azurewebsites.net/health' })).status;
    },
  };
  beforeAll(async () => {
    driver = await startAppDriver({ sandbox: sandbox(), entryPoint: 'test/fixtures/rotation-app.ts', configFile: worldConfigFile(sandbox(), 'rotation') });
  }, 60_000);
  afterAll(async () => {
    await driver?.stop();
  });
  beforeEach(async () => {
    driver?.host.durable.setCrashPlan(undefined);
    await sandbox().clearFaults();
  });
  return world;
}
