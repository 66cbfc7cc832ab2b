/**
 * The schedules of the runbook timer functions: app setting `<RUNBOOK>_SCHEDULE`, else the
 * default. Kept apart from `runbook-timers.ts` so that reading them registers no function.
 */
import type { RunbookName } from '../config/schema.ts';
import { OpsAutopilotError } from '../errors.ts';

/** One timer function: its runbook, name, schedule setting and default schedule. */
export interface RunbookTimer {
  readonly runbook: RunbookName;
  readonly functionName: string;
  readonly setting: string;
  readonly defaultSchedule: string;
}

/** The timer of every runbook, with the default schedules (UTC). */
export const RUNBOOK_TIMERS: readonly RunbookTimer[] = [
  { runbook: 'backup-verify', functionName: 'backupVerifyTimer', setting: 'BACKUP_VERIFY_SCHEDULE', defaultSchedule: '0 0 6 * * *' },
  { runbook: 'keyvault-backup', functionName: 'keyVaultBackupTimer', setting: 'KEYVAULT_BACKUP_SCHEDULE', defaultSchedule: '0 30 2 * * *' },
  { runbook: 'revision-cleanup', functionName: 'revisionCleanupTimer', setting: 'REVISION_CLEANUP_SCHEDULE', defaultSchedule: '0 0 3 * * *' },
  { runbook: 'image-purge', functionName: 'imagePurgeTimer', setting: 'IMAGE_PURGE_SCHEDULE', defaultSchedule: '0 0 4 * * 0' },
  { runbook: 'secret-expiry', functionName: 'secretExpiryTimer', setting: 'SECRET_EXPIRY_SCHEDULE', defaultSchedule: '0 0 7 * * *' },
];

/** Thrown at registration for a schedule setting that is not a six-field NCRONTAB expression. */
export class ScheduleSettingError extends OpsAutopilotError {
  override readonly name: string = 'ScheduleSettingError';
}

/**
 * The schedule of a timer: the app setting when set and non-empty, otherwise the default.
 *
 * @throws {@link ScheduleSettingError} when the setting does not have six fields (a five-field
 * cron line is the usual mistake; the host would refuse it later with a vaguer message).
 */
export function resolveSchedule(timer: RunbookTimer, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const value = env[timer.setting]?.trim();
  if (value === undefined || value === '') return timer.defaultSchedule;
  const fields = value.split(/\s+/).length;
  if (fields !== 6) {
    throw new ScheduleSettingError(`app setting ${timer.setting}: expected a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), found ${fields} field(s) in "${value}"`, {
      context: { setting: timer.setting, functionName: timer.functionName },
    });
  }
  return value;
}

