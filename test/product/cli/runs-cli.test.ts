/**
 * `ops-autopilot runs start|list|show` as an operator runs them (issue 8 §4), against the app on
 * the local host over HTTP (the app client: `--app`/`--key` or OPS_AUTOPILOT_APP_URL/_KEY) and
 * against blob storage (`--config`): a plan through the app changes nothing; usage and connection
 * errors (no key, a wrong key, an unreachable app, plain http to a remote host, unknown runbooks,
 * targets and runs) say what to do and start nothing; `--yes` follows the run to its end and exits
 * as `run` does; `--no-wait` returns the run id; in a REAL pseudo-terminal the app's plan is shown
 * and asked about (`yes` applies in the app, Ctrl-C at the prompt starts nothing), and Ctrl-C while
 * following stops following while the run goes on in the app.
 *
 * The world is planted here: three container apps with four old active revisions each (one app
 * per test that applies), a vault with a secret that expires in 5 days (a `warn`), and a registry
 * with 30 release tags of which 27 are due, above its deletion cap of 5.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { FUNCTION_NAMES } from '../../../src/functions/function-names.ts';
import { runRecordDestination } from '../../../src/runs/run-record-store.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { cli, runProcess } from '../../support/cli.ts';
import { killPtySessions, ptyCli } from '../../support/pty.ts';
import { isMutatingRequest, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

// A CLI run is a process start and one or two requests to the app (~2-4 s on a busy machine).
vi.setConfig({ testTimeout: 180_000 });

const SUB = '9a9b9c9d-0000-4000-8000-000000000088';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-runshop/providers`;
const APPS = ['ca-api', 'ca-web', 'ca-jobs'] as const;
const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-runs-'));
const app = (name: string): string => `  - type: Microsoft.App/containerApps
    resourceGroup: rg-runshop
    name: ${name}
    location: westeurope
    spec:
      environment: cae-runshop
      environmentDomain: runshop-1a2b3c4d.westeurope.azurecontainerapps.io
      activeRevisionsMode: Multiple
      revisions:
${[1, 2, 3, 4].map((n) => `        - { suffix: r${String(n)}, image: mcr.microsoft.com/k8se/quickstart:latest, createdDaysAgo: ${String(40 - n * 5)}, active: true }`).join('\n')}
        - { suffix: live, image: mcr.microsoft.com/k8se/quickstart:latest, createdHoursAgo: 5, active: true }`;
await writeFile(
  path.join(dir, 'runshop.estate.yaml'),
  `version: 1
estate: runshop
dryRun: false
notifications:
  webhooks:
    - { name: oncall, format: generic, url: https://example.invalid/hook, on: [fail, warn, destructive] }
targets:
${APPS.map((name) => `  - id: ${RG}/Microsoft.App/containerApps/${name}\n    runbooks:\n      revision-cleanup: { keep: 1, minAgeHours: 1 }`).join('\n')}
  - id: ${RG}/Microsoft.KeyVault/vaults/kv-runshop
    runbooks:
      secret-expiry: { warnWithinDays: 14 }
  - id: ${RG}/Microsoft.ContainerRegistry/registries/crrunshop
    runbooks:
      image-purge: { repositories: ['^shop$'], tagFilter: '^v1\\.0\\.\\d+$', keep: 3, olderThanDays: 1, maxDeletionsPerRun: 5 }
`,
);
await writeFile(
  path.join(dir, 'runshop.yaml'),
  `name: runshop
description: runs CLI tests.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
exampleConfig: ${path.join(dir, 'runshop.estate.yaml')}
resources:
${APPS.map(app).join('\n')}
  - type: Microsoft.KeyVault/vaults
    resourceGroup: rg-runshop
    name: kv-runshop
    location: westeurope
    spec:
      enableSoftDelete: true
      softDeleteRetentionInDays: 90
      enablePurgeProtection: true
      secrets:
        - name: API-TOKEN
          versions:
            - { createdDaysAgo: 85, expiresInDays: 5 }
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-runshop
    name: crrunshop
    location: westeurope
    spec:
      repositories:
        - name: shop
          generate: { count: 30, pattern: 'v1.0.{n}', newestDaysAgo: 2, intervalDays: 1 }
`,
);

const sandbox = useSandbox({ worlds: [path.join(dir, 'runshop.yaml')], postgres: false });
const keys = { master: 'runs-cli-master-key', function: 'runs-cli-function-key' };
const FAR = '0 0 0 1 1 *';
let host: LocalHost;
let configFile: string;

beforeAll(async () => {
  configFile = worldConfigFile(sandbox(), 'runshop');
  host = await startLocalHost({
    entryPoint: 'src/functions/index.ts',
    port: 0,
    keys,
    enableTimers: false,
    settings: {
      OPS_AUTOPILOT_CONFIG_FILE: configFile,
      BACKUP_VERIFY_SCHEDULE: FAR,
      KEYVAULT_BACKUP_SCHEDULE: FAR,
      REVISION_CLEANUP_SCHEDULE: FAR,
      IMAGE_PURGE_SCHEDULE: FAR,
      SECRET_EXPIRY_SCHEDULE: FAR,
    },
  });
});
afterEach(killPtySessions);
afterAll(async () => {
  await host.stop();
  await rm(dir, { recursive: true, force: true });
});

async function runRecordBlobs(): Promise<string[]> {
  const config = await loadConfigFile(configFile);
  const clients = createAzureClients(config.azure);
  try {
    const container = (await clients.blobServiceClient(runRecordDestination(config))).getContainerClient(config.runRecords.container);
    if (!(await container.exists())) return [];
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    return names.sort();
  } finally {
    await clients.close();
  }
}

async function waitDone(statusUrl: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i += 1) {
    const res = await fetch(statusUrl, { headers: { 'x-functions-key': keys.function } });
    const body = (await res.json()) as Record<string, unknown>;
    if (body.done === true) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${statusUrl} not done after 60 s`);
}

describe('ops-autopilot runs, against the app', () => {
  const appArgs = (): string[] => ['--app', host.baseUrl, '--key', keys.function];
  const orchestrations = (): number => host.durable.listInstances().filter((instance) => instance.name === FUNCTION_NAMES.runbookRunOrchestrator).length;
  it('runs start --plan prints the app\'s plan and changes nothing: no write, no notification, no record, no orchestration', async () => {
    await sandbox().clearRequests();
    const blobs = await runRecordBlobs();
    const webhooks = (await sandbox().webhooks()).length;
    const instances = orchestrations();
    const plan = await cli(['runs', 'start', 'revision-cleanup', '--plan', '--target', 'ca-api', ...appArgs()]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^Plan of revision-cleanup on estate runshop, by the app:\n/);
    expect(plan.stdout).toMatch(/deactivate revision ca-api--r1 /);
    const json = await cli(['runs', 'start', 'secret-expiry', '--plan', '--json', ...appArgs()]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ mode: 'plan', runbook: 'secret-expiry', outcome: 'findings' });
    expect((await sandbox().requests()).filter(isMutatingRequest)).toEqual([]);
    expect((await sandbox().webhooks()).length).toBe(webhooks);
    expect(await runRecordBlobs()).toEqual(blobs);
    expect(orchestrations()).toBe(instances);
  });

  it('usage and connection errors say what to do, with exit 2 for usage and 1 for the app, and start nothing', async () => {
    const instances = orchestrations();
    const cases: [string[], number, RegExp][] = [
      [['runs', 'start', 'revision-cleanup', ...appArgs()], 2, /expected --yes or an interactive terminal to confirm the plan, found neither \(stdin is not a TTY\); nothing was started/],
      [['runs', 'start', 'revision-cleanup', '--yes', '--target', 'ca-no-such-app', ...appArgs()], 2, /answered 400: .*ca-no-such-app/],
      [['runs', 'start', 'no-such-runbook', '--plan', ...appArgs()], 2, /answered 400: runbook: expected one of backup-verify/],
      [['runs', 'start', 'revision-cleanup', '--plan', '--app', host.baseUrl, '--key', 'wrong-key'], 1, /answered 401; the key in --key or OPS_AUTOPILOT_APP_KEY is not one of the app's function keys/],
      [['runs', 'list', '--app', host.baseUrl], 1, /answered 401; expected a function key in --key or OPS_AUTOPILOT_APP_KEY, found none/],
      [['runs', 'list', '--app', 'http://127.0.0.1:9', '--key', 'k'], 1, /GET http:\/\/127.0.0.1:9\/api\/runs: expected an answer from the app, found none .*is --app right and the app running\?/],
      [['runs', 'list', '--app', 'http://func-ops.example.com', '--key', 'k'], 2, /expected an https:\/\/ URL .*the key would travel in clear/],
      [['runs', 'list'], 2, /expected --config <estate.yaml> \(reads the run records from blob storage\) or --app <url> \(asks the app\), found neither/],
      [['runs', 'list', '--config', configFile, '--since', 'forever'], 2, /--since: expected a duration such as 30m, 12h, 7d or 2w/],
      [['runs', 'show', '5b0a7c1e-1111-4222-8333-944455556666', ...appArgs()], 1, /run 5b0a7c1e-1111-4222-8333-944455556666: expected a recorded run, found none/],
      [['runs', 'show', 'nope', ...appArgs()], 2, /expected a run id \(a uuid, as runs list shows it\), found "nope"/],
      [['runs', 'start', 'secret-expiry', '--yes', '--timeout', 'forever', ...appArgs()], 2, /--timeout: expected a duration from 1s to 24h/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((result, i) => {
      const [args, code, message] = cases[i] ?? [[], 0, /./];
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(code);
      expect(result.stderr, args.join(' ')).toMatch(message);
      expect(result.stderr).not.toContain(keys.function);
    });
    expect(orchestrations()).toBe(instances);
  });

  it('runs start --yes follows the run to its end and exits as run does; --no-wait (app and key from the environment) returns the id, and runs show finds it', async () => {
    const followed = await cli(['runs', 'start', 'secret-expiry', '--yes', ...appArgs()]);
    expect(followed.code, followed.stderr).toBe(3);
    expect(followed.stderr).toMatch(/^run [0-9a-f-]{36} of secret-expiry started in the app; following http:\/\/127.0.0.1:\d+\/api\/runs\/[0-9a-f-]{36}\n/);
    expect(followed.stdout).toMatch(/^run [0-9a-f-]{36}: secret-expiry on runshop, findings \(status succeeded, nothing applied\)\n {2}trigger http, requested by http \(function key\)/);

    const env = { ...process.env, OPS_AUTOPILOT_APP_URL: host.baseUrl, OPS_AUTOPILOT_APP_KEY: keys.function };
    const started = await runProcess(process.execPath, ['bin/ops-autopilot.mjs', 'runs', 'start', 'secret-expiry', '--yes', '--no-wait', '--json'], { env });
    expect(started.code, started.stderr).toBe(0);
    const body = JSON.parse(started.stdout) as { runId: string; statusUrl: string; done: boolean };
    expect(body).toMatchObject({ done: false, statusUrl: `${host.baseUrl}/api/runs/${body.runId}` });
    await host.durable.waitForStatus(body.runId);
    const shown = await runProcess(process.execPath, ['bin/ops-autopilot.mjs', 'runs', 'show', body.runId], { env });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^run ${body.runId}: secret-expiry on runshop, findings`));
    const fromBlobs = await cli(['runs', 'show', body.runId, '--config', configFile, '--json']);
    expect(JSON.parse(fromBlobs.stdout)).toMatchObject({ run: { runId: body.runId, trigger: 'http', outcome: 'findings' } });
  });

  it('on a terminal, runs start shows the app\'s whole plan and asks; "yes" applies in the app; Ctrl-C at the prompt starts nothing (exit 130)', async () => {
    const instances = orchestrations();
    const cancelled = ptyCli(['runs', 'start', 'revision-cleanup', '--target', 'ca-web', ...appArgs()]);
    await cancelled.waitFor(/Type yes \(or \d+\) to apply: /);
    expect(cancelled.output()).toMatch(/deactivate revision ca-web--r1 /);
    cancelled.type('\x03');
    expect(await cancelled.exited()).toBe(130);
    expect(cancelled.output()).toContain('cancelled: nothing was started');
    expect(orchestrations()).toBe(instances);

    await sandbox().clearRequests();
    const applied = ptyCli(['runs', 'start', 'revision-cleanup', '--target', 'ca-jobs', ...appArgs()]);
    await applied.waitFor(/Type yes \(or (\d+)\) to apply: /);
    const count = Number(/Type yes \(or (\d+)\) to apply: /.exec(applied.output())?.[1]);
    applied.type('yes\r');
    expect(await applied.exited()).toBe(0);
    expect(applied.output()).toMatch(/run [0-9a-f-]{36}: revision-cleanup on runshop, ok \(status succeeded\)/);
    expect(orchestrations()).toBe(instances + 1);
    const deactivations = (await sandbox().requests()).filter((entry) => isMutatingRequest(entry) && /deactivate/.test(entry.path) && entry.status < 300);
    expect(deactivations).toHaveLength(count);
  });

  it('Ctrl-C while following stops following (exit 130) and the run goes on in the app to its end', async () => {
    await sandbox().injectFault({ pathPattern: 'revisions/[^/]+/deactivate', method: 'POST', latencyMs: 3000, count: 1 });
    const session = ptyCli(['runs', 'start', 'revision-cleanup', '--target', 'ca-web', '--yes', ...appArgs()]);
    await session.waitFor(/following (http:\S+)/);
    const statusUrl = /following (http:\S+)/.exec(session.output())?.[1] ?? '';
    session.type('\x03');
    expect(await session.exited()).toBe(130);
    expect(session.output()).toMatch(/stopped following; run [0-9a-f-]{36} goes on in the app: http:/);
    const final = await waitDone(statusUrl);
    expect(final).toMatchObject({ runbook: 'revision-cleanup', done: true, outcome: 'ok' });
  });

  it('an apply over HTTP goes through the deletion cap (refused, exit 2, nothing deleted; --force passes) and the dry-run gate (nothing applied)', async () => {
    await sandbox().clearRequests();
    const refused = await cli(['runs', 'start', 'image-purge', '--yes', ...appArgs()]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stdout).toMatch(/image-purge on runshop, refused/);
    expect(refused.stdout).toMatch(/RunRefusedError: .*27.*5/);
    const deletes = async (): Promise<number> => (await sandbox().requests()).filter((entry) => entry.method === 'DELETE' && entry.status < 300).length;
    expect(await deletes()).toBe(0);

    // The same app with the estate's dryRun: true: an apply plans, records and applies nothing.
    const dryConfig = path.join(dir, 'runshop.dry.yaml');
    await writeFile(dryConfig, (await readFile(configFile, 'utf8')).replace(/^dryRun: false$/m, 'dryRun: true'));
    const dry = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, keys, enableTimers: false, settings: { OPS_AUTOPILOT_CONFIG_FILE: dryConfig } });
    try {
      const gated = await cli(['runs', 'start', 'image-purge', '--yes', '--force', '--json', '--app', dry.baseUrl, '--key', keys.function]);
      expect(gated.code, gated.stderr).toBe(0);
      expect(JSON.parse(gated.stdout)).toMatchObject({ done: true, record: { dryRun: true, summary: { actions: { applied: 0, planned: 27 } } } });
      expect(await deletes()).toBe(0);
    } finally {
      await dry.stop();
    }

    const forced = await cli(['runs', 'start', 'image-purge', '--yes', '--force', ...appArgs()]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/image-purge on runshop, ok \(status succeeded\)/);
    expect(await deletes()).toBe(27);
  });

  it('a plan that changes between the confirmation and the run is not applied: the app declines, exit 2, nothing deactivated', async () => {
    const session = ptyCli(['runs', 'start', 'revision-cleanup', '--target', 'ca-api', ...appArgs()]);
    await session.waitFor(/Type yes \(or 4\) to apply: /);
    // While the operator reads the plan, someone deactivates one of its revisions by hand.
    const config = await loadConfigFile(configFile);
    const clients = createAzureClients(config.azure);
    try {
      await (await clients.containerAppsClient(SUB)).containerAppsRevisions.deactivateRevision('rg-runshop', 'ca-api', 'ca-api--r1');
    } finally {
      await clients.close();
    }
    await sandbox().clearRequests();
    session.type('yes\r');
    expect(await session.exited()).toBe(2);
    expect(session.output()).toMatch(/the app's plan changed between your confirmation and the run \(the estate changed meanwhile\), so it applied nothing/);
    expect((await sandbox().requests()).filter((entry) => isMutatingRequest(entry) && /deactivate/.test(entry.path))).toEqual([]);
    // Shown again, the new plan is the three revisions left; confirming it applies them.
    const again = ptyCli(['runs', 'start', 'revision-cleanup', '--target', 'ca-api', ...appArgs()]);
    await again.waitFor(/Type yes \(or 3\) to apply: /);
    again.type('3\r');
    expect(await again.exited()).toBe(0);
    expect((await sandbox().requests()).filter((entry) => isMutatingRequest(entry) && /deactivate/.test(entry.path) && entry.status < 300)).toHaveLength(3);
  });
});
