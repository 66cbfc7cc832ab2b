/**
 * Loading and validation of world files (`sandbox/worlds/*.yaml`). The outer shape is checked
 * here; each provider validates the `spec` of its own resources when seeding.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { SandboxProvider, WorldFile, WorldResource } from '../contract.ts';
import { UnknownWorldError, WorldValidationError } from './errors.ts';

const guid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'expected a GUID');

const worldResourceSchema = z
  .object({
    type: z.string().regex(/^[A-Za-z0-9.]+\/[A-Za-z0-9./]+$/, 'expected an ARM type such as Microsoft.Web/sites'),
    resourceGroup: z.string().regex(/^[-\w._()]{1,90}$/, 'expected a resource group name'),
    name: z.string().regex(/^[A-Za-z0-9][-A-Za-z0-9_.]{0,126}$/, 'expected a resource name'),
    location: z.string().min(1),
    tags: z.record(z.string(), z.string()).optional(),
    spec: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const worldFileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lower-case letters, digits and dashes'),
    description: z.string().min(1),
    tenantId: guid,
    subscriptionId: guid,
    exampleConfig: z.string().min(1).optional(),
    plantedProblems: z.array(z.string()).default([]),
    resources: z.array(worldResourceSchema),
  })
  .strict();

/** A world loaded from disk. */
export interface LoadedWorld {
  readonly file: string;
  readonly world: WorldFile;
}

const issuePath = (segments: readonly PropertyKey[]): string =>
  segments.reduce<string>((text, segment) => (typeof segment === 'number' ? `${text}[${String(segment)}]` : text === '' ? String(segment) : `${text}.${String(segment)}`), '');

/** Validates a parsed world document; errors name the file and each field path. */
export function validateWorld(file: string, document: unknown): WorldFile {
  const parsed = worldFileSchema.safeParse(document);
  if (!parsed.success) {
    throw new WorldValidationError(
      file,
      parsed.error.issues.map((issue) => ({ path: issuePath(issue.path), message: issue.message })),
    );
  }
  const world = parsed.data;
  const seen = new Map<string, number>();
  const duplicates: { path: string; message: string }[] = [];
  world.resources.forEach((resource, index) => {
    const key = `${resource.type}/${resource.resourceGroup}/${resource.name}`.toLowerCase();
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else duplicates.push({ path: `resources[${String(index)}]`, message: `expected each resource once, found a duplicate of resources[${String(first)}]` });
  });
  if (duplicates.length > 0) throw new WorldValidationError(file, duplicates);
  return world;
}

/** Reads and validates one world file. */
export async function loadWorldFile(file: string): Promise<LoadedWorld> {
  const text = await readFile(file, 'utf8');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new WorldValidationError(file, [{ path: '', message: `expected valid YAML: ${(error as Error).message}` }]);
  }
  return { file, world: validateWorld(file, document) };
}

/** Lists the world files of a directory (`*.yaml`, `*.yml`), sorted; none when it does not exist. */
export async function listWorldFiles(directory: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => entry.endsWith('.yaml') || entry.endsWith('.yml'))
    .sort()
    .map((entry) => path.join(directory, entry));
}

/**
 * What a `--world` value means, the same for `sandbox`, `demo`, `npm run dev` and
 * `startSandbox({ worlds })`: a value with a path separator or ending in `.yaml`/`.yml` is a
 * world file (relative to the working directory); any other value is the name of a seed world in
 * `seedDirectory`. Returns the file's absolute path.
 *
 * @throws {@link UnknownWorldError} when the file does not exist or no seed world has that name.
 */
export async function resolveWorldArgument(value: string, seedDirectory: string): Promise<string> {
  const isFile = /[/\\]/.test(value) || /\.ya?ml$/i.test(value);
  if (isFile) {
    const file = path.resolve(value);
    try {
      await readFile(file);
    } catch {
      throw new UnknownWorldError(value, [], 'file');
    }
    return file;
  }
  const seeds = await listWorldFiles(seedDirectory);
  const match = seeds.find((file) => path.basename(file).replace(/\.ya?ml$/i, '') === value);
  if (match === undefined) throw new UnknownWorldError(value, seeds.map((file) => path.basename(file).replace(/\.ya?ml$/i, '')), 'name');
  return match;
}

/**
 * Groups each world's resources by the provider that declared their type. A type no provider
 * serves is an error naming the file and the resource index.
 */
export function assignResources(
  loaded: readonly LoadedWorld[],
  providers: readonly SandboxProvider[],
): Map<LoadedWorld, Map<SandboxProvider, WorldResource[]>> {
  const byType = new Map<string, SandboxProvider>();
  const knownTypes: string[] = [];
  for (const provider of providers) {
    for (const type of provider.types) {
      byType.set(type.toLowerCase(), provider);
      knownTypes.push(type);
    }
  }
  const result = new Map<LoadedWorld, Map<SandboxProvider, WorldResource[]>>();
  const names = new Map<string, string>();
  for (const entry of loaded) {
    const previous = names.get(entry.world.name);
    if (previous !== undefined) {
      throw new WorldValidationError(entry.file, [{ path: 'name', message: `expected a unique world name, found "${entry.world.name}" also used by ${previous}` }]);
    }
    names.set(entry.world.name, entry.file);
    const assignment = new Map<SandboxProvider, WorldResource[]>(providers.map((provider) => [provider, []]));
    const issues: { path: string; message: string }[] = [];
    entry.world.resources.forEach((resource, index) => {
      const provider = byType.get(resource.type.toLowerCase());
      if (provider === undefined) {
        issues.push({
          path: `resources[${String(index)}].type`,
          message: `expected a type served by a provider (${knownTypes.sort().join(', ') || 'no providers loaded'}), found "${resource.type}"`,
        });
      } else {
        assignment.get(provider)?.push(resource);
      }
    });
    if (issues.length > 0) throw new WorldValidationError(entry.file, issues);
    result.set(entry, assignment);
  }
  return result;
}
