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

/** The process's own streams. */
export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
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
