/**
 * `npm run dev`: starts the sandbox and the local Functions host with the generated sandbox
 * config in `OPS_AUTOPILOT_CONFIG_FILE`, prints the functions like `func start`, logs every
 * invocation and stops cleanly on Ctrl-C.
 *
 * Flags: `--port N` (default 7071 or local.settings.json Host.LocalHttpPort), `--world NAME`
 * (which sandbox world's config to use; default the first), `--no-sandbox`.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSandbox } from '../sandbox/index.ts';
import { readProjectHostConfig } from './host-config.ts';
import type { LocalHost } from './local-host.ts';
import { startLocalHost } from './local-host.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    world: { type: 'string' },
    'no-sandbox': { type: 'boolean', default: false },
  },
});

const projectDir = process.cwd();
const project = readProjectHostConfig(projectDir);
const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const settings: Record<string, string> = { DURABLE_TASK_HUB_NAME: 'OpsAutopilotLocal', ...project.settings };
let sandbox: Awaited<ReturnType<typeof startSandbox>> | undefined;
if (!values['no-sandbox']) {
  log('Starting the sandbox...');
  sandbox = await startSandbox({ log: (line) => { log(`[sandbox] ${line}`); } });
  const world = values.world ? sandbox.worlds.find((w) => w.name === values.world) : sandbox.worlds[0];
  if (!world) {
    await sandbox.stop();
    throw new Error(`sandbox world '${values.world ?? ''}' not found; expected one of ${sandbox.worlds.map((w) => w.name).join(', ')}`);
  }
  settings.OPS_AUTOPILOT_CONFIG_FILE = world.configFile;
  log(`Sandbox at ${sandbox.baseUrl}; worlds: ${sandbox.worlds.map((w) => `${w.name} (${w.configFile})`).join(', ')}`);
  log(`OPS_AUTOPILOT_CONFIG_FILE=${world.configFile}`);
}

let host: LocalHost;
try {
  host = await startLocalHost({
    entryPoint: path.join(projectDir, 'src/functions/index.ts'),
    settings,
    port: values.port ? Number(values.port) : (project.port ?? 7071),
    routePrefix: project.routePrefix,
    taskHubName: settings.DURABLE_TASK_HUB_NAME ?? project.taskHubName,
    overridableExistingInstanceStates: project.overridableExistingInstanceStates,
    logger: log,
  });
} catch (error) {
  await sandbox?.stop();
  throw error;
}

log('\nFunctions:\n');
for (const fn of host.functions) {
  if (fn.http) {
    const url = `${host.baseUrl}/${project.routePrefix}/${fn.http.route}`;
    const key = fn.http.authLevel === 'anonymous' ? '' : `?code=${fn.http.authLevel === 'admin' ? host.keys.master : host.keys.function}`;
    log(`\t${fn.name}: [${fn.http.methods.join(',')}] ${url}${key}\n`);
  } else if (fn.timer) {
    log(`\t${fn.name}: timerTrigger (${fn.timer.schedule}) — run now: POST ${host.baseUrl}/admin/functions/${fn.name}\n`);
  } else if (fn.eventGrid) {
    log(`\t${fn.name}: eventGridTrigger — POST ${host.baseUrl}/runtime/webhooks/EventGrid?functionName=${fn.name}\n`);
  } else {
    log(`\t${fn.name}: ${fn.triggerType}Trigger\n`);
  }
}
log(`Function key: ${host.keys.function}`);
log(`Master key:   ${host.keys.master}`);
log(`Durable task hub '${host.durable.taskHubName}' (in memory) at ${host.baseUrl}/runtime/webhooks/durabletask/`);
log('Host started. Press Ctrl-C to stop.');

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log(`\n${signal} received; stopping the host${sandbox ? ' and the sandbox' : ''}...`);
  void (async () => {
    try {
      await host.stop();
      await sandbox?.stop();
      log('Stopped.');
      process.exit(0);
    } catch (error) {
      process.stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    }
  })();
};
process.on('SIGINT', () => { shutdown('SIGINT'); });
process.on('SIGTERM', () => { shutdown('SIGTERM'); });
