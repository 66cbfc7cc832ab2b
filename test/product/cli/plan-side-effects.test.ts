/**
 * A preview from the CLI has no side effects (issue 8 §1), shown with the sandbox's own
 * evidence: its webhook capture, the run-record container in Azurite and the ARM request log.
 * `plan`, `inventory` and a `run` on a dryRun config write and notify nothing unless asked
 * (`--record`, `--notify`); a plan above the deletion cap says so once and exits as the run
 * would; a target that cannot be planned counts as a failed target, not a failed action; and
 * `--target` takes a name, a unique end of the id or the full id.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { runRecordDestination } from '../../../src/runs/run-record-store.ts';
import type { RunRecord } from '../../../src/runs/run-record.ts';
import { cli } from '../../support/cli.ts';
import { isMutatingRequest, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml', 'sandbox/worlds/lms.yaml'] });
const configOf = (world: string): string => worldConfigFile(sandbox(), world);
const MUTATING = isMutatingRequest;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cli-side-effects-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A copy of a world's generated config with `edit` applied. */
async function variant(world: string, name: string, edit: (text: string) => string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, edit(await readFile(configOf(world), 'utf8')));
  return file;
}

/** The blob names in the run-record container of a config, or undefined when the container does not exist. */
async function runRecordBlobs(configFile: string): Promise<string[] | undefined> {
  const config = await loadConfigFile(configFile);
  const clients = createAzureClients(config.azure);
  try {
    const container = (await clients.blobServiceClient(runRecordDestination(config))).getContainerClient(config.runRecords.container);
    if (!(await container.exists())) return undefined;
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    return names;
  } finally {
    await clients.close();
  }
}

describe('a CLI preview writes and notifies nothing unless asked', () => {
  // Runs first, on a fresh sandbox: nothing has created the run-record container yet.
  it('plan, inventory and a dry-run run leave the webhook capture, the run-record container and ARM untouched', async () => {
    await sandbox().clearRequests();
    const plan = await cli(['plan', 'backup-verify', '--config', configOf('lms')]);
    // The stale backup is a `fail` finding: the webhook (on: [fail, warn]) would have fired.
    expect(plan.code).toBe(3);
    expect(plan.stdout).toMatch(/^ {4}FAIL psql-lms-prod: newest backup/m);
    expect(plan.stdout).not.toContain('run record:');

    const inventory = await cli(['inventory', '--config', configOf('lms'), '--json']);
    expect(inventory.code).toBe(0);
    expect((JSON.parse(inventory.stdout) as { runRecord: { blob: string | null } }).runRecord.blob).toBeNull();

    const dry = await variant('xshopai', 'xshopai-dry.yaml', (text) => text.replace(/^dryRun: false$/m, 'dryRun: true'));
    const run = await cli(['run', 'revision-cleanup', '--config', dry]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('nothing applied: dryRun is true in the estate config');

    expect(await sandbox().webhooks()).toEqual([]);
    expect(await runRecordBlobs(configOf('lms'))).toBeUndefined();
    expect(await runRecordBlobs(dry)).toBeUndefined();
    expect((await sandbox().requests()).filter(MUTATING)).toEqual([]);
  });

  it('--record and --notify do write the record and post the notification', async () => {
    const plan = await cli(['plan', 'backup-verify', '--config', configOf('lms'), '--record', '--notify']);
    expect(plan.code).toBe(3);
    const blob = /^run record: autopilot-runs\/(backup-verify\/\S+\.json)$/m.exec(plan.stdout)?.[1];
    expect(blob).toBeDefined();
    // The record, and the index entry that finds it by run id.
    const runId = blob?.split('/').at(-1)?.replace(/\.json$/, '') ?? '';
    expect(await runRecordBlobs(configOf('lms'))).toEqual([blob, `by-id/${runId}.json`]);
    const posted = await sandbox().webhooks('oncall-slack');
    expect(posted).toHaveLength(1);
    expect(JSON.stringify(posted[0]?.body)).toContain('backup-verify on lms failed');

    const inventory = await cli(['inventory', '--config', configOf('lms'), '--record']);
    expect(inventory.code).toBe(0);
    expect(inventory.stdout).toMatch(/^run record: autopilot-runs\/inventory\//m);
  });
});

describe('plan shows what run would refuse', () => {
  it('above the deletion cap the plan says so once and exits 2, as the run does', async () => {
    const capped = await variant('xshopai', 'xshopai-cap.yaml', (text) => text.replace(/maxDeletionsPerRun: \d+/, 'maxDeletionsPerRun: 2'));
    await sandbox().clearRequests();
    const plan = await cli(['plan', 'image-purge', '--config', capped]);
    expect(plan.code).toBe(2);
    const said = `${plan.stdout}${plan.stderr}`;
    expect(said.match(/above its cap/g)).toHaveLength(1);
    expect(plan.stdout).toMatch(/^image-purge on xshopai: refused; .*an apply would be refused: .*above its cap maxDeletionsPerRun 2/m);

    const run = await cli(['run', 'image-purge', '--config', capped, '--yes']);
    expect(run.code).toBe(2);
    expect(`${run.stdout}${run.stderr}`.match(/above its cap/g)).toHaveLength(1);
    expect((await sandbox().requests()).filter((entry) => entry.method === 'DELETE')).toEqual([]);

    // --force previews the forced run: no refusal, the deletions planned.
    const forced = await cli(['plan', 'image-purge', '--config', capped, '--force', '--json']);
    expect(forced.code).toBe(0);
    expect((JSON.parse(forced.stdout) as { refusal: unknown }).refusal).toBeNull();
  });
});

describe('a failed target', () => {
  it('is counted as a failed target, not as a failed action', async () => {
    const missing = `  - id: /subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-gone\n    runbooks:\n      backup-verify: {}\n`;
    const broken = await variant('lms', 'lms-gone.yaml', (text) => text.replace(/^targets:\n/m, `targets:\n${missing}`));
    const plan = await cli(['plan', 'backup-verify', '--config', broken, '--json']);
    expect(plan.code).toBe(1);
    const record = (JSON.parse(plan.stdout) as { record: RunRecord }).record;
    expect(record.summary).toMatchObject({ targets: 3, targetsFailed: 1, actions: { failed: 0 } });
    const gone = record.targets.find((target) => target.targetId.endsWith('psql-gone'));
    expect(gone).toMatchObject({ status: 'failed', failedDuring: 'plan', actions: [] });
    const human = await cli(['plan', 'backup-verify', '--config', broken]);
    expect(human.stdout).toMatch(/backup-verify on lms: failed; 3 target\(s\), 1 failed; .*actions 0 applied \/ 0 skipped \/ 0 failed \/ 0 planned/);
    expect(human.stdout).toMatch(/^-- psql-gone \(postgresFlexibleServer\)\n {2}FAILED \(plan\): /m);
  });
});

describe('--target', () => {
  it('takes the resource name, a unique end of the id or the full id, on plan and inventory', async () => {
    const id = '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-prod/providers/Microsoft.App/containerApps/ca-auth-service';
    const selectors = ['ca-user-service', 'containerApps/CA-USER-SERVICE', id.replace('ca-auth-service', 'ca-user-service')];
    const [inventory, ...plans] = await Promise.all([
      cli(['inventory', '--config', configOf('xshopai'), '--target', 'ca-auth-service', '--target', 'kv-xshopai-prod', '--json']),
      ...selectors.map((selector) => cli(['plan', 'revision-cleanup', '--config', configOf('xshopai'), '--target', selector, '--json'])),
    ]);
    for (const plan of plans) {
      expect(plan.code).toBe(0);
      expect((JSON.parse(plan.stdout) as { record: RunRecord }).record.targets.map((target) => target.targetId.split('/').at(-1))).toEqual(['ca-user-service']);
    }
    expect(inventory.code).toBe(0);
    const doc = JSON.parse(inventory.stdout) as { containerApps: { name: string }[]; keyVaults: { name: string }[]; registries: unknown[] };
    expect(doc.containerApps.map((app) => app.name)).toEqual(['ca-auth-service']);
    expect(doc.keyVaults.map((vault) => vault.name)).toEqual(['kv-xshopai-prod']);
    expect(doc.registries).toEqual([]);
  });

  it('an unknown, ambiguous or not-opted-in target is a usage error (exit 2) that names the choices, before anything is read', async () => {
    // Two apps called the same in two resource groups: the name alone is ambiguous.
    const twin = `  - id: /subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-staging/providers/Microsoft.App/containerApps/ca-user-service\n    runbooks:\n      revision-cleanup: {}\n`;
    const twins = await variant('xshopai', 'xshopai-twins.yaml', (text) => text.replace(/^targets:\n/m, `targets:\n${twin}`));
    await sandbox().clearRequests();
    const [unknown, notOptedIn, ambiguous, json] = await Promise.all([
      cli(['plan', 'revision-cleanup', '--config', configOf('xshopai'), '--target', 'user-service']),
      cli(['plan', 'revision-cleanup', '--config', configOf('xshopai'), '--target', 'kv-xshopai-prod']),
      cli(['inventory', '--config', twins, '--target', 'ca-user-service']),
      cli(['inventory', '--config', configOf('xshopai'), '--target', 'nope', '--json']),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^error: runbook revision-cleanup: expected each --target to name one of the targets of revision-cleanup on estate xshopai \(by name, a unique end of its id, or the full id: ca-user-service, ca-auth-service, .*\), found "user-service" matches none$/m);

    expect(notOptedIn.code).toBe(2);
    expect(notOptedIn.stderr).toMatch(/"kv-xshopai-prod" is \/subscriptions\/.*\/vaults\/kv-xshopai-prod, which has no revision-cleanup policy/);

    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/"ca-user-service" matches 2 \(.*rg-xshopai-staging.*, .*rg-xshopai-prod.*\); give more of the id, e.g. its resource group/);
    expect(json.code).toBe(2);
    expect(json.stderr).toMatch(/^error: expected each --target/);
    expect(JSON.parse(json.stdout)).toEqual({ error: { name: 'TargetSelectorError', message: expect.stringContaining('found "nope" matches none') as unknown, exitCode: 2 } });
    expect((await sandbox().requests()).filter((entry) => !entry.path.includes('/oauth2/'))).toEqual([]);

    const unique = await cli(['inventory', '--config', twins, '--target', 'rg-xshopai-prod/providers/Microsoft.App/containerApps/ca-user-service', '--json']);
    expect(unique.code).toBe(0);
    expect((JSON.parse(unique.stdout) as { containerApps: { resourceGroup: string }[] }).containerApps.map((app) => app.resourceGroup)).toEqual(['rg-xshopai-prod']);
  });
});
