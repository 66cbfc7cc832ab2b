// Compiles infra/main.bicep to infra/main.json with the real Bicep CLI and lints every Bicep and
// parameter file, with warnings as errors (infra/bicepconfig.json makes the linter's rules
// errors; any compiler warning, such as a property the resource types do not know, fails too).
//
//   node scripts/infra-build.mjs            write infra/main.json
//   node scripts/infra-build.mjs --check    fail when the committed infra/main.json is stale
//
// The CLI is restored from NuGet on first use (infra/tools/bicep-tools.csproj pins the version;
// it needs the .NET SDK and a NuGet feed). `npm test` never needs it: its infra tests read the
// committed main.json.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const infra = join(root, 'infra');
const tools = join(infra, 'tools', 'bicep-tools.csproj');
const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });

/** The pinned CLI version, read from the tools project so there is one place to change it. */
function pinnedVersion() {
  const match = /Azure\.Bicep\.CommandLine\.linux-x64" Version="\[([^\]]+)\]"/.exec(readFileSync(tools, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`${relative(root, tools)}: expected a PackageDownload of Azure.Bicep.CommandLine.linux-x64 with an exact [version]`);
  return match[1];
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error !== undefined) throw result.error;
  return result;
}

function fail(message) {
  console.error(`infra:build: ${message}`);
  process.exit(1);
}

function bicepPath() {
  const version = pinnedVersion();
  const path = join(infra, 'tools', '.packages', 'azure.bicep.commandline.linux-x64', version, 'tools', 'bicep');
  if (!existsSync(path)) {
    console.log(`restoring Bicep CLI ${version} from NuGet (dotnet restore ${relative(root, tools)})`);
    let restore;
    try {
      restore = run('dotnet', ['restore', tools, '--nologo', '--verbosity', 'quiet'], {
        env: { ...process.env, DOTNET_NOLOGO: '1', DOTNET_CLI_TELEMETRY_OPTOUT: '1', DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    } catch (error) {
      fail(`expected the .NET SDK (dotnet) to restore the Bicep CLI, found none: ${error.message}`);
    }
    if (restore.status !== 0 || !existsSync(path)) fail(`dotnet restore of ${relative(root, tools)} failed (exit ${restore.status}); is a NuGet feed reachable?`);
  }
  // NuGet does not keep the executable bit of files in a package.
  run('chmod', ['+x', path]);
  return path;
}

/** Runs the CLI; any diagnostic it prints (error, warning or info) fails the build. */
async function bicep(bin, args, what) {
  const result = await new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
  const diagnostics = `${result.stdout}${result.stderr}`
    .split('\n')
    .filter((line) => / : (Error|Warning|Info) /.test(line));
  if (result.status !== 0 || diagnostics.length > 0) {
    fail(`${what}: ${diagnostics.length} diagnostic(s), warnings count as errors\n${diagnostics.join('\n') || result.stderr}`);
  }
  return result;
}

function bicepFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'tools' ? [] : bicepFiles(path);
    return entry.name.endsWith('.bicep') || entry.name.endsWith('.bicepparam') ? [path] : [];
  });
}

const bin = bicepPath();
const version = run(bin, ['--version']).stdout.trim();
const out = mkdtempSync(join(tmpdir(), 'ops-autopilot-infra-'));
try {
  const compiled = join(out, 'main.json');
  const files = bicepFiles(infra);
  // Every file is linted on its own and every parameter file built against the template, a few
  // CLI processes at a time.
  const jobs = [
    () => bicep(bin, ['build', 'infra/main.bicep', '--outfile', compiled], 'bicep build infra/main.bicep'),
    ...files.map((file) => () => bicep(bin, ['lint', relative(root, file)], `bicep lint ${relative(root, file)}`)),
    ...files
      .filter((file) => file.endsWith('.bicepparam'))
      .map((file, i) => () => bicep(bin, ['build-params', relative(root, file), '--outfile', join(out, `params-${i}.json`)], `bicep build-params ${relative(root, file)}`)),
  ];
  const workers = Array.from({ length: Math.min(availableParallelism(), 4) }, async () => {
    for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) await job();
  });
  await Promise.all(workers);
  const target = join(infra, 'main.json');
  const fresh = readFileSync(compiled, 'utf8');
  if (values.check) {
    const committed = existsSync(target) ? readFileSync(target, 'utf8') : '';
    if (committed !== fresh) fail('infra/main.json is stale: it differs from what infra/main.bicep compiles to. Run `npm run infra:build` and commit infra/main.json.');
    console.log(`infra/main.json is up to date (${version}); ${files.length} Bicep files lint clean`);
  } else {
    writeFileSync(target, fresh);
    console.log(`wrote infra/main.json (${version}); ${files.length} Bicep files lint clean`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
