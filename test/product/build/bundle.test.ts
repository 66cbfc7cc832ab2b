/**
 * The deployable: `scripts/build.mjs` bundles the app with esbuild, and the bundle, loaded the
 * way the Functions worker loads `package.json` `main`, registers the same functions as the
 * source. SDK packages are imported lazily, so they must land in chunks of their own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { PRODUCTION_FUNCTIONS, summariseFunctions } from '../../support/app-functions.ts';

let outdir: string;
let host: LocalHost;

beforeAll(async () => {
  outdir = await mkdtemp(path.join(tmpdir(), 'ops-autopilot-build-'));
  const result = spawnSync(process.execPath, ['scripts/build.mjs', '--outdir', outdir], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  host = await startLocalHost({ entryPoint: path.join(outdir, 'functions/index.js'), port: 0, clock: new VirtualClock(), enableTimers: false });
});

afterAll(async () => {
  await host.stop();
  await rm(outdir, { recursive: true, force: true });
});

describe('the built Functions bundle', () => {
  it('registers the same functions as the source entry point', () => {
    expect(summariseFunctions(host.functions)).toEqual(PRODUCTION_FUNCTIONS);
  });

  it('answers the health route', async () => {
    const response = await fetch(`${host.baseUrl}/api/health`);
    expect(response.status).toBe(200);
  });

  it('keeps @azure/functions-core external and SDK clients out of the entry chunk', async () => {
    const entry = await readFile(path.join(outdir, 'functions/index.js'), 'utf8');
    expect(entry).toMatch(/["']@azure\/functions-core["']/);
    const chunks = (await readdir(outdir)).filter((file) => file.endsWith('.js'));
    const defines = /WebSiteManagementClient = class|class WebSiteManagementClient/;
    // The ARM App Service client is only needed by runbooks that touch web apps: its class is
    // defined in a chunk of its own, loaded by the client factory's dynamic import.
    expect(entry).not.toMatch(defines);
    const definedIn = await Promise.all(chunks.map(async (file) => defines.test(await readFile(path.join(outdir, file), 'utf8'))));
    expect(definedIn.filter(Boolean)).toHaveLength(1);
  });
});
