import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { LocalHostError } from './host-errors.ts';

/** What the local host reads from the Functions project files (`host.json`, `local.settings.json`). */
export interface ProjectHostConfig {
  readonly settings: Record<string, string>;
  readonly port?: number;
  readonly routePrefix: string;
  readonly taskHubName?: string;
  readonly overridableExistingInstanceStates?: 'NonRunningStates' | 'AnyState';
}

/** A project file exists but is not what the Functions host expects. */
export class ProjectFileError extends LocalHostError {}

function readJson(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ProjectFileError(`${file} must hold a JSON object; found ${Array.isArray(parsed) ? 'an array' : typeof parsed}`, { file });
  }
  return parsed as Record<string, unknown>;
}

function child(obj: Record<string, unknown> | undefined, key: string): Record<string, unknown> | undefined {
  const value = obj?.[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * Reads `host.json` and (if present) `local.settings.json` from `projectDir`, the way Core Tools
 * does: `Values` become app settings, `Host.LocalHttpPort` the port, `extensions.http.routePrefix`
 * the route prefix and `extensions.durableTask.hubName` (with `%Setting%` resolved) the task hub.
 */
export function readProjectHostConfig(projectDir: string): ProjectHostConfig {
  const hostJson = readJson(path.join(projectDir, 'host.json'));
  const local = readJson(path.join(projectDir, 'local.settings.json'));
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(child(local, 'Values') ?? {})) {
    if (typeof value !== 'string') {
      throw new ProjectFileError(`local.settings.json Values.${key} must be a string; found ${typeof value}`, { setting: key });
    }
    settings[key] = value;
  }
  const extensions = child(hostJson, 'extensions');
  const http = child(extensions, 'http');
  const durable = child(extensions, 'durableTask');
  const portValue = child(local, 'Host')?.LocalHttpPort;
  const rawHub = typeof durable?.hubName === 'string' ? durable.hubName : undefined;
  const hub = rawHub?.replace(/%([^%]+)%/g, (_m, name: string) => settings[name] ?? process.env[name] ?? '');
  const overridable = durable?.overridableExistingInstanceStates;
  return {
    settings,
    port: typeof portValue === 'number' ? portValue : undefined,
    routePrefix: typeof http?.routePrefix === 'string' ? http.routePrefix : 'api',
    taskHubName: hub ? hub : undefined,
    overridableExistingInstanceStates: overridable === 'AnyState' || overridable === 'NonRunningStates' ? overridable : undefined,
  };
}
