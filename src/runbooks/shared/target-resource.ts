/**
 * The plan-time half of "one entry per resource": before a runbook acts on a resource it
 * reaches by name (an ACR registry through its login server, a Key Vault through its vault
 * URI), it reads the resource from ARM at the configured ID. The data planes do not look at the
 * subscription or resource group, so a mistyped one would otherwise act on the registry or vault
 * of that name wherever it lives. An ID that ARM does not know fails the target (fail closed)
 * with a {@link ResourceNotFoundError} that says so; one that ARM answers for another resource
 * (another ID, another login server) with a {@link TargetResourceMismatchError}.
 *
 * Apps are reached through ARM by ID, so a wrong ID already ends in a 404 there.
 */
import type { AzureClients } from '../../azure/clients.ts';
import { cloudEndpoints, type AzureCloudName } from '../../azure/cloud.ts';
import { callAzure, ResourceNotFoundError } from '../../azure/errors.ts';
import { parseResourceId } from '../../azure/resource-id.ts';
import { OpsAutopilotError } from '../../errors.ts';

/** A target's ID is not where the resource it names really is (or ARM reports another one). */
export class TargetResourceMismatchError extends OpsAutopilotError {
  override readonly name: string = 'TargetResourceMismatchError';
  /** The configured ARM ID. */
  readonly resourceId: string;

  constructor(resourceId: string, message: string, options: { expected: string; found: string; cause?: unknown }) {
    super(message, { context: { resourceId, expected: options.expected, found: options.found }, cause: options.cause });
    this.resourceId = resourceId;
  }
}

/** A registry as ARM reports it. */
export interface RegistryResource {
  readonly id: string;
  readonly name: string;
  /** `properties.loginServer`, e.g. `crxshopaiprod.azurecr.io` (lower case). */
  readonly loginServer: string;
}

/**
 * The 404 of a resource reached by name, reworded: it is still a {@link ResourceNotFoundError}
 * (callers tell "not there" by type), but says that the ID, not the name, is what to check.
 */
const notThere = (kind: string, name: string, dataPlane: string, cause: ResourceNotFoundError): ResourceNotFoundError =>
  new ResourceNotFoundError(
    `${kind} ${name}: expected it at ${cause.resourceId}, found no such resource there in ARM (404 ${cause.code ?? 'ResourceNotFound'}); check the subscription and resource group of the target's ID (the data plane reaches ${dataPlane} wherever it lives, so nothing is planned on an ID that is not the ${kind}'s)`,
    { resourceId: cause.resourceId, operation: cause.operation, statusCode: cause.statusCode, code: cause.code, requestId: cause.requestId, cause },
  );

function sameId(configured: string, reported: string | undefined, kind: string, name: string): void {
  if (reported === undefined || reported.toLowerCase().replace(/\/+$/, '') !== configured.toLowerCase().replace(/\/+$/, '')) {
    throw new TargetResourceMismatchError(configured, `${kind} ${name}: expected ARM to report it at ${configured}, found ${reported ?? 'no id'}`, {
      expected: configured,
      found: reported ?? 'no id',
    });
  }
}

/**
 * Reads the registry at `registryId` from ARM and returns its login server.
 *
 * @throws ResourceNotFoundError when ARM has no registry at that ID; TargetResourceMismatchError
 *   when it reports another ID, or a login server that is not the registry's in `cloud`.
 */
export async function readRegistryResource(clients: Pick<AzureClients, 'containerRegistryManagementClient'>, registryId: string, cloud: AzureCloudName): Promise<RegistryResource> {
  const id = parseResourceId(registryId);
  const expectedServer = `${id.name.toLowerCase()}.${cloudEndpoints(cloud).containerRegistrySuffix}`;
  const client = await clients.containerRegistryManagementClient(id.subscriptionId);
  let registry: Awaited<ReturnType<typeof client.registries.get>>;
  try {
    registry = await callAzure({ resourceId: id.id, operation: 'get container registry' }, () => client.registries.get(id.resourceGroup, id.name));
  } catch (error) {
    if (error instanceof ResourceNotFoundError) throw notThere('registry', id.name, expectedServer, error);
    throw error;
  }
  sameId(id.id, registry.id, 'registry', id.name);
  const loginServer = (registry.loginServer ?? '').toLowerCase();
  if (loginServer !== expectedServer) {
    throw new TargetResourceMismatchError(
      id.id,
      `registry ${id.name}: expected ARM to report the login server ${expectedServer} (cloud ${cloud}), found ${loginServer === '' ? 'none' : loginServer}`,
      { expected: expectedServer, found: loginServer === '' ? 'none' : loginServer },
    );
  }
  return { id: id.id, name: id.name, loginServer };
}

/**
 * Checks that ARM has the vault at `vaultId` (the Key Vault data plane is reached by vault name
 * only) and returns its `vaultUri`.
 *
 * @throws ResourceNotFoundError when ARM has no vault at that ID; TargetResourceMismatchError
 *   when it reports another ID.
 */
export async function readVaultResource(clients: Pick<AzureClients, 'keyVaultManagementClient'>, vaultId: string, cloud: AzureCloudName): Promise<{ readonly vaultUri: string | undefined }> {
  const id = parseResourceId(vaultId);
  const client = await clients.keyVaultManagementClient(id.subscriptionId);
  let vault: Awaited<ReturnType<typeof client.vaults.get>>;
  try {
    vault = await callAzure({ resourceId: id.id, operation: 'get Key Vault' }, () => client.vaults.get(id.resourceGroup, id.name));
  } catch (error) {
    if (error instanceof ResourceNotFoundError) throw notThere('Key Vault', id.name, `https://${id.name.toLowerCase()}.${cloudEndpoints(cloud).keyVaultSuffix}`, error);
    throw error;
  }
  sameId(id.id, vault.id, 'Key Vault', id.name);
  return { vaultUri: vault.properties.vaultUri };
}
