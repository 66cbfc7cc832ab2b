/**
 * How `bin/ops-autopilot.mjs` chooses what to run: the sources through tsx in a clone with its
 * dev dependencies, the built dist/cli/main.js in an installed package (or a clone without dev
 * dependencies that has been built), and a one-line error naming the fix when it has neither.
 * The bin is copied into a directory outside the checkout with stand-in entry points, so what
 * it finds is exactly what each case sets up.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runProcess } from '../../support/cli.ts';

const BIN = fileURLToPath(new URL('../../../bin/ops-autopilot.mjs', import.meta.url));
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A package directory with the real bin and the given files. */
async function layout(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'ops-autopilot-bin-'));
  dirs.push(root);
  await mkdir(path.join(root, 'bin'));
  await copyFile(BIN, path.join(root, 'bin', 'ops-autopilot.mjs'));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  return root;
}

const BUILT = "export async function main(argv) { process.stdout.write(`built ${argv.join(' ')}\\n`); return 0; }\n";
const SOURCES = 'export async function main(): Promise<number> { return 0; }\n';

function run(root: string, args: string[]): ReturnType<typeof runProcess> {
  return runProcess(process.execPath, [path.join(root, 'bin', 'ops-autopilot.mjs'), ...args], { cwd: root, timeoutMs: 30_000 });
}

describe('bin/ops-autopilot.mjs', () => {
  it('runs dist/cli/main.js in an installed package (no sources) and passes the arguments on', async () => {
    const root = await layout({ 'dist/cli/main.js': BUILT });
    expect(await run(root, ['config', 'validate', 'x.yaml'])).toEqual({ code: 0, stdout: 'built config validate x.yaml\n', stderr: '' });
  });

  it('runs a clone built before its dev dependencies were pruned from dist/', async () => {
    const root = await layout({ 'src/cli/main.ts': SOURCES, 'dist/cli/main.js': BUILT });
    expect(await run(root, ['--version'])).toEqual({ code: 0, stdout: 'built --version\n', stderr: '' });
  });

  it('says what to do in a clone with neither tsx nor a build', async () => {
    const root = await layout({ 'src/cli/main.ts': SOURCES });
    const result = await run(root, ['--version']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'error: ops-autopilot: this clone has neither its dev dependencies (tsx) nor a build (dist/cli/main.js): run npm ci to use the sources, or npm ci && npm run build && npm prune --omit=dev for a production copy\n',
    );
  });

  it('says the package is incomplete when it has no build', async () => {
    const root = await layout({});
    const result = await run(root, ['--version']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('error: ops-autopilot: the package is incomplete: expected dist/cli/main.js (built by npm pack), found none; reinstall it\n');
  });
});
