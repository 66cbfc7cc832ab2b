/**
 * httpsExchange, the one way production code sends HTTPS outside the SDK clients (health
 * probes, webhooks, the sandbox token endpoint), over the SDK's HTTP client: the CA is trusted
 * in addition to the system roots and never instead of verification, one deadline covers the
 * whole exchange, only the start of a body is read, redirects are not followed, and a failure
 * never carries the request (URL keys, bodies) along.
 */
import { createServer as createHttpServer } from 'node:http';
import { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsExchange, HttpsExchangeError, tlsSettingsWithCa } from '../../../src/azure/https-exchange.ts';
import { httpsPostJson, WebhookPostError } from '../../../src/notify/https-post.ts';
import { runProcess } from '../../support/cli.ts';
import { startTlsServer, type TlsTestServer } from '../../support/tls-server.ts';

let tls: TlsTestServer;

beforeAll(async () => {
  tls = await startTlsServer((req, res) => {
    if (req.url === '/big') {
      res.end('x'.repeat(100_000));
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/elsewhere' }).end();
    } else if (req.url?.startsWith('/hang') === true) {
      // Never answers.
    } else {
      res.setHeader('x-seen-method', req.method ?? '');
      res.end('hello');
    }
  });
});

afterAll(async () => {
  await tls.close();
});

describe('httpsExchange', () => {
  it('trusts the extra CA in addition to the system roots, and refuses the server without it', async () => {
    const ok = await httpsExchange(`${tls.baseUrl}/`, { method: 'GET', timeoutMs: 5000, tlsSettings: tlsSettingsWithCa(tls.ca) });
    expect(ok).toMatchObject({ status: 200, body: 'hello', truncated: false });
    expect(ok.headers['x-seen-method']).toBe('GET');
    const refused = await httpsExchange(`${tls.baseUrl}/`, { method: 'GET', timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HttpsExchangeError);
    expect((refused as HttpsExchangeError).reason).toBe('network');
    expect((refused as HttpsExchangeError).detail).toMatch(/certificate/i);
  });

  it('reads only the start of a long body', async () => {
    const result = await httpsExchange(`${tls.baseUrl}/big`, { method: 'GET', timeoutMs: 5000, tlsSettings: tlsSettingsWithCa(tls.ca), maxBodyBytes: 1000 });
    expect(result.body).toHaveLength(1000);
    expect(result.truncated).toBe(true);
  });

  it('does not follow redirects', async () => {
    const result = await httpsExchange(`${tls.baseUrl}/redirect`, { method: 'GET', timeoutMs: 5000, tlsSettings: tlsSettingsWithCa(tls.ca) });
    expect(result.status).toBe(302);
    expect(result.headers.location).toBe('/elsewhere');
  });

  it('fails at its deadline, and at once when the caller aborts, without the request in the error', async () => {
    const started = Date.now();
    const timedOut = await httpsExchange(`${tls.baseUrl}/hang?sig=SECRET`, { method: 'POST', body: 'client_secret=SECRET', timeoutMs: 300, tlsSettings: tlsSettingsWithCa(tls.ca) }).catch(
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(timedOut).toBeInstanceOf(HttpsExchangeError);
    expect((timedOut as HttpsExchangeError).reason).toBe('timeout');
    expect((timedOut as HttpsExchangeError).detail).toBe('no response within 300 ms');
    expect((timedOut as Error).cause).toBeUndefined();
    expect(JSON.stringify(timedOut)).not.toContain('SECRET');

    const controller = new AbortController();
    const pending = httpsExchange(`${tls.baseUrl}/hang`, { method: 'GET', timeoutMs: 60_000, tlsSettings: tlsSettingsWithCa(tls.ca), signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    setTimeout(() => {
      controller.abort();
    }, 50);
    expect(((await pending) as HttpsExchangeError).reason).toBe('aborted');
  });

  it('leaves nothing behind when the caller aborts, so a process stopped with Ctrl-C exits at once (not at the deadline)', async () => {
    // A separate process: only its exit shows whether a timer or socket still holds it open.
    const script = [
      "import { createServer } from 'node:net';",
      "import { httpsExchange } from './src/azure/https-exchange.ts';",
      'const server = createServer(() => {}).listen(0, "127.0.0.1");',
      "await new Promise((resolve) => server.once('listening', resolve));",
      'const controller = new AbortController();',
      'setTimeout(() => controller.abort(), 300);',
      'const url = `http://127.0.0.1:${server.address().port}/`;',
      "await httpsExchange(url, { method: 'GET', timeoutMs: 600_000, allowLoopbackHttp: true, signal: controller.signal }).catch((error) => console.log(error.reason));",
      'server.close();',
    ].join('\n');
    const started = Date.now();
    const run = await runProcess(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeoutMs: 20_000 });
    expect(run.stdout.trim(), run.stderr).toBe('aborted');
    expect(run.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('refuses a non-https URL before sending anything', async () => {
    await expect(httpsExchange('http://127.0.0.1:1/', { method: 'GET', timeoutMs: 1000 })).rejects.toThrow('expected an https:// URL, found http:');
  });

  it('with allowLoopbackHttp, sends plain http to a loopback host (the local Functions host) and still refuses it to any other host', async () => {
    const plain = createHttpServer((_req, res) => res.end('plain'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = plain.address() as AddressInfo;
      const result = await httpsExchange(`http://127.0.0.1:${String(port)}/`, { method: 'GET', timeoutMs: 5000, allowLoopbackHttp: true });
      expect(result).toMatchObject({ status: 200, body: 'plain' });
      await expect(httpsExchange(`http://127.0.0.1:${String(port)}/`, { method: 'GET', timeoutMs: 5000 })).rejects.toThrow(/expected an https:\/\/ URL, found http:/);
      await expect(httpsExchange('http://example.com/', { method: 'GET', timeoutMs: 1000, allowLoopbackHttp: true })).rejects.toThrow(
        'expected an https:// URL (or http:// on a loopback host), found http://example.com',
      );
    } finally {
      await new Promise<void>((resolve) => {
        plain.close(() => {
          resolve();
        });
      });
    }
  });
});

describe('httpsPostJson (notification webhooks)', () => {
  it('names the webhook and the origin only when it times out', async () => {
    const error = await httpsPostJson(`${tls.baseUrl}/hang/key=SECRET`, { text: 'hi' }, { name: 'ops-teams', timeoutMs: 300, agent: new Agent({ ca: tls.ca }) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookPostError);
    expect((error as Error).message).toBe(`webhook ops-teams (${tls.baseUrl}): expected a response within 300 ms, found none`);
  });
});
