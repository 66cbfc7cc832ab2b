/**
 * The cap on server-supplied delays, tested the way azure-sdk-for-js tests its own retry
 * bounds (core-rest-pipeline's throttlingRetryPolicy.spec.ts): the SDK's real retry policy in a
 * pipeline, a mocked `next`, fake timers, and `Date.now()` read after the retry to see exactly
 * how long it waited. The budget policy sits inside the retry loop as the client layer puts it.
 * At the cap the SDK waits exactly what was asked; above it the request fails at once, typed,
 * without a single timer left pending.
 */
import { readFileSync } from 'node:fs';
import {
  createEmptyPipeline,
  createHttpHeaders,
  createPipelineRequest,
  defaultRetryPolicy,
  type PipelineRequest,
  type PipelineResponse,
  type SendRequest,
} from '@azure/core-rest-pipeline';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ServerDelayAboveCapError, serverDelays, toAzureError, TransientAzureError } from '../../../src/azure/errors.ts';
import { MAX_SERVER_DELAY_MS, RequestBudget } from '../../../src/azure/request-budget.ts';

const RESOURCE = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Web/sites/app';

function budget(): RequestBudget {
  return new RequestBudget('arm:test', { buckets: { all: { ratePerSecond: 25, burst: 250 } }, maxConcurrency: 4 });
}

/** The SDK's default retry policy (throttling + exponential + system errors), then the budget, then `next`. */
function send(request: PipelineRequest, next: SendRequest, requestBudget = budget()): Promise<PipelineResponse> {
  const pipeline = createEmptyPipeline();
  pipeline.addPolicy(defaultRetryPolicy(), { phase: 'Retry' });
  pipeline.addPolicy(requestBudget.policy(), { afterPhase: 'Retry' });
  return pipeline.sendRequest({ sendRequest: next }, request);
}

function respond(request: PipelineRequest, status: number, headers: Record<string, string> = {}): PipelineResponse {
  return { request, status, headers: createHttpHeaders(headers) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('server-supplied delays at the cap are honoured exactly', () => {
  const atCap: Record<string, string>[] = [{ 'Retry-After': String(MAX_SERVER_DELAY_MS / 1000) }, { 'retry-after-ms': String(MAX_SERVER_DELAY_MS) }, { 'x-ms-retry-after-ms': String(MAX_SERVER_DELAY_MS) }];
  for (const headers of atCap) {
    it(`(${Object.keys(headers)[0] ?? ''}) waits the asked-for ${MAX_SERVER_DELAY_MS} ms on a 429, then retries`, async () => {
      vi.useFakeTimers({ now: 0 });
      const request = createPipelineRequest({ url: `https://management.example${RESOURCE}?api-version=2024-04-01` });
      const next = vi.fn<SendRequest>();
      next.mockResolvedValueOnce(respond(request, 429, headers));
      next.mockResolvedValueOnce(respond(request, 200));
      const promise = send(request, next);
      await vi.advanceTimersByTimeAsync(0);
      expect(next).toHaveBeenCalledOnce();
      await vi.advanceTimersToNextTimerAsync();
      expect(Date.now()).toBe(MAX_SERVER_DELAY_MS);
      await vi.advanceTimersByTimeAsync(0);
      expect(next).toHaveBeenCalledTimes(2);
      expect((await promise).status).toBe(200);
    });
  }

  it('retries at once for a Retry-After date in the past', async () => {
    vi.useFakeTimers({ now: new Date('Wed, 21 Oct 2015 07:30:00 GMT') });
    const request = createPipelineRequest({ url: `https://management.example${RESOURCE}` });
    const next = vi.fn<SendRequest>();
    next.mockResolvedValueOnce(respond(request, 503, { 'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT' }));
    next.mockResolvedValueOnce(respond(request, 200));
    const promise = send(request, next);
    await vi.advanceTimersToNextTimerAsync();
    expect((await promise).status).toBe(200);
    expect(Date.now()).toBe(Date.parse('Wed, 21 Oct 2015 07:30:00 GMT'));
  });
});

describe('server-supplied delays above the cap fail the request at once', () => {
  const aboveCap: { headers: Record<string, string>; status: number; asked: number }[] = [
    { headers: { 'Retry-After': '86400' }, status: 429, asked: 86_400_000 },
    { headers: { 'retry-after-ms': String(MAX_SERVER_DELAY_MS + 1) }, status: 429, asked: MAX_SERVER_DELAY_MS + 1 },
    { headers: { 'x-ms-retry-after-ms': '3600000' }, status: 503, asked: 3_600_000 },
    // The SDK reads `Number('1e6')`: a million seconds, though it looks like one.
    { headers: { 'Retry-After': '1e6' }, status: 429, asked: 1e9 },
    // An LRO's 202 with an hour-long poll interval: core-lro would sleep for it.
    { headers: { 'Retry-After': '3600' }, status: 202, asked: 3_600_000 },
  ];
  for (const { headers, status, asked } of aboveCap) {
    const [name, value] = Object.entries(headers)[0] ?? ['', ''];
    it(`(${name}: ${value} on ${status}) throws ServerDelayAboveCapError naming the resource and the delay, without waiting`, async () => {
      vi.useFakeTimers({ now: 0 });
      const request = createPipelineRequest({ url: `https://management.example${RESOURCE}?api-version=2024-04-01&sig=secret`, method: status === 202 ? 'POST' : 'GET' });
      const next = vi.fn<SendRequest>();
      next.mockResolvedValueOnce(respond(request, status, { ...headers, 'x-ms-request-id': 'req-1' }));
      next.mockResolvedValueOnce(respond(request, 200));
      const requestBudget = budget();
      const error = await send(request, next, requestBudget).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServerDelayAboveCapError);
      expect(error).toBeInstanceOf(TransientAzureError);
      const typed = error as ServerDelayAboveCapError;
      expect(typed.resourceId).toBe(RESOURCE);
      expect(typed.askedDelayMs).toBe(asked);
      expect(typed.capMs).toBe(MAX_SERVER_DELAY_MS);
      expect(typed.statusCode).toBe(status);
      expect(typed.requestId).toBe('req-1');
      expect(typed.message).toContain(`${name === 'Retry-After' ? 'Retry-After' : name}: ${value}`);
      expect(typed.message).toContain('expected a server-supplied delay of at most 60 s');
      expect(typed.message).not.toContain('secret');
      if (status === 202) expect(typed.message).toContain('the operation may still be running');
      // Not one attempt more, not one millisecond waited, no timer left behind.
      expect(next).toHaveBeenCalledOnce();
      expect(Date.now()).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      // A 429 still pauses the budget, but only for the cap.
      if (status === 429) expect(requestBudget.stats().pausedUntil).toBe(MAX_SERVER_DELAY_MS);
    });
  }

  it('reads a Retry-After date 24 hours ahead as 24 hours', async () => {
    vi.useFakeTimers({ now: new Date('Wed, 21 Oct 2015 07:28:00 GMT') });
    const request = createPipelineRequest({ url: `https://myvault.vault.example/secrets/x?api-version=7.5` });
    const next = vi.fn<SendRequest>();
    next.mockResolvedValueOnce(respond(request, 429, { 'Retry-After': 'Thu, 22 Oct 2015 07:28:00 GMT' }));
    const error = await send(request, next).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerDelayAboveCapError);
    expect((error as ServerDelayAboveCapError).askedDelayMs).toBe(86_400_000);
    // A data-plane resource is named by host and path.
    expect((error as ServerDelayAboveCapError).resourceId).toBe('myvault.vault.example/secrets/x');
    expect((error as ServerDelayAboveCapError).message).toContain('(24 h)');
  });

  it('toAzureError names the caller’s resource and operation instead of the URL', () => {
    const raised = new ServerDelayAboveCapError(
      { resourceId: 'management.example/x', operation: 'GET request' },
      { statusCode: 429, requestId: undefined, delay: { header: 'retry-after', value: '86400', ms: 86_400_000 }, capMs: MAX_SERVER_DELAY_MS, request: { method: 'GET', url: 'https://management.example/x' } },
    );
    const mapped = toAzureError(raised, { resourceId: RESOURCE, operation: 'get web app' });
    expect(mapped).toBeInstanceOf(ServerDelayAboveCapError);
    expect(mapped.message).toMatch(/^get web app on \/subscriptions\/.* failed: expected a server-supplied delay of at most 60 s, found HTTP 429 with Retry-After: 86400 \(24 h\); not waiting$/);
  });

  it('takes the longest of all the headers, since the SDK and core-lro each read their own', () => {
    const get = (values: Record<string, string>) => (name: string) => values[name];
    const delays = serverDelays(get({ 'retry-after-ms': '10', 'retry-after': '86400' }));
    expect(delays.map((d) => d.ms)).toEqual([10, 86_400_000]);
    // core-lro reads parseInt('60abc') as 60 s.
    expect(serverDelays(get({ 'retry-after': '60abc' }))[0]?.ms).toBe(60_000);
    expect(serverDelays(get({ 'retry-after': 'soon' }))).toEqual([]);
  });

  it('honours the caller’s abort signal while the budget is paused', async () => {
    const requestBudget = budget();
    const first = createPipelineRequest({ url: `https://management.example${RESOURCE}` });
    requestBudget.observe('all', 429, (name) => (name === 'retry-after' ? '50' : undefined));
    const request = createPipelineRequest({ url: `https://management.example${RESOURCE}`, abortSignal: AbortSignal.timeout(100) });
    const next = vi.fn<SendRequest>().mockResolvedValue(respond(first, 200));
    const started = Date.now();
    await expect(requestBudget.policy().sendRequest(request, next)).rejects.toThrow(/aborted/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(next).not.toHaveBeenCalled();
  });
});

describe('the cap against the Functions timeout', () => {
  it('the SDK’s three retries at the cap take at most half of host.json’s functionTimeout, and the cap is below the SDK’s own 64 s back-off ceiling', () => {
    const host = JSON.parse(readFileSync(new URL('../../../host.json', import.meta.url), 'utf8')) as { functionTimeout?: string };
    const [h, m, s] = (host.functionTimeout ?? '').split(':').map(Number);
    const functionTimeoutMs = (((h ?? 0) * 60 + (m ?? 0)) * 60 + (s ?? 0)) * 1000;
    expect(functionTimeoutMs).toBeGreaterThan(0);
    expect(3 * MAX_SERVER_DELAY_MS).toBeLessThanOrEqual(functionTimeoutMs / 2);
    // core-rest-pipeline's DEFAULT_CLIENT_MAX_RETRY_INTERVAL (exponentialRetryStrategy).
    expect(MAX_SERVER_DELAY_MS).toBeLessThanOrEqual(64_000);
  });
});
