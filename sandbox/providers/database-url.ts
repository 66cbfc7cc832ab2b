/**
 * What an emulated app does with its `DATABASE_URL` at start: resolve an App Service Key Vault
 * reference (`@Microsoft.KeyVault(SecretUri=…)` or `@Microsoft.KeyVault(VaultName=…;SecretName=…;SecretVersion=…)`),
 * then connect to the flexible server its host names. Here "connect" is checked against the
 * PostgreSQL provider's state (the server exists by FQDN, is Ready, and accepts the admin login,
 * password and database), synchronously, so a health probe can answer from it. Reasons never
 * carry the password.
 */
import type { KeyVaultsProvider } from './key-vaults.ts';
import type { PostgresFlexibleProvider } from './postgres-flexible.ts';

/** The parts of a Key Vault reference, or undefined when the value is not one. */
export function parseKeyVaultReference(value: string): { vault: string; name: string; version: string | undefined } | undefined {
  const match = /^@Microsoft\.KeyVault\((.*)\)$/i.exec(value.trim());
  if (match === null) return undefined;
  const body = match[1] ?? '';
  const uri = /^SecretUri=(.+)$/i.exec(body);
  if (uri !== null) {
    let url: URL;
    try {
      url = new URL(uri[1] ?? '');
    } catch {
      return undefined;
    }
    // Azure: https://{vault}.vault.azure.net/secrets/{name}[/{version}]; the sandbox: {base}/vaults/{vault}/secrets/...
    const segments = url.pathname.split('/').filter((segment) => segment !== '');
    const offset = segments[0]?.toLowerCase() === 'vaults' ? 2 : 0;
    const vault = offset === 2 ? segments[1] : url.hostname.split('.')[0];
    if (vault === undefined || segments[offset]?.toLowerCase() !== 'secrets' || segments[offset + 1] === undefined) return undefined;
    return { vault, name: segments[offset + 1] ?? '', version: segments[offset + 2] };
  }
  const fields = new Map<string, string>();
  for (const part of body.split(';')) {
    const [key, ...rest] = part.split('=');
    if (key !== undefined && rest.length > 0) fields.set(key.trim().toLowerCase(), rest.join('=').trim());
  }
  const vault = fields.get('vaultname');
  const name = fields.get('secretname');
  if (vault === undefined || name === undefined) return undefined;
  return { vault, name, version: fields.get('secretversion') };
}

/**
 * What an app setting holds once App Service has resolved it: the plain value, or for a Key Vault
 * reference the value of the version it names (the latest without one), or the reason it does
 * not resolve (App Service then leaves the reference text in the setting).
 */
export function resolveSettingValue(value: string, vaults: KeyVaultsProvider): { readonly value: string } | { readonly problem: string } {
  if (!value.trim().startsWith('@Microsoft.KeyVault(')) return { value };
  const reference = parseKeyVaultReference(value);
  if (reference === undefined) return { problem: 'the Key Vault reference is malformed' };
  const secret = vaults.resolveSecretUri(reference.vault, reference.name, reference.version);
  if (secret === undefined) return { problem: `the Key Vault reference to ${reference.vault}/${reference.name}${reference.version === undefined ? '' : `/${reference.version}`} does not resolve` };
  return { value: secret };
}

/** Why an app with this connection string (or reference) cannot use its database, or undefined when it can. */
export function checkDatabaseUrl(value: string, postgres: PostgresFlexibleProvider, vaults: KeyVaultsProvider): string | undefined {
  const resolved = resolveSettingValue(value, vaults);
  return 'problem' in resolved ? resolved.problem : checkResolvedDatabaseUrl(resolved.value, postgres);
}

/** Why a resolved connection string cannot log in to its database, or undefined when it can. */
export function checkResolvedDatabaseUrl(resolved: string, postgres: PostgresFlexibleProvider): string | undefined {
  let url: URL;
  try {
    url = new URL(resolved);
  } catch {
    return 'the connection string is not a postgresql:// URL';
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') return `expected a postgresql:// URL, found ${url.protocol}`;
  const server = postgres.getServerByFqdn(url.hostname);
  if (server === undefined) return `no server answers at ${url.hostname}`;
  if (server.state !== 'Ready' && server.state !== 'Updating') return `server ${server.name} is ${server.state}`;
  const user = decodeURIComponent(url.username);
  if (user !== server.administratorLogin && user !== `${server.administratorLogin}@${server.name}`) return `server ${server.name} refuses login "${user}"`;
  if (decodeURIComponent(url.password) !== server.administratorPassword) return `password authentication failed for user "${user}" on ${server.name}`;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database !== '' && database !== 'postgres' && database !== server.name && database !== server.databaseName) return `database "${database}" does not exist on ${server.name}`;
  return undefined;
}
