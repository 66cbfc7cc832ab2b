/**
 * Fail fast on bad settings, THROUGH THE LOCAL HOST: at app start the `appStart` hook logs every
 * problem of the app settings and the estate configuration at once; `GET /api/ready` (function
 * key) answers 503 with the problems (setting names, field paths, lines, no secrets) until they
 * are fixed and 200 with a short summary once they are; `GET /api/health` stays anonymous and
 * says nothing about the estate; a timer fails with the same message as the log and the endpoint.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';

const keys = { master: 'ready-master-key', function: 'ready-function-key' };
const CANARY = 'CANARY-4d1f0e-do-not-print';
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ready-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Started {
  readonly host: LocalHost;
  /** What the app wrote to the console while it started (the appStart hook). */
  readonly startLog: { readonly errors: string[]; readonly logs: string[] };
}

const hosts: LocalHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.stop()));
});

/** Starts the real app entry point with these settings, capturing the console during start-up. */
async function start(settings: Record<string, string>): Promise<Started> {
  const errors: string[] = [];
  const logs: string[] = [];
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    errors.push(args.map(String).join(' '));
  });
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    logs.push(args.map(String).join(' '));
  });
  try {
    const host = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, clock: new VirtualClock(new Date('2026-03-02T06:00:00Z')), keys, settings, enableTimers: false });
    hosts.push(host);
    return { host, startLog: { errors, logs } };
  } finally {
    error.mockRestore();
    log.mockRestore();
  }
}

interface NotReadyBody {
  status: string;
  checkedAt: string;
  problems: { source: string; path: string; message: string; found?: string; line?: number; text: string }[];
}

async function ready(host: LocalHost, key: string | null = keys.function): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(`${host.baseUrl}/api/ready`, key === null ? {} : { headers: { 'x-functions-key': key } });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function adminInvoke(host: LocalHost, name: string): Promise<void> {
  const response = await fetch(`${host.baseUrl}/admin/functions/${name}`, {
    method: 'POST',
    headers: { 'x-functions-key': keys.master, 'content-type': 'application/json' },
    body: JSON.stringify({ input: '' }),
  });
  expect(response.status).toBe(202);
  await host.idle();
}

describe('an app with bad settings and a broken estate configuration', () => {
  const settings = (): Record<string, string> => ({
    OPS_AUTOPILOT_CONFIG_FILE: path.resolve('examples/broken/many-mistakes.yaml'),
    IMAGE_PURGE_SCHEDULE: '0 4 * * 0', // five fields: the usual cron mistake
    BACKUP_VERIFY_SCHEDULE: '0 0 25 * * *', // hour 25
    SECRET_EXPIRY_SCHEDUEL: '0 0 8 * * *', // misspelled: would be ignored in silence
    OPS_AUTOPILOT_KILL_SWITCH: 'yes',
  });

  it('logs every problem at once when it starts, still registers every function, and answers 503 on /api/ready', async () => {
    const { host, startLog } = await start(settings());
    // One message holding all of them, so they reach the log together.
    expect(startLog.errors).toHaveLength(1);
    const logged = startLog.errors[0] ?? '';
    expect(logged).toMatch(/^Ops Autopilot is not ready: 16 problems in its settings \(GET \/api\/ready lists them; nothing runs until they are fixed\)\n/);
    for (const expected of [
      'app settings: BACKUP_VERIFY_SCHEDULE: expected a valid six-field NCRONTAB expression (hour value 25 is out of range; expected 0-23), found "0 0 25 * * *"',
      'app settings: IMAGE_PURGE_SCHEDULE: expected a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), found 5 field(s) in "0 4 * * 0"',
      'app settings: OPS_AUTOPILOT_KILL_SWITCH: expected "on" (stop all remediation) or "off", found "yes"',
      'app settings: SECRET_EXPIRY_SCHEDUEL: unknown app setting; did you mean SECRET_EXPIRY_SCHEDULE? (app settings are case-sensitive; this one is ignored)',
      `${path.resolve('examples/broken/many-mistakes.yaml')}: version: expected 1, found 2 (line 5)`,
      `${path.resolve('examples/broken/many-mistakes.yaml')}: targets[3].runbooks.image-purge.keep: expected an integer, found 2.5 (line 30)`,
    ]) {
      expect(logged).toContain(`\n  ${expected}`);
    }
    // The app still loads: a bad schedule keeps the timer on its default rather than failing the app.
    expect(host.functions.find((f) => f.name === 'imagePurgeTimer')?.timer?.schedule).toBe('0 0 4 * * 0');
    expect(host.functions.find((f) => f.name === 'backupVerifyTimer')?.timer?.schedule).toBe('0 0 6 * * *');

    const response = await ready(host);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('30');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = JSON.parse(response.text) as NotReadyBody;
    expect(body.status).toBe('not ready');
    expect(body.problems).toHaveLength(16);
    // The same lines as the start-up log, each also as fields.
    for (const problem of body.problems) expect(logged).toContain(`\n  ${problem.text}`);
    expect(body.problems).toContainEqual(
      expect.objectContaining({ source: path.resolve('examples/broken/many-mistakes.yaml'), path: 'targets[0].runbooks.backup-verify.maxBackupAgeHour', line: 20 }),
    );
    expect(body.problems).toContainEqual({
      source: 'app settings',
      path: 'IMAGE_PURGE_SCHEDULE',
      message: 'expected a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), found 5 field(s) in "0 4 * * 0"',
      text: 'app settings: IMAGE_PURGE_SCHEDULE: expected a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), found 5 field(s) in "0 4 * * 0"',
    });
    // The webhook's signature never leaves the file.
    expect(response.text).not.toContain('sig=abc123');
    expect(logged).not.toContain('sig=abc123');
  });

  it('keeps /api/ready behind the function key, and /api/health anonymous and silent about the estate', async () => {
    const { host } = await start(settings());
    expect((await ready(host, null)).status).toBe(401);
    expect((await ready(host, 'wrong-key')).status).toBe(401);
    expect((await ready(host, keys.master)).status).toBe(503);
    const health = await fetch(`${host.baseUrl}/api/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['name', 'status', 'time', 'version']);
    expect(body.status).toBe('ok');
  });

  it('fails a timer with the same message, and runs nothing', async () => {
    const { host, startLog } = await start(settings());
    await adminInvoke(host, 'revisionCleanupTimer');
    const run = host.invocations.filter((i) => i.functionName === 'revisionCleanupTimer');
    expect(run.map((i) => i.outcome)).toEqual(['failed']);
    expect(run[0]?.error).toBe(startLog.errors[0]);
    expect(host.logs.some((l) => l.functionName === 'revisionCleanupTimer' && l.message === startLog.errors[0])).toBe(true);
  });
});

describe('an app whose settings get fixed', () => {
  it('answers 503 until the configuration is valid, then 200 with a short summary (re-checked on every request)', async () => {
    const config = path.join(dir, 'estate.yaml');
    await copyFile('examples/broken/keep-zero.yaml', config);
    const { host } = await start({ OPS_AUTOPILOT_CONFIG_FILE: config, DURABLE_TASK_HUB_NAME: 'opsautopilottest' });
    const broken = await ready(host);
    expect(broken.status).toBe(503);
    expect((JSON.parse(broken.text) as NotReadyBody).problems.map((p) => `${p.path}:${String(p.line)}`)).toEqual([
      'targets[0].runbooks.revision-cleanup.keep:12',
      'targets[1].runbooks.image-purge.keep:16',
    ]);
    await copyFile('examples/xshopai.yaml', config);
    const fixed = await ready(host);
    expect(fixed.status).toBe(200);
    const body = JSON.parse(fixed.text) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ready', estate: 'xshopai', dryRun: true, targets: 5, scopes: 1 });
    expect(body.runbooks).toContainEqual({ runbook: 'image-purge', functionName: 'imagePurgeTimer', schedule: '0 0 4 * * 0', targets: 1, scopes: 0 });
    expect(body.runbooks).toContainEqual(expect.objectContaining({ runbook: 'revision-cleanup', targets: 0, scopes: 1 }));
    // A summary, not the configuration: no resource ids, no webhook URLs.
    expect(fixed.text).not.toMatch(/\/subscriptions\/|https?:\/\//);
  });

  it('logs one ready line at start when everything is valid', async () => {
    const { startLog } = await start({ OPS_AUTOPILOT_CONFIG_FILE: path.resolve('examples/xshopai.yaml') });
    expect(startLog.errors).toEqual([]);
    expect(startLog.logs).toEqual([expect.stringMatching(/^Ops Autopilot is ready: estate xshopai, 5 targets and 1 scope, dryRun true; runbooks: .*image-purge \(1, 0 0 4 \* \* 0\)/)]);
  });
});

describe('secrets in broken settings', () => {
  it('never reach the start-up log, /api/ready or a timer error', async () => {
    const inline = [
      'version: 1',
      'estate: canary',
      'notifications:',
      '  webhooks:',
      `    - { name: ops, url: "https://hooks.slack.com/services/${CANARY}", format: nope }`,
      'targets: []',
    ].join('\n');
    const { host, startLog } = await start({
      OPS_AUTOPILOT_CONFIG: inline,
      AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${CANARY}`,
      APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${CANARY};IngestionEndpoint=https://x`,
    });
    const response = await ready(host);
    expect(response.status).toBe(503);
    const body = JSON.parse(response.text) as NotReadyBody;
    expect(body.problems.map((p) => p.path)).toEqual(['APPLICATIONINSIGHTS_CONNECTION_STRING', 'notifications.webhooks[0].format', 'targets']);
    expect(body.problems[0]?.found).toBe('a value (not shown)');
    await adminInvoke(host, 'secretExpiryTimer');
    const failure = host.invocations.find((i) => i.functionName === 'secretExpiryTimer')?.error ?? '';
    expect(failure).toContain('notifications.webhooks[0].format');
    for (const text of [response.text, ...startLog.errors, ...startLog.logs, failure, ...host.logs.map((l) => l.message)]) expect(text).not.toContain(CANARY);
  });
});
