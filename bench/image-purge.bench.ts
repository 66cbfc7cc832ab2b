/**
 * Benchmark (not a test): `image-purge` on 10,000 tags across 200 repositories
 * (`sandbox/worlds/bench/acr-bench.yaml`), sandbox latency 50 ms per request, sandbox ACR
 * throttling at the Premium write limit (2,000 WriteOps per minute = 33.3/s), client ACR budget
 * at the same rate.
 *
 * Three runs, each on a fresh sandbox: budgeted runs (maxConcurrency 8, applying with the
 * runbook's `applyConcurrency` hint) with the client budget at the limit and at 90% of it, and a
 * sequential baseline (maxConcurrency 1, one call at a time, budget at the limit). Each plans the whole registry (keep 5 per repository → 9,000
 * deletions) and applies the first `--apply N` deletions (default 1,000; `--apply all` for
 * every one, which takes ~5 min budgeted and ~9 min sequential). Prints tags deleted per
 * second against the limit's ceiling and against the baseline, and the peak RSS of the process
 * (which also hosts the sandbox).
 *
 * Run: `npm run bench` (= `tsx bench/image-purge.bench.ts`). Stops by itself: a watchdog ends
 * the process after `--max-seconds` (default 420).
 */
import { loadConfigFile } from '../src/config/load.ts';
import type { EstateConfig, RequestBudgetSettings } from '../src/config/schema.ts';
import { createAzureClients } from '../src/azure/clients.ts';
import { imagePurgeRunbook } from '../src/runbooks/image-purge.ts';
import type { RunbookContext } from '../src/runbooks/runbook.ts';
import { memoryLogger } from '../src/runs/run-log.ts';
import { startSandbox } from '../sandbox/index.ts';
import { applyActions, purgeAllButNewest } from '../test/support/runbook-context.ts';

/** Azure Container Registry Premium: 2,000 write operations per minute (documented SKU limit). */
const PREMIUM_WRITES_PER_SECOND = 2000 / 60;
const LATENCY_MS = 50;
const KEEP = 5;
const WORLD = 'sandbox/worlds/bench/acr-bench.yaml';

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const applyArgument = argument('apply', '1000');
const maxSeconds = Number(argument('max-seconds', '420'));

let peakRss = 0;
const sampleRss = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const sampler = setInterval(sampleRss, 250);
sampler.unref();

// A benchmark must end by itself, even if the sandbox or a request hangs.
const watchdog = setTimeout(() => {
  console.error(`bench: stopped by the watchdog after ${String(maxSeconds)} s`);
  process.exit(2);
}, maxSeconds * 1000);
watchdog.unref();

interface RunResult {
  readonly label: string;
  readonly maxConcurrency: number;
  readonly planSeconds: number;
  readonly planRequests: number;
  readonly planned: number;
  readonly applied: number;
  readonly applySeconds: number;
  readonly tagsPerSecond: number;
  readonly sandboxThrottled: number;
  readonly planThrottled: number;
  readonly planBudgetRequests: number;
  readonly peakInFlight: number;
}

async function run(label: string, maxConcurrency: number, budgetFraction = 1): Promise<RunResult> {
  const sandbox = await startSandbox({
    worlds: [WORLD],
    latencyMs: LATENCY_MS,
    postgres: false,
    azurite: false,
    throttling: { acrPerSecond: PREMIUM_WRITES_PER_SECOND, acrBurst: Math.floor(PREMIUM_WRITES_PER_SECOND) },
  });
  try {
    const world = sandbox.worlds[0];
    if (world === undefined) throw new Error(`bench: expected the world ${WORLD} to load, found none`);
    const loaded = await loadConfigFile(world.configFile);
    const budget: RequestBudgetSettings = {
      ...loaded.azure.requestBudget,
      acrPerSecond: PREMIUM_WRITES_PER_SECOND * budgetFraction,
      acrBurst: Math.floor(PREMIUM_WRITES_PER_SECOND * budgetFraction),
      maxConcurrency,
    };
    const config: EstateConfig = {
      ...loaded,
      azure: { ...loaded.azure, requestBudget: budget },
      targets: loaded.targets.map((target) => ({
        ...target,
        runbooks: { 'image-purge': purgeAllButNewest(['bench/.*'], KEEP) },
      })),
    };
    const clients = createAzureClients(config.azure);
    const context: RunbookContext = { config, clients, logger: memoryLogger(), now: () => new Date() };
    const target = config.targets[0];
    const policy = target === undefined ? undefined : imagePurgeRunbook.policyOf(target);
    if (target === undefined || policy === undefined) throw new Error('bench: expected the registry target with an image-purge policy, found none');

    const planStart = performance.now();
    const plan = await imagePurgeRunbook.plan(context, target, policy);
    const planSeconds = (performance.now() - planStart) / 1000;
    const planLog = (await sandbox.requests()).filter((entry) => entry.host === 'acr');
    const planBudgetRequests = clients.budgets.acr('crbench').stats().requests;
    sampleRss();

    const actions = applyArgument === 'all' ? plan.actions : plan.actions.slice(0, Number(applyArgument));
    await sandbox.clearRequests();
    const width = Math.min(imagePurgeRunbook.applyConcurrency?.(context, target) ?? 1, maxConcurrency);
    const applyStart = performance.now();
    const outcomes = await applyActions(imagePurgeRunbook, context, target, policy, actions, width);
    const applySeconds = (performance.now() - applyStart) / 1000;
    const applied = outcomes.filter((outcome) => outcome === 'applied').length;
    const log = await sandbox.requests();
    sampleRss();
    await clients.close();
    return {
      label,
      maxConcurrency,
      planSeconds,
      planRequests: planLog.length,
      planThrottled: planLog.filter((entry) => entry.throttled).length,
      planBudgetRequests,
      planned: plan.actions.length,
      applied,
      applySeconds,
      tagsPerSecond: applied / applySeconds,
      sandboxThrottled: log.filter((entry) => entry.throttled).length,
      peakInFlight: clients.budgets.acr('crbench').stats().peakInFlight,
    };
  } finally {
    await sandbox.stop();
  }
}

const fixed = (value: number, digits = 1): string => value.toFixed(digits);

const budgeted = await run('budget = limit, 8 in flight', 8);
const underLimit = await run('budget = 90% of limit, 8 in flight', 8, 0.9);
const sequential = await run('sequential baseline (1 in flight)', 1);
sampleRss();
const usage = process.resourceUsage();
const peakRssMb = Math.max(peakRss, usage.maxRSS * 1024) / (1024 * 1024);

const rows = [budgeted, underLimit, sequential].map((result) => [
  result.label,
  String(result.maxConcurrency),
  fixed(result.planSeconds),
  `${String(result.planRequests)}/${String(result.planBudgetRequests)}/${String(result.planThrottled)}`,
  String(result.planned),
  String(result.applied),
  fixed(result.applySeconds),
  fixed(result.tagsPerSecond),
  `${fixed((result.tagsPerSecond / PREMIUM_WRITES_PER_SECOND) * 100, 0)}%`,
  `${fixed(result.tagsPerSecond / sequential.tagsPerSecond, 2)}x`,
  String(result.sandboxThrottled),
  String(result.peakInFlight),
]);
const header = ['run', 'maxConc', 'plan s', 'plan req log/budget/429', 'planned', 'deleted', 'apply s', 'tags/s', 'of ceiling', 'vs baseline', 'apply 429', 'peak in flight'];
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ');
console.log(`image-purge benchmark — ${WORLD}: 10,000 tags / 200 repositories, keep ${String(KEEP)}; latency ${String(LATENCY_MS)} ms/request;`);
console.log(`ACR limit and client budget ${fixed(PREMIUM_WRITES_PER_SECOND, 2)} ops/s (Premium 2,000 WriteOps/min); applied ${applyArgument} deletion(s) per run`);
console.log(line(header));
console.log(widths.map((width) => '-'.repeat(width)).join('-|-'));
for (const row of rows) console.log(line(row));
console.log(`ceiling ${fixed(PREMIUM_WRITES_PER_SECOND, 2)} tags/s; peak RSS ${fixed(peakRssMb, 0)} MB (process incl. in-process sandbox); node ${process.version}`);
clearTimeout(watchdog);
