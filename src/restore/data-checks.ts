/**
 * Validates a restored server's data over a real PostgreSQL connection (`pg`, TLS verified
 * against the server's FQDN): row counts of the configured tables compared with the source
 * within a tolerance, and SQL checks that must return true, each run read-only with a statement
 * timeout. The admin password comes from the Key Vault secret the policy names and lives only
 * inside this function: the evidence holds counts, verdicts and messages, never a credential.
 */
import pg from 'pg';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure } from '../azure/errors.ts';
import type { RestorePolicy } from '../config/restore-schema.ts';
import { OpsAutopilotError } from '../errors.ts';
import { redactString } from '../runs/secret-guard.ts';

/** Bounds of one connection: connect, and each statement. */
const CONNECT_TIMEOUT_MS = 10_000;
const STATEMENT_TIMEOUT_MS = 30_000;

/** The credentials secret could not be read or is empty. */
export class RestoreCredentialsError extends OpsAutopilotError {
  override readonly name: string = 'RestoreCredentialsError';
}

/** One table's row counts. */
export interface TableEvidence {
  readonly table: string;
  readonly source: number | null;
  readonly restored: number | null;
  readonly tolerancePercent: number;
  readonly differencePercent: number | null;
  readonly pass: boolean;
  readonly detail: string;
}

/** One SQL check. */
export interface SqlEvidence {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

/** What the validation found. JSON-serialisable, no secrets. */
export interface DataEvidence {
  readonly server: string;
  readonly database: string;
  readonly connected: boolean;
  readonly pass: boolean;
  readonly tables: readonly TableEvidence[];
  readonly sql: readonly SqlEvidence[];
  readonly summary: string;
  readonly checkedAt: string;
}

/** Reads the admin password the policy's credentials secret holds (latest version). */
export async function readAdminPassword(clients: AzureClients, policy: RestorePolicy): Promise<string> {
  const { vault, secret } = policy.credentials;
  const client = await clients.secretClient(vault);
  const bundle = await callAzure({ resourceId: `${vault}/secrets/${secret}`, operation: 'get secret', expected: 'the admin credentials secret to exist' }, () => client.getSecret(secret));
  if (bundle.value === undefined || bundle.value === '') {
    throw new RestoreCredentialsError(`credentials ${vault}/${secret}: expected the admin password, found an empty secret`, { context: { vault, secret } });
  }
  return bundle.value;
}

/** Opens a verified TLS connection to a server as its admin. The caller ends it. */
export async function connectAsAdmin(clients: AzureClients, fqdn: string, login: string, password: string, database: string): Promise<pg.Client> {
  const tls = await clients.postgresTls(fqdn);
  const client = new pg.Client({
    host: tls.host,
    port: tls.port,
    ssl: tls.ssl,
    user: login,
    password,
    database,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 5_000,
    application_name: 'ops-autopilot',
  });
  // A connection error after connect (server going away) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

function message(error: unknown, password: string): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactString(text.split(password).join('[redacted]')).slice(0, 300);
}

async function countRows(client: pg.Client, table: string): Promise<number> {
  // The name is validated by the schema (identifiers only); quote each part anyway.
  const quoted = table.split('.').map((part) => `"${part.replaceAll('"', '""')}"`).join('.');
  const result = await client.query<{ count: string }>(`SELECT count(*)::text AS count FROM ${quoted}`);
  return Number(result.rows[0]?.count ?? Number.NaN);
}

async function readOnly<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN READ ONLY');
  try {
    return await fn();
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Runs the policy's checks against the restored server (and the source, for row counts).
 * Never throws for a failed check or connection: those are evidence (`pass: false`).
 *
 * @throws only when the credentials cannot be read (Azure errors, {@link RestoreCredentialsError}).
 */
export async function validateRestoredData(
  clients: AzureClients,
  policy: RestorePolicy,
  servers: { readonly login: string; readonly sourceFqdn: string; readonly restoredFqdn: string; readonly restoredName: string },
  now: Date,
): Promise<DataEvidence> {
  const password = await readAdminPassword(clients, policy);
  const base = { server: servers.restoredName, database: policy.database, checkedAt: now.toISOString() };
  let restored: pg.Client;
  try {
    restored = await connectAsAdmin(clients, servers.restoredFqdn, servers.login, password, policy.database);
  } catch (error) {
    return { ...base, connected: false, pass: false, tables: [], sql: [], summary: `could not connect to ${servers.restoredFqdn}: ${message(error, password)}` };
  }
  let source: pg.Client | undefined;
  try {
    const tables: TableEvidence[] = [];
    if (policy.checks.tables.length > 0) {
      try {
        source = await connectAsAdmin(clients, servers.sourceFqdn, servers.login, password, policy.database);
      } catch (error) {
        source = undefined;
        tables.push(...policy.checks.tables.map((table) => ({ table: table.name, source: null, restored: null, tolerancePercent: table.tolerancePercent, differencePercent: null, pass: false, detail: `could not connect to the source: ${message(error, password)}` })));
      }
    }
    if (source !== undefined) {
      for (const table of policy.checks.tables) {
        try {
          const [sourceCount, restoredCount] = [await readOnly(source, () => countRows(source as pg.Client, table.name)), await readOnly(restored, () => countRows(restored, table.name))];
          const difference = sourceCount === 0 ? (restoredCount === 0 ? 0 : 100) : (Math.abs(sourceCount - restoredCount) / sourceCount) * 100;
          const pass = difference <= table.tolerancePercent;
          tables.push({
            table: table.name,
            source: sourceCount,
            restored: restoredCount,
            tolerancePercent: table.tolerancePercent,
            differencePercent: Math.round(difference * 100) / 100,
            pass,
            detail: `${restoredCount} row(s) restored, ${sourceCount} in the source now (${pass ? 'within' : 'outside'} ${table.tolerancePercent} %)`,
          });
        } catch (error) {
          tables.push({ table: table.name, source: null, restored: null, tolerancePercent: table.tolerancePercent, differencePercent: null, pass: false, detail: `count failed: ${message(error, password)}` });
        }
      }
    }
    const sql: SqlEvidence[] = [];
    for (const check of policy.checks.sql) {
      try {
        const result = await readOnly(restored, () => restored.query({ text: check.query, rowMode: 'array' }));
        const first: unknown = (result.rows[0] as unknown[] | undefined)?.[0];
        const pass = first === true || first === 't' || first === 'true';
        sql.push({ name: check.name, pass, detail: pass ? 'returned true' : `expected true, found ${result.rows.length === 0 ? 'no row' : JSON.stringify(first).slice(0, 100)}` });
      } catch (error) {
        sql.push({ name: check.name, pass: false, detail: `failed: ${message(error, password)}` });
      }
    }
    const failed = [...tables.filter((table) => !table.pass).map((table) => table.table), ...sql.filter((check) => !check.pass).map((check) => check.name)];
    const pass = failed.length === 0;
    return {
      ...base,
      connected: true,
      pass,
      tables,
      sql,
      summary: pass ? `connected; ${tables.length} row count(s) and ${sql.length} SQL check(s) passed` : `connected; failed: ${failed.join(', ')}`,
    };
  } finally {
    await restored.end().catch(() => undefined);
    await source?.end().catch(() => undefined);
  }
}
