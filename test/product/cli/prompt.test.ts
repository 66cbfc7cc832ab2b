/**
 * `run`'s confirmation, typed at in a REAL pseudo-terminal as a person would (issue 8 §2): the
 * whole plan is shown; a destructive plan needs `yes` or the number of deletions, and a bare `y`
 * declines (exit 2); Ctrl-C and Ctrl-D at the prompt cancel (exit 130, nothing applied, nobody
 * notified, the record says cancelled); `run ... | tee log` still asks (the check is on stdin)
 * and the log holds the plan and the outcome; `run --yes` prints the findings and each action's
 * outcome in plan order. The evidence is the sandbox's: ARM request log, webhook capture, and
 * the run records in Azurite.
 *
 * The world is planted here: two container apps with 16 old revisions each (all to deactivate, more than
 * the 12 lines a plan list shows by default) whose live revision's image is missing from its registry (an
 * image-purge `warn`), and a registry with 30 release tags.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { createRunRecordStore } from '../../../src/runs/run-record-store.ts';
import type { RunRecord } from '../../../src/runs/run-record.ts';
import { cli } from '../../support/cli.ts';
import { killPtySessions, ptyCli } from '../../support/pty.ts';
import { isMutatingRequest, useSandbox } from '../../support/sandbox.ts';

// A terminal session is a whole CLI run (~3 s to plan) plus the typing.
vi.setConfig({ testTimeout: 120_000 });

const SUB = '9a9b9c9d-0000-4000-8000-000000000077';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-shop/providers`;
const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-prompt-'));
const revisions = Array.from({ length: 16 }, (_, index) => {
  const n = index + 1;
  return `        - { suffix: r${String(n).padStart(2, '0')}, image: crshop.azurecr.io/shop:v1.0.30, createdDaysAgo: ${String(60 - n * 2)}, active: true }`;
});
await writeFile(
  path.join(dir, 'shop.estate.yaml'),
  `version: 1
estate: promptshop
dryRun: true
notifications:
  webhooks:
    - { name: oncall, format: generic, url: https://example.invalid/hook, on: [fail, warn, destructive] }
targets:
  - id: ${RG}/Microsoft.App/containerApps/ca-shop
    runbooks:
      revision-cleanup: { keep: 1, minAgeHours: 1 }
  - id: ${RG}/Microsoft.App/containerApps/ca-shop-two
    runbooks:
      revision-cleanup: { keep: 1, minAgeHours: 1 }
  - id: ${RG}/Microsoft.ContainerRegistry/registries/crshop
    runbooks:
      image-purge: { repositories: ['^shop$'], tagFilter: '^v1\\.0\\.\\d+$', keep: 3, olderThanDays: 1, maxDeletionsPerRun: 100 }
`,
);
await writeFile(
  path.join(dir, 'promptshop.yaml'),
  `name: promptshop
description: Prompt tests.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
exampleConfig: ${path.join(dir, 'shop.estate.yaml')}
resources:
  - type: Microsoft.App/containerApps
    resourceGroup: rg-shop
    name: ca-shop
    location: westeurope
    spec:
      environment: cae-shop
      environmentDomain: shop-1a2b3c4d.westeurope.azurecontainerapps.io
      activeRevisionsMode: Multiple
      registryServer: crshop.azurecr.io
      revisions:
${revisions.join('\n')}
        - { suffix: live, image: crshop.azurecr.io/shop:v9.9.9, createdHoursAgo: 5, active: true }
  - type: Microsoft.App/containerApps
    resourceGroup: rg-shop
    name: ca-shop-two
    location: westeurope
    spec:
      environment: cae-shop
      environmentDomain: shop-1a2b3c4d.westeurope.azurecontainerapps.io
      activeRevisionsMode: Multiple
      registryServer: crshop.azurecr.io
      revisions:
${revisions.join('\n')}
        - { suffix: live, image: crshop.azurecr.io/shop:v9.9.9, createdHoursAgo: 5, active: true }
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-shop
    name: crshop
    location: westeurope
    spec:
      repositories:
        - name: shop
          generate: { count: 30, pattern: 'v1.0.{n}', newestDaysAgo: 2, intervalDays: 1 }
`,
);
const sandbox = useSandbox({ worlds: [path.join(dir, 'promptshop.yaml')], postgres: false });
afterEach(killPtySessions);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const configFile = (): string => {
  const world = sandbox().worlds[0];
  if (world === undefined) throw new Error('world not loaded');
  return world.configFile;
};
const MUTATING = isMutatingRequest;

async function records(runbook: string): Promise<RunRecord[]> {
  const config = await loadConfigFile(configFile());
  const clients = createAzureClients(config.azure);
  try {
    const store = await createRunRecordStore(config, clients);
    return await Promise.all((await store.list(`${runbook}/`)).map((name) => store.read(name)));
  } finally {
    await clients.close();
  }
}

/** Starts `run revision-cleanup` in a terminal and waits for its question. */
async function atThePrompt(): Promise<ReturnType<typeof ptyCli>> {
  const session = ptyCli(['run', 'revision-cleanup', '--config', configFile(), '--target', 'ca-shop']);
  await session.waitFor(/Type yes \(or 16\) to apply: /, 60_000);
  return session;
}

describe('run asks on a real terminal', () => {
  it('shows the whole plan; a destructive plan is not applied on "y": declined, exit 2, record cancelled, nobody notified', async () => {
    await sandbox().clearRequests();
    const session = await atThePrompt();
    const shown = session.output();
    // Every one of the 16 deactivations, not the 12 a plan list shows by default.
    for (let n = 1; n <= 16; n += 1) expect(shown).toContain(`deactivate revision ca-shop--r${String(n).padStart(2, '0')} `);
    expect(shown).not.toContain('... and');
    expect(shown).toContain('16 of the 16 action(s) delete or deactivate something in estate promptshop.');
    session.type('y\r');
    expect(await session.exited()).toBe(2);
    expect(session.output()).toMatch(/revision-cleanup on promptshop: declined; .*declined at the confirmation: nothing applied/);
    expect((await sandbox().requests()).filter(MUTATING)).toEqual([]);
    expect(await sandbox().webhooks()).toEqual([]);
    const [record] = await records('revision-cleanup');
    expect(record).toMatchObject({ status: 'cancelled', trigger: 'cli', dryRun: true, summary: { actions: { applied: 0, planned: 16 } } });
    expect(record?.notes).toContain('gate: declined at the confirmation: nothing applied');
  });

  for (const [key, label] of [
    ['\x03', 'Ctrl-C'],
    ['\x04', 'Ctrl-D'],
  ] as const) {
    it(`${label} at the prompt cancels: exit 130, nothing applied, no notification, the record says cancelled`, async () => {
      await sandbox().clearRequests();
      const before = (await records('revision-cleanup')).length;
      const session = await atThePrompt();
      session.type(key);
      expect(await session.exited()).toBe(130);
      expect(session.output()).toMatch(/revision-cleanup on promptshop: cancelled; .*cancelled: nothing applied/);
      expect((await sandbox().requests()).filter(MUTATING)).toEqual([]);
      expect(await sandbox().webhooks()).toEqual([]);
      const all = await records('revision-cleanup');
      expect(all).toHaveLength(before + 1);
      const record = all.find((candidate) => candidate.notes?.includes('gate: cancelled: nothing applied') === true && !candidate.notes.includes('declined'));
      expect(record).toMatchObject({ status: 'cancelled', summary: { actions: { applied: 0, failed: 0 } } });
    });
  }

  it('run | tee log still asks (stdin is the terminal); typing the number of deletions applies; the log holds plan and outcome', async () => {
    const log = path.join(dir, 'run.log');
    const session = ptyCli(['-c', `set -o pipefail; "${process.execPath}" bin/ops-autopilot.mjs run revision-cleanup --config "${configFile()}" --target ca-shop | tee "${log}"`], { file: 'bash' });
    await session.waitFor(/Type yes \(or 16\) to apply: /);
    session.type('16\r');
    expect(await session.exited()).toBe(0);
    const text = await readFile(log, 'utf8');
    expect(text).toMatch(/^Plan of revision-cleanup on estate promptshop:$/m);
    expect(text).toMatch(/^Applied revision-cleanup on estate promptshop \(run [0-9a-f-]{36}\):$/m);
    expect(text).toMatch(/^-- ca-shop \(containerApp\): 16 applied, 0 skipped, 0 failed$/m);
    // The question went to the terminal (stderr), not into the log.
    expect(text).not.toContain('Type yes');
    const [posted] = await sandbox().webhooks('oncall');
    expect(JSON.stringify(posted?.body)).toContain('applied destructive actions');
  });
});

describe('Ctrl-C while a run applies', () => {
  it('starts no further action: exit 130, the rest recorded not applied, the record says cancelled', async () => {
    const session = ptyCli(['run', 'revision-cleanup', '--config', configFile(), '--target', 'ca-shop-two', '--yes']);
    // Each deactivation is a long-running operation (1.5 s in the sandbox): there is time to press it.
    await session.waitFor(/apply 1\/16/);
    session.type('\x03');
    expect(await session.exited()).toBe(130);
    expect(session.output()).toContain('cancelling: no further action starts');
    const record = (await records('revision-cleanup')).find((candidate) => candidate.targets.some((target) => target.targetId.endsWith('/ca-shop-two')));
    expect(record?.status).toBe('cancelled');
    const { applied, planned } = record?.summary.actions ?? { applied: 0, planned: 0 };
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(16);
    expect(applied + planned).toBe(16);
    expect(session.output()).toMatch(/revision-cleanup on promptshop: cancelled; .*cancelled: actions not yet started were not applied/);
  });
});

describe('run --yes', () => {
  it('prints the findings and what it applied, in plan order, and exits 3 for the warn', async () => {
    const plan = await cli(['plan', 'image-purge', '--config', configFile(), '--json']);
    const planned = (JSON.parse(plan.stdout) as { plans: { actions: { description: string }[] }[] }).plans.flatMap((entry) => entry.actions.map((action) => action.description));
    expect(planned.length).toBeGreaterThan(12);
    const run = await cli(['run', 'image-purge', '--config', configFile(), '--yes', '--show', 'all']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^ {4}WARN crshop\.azurecr\.io\/shop:v9\.9\.9 is in use by .* but crshop no longer holds it/m);
    const applied = [...run.stdout.matchAll(/^ {4}applied (.*): deleted.*$/gm)].map((match) => match[1]);
    expect(applied).toEqual(planned);
    expect(run.stdout).toMatch(/^image-purge on promptshop: findings; .*actions 27 applied \/ 0 skipped \/ 0 failed \/ 0 planned/m);
  });
});
