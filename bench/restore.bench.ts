/**
 * Benchmark (not a test): the orchestration history of a point-in-time restore whose server
 * takes 2 h of virtual time to become Ready, through the local Functions host and its task hub
 * (durable-functions' own replay) against the sandbox's restore world (real PostgreSQL PITR).
 *
 * The restore is started without a cutover (so it ends `restored` once the data is validated);
 * the sandbox's create operation is given a duration of `--hours` (default 2) of sandbox time,
 * and both clocks are driven in 1-minute steps until the instance ends. Reported: the history's
 * events, its size as JSON, the number of looks at the restore (status activities) and timers,
 * and the bound the back-off gives (4 + wait / 5 min looks).
 *
 * Run: `npm run bench -- restore [--hours N]`. The figures go to docs/benchmarks.md.
 */
import { VirtualClock } from '../local-host/clock.ts';
import { HistoryEventType } from '../local-host/durable/history-events.ts';
import { startLocalHost } from '../local-host/local-host.ts';
import { RESTORE_ACTIVITIES, RESTORE_ORCHESTRATOR } from '../src/restore/names.ts';
import { startSandbox } from '../sandbox/index.ts';

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const HOURS = Number(argument('hours', '2'));
const SOURCE = '/subscriptions/6a6b6c6d-0000-4000-8000-000000000010/resourceGroups/rg-restore-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-restore-prod';

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error('bench restore: gave up after 15 minutes');
    process.exit(1);
  }, 15 * 60 * 1000);
  watchdog.unref();
  const sandbox = await startSandbox({ worlds: ['test/fixtures/worlds/restore.yaml'], lroDurationMs: 1000, lroDurationsMs: { 'Microsoft.DBforPostgreSQL/flexibleServers.create': HOURS * 3_600_000 } });
  const world = sandbox.worlds.find((entry) => entry.name === 'restore');
  if (world === undefined) throw new Error('restore world not loaded');
  const clock = new VirtualClock(new Date());
  const host = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, clock, enableTimers: false, settings: { OPS_AUTOPILOT_CONFIG_FILE: world.configFile } });
  const advance = async (ms: number): Promise<void> => {
    await sandbox.advanceClock(ms);
    await clock.advance(ms);
  };
  try {
    await advance(20 * 60_000);
    const id = 'bench-restore';
    host.durable.startNew(RESTORE_ORCHESTRATOR, { instanceId: id, input: { request: { server: SOURCE, point: 'latest', newServerName: 'psql-restore-bench' }, cutover: false, trigger: 'http' } });
    const started = clock.now().getTime();
    for (let step = 0; step < HOURS * 60 + 120; step += 1) {
      await host.idle();
      const status = host.durable.getStatus(id);
      if (status !== undefined && !['Running', 'Pending'].includes(status.runtimeStatus)) break;
      await advance(60_000);
    }
    const status = host.durable.getStatus(id);
    const history = host.durable.history(id).current;
    const looks = history.filter((event) => event.EventType === HistoryEventType.TaskScheduled && event.Name === RESTORE_ACTIVITIES.status).length;
    const timers = history.filter((event) => event.EventType === HistoryEventType.TimerCreated).length;
    const output = status?.output as { outcome?: string } | undefined;
    const rows: [string, string][] = [
      ['outcome', `${status?.runtimeStatus ?? 'unknown'} / ${output?.outcome ?? '-'}`],
      ['virtual time waited', `${((clock.now().getTime() - started) / 3_600_000).toFixed(2)} h (restore operation ${String(HOURS)} h)`],
      ['history events', String(history.length)],
      ['history size (JSON)', `${(JSON.stringify(history).length / 1024).toFixed(1)} KiB`],
      ['looks at the restore (status activities scheduled)', String(looks)],
      ['timer events', String(timers)],
      ['bound: looks ≤ 4 + wait / 5 min', String(4 + Math.ceil((HOURS * 60) / 5))],
    ];
    for (const [name, value] of rows) console.log(`${name.padEnd(52)} ${value}`);
  } finally {
    await host.stop();
    await sandbox.stop();
  }
}

await main();
