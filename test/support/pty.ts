/**
 * Runs the `ops-autopilot` binary in a REAL pseudo-terminal (`@lydell/node-pty`, whose prebuilt
 * binaries come with the npm package: nothing to compile, nothing else to install), so a test
 * can read the prompt and type at it as a person would: `yes`, a refusal, Ctrl-C (`\x03`),
 * Ctrl-D (`\x04`). If the package cannot load, the import fails and so does the test file:
 * prompt tests never skip.
 */
import pty from '@lydell/node-pty';

/** A program running in a pseudo-terminal. */
export interface PtySession {
  /** Everything the terminal showed so far, `\r\n` turned into `\n`, colours kept. */
  output(): string;
  /** Resolves once the output matches `pattern` (rejects after `timeoutMs` with what was shown). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Types text, as keys (`\r` is Enter). */
  type(text: string): void;
  /** Resolves with the exit code (a signal death counts as 128 + signal). */
  exited(timeoutMs?: number): Promise<number>;
}

const running = new Set<{ kill: () => void }>();

/**
 * Kills every session still running (call it in `afterEach`): a test that failed half-way must
 * not leave a run holding the runbook's lock for the next one.
 */
export function killPtySessions(): void {
  for (const session of running) session.kill();
  running.clear();
}

/**
 * Starts `file args` in a pseudo-terminal of 200 columns from the repository root. By default
 * `file` is node and `args` the CLI's arguments after `bin/ops-autopilot.mjs`.
 */
export function ptyCli(args: readonly string[], options: { file?: string; env?: Record<string, string> } = {}): PtySession {
  const file = options.file ?? process.execPath;
  const argv = options.file === undefined ? ['bin/ops-autopilot.mjs', ...args] : [...args];
  const child = pty.spawn(file, argv, {
    name: 'xterm',
    cols: 200,
    rows: 50,
    cwd: process.cwd(),
    env: { ...process.env, ...options.env },
  });
  running.add(child);
  let text = '';
  const listeners = new Set<() => void>();
  child.onData((data) => {
    text += data.replace(/\r\n/g, '\n');
    for (const listener of listeners) listener();
  });
  let ended = false;
  const exit = new Promise<number>((resolve) => {
    child.onExit(({ exitCode, signal }) => {
      ended = true;
      running.delete(child);
      for (const listener of listeners) listener();
      resolve(signal !== undefined && signal !== 0 ? 128 + signal : exitCode);
    });
  });
  return {
    output: () => text,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!pattern.test(text) && !ended) return;
          listeners.delete(check);
          clearTimeout(timer);
          if (pattern.test(text)) resolve();
          else reject(new Error(`expected the terminal to show ${String(pattern)}, found that the program exited after showing:\n${text}`));
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`expected the terminal to show ${String(pattern)} within ${String(timeoutMs)} ms, found:\n${text}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    type(keys) {
      child.write(keys);
    },
    exited(timeoutMs = 120_000) {
      return Promise.race([
        exit,
        new Promise<number>((_, reject) =>
          setTimeout(() => {
            child.kill();
            reject(new Error(`expected the program to exit within ${String(timeoutMs)} ms; the terminal showed:\n${text}`));
          }, timeoutMs).unref(),
        ),
      ]);
    },
  };
}
