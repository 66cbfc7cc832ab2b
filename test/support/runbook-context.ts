/**
 * Builds a {@link RunbookContext} for one sandbox world: its generated estate config (with an
 * optional edit), the product's real client layer and a memory logger; plus the config edits,
 * request-log filter and apply loop the runbook tests (and the image-purge benchmark) share.
 * Nothing here depends on vitest, so the benchmark can import it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAzureClients, type AzureClients } from '../../src/azure/clients.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { imagePurgePolicySchema, type EstateConfig, type RunbookPolicies, type TargetConfig } from '../../src/config/schema.ts';
import type { ImagePurgePolicy } from '../../src/runbooks/image-purge.ts';
import type { ApplyResult, PlannedAction, Runbook, RunbookContext } from '../../src/runbooks/runbook.ts';
import { memoryLogger } from '../../src/runs/run-log.ts';
import { mapLimited } from '../../src/util/concurrency.ts';
import type { SandboxProvider } from '../../sandbox/contract.ts';
import type { RequestLogEntry, SandboxHandle } from '../../sandbox/index.ts';

/**
 * Writes a world (YAML text) a test defines itself to `<fresh temp dir>/<name>.yaml`, since the
 * sandbox loads worlds from files, and returns the file's path.
 */
export function writeWorldFile(name: string, yaml: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), `${name}-`)), `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/**
 * The provider of class `type` among `providers` (e.g. from `defaultProviders()`), so a test
 * can read and change its state directly.
 */
export function providerOf<P extends SandboxProvider>(providers: readonly SandboxProvider[], type: abstract new (...args: never[]) => P): P {
  const found = providers.find((provider): provider is P => provider instanceof type);
  if (found === undefined) throw new Error(`providers: expected a ${type.name}, found none`);
  return found;
}

/** A runbook context plus what a test needs to inspect and clean up. */
export interface TestRunbookContext {
  readonly context: RunbookContext;
  readonly config: EstateConfig;
  readonly clients: AzureClients;
  readonly logger: ReturnType<typeof memoryLogger>;
  close(): Promise<void>;
}

/** The generated config of a loaded world, optionally edited. */
export async function worldConfig(
  sandbox: SandboxHandle,
  world: string,
  edit?: (config: EstateConfig) => EstateConfig,
): Promise<EstateConfig> {
  const entry = sandbox.worlds.find((candidate) => candidate.name === world);
  if (entry === undefined) throw new Error(`world ${world} is not loaded in this sandbox`);
  const loaded = await loadConfigFile(entry.configFile);
  return edit === undefined ? loaded : edit(loaded);
}

/** A context over a world's generated config, with the sandbox's clock as `now`. */
export async function runbookContextFor(
  sandbox: SandboxHandle,
  world: string,
  options: { edit?: (config: EstateConfig) => EstateConfig; now?: () => Date } = {},
): Promise<TestRunbookContext> {
  const config = await worldConfig(sandbox, world, options.edit);
  const clients = createAzureClients(config.azure);
  const logger = memoryLogger();
  const context: RunbookContext = { config, clients, logger, now: options.now ?? (() => new Date()) };
  return { context, config, clients, logger, close: () => clients.close() };
}

/** Operation ids of the POSTs a plan may send although they change nothing: the ACR token exchange. */
export const ACR_TOKEN_EXCHANGE = [
  'ContainerRegistry.exchangeAadAccessTokenForAcrRefreshToken',
  'ContainerRegistry.exchangeAcrRefreshTokenForAcrAccessToken',
] as const;

/**
 * The requests of a log that change state: anything but a GET, the identity endpoint's token
 * request, or a request whose operation id is in `allowed` (reads sent as POSTs).
 */
export function mutatingRequests(log: readonly RequestLogEntry[], allowed: readonly string[] = []): RequestLogEntry[] {
  const reads = new Set(['Identity.token', ...allowed]);
  return log.filter((entry) => !(entry.method === 'GET' || (entry.operationId !== undefined && reads.has(entry.operationId))));
}

/**
 * A config edit that sets (or, with undefined, removes) one runbook's policy on one target.
 * `target` is the target's resource name (the last segment of its id) or its full resource id
 * (compared case-insensitively); the edit throws when no target matches.
 */
export function withRunbookPolicy<R extends keyof RunbookPolicies>(
  runbook: R,
  target: string,
  policy: RunbookPolicies[R] | undefined,
): (config: EstateConfig) => EstateConfig {
  const matches = (id: string): boolean => id.toLowerCase() === target.toLowerCase() || id.endsWith(`/${target}`);
  return (config) => {
    if (!config.targets.some((candidate) => matches(candidate.id))) {
      throw new Error(`config ${config.estate}: expected a target ${target}, found none`);
    }
    const targets = config.targets.map((candidate) => {
      if (!matches(candidate.id)) return candidate;
      const { [runbook]: _previous, ...others } = candidate.runbooks;
      const runbooks: RunbookPolicies = policy === undefined ? others : { ...others, [runbook]: policy };
      return { ...candidate, runbooks };
    });
    return { ...config, targets };
  };
}

/**
 * An image-purge policy that deletes every tag of the matching repositories but the newest
 * `keep`, whatever its age, with no practical cap per run: for volume tests and the benchmark.
 */
export function purgeAllButNewest(repositories: readonly string[], keep: number): ImagePurgePolicy {
  return imagePurgePolicySchema.parse({ repositories: [...repositories], tagFilter: '.*', keep, olderThanDays: 0, maxDeletionsPerRun: 100_000 });
}

/**
 * Applies one target's planned actions `width` at a time, as the executor does with a
 * runbook's `applyConcurrency` hint, and returns each action's outcome in plan order.
 */
export async function applyActions<TPolicy>(
  runbook: Runbook<TPolicy>,
  context: RunbookContext,
  target: TargetConfig,
  policy: TPolicy,
  actions: readonly PlannedAction[],
  width: number,
): Promise<ApplyResult['outcome'][]> {
  return mapLimited(actions, width, async (action) => (await runbook.apply(context, target, policy, action)).outcome);
}
