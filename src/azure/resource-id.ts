/**
 * Parsing and formatting of Azure Resource Manager resource IDs.
 *
 * Every target in the estate configuration is named by its full ARM ID, and every error the
 * autopilot raises carries one, so this module is the single place that knows their grammar.
 */

/** The resource types Ops Autopilot looks after, by ARM provider namespace and type. */
export const RESOURCE_TYPES = {
  postgresFlexibleServer: 'Microsoft.DBforPostgreSQL/flexibleServers',
  webSite: 'Microsoft.Web/sites',
  containerApp: 'Microsoft.App/containerApps',
  containerRegistry: 'Microsoft.ContainerRegistry/registries',
  keyVault: 'Microsoft.KeyVault/vaults',
  storageAccount: 'Microsoft.Storage/storageAccounts',
} as const;

/** A short name for a supported resource type, e.g. `postgresFlexibleServer`. */
export type ResourceKind = keyof typeof RESOURCE_TYPES;

/** The parts of a top-level ARM resource ID. */
export interface ResourceId {
  /** The ID as given, normalised to a leading slash and no trailing slash. */
  readonly id: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  /** Provider namespace, e.g. `Microsoft.Web`. */
  readonly provider: string;
  /** `provider/type`, e.g. `Microsoft.Web/sites`. */
  readonly type: string;
  readonly name: string;
  /** The supported kind, or undefined when the type is not one Ops Autopilot handles. */
  readonly kind: ResourceKind | undefined;
}

/** Thrown when a string is not a well-formed top-level ARM resource ID. */
export class InvalidResourceIdError extends Error {
  override readonly name = 'InvalidResourceIdError';
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`"${input}" is not a valid ARM resource ID: ${reason}`);
  }
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESOURCE_GROUP = /^[-\w._()]{1,90}$/;
const NAME = /^[A-Za-z0-9][-A-Za-z0-9_.]{0,126}$/;

/**
 * Parses `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`.
 *
 * @throws {@link InvalidResourceIdError} naming what was expected and what was found.
 */
export function parseResourceId(input: string): ResourceId {
  const trimmed = input.trim().replace(/\/+$/, '');
  const parts = trimmed.split('/');
  // A leading slash yields an empty first segment.
  if (parts[0] !== '' || parts.length !== 9) {
    throw new InvalidResourceIdError(
      input,
      'expected /subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/{namespace}/{type}/{name}',
    );
  }
  const [, subscriptions, subscriptionId, resourceGroups, resourceGroup, providers, provider, type, name] =
    parts as [string, string, string, string, string, string, string, string, string];
  if (subscriptions.toLowerCase() !== 'subscriptions') {
    throw new InvalidResourceIdError(input, `expected "subscriptions" as the first segment, found "${subscriptions}"`);
  }
  if (!GUID.test(subscriptionId)) {
    throw new InvalidResourceIdError(input, `expected a subscription GUID, found "${subscriptionId}"`);
  }
  if (resourceGroups.toLowerCase() !== 'resourcegroups') {
    throw new InvalidResourceIdError(input, `expected "resourceGroups" as the third segment, found "${resourceGroups}"`);
  }
  if (!RESOURCE_GROUP.test(resourceGroup)) {
    throw new InvalidResourceIdError(input, `resource group "${resourceGroup}" has characters Azure does not allow`);
  }
  if (providers.toLowerCase() !== 'providers') {
    throw new InvalidResourceIdError(input, `expected "providers" as the fifth segment, found "${providers}"`);
  }
  if (!NAME.test(name)) {
    throw new InvalidResourceIdError(input, `resource name "${name}" has characters Azure does not allow`);
  }
  const fullType = `${provider}/${type}`;
  return {
    id: trimmed,
    subscriptionId: subscriptionId.toLowerCase(),
    resourceGroup,
    provider,
    type: fullType,
    name,
    kind: kindOfType(fullType),
  };
}

/** Returns the supported kind of an ARM type, compared case-insensitively as ARM does. */
export function kindOfType(type: string): ResourceKind | undefined {
  const lower = type.toLowerCase();
  for (const [kind, armType] of Object.entries(RESOURCE_TYPES) as [ResourceKind, string][]) {
    if (armType.toLowerCase() === lower) return kind;
  }
  return undefined;
}

/** Formats a top-level resource ID. */
export function formatResourceId(parts: {
  subscriptionId: string;
  resourceGroup: string;
  type: string;
  name: string;
}): string {
  return `/subscriptions/${parts.subscriptionId}/resourceGroups/${parts.resourceGroup}/providers/${parts.type}/${parts.name}`;
}

/**
 * The key an ARM ID compares by: trimmed, without a trailing slash, lower-cased. ARM compares IDs
 * case-insensitively (an alert's `alertTargetIDs` arrive lower-cased, the estate names them as
 * Azure returns them), so two IDs are the same resource exactly when their keys are equal.
 */
export function resourceIdKey(id: string): string {
  return id.trim().replace(/\/+$/, '').toLowerCase();
}

/** ARM IDs compare case-insensitively. */
export function sameResourceId(a: string, b: string): boolean {
  return resourceIdKey(a) === resourceIdKey(b);
}
