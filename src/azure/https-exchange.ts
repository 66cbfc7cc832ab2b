/**
 * One HTTPS exchange outside the SDK clients (health probes, notification webhooks, the
 * sandbox token endpoint), sent with the Azure SDK's own HTTP client from
 * `@azure/core-rest-pipeline` instead of hand-written `https.request` plumbing.
 *
 * What the callers need and the SDK client alone does not give: one deadline for the whole
 * exchange, body included (core-rest-pipeline's `timeout` stops at the response headers, so a
 * server trickling its body would hold us forever), and only the start of the body (a health
 * probe reads a few KiB, not a page of unknown size). TLS verification is never turned off: the
 * extra CA of `azure.caFile` arrives as an agent or as `ca`, trusted in addition to the system
 * roots. Redirects are not followed (the HTTP client has no redirect policy).
 */
import type { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { createDefaultHttpClient, createHttpHeaders, createPipelineRequest, type HttpClient, type TlsSettings } from '@azure/core-rest-pipeline';
import { errorCode, errorMessage, OpsAutopilotError } from '../errors.ts';

/** Options of {@link httpsExchange}. */
export interface HttpsExchangeOptions {
  readonly method: 'GET' | 'POST';
  /** Deadline of the whole exchange: connect, send, headers and the body read. */
  readonly timeoutMs: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Agent carrying the trusted CAs (`AzureClients.agent()`); see also {@link tlsSettingsWithCa}. */
  readonly agent?: HttpsAgent;
  /** TLS settings (e.g. from {@link tlsSettingsWithCa}); ignored when `agent` is given. */
  readonly tlsSettings?: TlsSettings;
  /** The caller's cancellation. */
  readonly signal?: AbortSignal;
  /** How much of the body to read; the rest is not downloaded. Default 64 KiB. */
  readonly maxBodyBytes?: number;
  /**
   * Also send to `http://` on a loopback host (127.0.0.0/8, ::1, localhost): the local Functions
   * host serves plain HTTP on 127.0.0.1, like `func start`. Never to any other host.
   */
  readonly allowLoopbackHttp?: boolean;
}

/** What {@link httpsExchange} returns. */
export interface HttpsExchangeResult {
  readonly status: number;
  /** Response headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** The start of the body (at most `maxBodyBytes`), as UTF-8. */
  readonly body: string;
  /** True when the body was longer than `body` holds. */
  readonly truncated: boolean;
}

/**
 * No HTTP response arrived: the deadline passed, the caller aborted, or the connection failed
 * (refused, TLS verification, reset). {@link reason} says which; {@link detail} is one line.
 */
export class HttpsExchangeError extends OpsAutopilotError {
  override readonly name: string = 'HttpsExchangeError';

  constructor(
    readonly reason: 'timeout' | 'aborted' | 'network',
    /** `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1`, `no response within 500 ms`, ... */
    readonly detail: string,
    /** The network error code, when there is one. */
    readonly code: string | undefined,
  ) {
    super(detail, { context: { reason, code } });
  }
}

/** True when a host name is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * TLS settings that trust `ca` in addition to the system roots (passing `ca` alone would
 * replace them). Build it once per CA: the SDK's HTTP client keeps one agent per settings object.
 */
export function tlsSettingsWithCa(ca: string | Buffer): TlsSettings {
  return { ca: [...rootCertificates, ca] };
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
let sharedClient: HttpClient | undefined;

/** The SDK's default HTTP client, one per process (it pools agents per TLS settings). */
function httpClient(): HttpClient {
  sharedClient ??= createDefaultHttpClient();
  return sharedClient;
}

/**
 * Sends one request and reads the start of the response body, all within `timeoutMs`.
 * Any HTTP status is a result; only a missing response throws.
 *
 * @throws {@link HttpsExchangeError} when no complete response arrives in time, the caller
 * aborts or the connection fails; a non-https URL is refused before anything is sent.
 */
export async function httpsExchange(url: string, options: HttpsExchangeOptions): Promise<HttpsExchangeResult> {
  const target = new URL(url);
  if (target.protocol !== 'https:' && !(options.allowLoopbackHttp === true && target.protocol === 'http:' && isLoopbackHost(target.hostname))) {
    throw new HttpsExchangeError('network', `expected an https:// URL${options.allowLoopbackHttp === true ? ' (or http:// on a loopback host)' : ''}, found ${target.protocol}//${target.host}`, undefined);
  }
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
  const request = createPipelineRequest({
    url,
    method: options.method,
    headers: createHttpHeaders({ ...options.headers }),
    ...(options.body === undefined ? {} : { body: options.body }),
    // No `timeout`: the deadline signal bounds the exchange. The SDK's HTTP client clears its own
    // timeout timer only on success, so after an abort it would hold the process open until it
    // fired (a CLI stopped with Ctrl-C lingered for the whole deadline).
    abortSignal: signal,
    // Checked above: plain http only to a loopback host, and only when the caller allows it.
    allowInsecureConnection: target.protocol === 'http:',
    // Every status as a stream, so only the start of the body is read.
    streamResponseStatusCodes: new Set([Number.POSITIVE_INFINITY]),
  });
  // createPipelineRequest takes neither option; the default HTTP client reads both off the request.
  if (options.agent !== undefined) request.agent = options.agent;
  else if (options.tlsSettings !== undefined) request.tlsSettings = options.tlsSettings;
  // The SDK's error is not kept as the cause: its `request` holds the URL (a webhook's key) and
  // the body (a client secret). The code and the message say what went wrong.
  const failure = (error: unknown): HttpsExchangeError => {
    if (error instanceof HttpsExchangeError) return error;
    if (deadline.aborted) return new HttpsExchangeError('timeout', `no response within ${options.timeoutMs} ms`, undefined);
    if (options.signal?.aborted === true) return new HttpsExchangeError('aborted', 'aborted by the caller', undefined);
    const code = errorCode(error);
    const message = errorMessage(error);
    // Node's messages often name the code already (`connect ECONNREFUSED 127.0.0.1:1`); TLS ones do not.
    const named = code === undefined || code === 'REQUEST_SEND_ERROR' || message.includes(code);
    return new HttpsExchangeError('network', named ? message : `${code}: ${message}`, code);
  };
  try {
    const response = await httpClient().sendRequest(request);
    const { body, truncated } = await readStart(response.readableStreamBody, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, signal);
    return { status: response.status, headers: response.headers.toJSON(), body, truncated };
  } catch (error) {
    throw failure(error);
  }
}

/** Reads at most `max` bytes of a body and drops the rest; rejects when `signal` aborts first. */
function readStart(stream: NodeJS.ReadableStream | undefined, max: number, signal: AbortSignal): Promise<{ body: string; truncated: boolean }> {
  if (stream === undefined) return Promise.resolve({ body: '', truncated: false });
  const readable = stream;
  // Node's response stream is a Readable; destroying it closes the socket instead of downloading the rest.
  const drop = (): void => {
    if (readable instanceof Readable) readable.destroy();
    else readable.pause();
  };
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (truncated: boolean): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      resolve({ body: Buffer.concat(chunks).toString('utf8'), truncated });
    };
    const onAbort = (): void => {
      if (done) return;
      done = true;
      drop();
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    readable.on('data', (chunk: Buffer) => {
      if (received < max) chunks.push(chunk.subarray(0, max - received));
      received += chunk.length;
      if (received > max) {
        // The start is all the caller reads; stop downloading the rest.
        drop();
        finish(true);
      }
    });
    readable.on('end', () => {
      finish(false);
    });
    readable.on('error', (error: unknown) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      reject(error instanceof Error ? error : new Error(errorMessage(error)));
    });
  });
}
