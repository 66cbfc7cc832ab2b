/**
 * The life cycle of the sandbox's child processes (PostgreSQL, Azurite): exit tracking from the
 * moment of spawning, a stop whose every wait is bounded, and a parent-death watchdog.
 *
 * When the sandbox's node process is killed outright (SIGKILL, OOM killer), nothing in it runs,
 * so its children would outlive it. Neither postgres nor Azurite can be told to exit with their
 * parent, so each gets a tiny `sh` beside it: the shell blocks reading a pipe whose only writer
 * is the sandbox process. The kernel closes that pipe when the sandbox dies, `read` sees EOF and
 * the shell signals the child. A clean stop disarms the watchdog first (SIGKILL to the shell).
 *
 * The watchdog costs one idle `sh` (about 1 MB). Where `sh` is missing (Windows) it is not
 * armed, and a killed sandbox can leave its children behind as before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';

/** A watchdog that is armed until {@link ParentDeathWatchdog.disarm} is called. */
export interface ParentDeathWatchdog {
  /** The watchdog shell's process id (undefined when it could not be spawned). */
  readonly pid: number | undefined;
  /** Stops the watchdog without signalling the child. Idempotent. */
  disarm(): void;
}

// `read` returns only at EOF (the sandbox never writes), i.e. when the sandbox process is gone.
const SCRIPT = 'read -r _line; kill -s "$1" "$2" 2>/dev/null';

/**
 * Signals `pid` with `signal` (a POSIX name without `SIG`, e.g. `QUIT`) once this process dies.
 * `tag` goes into the watchdog's argv (e.g. the sandbox data dir) so leak checks can find it.
 */
export function armParentDeathWatchdog(target: { name: string; pid: number; signal: 'KILL' | 'QUIT' | 'TERM' | 'INT'; tag: string }, log: (line: string) => void): ParentDeathWatchdog {
  const watchdog = spawn('sh', ['-c', SCRIPT, `ops-autopilot-watchdog(${target.name})`, target.signal, String(target.pid), target.tag], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  let armed = true;
  watchdog.once('error', (error) => {
    armed = false;
    log(`sandbox: no parent-death watchdog for ${target.name} (pid ${String(target.pid)}): ${error.message}`);
  });
  // Writing to a watchdog that died (disarmed or killed externally) must not crash the sandbox.
  watchdog.stdin.on('error', () => undefined);
  // The watchdog must never keep the sandbox's process alive on its own.
  watchdog.unref();
  if (watchdog.stdin instanceof Socket) watchdog.stdin.unref();
  return {
    pid: watchdog.pid,
    disarm: () => {
      if (!armed) return;
      armed = false;
      // SIGKILL first: closing the pipe before the shell is gone would make it fire.
      if (watchdog.exitCode !== null || watchdog.signalCode !== null) {
        watchdog.stdin.destroy();
        return;
      }
      watchdog.once('exit', () => {
        watchdog.stdin.destroy();
      });
      watchdog.kill('SIGKILL');
    },
  };
}

/** How a child process ended. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Whether the sandbox had asked it to stop. */
  readonly expected: boolean;
}

// After SIGKILL the kernel reaps promptly; longer means the exit event is not coming (e.g. an
// uninterruptible sleep), and stop() must not hang on it.
const KILL_WAIT_MS = 2000;

/** A spawned child whose exit is recorded as soon as it happens, with a bounded stop. */
export class SupervisedChild {
  private exitInfo: ChildExit | undefined;
  private stopRequested = false;
  private readonly listeners: ((exit: ChildExit) => void)[] = [];
  private readonly watchdog: ParentDeathWatchdog | undefined;
  /** Resolves when the child has exited, for whatever reason. */
  readonly exited: Promise<ChildExit>;

  /**
   * Call right after `spawn()`, so that no exit can be missed. `watchdogSignal` arms a
   * {@link armParentDeathWatchdog}; `tag` (the sandbox data dir) goes into its argv.
   */
  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    options: { watchdogSignal: 'KILL' | 'QUIT' | 'TERM' | 'INT'; tag: string; log: (line: string) => void },
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const exit: ChildExit = { code, signal, expected: this.stopRequested };
        this.exitInfo = exit;
        this.watchdog?.disarm();
        for (const listener of this.listeners) listener(exit);
        resolve(exit);
      });
    });
    this.watchdog = child.pid === undefined ? undefined : armParentDeathWatchdog({ name, pid: child.pid, signal: options.watchdogSignal, tag: options.tag }, options.log);
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** How it ended, once it has. */
  get exit(): ChildExit | undefined {
    return this.exitInfo;
  }

  /** Registers a listener for the child's exit (also called for an expected exit). */
  onExit(listener: (exit: ChildExit) => void): void {
    if (this.exitInfo !== undefined) listener(this.exitInfo);
    else this.listeners.push(listener);
  }

  /**
   * Sends `signal`, waits up to `graceMs`, then SIGKILL and up to 2 s more. Returns at once when
   * the child has already exited. Resolves `false` if it still had not exited (it is then
   * reported, not waited for: a stop must never hang).
   */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<boolean> {
    this.stopRequested = true;
    this.watchdog?.disarm();
    if (this.exitInfo !== undefined) return true;
    const waitFor = (ms: number): Promise<boolean> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          resolve(false);
        }, ms);
        void this.exited.then(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    this.child.kill(signal);
    if (await waitFor(graceMs)) return true;
    this.child.kill('SIGKILL');
    return waitFor(KILL_WAIT_MS);
  }
}
