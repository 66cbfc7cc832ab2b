/**
 * `ops-autopilot plan` and `run`, spawned as a user runs them (stdin is not a terminal here),
 * against a sandbox with the xshopai and lms worlds: exit codes 0/1/2/3, the no-TTY refusal,
 * the dry-run gate reported, and applying for real inside the sandbox.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../../support/cli.ts';
import { isMutatingRequest, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml', 'sandbox/worlds/lms.yaml'] });
const configOf = (world: string): string => worldConfigFile(sandbox(), world);
const MUTATING = isMutatingRequest;

describe('ops-autopilot plan', () => {
  it('is read-only, prints checks/actions/kept per target and exits 3 on findings (lms stale backup)', async () => {
    await sandbox().clearRequests();
    const run = await cli(['plan', 'backup-verify', '--config', configOf('lms')]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^Plan of backup-verify on estate lms/m);
    expect(run.stdout).toMatch(/^-- psql-lms-prod \(postgresFlexibleServer\)$/m);
    expect(run.stdout).toMatch(/^ {4}FAIL .*\(expected .*; found .*\)$/m);
    expect(run.stdout).toMatch(/^backup-verify on lms: findings; /m);
    const requests = await sandbox().requests();
    expect(requests.filter(MUTATING)).toEqual([]);
  });

  it('--json prints plans and the record; a plan never applies (record dryRun true, actions planned)', async () => {
    const run = await cli(['plan', 'revision-cleanup', '--config', configOf('xshopai'), '--json']);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as { exit: string; gate: { apply: boolean }; plans: { actions: unknown[] }[]; record: { dryRun: boolean; trigger: string; summary: { actions: { applied: number; planned: number } } } };
    expect(doc.exit).toBe('ok');
    expect(doc.gate.apply).toBe(false);
    expect(doc.record).toMatchObject({ dryRun: true, trigger: 'cli' });
    const planned = doc.plans.reduce((sum, plan) => sum + plan.actions.length, 0);
    expect(planned).toBeGreaterThan(0);
    expect(doc.record.summary.actions).toMatchObject({ applied: 0, planned });
  });

  it('an unknown runbook is a usage error naming the valid ones', async () => {
    const run = await cli(['plan', 'tidy-up', '--config', configOf('lms')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('expected a runbook name (backup-verify, keyvault-backup, revision-cleanup, image-purge, secret-expiry), found "tidy-up"');
  });
});

describe('ops-autopilot run', () => {
  it('without --yes and without a terminal refuses with exit 2 and touches nothing', async () => {
    await sandbox().clearRequests();
    const run = await cli(['run', 'revision-cleanup', '--config', configOf('xshopai')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/expected --yes or an interactive terminal to confirm the plan, found neither/);
    expect((await sandbox().requests()).filter((entry) => !entry.path.includes('/oauth2/'))).toEqual([]);
  });

  it('with a dryRun config the gate keeps it to a plan (no question, nothing applied)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-runbooks-'));
    const file = path.join(dir, 'xshopai-dry.yaml');
    await writeFile(file, (await readFile(configOf('xshopai'), 'utf8')).replace(/^dryRun: false$/m, 'dryRun: true'));
    await sandbox().clearRequests();
    const run = await cli(['run', 'revision-cleanup', '--config', file]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('nothing applied: dryRun is true in the estate config, the gate kept the run to a plan');
    expect((await sandbox().requests()).filter(MUTATING)).toEqual([]);
  });

  it('--yes applies inside the sandbox; a second run finds nothing left to do', async () => {
    const run = await cli(['run', 'revision-cleanup', '--config', configOf('xshopai'), '--yes']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Applied revision-cleanup on estate xshopai/m);
    expect(run.stdout).toMatch(/^-- ca-user-service \(containerApp\): [1-9]\d* applied, 0 skipped, 0 failed$/m);
    expect(run.stdout).toMatch(/^run record: autopilot-runs\/revision-cleanup\/\d{4}\/\d{2}\/\d{2}\/[0-9a-f-]{36}\.json$/m);
    const again = await cli(['plan', 'revision-cleanup', '--config', configOf('xshopai'), '--json']);
    const doc = JSON.parse(again.stdout) as { plans: { actions: unknown[] }[] };
    expect(doc.plans.every((plan) => plan.actions.length === 0)).toBe(true);
  });
});
