/**
 * POSTs a JSON body over HTTPS with the client layer's CA trust. Used for notification webhooks;
 * redirects are not followed and the response body is read only to report a failure.
 */
import type { Agent as HttpsAgent } from 'node:https';
import { httpsExchange, HttpsExchangeError, type HttpsExchangeResult } from '../azure/https-exchange.ts';
import { OpsAutopilotError } from '../errors.ts';
import { redactString } from '../runs/secret-guard.ts';

/** Thrown when a webhook POST gets no response or a non-2xx status. */
export class WebhookPostError extends OpsAutopilotError {
  override readonly name: string = 'WebhookPostError';
}

/** Options of {@link httpsPostJson}. */
export interface HttpsPostOptions {
  /** Agent carrying the trusted CAs (`AzureClients.agent()`); default: system roots. */
  readonly agent?: HttpsAgent;
  readonly timeoutMs?: number;
  /** Name used in messages instead of the URL, which may carry a key. */
  readonly name: string;
}

/**
 * POSTs `body` as JSON to an https URL and resolves with the status when it is 2xx. The whole
 * exchange, the response body included, has `timeoutMs` (default 10 s). Sent with the SDK's
 * HTTP client (see `httpsExchange`).
 *
 * @throws {@link WebhookPostError} on a non-2xx status, a connection failure or a timeout. The
 * message names the webhook and the URL's origin only, never its path or query (where webhook
 * keys live).
 */
export async function httpsPostJson(url: string, body: unknown, options: HttpsPostOptions): Promise<number> {
  const parsed = new URL(url);
  const where = `webhook ${options.name} (${parsed.origin})`;
  const fail = (message: string, cause?: unknown): WebhookPostError => new WebhookPostError(`${where}: ${message}`, { context: { webhook: options.name }, cause });
  if (parsed.protocol !== 'https:') throw fail(`expected an https:// URL, found ${parsed.protocol}`);
  const timeoutMs = options.timeoutMs ?? 10_000;
  let result: HttpsExchangeResult;
  try {
    result = await httpsExchange(url, {
      method: 'POST',
      timeoutMs,
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'ops-autopilot-notify' },
      body: JSON.stringify(body),
      // Enough of an error body to quote; a webhook's answer is never needed in full.
      maxBodyBytes: 512,
      ...(options.agent === undefined ? {} : { agent: options.agent }),
    });
  } catch (error) {
    if (error instanceof HttpsExchangeError && error.reason === 'timeout') throw fail(`expected a response within ${timeoutMs} ms, found none`, error);
    // The error's text may quote the URL (and its key): say only the code, or the redacted reason.
    const found = error instanceof HttpsExchangeError ? (error.code ?? redactString(error.detail)) : 'an error';
    throw fail(`expected a response, found ${found}`, error);
  }
  if (result.status >= 200 && result.status < 300) return result.status;
  const text = redactString(result.body.slice(0, 200));
  throw fail(`expected a 2xx response, found ${result.status}${text === '' ? '' : ` (${text})`}`);
}
