import { createHttpHeaders, createPipelineRequest, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { requestBudgetSchema } from '../../../src/config/schema.ts';
import { BudgetRegistry, MAX_BUDGET_WAIT_MS, RequestBudget, RequestBudgetWaitError, type BudgetClock } from '../../../src/azure/request-budget.ts';

/** A clock that only moves when the test advances it; sleepers wake in deadline order. */
class FakeClock implements BudgetClock {
  private current = 1_000_000;
  private timers: { at: number; resolve: () => void }[] = [];

  now(): number {
    return this.current;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timers.push({ at: this.current + ms, resolve });
    });
  }

  /** Advances time step by step, waking sleepers and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    await flush();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.current = Math.max(this.current, next.at);
      next.resolve();
      await flush();
    }
    this.current = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function response(request: PipelineRequest, status: number, headers: Record<string, string> = {}): PipelineResponse {
  return { request, status, headers: createHttpHeaders(headers) };
}

function request(method: 'GET' | 'PUT' | 'DELETE' = 'GET'): PipelineRequest {
  return createPipelineRequest({ url: 'https://management.example/subscriptions/x', method });
}

/** Sends `count` requests through the budget's policy and records when each one was let through. */
function sendMany(
  budget: RequestBudget,
  clock: FakeClock,
  count: number,
  options: { method?: 'GET' | 'PUT' | 'DELETE'; respond?: (index: number, request: PipelineRequest) => Promise<PipelineResponse> | PipelineResponse } = {},
): { sentAt: number[]; done: Promise<PipelineResponse[]> } {
  const policy = budget.policy();
  const sentAt: number[] = [];
  const done = Promise.all(
    Array.from({ length: count }, (_, index) =>
      policy.sendRequest(request(options.method), async (req) => {
        sentAt.push(clock.now());
        return options.respond === undefined ? response(req, 200) : options.respond(index, req);
      }),
    ),
  );
  return { sentAt, done };
}

describe('RequestBudget token buckets', () => {
  it('lets a full burst through at once and then refills at the configured rate', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 5, burst: 5 } }, maxConcurrency: 100, clock });
    const start = clock.now();
    const { sentAt, done } = sendMany(budget, clock, 15);
    await clock.advance(0);
    expect(sentAt).toHaveLength(5);
    await clock.advance(1000);
    expect(sentAt).toHaveLength(10);
    await clock.advance(1000);
    await done;
    expect(sentAt.map((t) => t - start)).toEqual([0, 0, 0, 0, 0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000]);
    const stats = budget.stats();
    expect(stats.requests).toBe(15);
    expect(stats.waits).toBe(10);
    expect(stats.waitedMs).toBe(200 + 400 + 600 + 800 + 1000 + 1200 + 1400 + 1600 + 1800 + 2000);
  });

  it('refills an idle bucket up to its burst and no further', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 2, burst: 4 } }, maxConcurrency: 100, clock });
    const first = sendMany(budget, clock, 4);
    await clock.advance(0);
    await first.done;
    await clock.advance(60_000);
    const start = clock.now();
    const second = sendMany(budget, clock, 6);
    await clock.advance(1000);
    await second.done;
    expect(second.sentAt.map((t) => t - start)).toEqual([0, 0, 0, 0, 500, 1000]);
  });

  it('keeps reads and writes in separate buckets of an ARM budget', async () => {
    const clock = new FakeClock();
    const settings = requestBudgetSchema.parse({ armReadsPerSecond: 1, armReadBurst: 2, armWritesPerSecond: 1, armWriteBurst: 3 });
    const budget = new BudgetRegistry(settings, { clock }).arm('SUB', 'principal');
    const reads = sendMany(budget, clock, 2, { method: 'GET' });
    const writes = sendMany(budget, clock, 3, { method: 'PUT' });
    await clock.advance(0);
    await Promise.all([reads.done, writes.done]);
    expect(reads.sentAt).toHaveLength(2);
    expect(writes.sentAt).toHaveLength(3);
    const extra = sendMany(budget, clock, 1, { method: 'DELETE' });
    await clock.advance(0);
    expect(extra.sentAt).toHaveLength(0);
    await clock.advance(1000);
    await extra.done;
    expect(budget.stats().requestsByClass).toEqual({ read: 2, write: 4 });
  });
});

describe('RequestBudget throttling feedback', () => {
  it('pauses the whole budget for Retry-After after a 429, not just the throttled request', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 100, burst: 100 } }, maxConcurrency: 1, clock });
    const start = clock.now();
    const { sentAt, done } = sendMany(budget, clock, 3, {
      respond: (index, req) => (index === 0 ? response(req, 429, { 'retry-after': '2' }) : response(req, 200)),
    });
    await clock.advance(0);
    expect(sentAt).toHaveLength(1);
    await clock.advance(1999);
    expect(sentAt).toHaveLength(1);
    expect(budget.stats().pausedUntil).toBe(start + 2000);
    await clock.advance(1);
    const responses = await done;
    expect(responses.map((r) => r.status)).toEqual([429, 200, 200]);
    expect(sentAt[1]! - start).toBeGreaterThanOrEqual(2000);
    expect(budget.stats().throttledResponses).toBe(1);
  });

  it('reads retry-after-ms and x-ms-retry-after-ms in milliseconds', async () => {
    for (const header of ['retry-after-ms', 'x-ms-retry-after-ms']) {
      const clock = new FakeClock();
      const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 100, burst: 100 } }, maxConcurrency: 4, clock });
      const start = clock.now();
      const first = sendMany(budget, clock, 1, { respond: (_i, req) => response(req, 429, { [header]: '750' }) });
      await clock.advance(0);
      await first.done;
      const second = sendMany(budget, clock, 1);
      await clock.advance(749);
      expect(second.sentAt).toHaveLength(0);
      await clock.advance(1);
      await second.done;
      expect(second.sentAt[0]! - start).toBe(750);
    }
  });

  it('lowers the rate when the remaining-reads header runs low and restores it when headroom returns', async () => {
    const clock = new FakeClock();
    const settings = requestBudgetSchema.parse({ armReadsPerSecond: 10, armReadBurst: 100 });
    const budget = new BudgetRegistry(settings, { clock }).arm('sub', 'p');
    const low = sendMany(budget, clock, 1, {
      respond: (_i, req) => response(req, 200, { 'x-ms-ratelimit-remaining-subscription-reads': '5' }),
    });
    await clock.advance(0);
    await low.done;
    // 5 left of a 10-token threshold: half the rate, and no more tokens than ARM says remain.
    expect(budget.stats().ratePerSecond.read).toBe(5);
    expect(budget.stats().rateReductions).toBe(1);
    const start = clock.now();
    const burst = sendMany(budget, clock, 7);
    await clock.advance(0);
    expect(burst.sentAt).toHaveLength(5);
    await clock.advance(400);
    await burst.done;
    expect(burst.sentAt.slice(5).map((t) => t - start)).toEqual([200, 400]);
    const healthy = sendMany(budget, clock, 1, {
      respond: (_i, req) => response(req, 200, { 'x-ms-ratelimit-remaining-subscription-reads': '11999' }),
    });
    await clock.advance(200);
    await healthy.done;
    expect(budget.stats().ratePerSecond.read).toBe(10);
  });

  it('lowers the write rate on a low remaining-deletes header', async () => {
    const clock = new FakeClock();
    const settings = requestBudgetSchema.parse({ armWritesPerSecond: 10, armWriteBurst: 200 });
    const budget = new BudgetRegistry(settings, { clock }).arm('sub', 'p');
    const sent = sendMany(budget, clock, 1, {
      method: 'DELETE',
      respond: (_i, req) => response(req, 200, { 'x-ms-ratelimit-remaining-subscription-deletes': '0' }),
    });
    await clock.advance(0);
    await sent.done;
    expect(budget.stats().ratePerSecond.write).toBe(1);
    expect(budget.stats().ratePerSecond.read).toBe(25);
  });
});

describe('RequestBudget concurrency', () => {
  it('never has more requests in flight than maxConcurrency and serves waiters in order', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 1000, burst: 1000 } }, maxConcurrency: 3, clock });
    const gates: (() => void)[] = [];
    const order: number[] = [];
    let inFlight = 0;
    let peak = 0;
    const { done } = sendMany(budget, clock, 8, {
      respond: (index, req) =>
        new Promise<PipelineResponse>((resolve) => {
          inFlight += 1;
          peak = Math.max(peak, inFlight);
          order.push(index);
          gates.push(() => {
            inFlight -= 1;
            resolve(response(req, 200));
          });
        }),
    });
    await clock.advance(0);
    expect(order).toEqual([0, 1, 2]);
    while (gates.length > 0) {
      gates.shift()!();
      await clock.advance(0);
    }
    await done;
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(3);
    expect(budget.stats().peakInFlight).toBe(3);
    expect(budget.stats().inFlight).toBe(0);
  });

  it('gives the slot back when the request fails', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 1000, burst: 1000 } }, maxConcurrency: 1, clock });
    const policy = budget.policy();
    await expect(
      policy.sendRequest(request(), () => Promise.reject(new Error('socket hang up'))),
    ).rejects.toThrow('socket hang up');
    expect(budget.stats().inFlight).toBe(0);
    const ok = await policy.sendRequest(request(), (req) => Promise.resolve(response(req, 200)));
    expect(ok.status).toBe(200);
  });
});

describe('RequestBudget wait bound', () => {
  it('fails a request that waited maxWaitMs for a concurrency slot, typed, and sends nothing', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('arm:sub', { buckets: { all: { ratePerSecond: 100, burst: 100 } }, maxConcurrency: 1, clock, maxWaitMs: 1000 });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const policy = budget.policy();
    const first = policy.sendRequest(request(), async (req) => {
      await held;
      return response(req, 200);
    });
    let sent = false;
    const second = policy.sendRequest(request(), (req) => {
      sent = true;
      return Promise.resolve(response(req, 200));
    });
    const outcome = second.catch((e: unknown) => e);
    await clock.advance(999);
    expect(sent).toBe(false);
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(RequestBudgetWaitError);
    expect((error as Error).message).toMatch(/^request budget arm:sub \(all\): expected a slot and a token within 1000 ms, found none after 1000 ms/);
    expect(sent).toBe(false);
    finish();
    expect((await first).status).toBe(200);
    // The slot came back: the budget serves the next request at once.
    const third = sendMany(budget, clock, 1);
    await clock.advance(0);
    expect(third.sentAt).toHaveLength(1);
  });

  it('fails a request that waited maxWaitMs for a token', async () => {
    const clock = new FakeClock();
    const budget = new RequestBudget('t', { buckets: { all: { ratePerSecond: 0.001, burst: 1 } }, maxConcurrency: 10, clock, maxWaitMs: 2000 });
    const { sentAt, done } = sendMany(budget, clock, 2);
    const outcome = done.catch((e: unknown) => e);
    await clock.advance(2000);
    expect(sentAt).toHaveLength(1);
    expect(await outcome).toBeInstanceOf(RequestBudgetWaitError);
  });

  it('defaults to five minutes, half of host.json’s functionTimeout', () => {
    expect(MAX_BUDGET_WAIT_MS).toBe(300_000);
    expect(new RequestBudget('t', { buckets: { all: { ratePerSecond: 1, burst: 1 } }, maxConcurrency: 1 }).maxWaitMs).toBe(MAX_BUDGET_WAIT_MS);
  });
});

describe('BudgetRegistry', () => {
  it('hands out the same budget for the same key and separate ones per key', () => {
    const registry = new BudgetRegistry(requestBudgetSchema.parse({}));
    expect(registry.arm('SUB-1', 'p')).toBe(registry.arm('sub-1', 'p'));
    expect(registry.arm('sub-1', 'p')).not.toBe(registry.arm('sub-2', 'p'));
    expect(registry.arm('sub-1', 'p')).not.toBe(registry.arm('sub-1', 'other'));
    expect(registry.acr('crA')).toBe(registry.acr('cra'));
    expect(registry.acr('cra')).not.toBe(registry.acr('crb'));
    expect(registry.keyVault('kv-a')).not.toBe(registry.keyVault('kv-b'));
    expect(registry.all().map((b) => b.key).sort()).toEqual(
      ['acr:cra', 'acr:crb', 'arm:sub-1:other', 'arm:sub-1:p', 'arm:sub-2:p', 'keyvault:kv-a', 'keyvault:kv-b'].sort(),
    );
  });

  it('throttles one registry without slowing another', async () => {
    const clock = new FakeClock();
    const registry = new BudgetRegistry(requestBudgetSchema.parse({ acrPerSecond: 1, acrBurst: 1 }), { clock });
    const a = sendMany(registry.acr('a'), clock, 2);
    const b = sendMany(registry.acr('b'), clock, 1);
    await clock.advance(0);
    expect(a.sentAt).toHaveLength(1);
    expect(b.sentAt).toHaveLength(1);
    await clock.advance(1000);
    await Promise.all([a.done, b.done]);
    expect(a.sentAt).toHaveLength(2);
  });

  it('uses the Key Vault settings for vault budgets', () => {
    const registry = new BudgetRegistry(requestBudgetSchema.parse({ keyVaultPerSecond: 7, keyVaultBurst: 9 }));
    expect(registry.keyVault('kv').stats().ratePerSecond).toEqual({ all: 7 });
  });

  it('rejects a budget that could never let a request through', () => {
    expect(() => new RequestBudget('bad', { buckets: { all: { ratePerSecond: 0, burst: 1 } }, maxConcurrency: 1 })).toThrow(
      /expected bucket all to have a positive rate/,
    );
  });
});

describe('storage budget as an HttpClient decorator', () => {
  it('pauses the account budget on 503 Server Busy with Retry-After, like a 429', async () => {
    const clock = new FakeClock();
    const registry = new BudgetRegistry(requestBudgetSchema.parse({ maxConcurrency: 1 }), { clock });
    const budget = registry.storage('StAccount');
    expect(registry.storage('staccount')).toBe(budget);
    const start = clock.now();
    const sentAt: number[] = [];
    const client = budget.httpClient({
      sendRequest: (req) => {
        sentAt.push(clock.now());
        return Promise.resolve(sentAt.length === 1 ? response(req, 503, { 'retry-after': '2' }) : response(req, 201));
      },
    });
    const done = Promise.all([client.sendRequest(request('PUT')), client.sendRequest(request('PUT')), client.sendRequest(request('GET'))]);
    await clock.advance(1999);
    expect(sentAt).toEqual([start]);
    expect(budget.stats().pausedUntil).toBe(start + 2000);
    await clock.advance(1);
    expect((await done).map((r) => r.status)).toEqual([503, 201, 201]);
    expect(sentAt.slice(1).every((at) => at >= start + 2000)).toBe(true);
    expect(budget.stats()).toMatchObject({ key: 'storage:staccount', requests: 3, throttledResponses: 1 });
  });

  it('does not pause ARM budgets on 503 (ARM throttles with 429 only)', async () => {
    const clock = new FakeClock();
    const budget = new BudgetRegistry(requestBudgetSchema.parse({}), { clock }).arm('sub', 'p');
    await budget.httpClient({ sendRequest: (req) => Promise.resolve(response(req, 503, { 'retry-after': '5' })) }).sendRequest(request());
    expect(budget.stats()).toMatchObject({ throttledResponses: 0, pausedUntil: undefined });
  });
});
