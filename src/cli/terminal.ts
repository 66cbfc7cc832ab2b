/**
 * The terminal a person answers on, for `run`'s confirmation and Ctrl-C.
 *
 * - Whether a person can answer is decided by stdin alone: `run ... | tee run.log` keeps its
 *   prompt (stdout is a pipe, stdin still the keyboard). The question is written to stdout when
 *   that is a terminal, else to stderr, so it reaches the screen and not the log.
 * - The answer is read in the terminal's raw mode, so Ctrl-C and Ctrl-D at the prompt come back
 *   as "cancelled" (never as a kill that leaves a half-written record), and so does the end of
 *   input.
 * - While a run is going, the first SIGINT asks it to stop (no further action starts; the run
 *   record says cancelled); a second one exits at once with 130.
 */
import { createInterface } from 'node:readline';

/** The terminal, injectable for tests. */
export interface Terminal {
  /** Whether stdin is a terminal a person can answer on. */
  readonly interactive: boolean;
  /** Whether stderr is a terminal (progress is shown only then). */
  readonly progress: boolean;
  /** Asks one question; resolves with the line typed, or undefined when cancelled (Ctrl-C, Ctrl-D, end of input). */
  ask(question: string): Promise<string | undefined>;
  /**
   * Turns SIGINT into an abort of `signal` until `dispose()`: the first one aborts, a second
   * calls `onForce` (the process exits 130).
   */
  interrupts(onFirst: () => void): { readonly signal: AbortSignal; dispose(): void };
}

/** Exit code of a run stopped by Ctrl-C, as shells report a SIGINT death (128 + 2). */
export const CANCELLED_EXIT_CODE = 130;

function askOnStdin(question: string): Promise<string | undefined> {
  const output = process.stdout.isTTY ? process.stdout : process.stderr;
  // terminal: true even when the output is not a TTY: stdin is, and raw mode is what turns
  // Ctrl-C into a keypress readline reports instead of a signal that kills the pipeline.
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (answer: string | undefined): void => {
      if (settled) return;
      settled = true;
      rl.close();
      // readline resumed stdin; pause it again so the process can exit after the run.
      process.stdin.pause();
      if (answer === undefined) output.write('\n');
      resolve(answer);
    };
    rl.on('SIGINT', () => {
      settle(undefined);
    });
    // Ctrl-D on an empty line, or stdin closed: nobody will answer.
    rl.on('close', () => {
      settle(undefined);
    });
    rl.question(question, (answer) => {
      settle(answer);
    });
  });
}

/** The process's terminal. */
export const processTerminal: Terminal = {
  interactive: process.stdin.isTTY,
  progress: process.stderr.isTTY,
  ask: askOnStdin,
  interrupts(onFirst) {
    const controller = new AbortController();
    const onSignal = (): void => {
      if (controller.signal.aborted) process.exit(CANCELLED_EXIT_CODE);
      controller.abort(new Error('cancelled by SIGINT'));
      onFirst();
    };
    process.on('SIGINT', onSignal);
    return {
      signal: controller.signal,
      dispose: () => {
        process.off('SIGINT', onSignal);
      },
    };
  },
};
