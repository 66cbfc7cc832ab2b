/**
 * `ops-autopilot sandbox` as a process: it stops itself cleanly when its parent goes away (as
 * when `npx` exits on SIGTERM without passing it on) or its stdin pipe closes, and when it is
 * SIGKILLed itself, the watchdogs take its PostgreSQL and Azurite down with it.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = path.join(REPO, 'bin', 'ops-autopilot.mjs');
let dir = '';
let world = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-cli-test-'));
  world = path.join(dir, 'one-account.yaml');
  await writeFile(
    world,
    [
      'name: one-account',
      'description: One storage account.',
      'tenantId: 72f988bf-0000-4000-8000-00000000a001',
      'subscriptionId: 7a7b7c7d-0000-4000-8000-000000000007',
      'resources:',
      '  - { type: Microsoft.Storage/storageAccounts, resourceGroup: rg-cli, name: stclitest, location: westeurope }',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Started {
  readonly child: ChildProcessWithoutNullStreams;
  readonly info: { pid: number; caFile: string };
  readonly dataDir: string;
  stderr(): string;
}

/** Spawns `command` and waits for the sandbox's --json line on stdout. */
async function startCli(command: string, args: string[]): Promise<Started> {
  const child = spawn(command, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const info = await new Promise<{ pid: number; caFile: string }>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{'));
      if (line !== undefined && stdout.includes('\n')) resolve(JSON.parse(line) as { pid: number; caFile: string });
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`expected the sandbox to print its JSON, found exit ${String(code)}/${String(signal)}: ${stderr}`));
    });
  });
  return { child, info, dataDir: path.dirname(info.caFile), stderr: () => stderr };
}

const sandboxArgs = (): string[] => [BIN, 'sandbox', '--json', '--world', world];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function processesMentioning(text: string): string[] {
  return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(text));
}

/** Polls until `condition` holds; fails (rather than hangs) after `ms`. */
async function eventually(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`expected ${what} within ${String(ms)} ms, found it still not so`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('ops-autopilot sandbox as a process', () => {
  it('stops cleanly when its parent process is killed (the npx case)', async () => {
    // `; :` keeps sh from exec-ing node, so sh stays node's parent, as npm exec does. Stdin is
    // /dev/null (in a terminal it would be the tty), so only the parent check can notice.
    const started = await startCli('sh', ['-c', `"${process.execPath}" "$@" < /dev/null; :`, 'sh', ...sandboxArgs()]);
    const { info, dataDir } = started;
    expect(processesMentioning(dataDir).length).toBeGreaterThanOrEqual(2);
    started.child.kill('SIGKILL');
    await eventually(() => !alive(info.pid) && processesMentioning(dataDir).length === 0 && !existsSync(dataDir), 30_000, 'the sandbox, its children and its temp dir to be gone');
    expect(started.stderr()).toMatch(/parent process \d+ exited, stopping/);
  });

  it('stops cleanly when its stdin pipe closes', async () => {
    const started = await startCli(process.execPath, sandboxArgs());
    const { info, dataDir } = started;
    started.child.stdin.end();
    await eventually(() => !alive(info.pid) && processesMentioning(dataDir).length === 0 && !existsSync(dataDir), 30_000, 'the sandbox, its children and its temp dir to be gone');
    expect(started.stderr()).toContain('stdin closed');
  });

  it('keeps running with stdin from /dev/null, as in `sandbox --json > file &`', async () => {
    const started = await startCli('sh', ['-c', `"${process.execPath}" "$@" < /dev/null; :`, 'sh', ...sandboxArgs()]);
    const { info, dataDir } = started;
    // Long enough for a wrongly watched /dev/null to have hit EOF and stopped it.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(alive(info.pid)).toBe(true);
    process.kill(info.pid, 'SIGTERM');
    await eventually(() => !alive(info.pid) && !existsSync(dataDir), 30_000, 'the sandbox to stop on SIGTERM');
    expect(started.stderr()).toContain('SIGTERM received, stopping');
  });

  it('takes PostgreSQL and Azurite down when the sandbox process itself is SIGKILLed', async () => {
    const started = await startCli(process.execPath, sandboxArgs());
    const { info, dataDir } = started;
    const children = processesMentioning(dataDir);
    expect(children.some((line) => line.includes('azurite'))).toBe(true);
    expect(children.some((line) => /postgres/.test(line) && line.includes('-D'))).toBe(true);
    process.kill(info.pid, 'SIGKILL');
    try {
      await eventually(() => processesMentioning(dataDir).length === 0, 30_000, 'PostgreSQL, Azurite and the watchdogs to exit');
    } finally {
      // Nothing of the sandbox ran to remove its temp dir; that is the test's job here.
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
