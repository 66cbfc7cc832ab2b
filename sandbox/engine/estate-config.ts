/**
 * Generates, per world, an estate configuration that points at this sandbox: the world's
 * example config (comments kept) or a minimal one, with the `azure:` endpoints, the run-record
 * store, the state tables and every notification webhook redirected to the sandbox, and `dryRun: false` (with a
 * comment saying why) so that runbooks really apply inside the sandbox. The result must satisfy the
 * estate config schema; an invalid one fails the start-up loudly.
 */
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Document, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { estateConfigSchema } from '../../src/config/schema.ts';
import { kindOfType } from '../../src/azure/resource-id.ts';
import type { WorldFile } from '../contract.ts';
import { GeneratedConfigError } from './errors.ts';

/** The account that holds run records in Azurite. */
export const RUN_RECORDS_ACCOUNT = 'stautopilotruns';

/** Settings merged into an estate config's `azure:` block. */
export type SandboxAzureSettings = Record<string, unknown>;

/** Builds the `azure:` settings for a sandbox. */
export function sandboxAzureSettings(options: {
  baseUrl: string;
  tokenEndpoint: string;
  caFile: string;
  blobUrlTemplate: string | undefined;
  tableUrlTemplate?: string | undefined;
  /** The PostgreSQL front door; without PostgreSQL, a loopback port nothing listens on. */
  postgresFrontDoor?: { readonly host: string; readonly port: number } | undefined;
}): SandboxAzureSettings {
  const { baseUrl } = options;
  return {
    resourceManagerEndpoint: baseUrl,
    authorityHost: baseUrl,
    keyVaultUrlTemplate: `${baseUrl}/vaults/{name}`,
    containerRegistryUrlTemplate: `${baseUrl}/registries/{name}`,
    // Without Azurite, blob URLs still point at the sandbox (where they 404) so that no
    // endpoint can fall back to real Azure.
    blobUrlTemplate: options.blobUrlTemplate ?? `${baseUrl}/_no-azurite/{name}`,
    tableUrlTemplate: options.tableUrlTemplate ?? `${baseUrl}/_no-azurite/{name}`,
    appHostUrlTemplate: `${baseUrl}/_hosts/{host}`,
    // Every flexible server is reached at the front door; TLS still verifies its FQDN.
    // Without PostgreSQL, port 1 refuses connections rather than falling back to real Azure.
    postgresUrlTemplate: `postgresql://127.0.0.1:${String(options.postgresFrontDoor?.port ?? 1)}`,
    caFile: options.caFile,
    sandboxTokenEndpoint: options.tokenEndpoint,
    keyVaultChallengeResourceVerification: false,
  };
}

const issuePath = (segments: readonly PropertyKey[]): string =>
  segments.reduce<string>((text, segment) => (typeof segment === 'number' ? `${text}[${String(segment)}]` : text === '' ? String(segment) : `${text}.${String(segment)}`), '');

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

function minimalConfig(world: WorldFile): Document {
  const targets = world.resources
    .filter((resource) => kindOfType(resource.type) !== undefined)
    .map((resource) => ({
      id: `/subscriptions/${world.subscriptionId}/resourceGroups/${resource.resourceGroup}/providers/${resource.type}/${resource.name}`,
    }));
  return new Document({ version: 1, estate: world.name, dryRun: true, targets });
}

/** Why generated configs apply: shown above `dryRun` in every generated file. */
export const SANDBOX_DRY_RUN_COMMENT =
  ' dryRun is false here on purpose: this config points only at the local sandbox, the one place where\n' +
  ' applying is harmless (nothing real is touched). Real estates keep the safe default, dryRun: true,\n' +
  ' until someone deliberately turns it off.';

/** Sets `dryRun: false` with {@link SANDBOX_DRY_RUN_COMMENT} above it. */
function setSandboxDryRun(document: Document): void {
  document.set('dryRun', false);
  const root = document.contents;
  if (!isMap(root)) return;
  const pair = root.items.find((item) => isScalar(item.key) && item.key.value === 'dryRun');
  if (pair !== undefined && isScalar(pair.key)) pair.key.commentBefore = SANDBOX_DRY_RUN_COMMENT;
}

/**
 * Writes `{outputDir}/{world}.estate.yaml` and returns its path and the source it was built from.
 * @throws {@link GeneratedConfigError} when the result fails the estate config schema.
 */
export async function writeWorldConfig(options: {
  world: WorldFile;
  repoRoot: string;
  outputDir: string;
  baseUrl: string;
  azure: SandboxAzureSettings;
  runRecordsBlobServiceUrl: string | undefined;
  /** Azurite's Table service of the run-record account, for the state tables. */
  stateTableServiceUrl?: string | undefined;
  log: (line: string) => void;
}): Promise<{ configFile: string; source: string }> {
  const { world } = options;
  let document: Document;
  let source = 'a minimal config listing every resource';
  const examplePath = world.exampleConfig === undefined ? undefined : path.resolve(options.repoRoot, world.exampleConfig);
  if (examplePath !== undefined && (await exists(examplePath))) {
    document = parseDocument(await readFile(examplePath, 'utf8'));
    if (document.errors.length > 0) {
      throw new GeneratedConfigError(world.name, examplePath, document.errors.map((error) => ({ path: '', message: error.message })));
    }
    source = examplePath;
  } else {
    if (examplePath !== undefined) options.log(`world ${world.name}: example config ${examplePath} not found; generating a minimal one`);
    document = minimalConfig(world);
  }
  setSandboxDryRun(document);
  for (const [key, value] of Object.entries(options.azure)) document.setIn(['azure', key], value);
  if (options.runRecordsBlobServiceUrl !== undefined) {
    document.setIn(['runRecords', 'blobServiceUrl'], options.runRecordsBlobServiceUrl);
    document.deleteIn(['runRecords', 'storageAccountId']);
  }
  if (options.stateTableServiceUrl !== undefined) {
    document.setIn(['state', 'tableServiceUrl'], options.stateTableServiceUrl);
    document.deleteIn(['state', 'storageAccountId']);
  }
  const webhooks = document.getIn(['notifications', 'webhooks']);
  if (isSeq(webhooks)) {
    webhooks.items.forEach((item, index) => {
      if (!isMap(item)) return;
      const name = item.get('name');
      if (typeof name === 'string') {
        document.setIn(['notifications', 'webhooks', index, 'url'], `${options.baseUrl}/_sandbox/webhooks/${encodeURIComponent(name)}`);
      }
    });
  }
  // PagerDuty targets post to the same capture, named after the target (the routing key stays in the vault).
  const pagerduty = document.getIn(['notifications', 'pagerduty']);
  if (isSeq(pagerduty)) {
    pagerduty.items.forEach((item, index) => {
      if (!isMap(item)) return;
      const name = item.get('name');
      if (typeof name === 'string') {
        document.setIn(['notifications', 'pagerduty', index, 'eventsUrl'], `${options.baseUrl}/_sandbox/webhooks/${encodeURIComponent(name)}`);
      }
    });
  }
  const parsed = estateConfigSchema.safeParse(document.toJS());
  if (!parsed.success) {
    throw new GeneratedConfigError(
      world.name,
      source,
      parsed.error.issues.map((issue) => ({ path: issuePath(issue.path), message: issue.message })),
    );
  }
  const configFile = path.join(options.outputDir, `${world.name}.estate.yaml`);
  const header = `# Generated by the Ops Autopilot sandbox for world "${world.name}" from ${source}.\n# Points at ${options.baseUrl}; valid only while that sandbox runs.\n`;
  await writeFile(configFile, header + document.toString());
  return { configFile, source };
}
