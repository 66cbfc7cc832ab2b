/**
 * The status page IN A REAL BROWSER (issue 12): Debian's headless Chromium driven by
 * playwright-core (`executablePath`, never a downloaded browser) loads `GET /api/status/page`
 * from the local host against the kilometers sandbox world. With the planted problems it shows
 * NO-GO with each critical item failing and its evidence linking run records that open; after the
 * problems are fixed in the sandbox (a recorded drill, the retention raised, new secret versions
 * with an expiry, the disabled alert rule enabled) it shows GO. Every chart has its table, the
 * page has no script and loads nothing from elsewhere, the filters work without JavaScript, and
 * the page, the API and the CLI (`status --json`, exit 3 then 0) agree. Screenshots go to test-artifacts/status/ (gitignored).
 *
 * A missing Chromium fails this test: install Debian's `chromium` package (`.ci/run` does).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EstateStatus } from '../../../src/status/model.ts';
import { cli } from '../../support/cli.ts';
import { STATUS_KEYS, useStatusWorld } from '../../support/status-world.ts';

const ARTIFACTS = 'test-artifacts/status';
const world = useStatusWorld();
let browser: Browser;
let page: Page;

/** Debian's Chromium: CHROMIUM_PATH, else `chromium` on the PATH. Never skipped when absent. */
function chromiumPath(): string {
  const configured = process.env.CHROMIUM_PATH;
  if (configured !== undefined && configured !== '') return configured;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('expected Debian\'s chromium on the PATH (apt-get install -y chromium, as .ci/run does), found none: the browser test cannot run');
  }
}

beforeAll(async () => {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) throw new Error(`expected Chromium at ${executablePath}, found nothing`);
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const context = await browser.newContext({ extraHTTPHeaders: { 'x-functions-key': STATUS_KEYS.function }, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);
afterAll(async () => {
  await browser.close();
});

/** `ops-autopilot status --config <file> --json`: its exit code and the decision and verdicts it printed. */
async function cliVerdicts(): Promise<{ code: number | null; decision: string; items: Record<string, string> }> {
  const run = await cli(['status', '--config', world.configFile(), '--json'], { timeoutMs: 120_000 });
  const body = JSON.parse(run.stdout) as EstateStatus;
  return { code: run.code, decision: body.decision, items: Object.fromEntries(body.items.map((item) => [item.id, item.verdict])) };
}

async function api(): Promise<EstateStatus> {
  const res = await fetch(`${world.host().baseUrl}/api/status`, { headers: { 'x-functions-key': STATUS_KEYS.function } });
  return (await res.json()) as EstateStatus;
}

/** What the DOM says: the decision and each item's verdict. */
async function domVerdicts(): Promise<{ decision: string | null; items: Record<string, string | null> }> {
  const decision = await page.locator('[data-decision]').getAttribute('data-decision');
  const items: Record<string, string | null> = {};
  for (const section of await page.locator('section[data-item]').all()) items[(await section.getAttribute('data-item')) ?? ''] = await section.getAttribute('data-verdict');
  return { decision, items };
}

async function checkCharts(): Promise<void> {
  const charts = await page.locator('figure[data-chart]').all();
  expect(charts.length).toBe(4);
  for (const figure of charts) {
    const id = await figure.getAttribute('data-chart');
    // A real table of the chart's data, with a caption and headers, inside the same figure.
    const table = figure.locator(`table[data-chart-table="${id ?? ''}"]`);
    expect(await table.count(), `chart ${id ?? ''} has its table`).toBe(1);
    expect(await table.locator('caption').count()).toBe(1);
    expect(await table.locator('thead th').count()).toBeGreaterThanOrEqual(2);
    expect(await figure.locator('h3').count()).toBe(1);
  }
}

describe('the status page in Chromium (kilometers world)', () => {
  it('refuses a browser without the function key', async () => {
    const context = await browser.newContext();
    // Chromium shows an empty 401 as a navigation error; the browser's own request client says the status.
    const response = await context.request.get(`${world.host().baseUrl}/api/status/page`);
    expect(response.status()).toBe(401);
    await context.close();
  });

  it('shows NO-GO with the planted problems, verdicts and evidence links in the DOM, every chart with its table', async () => {
    await world.plant();
    const response = await page.goto(`${world.host().baseUrl}/api/status/page`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");
    await page.screenshot({ path: `${ARTIFACTS}/no-go.png`, fullPage: true });
    const { decision, items } = await domVerdicts();
    expect(decision).toBe('no-go');
    expect(await page.locator('[data-decision]').innerText()).toMatch(/^NO-GO/);
    expect(items).toEqual({ backups: 'fail', 'restore-drill': 'fail', alerts: 'fail', secrets: 'fail', cleanups: expect.any(String) as unknown, remediations: 'pass' });
    // Each verdict is written out, not only coloured.
    expect(await page.locator('#item-alerts .verdict').innerText()).toBe('FAIL');
    expect(await page.locator('#item-alerts .reasons').innerText()).toContain('opsap-asp-kilometers-prod-k7x2-memory for MemoryPercentage of asp-kilometers-prod-k7x2 exists but is disabled');
    expect(await page.locator('#item-backups .reasons').innerText()).toContain('keeps backups for 3 days, fewer than the 7 promised');
    expect(await page.locator('#item-restore-drill .reasons').innerText()).toContain('no restore drill in the last 7 days');
    // Evidence links open the run record they name.
    const link = page.locator('#item-backups a[data-run-link]').first();
    const runId = await link.getAttribute('data-run-link');
    const href = await link.getAttribute('href');
    expect(href).toBe(`${world.host().baseUrl}/api/runs/${runId ?? ''}`);
    const record = await page.request.get(href ?? '');
    expect(record.status()).toBe(200);
    expect(((await record.json()) as { runId?: string; record?: { runId?: string } }).record?.runId ?? ((await record.json()) as { runId?: string }).runId).toBe(runId);
    await checkCharts();
    // No script, and nothing loaded from anywhere else.
    const html = await page.content();
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)="https?:\/\/(?!127\.0\.0\.1)/);
    // The page and the API agree.
    const body = await api();
    expect(body.decision).toBe(decision);
    expect(Object.fromEntries(body.items.map((item) => [item.id, item.verdict]))).toEqual(items);
    // And the CLI: exit 3 for no-go, the same verdicts; its text names the blocking reasons.
    expect(await cliVerdicts()).toEqual({ code: 3, decision: 'no-go', items });
    const text = await cli(['status', '--config', world.configFile()], { timeoutMs: 120_000 });
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^estate kilometers: NO-GO/);
    expect(text.stdout).toContain('FAIL  Alerts (critical): metric alert rule opsap-asp-kilometers-prod-k7x2-memory');
  }, 180_000);

  it('filters the recent runs with query parameters, without JavaScript', async () => {
    await page.selectOption('select[name="runbook"]', 'secret-expiry');
    await Promise.all([page.waitForURL(/runbook=secret-expiry/), page.click('form.filters button[type="submit"]')]);
    const runbooks = await page.locator('table.runs tbody tr[data-run] td:nth-child(2)').allInnerTexts();
    expect(runbooks.length).toBeGreaterThan(0);
    expect(new Set(runbooks)).toEqual(new Set(['secret-expiry']));
    expect(await page.locator('select[name="runbook"]').inputValue()).toBe('secret-expiry');
  });

  it('shows GO once the problems are fixed in the sandbox, with the drill on the RTO/RPO chart', async () => {
    await world.fix();
    await page.goto(`${world.host().baseUrl}/api/status/page`);
    await page.screenshot({ path: `${ARTIFACTS}/go.png`, fullPage: true });
    const { decision, items } = await domVerdicts();
    expect(decision).toBe('go');
    expect(await page.locator('[data-decision]').innerText()).toMatch(/^GO/);
    for (const id of ['backups', 'restore-drill', 'alerts', 'secrets']) expect(items[id], id).toBe('pass');
    const drillLink = page.locator('#item-restore-drill a[data-run-link]');
    expect(await drillLink.getAttribute('data-run-link')).toBe('3c7f1c7e-5d2a-4f7e-9a55-1a2b3c4d5e6f');
    await checkCharts();
    const drillRows = await page.locator('table[data-chart-table="chart-drills"] tbody tr').allInnerTexts();
    expect(drillRows).toHaveLength(1);
    expect(drillRows[0]).toMatch(/22\.0 min\s+45 s\s+60\.0 min\s+15\.0 min/);
    expect(await page.locator('figure[data-chart="chart-drills"] svg[role="img"]').count()).toBe(1);
    const body = await api();
    expect(body.decision).toBe('go');
    expect(Object.fromEntries(body.items.map((item) => [item.id, item.verdict]))).toEqual(items);
    expect(await cliVerdicts()).toEqual({ code: 0, decision: 'go', items });
  }, 180_000);
});
