/**
 * The CLI's app client (`src/cli/app-client.ts`) against a real HTTPS server on loopback with a
 * throwaway CA: where the app is (options, environment, URLs that would leak the key), the key
 * in a header and nowhere else, the typed errors (401/403, 404, unreachable, TLS without the CA,
 * other statuses with the app's code), following a status URL within bounds (Retry-After, passing
 * failures, the deadline, Ctrl-C), raising an event, and progress only on a terminal.
 * The local host's routes are exercised through this client by test/product/functions/runs.test.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AppClient,
  AppClientError,
  AppConnectionError,
  AppFollowTimeoutError,
  AppNotFoundError,
  AppRequestError,
  AppUnauthorizedError,
  AppUnreachableError,
  followProgress,
  formatDuration,
  resolveAppConnection,
} from '../../../src/cli/app-client.ts';
import { startTlsServer, type TlsTestServer } from '../../support/tls-server.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly key: string | undefined;
  readonly body: string;
  readonly at: number;
}

const KEY = 'app-client-key';
let server: TlsTestServer;
let dir: string;
let caFile: string;
let seen: Seen[] = [];
/** Answers of the status route `ops/{id}`: one per poll, the last one repeated. */
let script: { status: number; body: unknown; headers?: Record<string, string> }[] = [];

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

type Answer = readonly [status: number, body: unknown, headers?: Record<string, string>];

/** The fake app's routes (under /api), as the real ones answer: JSON bodies, errors as `{ error: { code, message } }`. */
function answer(method: string, path: string, key: string | undefined): Answer {
  if (key !== KEY) return [401, undefined];
  if (path === '/api/ops' && method === 'POST') {
    return [202, { id: 'op-1', status: 'accepted', done: false, statusUrl: `${server.baseUrl}/api/ops/op-1` }, { location: `${server.baseUrl}/api/ops/op-1` }];
  }
  if (path === '/api/ops/op-1') {
    const next = script.length > 1 ? script.shift() : script[0];
    return next === undefined ? [500, { error: { code: 'NoScript', message: 'no script' } }] : [next.status, next.body, next.headers ?? {}];
  }
  if (path === '/api/ops/op-1/approve' && method === 'POST') return [200, { approved: true }];
  if (path === '/api/bad') return [400, { error: { code: 'InvalidBody', message: 'mode: expected plan or apply, found "x"' } }];
  if (path === '/api/forbidden') return [403, { error: { code: 'Forbidden', message: 'no' } }];
  if (path === '/api/elsewhere') return [202, { id: 'op-2', status: 'accepted', done: false, statusUrl: 'https://attacker.example/api/ops/op-2' }];
  if (path === '/custom/prefix/ping') return [200, { pong: true }];
  return [404, { error: { code: 'NotFound', message: `no route ${path}` } }];
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
  req.on('end', () => {
    const key = req.headers['x-functions-key'];
    const header = typeof key === 'string' ? key : undefined;
    seen.push({ method: req.method ?? '', url: req.url ?? '', key: header, body, at: Date.now() });
    const [status, payload, headers] = answer(req.method ?? '', (req.url ?? '').split('?')[0] ?? '', header);
    send(res, status, payload, headers);
  });
}

beforeAll(async () => {
  server = await startTlsServer(handler, 'app-client test CA');
  dir = await mkdtemp(join(tmpdir(), 'app-client-'));
  caFile = join(dir, 'ca.pem');
  await writeFile(caFile, server.ca);
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen = [];
  script = [];
});

const client = (options: { key?: string | null; ca?: boolean } = {}): AppClient =>
  new AppClient(resolveAppConnection({ app: server.baseUrl, ...(options.key === null ? {} : { key: options.key ?? KEY }), ...(options.ca === false ? {} : { appCa: caFile }) }, {}));

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => {
    probe.close(() => {
      resolve();
    });
  });
  return port;
}

describe('resolveAppConnection', () => {
  it('takes --app/--key/--app-ca, else OPS_AUTOPILOT_APP_URL/_KEY/_CA_FILE, and adds /api unless the URL has a path', () => {
    expect(resolveAppConnection({ app: 'https://func-ops.azurewebsites.net/', key: 'k' }, {})).toEqual({ baseUrl: 'https://func-ops.azurewebsites.net/api', key: 'k', caFile: undefined });
    expect(resolveAppConnection({}, { OPS_AUTOPILOT_APP_URL: 'http://127.0.0.1:7071', OPS_AUTOPILOT_APP_KEY: 'env-key', OPS_AUTOPILOT_APP_CA_FILE: '/ca.pem' })).toEqual({
      baseUrl: 'http://127.0.0.1:7071/api',
      key: 'env-key',
      caFile: '/ca.pem',
    });
    // Options win over the environment; a path is kept as the API base.
    expect(resolveAppConnection({ app: 'https://gw.example.com/ops/api/', key: 'opt' }, { OPS_AUTOPILOT_APP_URL: 'https://other', OPS_AUTOPILOT_APP_KEY: 'env' })).toMatchObject({ baseUrl: 'https://gw.example.com/ops/api', key: 'opt' });
    expect(resolveAppConnection({ app: 'http://localhost:7071', key: '' }, {}).key).toBeUndefined();
  });

  it('refuses what is missing, unparseable or would leak the key, saying what it expected', () => {
    const cases: [Parameters<typeof resolveAppConnection>[0], RegExp][] = [
      [{}, /expected the app's URL in --app <url> or OPS_AUTOPILOT_APP_URL, found neither/],
      [{ app: '  ' }, /found neither/],
      [{ app: 'func-ops' }, /expected a URL such as https:\/\/<app>.azurewebsites.net, found "func-ops"/],
      [{ app: 'http://func-ops.azurewebsites.net' }, /expected an https:\/\/ URL \(http:\/\/ only on a loopback host.*found http:\/\/func-ops.azurewebsites.net: the key would travel in clear/],
      [{ app: 'ftp://127.0.0.1' }, /expected an https:\/\/ URL/],
      [{ app: 'https://user:pw@func-ops.azurewebsites.net' }, /without credentials, query or fragment/],
      [{ app: 'https://func-ops.azurewebsites.net/?code=secret-key' }, /without credentials, query or fragment.*found https:\/\/func-ops.azurewebsites.net\/…/],
    ];
    for (const [options, message] of cases) {
      let thrown: unknown;
      try {
        resolveAppConnection(options, {});
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(options)).toBeInstanceOf(AppConnectionError);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain('secret-key');
    }
  });
});

describe('AppClient requests', () => {
  it('sends the key in x-functions-key only (never in the URL) and returns 2xx answers with their body', async () => {
    const response = await new AppClient(resolveAppConnection({ app: `${server.baseUrl}/custom/prefix`, key: KEY, appCa: caFile }, {})).request('GET', 'ping');
    expect(response).toMatchObject({ status: 200, body: { pong: true } });
    expect(seen).toEqual([expect.objectContaining({ method: 'GET', url: '/custom/prefix/ping', key: KEY })]);
    expect(seen[0]?.url).not.toContain(KEY);
  });

  it('401 and 403 say whether a key was missing or wrong', async () => {
    await expect(client({ key: null }).request('GET', 'ops/op-1')).rejects.toThrow(/GET .*\/api\/ops\/op-1: the app answered 401; expected a function key in --key or OPS_AUTOPILOT_APP_KEY, found none/);
    const wrong = client({ key: 'not-the-key' }).request('POST', 'ops', { body: {} });
    await expect(wrong).rejects.toBeInstanceOf(AppUnauthorizedError);
    await expect(wrong).rejects.toThrow(/answered 401; the key in --key or OPS_AUTOPILOT_APP_KEY is not one of the app's function keys/);
    await expect(wrong).rejects.not.toThrow(/not-the-key/);
    await expect(client().request('GET', 'forbidden')).rejects.toBeInstanceOf(AppUnauthorizedError);
  });

  it('404 is AppNotFoundError with the app\'s message; 400 is AppRequestError with the status, code and body', async () => {
    const missing = client().request('GET', 'no/such/route');
    await expect(missing).rejects.toBeInstanceOf(AppNotFoundError);
    await expect(missing).rejects.toThrow(/GET .*\/api\/no\/such\/route: the app answered 404: no route \/api\/no\/such\/route/);
    let thrown: unknown;
    try {
      await client().request('POST', 'bad', { body: { mode: 'x' } });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppRequestError);
    expect(thrown).toMatchObject({ status: 400, code: 'InvalidBody', message: expect.stringMatching(/answered 400: mode: expected plan or apply, found "x"/) as string });
    expect(seen.at(-1)?.body).toBe('{"mode":"x"}');
  });

  it('no answer is AppUnreachableError naming the URL; so is a TLS certificate it cannot verify (no --app-ca): never sent without verification', async () => {
    const port = await closedPort();
    const refused = new AppClient(resolveAppConnection({ app: `http://127.0.0.1:${String(port)}`, key: KEY }, {})).request('GET', 'runs');
    await expect(refused).rejects.toBeInstanceOf(AppUnreachableError);
    await expect(refused).rejects.toThrow(new RegExp(`GET http://127.0.0.1:${String(port)}/api/runs: expected an answer from the app, found none .*is --app right and the app running\\?`));
    const untrusted = client({ ca: false }).request('GET', 'ops/op-1');
    await expect(untrusted).rejects.toBeInstanceOf(AppUnreachableError);
    await expect(untrusted).rejects.toThrow(/certificate|self-signed|issuer/i);
    expect(seen).toEqual([]);
    await expect(new AppClient(resolveAppConnection({ app: server.baseUrl, key: KEY, appCa: join(dir, 'missing.pem') }, {})).request('GET', 'runs')).rejects.toThrow(
      /--app-ca: expected a readable PEM file at .*missing.pem, found ENOENT/,
    );
  });

  it('never sends the key to another origin, even when the app names one as the status URL', async () => {
    const app = client();
    const started = await app.start('elsewhere', {});
    expect(started.statusUrl).toBe('https://attacker.example/api/ops/op-2');
    await expect(app.status(started.statusUrl)).rejects.toThrow(AppClientError);
    await expect(app.follow(started.statusUrl)).rejects.toThrow(/expected a URL of the app https:\/\/127.0.0.1:\d+, found one on https:\/\/attacker.example; not sending the key there/);
    expect(seen.map((entry) => entry.url)).toEqual(['/api/elsewhere']);
  });

  it('raiseEvent POSTs the body to the route', async () => {
    const response = await client().raiseEvent('ops/op-1/approve', { by: 'alice' });
    expect(response.body).toEqual({ approved: true });
    expect(seen).toEqual([expect.objectContaining({ method: 'POST', url: '/api/ops/op-1/approve', body: '{"by":"alice"}' })]);
  });
});

describe('AppClient.follow', () => {
  it('starts, then polls the status URL until done, honouring Retry-After within bounds and reporting progress', async () => {
    script = [
      { status: 200, body: { id: 'op-1', status: 'running', done: false }, headers: { 'retry-after': '1' } },
      { status: 200, body: { id: 'op-1', status: 'running', done: false }, headers: { 'retry-after': '3600' } },
      { status: 200, body: { id: 'op-1', status: 'succeeded', done: true, outcome: 'ok' } },
    ];
    const app = client();
    const started = await app.start('ops', { mode: 'apply' });
    expect(started).toMatchObject({ id: 'op-1', status: 'accepted', done: false, statusUrl: `${server.baseUrl}/api/ops/op-1` });
    const progress: string[] = [];
    const final = await app.follow(started.statusUrl, { intervalMs: 500, onProgress: (status) => progress.push(status.status) });
    expect(final).toMatchObject({ id: 'op-1', status: 'succeeded', done: true, body: { outcome: 'ok' } });
    expect(progress).toEqual(['running', 'running', 'succeeded']);
    const polls = seen.filter((entry) => entry.url === '/api/ops/op-1');
    expect(polls).toHaveLength(3);
    // 1 s as the app asked; then an hour is out of bounds, so the client's own interval (750 ms).
    const gaps = polls.slice(1).map((entry, i) => entry.at - (polls[i]?.at ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(950);
    expect(gaps[1]).toBeGreaterThanOrEqual(700);
    expect(gaps[1]).toBeLessThan(3000);
  });

  it('tries a poll that failed for a passing reason (5xx) again, up to three times in a row, then gives up with the error', async () => {
    script = [
      { status: 503, body: { error: { code: 'NotReady', message: 'warming up' } } },
      { status: 502, body: undefined },
      { status: 200, body: { id: 'op-1', status: 'succeeded', done: true } },
    ];
    await expect(client().follow('ops/op-1', { intervalMs: 500 })).resolves.toMatchObject({ done: true });
    seen = [];
    script = [{ status: 500, body: { error: { code: 'Boom', message: 'the hub is down' } } }];
    await expect(client().follow('ops/op-1', { intervalMs: 500 })).rejects.toThrow(/answered 500: the hub is down/);
    expect(seen).toHaveLength(4);
    seen = [];
    script = [{ status: 404, body: { error: { code: 'RunNotFound', message: 'gone' } } }];
    await expect(client().follow('ops/op-1', { intervalMs: 500 })).rejects.toBeInstanceOf(AppNotFoundError);
    expect(seen).toHaveLength(1);
  });

  it('gives up after maxWaitMs with AppFollowTimeoutError carrying the last status; the work goes on in the app', async () => {
    script = [{ status: 200, body: { id: 'op-1', status: 'running', done: false } }];
    const started = Date.now();
    let thrown: unknown;
    try {
      await client().follow('ops/op-1', { intervalMs: 500, maxWaitMs: 1200 });
    } catch (error) {
      thrown = error;
    }
    expect(Date.now() - started).toBeLessThan(4000);
    expect(thrown).toBeInstanceOf(AppFollowTimeoutError);
    expect((thrown as AppFollowTimeoutError).last).toMatchObject({ id: 'op-1', status: 'running' });
    expect((thrown as Error).message).toMatch(/^op-1: still running after 1 s \(the limit\); it goes on in the app, follow it at /);
  });

  it('stops at once when its signal aborts (Ctrl-C), between polls', async () => {
    script = [{ status: 200, body: { id: 'op-1', status: 'running', done: false }, headers: { 'retry-after': '10' } }];
    const controller = new AbortController();
    const started = Date.now();
    const abortSoon = (): void => {
      setTimeout(() => {
        controller.abort(new Error('interrupted'));
      }, 50);
    };
    const following = client().follow('ops/op-1', { signal: controller.signal, onProgress: abortSoon });
    await expect(following).rejects.toThrow('interrupted');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(seen).toHaveLength(1);
  });
});

describe('followProgress', () => {
  function stream(isTTY: boolean): { stream: NodeJS.WriteStream; written: string[] } {
    const written: string[] = [];
    return { stream: { isTTY, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream, written };
  }

  it('redraws one line on a terminal and clears it at the end; writes nothing to a pipe', () => {
    const tty = stream(true);
    const progress = followProgress('run 1', tty.stream);
    progress.onProgress({ id: '1', status: 'running', done: false, statusUrl: '', body: {} }, 12_000);
    progress.done();
    expect(tty.written).toEqual(['\r\x1b[2Krun 1: running (12 s)', '\r\x1b[2K']);
    const pipe = stream(false);
    const quiet = followProgress('run 1', pipe.stream);
    quiet.onProgress({ id: '1', status: 'running', done: false, statusUrl: '', body: {} }, 12_000);
    quiet.done();
    expect(pipe.written).toEqual([]);
  });

  it('formats durations for people', () => {
    expect([850, 12_000, 200_000, 180_000, 3_900_000, 7_200_000].map(formatDuration)).toEqual(['850 ms', '12 s', '3 min 20 s', '3 min', '1 h 5 min', '2 h']);
  });
});
