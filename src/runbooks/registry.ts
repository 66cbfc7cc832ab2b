/**
 * The runbooks by name, as the CLI, the timer functions and any other trigger find them
 * (in the manner of Cloud Custodian's policy registry: one name, one implementation).
 */
import { RUNBOOK_KINDS, type RunbookName } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { backupVerifyRunbook } from './backup-verify.ts';
import { imagePurgeRunbook } from './image-purge.ts';
import { keyVaultBackupRunbook } from './keyvault-backup.ts';
import { revisionCleanupRunbook } from './revision-cleanup.ts';
import type { Runbook } from './runbook.ts';
import { secretExpiryRunbook } from './secret-expiry.ts';

/** Thrown for a runbook name that is not registered; lists the valid names. */
export class UnknownRunbookError extends OpsAutopilotError {
  override readonly name: string = 'UnknownRunbookError';
}

/** Every runbook, by name. The policy type is erased here; each runbook reads its own. */
export const RUNBOOKS: Readonly<Record<RunbookName, Runbook>> = {
  'backup-verify': backupVerifyRunbook,
  'keyvault-backup': keyVaultBackupRunbook,
  'revision-cleanup': revisionCleanupRunbook,
  'image-purge': imagePurgeRunbook,
  'secret-expiry': secretExpiryRunbook,
};

/** The registered names, in the order of {@link RUNBOOK_KINDS}. */
export const RUNBOOK_NAMES: readonly RunbookName[] = Object.keys(RUNBOOK_KINDS) as RunbookName[];

/** True when `name` is a registered runbook. */
export function isRunbookName(name: string): name is RunbookName {
  return (RUNBOOK_NAMES as readonly string[]).includes(name);
}

/**
 * The runbook called `name`.
 *
 * @throws {@link UnknownRunbookError} naming the valid runbooks.
 */
export function getRunbook(name: string): Runbook {
  if (!isRunbookName(name)) {
    throw new UnknownRunbookError(`expected a runbook name (${RUNBOOK_NAMES.join(', ')}), found "${name}"`, {
      context: { runbook: name, valid: RUNBOOK_NAMES },
    });
  }
  return RUNBOOKS[name];
}
