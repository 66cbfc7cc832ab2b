/**
 * `ops-autopilot remediate <payload.json> --app <url> [--key <key>]`: posts an alert payload
 * to the app's `POST /api/alerts` exactly as an action group does (the common alert schema, JSON,
 * the function key in `x-functions-key`), then follows the remediation's status
 * (`GET /api/remediations/{id}`) until it ends, with bounded polls. The remediation runs in the
 * app, durably; Ctrl-C stops following, not the remediation.
 *
 * Exit codes: 0 remediated, healthy, notified, resolved or ignored; 1 escalated, failed or an
 * error; 2 usage or an invalid payload (the app's 400, with every issue); 3 suppressed or
 * planned (dry run): nothing was changed by decision.
 */
import { readFile } from 'node:fs/promises';
// eslint-disable-next-line no-restricted-imports -- a stop-gap until the shared app client (src/cli/app-client.ts) lands; then this module uses it
import http from 'node:http';
// eslint-disable-next-line no-restricted-imports -- as above
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { errorMessage } from '../../errors.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';

/** Environment variables of the app connection (the same as every CLI command that talks to the app). */
export const APP_ENV = { url: 'OPS_AUTOPILOT_APP_URL', key: 'OPS_AUTOPILOT_APP_KEY', caFile: 'OPS_AUTOPILOT_APP_CA_FILE' } as const;

/** Options of {@link remediateCommand}. */
export interface RemediateOptions {
  readonly app?: string;
  readonly key?: string;
  readonly appCa?: string;
  readonly wait?: boolean;
  readonly json?: boolean;
  /** Longest follow, in seconds (default 3,600). */
  readonly timeout?: number;
  readonly signal?: AbortSignal;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const REQUEST_TIMEOUT_MS = 60_000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

interface Response {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  readonly body: Record<string, unknown>;
}

/** The app's base URL: `/api` is added unless the URL has a path; `http://` only on a loopback host. */
export function appBaseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliExit(EXIT.usage, `--app: expected the app's URL (https://<app>.azurewebsites.net), found ${JSON.stringify(value)}`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new CliExit(EXIT.usage, `--app: expected an https:// URL (http:// only for the local host on 127.0.0.1), found ${url.protocol}//${url.host}`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/api';
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

async function request(method: 'GET' | 'POST', url: URL, key: string | undefined, ca: string | undefined, body: string | undefined, signal: AbortSignal | undefined): Promise<Response> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<Response>((resolve, reject) => {
    const outgoing = transport.request(
      url,
      {
        method,
        timeout: REQUEST_TIMEOUT_MS,
        ...(signal === undefined ? {} : { signal }),
        ...(url.protocol === 'https:' && ca !== undefined ? { ca: [...rootCertificates, ca] } : {}),
        headers: {
          accept: 'application/json',
          ...(key === undefined ? {} : { 'x-functions-key': key }),
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) outgoing.destroy(new Error(`the app's answer exceeded ${String(MAX_RESPONSE_BYTES)} bytes`));
          else chunks.push(chunk);
        });
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = {};
          try {
            parsed = text === '' ? {} : JSON.parse(text);
          } catch {
            parsed = { error: { code: 'NotJson', message: `expected JSON from the app, found ${JSON.stringify(text.slice(0, 120))}` } };
          }
          const retryAfter = Number(response.headers['retry-after']);
          resolve({
            status: response.statusCode ?? 0,
            retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
            body: parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed },
          });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${String(REQUEST_TIMEOUT_MS / 1000)} s`)));
    outgoing.on('error', (error) => {
      reject(signal?.aborted === true ? error : new CliExit(EXIT.failure, `the app at ${url.origin} is unreachable: ${errorMessage(error)}`));
    });
    outgoing.end(body);
  });
}

function appError(response: Response, what: string): CliExit {
  const error = response.body.error as { code?: string; message?: string; issues?: { path: string; expected: string; found: string }[] } | undefined;
  if (response.status === 401 || response.status === 403) return new CliExit(EXIT.failure, `${what}: the app refused the key (HTTP ${String(response.status)}): pass the function key with --key or ${APP_ENV.key}`);
  if (response.status === 404) return new CliExit(EXIT.failure, `${what}: HTTP 404: expected the Ops Autopilot app at this URL with the alerts function, found none`);
  if (response.status === 400) {
    const issues = (error?.issues ?? []).map((issue) => `  ${issue.path === '' ? '(body)' : issue.path}: ${issue.expected}, found ${issue.found}`);
    return new CliExit(EXIT.usage, `${what}: the app refused the payload: ${error?.message ?? 'invalid'}${issues.length === 0 ? '' : `\n${issues.join('\n')}`}`);
  }
  return new CliExit(EXIT.failure, `${what}: HTTP ${String(response.status)}: ${error?.message ?? JSON.stringify(response.body).slice(0, 300)}`);
}

const SUCCESS = new Set(['remediated', 'healthy', 'notified', 'resolved', 'ignored']);
const BY_DECISION = new Set(['suppressed', 'planned']);

/** The exit code of a finished remediation's outcome. */
export function exitCodeOf(outcome: string | undefined): number {
  if (outcome !== undefined && SUCCESS.has(outcome)) return EXIT.ok;
  if (outcome !== undefined && BY_DECISION.has(outcome)) return EXIT.findings;
  return EXIT.failure;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    }, { once: true });
  });
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function describeStep(step: Record<string, unknown>): string {
  const result = step.result as { outcome?: string; message?: string } | undefined;
  const verify = step.verify as { healthy?: boolean; reason?: string } | undefined;
  const undo = step.undo as { outcome?: string } | undefined;
  const parts = [`${String(Number(step.rung) + 1)}. ${String(step.action)}`];
  if (step.allowed === false) parts.push('suppressed by the guardrails');
  if (result !== undefined) parts.push(`${result.outcome ?? ''}: ${result.message ?? ''}`);
  if (typeof step.error === 'string') parts.push(`failed: ${step.error}`);
  if (verify !== undefined) parts.push(verify.healthy === true ? `healthy (${verify.reason ?? ''})` : `still unhealthy (${verify.reason ?? ''})`);
  if (undo !== undefined) parts.push(`undone: ${undo.outcome ?? ''}`);
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
  const env = options.env ?? process.env;
  const appValue = options.app ?? env[APP_ENV.url];
  if (appValue === undefined || appValue === '') throw new CliExit(EXIT.usage, `remediate: expected --app <url> or ${APP_ENV.url}, found neither`);
  const base = appBaseUrl(appValue);
  const key = options.key ?? env[APP_ENV.key];
  const caFile = options.appCa ?? env[APP_ENV.caFile];
  const ca = caFile === undefined || caFile === '' ? undefined : await readFile(caFile, 'utf8');
  let payload: string;
  try {
    payload = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliExit(EXIT.usage, `remediate: expected a readable alert payload file, found ${file}: ${errorMessage(error)}`);
  }
  const started = await request('POST', new URL(`${base.pathname}/alerts`, base), key, ca, payload, options.signal);
  if (started.status !== 202) throw appError(started, 'remediate');
  const id = String(started.body.id);
  const statusUrl = String(started.body.statusUrl);
  if (started.body.done === true) {
    if (options.json === true) io.stdout(`${JSON.stringify(started.body)}\n`);
    else io.stdout(`Resolved: remediation ${id} ${text(started.body.closed)}\n`);
    return EXIT.ok;
  }
  if (options.json !== true) io.stderr(`${started.body.duplicate === true ? 'already accepted' : 'accepted'}: remediation ${id}\n  status: ${statusUrl}\n`);
  if (options.wait === false) {
    if (options.json === true) io.stdout(`${JSON.stringify(started.body)}\n`);
    return EXIT.ok;
  }
  const deadline = Date.now() + (options.timeout ?? 3600) * 1000;
  let interval = 1000;
  let seenSteps = 0;
  for (;;) {
    const status = await request('GET', new URL(statusUrl), key, ca, undefined, options.signal);
    if (status.status !== 200) throw appError(status, `remediation ${id}`);
    const steps = Array.isArray(status.body.steps) ? (status.body.steps as Record<string, unknown>[]) : [];
    if (options.json !== true) {
      for (const step of steps.slice(seenSteps)) io.stderr(`  ${describeStep(step)}\n`);
    }
    seenSteps = Math.max(seenSteps, steps.length);
    if (status.body.done === true) {
      const outcome = typeof status.body.outcome === 'string' ? status.body.outcome : undefined;
      if (options.json === true) io.stdout(`${JSON.stringify(status.body)}\n`);
      else io.stdout(`${outcome ?? 'failed'}: ${text(status.body.reason)}\n`);
      return exitCodeOf(outcome);
    }
    if (Date.now() > deadline) throw new CliExit(EXIT.failure, `remediation ${id}: still ${text(status.body.status) || 'running'} after ${String(options.timeout ?? 3600)} s; it goes on in the app (${statusUrl})`);
    await sleep(Math.min(15_000, Math.max(500, status.retryAfterMs ?? interval)), options.signal);
    interval = Math.min(15_000, interval * 2);
  }
}
