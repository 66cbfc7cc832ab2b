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
import { PostgresFlexibleProvider } from './postgres-flexible.ts';
import { StorageAccountsProvider } from './storage-accounts.ts';
import { WebSitesProvider } from './web-sites.ts';
import { checkDatabaseUrl } from './database-url.ts';

export { ContainerAppJobsProvider } from './container-app-jobs.ts';
export { ContainerAppsProvider } from './container-apps.ts';
export { ContainerRegistriesProvider } from './container-registries.ts';
export { KeyVaultsProvider, KEY_VAULT_RESOURCE } from './key-vaults.ts';
export { PostgresFlexibleProvider } from './postgres-flexible.ts';
export { StorageAccountsProvider } from './storage-accounts.ts';
export { WebSitesProvider } from './web-sites.ts';
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
  web.setDatabaseCheck((value) => checkDatabaseUrl(value, postgres, vaults));
  return [
    web,
    containerApps,
    new ContainerAppJobsProvider(),
    postgres,
    new StorageAccountsProvider(),
    vaults,
    new ContainerRegistriesProvider(),
    createAppHostProvider([web, containerApps], health),
  ];
}
