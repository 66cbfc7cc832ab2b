/**
 * Estate scopes (issue 8 section 3) against the sandbox over HTTPS with the real SDK clients:
 * discovery through `Microsoft.Resources` list operations (paged, `$filter` by type), include
 * and exclude tags, name patterns, exclusions, the `ops-autopilot: ignore` tag, the refusal of a
 * subscription the file does not name, an empty scope's warning, two scopes disagreeing on one
 * resource, discovery failing closed, provenance, and the xshopai estate written with a scope
 * planning exactly what its explicit version plans.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { armScopeDiscovery } from '../../../src/azure/discovery.ts';
import { parseConfigText } from '../../../src/config/load.ts';
import { resolveTargets, TargetResolutionError } from '../../../src/config/resolve.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { ConfigError } from '../../../src/errors.ts';
import { executeRunbook } from '../../../src/runbooks/execute-runbook.ts';
import { getRunbook, RUNBOOK_NAMES } from '../../../src/runbooks/registry.ts';
import type { TargetPlan } from '../../../src/runbooks/runbook.ts';
import { memoryLogger } from '../../../src/runs/run-log.ts';
import { cli } from '../../support/cli.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const FLEET_SUB = '6a1f0c55-2b7e-4d3a-9c1e-5f0e6d7c8b9a';
const FOREIGN_SUB = '0badf00d-0000-4000-8000-000000000bad';

/** A world of 23 container apps in one group (3 pages of 10), with tags to select on, and a registry. */
function fleetWorld(): string {
  const apps = Array.from({ length: 23 }, (_, index) => {
    const n = String(index + 1).padStart(2, '0');
    const tier = index % 3 === 0 ? 'batch' : 'web';
    const extra = index === 4 ? ', ops-autopilot: ignore' : index === 7 ? ', lifecycle: legacy' : '';
    return `  - type: Microsoft.App/containerApps
    resourceGroup: rg-fleet
    name: ca-fleet-${n}
    location: westeurope
    tags: { team: fleet, tier: ${tier}${extra} }
    spec:
      environment: cae-fleet
      environmentDomain: fleet-1a2b3c4d.westeurope.azurecontainerapps.io
      activeRevisionsMode: Single
      targetPort: 8080
      registryServer: crfleet.azurecr.io
      revisions:
        - { suffix: v1, image: crfleet.azurecr.io/app-${n}:v1, createdDaysAgo: 20 }
        - { suffix: v2, image: crfleet.azurecr.io/app-${n}:v2, createdDaysAgo: 2, active: true }
      traffic:
        - { latestRevision: true, weight: 100 }`;
  });
  return `name: fleet
description: 23 container apps in one resource group, for scope discovery across pages.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${FLEET_SUB}
plantedProblems: []
resources:
${apps.join('\n')}
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-fleet
    name: crfleet
    location: westeurope
    tags: { team: fleet }
    spec:
      sku: Basic
      repositories: []
`;
}

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml', writeWorldFile('fleet', fleetWorld())], postgres: false });

/** The generated xshopai config (pointing at the sandbox) as a YAML document. */
function generatedXshopai(): ReturnType<typeof parseDocument> {
  const entry = sandbox().worlds.find((world) => world.name === 'xshopai');
  if (entry === undefined) throw new Error('xshopai world not loaded');
  return parseDocument(readFileSync(entry.configFile, 'utf8'));
}

/** The generated config's connection settings with another estate body (scopes, targets, ...). */
function estate(body: Record<string, unknown>): EstateConfig {
  const doc = generatedXshopai();
  const base = doc.toJS() as Record<string, unknown>;
  const text = JSON.stringify({ version: 1, estate: 'scoped', dryRun: true, azure: base.azure, runRecords: base.runRecords, ...body });
  return parseConfigText(text, { source: 'test', format: 'json' });
}

/** The explicit xshopai fixture and the scoped example, both pointing at the sandbox. */
function xshopaiPair(): { explicit: EstateConfig; scoped: EstateConfig } {
  const base = generatedXshopai().toJS() as Record<string, unknown>;
  const connect = (file: string): EstateConfig => {
    const raw = parseDocument(readFileSync(file, 'utf8')).toJS() as Record<string, unknown>;
    const text = JSON.stringify({ ...raw, azure: base.azure, runRecords: base.runRecords, notifications: base.notifications, dryRun: true });
    return parseConfigText(text, { source: file, format: 'json' });
  };
  return { explicit: connect('test/fixtures/estates/xshopai-explicit.yaml'), scoped: connect(SCOPED_XSHOPAI) };
}

/** The xshopai example: its five services are one scope. */
const SCOPED_XSHOPAI = 'examples/xshopai.yaml';

/** The scoped xshopai example connected to the sandbox, as a file for the CLI. */
function scopedXshopaiFile(): string {
  const base = generatedXshopai().toJS() as Record<string, unknown>;
  const raw = parseDocument(readFileSync(SCOPED_XSHOPAI, 'utf8')).toJS() as Record<string, unknown>;
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'scoped-')), 'xshopai.json');
  writeFileSync(file, JSON.stringify({ ...raw, azure: base.azure, runRecords: base.runRecords, notifications: base.notifications, dryRun: true }));
  return file;
}

async function resolve(config: EstateConfig): ReturnType<typeof resolveTargets> {
  const clients = createAzureClients(config.azure);
  try {
    return await resolveTargets(config, { discovery: armScopeDiscovery(clients) });
  } finally {
    await clients.close();
  }
}

async function plan(config: EstateConfig, runbook: string): Promise<Awaited<ReturnType<typeof executeRunbook>>> {
  const clients = createAzureClients(config.azure);
  try {
    return await executeRunbook(getRunbook(runbook), { config, clients, logger: memoryLogger(), now: () => new Date() }, { trigger: 'cli', mode: 'plan', writeRecord: false, notify: false });
  } finally {
    await clients.close();
  }
}

/** A plan as compared: per target, the actions (id, kind, resource, description) and the checks (code, status). */
function comparable(plans: readonly TargetPlan[]): unknown {
  return [...plans]
    .sort((a, b) => a.targetId.toLowerCase().localeCompare(b.targetId.toLowerCase()))
    .map((entry) => ({
      targetId: entry.targetId.toLowerCase(),
      actions: entry.actions.map((action) => ({ id: action.id, kind: action.kind, resource: action.resource, description: action.description, destructive: action.destructive })),
      checks: entry.checks.map((check) => ({ code: check.code, status: check.status })),
    }));
}

const scope = (extra: Record<string, unknown>): Record<string, unknown> => ({
  name: 'fleet',
  subscription: FLEET_SUB,
  resourceGroups: ['rg-fleet'],
  types: ['Microsoft.App/containerApps'],
  runbooks: { 'revision-cleanup': { keep: 1, minAgeHours: 1 } },
  ...extra,
});

describe('estate scopes', () => {
  it('the xshopai example with a scope plans exactly the actions of the explicit version, for every runbook', async () => {
    const { explicit, scoped } = xshopaiPair();
    expect(scoped.scopes.length).toBeGreaterThan(0);
    expect(scoped.targets.length).toBeLessThan(explicit.targets.length);
    let compared = 0;
    for (const runbook of RUNBOOK_NAMES) {
      const [a, b] = await Promise.all([plan(explicit, runbook), plan(scoped, runbook)]);
      expect(b.exit, `${runbook}: ${b.summary}`).toBe(a.exit);
      expect(comparable(b.plans), runbook).toEqual(comparable(a.plans));
      compared += b.plans.reduce((sum, entry) => sum + entry.actions.length, 0);
    }
    // Not a comparison of two empty plans: revision-cleanup and image-purge have work to do.
    expect(compared).toBeGreaterThan(10);
  });

  it('says which scope or entry selected each target and which policy won', async () => {
    const { scoped } = xshopaiPair();
    const resolution = await resolve(scoped);
    const cart = resolution.targets.find((target) => target.id.endsWith('/ca-cart-service'));
    expect(cart?.provenance.selectedBy).toBe('scope services (scopes[0])');
    expect(cart?.provenance.policies).toEqual([{ runbook: 'revision-cleanup', source: 'scope services (scopes[0])', over: [] }]);
    expect(cart?.health?.path).toBe('/health');
    // ca-user-service also has an explicit entry (its remediation rules): both are named, the scope's policy still applies.
    const user = resolution.targets.find((target) => target.id.endsWith('/ca-user-service'));
    expect(user?.provenance).toEqual({ selectedBy: 'targets[0]', alsoSelectedBy: ['scope services (scopes[0])'], policies: [{ runbook: 'revision-cleanup', source: 'scope services (scopes[0])', over: [] }] });
    expect(user?.runbooks['revision-cleanup']).toEqual({ keep: 5, minAgeHours: 24 });
    expect(user?.remediationLayers.map((layer) => layer.source)).toEqual(['targets[0]']);
    const vault = resolution.targets.find((target) => target.id.endsWith('/kv-xshopai-prod'));
    expect(vault?.provenance.selectedBy).toMatch(/^targets\[\d\]$/);
    expect(resolution.targets.filter((target) => target.id.includes('/containerApps/'))).toHaveLength(5);
  });

  it('inventory and plan say, per target, which scope or entry selected it and which policy won (the CLI as a user runs it)', async () => {
    const file = scopedXshopaiFile();
    const inventory = await cli(['inventory', '--config', file], { timeoutMs: 120_000 });
    expect(inventory.code, inventory.stderr).toBe(0);
    expect(inventory.stdout).toMatch(/Selected by\n[^]*ca-cart-service +scope services \(scopes\[0\]\) +revision-cleanup from scope services \(scopes\[0\]\)/);
    expect(inventory.stdout).toMatch(/ca-user-service +targets\[0\], scope services \(scopes\[0\]\) +revision-cleanup from scope services \(scopes\[0\]\)/);
    const json = await cli(['inventory', '--config', file, '--json', '--target', 'ca-cart-service'], { timeoutMs: 120_000 });
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { containerApps: { name: string }[]; selection: { targetId: string; selectedBy: string }[] };
    expect(parsed.containerApps.map((app) => app.name)).toEqual(['ca-cart-service']);
    expect(parsed.selection).toEqual([expect.objectContaining({ selectedBy: 'scope services (scopes[0])' })]);
    const planned = await cli(['plan', 'revision-cleanup', '--config', file, '--target', 'ca-user-service'], { timeoutMs: 120_000 });
    expect(planned.stdout).toContain('-- ca-user-service (containerApp)\n  selected by targets[0] and scope services (scopes[0]); revision-cleanup policy from scope services (scopes[0])');
    expect(planned.stdout).toMatch(/deactivate revision ca-user-service--/);
    const unknown = await cli(['plan', 'revision-cleanup', '--config', file, '--target', 'ca-nothing'], { timeoutMs: 120_000 });
    expect(unknown.code).toBe(2);
  });

  it('reads every page of a listing through the ARM list operation, filtered by type', async () => {
    await sandbox().clearRequests();
    const resolution = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({})] }));
    // 23 apps, one tagged ops-autopilot: ignore.
    expect(resolution.targets).toHaveLength(22);
    const lists = (await sandbox().requests()).filter((entry) => entry.operationId === 'Resources_ListByResourceGroup');
    expect(lists).toHaveLength(3);
    for (const entry of lists) expect(decodeURIComponent(entry.query.replaceAll('+', ' '))).toContain("resourceType eq 'Microsoft.App/containerApps'");
  });

  it('selects by include and exclude tags and by name pattern (RE2, no catastrophic backtracking)', async () => {
    const byTags = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({ tags: { tier: 'web' }, excludeTags: { lifecycle: '*' } })] }));
    const names = byTags.targets.map((target) => target.id.split('/').at(-1));
    // web: indexes not divisible by 3 (15 of 23), minus ca-fleet-05 (ignore tag) and ca-fleet-08 (legacy).
    expect(names).toHaveLength(13);
    expect(names).not.toContain('ca-fleet-08');
    expect(names).not.toContain('ca-fleet-01');
    const byName = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({ namePattern: 'ca-fleet-1[0-9]' })] }));
    expect(byName.targets.map((target) => target.id.split('/').at(-1))).toEqual(Array.from({ length: 10 }, (_, index) => `ca-fleet-1${String(index)}`));
    // A pattern that backtracks exponentially in RegExp runs in linear time here.
    const started = performance.now();
    const evil = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({ namePattern: '(a+)+$|ca-(f|fl|fle|flee|fleet|-|[0-9])*-x' })] }));
    expect(performance.now() - started).toBeLessThan(5000);
    expect(evil.targets).toHaveLength(0);
  });

  it('the ops-autopilot: ignore tag wins over a scope, an explicit target and an exclusion-free file', async () => {
    const ignored = `/subscriptions/${FLEET_SUB}/resourceGroups/rg-fleet/providers/Microsoft.App/containerApps/ca-fleet-05`;
    const resolution = await resolve(
      estate({ subscriptions: [FLEET_SUB], scopes: [scope({})], targets: [{ id: ignored, runbooks: { 'revision-cleanup': { keep: 1 } } }] }),
    );
    expect(resolution.targets.map((target) => target.id)).not.toContain(ignored);
    expect(resolution.excluded).toContainEqual({ id: ignored, by: 'tag ops-autopilot: ignore', reason: 'the resource is tagged to be left alone' });
    const excluded = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({})], exclusions: [{ name: 'CA-FLEET-01', reason: 'migrating' }, { tags: { tier: 'batch' } }] }));
    expect(excluded.targets.map((target) => target.id.split('/').at(-1))).not.toContain('ca-fleet-01');
    // 23 apps: ca-fleet-05 ignored, 8 batch apps (ca-fleet-01 among them) excluded by tag.
    expect(excluded.targets).toHaveLength(14);
    expect(excluded.excluded.find((entry) => entry.id.endsWith('ca-fleet-01'))).toEqual(expect.objectContaining({ by: 'exclusions[0] (name CA-FLEET-01)', reason: 'migrating' }));
  });

  it('refuses a scope in a subscription the file does not name, with its path and line', () => {
    let error: unknown;
    try {
      parseConfigText(
        ['version: 1', 'estate: x', `subscriptions: [${FLEET_SUB}]`, 'scopes:', '  - name: other', `    subscription: ${FOREIGN_SUB}`, '    runbooks:', '      revision-cleanup: {}'].join('\n'),
        { source: 'foreign.yaml' },
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toContainEqual(expect.objectContaining({ path: 'scopes[0].subscription', line: 6, message: expect.stringContaining(`found ${FOREIGN_SUB}`) as unknown }));
  });

  it('YAML anchors repeat a policy block (docs/configuration.md#yaml-anchors); a merge key is refused with its line', () => {
    const app = (group: string, name: string): string => `/subscriptions/${FLEET_SUB}/resourceGroups/${group}/providers/Microsoft.App/containerApps/${name}`;
    const text = (third: string): string =>
      ['version: 1', 'estate: anchors', 'targets:', `  - id: ${app('rg-a', 'ca-a')}`, '    runbooks: &cleanup', '      revision-cleanup: { keep: 3, minAgeHours: 24 }', `  - id: ${app('rg-b', 'ca-b')}`, '    runbooks: *cleanup', `  - id: ${app('rg-c', 'ca-c')}`, third].join('\n');
    const config = parseConfigText(text('    runbooks: *cleanup'), { source: 'anchors.yaml' });
    expect(config.targets.map((target) => target.runbooks['revision-cleanup']?.keep)).toEqual([3, 3, 3]);
    let error: unknown;
    try {
      parseConfigText(text('    runbooks:\n      <<: *cleanup'), { source: 'anchors.yaml' });
    } catch (caught) {
      error = caught;
    }
    expect((error as ConfigError).issues).toEqual([expect.objectContaining({ path: 'targets[2].runbooks["<<"]', line: 11 })]);
  });

  it('warns about a scope that matches nothing', async () => {
    const resolution = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({ tags: { team: 'nobody' } })] }));
    expect(resolution.targets).toHaveLength(0);
    expect(resolution.warnings).toEqual([expect.stringContaining('scope fleet (scopes[0]) matches no resource') as unknown]);
  });

  it('refuses a resource two scopes select with different policies, naming both', async () => {
    const config = estate({
      subscriptions: [FLEET_SUB],
      scopes: [scope({ name: 'web', tags: { tier: 'web' } }), scope({ name: 'all', runbooks: { 'revision-cleanup': { keep: 3 } } })],
    });
    const error: unknown = await resolve(config).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TargetResolutionError);
    expect((error as Error).message).toContain('ca-fleet-02 is selected by scope web (scopes[0]) and by scope all (scopes[1]) with different policies');
    // The same policy twice is no conflict.
    const same = await resolve(estate({ subscriptions: [FLEET_SUB], scopes: [scope({ name: 'web', tags: { tier: 'web' } }), scope({ name: 'all' })] }));
    expect(same.targets.find((target) => target.id.endsWith('ca-fleet-02'))?.provenance.alsoSelectedBy).toEqual(['scope all (scopes[1])']);
  });

  it('fails closed when discovery cannot be read: the scope selects nothing and its runbook does nothing there, saying why', async () => {
    const config = estate({ subscriptions: [FLEET_SUB], scopes: [scope({})] });
    await sandbox().injectFault({ operationId: 'Resources_ListByResourceGroup', status: 403, errorCode: 'AuthorizationFailed', message: 'no read on rg-fleet', count: 50 });
    try {
      const result = await plan(config, 'revision-cleanup');
      expect(result.plans).toHaveLength(0);
      expect(result.exit).toBe('failed');
      const failed = result.record.targets.find((target) => target.status === 'failed');
      expect(failed?.targetId).toBe(`/subscriptions/${FLEET_SUB}/resourceGroups/rg-fleet`);
      expect(JSON.stringify(failed)).toContain('scope fleet (scopes[0]): its resources could not be listed');
    } finally {
      await sandbox().clearFaults();
    }
  });

  it('layers defaults per kind and per runbook under scopes and explicit targets, field by field', async () => {
    const app = (n: string): string => `/subscriptions/${FLEET_SUB}/resourceGroups/rg-fleet/providers/Microsoft.App/containerApps/ca-fleet-${n}`;
    const resolution = await resolve(
      estate({
        subscriptions: [FLEET_SUB],
        defaults: { runbooks: { 'revision-cleanup': { minAgeHours: 6 } }, kinds: { containerApp: { health: { path: '/ready' } } } },
        scopes: [scope({ runbooks: { 'revision-cleanup': { keep: 2 } } })],
        targets: [{ id: app('02'), runbooks: { 'revision-cleanup': { keep: 4 } } }],
      }),
    );
    const two = resolution.targets.find((target) => target.id === app('02'));
    expect(two?.runbooks['revision-cleanup']).toEqual({ keep: 4, minAgeHours: 6 });
    expect(two?.provenance).toEqual({
      selectedBy: 'targets[0]',
      alsoSelectedBy: ['scope fleet (scopes[0])'],
      policies: [{ runbook: 'revision-cleanup', source: 'targets[0]', over: ['scope fleet (scopes[0])', 'defaults.runbooks.revision-cleanup'] }],
    });
    const three = resolution.targets.find((target) => target.id === app('03'));
    expect(three?.runbooks['revision-cleanup']).toEqual({ keep: 2, minAgeHours: 6 });
    expect(three?.health?.path).toBe('/ready');
  });
});
