/**
 * Human rendering of an inventory: one aligned table per resource kind, then the targets that
 * could not be read.
 */
import type { InventoryResult } from '../runbooks/inventory.ts';
import { formatTable } from './table.ts';

function date(iso: string | undefined): string | undefined {
  // Minutes are enough for people; JSON output keeps the full timestamp.
  return iso === undefined ? undefined : `${iso.slice(0, 16).replace('T', ' ')}Z`;
}

function hoursAgo(hours: number | undefined): string | undefined {
  if (hours === undefined) return undefined;
  return hours >= 48 ? `${(hours / 24).toFixed(1)} d` : `${hours.toFixed(1)} h`;
}

function softDelete(policy: { enabled: boolean; days?: number }): string {
  return policy.enabled ? `${String(policy.days ?? '?')} d` : 'off';
}

/** Formats an inventory for a terminal. */
export function formatInventory(result: InventoryResult): string {
  const sections: string[] = [];
  const section = (title: string, count: number, body: string): void => {
    if (count > 0) sections.push(`${title}\n${body}`);
  };

  section(
    'PostgreSQL flexible servers',
    result.postgresServers.length,
    formatTable(result.postgresServers, [
      { header: 'server', value: (s) => s.name },
      { header: 'state', value: (s) => s.state },
      { header: 'version', value: (s) => s.version, align: 'left' },
      { header: 'retention', value: (s) => (s.backupRetentionDays === undefined ? undefined : `${s.backupRetentionDays} d`), align: 'right' },
      { header: 'geo-backup', value: (s) => s.geoRedundantBackup },
      { header: 'earliest restore', value: (s) => date(s.earliestRestoreDate) },
      { header: 'newest backup', value: (s) => date(s.newestBackup?.completedTime) },
      { header: 'age', value: (s) => hoursAgo(s.newestBackupAgeHours), align: 'right' },
      { header: 'backups', value: (s) => s.backupCount },
    ]),
  );

  section(
    'Container Apps',
    result.containerApps.length,
    formatTable(result.containerApps, [
      { header: 'app', value: (a) => a.name },
      { header: 'state', value: (a) => a.runningStatus ?? a.provisioningState },
      { header: 'mode', value: (a) => a.activeRevisionsMode },
      { header: 'revisions', value: (a) => a.revisionCount },
      { header: 'active', value: (a) => a.activeRevisionCount },
      { header: 'latest revision', value: (a) => a.latestRevisionName },
      {
        header: 'traffic',
        value: (a) => a.traffic.map((t) => `${t.latestRevision ? 'latest' : (t.revisionName ?? '?')}=${t.weight}%`).join(', '),
      },
      { header: 'image', value: (a) => a.images.join(', '), maxWidth: 70 },
    ]),
  );

  const revisionRows = result.containerApps.flatMap((app) =>
    app.revisions.map((revision) => ({ app: app.name, ...revision })),
  );
  section(
    'Container App revisions',
    revisionRows.length,
    formatTable(revisionRows, [
      { header: 'app', value: (r) => r.app },
      { header: 'revision', value: (r) => r.name },
      { header: 'active', value: (r) => r.active },
      { header: 'traffic', value: (r) => `${r.trafficWeight}%`, align: 'right' },
      { header: 'created', value: (r) => date(r.createdTime) },
      { header: 'image', value: (r) => r.images.join(', '), maxWidth: 70 },
    ]),
  );

  section(
    'Container registries',
    result.registries.length,
    formatTable(result.registries, [
      { header: 'registry', value: (r) => r.name },
      { header: 'repositories', value: (r) => r.repositoryCount },
      { header: 'tags', value: (r) => r.tagCount },
      { header: 'manifests', value: (r) => r.manifestCount },
      { header: 'untagged', value: (r) => r.untaggedManifestCount },
      { header: 'images in use', value: (r) => r.imagesInUse.length },
    ]),
  );

  const inUse = result.registries.flatMap((registry) => registry.imagesInUse.map((image) => ({ registry: registry.name, ...image })));
  section(
    'Images in use',
    inUse.length,
    formatTable(inUse, [
      { header: 'registry', value: (i) => i.registry },
      { header: 'image', value: (i) => `${i.repository}:${i.reference}` },
      { header: 'in registry', value: (i) => i.present },
      { header: 'used by', value: (i) => i.usedBy.join(', '), maxWidth: 80 },
    ]),
  );

  section(
    'Key Vaults',
    result.keyVaults.length,
    formatTable(result.keyVaults, [
      { header: 'vault', value: (v) => v.name },
      { header: 'soft delete', value: (v) => (v.softDeleteEnabled === false ? 'off' : `${String(v.softDeleteRetentionDays ?? '?')} d`) },
      { header: 'purge protection', value: (v) => v.purgeProtectionEnabled },
      { header: 'secrets', value: (v) => v.secretCount },
      { header: 'no expiry', value: (v) => v.withoutExpiryCount },
      { header: 'expired', value: (v) => (v.expired.length === 0 ? 0 : v.expired.map((s) => s.name).join(', ')), align: 'left' },
      {
        header: 'nearest expiry',
        value: (v) => (v.nearestExpiry === undefined ? undefined : `${v.nearestExpiry.name} ${v.nearestExpiry.expiresOn.slice(0, 10)} (${v.nearestExpiry.days.toFixed(0)} d)`),
      },
    ]),
  );

  const siteRows = result.webApps.flatMap((app) => [
    { app: app.name, slot: 'production', kind: app.kind, state: app.state, host: app.defaultHostName, image: app.images.length > 0 ? app.images.join(', ') : app.linuxFxVersion },
    ...app.slots.map((slot) => ({ app: app.name, slot: slot.name, kind: app.kind, state: slot.state, host: slot.defaultHostName, image: slot.images.join(', ') })),
  ]);
  section(
    'Web apps',
    result.webApps.length,
    formatTable(siteRows, [
      { header: 'app', value: (s) => s.app },
      { header: 'slot', value: (s) => s.slot },
      { header: 'kind', value: (s) => s.kind },
      { header: 'state', value: (s) => s.state },
      { header: 'host', value: (s) => s.host },
      { header: 'image', value: (s) => s.image, maxWidth: 70 },
    ]),
  );

  section(
    'Storage accounts',
    result.storageAccounts.length,
    formatTable(result.storageAccounts, [
      { header: 'account', value: (s) => s.name },
      { header: 'sku', value: (s) => s.sku },
      { header: 'replication', value: (s) => s.replication },
      { header: 'blob soft delete', value: (s) => softDelete(s.blobSoftDelete) },
      { header: 'container soft delete', value: (s) => softDelete(s.containerSoftDelete) },
      { header: 'versioning', value: (s) => s.versioning },
    ]),
  );

  if (result.errors.length > 0) {
    sections.push(
      `Could not read ${result.errors.length} target(s)\n${result.errors.map((error) => `  ${error.targetId}\n    ${error.error.message}`).join('\n')}`,
    );
  }
  if (sections.length === 0) sections.push('(no targets)');
  // Where each target came from: the entry or scope that selected it and, per runbook, the level whose policy won.
  const selected = result.selection.filter((entry) => entry.selectedBy !== 'targets');
  section(
    'Selected by',
    selected.length,
    formatTable(selected, [
      { header: 'target', value: (entry) => entry.targetId.split('/').at(-1) },
      { header: 'selected by', value: (entry) => [entry.selectedBy, ...entry.alsoSelectedBy].join(', ') },
      { header: 'policy', value: (entry) => entry.policies.map((policy) => `${policy.runbook} from ${policy.source}${policy.over.length === 0 ? '' : ` (over ${policy.over.join(', ')})`}`).join('; ') || 'none' },
    ]),
  );
  section(
    'Left out',
    result.excluded.length,
    formatTable(result.excluded, [
      { header: 'resource', value: (entry) => entry.id.split('/').at(-1) },
      { header: 'by', value: (entry) => entry.by },
      { header: 'reason', value: (entry) => entry.reason },
    ]),
  );
  return `${sections.join('\n\n')}\n`;
}
