/**
 * `sandbox --estate my-estate.yaml`: runs an operator's own estate config against the sandbox
 * without writing a world.
 *
 * Every target the estate names is served: a resource that a loaded world already has (same
 * subscription, resource group, type and name, compared case-insensitively as ARM does) keeps
 * that world's planted state; any other is generated with the providers' healthy defaults (a
 * container app gets one active revision, a web app its App Service plan). The generated
 * resources form a world named after the estate whose example config is the estate file itself,
 * so the usual config generation applies: the endpoints, the run-record store and every webhook
 * are redirected to the sandbox, and `dryRun` is false (the sandbox is where applying is harmless).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { formatResourceId, kindOfType, parseResourceId, type ResourceId } from '../../src/azure/resource-id.ts';
import type { WorldFile, WorldResource } from '../contract.ts';
import { WorldValidationError } from './errors.ts';
import { validateWorld, type LoadedWorld } from './worlds.ts';

/** Where a generated resource lives when the estate does not say (ARM ids carry no location). */
const DEFAULT_LOCATION = 'westeurope';

/** An estate file turned into a world. */
export interface EstateWorld extends LoadedWorld {
  /** The estate file. */
  readonly estateFile: string;
  /** Ids of the targets the sandbox generated (not served by a loaded world). */
  readonly generated: readonly string[];
}

function resourceKey(subscriptionId: string, resourceGroup: string, type: string, name: string): string {
  return formatResourceId({ subscriptionId, resourceGroup, type, name }).toLowerCase();
}

/** The providers' defaults with protections on, plus what a type cannot go without (a plan, a revision). */
function generatedResources(id: ResourceId): WorldResource[] {
  const base = { type: id.type, resourceGroup: id.resourceGroup, name: id.name, location: DEFAULT_LOCATION, tags: { 'ops-autopilot-sandbox': 'generated' } };
  switch (kindOfType(id.type)) {
    case 'containerApp':
      return [
        {
          ...base,
          spec: {
            environment: `cae-${id.resourceGroup}`.slice(0, 60),
            environmentDomain: `sandbox-${id.resourceGroup.toLowerCase().replace(/[^a-z0-9]/g, '')}.${DEFAULT_LOCATION}.azurecontainerapps.io`,
            revisions: [{ suffix: 'initial', image: `${id.name}:sandbox`, createdDaysAgo: 1, active: true }],
          },
        },
      ];
    case 'webSite': {
      const plan = `asp-${id.name}`.slice(0, 60);
      return [
        { ...base, spec: { serverFarm: plan } },
        { type: 'Microsoft.Web/serverfarms', resourceGroup: id.resourceGroup, name: plan, location: DEFAULT_LOCATION, spec: { sku: { name: 'B1', tier: 'Basic' } } },
      ];
    }
    case 'keyVault':
      // The providers default to what Azure does when nothing is set; a generated resource is
      // the protected one a team would have built, so purge protection is on.
      return [{ ...base, spec: { enablePurgeProtection: true } }];
    case 'storageAccount':
      return [{ ...base, spec: { versioning: true } }];
    default:
      return [{ ...base, spec: {} }];
  }
}

/** A world name from the estate name, unique among the loaded worlds. */
function worldName(estate: string, taken: ReadonlySet<string>): string {
  const base = estate.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+/, '').slice(0, 50) || 'estate';
  let name = base;
  for (let n = 2; taken.has(name); n += 1) name = `${base}-${String(n)}`;
  return name;
}

/**
 * Builds the world of one estate file, given the worlds already loaded.
 *
 * @throws {@link WorldValidationError} naming the file when it is not an estate config with
 * targets, or when the targets it generates span several subscriptions (a world has one).
 */
export async function estateWorld(estateFile: string, loaded: readonly LoadedWorld[]): Promise<EstateWorld> {
  const file = path.resolve(estateFile);
  let document: unknown;
  try {
    document = parseYaml(await readFile(file, 'utf8'));
  } catch (error) {
    throw new WorldValidationError(file, [{ path: '', message: `expected a readable YAML or JSON estate config: ${error instanceof Error ? error.message : String(error)}` }]);
  }
  const root = typeof document === 'object' && document !== null ? (document as Record<string, unknown>) : {};
  const estate = typeof root.estate === 'string' ? root.estate : path.basename(file).replace(/\.(ya?ml|json)$/i, '');
  const targets = Array.isArray(root.targets) ? (root.targets as unknown[]) : [];
  const served = new Set<string>();
  for (const { world } of loaded) {
    for (const resource of world.resources) served.add(resourceKey(world.subscriptionId, resource.resourceGroup, resource.type, resource.name));
  }
  const issues: { path: string; message: string }[] = [];
  const ids: ResourceId[] = [];
  targets.forEach((target, index) => {
    const raw = typeof target === 'object' && target !== null ? (target as Record<string, unknown>).id : undefined;
    if (typeof raw !== 'string') {
      issues.push({ path: `targets[${String(index)}].id`, message: 'expected an ARM resource id' });
      return;
    }
    try {
      ids.push(parseResourceId(raw));
    } catch (error) {
      issues.push({ path: `targets[${String(index)}].id`, message: error instanceof Error ? error.message : String(error) });
    }
  });
  if (targets.length === 0) issues.push({ path: 'targets', message: 'expected at least one target' });
  const missing = ids.filter((id) => !served.has(resourceKey(id.subscriptionId, id.resourceGroup, id.type, id.name)));
  const subscriptions = [...new Set(missing.map((id) => id.subscriptionId.toLowerCase()))];
  if (subscriptions.length > 1) {
    issues.push({
      path: 'targets',
      message: `expected the targets no world serves to share one subscription (a sandbox world has one), found ${String(subscriptions.length)}: ${subscriptions.join(', ')}; put the others in a world file (--world)`,
    });
  }
  if (issues.length > 0) throw new WorldValidationError(file, issues);
  const firstWorld = loaded[0]?.world;
  const world: WorldFile = validateWorld(file, {
    name: worldName(estate, new Set(loaded.map((entry) => entry.world.name))),
    description: `Estate ${estate} from ${file}: ${String(ids.length - missing.length)} target(s) served by the loaded worlds, ${String(missing.length)} generated with healthy defaults.`,
    tenantId: firstWorld?.tenantId ?? '72f988bf-0000-4000-8000-00000000a001',
    subscriptionId: missing[0]?.subscriptionId ?? ids[0]?.subscriptionId ?? firstWorld?.subscriptionId,
    exampleConfig: file,
    plantedProblems: [],
    // One resource per id, however often the estate names it.
    resources: [...new Map(missing.flatMap(generatedResources).map((resource) => [resourceKey('', resource.resourceGroup, resource.type, resource.name), resource])).values()],
  });
  return { file, world, estateFile: file, generated: missing.map((id) => id.id) };
}
