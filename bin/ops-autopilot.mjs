#!/usr/bin/env node
// Entry point of `ops-autopilot`.
//
// - An installed package (npm pack, then npm install -g ./ops-autopilot-*.tgz) has no sources:
//   it runs the built CLI, dist/cli/main.js (scripts/build.mjs; npm pack builds it first), with
//   the runtime dependencies only.
// - A clone runs the TypeScript sources through tsx, a dev dependency, so a change to src/ takes
//   effect at once and a stale dist/ never runs in its place. A clone without dev dependencies
//   (npm ci --omit=dev) runs its dist/ when it has been built, and otherwise says what to do.
//
// Nothing here reaches a registry; in a clone run it as `node bin/ops-autopilot.mjs` (npx may
// fetch a package of the same name from the public registry when it does not see the project).
import { existsSync } from 'node:fs';
import process from 'node:process';

const sources = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);

/** tsx's loader API, or undefined when tsx is not installed (no dev dependencies). */
async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

let entry;
const loader = existsSync(sources) ? await tsx() : undefined;
if (loader !== undefined) {
  loader.register();
  entry = sources;
} else if (existsSync(built)) {
  entry = built;
} else {
  process.stderr.write(
    existsSync(sources)
      ? 'error: ops-autopilot: this clone has neither its dev dependencies (tsx) nor a build (dist/cli/main.js): run npm ci to use the sources, or npm ci && npm run build && npm prune --omit=dev for a production copy\n'
      : 'error: ops-autopilot: the package is incomplete: expected dist/cli/main.js (built by npm pack), found none; reinstall it\n',
  );
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
