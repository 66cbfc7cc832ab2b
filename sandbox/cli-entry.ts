/**
 * `ops-autopilot sandbox`: starts the local Azure sandbox and keeps it running until SIGINT,
 * SIGTERM or SIGHUP, or until its parent process goes away, then stops it and every child
 * process it started.
 */
import { fstatSync } from 'node:fs';
import { startSandbox, type SandboxHandle } from './index.ts';

/** How often the CLI checks whether its parent process is still there. */
const PARENT_CHECK_INTERVAL_MS = 1000;

/** Options of {@link runSandboxCommand}. */
export interface SandboxCommandOptions {
  /** Seed world names or world files; default: every world in `sandbox/worlds/`. */
  world?: string[];
  /** Estate config files to serve without a world (`--estate`). */
  estate?: string[];
  /** Print one JSON object once ready instead of a human summary. */
  json?: boolean;
  /** Port on 127.0.0.1; default: a free one. */
  port?: number;
}

function describe(sandbox: SandboxHandle, json: boolean): string {
  if (json) {
    return JSON.stringify({
      pid: process.pid,
      baseUrl: sandbox.baseUrl,
      tenantId: sandbox.tenantId,
      tokenEndpoint: sandbox.tokenEndpoint,
      caFile: sandbox.caFile,
      trustCa: `NODE_EXTRA_CA_CERTS=${sandbox.caFile} (or pass caFile to the client layer)`,
      azurite: sandbox.azurite ?? null,
      postgres: sandbox.postgres ?? null,
      worlds: sandbox.worlds.map((world) => ({ name: world.name, configFile: world.configFile })),
      estates: sandbox.estates.map((estate) => ({ name: estate.name, file: estate.file, configFile: estate.configFile, generated: estate.generated })),
    });
  }
  const lines = [
    `Ops Autopilot sandbox ready at ${sandbox.baseUrl}`,
    `  tenant:          ${sandbox.tenantId}`,
    `  token endpoint:  ${sandbox.tokenEndpoint}`,
    `  CA certificate:  ${sandbox.caFile} (trust it: NODE_EXTRA_CA_CERTS=${sandbox.caFile}, or azure.caFile)`,
    ...(sandbox.azurite === undefined ? [] : [`  Azurite blob:    ${sandbox.azurite.blobEndpoint}`, `  Azurite table:   ${sandbox.azurite.tableEndpoint}`]),
    ...(sandbox.postgres === undefined
      ? []
      : [
          `  PostgreSQL:      front door ${sandbox.postgres.host}:${String(sandbox.postgres.frontDoorPort)} (TLS; server FQDN as the TLS server name), main cluster ${sandbox.postgres.host}:${String(sandbox.postgres.port)}`,
        ]),
    '  worlds (estate configs):',
    ...sandbox.worlds.map((world) => `    ${world.name.padEnd(16)} ${world.configFile}`),
    ...(sandbox.estates.length === 0
      ? []
      : [
          '  your estates (configs pointing at this sandbox):',
          ...sandbox.estates.map(
            (estate) => `    ${estate.name.padEnd(16)} ${estate.configFile}\n      from ${estate.file}; ${String(estate.generated.length)} target(s) generated with healthy defaults`,
          ),
        ]),
    '  control:         GET /_sandbox/state, /_sandbox/requests; POST/DELETE /_sandbox/faults',
    'Press Ctrl+C to stop.',
  ];
  return lines.join('\n');
}

/**
 * Whether stdin is a pipe or socket that another process holds open: its EOF then means that
 * process is gone. A terminal, /dev/null (`sandbox > file &` in a script) or a file says nothing.
 */
function stdinIsPipe(): boolean {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    // No stdin at all (fd 0 closed): nothing to watch.
    return false;
  }
}

/**
 * Starts the sandbox, prints how to reach it, and resolves once it has been stopped: by SIGINT,
 * SIGTERM or SIGHUP, or because its parent process went away. `npx`/`npm exec` exits on SIGTERM
 * without passing it on; the sandbox then notices that its parent changed (it was re-parented)
 * or that the stdin pipe from its parent closed, and stops itself.
 */
export async function runSandboxCommand(opts: SandboxCommandOptions): Promise<void> {
  const json = opts.json === true;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const parentPid = process.ppid;
  // A parent that died may have held the read end of our stdout/stderr pipes. Writing a
  // diagnostic there must not crash the process before it has stopped its children; EPIPE is
  // the only error expected there, anything else is rethrown.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  const sandbox = await startSandbox({
    ...(opts.world === undefined || opts.world.length === 0 ? {} : { worlds: opts.world }),
    ...(opts.estate === undefined || opts.estate.length === 0 ? {} : { estates: opts.estate }),
    ...(opts.port === undefined ? {} : { port: opts.port }),
    log: (line) => {
      // Diagnostics go to stderr so that --json output on stdout stays one parseable object.
      process.stderr.write(`${line}\n`);
    },
  });
  process.stdout.write(`${describe(sandbox, json)}\n`);
  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const watchStdin = stdinIsPipe();
    const stop = (reason: string): void => {
      if (stopping) return;
      stopping = true;
      clearInterval(parentCheck);
      for (const signal of signals) process.off(signal, onSignal);
      if (watchStdin) {
        process.stdin.off('end', onStdinEnd);
        process.stdin.destroy();
      }
      process.stderr.write(`sandbox: ${reason}, stopping\n`);
      sandbox.stop().then(resolve, reject);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      stop(`${signal} received`);
    };
    const onStdinEnd = (): void => {
      stop('stdin closed (the parent process is gone)');
    };
    // Re-parenting (to init or a subreaper) is the one sign of a dead parent that works whatever
    // stdin is; reading process.ppid is a cheap getppid().
    const parentCheck = setInterval(() => {
      if (process.ppid !== parentPid) stop(`parent process ${String(parentPid)} exited`);
    }, PARENT_CHECK_INTERVAL_MS);
    parentCheck.unref();
    for (const signal of signals) process.on(signal, onSignal);
    if (watchStdin) {
      process.stdin.on('end', onStdinEnd);
      // Read (and discard) so that 'end' is emitted; nobody is expected to write.
      process.stdin.on('data', () => undefined);
      process.stdin.on('error', onStdinEnd);
    }
  });
}
