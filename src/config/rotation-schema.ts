/**
 * The `rotation` block of a Key Vault target (issue 11): which of its secrets are rotated, of
 * which kind, how often, which secrets are derived from them and which apps consume them.
 * Everything here is a reference (secret names, ARM ids, templates with placeholders); no value
 * in the file is a secret.
 */
import { z } from 'zod';
import { parseResourceId, type ResourceKind } from '../azure/resource-id.ts';
import { errorMessage } from '../errors.ts';

/** Key Vault secret names: 1-127 letters, digits and dashes. */
const secretName = z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a Key Vault secret name (letters, digits and dashes)');

/** How a consumer picks a new version up (App Service caches Key Vault references for up to a day). */
export const rotationConsumerSchema = z
  .object({
    /** ARM id of a web app or function app; it must also be a target of this file (its health is verified). */
    id: z.string().min(1),
    /**
     * `restart` (the app re-resolves its references as it starts) or `refresh` (App Service's
     * `config/configreferences/appsettings/refresh`, no restart).
     */
    pickUp: z.enum(['restart', 'refresh']).default('restart'),
  })
  .strict();

/**
 * A secret derived from the rotated one, rewritten after it. `format`: `postgresql-url`
 * (`postgresql://{login}:{password}@{host}:5432/{database}?sslmode=require`, for a PostgreSQL
 * password; the URL-encoded password, the server's login and FQDN from ARM), `value` (a copy), or
 * `template`: the `template` text with `{value}`, and for a PostgreSQL password `{password}`,
 * `{login}`, `{host}`, `{database}` (e.g. an ADO.NET connection string). No template names a URL
 * the app calls, so none is checked as one.
 */
export const derivedSecretSchema = z
  .object({
    secret: secretName,
    format: z.enum(['postgresql-url', 'value', 'template']).default('postgresql-url'),
    template: z.string().min(1).max(2000).optional(),
  })
  .strict()
  .superRefine((derived, ctx) => {
    if (derived.format === 'template' && derived.template === undefined) ctx.addIssue({ code: 'custom', path: ['template'], message: 'expected a template for format: template, found none' });
    if (derived.format !== 'template' && derived.template !== undefined) ctx.addIssue({ code: 'custom', path: ['template'], message: `expected no template for format: ${derived.format}, found one` });
  });

/** Health verification of the consumers after a rotation. */
export const rotationVerifySchema = z
  .object({
    consecutive: z.number().int().min(1).max(20).default(2),
    intervalSeconds: z.number().int().min(1).max(600).default(10),
    deadlineSeconds: z.number().int().min(10).max(3600).default(300),
  })
  .strict();

const commonFields = {
  /** The secret in this vault. */
  secret: secretName,
  /** Each new version expires this many days after it is written. */
  validityDays: z.number().int().min(1).max(3650).default(90),
  /** Rotate once the current version expires within this many days. */
  rotateBeforeExpiryDays: z.number().int().min(0).max(3650).default(30),
  /** Rotate once the current version is this many days old, whatever its expiry. */
  rotateEveryDays: z.number().int().min(1).max(3650).optional(),
  /** How long the previous version stays enabled after a rotation, for consumers still holding it. */
  graceHours: z.number().min(0).max(24 * 90).default(24),
  consumers: z.array(rotationConsumerSchema).max(20).default([]),
  derived: z.array(derivedSecretSchema).max(10).default([]),
  verify: rotationVerifySchema.prefault({}),
};

/** A random secret (API key, JWT signing secret): a cryptographic RNG, the policy's length and alphabet. */
export const randomSecretPolicySchema = z
  .object({
    kind: z.literal('random'),
    ...commonFields,
    length: z.number().int().min(16).max(1024).default(48),
    alphabet: z.enum(['alphanumeric', 'base64url', 'hex']).default('alphanumeric'),
  })
  .strict();

/** The admin password of a PostgreSQL flexible server, reset through ARM. */
export const postgresPasswordPolicySchema = z
  .object({
    kind: z.literal('postgresAdminPassword'),
    ...commonFields,
    /** ARM id of the flexible server whose admin password the secret holds. */
    server: z.string().min(1),
    /** Database to log in to when verifying, and `{database}` of derived templates. */
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'expected a database name').default('postgres'),
    length: z.number().int().min(16).max(128).default(32),
  })
  .strict();

/**
 * A storage account key, two credentials: the key not in use is regenerated and stored with the
 * flipped `CredentialId` tag (`key1`/`key2`); the other stays valid for a full period.
 */
export const storageKeyPolicySchema = z
  .object({
    kind: z.literal('storageAccountKey'),
    ...commonFields,
    /** ARM id of the storage account. */
    storageAccount: z.string().min(1),
  })
  .strict();

/** One rotated secret. */
export const rotationPolicySchema = z.discriminatedUnion('kind', [randomSecretPolicySchema, postgresPasswordPolicySchema, storageKeyPolicySchema]);

/** The `rotation` block of a Key Vault target. */
export const keyVaultRotationSchema = z
  .object({ secrets: z.array(rotationPolicySchema).min(1).max(50) })
  .strict()
  .superRefine((rotation, ctx) => {
    const seen = new Set<string>();
    rotation.secrets.forEach((policy, index) => {
      const key = policy.secret.toLowerCase();
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['secrets', index, 'secret'], message: `expected each secret once, found ${policy.secret} again` });
      seen.add(key);
      policy.derived.forEach((derived, derivedIndex) => {
        if (derived.format === 'postgresql-url' && policy.kind !== 'postgresAdminPassword') ctx.addIssue({ code: 'custom', path: ['secrets', index, 'derived', derivedIndex, 'format'], message: `expected value or template for a ${policy.kind} secret, found postgresql-url (it needs a PostgreSQL server)` });
        if (derived.secret.toLowerCase() === key) ctx.addIssue({ code: 'custom', path: ['secrets', index, 'derived', derivedIndex, 'secret'], message: `expected another secret than the rotated one, found ${derived.secret}` });
      });
      const expectKind = (field: 'server' | 'storageAccount', id: string, kind: ResourceKind): void => {
        try {
          const found = parseResourceId(id).kind;
          if (found !== kind) ctx.addIssue({ code: 'custom', path: ['secrets', index, field], message: `expected the ARM id of a ${kind}, found ${found ?? id}` });
        } catch (error) {
          ctx.addIssue({ code: 'custom', path: ['secrets', index, field], message: errorMessage(error) });
        }
      };
      if (policy.kind === 'postgresAdminPassword') expectKind('server', policy.server, 'postgresFlexibleServer');
      if (policy.kind === 'storageAccountKey') expectKind('storageAccount', policy.storageAccount, 'storageAccount');
    });
  });

/** A rotation policy, defaults filled in. */
export type RotationPolicy = z.output<typeof rotationPolicySchema>;
/** The `rotation` block, defaults filled in. */
export type KeyVaultRotation = z.output<typeof keyVaultRotationSchema>;

/**
 * Cross-target checks: a consumer is a web app or function app that is also a target of the
 * file (its health is verified through that entry). For the estate's superRefine.
 */
export function rotationIssues(config: { readonly targets: readonly { readonly id: string; readonly rotation?: KeyVaultRotation | undefined }[] }): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const ids = new Set(config.targets.map((target) => target.id.toLowerCase()));
  config.targets.forEach((target, index) => {
    target.rotation?.secrets.forEach((policy, policyIndex) => {
      policy.consumers.forEach((consumer, consumerIndex) => {
        const path = ['targets', index, 'rotation', 'secrets', policyIndex, 'consumers', consumerIndex, 'id'];
        let kind: ResourceKind | undefined;
        try {
          kind = parseResourceId(consumer.id).kind;
        } catch (error) {
          issues.push({ path, message: errorMessage(error) });
          return;
        }
        if (kind !== 'webSite') issues.push({ path, message: `expected a web app or function app (Microsoft.Web/sites) as a rotation consumer, found ${kind ?? consumer.id}` });
        else if (!ids.has(consumer.id.toLowerCase())) issues.push({ path, message: `expected a target of this file (its health is verified after the rotation), found ${consumer.id}, which no target names` });
      });
    });
  });
  return issues;
}
