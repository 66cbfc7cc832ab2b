/**
 * CLI plumbing shared by the commands: exit codes, the error type that carries one, and the
 * streams commands write to (injectable so tests can capture them without spawning).
 */
import { OpsAutopilotError } from '../errors.ts';

/** Process exit codes of `ops-autopilot`. */
export const EXIT = {
  ok: 0,
  /** A failure, or invalid input such as a bad configuration. */
  failure: 1,
  /** Wrong usage: unknown command or option, missing argument. */
  usage: 2,
  /** The run worked and found problems (used by checking runbooks). */
  findings: 3,
} as const;

/** Where commands write. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** Streams whose reader went away (`ops-autopilot plan ... | head`). */
const closed = new Set<NodeJS.WriteStream>();

/**
 * Writes to a process stream unless its reader has gone. A closed pipe (EPIPE) must not crash
 * a run half-way through an apply: output stops, the run finishes and records what it did.
 */
function writer(stream: NodeJS.WriteStream): (text: string) => void {
  let watching = false;
  return (text) => {
    if (!watching) {
      watching = true;
      stream.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE') throw error;
        closed.add(stream);
      });
    }
    if (!closed.has(stream)) stream.write(text);
  };
}

/** The process's own streams. */
export const processIo: CliIo = {
  stdout: writer(process.stdout),
  stderr: writer(process.stderr),
};

/** Thrown by a command to end with a specific exit code and an already-formatted message. */
export class CliExit extends OpsAutopilotError {
  override readonly name: string = 'CliExit';
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message, { context: { exitCode } });
  }
}
