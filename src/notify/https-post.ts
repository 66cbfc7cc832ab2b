/**
 * POSTs a JSON body over HTTPS with the client layer's CA trust. Used for notification webhooks;
 * redirects are not followed and the response body is read only to report a failure.
 */
import type { Agent as HttpsAgent } from 'node:https';
import { request as httpsRequest } from 'node:https';
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
 * POSTs `body` as JSON to an https URL and resolves with the status when it is 2xx.
 *
 * @throws {@link WebhookPostError} on a non-2xx status, a connection failure or a timeout. The
 * message names the webhook and the URL's origin only, never its path or query (where webhook
 * keys live).
 */
export function httpsPostJson(url: string, body: unknown, options: HttpsPostOptions): Promise<number> {
  const parsed = new URL(url);
  const where = `webhook ${options.name} (${parsed.origin})`;
  if (parsed.protocol !== 'https:') {
    return Promise.reject(new WebhookPostError(`${where}: expected an https:// URL, found ${parsed.protocol}`, { context: { webhook: options.name } }));
  }
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const fail = (message: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      reject(new WebhookPostError(`${where}: ${message}`, { context: { webhook: options.name }, cause }));
    };
    const req = httpsRequest(
      parsed,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(payload.length), 'user-agent': 'ops-autopilot-notify' },
        ...(options.agent === undefined ? {} : { agent: options.agent }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < 512) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            if (!settled) {
              settled = true;
              resolve(status);
            }
          } else {
            const text = redactString(Buffer.concat(chunks).toString('utf8').slice(0, 200));
            fail(`expected a 2xx response, found ${status}${text === '' ? '' : ` (${text})`}`);
          }
        });
        res.on('error', (error) => {
          fail(`expected a complete response, found ${error.message}`, error);
        });
      },
    );
    const timer = setTimeout(() => {
      fail(`expected a response within ${timeoutMs} ms, found none`);
      req.destroy();
    }, timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(`expected a response, found ${error.code ?? error.message}`, error);
    });
    req.end(payload);
  });
}
