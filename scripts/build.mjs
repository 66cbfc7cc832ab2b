// Builds what ships: the Functions app and the `ops-autopilot` CLI, both with esbuild.
//
// dist/functions/index.js (package.json `main`): the whole app bundled, dependencies included,
// for deployment. The Functions Node worker provides `@azure/functions-core` at run time, so it
// stays external. Output is ESM with code splitting, so SDK packages that runbooks import
// dynamically land in their own chunks and a function loads only the clients it uses.
//
// dist/cli/main.js (run by bin/ops-autopilot.mjs in an installed package): the CLI's own code,
// with every npm package left external, so an installed CLI loads exactly its runtime
// `dependencies` (an `npm install --omit=dev` proves the list is honest). The local Azure sandbox
// is a development tool that the package does not ship: the `sandbox` and `demo` commands get a
// module that refuses in one line instead.
//
// `node scripts/build.mjs [--outdir DIR]`; the default is dist/, which package.json `main` names.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const { values } = parseArgs({ options: { outdir: { type: 'string', default: resolve(root, 'dist') } } });
const outdir = resolve(values.outdir);

/** What `ops-autopilot sandbox` and `demo` say in an installed package. */
const SANDBOX_MISSING =
  'the local Azure sandbox (ops-autopilot sandbox, demo) is a development tool and not part of the installed package: ' +
  'run it from a clone of the repository after npm ci (node bin/ops-autopilot.mjs sandbox, npm run demo)';

/** Replaces every import of `sandbox/` with a module that throws {@link SANDBOX_MISSING} when loaded. */
const withoutSandbox = {
  name: 'without-sandbox',
  setup(builder) {
    const sandboxDir = resolve(root, 'sandbox') + sep;
    builder.onResolve({ filter: /sandbox\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      return target.startsWith(sandboxDir) ? { path: target, namespace: 'without-sandbox' } : undefined;
    });
    builder.onLoad({ filter: /.*/, namespace: 'without-sandbox' }, () => ({
      contents: `const error = new Error(${JSON.stringify(SANDBOX_MISSING)}); error.name = 'DevelopmentOnlyError'; throw error;`,
      loader: 'js',
    }));
  },
};

// Bundled CommonJS dependencies call require() for Node built-ins; ESM has no require.
const requireBanner = {
  js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
};

const common = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
};

await rm(outdir, { recursive: true, force: true });

const [functions, cli] = await Promise.all([
  build({
    ...common,
    entryPoints: { 'functions/index': resolve(root, 'src/functions/index.ts') },
    outdir,
    external: ['@azure/functions-core'],
    banner: requireBanner,
  }),
  build({
    ...common,
    entryPoints: { main: resolve(root, 'src/cli/main.ts') },
    outdir: resolve(outdir, 'cli'),
    packages: 'external',
    plugins: [withoutSandbox],
  }),
]);

for (const [label, result, entry] of [
  ['functions', functions, 'functions/index.js'],
  ['cli', cli, 'cli/main.js'],
]) {
  const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
  const total = outputs.reduce((sum, [, meta]) => sum + meta.bytes, 0);
  console.log(`built ${label}: ${outputs.length} files, ${(total / 1024).toFixed(0)} KiB, entry ${resolve(outdir, entry)}`);
}
