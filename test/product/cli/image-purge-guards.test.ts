/**
 * image-purge's guards through the CLI, as an operator runs it, against a sandbox world that
 * plants each trap:
 * - patterns that backtrack catastrophically in V8 (`^(a+)+$` over a tag of 40 a's and a dash,
 *   `(a+)+b` over a repository of 40 a's) validate and plan promptly (RE2, linear time);
 * - a pattern `config validate` accepts is one the runbook runs (`v\d\-rc`, which RegExp with
 *   the `u` flag refuses);
 * - the deletion cap counts tags and manifests: one image with 21 tags under
 *   `maxDeletionsPerRun: 5` is refused, nothing is deleted, and the refusal says what it counted;
 * - a registry (or vault) ID with a mistyped subscription fails its plan from ARM before any
 *   data-plane request, instead of purging (or reporting) the registry of that name elsewhere.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { cli } from '../../support/cli.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const A40 = 'a'.repeat(40);
const SUB = '8c8d7e06-1a2b-4c3d-8e4f-5a6b7c8d9008';
const REGISTRY_ID = `/subscriptions/${SUB}/resourceGroups/rg-guards/providers/Microsoft.ContainerRegistry/registries/crguardslab`;
const OLD_TAGS = Array.from({ length: 21 }, (_, index) => `old-${String(index + 1).padStart(2, '0')}`);

const WORLD = `name: guards-lab
description: image-purge guard traps (backtracking names, an image with 21 tags).
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-guards
    name: crguardslab
    location: eastus
    spec:
      repositories:
        - name: ${A40}
          tags:
            - { name: ${A40}-, createdDaysAgo: 100 }
            - { name: v1-rc, createdDaysAgo: 100 }
            - { name: v2-rc, createdDaysAgo: 1 }
        - name: app
          tags:
            - { name: ${OLD_TAGS[0] ?? ''}, createdDaysAgo: 100 }
${OLD_TAGS.slice(1)
  .map((tag) => `            - { name: ${tag}, sameAs: ${OLD_TAGS[0] ?? ''}, createdDaysAgo: 100 }`)
  .join('\n')}
            - { name: current, createdDaysAgo: 1 }
  - type: Microsoft.KeyVault/vaults
    resourceGroup: rg-guards
    name: kv-guards-lab
    location: eastus
    spec:
      secrets:
        - { name: api-key, versions: [{ expiresInDays: 3 }] }
`;

const sandbox = useSandbox({ worlds: [writeWorldFile('guards-lab', WORLD)], postgres: false, azurite: false });
const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-purge-guards-'));

/** The world's generated config with an image-purge policy on the registry, written to a file. */
function configWith(name: string, policy: Record<string, unknown>): string {
  const generated = sandbox().worlds.find((world) => world.name === 'guards-lab')?.configFile;
  if (generated === undefined) throw new Error('world guards-lab not loaded');
  const document = parseDocument(readFileSync(generated, 'utf8'));
  const targets = document.get('targets', true) as { items: { get(key: string): unknown }[] };
  const index = targets.items.findIndex((item) => item.get('id') === REGISTRY_ID);
  expect(index).toBeGreaterThanOrEqual(0);
  document.setIn(['targets', index, 'runbooks'], { 'image-purge': policy });
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, document.toString());
  return file;
}

interface PlanJson {
  exit: string;
  plans: { actions: { id: string; kind: string }[]; checks: { code: string; message: string }[] }[];
  record: { targets: { status: string; error?: { message: string } }[]; notes?: string[] };
}

describe('image-purge patterns through the CLI', () => {
  it('catastrophic patterns validate and plan promptly; nothing matches that should not', { timeout: 60_000 }, async () => {
    const file = configWith('backtracking', { repositories: ['(a+)+b', 'a+'], tagFilter: '^(a+)+$', keep: 1, olderThanDays: 0 });
    const validate = await cli(['config', 'validate', file], { timeoutMs: 30_000 });
    expect(validate.stderr).toBe('');
    expect(validate.code).toBe(0);
    const started = performance.now();
    // Before the fix this never returned: V8 tries 2^40 ways to split the a's.
    const run = await cli(['plan', 'image-purge', '--config', file, '--json'], { timeoutMs: 30_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(performance.now() - started).toBeLessThan(30_000);
    const doc = JSON.parse(run.stdout) as PlanJson;
    expect(doc.plans[0]?.actions).toEqual([]);
    expect(doc.plans[0]?.checks.find((check) => check.code === 'acr.purge.summary')?.message).toBe(
      'crguardslab: 0 tag(s) and 0 manifest(s) to delete in 1 of 2 repositories',
    );
  });

  it('v\\d\\-rc passes config validate and the runbook runs it (one compile function)', { timeout: 60_000 }, async () => {
    const file = configWith('escape', { repositories: ['a+'], tagFilter: String.raw`v\d\-rc`, keep: 1, olderThanDays: 30 });
    expect((await cli(['config', 'validate', file])).code).toBe(0);
    const run = await cli(['plan', 'image-purge', '--config', file, '--json']);
    expect(run.code, run.stdout.slice(0, 2000)).toBe(0);
    const doc = JSON.parse(run.stdout) as PlanJson;
    expect(doc.record.targets[0]?.status).not.toBe('failed');
    expect(doc.plans[0]?.actions.map((action) => action.id)).toEqual([`delete-tag:${A40}:v1-rc`]);
  });

  it('an invalid pattern is reported by config validate with its path and line, the same words the runbook uses', async () => {
    const file = configWith('lookahead', { tagFilter: '(?=v)v1' });
    const run = await cli(['config', 'validate', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/targets\[0\]\.runbooks\.image-purge\.tagFilter: expected a valid RE2 regular expression \(invalid or unsupported Perl syntax: `\(\?=`\), found "\(\?=v\)v1" \(line \d+\)/);
  });
});

describe('the deletion cap counts tags and manifests', () => {
  it('refuses one image with 21 tags under maxDeletionsPerRun 5, deletes nothing, and says what it counted', { timeout: 60_000 }, async () => {
    const file = configWith('cap', { repositories: ['app'], keep: 1, olderThanDays: 30, deleteUntaggedManifests: true, maxDeletionsPerRun: 5 });
    await sandbox().clearRequests();
    const run = await cli(['run', 'image-purge', '--config', file, '--yes']);
    expect(run.code, run.stdout).toBe(2);
    // Said once, in the run's summary line.
    expect(run.stdout).toMatch(
      /^image-purge on .*: refused; .*; refused: image-purge refused: \/subscriptions\/.*\/crguardslab plans 22 deletions \(21 tags and 1 manifest in 1 action; largest: crguardslab\/app@sha256:[0-9a-f]{64} \(manifest and 21 tags\)\), above its cap maxDeletionsPerRun 5\./m,
    );
    expect(`${run.stdout}${run.stderr}`.match(/above its cap/g)).toHaveLength(1);
    const deletes = (await sandbox().requests()).filter((entry) => entry.method === 'DELETE');
    expect(deletes).toEqual([]);
    // Under a cap that fits, the same plan applies: the image and its 21 tags go, `current` stays.
    const fits = configWith('cap-fits', { repositories: ['app'], keep: 1, olderThanDays: 30, deleteUntaggedManifests: true, maxDeletionsPerRun: 22 });
    const applied = await cli(['run', 'image-purge', '--config', fits, '--yes']);
    expect(applied.code, applied.stdout).toBe(0);
    expect(applied.stdout).toMatch(/deleted manifest app@sha256:[0-9a-f]{64} and its tag\(s\) old-01,old-02/);
  });
});

describe('an ID whose subscription is not where the resource is', () => {
  const MISTYPED = '8c8d7e06-1a2b-4c3d-8e4f-5a6b7c8d9080';

  /** The generated config with every target ID moved to the mistyped subscription, and a policy on each. */
  function mistypedConfig(): string {
    const generated = sandbox().worlds.find((world) => world.name === 'guards-lab')?.configFile;
    if (generated === undefined) throw new Error('world guards-lab not loaded');
    const document = parseDocument(readFileSync(generated, 'utf8'));
    const targets = document.get('targets', true) as { items: { get(key: string): unknown }[] };
    targets.items.forEach((item, index) => {
      const id = String(item.get('id'));
      document.setIn(['targets', index, 'id'], id.replace(SUB, MISTYPED));
      document.setIn(['targets', index, 'runbooks'], id.includes('/registries/') ? { 'image-purge': { keep: 1, olderThanDays: 0 } } : { 'secret-expiry': {} });
    });
    const file = path.join(dir, 'mistyped.yaml');
    writeFileSync(file, document.toString());
    return file;
  }

  it('image-purge fails the target from ARM, touching no registry data plane', { timeout: 60_000 }, async () => {
    const file = mistypedConfig();
    await sandbox().clearRequests();
    const run = await cli(['run', 'image-purge', '--config', file, '--yes', '--json']);
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.stdout) as PlanJson;
    expect(doc.record.targets[0]?.status).toBe('failed');
    expect(doc.record.targets[0]?.error?.message).toBe(
      `registry crguardslab: expected it at /subscriptions/${MISTYPED}/resourceGroups/rg-guards/providers/Microsoft.ContainerRegistry/registries/crguardslab, found no such resource there in ARM (404 ResourceNotFound); check the subscription and resource group of the target's ID (the data plane reaches crguardslab.azurecr.io wherever it lives, so nothing is planned on an ID that is not the registry's)`,
    );
    const requests = await sandbox().requests();
    expect(requests.filter((entry) => entry.host === 'acr')).toEqual([]);
    expect(requests.filter((entry) => entry.method === 'DELETE')).toEqual([]);
  });

  it('secret-expiry fails the vault from ARM instead of reporting the vault of that name', { timeout: 60_000 }, async () => {
    const file = mistypedConfig();
    await sandbox().clearRequests();
    const run = await cli(['plan', 'secret-expiry', '--config', file, '--json']);
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.stdout) as PlanJson;
    expect(doc.record.targets[0]?.error?.message).toMatch(/^Key Vault kv-guards-lab: expected it at \/subscriptions\/8c8d7e06-1a2b-4c3d-8e4f-5a6b7c8d9080\/.*, found no such resource there in ARM \(404 ResourceNotFound\)/);
    expect((await sandbox().requests()).filter((entry) => entry.host === 'keyvault')).toEqual([]);
  });
});
