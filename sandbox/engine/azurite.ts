/**
 * Azurite (blob + table, queue unused) as a child process on free loopback ports, serving HTTPS
 * with the sandbox leaf certificate and accepting sandbox-issued OAuth tokens (`--oauth basic`
 * checks issuer, audience and lifetime, not the signature).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { SandboxStorageEndpoints } from '../contract.ts';
import { SupervisedChild, type ChildExit } from './child-lifecycle.ts';
import { ChildProcessError } from './errors.ts';

/** Endpoints and account keys of a running Azurite (the contract's storage endpoints). */
export type AzuriteEndpoints = SandboxStorageEndpoints;

const STARTUP_TIMEOUT_MS = 30_000;
// Azurite keeps running for seconds after SIGTERM (timers), and in-memory persistence has
// nothing to flush, so the grace period is short.
const STOP_TIMEOUT_MS = 500;

/** A running Azurite child process. */
export class AzuriteProcess {
  private constructor(
    private readonly child: SupervisedChild,
    readonly endpoints: AzuriteEndpoints,
  ) {}

  /** Starts Azurite with the given accounts; resolves once blob and table listen. */
  static async start(options: {
    dataDir: string;
    certFile: string;
    keyFile: string;
    accounts: readonly string[];
    log: (line: string) => void;
  }): Promise<AzuriteProcess> {
    const workDir = path.join(options.dataDir, 'azurite');
    await mkdir(workDir, { recursive: true });
    const require = createRequire(import.meta.url);
    const entry = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
    const accountKeys: Record<string, string> = {};
    for (const account of new Set(options.accounts)) accountKeys[account] = randomBytes(64).toString('base64');
    const args = [
      entry,
      '--blobHost', '127.0.0.1', '--blobPort', '0',
      '--queueHost', '127.0.0.1', '--queuePort', '0',
      '--tableHost', '127.0.0.1', '--tablePort', '0',
      '--oauth', 'basic',
      '--cert', options.certFile,
      '--key', options.keyFile,
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
      '--inMemoryPersistence',
      '--extentMemoryLimit', '256',
    ];
    const child = spawn(process.execPath, args, {
      cwd: workDir,
      env: {
        ...process.env,
        AZURITE_ACCOUNTS: Object.entries(accountKeys).map(([name, key]) => `${name}:${key}`).join(';'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Azurite keeps blobs in memory only, so SIGKILL from the watchdog loses nothing.
    const supervised = new SupervisedChild('Azurite', child, { watchdogSignal: 'KILL', tag: options.dataDir, log: options.log });
    const endpoints = await new Promise<{ blob: string; table: string }>((resolve, reject) => {
      let output = '';
      let blob: string | undefined;
      let table: string | undefined;
      const timer = setTimeout(() => {
        fail(`expected to listen within ${String(STARTUP_TIMEOUT_MS)} ms, found no ready message`);
      }, STARTUP_TIMEOUT_MS);
      const fail = (message: string): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new ChildProcessError('Azurite', `${message}. Output: ${output.slice(-2000)}`));
      };
      const onData = (chunk: Buffer): void => {
        const text = chunk.toString('utf8');
        output += text;
        blob ??= /Blob service is successfully listening at (https:\/\/[^\s]+)/.exec(output)?.[1];
        table ??= /Table service is successfully listening at (https:\/\/[^\s]+)/.exec(output)?.[1];
        if (blob !== undefined && table !== undefined) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolve({ blob, table });
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
      });
      child.once('error', (error) => {
        fail(`could not be spawned: ${error.message}`);
      });
      child.once('exit', (code, signal) => {
        if (blob === undefined || table === undefined) fail(`exited during start-up (code ${String(code)}, signal ${String(signal)})`);
      });
    });
    // Keep draining output so the child never blocks on a full pipe.
    child.stdout.on('data', () => undefined);
    child.stderr.on('data', (chunk: Buffer) => {
      options.log(`azurite: ${chunk.toString('utf8').trim()}`);
    });
    options.log(`azurite: blob ${endpoints.blob}, table ${endpoints.table}`);
    return new AzuriteProcess(supervised, {
      blobEndpoint: endpoints.blob,
      tableEndpoint: endpoints.table,
      blobUrlTemplate: `${endpoints.blob}/{name}`,
      accountKeys,
    });
  }

  /** The child's process id, for leak checks. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** How Azurite ended, once it has (undefined while it runs). */
  get exit(): ChildExit | undefined {
    return this.child.exit;
  }

  /** Called once when Azurite exits, whether stopped or not (`exit.expected` tells). */
  onExit(listener: (exit: ChildExit) => void): void {
    this.child.onExit(listener);
  }

  /**
   * Stops Azurite: SIGTERM, then SIGKILL if it has not exited after a short grace period. Returns
   * at once if it has already exited, and never waits more than a few seconds in all.
   */
  async stop(): Promise<void> {
    if (!(await this.child.stop('SIGTERM', STOP_TIMEOUT_MS))) {
      throw new ChildProcessError('Azurite', `expected pid ${String(this.child.pid)} to exit after SIGTERM and SIGKILL, found it still running`);
    }
  }
}
