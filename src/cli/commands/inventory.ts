/**
 * `ops-autopilot inventory --config <file> [--target <name>...] [--json] [--record]`: every
 * configured target (or the ones named), as Azure reports it. It only reads: the run record is
 * written only with `--record`. Aligned tables for people, one JSON document for machines.
 */
import { createAzureClients } from '../../azure/clients.ts';
import { armScopeDiscovery } from '../../azure/discovery.ts';
import { loadConfigFile } from '../../config/load.ts';
import { resolveTargets } from '../../config/resolve.ts';
import { selectTargetsBy } from '../../config/target-selector.ts';
import type { EstateConfig } from '../../config/schema.ts';
import { errorMessage } from '../../errors.ts';
import { emitRunRecord, jsonLineLogger } from '../../runs/run-log.ts';
import type { RunTrigger } from '../../runs/run-record.ts';
import { createRunRecordStore, type StoredRunRecord } from '../../runs/run-record-store.ts';
import { inventoryEntryCount, runInventory, type InventoryResult } from '../../runbooks/inventory.ts';
import { formatInventory } from '../inventory-format.ts';
import { EXIT, type CliIo } from '../output.ts';

/** Options of {@link inventoryCommand}. */
export interface InventoryCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  /** Only these targets: name, unique end of the id, or full id. */
  readonly target?: readonly string[];
  /** Write the run record to the configured store (default false: inventory only reads). */
  readonly record?: boolean;
  /** Emit the run record as JSON log lines on stderr. */
  readonly log?: boolean;
}

/** What {@link collectInventory} returns. */
export interface CollectedInventory {
  readonly result: InventoryResult;
  /** Where the run record went, or undefined when not written. */
  readonly stored: StoredRunRecord | undefined;
  /** Why the record could not be written, when it could not. */
  readonly recordError: string | undefined;
}

/**
 * Runs the inventory of one estate and, when asked and configured, stores its run record.
 * Used by `inventory` and `demo`.
 */
export async function collectInventory(
  config: EstateConfig,
  options: { record: boolean; trigger?: RunTrigger; log?: CliIo['stderr']; targets?: readonly string[] },
): Promise<CollectedInventory> {
  const clients = createAzureClients(config.azure);
  try {
    // The same resolution every runbook makes: scopes listed through ARM, exclusions applied.
    const resolution = await resolveTargets(config, { discovery: armScopeDiscovery(clients) });
    const selected =
      options.targets === undefined || options.targets.length === 0
        ? resolution
        : { ...resolution, targets: selectTargetsBy(resolution.targets, options.targets, `targets of estate ${config.estate}`) };
    const result = await runInventory(config, clients, { trigger: options.trigger ?? 'cli', resolution: selected });
    if (options.log !== undefined) emitRunRecord(result.record, jsonLineLogger(options.log));
    const hasStore = config.runRecords.blobServiceUrl !== undefined || config.runRecords.storageAccountId !== undefined;
    if (!options.record || !hasStore) return { result, stored: undefined, recordError: undefined };
    try {
      const store = await createRunRecordStore(config, clients);
      return { result, stored: await store.write(result.record), recordError: undefined };
    } catch (error) {
      return { result, stored: undefined, recordError: errorMessage(error) };
    }
  } finally {
    await clients.close();
  }
}

/**
 * The credential failure every target failed with, when no target could be read and all failed
 * alike: one broken credential is one problem, so it is reported once rather than per target.
 */
function sharedCredentialFailure(result: InventoryResult): string | undefined {
  const read = inventoryEntryCount(result);
  const first = result.errors[0]?.credentialFailure;
  if (read > 0 || first === undefined) return undefined;
  return result.errors.every((error) => error.credentialFailure === first) ? first : undefined;
}

/**
 * Runs the command; returns the exit code (0, or 1 when a target or the record failed).
 *
 * @throws {@link TargetSelectorError} (a usage error) when a `--target` names no target or several.
 */
export async function inventoryCommand(options: InventoryCommandOptions, io: CliIo): Promise<number> {
  const config = await loadConfigFile(options.config);
  const { result, stored, recordError } = await collectInventory(config, {
    record: options.record === true,
    ...(options.target === undefined ? {} : { targets: options.target }),
    ...(options.log === true ? { log: io.stderr } : {}),
  });
  const credentialFailure = sharedCredentialFailure(result);
  if (options.json === true) {
    const { record, ...inventory } = result;
    io.stdout(`${JSON.stringify({ ...inventory, runRecord: { runId: record.runId, status: record.status, blob: stored?.blobName ?? null } }, null, 2)}\n`);
  } else {
    io.stdout(`Inventory of estate ${result.estate} (run ${result.runId}, ${result.generatedAt})\n\n`);
    if (credentialFailure === undefined) io.stdout(formatInventory(result));
    else io.stdout(`Could not read any of the ${result.errors.length} target(s): ${credentialFailure}\n`);
    if (stored !== undefined) io.stdout(`\nrun record: ${stored.container}/${stored.blobName}\n`);
  }
  if (credentialFailure !== undefined) {
    io.stderr(`error: all ${result.errors.length} target(s) failed with the same credential error: ${credentialFailure}\n`);
  } else {
    for (const error of result.errors) io.stderr(`error: ${error.targetId}: ${error.error.message}\n`);
  }
  for (const warning of result.warnings) io.stderr(`warning: ${warning}\n`);
  for (const entry of result.unavailable) io.stderr(`error: ${entry.reason}\n`);
  if (recordError !== undefined) io.stderr(`error: run record not written: ${recordError}\n`);
  return result.errors.length > 0 || result.unavailable.length > 0 || recordError !== undefined ? EXIT.failure : EXIT.ok;
}
