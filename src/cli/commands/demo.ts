/**
 * `ops-autopilot demo` (`npm run demo`): starts the sandbox with every seed world and, per
 * estate, prints the inventory, then runs every runbook that has targets there through the
 * executor with the world's generated config (`dryRun: false`: the sandbox is where applying is
 * harmless): the planted problems found, the cleanup plans, and what applying them did. Run
 * records go to Azurite. An estate with a restore drill policy (Kilometers.ai) then runs a drill
 * through the app on the local host and prints its RTO and RPO (`demo-drill.ts`); an estate with
 * a Resource Health rule that rolls back (xshopai) gets an alert remediated end to end through
 * the app and a storm of 100 alerts suppressed (`demo-remediation.ts`). Stops
 * everything and exits 0 (1 if anything unexpected failed; findings are expected).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderStatusPage } from '../../status/page.ts';
import { estateStatus } from './status.ts';
import { createAzureClients } from '../../azure/clients.ts';
import { loadConfigFile } from '../../config/load.ts';
import type { EstateConfig } from '../../config/schema.ts';
import { errorMessage } from '../../errors.ts';
import { executeRunbook } from '../../runbooks/execute-runbook.ts';
import { RUNBOOK_NAMES, RUNBOOKS } from '../../runbooks/registry.ts';
import { targetsFor } from '../../runbooks/runbook.ts';
import { memoryLogger } from '../../runs/run-log.ts';
import { formatInventory } from '../inventory-format.ts';
import { EXIT, type CliIo } from '../output.ts';
import { formatRun } from '../runbook-format.ts';
import { demoDrill, drillServers } from './demo-drill.ts';
import { demoRemediation, remediationDemoTargets } from './demo-remediation.ts';
import { collectInventory } from './inventory.ts';
import { asWorldUsageError } from './sandbox.ts';

/** One line per runbook run, for the closing table. */
interface DemoRunLine {
  readonly estate: string;
  readonly runbook: string;
  readonly summary: string;
  readonly unexpected: boolean;
}

const indent = (text: string): string => text.replace(/^(?=.)/gm, '    ');

/** Runs every runbook with targets in the estate, apply mode; returns one line per run. */
async function runEveryRunbook(config: EstateConfig, io: CliIo): Promise<DemoRunLine[]> {
  const lines: DemoRunLine[] = [];
  const clients = createAzureClients(config.azure);
  try {
    for (const name of RUNBOOK_NAMES) {
      const runbook = RUNBOOKS[name];
      if (targetsFor(runbook, config).length === 0) continue;
      io.stdout(`
  >> ${name}: ${runbook.description}
`);
      const result = await executeRunbook(runbook, { config, clients, logger: memoryLogger(), now: () => new Date() }, { trigger: 'cli', mode: 'apply', requestedBy: 'demo' });
      // Findings, then each planned action with what applying it did, in plan order.
      io.stdout(indent(formatRun(result, { hideOk: true, maxLines: 8, maxActions: 5 })));
      io.stdout(`    => ${result.summary}\n`);
      if (result.stored !== undefined) io.stdout(`    run record: ${result.stored.container}/${result.stored.blobName} (${result.record.status})\n`);
      // Findings are the point of the demo; a failed target, action or record is not.
      lines.push({ estate: config.estate, runbook: name, summary: result.summary, unexpected: result.exit === 'failed' || result.exit === 'refused' });
    }
  } finally {
    await clients.close();
  }
  return lines;
}

/** Options of {@link demoCommand}. */
export interface DemoCommandOptions {
  /** Seed world names or world files; default: every world in `sandbox/worlds/`. */
  readonly world?: string[];
  /** Show sandbox diagnostics on stderr. */
  readonly verbose?: boolean;
}

/** Runs the demo; returns the exit code. */
export async function demoCommand(options: DemoCommandOptions, io: CliIo): Promise<number> {
  const { startSandbox } = await import('../../../sandbox/index.ts');
  const { loadWorldFile } = await import('../../../sandbox/engine/worlds.ts');
  io.stdout('Starting the local Azure sandbox (HTTPS on 127.0.0.1, embedded PostgreSQL, Azurite)...\n');
  const sandbox = await asWorldUsageError(() => startSandbox({
    ...(options.world === undefined || options.world.length === 0 ? {} : { worlds: options.world }),
    log: (line) => {
      if (options.verbose === true) io.stderr(`${line}\n`);
    },
  }));
  let failures = 0;
  const runs: DemoRunLine[] = [];
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
        io.stdout(`\nRunbooks on ${world.name} (applied inside the sandbox):\n`);
        const lines = await runEveryRunbook(config, io);
        runs.push(...lines);
        for (const line of lines.filter((candidate) => candidate.unexpected)) {
          failures += 1;
          io.stderr(`error: ${world.name}: ${line.summary}\n`);
        }
        if (drillServers(config).length > 0 && !(await demoDrill(sandbox, world.configFile, config, io))) {
          failures += 1;
          io.stderr(`error: ${world.name}: the restore drill did not pass\n`);
        }
        if (remediationDemoTargets(config) !== undefined && !(await demoRemediation(sandbox, world.configFile, config, io))) {
          failures += 1;
          io.stderr(`error: ${world.name}: the alert remediation did not end as expected\n`);
        }
      } catch (error) {
        failures += 1;
        io.stderr(`error: ${world.name}: ${errorMessage(error)}\n`);
      }
    }
    io.stdout('\n== Runbook runs ==\n');
    for (const line of runs) io.stdout(`  ${line.unexpected ? 'UNEXPECTED ' : ''}${line.summary}\n`);
    // Last: the go/no-go page of every world, as GET /api/status/page would serve it, to a file.
    io.stdout('\n== Status pages (go/no-go) ==\n');
    const pages = join(tmpdir(), 'ops-autopilot-demo');
    await mkdir(pages, { recursive: true });
    for (const world of sandbox.worlds) {
      try {
        const status = await estateStatus(await loadConfigFile(world.configFile));
        const file = join(pages, `status-${world.name}.html`);
        await writeFile(file, renderStatusPage(status));
        io.stdout(`  ${world.name}: ${status.decision === 'go' ? 'GO' : `NO-GO (blocked by ${status.blocking.join(', ')})`}: ${file}\n`);
      } catch (error) {
        failures += 1;
        io.stderr(`error: ${world.name}: the status page could not be written: ${errorMessage(error)}\n`);
      }
    }
  } finally {
    await sandbox.stop();
  }
  io.stdout(`\nSandbox stopped. ${failures === 0 ? 'All estates inventoried.' : `${failures} estate(s) had errors.`}\n`);
  return failures === 0 ? EXIT.ok : EXIT.failure;
}
