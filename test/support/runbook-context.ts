/**
 * Builds a {@link RunbookContext} for one sandbox world: its generated estate config (with an
 * optional edit), the product's real client layer and a memory logger.
 */
import { createAzureClients, type AzureClients } from '../../src/azure/clients.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import type { EstateConfig } from '../../src/config/schema.ts';
import type { RunbookContext } from '../../src/runbooks/runbook.ts';
import { memoryLogger } from '../../src/runs/run-log.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';

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
