/**
 * The app settings the Functions app reads, in one list, and what a valid value looks like.
 *
 * App settings are environment variables of the worker. A typo in one surfaces only when the
 * code that reads it runs, which for a weekly timer is a week later; so `/api/ready` and the
 * start-up hook (`src/functions/ready.ts`) check all of them at once. The estate configuration
 * they name (`OPS_AUTOPILOT_CONFIG_FILE` or `OPS_AUTOPILOT_CONFIG`) is checked by the loader
 * (`src/config/load.ts`), the schedule settings by `src/functions/runbook-schedules.ts`.
 *
 * A problem names the setting, says what was expected and, for settings that are not secret,
 * what was found. Connection strings are never echoed, not even in part.
 */
import { isRunningInAzure } from '../azure/credential.ts';
import { CONFIG_FILE_SETTING, CONFIG_TEXT_SETTING, distance } from '../config/load.ts';
import type { ConfigIssue } from '../errors.ts';
import { ALL_TIMERS, scheduleProblem } from '../functions/runbook-schedules.ts';

/** App settings, as the worker's environment holds them. */
export type AppSettings = Readonly<Record<string, string | undefined>>;

/** What {@link checkAppSettings} knows about where it runs, beyond the settings themselves. */
export interface AppSettingsContext {
  /** `azure.managedIdentityClientId` of the estate configuration, when it loaded. */
  readonly managedIdentityClientId?: string;
  /** For schedules: they must fire within five years of this instant. */
  readonly now?: Date;
}

/** One app setting the code (or the host, for the app's sake) reads. */
interface SettingSpec {
  readonly name: string;
  /** Holds a credential or a key: its value never appears in a message. */
  readonly secret?: boolean;
  /** Must be set when the app runs in Azure. */
  readonly requiredInAzure?: string;
  /** Why a set value is wrong, phrased as what was expected; undefined when it is fine. */
  readonly check?: (value: string, settings: AppSettings, context: AppSettingsContext) => string | undefined;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Application Insights connection string: `Key=Value;...` with a GUID InstrumentationKey. */
function connectionStringProblem(value: string): string | undefined {
  const parts = new Map<string, string>();
  for (const part of value.split(';')) {
    if (part.trim() === '') continue;
    const at = part.indexOf('=');
    if (at <= 0) return 'expected an Application Insights connection string (Key=Value pairs separated by ";")';
    parts.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const key = parts.get('instrumentationkey');
  if (key === undefined || !GUID.test(key)) return 'expected an Application Insights connection string with an InstrumentationKey GUID';
  return undefined;
}

/** Every app setting the code reads besides the schedules; the Bicep template (infra/main.bicep) sets them. */
const SETTINGS: readonly SettingSpec[] = [
  { name: CONFIG_FILE_SETTING },
  { name: CONFIG_TEXT_SETTING, secret: true },
  {
    name: 'DURABLE_TASK_HUB_NAME',
    requiredInAzure: 'host.json names the Durable Functions task hub %DURABLE_TASK_HUB_NAME%',
    // The Azure Storage backend's rule: it names queues, tables and a container after the hub.
    check: (value) => (/^[A-Za-z][A-Za-z0-9]{2,44}$/.test(value) ? undefined : 'expected a task hub name of 3 to 45 letters and digits, starting with a letter'),
  },
  {
    name: 'AZURE_CLIENT_ID',
    check: (value, settings, context) => {
      if (!GUID.test(value)) return 'expected the client id (a GUID) of the app\'s user-assigned identity';
      // In Azure this names the identity the app has (infra/main.bicep), and the credential falls
      // back to it; a configuration naming another identity wins, and would authenticate as that.
      if (!isRunningInAzure(settings) || context.managedIdentityClientId === undefined) return undefined;
      return context.managedIdentityClientId.toLowerCase() === value.toLowerCase()
        ? undefined
        : `expected the same client id as the estate configuration's azure.managedIdentityClientId (which the app authenticates with), found ${context.managedIdentityClientId} there`;
    },
  },
  {
    name: 'AzureWebJobsStorage__accountName',
    check: (value) => (/^[a-z0-9]{3,24}$/.test(value) ? undefined : 'expected a storage account name (3 to 24 lower-case letters and digits)'),
  },
  {
    name: 'AzureWebJobsStorage__credential',
    check: (value) => (value.toLowerCase() === 'managedidentity' ? undefined : 'expected "managedidentity" (identity-based host storage)'),
  },
  { name: 'AzureWebJobsStorage__clientId', check: (value) => (GUID.test(value) ? undefined : 'expected the client id (a GUID) of the identity the host uses for its storage') },
  { name: 'AzureWebJobsStorage', secret: true },
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING',
    secret: true,
    requiredInAzure: 'run logs and failed-run alerts go to Application Insights',
    check: connectionStringProblem,
  },
  {
    name: 'OPS_AUTOPILOT_KILL_SWITCH',
    // Anything but a clear on or off is refused, so that a typo never leaves remediation running.
    check: (value) => (/^(on|off)$/i.test(value) ? undefined : 'expected "on" (stop all remediation) or "off"'),
  },
];

/** Names of every app setting the code reads, schedules included. */
export const APP_SETTING_NAMES: readonly string[] = [...SETTINGS.map((setting) => setting.name), ...ALL_TIMERS.map((timer) => timer.setting)];

function shown(spec: SettingSpec | undefined, value: string): string {
  if (spec?.secret === true) return 'a value (not shown)';
  const text = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return JSON.stringify(text);
}

/**
 * Settings whose name is one or two edits away from a known one (or differs only in case): an
 * `IMAGE_PURGE_SCHEDUEL` would otherwise be ignored and the default schedule used in silence.
 */
function misspelledNames(settings: AppSettings): ConfigIssue[] {
  const known = new Set(APP_SETTING_NAMES);
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(settings).sort()) {
    if (known.has(name) || (settings[name] ?? '') === '') continue;
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const candidate of APP_SETTING_NAMES) {
      const d = name.toLowerCase() === candidate.toLowerCase() ? 0 : distance(name, candidate);
      if (d < bestDistance) {
        best = candidate;
        bestDistance = d;
      }
    }
    if (best !== undefined && bestDistance <= 2) {
      issues.push({ path: name, message: `unknown app setting; did you mean ${best}? (app settings are case-sensitive; this one is ignored)` });
    }
  }
  return issues;
}

/**
 * Checks every app setting the app reads: each set value is well-formed, those required in
 * Azure are there, schedules parse and fire, and no setting is a near-miss of a known name.
 * The estate configuration itself is not loaded here.
 *
 * @returns one issue per problem, `path` being the setting's name, in a stable order.
 */
export function checkAppSettings(settings: AppSettings, context: AppSettingsContext = {}): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const inAzure = isRunningInAzure(settings);
  for (const spec of SETTINGS) {
    const value = settings[spec.name]?.trim() ?? '';
    if (value === '') {
      if (inAzure && spec.requiredInAzure !== undefined) {
        issues.push({ path: spec.name, message: `expected it to be set in Azure (${spec.requiredInAzure}), found none` });
      }
      continue;
    }
    const problem = spec.check?.(value, settings, context);
    if (problem !== undefined) issues.push({ path: spec.name, message: problem, found: shown(spec, value) });
  }
  if (inAzure && (settings.AzureWebJobsStorage ?? '') === '' && (settings.AzureWebJobsStorage__accountName ?? '') === '' && (settings.AzureWebJobsStorage__blobServiceUri ?? '') === '') {
    issues.push({ path: 'AzureWebJobsStorage__accountName', message: 'expected the host storage to be set in Azure (AzureWebJobsStorage__accountName for identity-based storage, or AzureWebJobsStorage), found neither' });
  }
  for (const timer of ALL_TIMERS) {
    const problem = scheduleProblem(timer, settings, context.now);
    if (problem !== undefined) issues.push(problem);
  }
  issues.push(...misspelledNames(settings));
  return issues;
}
