/**
 * Writes infra/params/<estate>.bicepparam from examples/<estate>.yaml: every role assignment,
 * alert rule target and Event Grid source of the deployment follows from what the estate
 * configuration names, through the one table of rules below.
 *
 *   npm run infra:params                  every examples/*.yaml
 *   npm run infra:params -- lms xshopai   only these estates
 *   npm run infra:params -- --check       fail when a committed parameter file is stale
 *
 * A test runs the same derivation and fails when a committed file differs from it.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseResourceId } from '../src/azure/resource-id.ts';
import { loadConfigFile } from '../src/config/load.ts';
import type { RemediationRule } from '../src/config/remediation-schema.ts';
import { RUNBOOK_KINDS, scopeKinds, targetKind, type EstateConfig, type RunbookName } from '../src/config/schema.ts';

const root = path.resolve(fileURLToPath(import.meta.url), '../..');

/** Roles of infra/types.bicep `roleName`. */
export type RoleName =
  | 'Reader'
  | 'WebsiteContributor'
  | 'ContainerAppsContributor'
  | 'AcrPull'
  | 'AcrDelete'
  | 'ContainerRegistryRepositoryContributor'
  | 'ContainerRegistryRepositoryCatalogLister'
  | 'KeyVaultReader'
  | 'KeyVaultSecretsOfficer'
  | 'StorageBlobDataContributor'
  | 'StorageTableDataContributor'
  | 'StorageAccountKeyOperator'
  | 'PostgresOperator';

/** One entry of the template's `roleAssignments` parameter. */
export interface RoleAssignment {
  readonly scope: string;
  readonly role: RoleName;
  readonly reason: string;
}

/** The parameters of infra/main.bicep that follow from an estate configuration. */
export interface DeploymentParams {
  readonly estate: string;
  readonly configFile: string;
  readonly roleAssignments: RoleAssignment[];
  readonly webApps: { id: string; healthPath: string; expectStatus: number }[];
  readonly containerApps: { id: string }[];
  readonly postgresServerIds: string[];
  readonly keyVaultEventSources: string[];
  readonly webAppEventSources: string[];
  readonly containerAppEventSources: { resourceGroupId: string; containerAppIds: string[] }[];
}

/** Where the package puts the estate configuration, relative to the app root. */
export function packagedConfigPath(estate: string): string {
  return `config/${estate}.yaml`;
}

function subscriptionOf(id: string): string {
  return `/subscriptions/${parseResourceId(id).subscriptionId}`;
}

function resourceGroupOf(id: string): string {
  const parsed = parseResourceId(id);
  return `/subscriptions/${parsed.subscriptionId}/resourceGroups/${parsed.resourceGroup}`;
}

/** The remediation rules written on a target (none when it is off or has none). */
function remediationRulesOf(target: EstateConfig['targets'][number]): RemediationRule[] {
  return target.remediation === undefined || target.remediation === 'off' ? [] : target.remediation.rules;
}

/**
 * The derivation. Each rule names the config field that asks for the access, so a reviewer can
 * check every grant against the runbook that needs it:
 *
 * - every target: Reader (inventory reads every target as Azure reports it);
 * - PostgreSQL server: the custom operator role on its resource group (restart, update,
 *   point-in-time restore, which creates the restored server beside it; no delete) and the
 *   drill role on the dedicated drill resource group (template);
 * - web app with `health` or remediation rules: Website Contributor (restart, slot swap) and Web
 *   Plan Contributor on its plan (scale-out, scale-up) (template), alert rules, slot swap events;
 * - container app: Container Apps Contributor (revision cleanup, remediation), alert rules,
 *   write events of its resource group;
 * - registry with `image-purge`: AcrPull + AcrDelete, and the ABAC repository roles (Catalog
 *   Lister, Repository Contributor) for registries in ABAC mode, where AcrDelete is not
 *   honoured; Reader on the registry's subscription and on those of `inUseScope`, because an
 *   image counts as in use anywhere there and an unreadable app makes the purge refuse;
 * - vault with `secret-expiry`: Key Vault Reader (secret metadata) and expiry events;
 * - vault with `keyvault-backup`: Key Vault Secrets Officer (backup), Storage Blob Data
 *   Contributor on the backup account;
 * - `runRecords.storageAccountId`: Storage Blob Data Contributor (run records, lock leases) and
 *   Storage Table Data Contributor (guardrail and drill state);
 * - a scope: the same roles on what it reaches (each of its resource groups, or its subscription),
 *   since it selects resources that do not exist yet when this is deployed: Reader (discovery with
 *   the Resources list operations, inventory), and per kind the role of the runbooks it (or a kind
 *   default) opts into; container apps' write events of each group by subject prefix. Per-resource
 *   alert rules (`containerApps`, `webApps`) cannot follow from a scope without listing Azure, so a
 *   scope's matches get none (docs/configuration.md#scopes-and-the-deployment).
 */
export function deriveParams(config: EstateConfig): DeploymentParams {
  const roles = new Map<string, RoleAssignment>();
  const grant = (scope: string, role: RoleName, reason: string): void => {
    const key = `${scope.toLowerCase()}|${role}`;
    if (!roles.has(key)) roles.set(key, { scope, role, reason });
  };
  const webApps: DeploymentParams['webApps'] = [];
  const containerApps: DeploymentParams['containerApps'] = [];
  const postgresServerIds: string[] = [];
  const keyVaultEventSources: string[] = [];
  const webAppEventSources: string[] = [];
  const containerAppGroups = new Map<string, { resourceGroupId: string; containerAppIds: string[] }>();

  for (const target of config.targets) {
    grant(target.id, 'Reader', 'inventory: reads every target the estate names');
    const runbooks = target.runbooks;
    switch (targetKind(target)) {
      case 'postgresFlexibleServer':
        postgresServerIds.push(target.id);
        grant(resourceGroupOf(target.id), 'PostgresOperator', 'PostgreSQL restart, update and point-in-time restore beside the server (no delete)');
        break;
      case 'webSite': {
        // Remediation rules need the same access as the health alerts (restart and swap on the
        // site, workers and SKU on its plan), so a web app with rules is wired even without health.
        const rules = remediationRulesOf(target);
        if (target.health !== undefined || rules.length > 0) {
          const verifyPath = rules.flatMap((rule) => rule.ladder.flatMap((rung) => rung.verify.paths ?? []))[0];
          webApps.push({ id: target.id, healthPath: target.health?.path ?? verifyPath ?? '/healthz', expectStatus: target.health?.expectStatus ?? 200 });
          webAppEventSources.push(target.id);
        }
        break;
      }
      case 'containerApp': {
        containerApps.push({ id: target.id });
        const group = resourceGroupOf(target.id);
        const entry = containerAppGroups.get(group.toLowerCase()) ?? { resourceGroupId: group, containerAppIds: [] };
        entry.containerAppIds.push(target.id);
        containerAppGroups.set(group.toLowerCase(), entry);
        break;
      }
      case 'containerRegistry': {
        const purge = runbooks['image-purge'];
        if (purge !== undefined) {
          grant(target.id, 'AcrPull', 'image-purge: list repositories, tags and manifests');
          grant(target.id, 'AcrDelete', 'image-purge: delete tags and manifests');
          grant(target.id, 'ContainerRegistryRepositoryCatalogLister', 'image-purge on an ABAC-mode registry: list repositories');
          grant(target.id, 'ContainerRegistryRepositoryContributor', 'image-purge on an ABAC-mode registry, where AcrDelete is not honoured: read and delete');
          for (const scope of [target.id, ...purge.inUseScope]) {
            grant(subscriptionOf(scope), 'Reader', 'image-purge: images in use by any container app, job or web app of this subscription are never deleted');
          }
        }
        break;
      }
      case 'keyVault':
        if (runbooks['secret-expiry'] !== undefined) {
          grant(target.id, 'KeyVaultReader', 'secret-expiry: secret metadata (expiry dates), never values');
          keyVaultEventSources.push(target.id);
        }
        if (runbooks['keyvault-backup'] !== undefined) {
          grant(target.id, 'KeyVaultSecretsOfficer', 'keyvault-backup: back up every secret');
          grant(runbooks['keyvault-backup'].storageAccountId, 'StorageBlobDataContributor', 'keyvault-backup: write the backups');
        }
        break;
      case 'storageAccount':
        break;
    }
  }
  config.scopes.forEach((scope, index) => {
    const label = `scope ${scope.name} (scopes[${String(index)}])`;
    const reach = scope.resourceGroups?.map((group) => `/subscriptions/${scope.subscription}/resourceGroups/${group}`) ?? [`/subscriptions/${scope.subscription}`];
    const kinds = scopeKinds(scope);
    const opts = (runbook: RunbookName): boolean =>
      kinds.some((kind) => (RUNBOOK_KINDS[runbook] as readonly string[]).includes(kind) && (scope.runbooks?.[runbook] !== undefined || config.defaults?.kinds?.[kind]?.runbooks?.[runbook] !== undefined));
    const remediated = scope.remediation !== undefined && scope.remediation !== 'off' && scope.remediation.rules.length > 0;
    for (const at of reach) {
      grant(at, 'Reader', `${label}: lists its resources (discovery) and inventory reads them`);
      if (kinds.includes('containerApp') && (opts('revision-cleanup') || remediated)) {
        grant(at, 'ContainerAppsContributor', `${label}: revision cleanup and remediation of the container apps it selects`);
        if (at.includes('/resourceGroups/')) {
          const entry = containerAppGroups.get(at.toLowerCase()) ?? { resourceGroupId: at, containerAppIds: [] };
          // A subject prefix: every container app of the group, including the ones deployed later.
          entry.containerAppIds.push(`${at}/providers/Microsoft.App/containerApps/`);
          containerAppGroups.set(at.toLowerCase(), entry);
        }
      }
      if (kinds.includes('webSite') && remediated) grant(at, 'WebsiteContributor', `${label}: restart and slot swap of the web apps it selects`);
      if (kinds.includes('postgresFlexibleServer')) grant(at, 'PostgresOperator', `${label}: PostgreSQL restart and update of the servers it selects (no delete)`);
      if (kinds.includes('containerRegistry') && opts('image-purge')) {
        grant(at, 'AcrPull', `${label}: image-purge: list repositories, tags and manifests`);
        grant(at, 'AcrDelete', `${label}: image-purge: delete tags and manifests`);
        grant(at, 'ContainerRegistryRepositoryCatalogLister', `${label}: image-purge on an ABAC-mode registry: list repositories`);
        grant(at, 'ContainerRegistryRepositoryContributor', `${label}: image-purge on an ABAC-mode registry: read and delete`);
        grant(`/subscriptions/${scope.subscription}`, 'Reader', 'image-purge: images in use by any container app, job or web app of this subscription are never deleted');
      }
      if (kinds.includes('keyVault') && opts('secret-expiry')) grant(at, 'KeyVaultReader', `${label}: secret-expiry: secret metadata (expiry dates), never values`);
      if (kinds.includes('keyVault') && opts('keyvault-backup')) grant(at, 'KeyVaultSecretsOfficer', `${label}: keyvault-backup: back up every secret`);
    }
    const backup = scope.runbooks?.['keyvault-backup']?.storageAccountId;
    if (backup !== undefined) grant(backup, 'StorageBlobDataContributor', `${label}: keyvault-backup: write the backups`);
  });
  if (config.runRecords.storageAccountId !== undefined) {
    grant(config.runRecords.storageAccountId, 'StorageBlobDataContributor', 'run records and per-resource lock leases');
    grant(config.runRecords.storageAccountId, 'StorageTableDataContributor', 'guardrail, drill and rotation state tables');
  }
  return {
    estate: config.estate,
    configFile: packagedConfigPath(config.estate),
    roleAssignments: [...roles.values()],
    webApps,
    containerApps,
    postgresServerIds,
    keyVaultEventSources,
    webAppEventSources,
    containerAppEventSources: [...containerAppGroups.values()],
  };
}

/** A value as Bicep source: single-quoted strings, one array item or object property a line. */
function bicepValue(value: unknown, indent: string): string {
  if (typeof value === 'string') return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((item) => `${inner}${bicepValue(item, inner)}`).join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    return `{\n${entries.map(([key, item]) => `${inner}${key}: ${bicepValue(item, inner)}`).join('\n')}\n${indent}}`;
  }
  throw new Error(`cannot write ${typeof value} as Bicep`);
}

/** The parameter file of one estate, as committed under infra/params/. */
export function renderParams(params: DeploymentParams, source: string): string {
  const lines = [
    `// Generated by \`npm run infra:params\` from ${source}. Do not edit: change the estate`,
    '// configuration and run it again (a test fails when this file is stale).',
    "using '../main.bicep'",
    '',
  ];
  for (const [name, value] of Object.entries(params)) lines.push(`param ${name} = ${bicepValue(value, '')}`);
  return `${lines.join('\n')}\n`;
}

/** The examples/*.yaml estates, by name. */
export async function exampleEstates(): Promise<string[]> {
  return (await readdir(path.join(root, 'examples'))).filter((file) => file.endsWith('.yaml')).map((file) => file.slice(0, -'.yaml'.length)).sort();
}

/** The parameter file text for examples/<estate>.yaml. */
export async function paramsFileFor(estate: string): Promise<string> {
  const source = `examples/${estate}.yaml`;
  const config = await loadConfigFile(path.join(root, source));
  return renderParams(deriveParams(config), source);
}

/** Where the committed parameter file of an estate lives. */
export function paramsFilePath(estate: string): string {
  return path.join(root, 'infra', 'params', `${estate}.bicepparam`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { check: { type: 'boolean', default: false } }, allowPositionals: true });
  const estates = positionals.length > 0 ? positionals : await exampleEstates();
  let stale = 0;
  for (const estate of estates) {
    const text = await paramsFileFor(estate);
    const target = paramsFilePath(estate);
    if (values.check) {
      const committed = await readFile(target, 'utf8').catch(() => '');
      if (committed !== text) {
        stale += 1;
        console.error(`stale: ${path.relative(root, target)} (run npm run infra:params)`);
      }
    } else {
      await writeFile(target, text);
      console.log(`wrote ${path.relative(root, target)}`);
    }
  }
  if (stale > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
