/**
 * Spawns the `ops-autopilot` binary as a user runs it (stdin not a terminal) and collects its
 * exit code and output.
 */
import { spawn } from 'node:child_process';

/** The outcome of one CLI run. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `bin/ops-autopilot.mjs` with `args` from the repository root and waits for it to exit.
 * With `options.timeoutMs`, a run still going by then is killed (SIGKILL) and resolves with
 * `code: null`, so a hanging command fails its test instead of outliving it.
 */
export function cli(args: readonly string[], options: { readonly timeoutMs?: number } = {}): Promise<CliRun> {
  return runProcess(process.execPath, ['bin/ops-autopilot.mjs', ...args], options);
}

/** Options of {@link runProcess}. */
export interface RunProcessOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill (SIGKILL) a run still going after this long; it resolves with `code: null`. */
  readonly timeoutMs?: number;
}

/** Runs `command` with stdin closed, collects its output and resolves once it has exited. */
export function runProcess(command: string, args: readonly string[], options: RunProcessOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, env: options.env });
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
