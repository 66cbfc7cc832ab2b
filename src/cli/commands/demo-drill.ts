/**
 * The restore drill part of `npm run demo`: for a seed estate with a drill policy, the app on the
 * local host (the product's own entry point, as `npm run dev` runs it) receives
 * `POST /api/drills` with its function key, exactly as `ops-autopilot drill run` sends it, and
 * the durable drill restores each server to a scratch server, checks the data, measures RTO and
 * RPO and tears the scratch server down. Time is virtual: the driver moves the host's and the
 * sandbox's clocks together, so the drill's waits (heartbeats, the restore's long-running
 * operation) take seconds of real time; the RTO printed is the drill's, on that clock.
 *
 * Development tooling: loaded by `demo` only, never by the Functions app.
 */
import { fileURLToPath } from 'node:url';
import type { SandboxHandle } from '../../../sandbox/index.ts';
import type { EstateConfig } from '../../config/schema.ts';
import { drillTargets } from '../../restore/drills.ts';
import type { CliIo } from '../output.ts';
import { formatDrillResults } from './restore.ts';

/** The servers of an estate that have a drill policy (the drill orchestration's own selection). */
export function drillServers(config: EstateConfig): string[] {
  return drillTargets(config).map((target) => target.serverId);
}

/** The sandbox's operation id of a flexible server create (the point-in-time restore). */
const RESTORE_CREATE_OPERATION = 'Microsoft.DBforPostgreSQL/flexibleServers.create';
const RESTORE_DURATION_MS = 15 * 60_000;

const record = (value: unknown): Record<string, unknown> => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {});

/**
 * Runs one drill of every server of the estate with a drill policy through the app; prints the
 * per-server RTO and RPO. Returns false when the drill did not pass or could not run.
 */
export async function demoDrill(sandbox: SandboxHandle, configFile: string, config: EstateConfig, io: CliIo): Promise<boolean> {
  const { startAppDriver } = await import('../../../local-host/app-driver.ts');
  const servers = drillServers(config);
  io.stdout(`\nRestore drill on ${config.estate} (${servers.map((id) => id.split('/').pop() ?? id).join(', ')}), through the app's POST /api/drills on the local host:\n`);
  // The sandbox's restores finish at once unless told otherwise; a quarter of an hour of virtual
  // time (an assumption, not a measurement of Azure) makes the RTO shown mean something.
  await sandbox.setOperationDuration(RESTORE_CREATE_OPERATION, RESTORE_DURATION_MS);
  const driver = await startAppDriver({ sandbox, configFile, entryPoint: fileURLToPath(new URL('../../functions/index.ts', import.meta.url)) });
  try {
    const started = await driver.api('POST', 'drills', {});
    if (started.status !== 202) {
      io.stdout(`    the app refused the drill (${String(started.status)}): ${JSON.stringify(started.json)}\n`);
      return false;
    }
    const id = String(started.json.id);
    io.stdout(`    drill ${id} started; waiting on the virtual clock (heartbeats, the point-in-time restore, the checks, the teardown)...\n`);
    // 30 s of virtual time per step, at most 3 h: the drill's own deadline (timeoutHours) ends it sooner.
    await driver.drive(id, undefined, { stepMs: 30_000, maxSteps: 360, children: true, sync: true });
    const status = driver.host.durable.getStatus(id);
    const output = record(status?.output);
    const results = Array.isArray(output.servers) ? output.servers.map(record) : [];
    io.stdout(formatDrillResults(results).replace(/^(?=.)/gm, '    '));
    io.stdout(`    => ${typeof output.summary === 'string' ? output.summary : String(status?.runtimeStatus)} (times on the sandbox's virtual clock; its restore was set to take ${String(RESTORE_DURATION_MS / 60_000)} min)\n`);
    return status?.runtimeStatus === 'Completed' && output.verdict === 'passed';
  } finally {
    await driver.stop();
    await sandbox.setOperationDuration(RESTORE_CREATE_OPERATION, undefined);
  }
}
