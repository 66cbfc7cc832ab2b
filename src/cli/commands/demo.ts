/**
 * `ops-autopilot demo` (`npm run demo`): starts the sandbox with every seed world, prints the
 * inventory of each estate from the world's generated configuration, writes the run records to
 * Azurite, stops everything and exits 0 (1 if anything failed).
 */
import { loadConfigFile } from '../../config/load.ts';
import { errorMessage } from '../../errors.ts';
import { formatInventory } from '../inventory-format.ts';
import { EXIT, type CliIo } from '../output.ts';
import { collectInventory } from './inventory.ts';

/** Options of {@link demoCommand}. */
export interface DemoCommandOptions {
  /** World files; default: every world in `sandbox/worlds/`. */
  readonly world?: string[];
  /** Show sandbox diagnostics on stderr. */
  readonly verbose?: boolean;
}

/** Runs the demo; returns the exit code. */
export async function demoCommand(options: DemoCommandOptions, io: CliIo): Promise<number> {
  const { startSandbox } = await import('../../../sandbox/index.ts');
  const { loadWorldFile } = await import('../../../sandbox/engine/worlds.ts');
  io.stdout('Starting the local Azure sandbox (HTTPS on 127.0.0.1, embedded PostgreSQL, Azurite)...\n');
  const sandbox = await startSandbox({
    ...(options.world === undefined || options.world.length === 0 ? {} : { worlds: options.world }),
    log: (line) => {
      if (options.verbose === true) io.stderr(`${line}\n`);
    },
  });
  let failures = 0;
  try {
    io.stdout(`Sandbox ready at ${sandbox.baseUrl} with ${sandbox.worlds.length} estate(s).\n`);
    for (const world of sandbox.worlds) {
      const { world: description } = await loadWorldFile(world.file);
      const rule = '='.repeat(Math.max(20, 78 - world.name.length - 4));
      io.stdout(`\n== ${world.name} ${rule}\n`);
      io.stdout(`${description.description.trim()}\n`);
      if (description.plantedProblems.length > 0) {
        io.stdout('Planted problems:\n');
        for (const problem of description.plantedProblems) io.stdout(`  - ${problem}\n`);
      }
      io.stdout('\n');
      try {
        const config = await loadConfigFile(world.configFile);
        const { result, stored, recordError } = await collectInventory(config, { record: true, trigger: 'cli' });
        io.stdout(formatInventory(result));
        if (stored !== undefined) io.stdout(`\nrun record: ${stored.container}/${stored.blobName} (${result.record.status})\n`);
        if (result.errors.length > 0 || recordError !== undefined) {
          failures += 1;
          for (const error of result.errors) io.stderr(`error: ${world.name}: ${error.targetId}: ${error.error.message}\n`);
          if (recordError !== undefined) io.stderr(`error: ${world.name}: run record not written: ${recordError}\n`);
        }
      } catch (error) {
        failures += 1;
        io.stderr(`error: ${world.name}: ${errorMessage(error)}\n`);
      }
    }
  } finally {
    await sandbox.stop();
  }
  io.stdout(`\nSandbox stopped. ${failures === 0 ? 'All estates inventoried.' : `${failures} estate(s) had errors.`}\n`);
  return failures === 0 ? EXIT.ok : EXIT.failure;
}
