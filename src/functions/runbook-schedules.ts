/**
 * The schedules of the app's timer functions: app setting `<NAME>_SCHEDULE`, else the default.
 * Kept apart from the trigger modules so that reading them registers no function.
 */
import { parseNcrontab } from '../config/ncrontab.ts';
import type { RunbookName } from '../config/schema.ts';
import { errorMessage, type ConfigIssue } from '../errors.ts';
import { RESTORE_TIMERS } from '../restore/names.ts';
import { ROTATION_TIMER } from '../rotation/names.ts';

/** One timer function: its name, schedule setting and default schedule. */
export interface ScheduledTimer {
  readonly functionName: string;
  readonly setting: string;
  readonly defaultSchedule: string;
}

/** The timer of a runbook. */
export interface RunbookTimer extends ScheduledTimer {
  readonly runbook: RunbookName;
}

/** The timer of every runbook, with the issue's default schedules (UTC). */
export const RUNBOOK_TIMERS: readonly RunbookTimer[] = [
  { runbook: 'backup-verify', functionName: 'backupVerifyTimer', setting: 'BACKUP_VERIFY_SCHEDULE', defaultSchedule: '0 0 6 * * *' },
  { runbook: 'keyvault-backup', functionName: 'keyVaultBackupTimer', setting: 'KEYVAULT_BACKUP_SCHEDULE', defaultSchedule: '0 30 2 * * *' },
  { runbook: 'revision-cleanup', functionName: 'revisionCleanupTimer', setting: 'REVISION_CLEANUP_SCHEDULE', defaultSchedule: '0 0 3 * * *' },
  { runbook: 'image-purge', functionName: 'imagePurgeTimer', setting: 'IMAGE_PURGE_SCHEDULE', defaultSchedule: '0 0 4 * * 0' },
  { runbook: 'secret-expiry', functionName: 'secretExpiryTimer', setting: 'SECRET_EXPIRY_SCHEDULE', defaultSchedule: '0 0 7 * * *' },
];

/**
 * Timers that start or tend orchestrations rather than run a runbook (restore drills and their
 * sweeper), with the same setting-else-default schedules.
 */
export const ORCHESTRATION_TIMERS: readonly ScheduledTimer[] = [
  { functionName: RESTORE_TIMERS.restoreDrillTimer.name, setting: RESTORE_TIMERS.restoreDrillTimer.setting, defaultSchedule: RESTORE_TIMERS.restoreDrillTimer.default },
  { functionName: RESTORE_TIMERS.drillSweeperTimer.name, setting: RESTORE_TIMERS.drillSweeperTimer.setting, defaultSchedule: RESTORE_TIMERS.drillSweeperTimer.default },
  { functionName: ROTATION_TIMER.name, setting: ROTATION_TIMER.setting, defaultSchedule: ROTATION_TIMER.default },
];

/** Every timer function of the app. */
export const ALL_TIMERS: readonly ScheduledTimer[] = [...RUNBOOK_TIMERS, ...ORCHESTRATION_TIMERS];

/** The schedule setting of `timer` as `env` holds it: trimmed, or undefined when unset or empty. */
function scheduleSetting(timer: ScheduledTimer, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const value = env[timer.setting]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/**
 * What is wrong with the schedule setting of `timer`, or undefined when it is unset (the default
 * applies) or a six-field NCRONTAB expression, as the Functions host parses it, that fires within
 * five years of `now`.
 */
export function scheduleProblem(
  timer: ScheduledTimer,
  env: Readonly<Record<string, string | undefined>> = process.env,
  now: Date = new Date(),
): ConfigIssue | undefined {
  const value = scheduleSetting(timer, env);
  if (value === undefined) return undefined;
  const found = JSON.stringify(value);
  const fields = value.split(/\s+/).length;
  if (fields !== 6) {
    // A five-field cron line is the usual mistake; the host would refuse it with a vaguer message.
    return { path: timer.setting, message: `expected a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), found ${String(fields)} field(s) in ${found}` };
  }
  try {
    parseNcrontab(value).nextAfter(now);
    return undefined;
  } catch (error) {
    const reason = errorMessage(error).replace(/^NCRONTAB "(?:[^"\\]|\\.)*":? ?/, '');
    return { path: timer.setting, message: `expected a valid six-field NCRONTAB expression (${reason})`, found };
  }
}

/**
 * The schedule a timer is registered with: the app setting when it is set and valid, otherwise
 * the default. An invalid setting never stops the app from loading (then `/api/ready` could not
 * say what is wrong): the timer is registered on its default schedule, `/api/ready` answers 503
 * naming the setting, and every timer run fails with that message until the setting is fixed
 * (see `src/startup/readiness.ts`), so the runbook never runs on a schedule nobody chose.
 */
export function resolveSchedule(timer: ScheduledTimer, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const value = scheduleSetting(timer, env);
  return value === undefined || scheduleProblem(timer, env) !== undefined ? timer.defaultSchedule : value;
}
