/**
 * `--world` means one thing everywhere (a seed world's name or a world file), and an operator's
 * own estate file runs against the sandbox without writing a world (`sandbox --estate`): the
 * sandbox is spawned as a user runs it, its JSON read, and the CLI pointed at the config it
 * generated for the estate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../src/runs/run-record.ts';
import { cli } from '../../support/cli.ts';

interface SandboxJson {
  baseUrl: string;
  caFile: string;
  worlds: { name: string; configFile: string }[];
  estates: { name: string; file: string; configFile: string; generated: string[] }[];
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.filter((child) => child.exitCode === null).map((child) => new Promise((resolve) => child.once('exit', resolve))));
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Spawns `ops-autopilot sandbox ... --json` and resolves with its JSON once ready. */
function startSandboxCli(args: readonly string[]): Promise<SandboxJson> {
  const child = spawn(process.execPath, ['bin/ops-autopilot.mjs', 'sandbox', ...args, '--json'], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line !== undefined) resolve(JSON.parse(line) as SandboxJson);
    });
    child.once('exit', (code) => {
      reject(new Error(`sandbox exited ${String(code)} before it was ready: ${stderr}`));
    });
  });
}

const LMS = '/subscriptions/4e4f3d85-a031-4dbf-8d88-4f313e914004/resourceGroups/rg-lms-prod/providers';
const MINE = '/subscriptions/0d0e0f10-1111-4222-8333-444455556666/resourceGroups/rg-mine/providers';

describe('sandbox --estate', () => {
  it('serves an estate file as it is: planted state for resources a world has, healthy defaults for the rest', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-estate-'));
    dirs.push(dir);
    const estate = path.join(dir, 'my-estate.yaml');
    // An operator's file: the LMS database from the seed world plus a vault and a registry of their own.
    await writeFile(
      estate,
      `version: 1
estate: my-estate
notifications:
  webhooks:
    - { name: my-hook, format: generic, url: https://hooks.example.com/secret-path, on: [fail] }
targets:
  - id: ${LMS}/Microsoft.DBforPostgreSQL/flexibleServers/psql-lms-prod
    runbooks:
      backup-verify: { maxBackupAgeHours: 26 }
  - id: ${MINE}/Microsoft.KeyVault/vaults/kv-mine
    runbooks:
      backup-verify: { requireSoftDelete: true }
  - id: ${MINE}/Microsoft.ContainerRegistry/registries/crmine
    runbooks:
      image-purge: { repositories: ['.*'], keep: 5 }
`,
    );
    const ready = await startSandboxCli(['--world', 'lms', '--estate', estate]);
    expect(ready.worlds.map((world) => world.name)).toEqual(['lms']);
    expect(ready.estates).toHaveLength(1);
    const [mine] = ready.estates;
    expect(mine).toMatchObject({ name: 'my-estate', file: estate });
    expect(mine?.generated).toEqual([`${MINE}/Microsoft.KeyVault/vaults/kv-mine`, `${MINE}/Microsoft.ContainerRegistry/registries/crmine`]);
    const config = await readFile(mine?.configFile ?? '', 'utf8');
    expect(config).toContain(`resourceManagerEndpoint: ${ready.baseUrl}`);
    expect(config).toContain(`${ready.baseUrl}/_sandbox/webhooks/my-hook`);
    expect(config).not.toContain('hooks.example.com');

    const plan = await cli(['plan', 'backup-verify', '--config', mine?.configFile ?? '', '--json']);
    // The stale LMS backup is the seed world's planted problem; the generated vault is healthy.
    expect(plan.code).toBe(3);
    const record = (JSON.parse(plan.stdout) as { record: RunRecord }).record;
    expect(record.targets.map((target) => [target.targetId.split('/').at(-1), target.status])).toEqual([
      ['psql-lms-prod', 'succeeded'],
      ['kv-mine', 'succeeded'],
    ]);
    expect(record.targets[0]?.findings.some((finding) => finding.severity === 'fail')).toBe(true);
    expect(record.targets[1]?.findings.filter((finding) => finding.severity !== 'ok')).toEqual([]);
    const inventory = await cli(['inventory', '--config', mine?.configFile ?? '', '--target', 'crmine', '--json']);
    expect(inventory.code).toBe(0);
    expect((JSON.parse(inventory.stdout) as { registries: { name: string }[] }).registries.map((registry) => registry.name)).toEqual(['crmine']);
  }, 120_000);
});

describe('--world', () => {
  it('takes a seed world by name on sandbox and demo; an unknown name is a usage error listing the seeds', async () => {
    const ready = await startSandboxCli(['--world', 'healthz-app']);
    expect(ready.worlds.map((world) => world.name)).toEqual(['healthz-app']);
    const [sandbox, demo] = await Promise.all([cli(['sandbox', '--world', 'no-such-world']), cli(['demo', '--world', 'no-such-world'])]);
    for (const run of [sandbox, demo]) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('error: --world "no-such-world": expected a seed world name (healthz-app, kilometers, limpopo-connect, lms, xshopai) or a world file');
    }
    const missingFile = await cli(['sandbox', '--world', 'worlds/missing.yaml']);
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toContain('error: --world "worlds/missing.yaml": expected a world file at worlds/missing.yaml, found none');
  }, 120_000);
});
