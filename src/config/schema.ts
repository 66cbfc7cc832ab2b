/**
 * The estate configuration: which Azure resources Ops Autopilot looks after, which runbooks
 * apply to each, and with what policy.
 *
 * The schema is the single source of truth: TypeScript types are inferred from it and
 * `schema/estate.schema.json` is generated from it (`npm run schema` writes it; a test fails
 * when it is stale), so an editor can complete the YAML.
 */
import { z } from 'zod';
import { kindOfType, parseResourceId, RESOURCE_TYPES, type ResourceKind } from '../azure/resource-id.ts';
import { errorMessage } from '../errors.ts';
import { MAX_PATTERN_LENGTH, patternProblem } from './pattern.ts';
import { estateRemediationSchema, remediationIssues, targetRemediationSchema } from './remediation-schema.ts';
import { restorePolicySchema } from './restore-schema.ts';
import { keyVaultRotationSchema, rotationIssues } from './rotation-schema.ts';
import { duplicateTargets } from './target-identity.ts';

// `min(1)` rather than `positive()`, so errors and the JSON Schema read ">= 1" for counts.
const positiveInt = z.number().int().min(1);
const hostnameIsLoopback = (host: string): boolean =>
  host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** `postgresql://host:port`, where host may be `{host}` (the server's FQDN); nothing else (no login, database or options). */
function isPostgresUrlTemplate(value: string): boolean {
  if (!value.startsWith('postgresql://')) return false;
  try {
    const url = new URL(value.replaceAll('{host}', 'x'));
    return url.hostname !== '' && url.port !== '' && url.username === '' && url.password === '' && (url.pathname === '' || url.pathname === '/') && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

/** An absolute https URL. Plain http is refused: credentials travel on these connections. */
const httpsUrl = z
  .url()
  .refine((value) => value.startsWith('https://'), { message: 'expected an https:// URL' });

/** The URL `value` parses as, or undefined: a malformed URL is a config issue, never a throw. */
function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** A template with its placeholders filled with a sample DNS label, as the client layer fills them. */
const fillTemplate = (template: string): string => template.replaceAll('{name}', 'x').replaceAll('{host}', 'x');

/**
 * A URL template with a `{name}` (or `{host}`) placeholder, e.g. `https://{name}.vault.azure.net`.
 * Filled in, it must be a valid https URL with the placeholder in the host or the path (no
 * credentials, query or fragment), so a typo is a config issue with its path and line rather
 * than an `Invalid URL` thrown later.
 */
function urlTemplate(placeholder: 'name' | 'host'): z.ZodString {
  const expected = `expected an https:// URL template containing {${placeholder}}`;
  return z.string().superRefine((value, ctx) => {
    if (!value.startsWith('https://') || !value.includes(`{${placeholder}}`)) {
      ctx.addIssue({ code: 'custom', message: expected });
      return;
    }
    const url = parseUrl(fillTemplate(value));
    if (url === undefined) {
      ctx.addIssue({ code: 'custom', message: `${expected} that is a valid URL once {${placeholder}} is filled in (no spaces; {${placeholder}} in the host or path)` });
    } else if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
      ctx.addIssue({ code: 'custom', message: `${expected}, with no user name, password, query or fragment` });
    }
  });
}

/** True when a URL or URL template (placeholders filled) parses and points at a loopback host. */
function isLoopbackValue(value: string): boolean {
  const url = parseUrl(fillTemplate(value));
  return url !== undefined && hostnameIsLoopback(url.hostname);
}

/** A URL as shown in a message: origin only (webhook URLs carry their credential in the path). */
function shownUrl(value: string): string {
  const url = parseUrl(value);
  if (url === undefined) return value;
  return url.pathname === '/' && url.search === '' ? url.origin : `${url.origin}/…`;
}

/**
 * With the sandbox credential (`azure.sandboxTokenEndpoint` set), every URL anywhere else in the
 * configuration must be loopback too: `runRecords.blobServiceUrl` gets the sandbox's tokens, a
 * webhook would post the sandbox's run to the outside world, and a field added later is covered
 * without anyone remembering to add it here. The `azure` block has its own, stricter check
 * ({@link azureSettingsSchema}: missing overrides too). Reads the raw input, so the loader can
 * report it next to every other issue.
 */
export function sandboxUrlIssues(input: unknown): { path: (string | number)[]; message: string }[] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return [];
  const root = input as Record<string, unknown>;
  const azure = root.azure;
  const sandbox = azure !== null && typeof azure === 'object' ? (azure as Record<string, unknown>).sandboxTokenEndpoint : undefined;
  if (typeof sandbox !== 'string') return [];
  const issues: { path: (string | number)[]; message: string }[] = [];
  const walk = (value: unknown, path: (string | number)[]): void => {
    if (typeof value === 'string') {
      // Absolute URLs with an authority (scheme://); ARM IDs and paths start with "/".
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && parseUrl(fillTemplate(value)) !== undefined && !isLoopbackValue(value)) {
        issues.push({ path, message: `expected a loopback address when sandboxTokenEndpoint is set, found "${shownUrl(value)}"` });
      }
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => {
        walk(item, [...path, index]);
      });
    } else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value as Record<string, unknown>)) walk(child, [...path, key]);
    }
  };
  for (const [key, value] of Object.entries(root)) if (key !== 'azure') walk(value, [key]);
  return issues;
}

const durationHours = z.number().positive().max(24 * 366);

/**
 * A user-supplied name pattern (RE2 syntax, matched against whole names). Every pattern field of
 * the configuration uses this, so `config validate` checks exactly what the runbooks compile
 * (`compileNamePattern` in pattern.ts): linear-time matching, bounded length and program size.
 */
export const namePatternSchema = z
  .string()
  .min(1)
  .max(MAX_PATTERN_LENGTH)
  .superRefine((source, ctx) => {
    // Length is the checks' above to report (and the JSON Schema's to show); the rest is RE2's.
    if (source.length === 0 || source.length > MAX_PATTERN_LENGTH) return;
    const problem = patternProblem(source);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

// ---------------------------------------------------------------------------------------------
// Azure connection settings
// ---------------------------------------------------------------------------------------------

/** ARM token-bucket parameters; the defaults are ARM's documented per-principal limits. */
export const requestBudgetSchema = z
  .object({
    armReadsPerSecond: z.number().positive().max(1000).default(25).describe('ARM reads per second per subscription and principal.'),
    armReadBurst: positiveInt.max(10_000).default(250).describe('ARM read burst per subscription and principal.'),
    armWritesPerSecond: z.number().positive().max(1000).default(10).describe('ARM writes per second per subscription and principal.'),
    armWriteBurst: positiveInt.max(10_000).default(200).describe('ARM write burst per subscription and principal.'),
    /** Per registry: ACR data-plane operations per second. */
    acrPerSecond: z.number().positive().max(1000).default(10).describe('ACR data-plane operations per second per registry.'),
    acrBurst: positiveInt.max(10_000).default(20).describe('ACR data-plane burst per registry.'),
    /** Per vault: Key Vault allows 4,000 secret operations per 10 s; we stay far below it. */
    keyVaultPerSecond: z.number().positive().max(1000).default(50).describe('Key Vault operations per second per vault (Key Vault allows 4,000 per 10 s).'),
    keyVaultBurst: positiveInt.max(10_000).default(100).describe('Key Vault burst per vault.'),
    /**
     * Per storage account (blob data plane). Azure Storage's scalability target is 20,000
     * requests per second per standard account, shared by everything using the account; the
     * autopilot writes a few run records and backups, so it stays far below that.
     */
    storagePerSecond: z.number().positive().max(20_000).default(100).describe('Blob data-plane requests per second per storage account.'),
    storageBurst: positiveInt.max(10_000).default(200).describe('Blob data-plane burst per storage account.'),
    /** Largest number of concurrent requests one budget lets through. */
    maxConcurrency: positiveInt.max(256).default(8).describe('Largest number of concurrent requests one budget lets through.'),
  })
  .strict();

/** The Azure settings that override where requests go. */
export type EndpointOverrideField =
  | 'resourceManagerEndpoint'
  | 'authorityHost'
  | 'keyVaultUrlTemplate'
  | 'containerRegistryUrlTemplate'
  | 'blobUrlTemplate'
  | 'tableUrlTemplate'
  | 'appHostUrlTemplate'
  | 'postgresUrlTemplate';

/**
 * The endpoint overrides of Azure settings as `[field, value]`, in a fixed order: every service
 * endpoint, `undefined` when not set (the cloud's real Azure endpoint applies), and
 * `authorityHost` only when it is set, since the sandbox credential never uses an authority.
 * With a sandbox token endpoint, every one of them must be a loopback address.
 */
export function endpointOverrides(settings: Readonly<Pick<AzureSettings, EndpointOverrideField>>): [EndpointOverrideField, string | undefined][] {
  const overrides: [EndpointOverrideField, string | undefined][] = [
    ['resourceManagerEndpoint', settings.resourceManagerEndpoint],
    ['authorityHost', settings.authorityHost],
    ['keyVaultUrlTemplate', settings.keyVaultUrlTemplate],
    ['containerRegistryUrlTemplate', settings.containerRegistryUrlTemplate],
    ['blobUrlTemplate', settings.blobUrlTemplate],
    ['tableUrlTemplate', settings.tableUrlTemplate],
    ['appHostUrlTemplate', settings.appHostUrlTemplate],
    ['postgresUrlTemplate', settings.postgresUrlTemplate],
  ];
  return overrides.filter(([field, value]) => field !== 'authorityHost' || value !== undefined);
}

export const azureSettingsSchema = z
  .object({
    /** The Azure cloud. Its endpoints are used unless overridden below. */
    cloud: z.enum(['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud']).default('AzureCloud').describe('The Azure cloud; its endpoints are used unless overridden.'),
    /** Override of the Resource Manager endpoint, for sovereign clouds or the local sandbox. */
    resourceManagerEndpoint: httpsUrl.optional().describe('Override of the Resource Manager endpoint, for sovereign clouds or the local sandbox.'),
    /** Override of the Entra ID authority host. */
    authorityHost: httpsUrl.optional().describe('Override of the Entra ID authority host.'),
    /** Key Vault data-plane URL per vault name. Defaults to the cloud's vault DNS suffix. */
    keyVaultUrlTemplate: urlTemplate('name').optional().describe("Key Vault data-plane URL per vault name, with {name}; default: the cloud's vault DNS suffix."),
    /** ACR data-plane (login server) URL per registry name. */
    containerRegistryUrlTemplate: urlTemplate('name').optional().describe('ACR data-plane (login server) URL per registry name, with {name}.'),
    /** Blob endpoint per storage account name. */
    blobUrlTemplate: urlTemplate('name').optional().describe('Blob endpoint per storage account name, with {name}.'),
    /** Table service endpoint per storage account name (the state tables). */
    tableUrlTemplate: urlTemplate('name').optional().describe('Table service endpoint per storage account name, with {name} (the state tables).'),
    /**
     * How to reach an app by its Azure host name (`defaultHostName`, ingress FQDN) for health
     * checks. Defaults to `https://{host}`; a gateway or the sandbox can map hosts elsewhere.
     */
    appHostUrlTemplate: urlTemplate('host').optional().describe('How to reach an app by its Azure host name for health checks, with {host}; default https://{host}.'),
    /**
     * Where to open a PostgreSQL connection to a flexible server, by its FQDN
     * (`fullyQualifiedDomainName`). Defaults to `postgresql://{host}:5432`. TLS still verifies the
     * server's certificate against the FQDN (the TLS server name), so a gateway, a tunnel or the
     * sandbox's front door (`postgresql://127.0.0.1:{port}`) can stand in for the address.
     */
    postgresUrlTemplate: z
      .string()
      .refine(isPostgresUrlTemplate, { message: 'expected a postgresql://host:port template, optionally with {host}, e.g. postgresql://{host}:5432' })
      .optional()
      .describe("Where to open a PostgreSQL connection by the server's FQDN: postgresql://host:port, optionally with {host}; default postgresql://{host}:5432. TLS still verifies the FQDN."),
    /** PEM file of extra CA certificates to trust, in addition to the system roots. */
    caFile: z.string().min(1).optional().describe('PEM file of extra CA certificates to trust, besides the system roots.'),
    /** Client id of a user-assigned managed identity; omit for the system-assigned one. */
    managedIdentityClientId: z.uuid().optional().describe('Client id of a user-assigned managed identity; omit for the system-assigned one.'),
    /**
     * Whether the Key Vault challenge's resource must be a parent domain of the vault host.
     * Only loopback vault URLs may turn this off, because a loopback host can never be a
     * subdomain of `vault.azure.net`.
     */
    keyVaultChallengeResourceVerification: z.boolean().default(true).describe('Whether the Key Vault challenge resource must be a parent domain of the vault host; only a loopback vault URL may turn it off.'),
    /**
     * Local sandbox only: the token endpoint of the sandbox's identity emulation. Allowed only
     * when every endpoint above is a loopback address, so a sandbox credential can never be
     * used against real Azure.
     */
    sandboxTokenEndpoint: httpsUrl.optional().describe('Local sandbox only: its token endpoint. Allowed only when every endpoint is a loopback address.'),
    requestBudget: requestBudgetSchema.default(requestBudgetSchema.parse({})).describe('Token buckets that pace requests per ARM subscription, registry, vault and storage account.'),
  })
  .strict()
  .superRefine((azure, ctx) => {
    const endpoints = endpointOverrides(azure);
    if (azure.sandboxTokenEndpoint !== undefined) {
      for (const [field, value] of [['sandboxTokenEndpoint', azure.sandboxTokenEndpoint] as const, ...endpoints]) {
        if (value === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: 'expected a loopback override when sandboxTokenEndpoint is set, found none (it would default to real Azure)',
          });
        } else if (parseUrl(fillTemplate(value)) !== undefined && !isLoopbackValue(value)) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `expected a loopback address when sandboxTokenEndpoint is set, found "${value}"`,
          });
        }
      }
    }
    if (!azure.keyVaultChallengeResourceVerification) {
      const template = azure.keyVaultUrlTemplate;
      if (template === undefined || !isLoopbackValue(template)) {
        ctx.addIssue({
          code: 'custom',
          path: ['keyVaultChallengeResourceVerification'],
          message: 'expected true unless keyVaultUrlTemplate is a loopback address, found false',
        });
      }
    }
  });

// ---------------------------------------------------------------------------------------------
// Runbook policies, per runbook
// ---------------------------------------------------------------------------------------------

// `backup-verify` takes a different policy per resource kind. Each is written twice: the fields
// alone (for parsing, where the target's kind is not yet known) and with their defaults (applied
// once the kind is known), so an empty policy on a storage account gets storage defaults rather
// than whichever union member happened to match first.

const postgresBackupFields = {
  /** Backup retention the server must keep, in days. */
  minRetentionDays: positiveInt.max(35).describe('PostgreSQL: backup retention the server must keep, in days.'),
  /** Newest completed backup may be at most this old. */
  maxBackupAgeHours: durationHours.describe('PostgreSQL: the newest completed backup may be at most this old, in hours.'),
  requireGeoRedundantBackup: z.boolean().describe('PostgreSQL: require geo-redundant backup storage.'),
};

/** `backup-verify` for a PostgreSQL flexible server. */
export const postgresBackupPolicySchema = z
  .object({
    minRetentionDays: postgresBackupFields.minRetentionDays.default(7).describe('PostgreSQL: backup retention the server must keep, in days.'),
    maxBackupAgeHours: postgresBackupFields.maxBackupAgeHours.default(26).describe('PostgreSQL: the newest completed backup may be at most this old, in hours.'),
    requireGeoRedundantBackup: postgresBackupFields.requireGeoRedundantBackup.default(false).describe('PostgreSQL: require geo-redundant backup storage.'),
  })
  .strict();

const storageProtectionFields = {
  minBlobSoftDeleteDays: positiveInt.max(365).describe('Storage: blob soft delete must keep deleted blobs at least this many days.'),
  requireContainerSoftDelete: z.boolean().describe('Storage: require container soft delete.'),
  minContainerSoftDeleteDays: positiveInt.max(365).describe('Storage: container soft delete must keep deleted containers at least this many days.'),
  requireVersioning: z.boolean().describe('Storage: require blob versioning.'),
  requireGeoRedundancy: z.boolean().describe('Storage: require a geo-redundant SKU (GRS, RA-GRS, GZRS, RA-GZRS).'),
};

/** `backup-verify` for a storage account. */
export const storageProtectionPolicySchema = z
  .object({
    minBlobSoftDeleteDays: storageProtectionFields.minBlobSoftDeleteDays.default(7).describe('Storage: blob soft delete must keep deleted blobs at least this many days.'),
    requireContainerSoftDelete: storageProtectionFields.requireContainerSoftDelete.default(true).describe('Storage: require container soft delete.'),
    minContainerSoftDeleteDays: storageProtectionFields.minContainerSoftDeleteDays.default(7).describe('Storage: container soft delete must keep deleted containers at least this many days.'),
    requireVersioning: storageProtectionFields.requireVersioning.default(false).describe('Storage: require blob versioning.'),
    requireGeoRedundancy: storageProtectionFields.requireGeoRedundancy.default(false).describe('Storage: require a geo-redundant SKU (GRS, RA-GRS, GZRS, RA-GZRS).'),
  })
  .strict();

const keyVaultProtectionFields = {
  requireSoftDelete: z.boolean().describe('Key Vault: require soft delete.'),
  requirePurgeProtection: z.boolean().describe('Key Vault: require purge protection.'),
};

/** `backup-verify` for a Key Vault. */
export const keyVaultProtectionPolicySchema = z
  .object({
    requireSoftDelete: keyVaultProtectionFields.requireSoftDelete.default(true).describe('Key Vault: require soft delete.'),
    requirePurgeProtection: keyVaultProtectionFields.requirePurgeProtection.default(true).describe('Key Vault: require purge protection.'),
  })
  .strict();

/** A `backup-verify` policy once its target's kind has chosen the shape and filled defaults. */
export type BackupVerifyPolicy =
  | z.output<typeof postgresBackupPolicySchema>
  | z.output<typeof storageProtectionPolicySchema>
  | z.output<typeof keyVaultProtectionPolicySchema>;

/** Any of the three shapes, no defaults; the target picks one (see {@link targetSchema}). */
const backupVerifyInputSchema = z.union([
  z.object(postgresBackupFields).partial().strict(),
  z.object(storageProtectionFields).partial().strict(),
  z.object(keyVaultProtectionFields).partial().strict(),
]);

/** `keyvault-backup`: where secret backups go and how long they stay. */
export const keyVaultBackupPolicySchema = z
  .object({
    /** ARM ID of the storage account that receives the backups. */
    storageAccountId: z.string().describe('ARM ID of the storage account that receives the backups.'),
    container: z
      .string()
      .regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'expected a valid blob container name')
      .default('keyvault-backups')
      .describe('Blob container of the backups.'),
    retentionDays: positiveInt.max(3650).default(30).describe('Backups older than this many days are deleted.'),
    skipCertificateBackedSecrets: z.boolean().default(true).describe('Skip secrets that back a certificate (back up the certificate instead).'),
  })
  .strict();

/** `revision-cleanup`: deactivate old Container Apps revisions. */
export const revisionCleanupPolicySchema = z
  .object({
    /** Active revisions to keep, newest first. At least 1, so cleanup can never empty an app. */
    keep: positiveInt.max(100).default(5).describe('Active revisions to keep, newest first; at least 1, so cleanup can never empty an app.'),
    /** Never deactivate a revision younger than this. */
    minAgeHours: z.number().min(0).max(24 * 366).default(24).describe('Never deactivate a revision younger than this, in hours.'),
  })
  .strict();

/** `image-purge`: old tags in an Azure Container Registry. */
export const imagePurgePolicySchema = z
  .object({
    /** Repositories to purge, as RE2 regular expressions over the whole repository name. */
    repositories: z.array(namePatternSchema).min(1).max(100).default(['.*']).describe('Repositories to purge, as RE2 regular expressions over the whole repository name.'),
    /** Only tags matching this RE2 regular expression (over the whole tag) are candidates. */
    tagFilter: namePatternSchema.default('.*').describe('Only tags matching this RE2 regular expression (over the whole tag) are candidates.'),
    /** Newest tags to keep per repository. At least 1. */
    keep: positiveInt.max(10_000).default(10).describe('Newest tags to keep per repository; at least 1.'),
    /** Candidates must also be older than this. */
    olderThanDays: z.number().min(0).max(3650).default(30).describe('Candidates must also be older than this many days.'),
    deleteUntaggedManifests: z.boolean().default(false).describe('Also delete manifests that no tag points at.'),
    /** Also delete locked tags and manifests (deleteEnabled or writeEnabled false). */
    includeLocked: z.boolean().default(false).describe('Also delete locked tags and manifests (deleteEnabled or writeEnabled false).'),
    /** A plan with more deletions than this is refused unless forced. */
    maxDeletionsPerRun: positiveInt.max(100_000).default(500).describe('A plan with more deletions than this is refused unless forced.'),
    /**
     * ARM IDs of Container Apps, Container Apps jobs and web apps whose images count as in use,
     * besides every Container App and web app target in this configuration. Each is read on its
     * own, so one that does not exist fails the plan.
     */
    inUseScope: z.array(z.string()).default([]).describe('ARM IDs of Container Apps, jobs and web apps whose images count as in use, besides the targets of this file.'),
    /**
     * Who else counts as a user of the registry's images. `subscriptions` (the default): every
     * Container App, Container Apps job and web app or function app (site, slots, sidecars) the
     * identity can read in the registry's subscription, in every subscription a target of this
     * file lives in, and in `inUseSubscriptions`. `listed`: only the configured targets and
     * `inUseScope` (an explicit opt-in to a narrower, riskier view).
     */
    inUseDiscovery: z.enum(['subscriptions', 'listed']).default('subscriptions').describe('Who else counts as a user of the images: subscriptions (every app the identity can read there) or listed (only targets and inUseScope).'),
    /** More subscriptions whose apps and jobs count as users (e.g. where a shared registry's consumers live). */
    inUseSubscriptions: z.array(z.guid()).default([]).describe('More subscriptions whose apps and jobs count as users of the images.'),
    /**
     * The images of this many inactive revisions per Container App, newest first, count as in
     * use: a rollback reactivates them.
     */
    keepInactiveRevisions: z.number().int().min(0).max(100).default(2).describe('The images of this many inactive revisions per Container App (newest first) count as in use: a rollback reactivates them.'),
  })
  .strict();

/** `secret-expiry`: secrets and certificate-backed secrets near expiry. */
export const secretExpiryPolicySchema = z
  .object({
    warnWithinDays: positiveInt.max(3650).default(30).describe('Warn about secrets expiring within this many days.'),
    requireExpiry: z.boolean().default(false).describe('Report secrets without an expiry date.'),
  })
  .strict();

/** Health endpoint of a web app or container app, used by inventory and remediation checks. */
export const healthCheckSchema = z
  .object({
    path: z.string().startsWith('/').default('/healthz').describe('Health path, e.g. /healthz.'),
    /** Optional readiness path, e.g. `/readyz`. */
    readinessPath: z.string().startsWith('/').optional().describe('Optional readiness path, e.g. /readyz.'),
    expectStatus: z.number().int().min(100).max(599).default(200).describe('HTTP status a healthy answer has.'),
    timeoutSeconds: z.number().positive().max(120).default(10).describe('Seconds a health request may take.'),
  })
  .strict();

/** Runbook names and the resource kinds each applies to. */
export const RUNBOOK_KINDS = {
  'backup-verify': ['postgresFlexibleServer', 'storageAccount', 'keyVault'],
  'keyvault-backup': ['keyVault'],
  'revision-cleanup': ['containerApp'],
  'image-purge': ['containerRegistry'],
  'secret-expiry': ['keyVault'],
} as const satisfies Record<string, readonly ResourceKind[]>;

/** A runbook that a target can opt into. */
export type RunbookName = keyof typeof RUNBOOK_KINDS;

const runbooksSchema = z
  .object({
    'backup-verify': backupVerifyInputSchema.optional(),
    'keyvault-backup': keyVaultBackupPolicySchema.optional(),
    'revision-cleanup': revisionCleanupPolicySchema.optional(),
    'image-purge': imagePurgePolicySchema.optional(),
    'secret-expiry': secretExpiryPolicySchema.optional(),
  })
  .strict();

/**
 * The same policy object with its defaults taken out: each field optional, its default shown to
 * editors (JSON Schema `default`) but not filled in. Policies are merged across levels
 * (defaults, scope, target) on what was *written*, so a default of a lower level must not
 * masquerade as a value written on a higher one; the defaults are filled once, after merging.
 */
function withoutDefaults<T extends z.ZodObject>(schema: T): z.ZodType<z.input<T>, z.input<T>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, field] of Object.entries(schema.shape) as [string, z.ZodType][]) {
    if (field instanceof z.ZodDefault) {
      const description = field.description ?? (field.unwrap() as z.ZodType).description;
      const defaultValue: unknown = field.def.defaultValue;
      shape[key] = (field.unwrap() as z.ZodType).optional().meta({ ...(description === undefined ? {} : { description }), default: defaultValue });
    } else shape[key] = field;
  }
  const rebuilt = z.object(shape).strict();
  return (schema.description === undefined ? rebuilt : rebuilt.describe(schema.description)) as unknown as z.ZodType<z.input<T>, z.input<T>>;
}

/**
 * Runbook policies as written (no defaults filled): the one shape of `runbooks` on a target, a
 * scope and a kind default, and of `defaults.runbooks`.
 */
export const writtenRunbooksSchema = z
  .object({
    'backup-verify': backupVerifyInputSchema
      .optional()
      .describe('Backup and protection checks: PostgreSQL retention and backup age, storage soft delete and redundancy, Key Vault soft delete and purge protection (the fields of the target\'s kind).'),
    'keyvault-backup': withoutDefaults(keyVaultBackupPolicySchema).optional().describe('Back up every Key Vault secret to a blob container and prune old backups.'),
    'revision-cleanup': withoutDefaults(revisionCleanupPolicySchema).optional().describe('Deactivate old Container Apps revisions, keeping the newest active ones.'),
    'image-purge': withoutDefaults(imagePurgePolicySchema).optional().describe('Delete old tags (and optionally untagged manifests) in a container registry, never an image in use.'),
    'secret-expiry': withoutDefaults(secretExpiryPolicySchema).optional().describe('Report Key Vault secrets near expiry (or without one).'),
  })
  .strict();

/** Runbook policies as written, before defaults. */
export type WrittenRunbooks = z.output<typeof writtenRunbooksSchema>;

/** Every runbook policy of a target, with defaults filled in. */
export type RunbookPolicies = Omit<z.output<typeof runbooksSchema>, 'backup-verify'> & {
  'backup-verify'?: BackupVerifyPolicy;
};

const BACKUP_VERIFY_BY_KIND = {
  postgresFlexibleServer: postgresBackupPolicySchema,
  storageAccount: storageProtectionPolicySchema,
  keyVault: keyVaultProtectionPolicySchema,
} as const;

/** Kinds a health check applies to. */
const HEALTH_KINDS: readonly ResourceKind[] = ['webSite', 'containerApp'];

/**
 * The policy fields a target, a scope and a per-kind default share: one shape, so a block can
 * move from a target to a scope (or a YAML anchor) unchanged.
 */
const policyFields = {
  health: healthCheckSchema.optional().describe('Health endpoint of a web app or container app (inventory, remediation and restore cutover checks).'),
  runbooks: writtenRunbooksSchema.optional().describe('The runbooks that apply, each with its policy; a runbook not listed here (or on a level below) does not run.'),
  remediation: targetRemediationSchema.optional(),
  restore: restorePolicySchema.optional().describe('Point-in-time restore and restore drills of a PostgreSQL flexible server.'),
};

/** The policy block of a scope or a per-kind default (the target's, without `id` and `displayName`). */
export const policySchema = z.object(policyFields).strict().describe('Runbook policies, health check, remediation and restore settings.');

/** A policy block as written. */
export type WrittenPolicy = z.output<typeof policySchema>;

/**
 * Checks a policy block against the resource kinds it can apply to: each runbook must fit at
 * least one of them (and `backup-verify`'s fields every one of them it applies to), `health`
 * and `restore` the kinds that have them. For a target the kinds are its own kind.
 */
export function policyKindIssues(policy: WrittenPolicy, kinds: readonly ResourceKind[], what: string): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const runbooks = policy.runbooks ?? {};
  for (const [runbook, runbookKinds] of Object.entries(RUNBOOK_KINDS) as [RunbookName, readonly ResourceKind[]][]) {
    if (runbooks[runbook] !== undefined && !kinds.some((kind) => runbookKinds.includes(kind))) {
      issues.push({ path: ['runbooks', runbook], message: `expected ${what} ${runbookKinds.join(' or ')} for ${runbook}, found ${kinds.join(', ')}` });
    }
  }
  const backup = runbooks['backup-verify'];
  if (backup !== undefined) {
    const seen = new Set<string>();
    for (const kind of kinds) {
      if (!(kind in BACKUP_VERIFY_BY_KIND)) continue;
      // The union accepts any of the three shapes; check with the one for each kind so that a
      // storage field on a PostgreSQL target is reported, not silently dropped.
      const strict = BACKUP_VERIFY_BY_KIND[kind as keyof typeof BACKUP_VERIFY_BY_KIND].safeParse(backup);
      if (strict.success) continue;
      for (const issue of strict.error.issues) {
        const key = `${issue.path.join('.')}|${issue.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        issues.push({ path: ['runbooks', 'backup-verify', ...(issue.path as (string | number)[])], message: kinds.length > 1 && issue.code === 'unrecognized_keys' ? `${issue.message} for a ${kind} (narrow the scope with types)` : issue.message });
      }
    }
  }
  if (policy.restore !== undefined && !kinds.includes('postgresFlexibleServer')) {
    issues.push({ path: ['restore'], message: `expected a PostgreSQL flexible server for a restore policy, found ${kinds.join(', ')}` });
  }
  if (policy.health !== undefined && !kinds.some((kind) => HEALTH_KINDS.includes(kind))) {
    issues.push({ path: ['health'], message: `expected a web site or container app for a health check, found ${kinds.join(', ')}` });
  }
  return issues;
}

/** Fills the defaults of written runbook policies for a target of `kind` (already validated). */
export function fillRunbookDefaults(written: WrittenRunbooks, kind: ResourceKind | undefined): RunbookPolicies {
  const { 'backup-verify': backup, ...rest } = written;
  const filled = runbooksSchema.safeParse(rest);
  // Validated before; a failure here only happens for a policy the refinements already reported.
  const runbooks = (filled.success ? filled.data : rest) as RunbookPolicies;
  if (backup === undefined) return runbooks;
  const schema = kind !== undefined && kind in BACKUP_VERIFY_BY_KIND ? BACKUP_VERIFY_BY_KIND[kind as keyof typeof BACKUP_VERIFY_BY_KIND] : undefined;
  const policy = schema?.safeParse(backup);
  // zod runs the transform even after the refinement reported that this policy does not fit the
  // target; the parse fails on those issues, so the unchanged value never escapes.
  return { ...runbooks, 'backup-verify': policy?.success === true ? policy.data : (backup as BackupVerifyPolicy) };
}

export const targetSchema = z
  .object({
    id: z.string().describe('Full ARM resource ID: /subscriptions/{id}/resourceGroups/{group}/providers/{namespace}/{type}/{name}.'),
    displayName: z.string().min(1).optional().describe('Display name in plans, records and notifications; defaults to the resource name.'),
    health: policyFields.health,
    runbooks: writtenRunbooksSchema.default({}).describe(policyFields.runbooks.description ?? ''),
    remediation: targetRemediationSchema.optional(),
    restore: policyFields.restore,
    /** Credential rotation of the secrets of a Key Vault (issue 11). */
    rotation: keyVaultRotationSchema.optional().describe('Credential rotation of the secrets of a Key Vault: kind, validity, consumers, derived secrets.'),
  })
  .strict()
  .describe('One resource, by its full ARM ID, with its policies; wins over scopes and defaults that also select it.')
  .superRefine((target, ctx) => {
    let kind: ResourceKind | undefined;
    try {
      const parsed = parseResourceId(target.id);
      kind = parsed.kind;
      if (kind === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['id'],
          message: `expected a resource of type ${Object.values(RESOURCE_TYPES).join(', ')}, found "${parsed.type}"`,
        });
        return;
      }
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['id'], message: errorMessage(error) });
      return;
    }
    for (const issue of policyKindIssues(target, [kind], 'a target of kind')) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    if (target.rotation !== undefined && kind !== 'keyVault') ctx.addIssue({ code: 'custom', path: ['rotation'], message: `expected a Key Vault for a rotation policy, found ${kind}` });
    const kvBackup = target.runbooks['keyvault-backup'];
    if (kvBackup !== undefined) {
      try {
        if (parseResourceId(kvBackup.storageAccountId).kind !== 'storageAccount') {
          ctx.addIssue({
            code: 'custom',
            path: ['runbooks', 'keyvault-backup', 'storageAccountId'],
            message: `expected a Microsoft.Storage/storageAccounts ID, found "${kvBackup.storageAccountId}"`,
          });
        }
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          path: ['runbooks', 'keyvault-backup', 'storageAccountId'],
          message: errorMessage(error),
        });
      }
    }
  })
  .transform((target): Omit<typeof target, 'runbooks'> & { runbooks: RunbookPolicies; written?: WrittenPolicy } => {
    let kind: ResourceKind | undefined;
    try {
      kind = kindOfType(parseResourceId(target.id).type);
    } catch {
      kind = undefined;
    }
    const written: WrittenPolicy = {
      runbooks: target.runbooks,
      ...(target.health === undefined ? {} : { health: target.health }),
      ...(target.remediation === undefined ? {} : { remediation: target.remediation }),
      ...(target.restore === undefined ? {} : { restore: target.restore }),
    };
    return { ...target, runbooks: fillRunbookDefaults(target.runbooks, kind), written };
  });

// ---------------------------------------------------------------------------------------------
// Scopes, defaults and exclusions (issue 8): targets found by discovery instead of listed
// ---------------------------------------------------------------------------------------------

/** The tag that keeps a resource out of every scope and target, whatever else the file says. */
export const IGNORE_TAG = { name: 'ops-autopilot', value: 'ignore' } as const;

const resourceTypeSchema = z
  .enum(Object.values(RESOURCE_TYPES) as [string, ...string[]])
  .describe('An ARM resource type Ops Autopilot handles.');

const tagMapSchema = z
  .record(z.string().min(1).max(512), z.string().max(256))
  .refine((tags) => Object.keys(tags).length <= 50, { message: 'expected at most 50 tags' });

/** A scope: the resources of one subscription that match its selectors, and the policies each match gets. */
export const scopeSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lower-case letters, digits and dashes').describe('Name of the scope, shown in plans and inventory as the entry that selected a target.'),
    subscription: z.guid().describe('The subscription searched; it must be one the file names (`subscriptions` or an explicit target\'s ID).'),
    resourceGroups: z
      .array(z.string().regex(/^[-\w._()]{1,90}$/, 'expected a resource group name'))
      .min(1)
      .max(100)
      .optional()
      .describe('Only these resource groups (case-insensitive); default: the whole subscription.'),
    types: z.array(resourceTypeSchema).min(1).optional().describe('Only resources of these types; default: every type Ops Autopilot handles.'),
    tags: tagMapSchema.optional().describe('Every one of these tags must be on the resource with this value (`*`: any value).'),
    excludeTags: tagMapSchema.optional().describe('A resource with any of these tags (with this value, or `*`: any value) is left out.'),
    namePattern: namePatternSchema.optional().describe('RE2 regular expression the whole resource name must match, e.g. `ca-.*-service`.'),
    ...policyFields,
  })
  .strict()
  .describe('Selects targets by subscription, resource groups, types, tags and name pattern (ARM list operations), with the policies every match gets.');

/** Per-kind defaults and per-runbook defaults: the lowest levels, below scopes and targets. */
export const defaultsSchema = z
  .object({
    kinds: z
      .object(Object.fromEntries((Object.keys(RESOURCE_TYPES) as ResourceKind[]).map((kind) => [kind, policySchema.optional().describe(`Policies of every ${RESOURCE_TYPES[kind]} target and scope match.`)])) as Record<ResourceKind, z.ZodOptional<typeof policySchema>>)
      .strict()
      .optional()
      .describe('Policies per resource kind: every target of the kind gets them (a runbook here opts every one in); scopes and targets win.'),
    runbooks: writtenRunbooksSchema.optional().describe('Policy values per runbook for every target that has the runbook; they opt nothing in, and every other level wins.'),
  })
  .strict()
  .describe('The lowest policy levels: per resource kind, then per runbook. Targets and scopes win over them, field by field.');

/** A resource left out of every scope and target. Exactly one of id, name, namePattern and tags. */
export const exclusionSchema = z
  .object({
    id: z.string().optional().describe('Full ARM ID of the resource (case-insensitive).'),
    name: z.string().min(1).optional().describe('Resource name (case-insensitive), in any subscription or group the file reaches.'),
    namePattern: namePatternSchema.optional().describe('RE2 regular expression over the whole resource name.'),
    tags: tagMapSchema.optional().describe('A resource with any of these tags (value, or `*`: any value) is left out.'),
    reason: z.string().max(200).optional().describe('Why, shown in inventory.'),
  })
  .strict()
  .superRefine((entry, ctx) => {
    const given = (['id', 'name', 'namePattern', 'tags'] as const).filter((key) => entry[key] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `expected exactly one of id, name, namePattern, tags, found ${given.length === 0 ? 'none' : given.join(', ')}` });
    if (entry.id !== undefined) {
      try {
        parseResourceId(entry.id);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['id'], message: errorMessage(error) });
      }
    }
  })
  .describe('Leaves a resource out of every scope and target: by id, name, name pattern or tag. The tag `ops-autopilot: ignore` always does.');

/** One scope as validated. */
export type ScopeConfig = z.output<typeof scopeSchema>;
/** The defaults block. */
export type DefaultsConfig = z.output<typeof defaultsSchema>;
/** One exclusion. */
export type ExclusionConfig = z.output<typeof exclusionSchema>;

/** The kinds a scope can select (its `types`, or every kind). */
export function scopeKinds(scope: Pick<ScopeConfig, 'types'>): ResourceKind[] {
  const all = Object.keys(RESOURCE_TYPES) as ResourceKind[];
  if (scope.types === undefined) return all;
  return all.filter((kind) => scope.types?.some((type) => type.toLowerCase() === RESOURCE_TYPES[kind].toLowerCase()));
}

/**
 * The subscriptions a file names: `subscriptions` and those of the explicit targets' IDs (lower
 * case). A scope can reach only these.
 */
export function namedSubscriptions(config: { readonly subscriptions?: readonly string[] | undefined; readonly targets?: readonly unknown[] | undefined }): Set<string> {
  const named = new Set<string>((config.subscriptions ?? []).map((id) => id.toLowerCase()));
  for (const target of config.targets ?? []) {
    const id = target !== null && typeof target === 'object' ? (target as Record<string, unknown>).id : undefined;
    if (typeof id !== 'string') continue;
    try {
      named.add(parseResourceId(id).subscriptionId.toLowerCase());
    } catch {
      // The ID check reports it.
    }
  }
  return named;
}

/**
 * The checks of scopes and defaults that need the whole file, on the raw input (so the loader
 * reports them with every other issue): unique scope names, a subscription the file names, and
 * policies that fit the kinds they can apply to.
 */
export function scopeIssues(input: unknown): { path: (string | number)[]; message: string }[] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return [];
  const root = input as Record<string, unknown>;
  const issues: { path: (string | number)[]; message: string }[] = [];
  const scopes = Array.isArray(root.scopes) ? (root.scopes as unknown[]) : [];
  const subscriptions = Array.isArray(root.subscriptions) ? root.subscriptions.filter((id): id is string => typeof id === 'string') : [];
  const named = namedSubscriptions({ subscriptions, targets: Array.isArray(root.targets) ? (root.targets as unknown[]) : [] });
  const names = new Map<string, number>();
  scopes.forEach((value, index) => {
    const parsed = scopeSchema.safeParse(value);
    if (!parsed.success) return;
    const scope = parsed.data;
    const first = names.get(scope.name);
    if (first !== undefined) issues.push({ path: ['scopes', index, 'name'], message: `expected a unique scope name, found a duplicate of scopes[${String(first)}]` });
    else names.set(scope.name, index);
    if (!named.has(scope.subscription.toLowerCase())) {
      issues.push({
        path: ['scopes', index, 'subscription'],
        message: `expected a subscription this file names (subscriptions: or an explicit target's ID: ${[...named].join(', ') || 'none'}), found ${scope.subscription}; a scope never reaches a subscription nobody listed`,
      });
    }
    for (const issue of policyKindIssues(scope, scopeKinds(scope), 'a scope whose types include')) issues.push({ path: ['scopes', index, ...issue.path], message: issue.message });
    // A restore names one server, its consumers and its secrets: it belongs on that server's own entry.
    if (scope.restore !== undefined) issues.push({ path: ['scopes', index, 'restore'], message: 'expected restore on an explicit target (a restore names one server, its cutover consumers and secrets), found it on a scope' });
  });
  const defaults = root.defaults !== null && typeof root.defaults === 'object' ? (root.defaults as Record<string, unknown>) : undefined;
  const kinds = defaults?.kinds !== null && typeof defaults?.kinds === 'object' ? (defaults.kinds as Record<string, unknown>) : {};
  for (const [kind, value] of Object.entries(kinds)) {
    if (!(kind in RESOURCE_TYPES)) continue;
    const parsed = policySchema.safeParse(value);
    if (!parsed.success) continue;
    for (const issue of policyKindIssues(parsed.data, [kind as ResourceKind], 'a kind default of')) issues.push({ path: ['defaults', 'kinds', kind, ...issue.path], message: issue.message });
    if (parsed.data.restore !== undefined) issues.push({ path: ['defaults', 'kinds', kind, 'restore'], message: 'expected restore on an explicit target (a restore names one server, its cutover consumers and secrets), found it in a kind default' });
  }
  const targets = Array.isArray(root.targets) ? root.targets : [];
  if (targets.length === 0 && scopes.length === 0) issues.push({ path: ['targets'], message: 'expected at least one target or scope, found none' });
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Run records and notifications
// ---------------------------------------------------------------------------------------------

export const runRecordSettingsSchema = z
  .object({
    /** ARM ID of the storage account that holds run records. */
    storageAccountId: z.string().optional().describe('ARM ID of the storage account that holds run records (and, by default, the state tables).'),
    /** Direct blob service URL; wins over storageAccountId (e.g. Azurite). */
    blobServiceUrl: httpsUrl.or(z.url().refine((v) => v.startsWith('http://127.0.0.1'), {
      message: 'expected an https:// URL (plain http only for Azurite on 127.0.0.1)',
    })).optional().describe('Direct blob service URL; wins over storageAccountId (e.g. Azurite on 127.0.0.1).'),
    container: z.string().default('autopilot-runs').describe('Blob container of the run records.'),
  })
  .strict();

/**
 * Where the autopilot keeps its shared state (guardrail counts and cooldowns, drill history,
 * rotation progress): the Table service of one storage account. Without this block the state
 * lives in the run-record account (`runRecords.storageAccountId`), so one account serves both.
 */
export const stateSettingsSchema = z
  .object({
    storageAccountId: z
      .string()
      .optional()
      .describe('ARM ID of the storage account whose Table service holds the state tables. Default: runRecords.storageAccountId.'),
    tableServiceUrl: httpsUrl
      .optional()
      .describe('Direct Table service URL (e.g. Azurite: https://127.0.0.1:10002/<account>); wins over storageAccountId.'),
  })
  .strict()
  .describe('Where the shared state tables (guardrails, drillhistory, rotations) live; defaults to the run-record storage account.');

export const webhookSchema = z
  .object({
    name: z.string().min(1).describe('Name of the webhook, unique; escalations refer to it.'),
    url: httpsUrl.describe('Webhook URL (https); it carries its credential, so messages show only its origin.'),
    /** Teams (MessageCard/Adaptive-compatible `text`) and Slack both read `text`. */
    format: z.enum(['teams', 'teams-workflow', 'slack', 'generic']).default('generic').describe('Payload format: teams, teams-workflow, slack or generic JSON.'),
    on: z.array(z.enum(['fail', 'warn', 'destructive'])).min(1).default(['fail', 'warn', 'destructive']).describe('What is notified: fail and warn findings, destructive actions applied.'),
  })
  .strict();

/** The PagerDuty Events API v2 endpoint (the US service region; EU accounts use events.eu.pagerduty.com). */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/**
 * A PagerDuty escalation target (Events API v2). The routing key (integration key) is a secret,
 * so the config holds only where it is: a Key Vault secret, read when a page is sent, never
 * written to a log, record or history.
 */
export const pagerDutySchema = z
  .object({
    name: z.string().min(1).describe('Name of the escalation target; remediation escalations refer to it.'),
    routingKey: z
      .object({
        /** Name of the Key Vault that holds the integration key. */
        vault: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$/, 'expected a Key Vault name').describe('Key Vault name.'),
        /** Name of the secret. */
        secret: z.string().regex(/^[A-Za-z0-9-]{1,127}$/, 'expected a Key Vault secret name').describe('Secret name in that vault.'),
      })
      .strict()
      .describe('Key Vault reference of the PagerDuty integration (routing) key; the key itself is never in the config.'),
    eventsUrl: httpsUrl.default(PAGERDUTY_EVENTS_URL).describe('PagerDuty Events API v2 URL (EU accounts: events.eu.pagerduty.com).'),
    /** Severity of triggered events. */
    severity: z.enum(['critical', 'error', 'warning', 'info']).default('critical').describe('Severity of triggered PagerDuty events.'),
  })
  .strict();

// ---------------------------------------------------------------------------------------------
// The whole file
// ---------------------------------------------------------------------------------------------

export const estateConfigSchema = z
  .object({
    /** Format version of this file. */
    version: z.literal(1).describe('Format version of this file; only 1 exists.'),
    /** A short name for the estate, used in run records and notifications. */
    estate: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lower-case letters, digits and dashes').describe('Short name of the estate (lower-case letters, digits, dashes), used in run records and notifications.'),
    /**
     * Global dry-run: when true, every trigger plans and records but applies nothing. The
     * safe default; turning it off is a deliberate act.
     */
    dryRun: z.boolean().default(true).describe('Global dry run: when true every trigger plans and records but applies nothing. The safe default; turning it off is a deliberate act.'),
    azure: azureSettingsSchema.default(azureSettingsSchema.parse({})).describe('Azure connection settings: cloud, endpoint overrides, CA, identity and request budgets.'),
    runRecords: runRecordSettingsSchema.default(runRecordSettingsSchema.parse({})).describe('Where run records are written (blob storage).'),
    state: stateSettingsSchema.default({}),
    notifications: z
      .object({
        webhooks: z.array(webhookSchema).default([]).describe('Webhooks notified of runs (Teams, Slack or generic JSON).'),
        pagerduty: z.array(pagerDutySchema).default([]).describe('PagerDuty escalation targets (Events API v2).'),
      })
      .strict()
      .default({ webhooks: [], pagerduty: [] })
      .describe('Webhooks and PagerDuty escalation targets.'),
    /** Estate-wide remediation defaults (mode, windows, breaker, caps, cooldown); rules live on targets. */
    remediation: estateRemediationSchema.optional(),
    subscriptions: z
      .array(z.guid())
      .max(100)
      .optional()
      .describe('Subscriptions the scopes may search, besides those of the explicit targets\' IDs. A scope naming any other subscription is refused.'),
    defaults: defaultsSchema.optional(),
    scopes: z.array(scopeSchema).max(100).default([]).describe('Targets found by discovery (ARM list operations) instead of listed one by one.'),
    exclusions: z.array(exclusionSchema).max(500).default([]).describe('Resources left out of every scope and target.'),
    targets: z.array(targetSchema).default([]).describe('Explicit targets, by full ARM ID; each wins over the scopes and defaults that also select it.'),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const issue of scopeIssues(config)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    for (const issue of sandboxUrlIssues(config)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    for (const issue of remediationIssues(config, entryKinds)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    for (const issue of rotationIssues(config)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    if (config.azure.sandboxTokenEndpoint !== undefined) {
      // The default events URL is real PagerDuty: with the sandbox credential it must be set, to loopback.
      config.notifications.pagerduty.forEach((target, index) => {
        if (!isLoopbackValue(target.eventsUrl)) {
          ctx.addIssue({ code: 'custom', path: ['notifications', 'pagerduty', index, 'eventsUrl'], message: `expected a loopback address when sandboxTokenEndpoint is set, found "${shownUrl(target.eventsUrl)}"` });
        }
      });
    }
    for (const duplicate of duplicateTargets(config.targets, config.azure.cloud)) {
      ctx.addIssue({ code: 'custom', path: ['targets', duplicate.index, 'id'], message: duplicate.message });
    }
    // A cutover consumer's health is verified through its target entry, so it must have one.
    config.targets.forEach((target, index) => {
      target.restore?.cutover?.consumers.forEach((consumer, consumerIndex) => {
        const path = ['targets', index, 'restore', 'cutover', 'consumers', consumerIndex, 'id'];
        let kind: ResourceKind | undefined;
        try {
          kind = parseResourceId(consumer.id).kind;
        } catch (error) {
          ctx.addIssue({ code: 'custom', path, message: errorMessage(error) });
          return;
        }
        if (kind !== 'webSite') {
          ctx.addIssue({ code: 'custom', path, message: `expected a web app or function app (Microsoft.Web/sites) as a cutover consumer, found ${kind ?? consumer.id}` });
        } else if (!config.targets.some((candidate) => candidate.id.toLowerCase() === consumer.id.toLowerCase())) {
          ctx.addIssue({ code: 'custom', path, message: `expected a target of this file (its health is verified after the cutover), found ${consumer.id}, which no target names` });
        }
      });
    });
  });

/**
 * The kinds a raw `targets[i]` (or, once scopes exist, `scopes[i]`) entry can be, for the
 * remediation checks that depend on the kind; none when its id does not parse.
 */
export function entryKinds(section: 'targets' | 'scopes', entry: Record<string, unknown>): ResourceKind[] {
  if (section === 'scopes') {
    const types = Array.isArray(entry.types) ? entry.types.filter((type): type is string => typeof type === 'string') : undefined;
    return scopeKinds({ types });
  }
  if (typeof entry.id !== 'string') return [];
  try {
    const kind = parseResourceId(entry.id).kind;
    return kind === undefined ? [] : [kind];
  } catch {
    return [];
  }
}

/** A validated estate configuration, with defaults filled in. */
export type EstateConfig = z.output<typeof estateConfigSchema>;
/** The estate configuration as written in a file, before defaults. */
export type EstateConfigInput = z.input<typeof estateConfigSchema>;
/** One configured target. */
export type TargetConfig = z.output<typeof targetSchema>;
/** Azure connection settings. */
export type AzureSettings = z.output<typeof azureSettingsSchema>;
/** Where the state tables live. */
export type StateSettings = z.output<typeof stateSettingsSchema>;
/** A PagerDuty escalation target. */
export type PagerDutyTarget = z.output<typeof pagerDutySchema>;
/** Token-bucket settings. */
export type RequestBudgetSettings = z.output<typeof requestBudgetSchema>;

/** Returns the kind of a target whose ID has already been validated. */
export function targetKind(target: TargetConfig): ResourceKind {
  const kind = kindOfType(parseResourceId(target.id).type);
  if (kind === undefined) throw new Error(`target ${target.id} has no supported kind`);
  return kind;
}
