// Builds the deployable zip of the Function App for one estate: the esbuild bundle (dist/),
// host.json, a package.json without dependencies (everything the app imports is in the bundle;
// the Functions worker provides @azure/functions-core) and the estate configuration under
// config/<estate>.yaml, the path infra/params/<estate>.bicepparam sets OPS_AUTOPILOT_CONFIG_FILE
// to. Nothing from sandbox/, local-host/, test/, bench/ or scripts/ goes in; a test checks.
//
//   node scripts/package.mjs --estate xshopai [--config examples/xshopai.yaml] [--out FILE] [--dir FOLDER]
//
// --dir also leaves the unpacked package in FOLDER (emptied first): azd deploys a folder.
// The zip is reproducible: entries are sorted and stamped with a fixed time.
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { zipSync } from 'fflate';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const usage = 'usage: node scripts/package.mjs --estate <name> [--config <estate.yaml>] [--out <file.zip>] [--dir <folder>]';

let values;
try {
  ({ values } = parseArgs({
    options: {
      estate: { type: 'string' },
      config: { type: 'string' },
      out: { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (error) {
  console.error(`${error.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (values.estate === undefined || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(values.estate)) {
  console.error(`expected --estate with an estate name (lower-case letters, digits and dashes), found ${values.estate === undefined ? 'none' : `"${values.estate}"`}\n${usage}`);
  process.exit(2);
}
const estate = values.estate;
const configSource = resolve(values.config ?? join(root, 'examples', `${estate}.yaml`));
const out = resolve(values.out ?? join(root, 'dist', `ops-autopilot-${estate}.zip`));

// The configuration must be valid and be this estate's: a package that cannot start is refused here.
const check = spawnSync(process.execPath, [join(root, 'bin/ops-autopilot.mjs'), 'config', 'validate', configSource], { encoding: 'utf8' });
if (check.status !== 0) {
  console.error(`refused: ${relative(process.cwd(), configSource)} is not a valid estate configuration\n${check.stderr || check.stdout}`);
  process.exit(1);
}
const configText = await readFile(configSource, 'utf8');
const declared = /^estate:\s*["']?([a-z0-9-]+)["']?\s*$/m.exec(configText)?.[1];
if (declared !== estate) {
  console.error(`refused: ${relative(process.cwd(), configSource)} is the configuration of estate "${declared ?? '?'}", not "${estate}"`);
  process.exit(1);
}

const staging = await mkdtemp(join(tmpdir(), 'ops-autopilot-package-'));
try {
  const build = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--outdir', join(staging, 'dist')], { encoding: 'utf8' });
  if (build.status !== 0) {
    console.error(`bundle failed\n${build.stderr}`);
    process.exit(1);
  }
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  const deployed = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    private: true,
    type: pkg.type,
    main: pkg.main,
    engines: pkg.engines,
  };
  await writeFile(join(staging, 'package.json'), `${JSON.stringify(deployed, null, 2)}\n`);
  await writeFile(join(staging, 'host.json'), await readFile(join(root, 'host.json')));
  await mkdir(join(staging, 'config'));
  await writeFile(join(staging, 'config', `${estate}.yaml`), configText);

  const files = {};
  const mtime = new Date('2020-01-01T00:00:00Z');
  async function add(dir) {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      // scripts/build.mjs also builds the CLI into dist/cli/; the app does not run it.
      if (entry.isDirectory() && relative(staging, path) === join('dist', 'cli')) continue;
      if (entry.isDirectory()) await add(path);
      else files[relative(staging, path).split('\\').join('/')] = [await readFile(path), { mtime }];
    }
  }
  await add(staging);
  const zip = zipSync(files, { level: 9 });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, zip);
  if (values.dir !== undefined) {
    await rm(resolve(values.dir), { recursive: true, force: true });
    await cp(staging, resolve(values.dir), { recursive: true });
  }
  const size = (await stat(out)).size;
  const shown = relative(process.cwd(), out).startsWith('..') ? out : relative(process.cwd(), out);
  console.log(`wrote ${shown}: ${Object.keys(files).length} files, ${(size / 1024).toFixed(0)} KiB (estate ${estate})`);
} finally {
  await rm(staging, { recursive: true, force: true });
}
