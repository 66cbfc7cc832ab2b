// Hooks of azure.yaml (`azd up`), Node only.
//
//   preprovision  writes infra/main.bicepparam (git-ignored) from infra/params/<estate>.bicepparam,
//                 where azd looks for the parameters of infra/main.bicep
//   prepackage    builds the package of the estate into .azure/package (what azd deploys)
//   postdeploy    provisions once more with wireAppTriggers: the action group, alert rules and
//                 Event Grid subscriptions call functions that exist only once the package is in
//
// The estate is the azd environment's OPS_AUTOPILOT_ESTATE.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const hook = process.argv[2];
const estate = process.env.OPS_AUTOPILOT_ESTATE ?? '';

function fail(message) {
  console.error(`azd ${hook ?? ''}: ${message}`);
  process.exit(1);
}

if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(estate)) fail(`expected OPS_AUTOPILOT_ESTATE to name an estate (azd env set OPS_AUTOPILOT_ESTATE xshopai), found "${estate}"`);
const params = join(root, 'infra', 'params', `${estate}.bicepparam`);
if (!existsSync(params)) fail(`expected ${params} (npm run infra:params writes it from examples/${estate}.yaml), found none`);

function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (result.error !== undefined) fail(`${command}: ${result.error.message}`);
  if (result.status !== 0) process.exit(result.status ?? 1);
}

switch (hook) {
  case 'preprovision': {
    const text = readFileSync(params, 'utf8').replace("using '../main.bicep'", "using 'main.bicep'");
    const wire = "param wireAppTriggers = bool(readEnvironmentVariable('OPS_AUTOPILOT_WIRE_TRIGGERS', 'false'))\n";
    writeFileSync(join(root, 'infra', 'main.bicepparam'), `// Written by scripts/azd-hooks.mjs from infra/params/${estate}.bicepparam; not committed.\n${text}${wire}`);
    break;
  }
  case 'prepackage':
    run(process.execPath, ['scripts/package.mjs', '--estate', estate, '--out', '.azure/ops-autopilot.zip', '--dir', '.azure/package']);
    break;
  case 'postdeploy':
    if (process.env.OPS_AUTOPILOT_WIRE_TRIGGERS !== 'true') run('azd', ['provision', '--no-prompt'], { ...process.env, OPS_AUTOPILOT_WIRE_TRIGGERS: 'true' });
    break;
  default:
    fail('expected one of preprovision, prepackage, postdeploy');
}
