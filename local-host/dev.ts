/**
 * `npm run dev`: starts the sandbox and the local Functions host with the generated sandbox
 * config in `OPS_AUTOPILOT_CONFIG_FILE`, prints the functions like `func start`, logs every
 * invocation and stops cleanly on Ctrl-C.
 *
 * Flags:
 * - `--port N` (default 7071 or local.settings.json Host.LocalHttpPort);
 * - `--world NAME|FILE` (repeatable): the worlds to load, meaning what `--world` means for
 *   `ops-autopilot sandbox` (a seed world's name or a world file); the first one's config is the
 *   app's. Default: every seed world, and the first one's config;
 * - `--estate FILE` (repeatable): serve your own estate config too (as `sandbox --estate`); the
 *   first estate's generated config becomes the app's;
 * - `--json`: once ready, print ONE JSON object on stdout (base URL, function and master keys,
 *   the functions with their URLs, the sandbox's endpoints, CA file and generated estate
 *   configs) and send every log line to stderr, so scripts can drive the local app. With npm,
 *   `npm run -s dev -- --json` (`-s` keeps npm's own banner off stdout);
 * - `--no-sandbox`.
 */
import path from 'node:path';
import { format, parseArgs } from 'node:util';
import { startSandbox } from '../sandbox/index.ts';
import { readProjectHostConfig } from './host-config.ts';
import type { LocalHost } from './local-host.ts';
import { startLocalHost } from './local-host.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    world: { type: 'string', multiple: true },
    estate: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
    'no-sandbox': { type: 'boolean', default: false },
  },
});

const json = values.json;
if (json) {
  // The app's own console output (appStart's readiness line, which Azure forwards to the host's
  // logs) must not reach stdout, which carries the one JSON object.
  const toStderr = (...args: unknown[]): void => {
    process.stderr.write(`${format(...args)}\n`);
  };
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}
const projectDir = process.cwd();
const project = readProjectHostConfig(projectDir);
// Under --json stdout carries the one JSON object; everything else goes to stderr.
const log = (line: string): void => {
  (json ? process.stderr : process.stdout).write(`${line}\n`);
};

const settings: Record<string, string> = { DURABLE_TASK_HUB_NAME: 'OpsAutopilotLocal', ...project.settings };
let sandbox: Awaited<ReturnType<typeof startSandbox>> | undefined;
if (!values['no-sandbox']) {
  log('Starting the sandbox...');
  try {
    sandbox = await startSandbox({
      ...(values.world === undefined ? {} : { worlds: values.world }),
      ...(values.estate === undefined ? {} : { estates: values.estate }),
      log: (line) => {
        log(`[sandbox] ${line}`);
      },
    });
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}\n`);
    process.exit(error instanceof Error && error.name === 'UnknownWorldError' ? 2 : 1);
  }
  const chosen = sandbox.estates[0] ?? sandbox.worlds[0];
  if (chosen !== undefined) {
    settings.OPS_AUTOPILOT_CONFIG_FILE = chosen.configFile;
    log(`OPS_AUTOPILOT_CONFIG_FILE=${chosen.configFile}`);
  }
  log(`Sandbox at ${sandbox.baseUrl}; worlds: ${[...sandbox.worlds, ...sandbox.estates].map((w) => `${w.name} (${w.configFile})`).join(', ')}`);
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

/** How to call one function, as `func start` prints it. */
interface FunctionEntry {
  readonly name: string;
  readonly trigger: string;
  readonly methods?: readonly string[];
  readonly url?: string;
  readonly authLevel?: string;
  /** Which key the call needs: `function` or `master`; absent for anonymous routes. */
  readonly key?: 'function' | 'master';
  readonly schedule?: string;
  readonly runNow?: string;
}

const functions = host.functions.map((fn): FunctionEntry => {
  if (fn.http) {
    const url = `${host.baseUrl}/${project.routePrefix}/${fn.http.route}`;
    const base = { name: fn.name, trigger: 'http', methods: fn.http.methods, url, authLevel: fn.http.authLevel };
    return fn.http.authLevel === 'anonymous' ? base : { ...base, key: fn.http.authLevel === 'admin' ? 'master' : 'function' };
  }
  if (fn.timer) return { name: fn.name, trigger: 'timer', schedule: fn.timer.schedule, runNow: `POST ${host.baseUrl}/admin/functions/${fn.name}` };
  if (fn.eventGrid) return { name: fn.name, trigger: 'eventGrid', url: `${host.baseUrl}/runtime/webhooks/EventGrid?functionName=${fn.name}` };
  return { name: fn.name, trigger: fn.triggerType };
});

// The go/no-go status page (issue 12): opened in a browser, the key travels in the URL here only
// because this is the loopback dev host with its own generated keys.
const statusPageUrl = `${host.baseUrl}/${project.routePrefix}/status/page`;

if (json) {
  process.stdout.write(
    `${JSON.stringify({
      pid: process.pid,
      baseUrl: host.baseUrl,
      routePrefix: project.routePrefix,
      keys: { function: host.keys.function, master: host.keys.master },
      configFile: settings.OPS_AUTOPILOT_CONFIG_FILE ?? null,
      statusPageUrl,
      functions,
      durable: { taskHubName: host.durable.taskHubName, url: `${host.baseUrl}/runtime/webhooks/durabletask/` },
      sandbox:
        sandbox === undefined
          ? null
          : {
              baseUrl: sandbox.baseUrl,
              tenantId: sandbox.tenantId,
              tokenEndpoint: sandbox.tokenEndpoint,
              caFile: sandbox.caFile,
              azurite: sandbox.azurite ?? null,
              postgres: sandbox.postgres ?? null,
              worlds: sandbox.worlds.map((world) => ({ name: world.name, configFile: world.configFile })),
              estates: sandbox.estates.map((estate) => ({ name: estate.name, file: estate.file, configFile: estate.configFile, generated: estate.generated })),
            },
    })}\n`,
  );
} else {
  log('\nFunctions:\n');
  for (const fn of functions) {
    if (fn.trigger === 'http') {
      const key = fn.key === undefined ? '' : `?code=${fn.key === 'master' ? host.keys.master : host.keys.function}`;
      log(`\t${fn.name}: [${(fn.methods ?? []).join(',')}] ${fn.url ?? ''}${key}\n`);
    } else if (fn.trigger === 'timer') {
      log(`\t${fn.name}: timerTrigger (${fn.schedule ?? ''}) — run now: ${fn.runNow ?? ''}\n`);
    } else if (fn.trigger === 'eventGrid') {
      log(`\t${fn.name}: eventGridTrigger — POST ${fn.url ?? ''}\n`);
    } else {
      log(`\t${fn.name}: ${fn.trigger}Trigger\n`);
    }
  }
  log(`\nStatus page (go/no-go): ${statusPageUrl}?code=${host.keys.function}\n`);
  log(`Function key: ${host.keys.function}`);
  log(`Master key:   ${host.keys.master}`);
  log(`Durable task hub '${host.durable.taskHubName}' (in memory) at ${host.baseUrl}/runtime/webhooks/durabletask/`);
  log('Host started. Press Ctrl-C to stop.');
}

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
