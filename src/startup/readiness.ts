/**
 * Is the app ready to run its runbooks? One check, used at app start (logged), by
 * `GET /api/ready` (503 with the problems, 200 with a summary) and before every timer run (which
 * fails with the same message while the app is not ready), so the three never disagree.
 *
 * It reads the app settings and the estate configuration they name; it calls nothing in Azure,
 * so a probe may call it as often as it likes. Problems carry field paths, lines and setting
 * names, never a secret: the configuration loader redacts what it found, and secret settings
 * are never echoed.
 */
import { loadConfigFromSettings } from '../config/load.ts';
import { scopeKinds, type EstateConfig, type RunbookName } from '../config/schema.ts';
import { ConfigError, errorMessage, formatConfigIssue, OpsAutopilotError, type ConfigIssue } from '../errors.ts';
import { RUNBOOK_TIMERS, resolveSchedule } from '../functions/runbook-schedules.ts';
import { getRunbook } from '../runbooks/registry.ts';
import { targetsFor } from '../runbooks/runbook.ts';
import { checkAppSettings, type AppSettings } from './app-settings.ts';

/** One thing that keeps the app from being ready. */
export interface ReadinessProblem extends ConfigIssue {
  /** `app settings`, or where the estate configuration came from (a path or `app setting OPS_AUTOPILOT_CONFIG`). */
  readonly source: string;
}

/** What the ready app will do: no secrets, nothing Azure had to be asked for. */
export interface ReadinessSummary {
  readonly estate: string;
  readonly dryRun: boolean;
  /** Explicit targets (scopes are listed when a runbook runs, not at start-up). */
  readonly targets: number;
  /** Scopes, whose targets each run resolves through ARM. */
  readonly scopes: number;
  /** Each timer: its runbook, function, schedule in force and how many explicit targets and scopes opt in. */
  readonly runbooks: readonly { readonly runbook: RunbookName; readonly functionName: string; readonly schedule: string; readonly targets: number; readonly scopes: number }[];
}

/** The outcome of {@link checkReadiness}. */
export type Readiness =
  | { readonly ready: true; readonly config: EstateConfig; readonly summary: ReadinessSummary }
  | { readonly ready: false; readonly problems: readonly ReadinessProblem[] };

/** Options of {@link checkReadiness}. */
export interface ReadinessOptions {
  /** App settings; `process.env` by default, as on the host. */
  readonly env?: AppSettings;
  /** Directory a relative `OPS_AUTOPILOT_CONFIG_FILE` is resolved against (the app root; the working directory by default). */
  readonly baseDir?: string;
  readonly now?: Date;
}

const SETTINGS_SOURCE = 'app settings';

function summarise(config: EstateConfig, env: AppSettings): ReadinessSummary {
  return {
    estate: config.estate,
    dryRun: config.dryRun,
    targets: config.targets.length,
    scopes: config.scopes.length,
    runbooks: RUNBOOK_TIMERS.map((timer) => ({
      runbook: timer.runbook,
      functionName: timer.functionName,
      schedule: resolveSchedule(timer, env),
      targets: targetsFor(getRunbook(timer.runbook), config).length,
      scopes: config.scopes.filter((scope) => scope.runbooks?.[timer.runbook] !== undefined || scopeKinds(scope).some((kind) => config.defaults?.kinds?.[kind]?.runbooks?.[timer.runbook] !== undefined)).length,
    })),
  };
}

/**
 * Checks the app settings and the estate configuration, reporting every problem of both at
 * once. Never throws: an unexpected failure of the check is itself a problem.
 */
export async function checkReadiness(options: ReadinessOptions = {}): Promise<Readiness> {
  const env = options.env ?? process.env;
  const problems: ReadinessProblem[] = [];
  let config: EstateConfig | undefined;
  try {
    config = await loadConfigFromSettings({ env, ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }) });
  } catch (error) {
    if (error instanceof ConfigError) {
      const source = error.source;
      problems.push(...error.issues.map((issue) => ({ ...issue, source })));
    } else {
      problems.push({ source: 'estate configuration', path: '', message: `expected it to load, found an error: ${errorMessage(error).split('\n')[0] ?? ''}` });
    }
  }
  try {
    const settings = checkAppSettings(env, {
      ...(config?.azure.managedIdentityClientId === undefined ? {} : { managedIdentityClientId: config.azure.managedIdentityClientId }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    // The loader already reports the configuration settings (neither set, both set) itself.
    problems.unshift(...settings.map((issue) => ({ ...issue, source: SETTINGS_SOURCE })));
  } catch (error) {
    problems.unshift({ source: SETTINGS_SOURCE, path: '', message: `expected the check to finish, found an error: ${errorMessage(error).split('\n')[0] ?? ''}` });
  }
  if (problems.length > 0 || config === undefined) return { ready: false, problems };
  return { ready: true, config, summary: summarise(config, env) };
}

/** One line per problem: `source: path: expected ..., found ... (line N)`. */
export function formatReadinessProblem(problem: ReadinessProblem): string {
  return `${problem.source}: ${formatConfigIssue(problem)}`;
}

/** The message of a not-ready app: a header line, then one indented line per problem. */
export function notReadyMessage(problems: readonly ReadinessProblem[]): string {
  const count = problems.length;
  const header = `Ops Autopilot is not ready: ${String(count)} problem${count === 1 ? '' : 's'} in its settings (GET /api/ready lists them; nothing runs until they are fixed)`;
  return [header, ...problems.map((problem) => `  ${formatReadinessProblem(problem)}`)].join('\n');
}

/** One line for a ready app, for the start-up log. */
export function readyMessage(summary: ReadinessSummary): string {
  const runbooks = summary.runbooks
    .filter((entry) => entry.targets > 0 || entry.scopes > 0)
    .map((entry) => `${entry.runbook} (${String(entry.targets)}${entry.scopes > 0 ? ` + ${String(entry.scopes)} scope${entry.scopes === 1 ? '' : 's'}` : ''}, ${entry.schedule})`);
  const scopes = summary.scopes > 0 ? ` and ${String(summary.scopes)} scope${summary.scopes === 1 ? '' : 's'}` : '';
  return `Ops Autopilot is ready: estate ${summary.estate}, ${String(summary.targets)} targets${scopes}, dryRun ${String(summary.dryRun)}; runbooks: ${runbooks.join(', ') || 'none opted in'}`;
}

/** Thrown by a timer while the app is not ready; the message is the one the start-up log and `/api/ready` give. */
export class AppNotReadyError extends OpsAutopilotError {
  override readonly name: string = 'AppNotReadyError';
  readonly problems: readonly ReadinessProblem[];

  constructor(problems: readonly ReadinessProblem[]) {
    super(notReadyMessage(problems), { context: { problemCount: problems.length, settings: problems.map((problem) => problem.path) } });
    this.problems = problems;
  }
}
