/**
 * The sandbox's resource providers and data planes. The engine registers every provider
 * returned here, seeds them from the loaded world and serves their routes.
 */
import type { SandboxProvider } from '../contract.ts';
import { createAppHostProvider } from './app-health.ts';
import { AppHealth } from './health-scripts.ts';
import { ContainerAppJobsProvider } from './container-app-jobs.ts';
import { ContainerAppsProvider } from './container-apps.ts';
import { ContainerRegistriesProvider } from './container-registries.ts';
import { KeyVaultsProvider } from './key-vaults.ts';
import { MonitorProvider } from './monitor.ts';
import { PostgresFlexibleProvider } from './postgres-flexible.ts';
import { StorageAccountsProvider } from './storage-accounts.ts';
import { WebSitesProvider } from './web-sites.ts';
import { checkResolvedDatabaseUrl, resolveSettingValue } from './database-url.ts';
import { ResourcesProvider } from './resources.ts';

export { ContainerAppJobsProvider } from './container-app-jobs.ts';
export { ContainerAppsProvider } from './container-apps.ts';
export { ContainerRegistriesProvider } from './container-registries.ts';
export { KeyVaultsProvider, KEY_VAULT_RESOURCE } from './key-vaults.ts';
export { MonitorProvider } from './monitor.ts';
export { PostgresFlexibleProvider } from './postgres-flexible.ts';
export { StorageAccountsProvider } from './storage-accounts.ts';
export { WebSitesProvider } from './web-sites.ts';
export { ResourcesProvider } from './resources.ts';
export { WorldSpecError } from './common.ts';
export { AppHealth, healthScriptSchema, type HealthScript } from './health-scripts.ts';

/** Fresh provider instances (each sandbox gets its own state). */
export function defaultProviders(): SandboxProvider[] {
  // One health model for every app: a bad image is bad wherever it runs.
  const health = new AppHealth();
  const web = new WebSitesProvider(health);
  const containerApps = new ContainerAppsProvider(health);
  const postgres = new PostgresFlexibleProvider();
  const vaults = new KeyVaultsProvider();
  const storage = new StorageAccountsProvider();
  // Apps hold credentials: their health depends on whether those still work.
  web.setCredentialChecks({
    resolve: (value) => resolveSettingValue(value, vaults),
    check: (kind, value) => {
      if (kind === 'secret') return undefined;
      if (kind === 'database-url') return checkResolvedDatabaseUrl(value, postgres);
      const found = storage.keyAuthenticates(kind.storageAccount, value);
      return found.ok ? undefined : found.reason;
    },
  });
  const jobs = new ContainerAppJobsProvider();
  const registries = new ContainerRegistriesProvider();
  return [
    web,
    containerApps,
    jobs,
    postgres,
    storage,
    vaults,
    registries,
    new ResourcesProvider(() => [web, containerApps, jobs, postgres, storage, vaults, registries]),
    new MonitorProvider(),
    createAppHostProvider([web, containerApps], health),
  ];
}
