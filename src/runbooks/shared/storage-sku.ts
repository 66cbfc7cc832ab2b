/** Storage account SKU names, as inventory and backup-verify read them. */

/** Replication of a storage SKU name, e.g. `Standard_RAGRS` → `RAGRS`. */
export function replicationOfSku(sku: string | undefined): string | undefined {
  return sku?.split('_')[1]?.toUpperCase();
}
