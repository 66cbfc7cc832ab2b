/**
 * Endpoints of the Azure clouds Ops Autopilot supports, and their resolution against the
 * overrides in the settings. Everything the client layer addresses is derived here, so a
 * sovereign cloud or the sandbox changes endpoints in one place.
 */
import type { AzureSettings } from '../config/schema.ts';

/** A supported Azure cloud. */
export type AzureCloudName = AzureSettings['cloud'];

/** The public endpoints of one Azure cloud. */
export interface CloudEndpoints {
  /** Resource Manager, e.g. `https://management.azure.com`. */
  readonly resourceManager: string;
  /** Audience of Resource Manager tokens (the scope is `<audience>/.default`). */
  readonly resourceManagerAudience: string;
  /** Entra ID authority host. */
  readonly authorityHost: string;
  /** DNS suffix of vaults: `https://{name}.<suffix>`. */
  readonly keyVaultSuffix: string;
  /** DNS suffix of registries' login servers: `https://{name}.<suffix>`. */
  readonly containerRegistrySuffix: string;
  /** Audience of ACR tokens; the cloud's ARM audience, as the ACR SDK documents. */
  readonly containerRegistryAudience: string;
  /** DNS suffix of blob endpoints: `https://{name}.<suffix>`. */
  readonly blobSuffix: string;
  /** DNS suffix of Table service endpoints: `https://{name}.<suffix>`. */
  readonly tableSuffix: string;
  /** Audience of Storage tokens (the same in every cloud). */
  readonly storageAudience: string;
}

const CLOUDS: Readonly<Record<AzureCloudName, CloudEndpoints>> = {
  AzureCloud: {
    resourceManager: 'https://management.azure.com',
    resourceManagerAudience: 'https://management.azure.com',
    authorityHost: 'https://login.microsoftonline.com',
    keyVaultSuffix: 'vault.azure.net',
    containerRegistrySuffix: 'azurecr.io',
    containerRegistryAudience: 'https://management.azure.com',
    blobSuffix: 'blob.core.windows.net',
    tableSuffix: 'table.core.windows.net',
    storageAudience: 'https://storage.azure.com',
  },
  AzureUSGovernment: {
    resourceManager: 'https://management.usgovcloudapi.net',
    resourceManagerAudience: 'https://management.usgovcloudapi.net',
    authorityHost: 'https://login.microsoftonline.us',
    keyVaultSuffix: 'vault.usgovcloudapi.net',
    containerRegistrySuffix: 'azurecr.us',
    containerRegistryAudience: 'https://management.usgovcloudapi.net',
    blobSuffix: 'blob.core.usgovcloudapi.net',
    tableSuffix: 'table.core.usgovcloudapi.net',
    storageAudience: 'https://storage.azure.com',
  },
  AzureChinaCloud: {
    resourceManager: 'https://management.chinacloudapi.cn',
    resourceManagerAudience: 'https://management.chinacloudapi.cn',
    authorityHost: 'https://login.chinacloudapi.cn',
    keyVaultSuffix: 'vault.azure.cn',
    containerRegistrySuffix: 'azurecr.cn',
    containerRegistryAudience: 'https://management.chinacloudapi.cn',
    blobSuffix: 'blob.core.chinacloudapi.cn',
    tableSuffix: 'table.core.chinacloudapi.cn',
    storageAudience: 'https://storage.azure.com',
  },
};

/** The public endpoints of a cloud. */
export function cloudEndpoints(cloud: AzureCloudName): CloudEndpoints {
  return CLOUDS[cloud];
}

/** The endpoints actually used, after applying the settings' overrides. */
export interface ResolvedEndpoints {
  /** ARM base URL without a trailing slash. */
  readonly resourceManager: string;
  /** Token scope for ARM calls: the cloud's ARM audience, whatever host ARM is reached at. */
  readonly resourceManagerScope: string;
  readonly authorityHost: string;
  readonly containerRegistryAudience: string;
  readonly storageScope: string;
  /** Vault URL for a vault name. */
  keyVaultUrl(vaultName: string): string;
  /**
   * Registry endpoint for a registry name: the template when configured, else the login server
   * ARM reported (when given), else the cloud's `{name}.{suffix}`.
   */
  containerRegistryUrl(registryName: string, loginServer?: string): string;
  /** Blob service URL for a storage account name. */
  blobUrl(accountName: string): string;
  /** Table service URL for a storage account name. */
  tableUrl(accountName: string): string;
}

const stripSlash = (url: string): string => url.replace(/\/+$/, '');

/** Data-plane names are DNS labels; refusing anything else keeps a name from rewriting the URL. */
function checkedName(kind: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/.test(name)) {
    throw new RangeError(`expected a ${kind} name of letters, digits and dashes, found "${name}"`);
  }
  return name;
}

/** Resolves every endpoint for these settings. */
export function resolveEndpoints(settings: AzureSettings): ResolvedEndpoints {
  const cloud = cloudEndpoints(settings.cloud);
  const fill = (template: string, name: string): string => stripSlash(template.replaceAll('{name}', name));
  return {
    resourceManager: stripSlash(settings.resourceManagerEndpoint ?? cloud.resourceManager),
    resourceManagerScope: `${cloud.resourceManagerAudience}/.default`,
    authorityHost: stripSlash(settings.authorityHost ?? cloud.authorityHost),
    containerRegistryAudience: cloud.containerRegistryAudience,
    storageScope: `${cloud.storageAudience}/.default`,
    keyVaultUrl: (vaultName) => {
      const name = checkedName('vault', vaultName);
      return settings.keyVaultUrlTemplate === undefined ? `https://${name}.${cloud.keyVaultSuffix}` : fill(settings.keyVaultUrlTemplate, name);
    },
    containerRegistryUrl: (registryName, loginServer) => {
      const name = checkedName('registry', registryName);
      if (settings.containerRegistryUrlTemplate !== undefined) return fill(settings.containerRegistryUrlTemplate, name);
      if (loginServer !== undefined) {
        // A host name only: a login server must not be able to rewrite the URL.
        if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))+$/.test(loginServer)) {
          throw new RangeError(`expected a registry login server such as ${name.toLowerCase()}.${cloud.containerRegistrySuffix}, found "${loginServer}"`);
        }
        return `https://${loginServer.toLowerCase()}`;
      }
      return `https://${name.toLowerCase()}.${cloud.containerRegistrySuffix}`;
    },
    blobUrl: (accountName) => {
      const name = checkedName('storage account', accountName);
      return settings.blobUrlTemplate === undefined ? `https://${name}.${cloud.blobSuffix}` : fill(settings.blobUrlTemplate, name);
    },
    tableUrl: (accountName) => {
      const name = checkedName('storage account', accountName);
      return settings.tableUrlTemplate === undefined ? `https://${name}.${cloud.tableSuffix}` : fill(settings.tableUrlTemplate, name);
    },
  };
}

/**
 * The URL of an app's path for health checks: `appHostUrlTemplate` (default `https://{host}`)
 * with `{host}` replaced by the app's Azure host name, then the path.
 */
export function resolveAppUrl(settings: AzureSettings, host: string, path: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(host)) {
    throw new RangeError(`expected an app host name such as app.azurewebsites.net, found "${host}"`);
  }
  const base = stripSlash((settings.appHostUrlTemplate ?? 'https://{host}').replaceAll('{host}', host.toLowerCase()));
  const suffix = path === '' ? '' : path.startsWith('/') ? path : `/${path}`;
  return `${base}${suffix}`;
}

/** Where to open a PostgreSQL connection to a flexible server, and the name TLS must verify. */
export interface PostgresEndpoint {
  /** Address to connect to: the FQDN itself unless `postgresUrlTemplate` maps it elsewhere. */
  readonly host: string;
  readonly port: number;
  /**
   * The TLS server name (SNI) and the name the server certificate is verified against: always
   * the server's FQDN, wherever `host` points, so an address override never weakens TLS.
   */
  readonly servername: string;
}

/**
 * Resolves a flexible server's `fullyQualifiedDomainName` (from ARM) to the address to connect
 * to: `postgresUrlTemplate` (default `postgresql://{host}:5432`) with `{host}` replaced by the FQDN.
 */
export function resolvePostgresEndpoint(settings: AzureSettings, fullyQualifiedDomainName: string): PostgresEndpoint {
  const fqdn = fullyQualifiedDomainName.toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))+$/.test(fqdn)) {
    throw new RangeError(`expected a server FQDN such as psql-app.postgres.database.azure.com, found "${fullyQualifiedDomainName}"`);
  }
  const url = new URL((settings.postgresUrlTemplate ?? 'postgresql://{host}:5432').replaceAll('{host}', fqdn));
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 5432 : Number(url.port), servername: fqdn };
}
