/**
 * Azurite (blob + table, queue unused) as a child process on free loopback ports, serving HTTPS
 * with the sandbox leaf certificate and accepting sandbox-issued OAuth tokens (`--oauth basic`
 * checks issuer, audience and lifetime, not the signature). It runs under `azurite-child.mjs`,
 * which lets the sandbox change the accounts' keys while it runs (`setAccountKeys`), so that a
 * storage key regenerated through ARM stops authenticating at once.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxStorageEndpoints } from '../contract.ts';
import { SupervisedChild, type ChildExit } from './child-lifecycle.ts';
import { ChildProcessError } from './errors.ts';

type ChildProcessWithIpc = import('node:child_process').ChildProcess;

/** `AZURITE_ACCOUNTS`: `name:key1[:key2];...`. */
function accountsVariable(keys: ReadonlyMap<string, readonly string[]>): string {
  return [...keys].map(([name, accountKeys]) => [name, ...accountKeys].join(':')).join(';');
}

/** Endpoints and account keys of a running Azurite (the contract's storage endpoints). */
export type AzuriteEndpoints = SandboxStorageEndpoints;

// Applying new keys is a message to a local child; longer means it is stuck.
const SET_KEYS_TIMEOUT_MS = 10_000;

const STARTUP_TIMEOUT_MS = 30_000;
// Azurite keeps running for seconds after SIGTERM (timers), and in-memory persistence has
// nothing to flush, so the grace period is short.
const STOP_TIMEOUT_MS = 500;

/** A running Azurite child process. */
export class AzuriteProcess {
  readonly endpoints: AzuriteEndpoints;
  /** The keys Azurite accepts now, per account: key1 and optionally key2. */
  private readonly keys: Map<string, readonly string[]>;
  private applying: Promise<void> = Promise.resolve();

  private constructor(
    private readonly child: SupervisedChild,
    private readonly process: ChildProcessWithIpc,
    endpoints: Omit<AzuriteEndpoints, 'setAccountKeys'>,
    keys: Map<string, readonly string[]>,
  ) {
    this.keys = keys;
    this.endpoints = {
      ...endpoints,
      setAccountKeys: (account, accountKeys) => this.setAccountKeys(account, accountKeys),
    };
  }

  /**
   * Makes Azurite accept exactly these keys (one or two, base64) for `account` from its next
   * request on; resolves once the child has applied them.
   */
  setAccountKeys(account: string, accountKeys: readonly string[]): Promise<void> {
    if (!this.keys.has(account)) return Promise.reject(new ChildProcessError('Azurite', `expected account ${account} among Azurite's accounts, found none`));
    if (accountKeys.length < 1 || accountKeys.length > 2) return Promise.reject(new ChildProcessError('Azurite', `expected one or two keys for ${account}, found ${String(accountKeys.length)}`));
    this.keys.set(account, [...accountKeys]);
    const value = accountsVariable(this.keys);
    const run = (): Promise<void> =>
      new Promise((resolve, reject) => {
        if (this.child.exit !== undefined || !this.process.connected) {
          reject(new ChildProcessError('Azurite', `expected Azurite (pid ${String(this.child.pid)}) to be running to change the keys of ${account}, found it exited`));
          return;
        }
        const id = randomUUID();
        const timer = setTimeout(() => {
          this.process.off('message', onMessage);
          reject(new ChildProcessError('Azurite', `expected Azurite to apply the new keys of ${account} within ${String(SET_KEYS_TIMEOUT_MS)} ms, found no answer`));
        }, SET_KEYS_TIMEOUT_MS);
        const onMessage = (message: unknown): void => {
          if (typeof message === 'object' && message !== null && (message as { type?: unknown; id?: unknown }).type === 'accounts-applied' && (message as { id?: unknown }).id === id) {
            clearTimeout(timer);
            this.process.off('message', onMessage);
            resolve();
          }
        };
        this.process.on('message', onMessage);
        this.process.send({ type: 'accounts', id, value });
      });
    // One change at a time, in order: the last one sent is what Azurite keeps.
    const next = this.applying.then(run, run);
    this.applying = next.catch(() => undefined);
    return next;
  }

  /** Starts Azurite with the given accounts; resolves once blob and table listen. */
  static async start(options: {
    dataDir: string;
    certFile: string;
    keyFile: string;
    /** The CA that signed `certFile`, for clients of Azurite in the sandbox (key checks). */
    caPem: string;
    accounts: readonly string[];
    log: (line: string) => void;
  }): Promise<AzuriteProcess> {
    const workDir = path.join(options.dataDir, 'azurite');
    await mkdir(workDir, { recursive: true });
    const require = createRequire(import.meta.url);
    const entry = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
    const wrapper = fileURLToPath(new URL('./azurite-child.mjs', import.meta.url));
    const accountKeys: Record<string, string> = {};
    const secondaryAccountKeys: Record<string, string> = {};
    const keys = new Map<string, readonly string[]>();
    for (const account of new Set(options.accounts)) {
      accountKeys[account] = randomBytes(64).toString('base64');
      secondaryAccountKeys[account] = randomBytes(64).toString('base64');
      keys.set(account, [accountKeys[account], secondaryAccountKeys[account]]);
    }
    const args = [
      wrapper,
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
      env: { ...process.env, AZURITE_ACCOUNTS: accountsVariable(keys) },
      // The IPC channel carries key changes (see azurite-child.mjs).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const { stdout, stderr } = child;
    if (stdout === null || stderr === null) {
      child.kill('SIGKILL');
      throw new ChildProcessError('Azurite', 'expected piped stdout and stderr, found none');
    }
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
          stdout.off('data', onData);
          resolve({ blob, table });
        }
      };
      stdout.on('data', onData);
      stderr.on('data', (chunk: Buffer) => {
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
    stdout.on('data', () => undefined);
    stderr.on('data', (chunk: Buffer) => {
      options.log(`azurite: ${chunk.toString('utf8').trim()}`);
    });
    options.log(`azurite: blob ${endpoints.blob}, table ${endpoints.table}`);
    // The IPC channel must not keep the sandbox's process alive on its own.
    child.channel?.unref();
    return new AzuriteProcess(
      supervised,
      child,
      {
        blobEndpoint: endpoints.blob,
        tableEndpoint: endpoints.table,
        blobUrlTemplate: `${endpoints.blob}/{name}`,
        accountKeys,
        secondaryAccountKeys,
        caPem: options.caPem,
      },
      keys,
    );
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
