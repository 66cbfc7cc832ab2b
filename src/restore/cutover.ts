/**
 * Cutover of a consumer (a web app or function app) to a restored server, and its rollback.
 *
 * Values never leave this module: the new connection string is built here from the admin
 * password in Key Vault and stored as a new version of the policy's connection-string secret;
 * the consumer's app setting becomes a Key Vault reference to that version. A previous value
 * that was a literal is first kept as a version of the same secret, so the rollback, too, is a
 * reference. Versions carry tags (owner, role, consumer), which makes every step idempotent:
 * a retried activity finds what an earlier attempt stored instead of storing it again, and a
 * consumer is at every moment on the old or the new server (each change is one PUT).
 */
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceNotFoundError, toAzureError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { CutoverPolicy, RestorePolicy } from '../config/restore-schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { readAdminPassword } from './data-checks.ts';

/** Tags on the connection-string secret's versions. */
const VERSION_TAGS = { owner: 'ops-autopilot-owner', role: 'ops-autopilot-role', consumer: 'ops-autopilot-consumer', reference: 'ops-autopilot-previous-reference' } as const;
/** Most secret versions read when looking for an earlier attempt's (bounds the listing). */
const MAX_VERSIONS_READ = 500;

/** A consumer's cutover, as the orchestration keeps it: references only. */
export interface CutoverRecord {
  readonly consumerId: string;
  readonly setting: string;
  /** What the setting held before (a Key Vault reference), or null when it was not set. */
  readonly previousReference: string | null;
  /** The Key Vault reference the setting now holds. */
  readonly newReference: string;
  readonly restarted: boolean;
}

/** The consumer's setting is not what the rollback expects, or the cutover cannot proceed. */
export class CutoverError extends OpsAutopilotError {
  override readonly name: string = 'CutoverError';
}

/** App Service's Key Vault reference to one version of a secret. */
export function keyVaultReference(vault: string, secret: string, version: string): string {
  return `@Microsoft.KeyVault(VaultName=${vault};SecretName=${secret};SecretVersion=${version})`;
}

/** `postgresql://login:password@fqdn:5432/database?sslmode=require`, the password URL-encoded. */
export function connectionString(login: string, password: string, fqdn: string, database: string): string {
  return `postgresql://${encodeURIComponent(login)}:${encodeURIComponent(password)}@${fqdn}:5432/${encodeURIComponent(database)}?sslmode=require`;
}

async function findVersion(clients: AzureClients, cutover: CutoverPolicy, match: Readonly<Record<string, string>>): Promise<{ version: string; tags: Record<string, string> } | undefined> {
  const client = await clients.secretClient(cutover.connectionStringSecret.vault);
  let read = 0;
  let found: { version: string; created: number; tags: Record<string, string> } | undefined;
  try {
    for await (const properties of client.listPropertiesOfSecretVersions(cutover.connectionStringSecret.secret)) {
      read += 1;
      if (read > MAX_VERSIONS_READ) break;
      const tags = properties.tags ?? {};
      if (Object.entries(match).every(([key, value]) => tags[key] === value) && properties.version !== undefined) {
        const created = properties.createdOn?.getTime() ?? 0;
        if (found === undefined || created > found.created) found = { version: properties.version, created, tags };
      }
    }
  } catch (error) {
    // A secret that does not exist yet has no versions; anything else is a real failure.
    const typed = toAzureError(error, { resourceId: `${cutover.connectionStringSecret.vault}/secrets/${cutover.connectionStringSecret.secret}`, operation: 'list secret versions' });
    if (!(typed instanceof ResourceNotFoundError)) throw typed;
  }
  return found === undefined ? undefined : { version: found.version, tags: found.tags };
}

async function storeVersion(clients: AzureClients, cutover: CutoverPolicy, value: string, tags: Record<string, string>): Promise<string> {
  const { vault, secret } = cutover.connectionStringSecret;
  const client = await clients.secretClient(vault);
  const stored = await callAzure({ resourceId: `${vault}/secrets/${secret}`, operation: 'set secret' }, () => client.setSecret(secret, value, { tags, contentType: 'text/plain; postgresql connection string' }));
  if (stored.properties.version === undefined) throw new CutoverError(`${vault}/${secret}: expected Key Vault to report the new version, found none`);
  return stored.properties.version;
}

async function readSettings(clients: AzureClients, consumerId: string): Promise<Record<string, string>> {
  const id = parseResourceId(consumerId);
  const web = await clients.webClient(id.subscriptionId);
  const settings = await callAzure({ resourceId: consumerId, operation: 'list app settings' }, () => web.webApps.listApplicationSettings(id.resourceGroup, id.name));
  return { ...(settings.properties ?? {}) };
}

async function writeSetting(clients: AzureClients, consumerId: string, setting: string, value: string | null, restart: boolean): Promise<boolean> {
  const id = parseResourceId(consumerId);
  const web = await clients.webClient(id.subscriptionId);
  const current = await readSettings(clients, consumerId);
  const settings = Object.fromEntries(Object.entries(current).filter(([name]) => name !== setting));
  if (value !== null) settings[setting] = value;
  await callAzure({ resourceId: consumerId, operation: 'update app settings' }, () => web.webApps.updateApplicationSettings(id.resourceGroup, id.name, { properties: settings }));
  if (restart) await callAzure({ resourceId: consumerId, operation: 'restart web app' }, () => web.webApps.restart(id.resourceGroup, id.name));
  return restart;
}

/**
 * Repoints one consumer at the restored server (idempotent per owner). Reads the admin
 * password from the policy's credentials secret, stores the connection string, writes the
 * reference, restarts.
 */
export async function cutoverConsumer(
  clients: AzureClients,
  policy: RestorePolicy & { cutover: CutoverPolicy },
  consumer: CutoverPolicy['consumers'][number],
  target: { readonly owner: string; readonly fqdn: string; readonly login: string },
): Promise<CutoverRecord> {
  const { cutover } = policy;
  const { vault, secret } = cutover.connectionStringSecret;
  const consumerKey = consumer.id.toLowerCase().slice(0, 256);
  const settings = await readSettings(clients, consumer.id);
  const current = settings[consumer.setting];

  // The new connection string: one version per owner, shared by its consumers, stored last so
  // that it is the secret's latest version.
  let newVersion = (await findVersion(clients, cutover, { [VERSION_TAGS.owner]: target.owner, [VERSION_TAGS.role]: 'new' }))?.version;
  // What to roll back to, recorded in Key Vault before the setting changes, so a retried
  // attempt (the setting already on the new server) still finds it: a literal is kept as a
  // version, a reference (not a secret) in a tag of a marker version.
  let previousReference: string | null;
  const kept = await findVersion(clients, cutover, { [VERSION_TAGS.owner]: target.owner, [VERSION_TAGS.role]: 'previous', [VERSION_TAGS.consumer]: consumerKey });
  const previousTags = { [VERSION_TAGS.owner]: target.owner, [VERSION_TAGS.role]: 'previous', [VERSION_TAGS.consumer]: consumerKey };
  if (kept !== undefined) {
    const reference = kept.tags[VERSION_TAGS.reference];
    previousReference = reference === undefined ? keyVaultReference(vault, secret, kept.version) : reference === '' ? null : reference;
  } else if (newVersion !== undefined && current === keyVaultReference(vault, secret, newVersion)) {
    throw new CutoverError(`cutover of ${consumer.id}: found ${consumer.setting} already on the new server but no record of its previous value; refusing to guess a rollback`);
  } else if (current === undefined || /^@Microsoft\.KeyVault\(/i.test(current.trim())) {
    if (current !== undefined && current.length > 256) throw new CutoverError(`cutover of ${consumer.id}: expected a Key Vault reference of at most 256 characters in ${consumer.setting}, found ${current.length}`);
    await storeVersion(clients, cutover, current ?? 'unset', { ...previousTags, [VERSION_TAGS.reference]: current ?? '' });
    previousReference = current ?? null;
  } else {
    const version = await storeVersion(clients, cutover, current, previousTags);
    previousReference = keyVaultReference(vault, secret, version);
  }
  if (newVersion === undefined) {
    const password = await readAdminPassword(clients, policy);
    newVersion = await storeVersion(clients, cutover, connectionString(target.login, password, target.fqdn, policy.database), { [VERSION_TAGS.owner]: target.owner, [VERSION_TAGS.role]: 'new' });
  }
  const newReference = keyVaultReference(vault, secret, newVersion);
  const restarted = current === newReference ? false : await writeSetting(clients, consumer.id, consumer.setting, newReference, consumer.restart);
  return { consumerId: consumer.id, setting: consumer.setting, previousReference, newReference, restarted };
}

/** Puts a consumer's previous value back (idempotent) and restarts it. */
export async function rollbackConsumer(clients: AzureClients, record: CutoverRecord, restart: boolean): Promise<{ readonly consumerId: string; readonly restored: string | null; readonly restarted: boolean }> {
  const settings = await readSettings(clients, record.consumerId);
  if ((settings[record.setting] ?? null) === record.previousReference) return { consumerId: record.consumerId, restored: record.previousReference, restarted: false };
  const restarted = await writeSetting(clients, record.consumerId, record.setting, record.previousReference, restart);
  return { consumerId: record.consumerId, restored: record.previousReference, restarted };
}
