/**
 * When two target entries name the same Azure resource, compared the way Azure addresses it.
 *
 * An ARM ID is not always how a runbook reaches a resource. ACR's data plane is addressed by the
 * registry's login server (`{name}.azurecr.io`) and Key Vault's by the vault's DNS name
 * (`https://{name}.vault.azure.net`), whatever subscription or resource group the ID says; storage
 * accounts and PostgreSQL flexible servers have globally unique DNS names too. So two entries
 * with the same registry name under different subscriptions (one mistyped) are one registry, and
 * the laxer policy would delete what the other keeps. Apps (web apps, Container Apps) are reached
 * through ARM by ID, so they compare by ID (case-insensitively, as ARM does).
 *
 * The plan-time half, an ID whose subscription or resource group is not where the resource
 * really is, is checked against ARM by the runbooks (`src/runbooks/shared/target-resource.ts`).
 */
import { cloudEndpoints, type AzureCloudName } from '../azure/cloud.ts';
import { parseResourceId, type ResourceKind } from '../azure/resource-id.ts';

/** How one target is identified for the one-entry-per-resource rule. */
export interface TargetIdentity {
  /** Equal keys name the same resource. */
  readonly key: string;
  /** The resource in words: `registry crx`, `Key Vault kv-x`, `web app app-x`. */
  readonly what: string;
  /** How Azure addresses it, for the message: `by its login server crx.azurecr.io`. */
  readonly addressedBy: string;
}

const KIND_WORDS: Partial<Record<ResourceKind, string>> = {
  containerRegistry: 'registry',
  keyVault: 'Key Vault',
  storageAccount: 'storage account',
  postgresFlexibleServer: 'PostgreSQL flexible server',
  webSite: 'web app',
  containerApp: 'Container App',
};

/**
 * The identity of a target's ARM ID in a cloud, or undefined when the ID does not parse (the
 * ID check reports that).
 */
export function targetIdentity(id: string, cloud: AzureCloudName = 'AzureCloud'): TargetIdentity | undefined {
  let parsed: ReturnType<typeof parseResourceId>;
  try {
    parsed = parseResourceId(id);
  } catch {
    return undefined;
  }
  const name = parsed.name.toLowerCase();
  const endpoints = cloudEndpoints(cloud);
  switch (parsed.kind) {
    case 'containerRegistry':
      return { key: `acr:${name}`, what: `registry ${parsed.name}`, addressedBy: `by its login server ${name}.${endpoints.containerRegistrySuffix}, case-insensitively` };
    case 'keyVault':
      return { key: `kv:${name}`, what: `Key Vault ${parsed.name}`, addressedBy: `by its vault URI https://${name}.${endpoints.keyVaultSuffix}, case-insensitively` };
    case 'storageAccount':
      return { key: `st:${name}`, what: `storage account ${parsed.name}`, addressedBy: `by its account name (https://${name}.${endpoints.blobSuffix}), case-insensitively` };
    case 'postgresFlexibleServer':
      return { key: `pg:${name}`, what: `PostgreSQL flexible server ${parsed.name}`, addressedBy: 'by its server name, a global DNS name, case-insensitively' };
    default:
      return { key: `id:${parsed.id.toLowerCase().replace(/\/+$/, '')}`, what: `${(parsed.kind === undefined ? undefined : KIND_WORDS[parsed.kind]) ?? 'resource'} ${parsed.name}`, addressedBy: 'by its ARM ID, case-insensitively' };
  }
}

/** One entry that names a resource an earlier entry already names. */
export interface DuplicateTarget {
  /** Index of the later entry. */
  readonly index: number;
  /** Index of the first entry that names the same resource. */
  readonly first: number;
  readonly message: string;
}

/**
 * Every target entry (of the raw `targets` list) that names a resource an earlier entry names.
 * The message names the earlier entry's path; the loader adds its line.
 */
export function duplicateTargets(targets: readonly unknown[], cloud: unknown): DuplicateTarget[] {
  const cloudName: AzureCloudName = cloud === 'AzureUSGovernment' || cloud === 'AzureChinaCloud' ? cloud : 'AzureCloud';
  const seen = new Map<string, number>();
  const duplicates: DuplicateTarget[] = [];
  targets.forEach((target, index) => {
    const id = target !== null && typeof target === 'object' ? (target as Record<string, unknown>).id : undefined;
    if (typeof id !== 'string') return;
    const identity = targetIdentity(id, cloudName);
    if (identity === undefined) return;
    const first = seen.get(identity.key);
    if (first === undefined) {
      seen.set(identity.key, index);
      return;
    }
    duplicates.push({
      index,
      first,
      message: `expected each resource in one entry only (Azure addresses the ${identity.what} ${identity.addressedBy}), found it again after targets[${String(first)}].id`,
    });
  });
  return duplicates;
}
