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
export const secretReferenceSchema = z.object({ vault: vaultName.describe('Key Vault name.'), secret: secretName.describe('Secret name in that vault (the latest version is read).') }).strict();

/** How the restored data is checked before anyone may cut over to it. */
export const restoreChecksSchema = z
  .object({
    /** Row counts compared with the source's; the restored count may be lower by at most `tolerancePercent`. */
    tables: z
      .array(z.object({ name: tableName.describe('Table name (optionally schema.table).'), tolerancePercent: z.number().min(0).max(100).default(0).describe('How much lower the restored row count may be, in percent.') }).strict())
      .max(50)
      .default([])
      .describe('Tables whose row counts are compared with the source\'s; the restored count may be lower by at most tolerancePercent.'),
    /** Read-only queries that must return one row whose first column is true. */
    sql: z
      .array(
        z
          .object({
            name: z.string().min(1).max(100).describe('Name of the check, shown in the results.'),
            query: z.string().min(1).max(2000).describe('The read-only SQL query.'),
          })
          .strict(),
      )
      .max(20)
      .default([])
      .describe('Read-only queries that must return one row whose first column is true.'),
  })
  .strict();

/** How long a health verification after cutover (and after a rollback) may take. */
export const cutoverVerifySchema = z
  .object({
    consecutive: z.number().int().min(1).max(20).default(3).describe('Consecutive healthy answers needed.'),
    intervalSeconds: z.number().int().min(1).max(600).default(10).describe('Seconds between health checks.'),
    deadlineSeconds: z.number().int().min(10).max(3600).default(300).describe('Seconds before the verification fails.'),
  })
  .strict();

/** One consumer whose connection string the cutover repoints (a web app, function app or slot). */
export const cutoverConsumerSchema = z
  .object({
    /** ARM id of the site; it must also be a target of this file (its health is verified). */
    id: z.string().min(1).describe('ARM ID of the consuming web app or function app.'),
    /** The app setting holding the connection string. */
    setting: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/, 'expected an app setting name').default('DATABASE_URL').describe('The app setting that holds the connection string (a Key Vault reference).'),
    /** Restart after the change (App Service restarts on an app settings change anyway). */
    restart: z.boolean().default(true).describe('Restart the consumer after its setting changes.'),
  })
  .strict();

/** The cutover: where the new connection string is stored and which consumers use it. */
export const cutoverSchema = z
  .object({
    /**
     * The secret that receives each connection string as a new version; consumers get a Key
     * Vault reference to that version, never the value.
     */
    connectionStringSecret: secretReferenceSchema.describe('Key Vault secret that receives the new connection string (a new version).'),
    consumers: z.array(cutoverConsumerSchema).min(1).max(20).describe('Web apps and function apps that use the database; each must be a target of this file.'),
    verify: cutoverVerifySchema.prefault({}).describe('Health verification of each consumer after the cutover.'),
  })
  .strict();

/** The weekly restore drill of a server. */
export const drillPolicySchema = z
  .object({
    /** The restore point is this far before the drill's restore request (Azure needs at least 5 minutes). */
    offsetMinutes: z.number().int().min(5).max(7 * 24 * 60).default(5).describe('How far back the drill restores, in minutes.'),
    /** Seconds between the heartbeat rows the drill writes to the source (the RPO's resolution). */
    heartbeatIntervalSeconds: z.number().int().min(10).max(600).default(60).describe("Seconds between the drill's heartbeat rows."),
    /** Resource group of the scratch server (default the source's); the only place drills create and delete. */
    resourceGroup: z.string().regex(/^[-\w._()]{1,90}$/, 'expected a resource group name').optional().describe("Resource group the drill's scratch servers are created in."),
    /** Policy targets: the drill fails when the measured RTO or RPO exceeds them. */
    rtoTargetMinutes: z.number().positive().max(7 * 24 * 60).default(60).describe('The drill fails when the measured RTO exceeds this, in minutes.'),
    rpoTargetMinutes: z.number().positive().max(24 * 60).default(15).describe('The drill fails when the measured RPO exceeds this, in minutes.'),
    /** The drill gives up (and tears down) this long after it started. */
    timeoutHours: z.number().positive().max(48).default(6).describe('Hours before the step gives up.'),
  })
  .strict();

/** The `restore` block of a PostgreSQL flexible server target. */
export const restorePolicySchema = z
  .object({
    /** The secret holding the admin password (the restored server has the source's as of the point). */
    credentials: secretReferenceSchema.describe('Key Vault secret with the login the data checks use (never a value in the file).'),
    /** Database to validate and to name in connection strings. */
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'expected a database name').default('postgres').describe('Database the data checks connect to.'),
    checks: restoreChecksSchema.prefault({}).describe('How the restored data is checked before anyone may cut over to it.'),
    /** A restore that is not Ready after this long has failed. */
    restoreTimeoutHours: z.number().positive().max(48).default(12).describe('Hours a restore may take before it fails.'),
    approval: z
      .object({
        timeoutHours: z.number().positive().max(72).default(4).describe('Hours an approval may take; then onTimeout applies.'),
        /** What happens to the new server when nobody approves in time, or someone rejects. */
        onTimeout: z.enum(['keep', 'delete']).default('keep').describe('What happens to the restored server when nobody answers in time: keep or delete.'),
        onReject: z.enum(['keep', 'delete']).default('delete').describe('What happens to the restored server when the restore is rejected: keep or delete.'),
      })
      .strict()
      .prefault({})
      .describe('The approval gate before a cutover.'),
    cutover: cutoverSchema.optional().describe('The cutover: where the new connection string goes and which consumers use it.'),
    drill: drillPolicySchema.optional().describe('The weekly restore drill of this server.'),
  })
  .strict();

/** A server's restore policy, defaults filled in. */
export type RestorePolicy = z.output<typeof restorePolicySchema>;
/** A drill policy, defaults filled in. */
export type DrillPolicy = z.output<typeof drillPolicySchema>;
/** A cutover, defaults filled in. */
export type CutoverPolicy = z.output<typeof cutoverSchema>;
