/**
 * `ops-autopilot remediate <payload.json> --app <url> [--key <key>]`: posts an alert payload
 * to the app's `POST /api/alerts` as an action group does (the common alert schema as JSON, the
 * function key in `x-functions-key`), then follows the remediation (`GET /api/remediations/{id}`)
 * until it ends, through the shared app client (src/cli/app-client.ts: bounded polls, Retry-After,
 * typed errors). The remediation runs in the app, durably; Ctrl-C stops following, not it.
 *
 * Exit codes: 0 remediated, healthy, notified, resolved or ignored; 1 escalated, failed, or the
 * app could not be reached or refused the key; 2 usage or an invalid payload (the app's 400 with
 * every issue); 3 nothing changed by decision (suppressed by a guardrail, planned in dry run);
 * 130 Ctrl-C.
 */
import { readFile } from 'node:fs/promises';
import { AppClient, AppConnectionError, AppRequestError, resolveAppConnection, type OperationStatus } from '../app-client.ts';
import { errorMessage } from '../../errors.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';

/** Options of {@link remediateCommand}. */
export interface RemediateOptions {
  readonly app?: string;
  readonly key?: string;
  readonly appCa?: string;
  /** False with `--no-wait`: print the status URL and return. */
  readonly wait?: boolean;
  readonly json?: boolean;
  /** Longest follow, in seconds (default 3,600). */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

const SUCCESS = new Set(['remediated', 'healthy', 'notified', 'resolved', 'ignored']);
const BY_DECISION = new Set(['suppressed', 'planned']);

/** The exit code of a finished remediation's outcome. */
export function exitCodeOf(outcome: string | undefined): number {
  if (outcome !== undefined && SUCCESS.has(outcome)) return EXIT.ok;
  if (outcome !== undefined && BY_DECISION.has(outcome)) return EXIT.findings;
  return EXIT.failure;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** One line per rung: the action, the guardrails' word, the result, the verification, the undo. */
export function describeStep(step: Readonly<Record<string, unknown>>): string {
  const result = step.result as { outcome?: string; message?: string } | undefined;
  const verify = step.verify as { healthy?: boolean; reason?: string } | undefined;
  const undo = step.undo as { outcome?: string } | undefined;
  const parts = [`${String(Number(step.rung) + 1)}. ${text(step.action)}`];
  if (step.allowed === false) parts.push('suppressed by the guardrails');
  if (result !== undefined) parts.push(`${text(result.outcome)}: ${text(result.message)}`);
  if (typeof step.error === 'string') parts.push(`failed: ${step.error}`);
  if (verify !== undefined) parts.push(verify.healthy === true ? `healthy (${text(verify.reason)})` : `still unhealthy (${text(verify.reason)})`);
  if (undo !== undefined) parts.push(`undone: ${text(undo.outcome)}`);
  return parts.join(' — ');
}

/** Runs `remediate` with Ctrl-C stopping the follow (exit 130); the remediation goes on in the app. */
export async function remediateCli(file: string, options: Omit<RemediateOptions, 'signal'>, io: CliIo): Promise<number> {
  const controller = new AbortController();
  const onSigint = (): void => {
    controller.abort(new CliExit(130, 'remediate: stopped following (Ctrl-C); the remediation goes on in the app'));
  };
  process.once('SIGINT', onSigint);
  try {
    return await remediateCommand(file, { ...options, signal: controller.signal }, io);
  } catch (error) {
    if (controller.signal.aborted && controller.signal.reason instanceof CliExit) throw controller.signal.reason;
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Runs `remediate`; returns the exit code. */
export async function remediateCommand(file: string, options: RemediateOptions, io: CliIo): Promise<number> {
  let client: AppClient;
  try {
    client = new AppClient(resolveAppConnection({ app: options.app, key: options.key, appCa: options.appCa }));
  } catch (error) {
    if (error instanceof AppConnectionError) throw new CliExit(EXIT.usage, `remediate: ${error.message}`);
    throw error;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new CliExit(EXIT.usage, `remediate: expected ${file} to be an alert payload (JSON in the common alert schema), found ${error instanceof SyntaxError ? `text that is not JSON (${error.message})` : errorMessage(error)}`);
  }
  let started: OperationStatus;
  try {
    started = await client.start('alerts', payload, options.signal);
  } catch (error) {
    if (error instanceof AppRequestError && error.status === 400) {
      const issues = ((error.body as { error?: { issues?: { path: string; expected: string; found: string }[] } } | undefined)?.error?.issues ?? []).map(
        (issue) => `  ${issue.path === '' ? '(body)' : issue.path}: ${issue.expected}, found ${issue.found}`,
      );
      throw new CliExit(EXIT.usage, `remediate: the app refused the payload: ${error.message}${issues.length === 0 ? '' : `\n${issues.join('\n')}`}`);
    }
    throw error;
  }
  if (started.done) {
    if (options.json === true) io.stdout(`${JSON.stringify(started.body)}\n`);
    else io.stdout(`resolved: remediation ${started.id} (${text(started.body.closed) || 'none open'})\n`);
    return EXIT.ok;
  }
  if (options.json !== true) io.stderr(`${started.body.duplicate === true ? 'already accepted' : 'accepted'}: remediation ${started.id}\n  status: ${started.statusUrl}\n`);
  if (options.wait === false) {
    if (options.json === true) io.stdout(`${JSON.stringify(started.body)}\n`);
    return EXIT.ok;
  }
  let shown = 0;
  const final = await client.follow(started.statusUrl, {
    maxWaitMs: (options.timeout ?? 3600) * 1000,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onProgress: (status) => {
      const steps = Array.isArray(status.body.steps) ? (status.body.steps as Record<string, unknown>[]) : [];
      // A rung is shown once it has its result (and, when applied, its verification).
      const complete = steps.filter((step, index) => index < steps.length - 1 || status.done || step.verify !== undefined || step.allowed === false || step.error !== undefined);
      if (options.json !== true) for (const step of complete.slice(shown)) io.stderr(`  ${describeStep(step)}\n`);
      shown = Math.max(shown, complete.length);
    },
  });
  const outcome = typeof final.body.outcome === 'string' ? final.body.outcome : undefined;
  if (options.json === true) io.stdout(`${JSON.stringify(final.body)}\n`);
  else io.stdout(`${outcome ?? 'failed'}: ${text(final.body.reason)}\n`);
  return exitCodeOf(outcome);
}
