/**
 * The `restore` block of a PostgreSQL flexible server target: how a point-in-time restore of it
 * is validated, approved and cut over (issue 10), and its weekly restore drill. Everything here
 * is a reference (vault and secret names, ARM ids); no value in the file is a secret.
 */
import { z } from 'zod';

/** Key Vault names: 3-24 letters, digits and dashes, starting with a letter. */
const vaultName = z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/, 'expected a Key Vault name (3-24 letters, digits and dashes)');
/** Key Vault secret names: 1-127 letters, digits and dashes. */
const secretName = z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'expected a Key Vault secret name (letters, digits and dashes)');
/** A table name the checks may count: an identifier, optionally schema-qualified, nothing to inject. */
const tableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/, 'expected a table name (letters, digits, underscores; optionally schema.table)');

/** A Key Vault secret by vault and name (the latest version is read when it is needed). */
export const secretReferenceSchema = z.object({ vault: vaultName, secret: secretName }).strict();

/** How the restored data is checked before anyone may cut over to it. */
export const restoreChecksSchema = z
  .object({
    /** Row counts compared with the source's; the restored count may be lower by at most `tolerancePercent`. */
    tables: z
      .array(z.object({ name: tableName, tolerancePercent: z.number().min(0).max(100).default(0) }).strict())
      .max(50)
      .default([]),
    /** Read-only queries that must return one row whose first column is true. */
    sql: z
      .array(
        z
          .object({
            name: z.string().min(1).max(100),
            query: z.string().min(1).max(2000),
          })
          .strict(),
      )
      .max(20)
      .default([]),
  })
  .strict();

/** How long a health verification after cutover (and after a rollback) may take. */
export const cutoverVerifySchema = z
  .object({
    consecutive: z.number().int().min(1).max(20).default(3),
    intervalSeconds: z.number().int().min(1).max(600).default(10),
    deadlineSeconds: z.number().int().min(10).max(3600).default(300),
  })
  .strict();

/** One consumer whose connection string the cutover repoints (a web app, function app or slot). */
export const cutoverConsumerSchema = z
  .object({
    /** ARM id of the site; it must also be a target of this file (its health is verified). */
    id: z.string().min(1),
    /** The app setting holding the connection string. */
    setting: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/, 'expected an app setting name').default('DATABASE_URL'),
    /** Restart after the change (App Service restarts on an app settings change anyway). */
    restart: z.boolean().default(true),
  })
  .strict();

/** The cutover: where the new connection string is stored and which consumers use it. */
export const cutoverSchema = z
  .object({
    /**
     * The secret that receives each connection string as a new version; consumers get a Key
     * Vault reference to that version, never the value.
     */
    connectionStringSecret: secretReferenceSchema,
    consumers: z.array(cutoverConsumerSchema).min(1).max(20),
    verify: cutoverVerifySchema.prefault({}),
  })
  .strict();

/** The weekly restore drill of a server. */
export const drillPolicySchema = z
  .object({
    /** The restore point is this far before the drill's restore request (Azure needs at least 5 minutes). */
    offsetMinutes: z.number().int().min(5).max(7 * 24 * 60).default(5),
    /** Seconds between the heartbeat rows the drill writes to the source (the RPO's resolution). */
    heartbeatIntervalSeconds: z.number().int().min(10).max(600).default(60),
    /** Resource group of the scratch server (default the source's); the only place drills create and delete. */
    resourceGroup: z.string().regex(/^[-\w._()]{1,90}$/, 'expected a resource group name').optional(),
    /** Policy targets: the drill fails when the measured RTO or RPO exceeds them. */
    rtoTargetMinutes: z.number().positive().max(7 * 24 * 60).default(60),
    rpoTargetMinutes: z.number().positive().max(24 * 60).default(15),
    /** The drill gives up (and tears down) this long after it started. */
    timeoutHours: z.number().positive().max(48).default(6),
  })
  .strict();

/** The `restore` block of a PostgreSQL flexible server target. */
export const restorePolicySchema = z
  .object({
    /** The secret holding the admin password (the restored server has the source's as of the point). */
    credentials: secretReferenceSchema,
    /** Database to validate and to name in connection strings. */
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'expected a database name').default('postgres'),
    checks: restoreChecksSchema.prefault({}),
    /** A restore that is not Ready after this long has failed. */
    restoreTimeoutHours: z.number().positive().max(48).default(12),
    approval: z
      .object({
        timeoutHours: z.number().positive().max(72).default(4),
        /** What happens to the new server when nobody approves in time, or someone rejects. */
        onTimeout: z.enum(['keep', 'delete']).default('keep'),
        onReject: z.enum(['keep', 'delete']).default('delete'),
      })
      .strict()
      .prefault({}),
    cutover: cutoverSchema.optional(),
    drill: drillPolicySchema.optional(),
  })
  .strict();

/** A server's restore policy, defaults filled in. */
export type RestorePolicy = z.output<typeof restorePolicySchema>;
/** A drill policy, defaults filled in. */
export type DrillPolicy = z.output<typeof drillPolicySchema>;
/** A cutover, defaults filled in. */
export type CutoverPolicy = z.output<typeof cutoverSchema>;
