// Bundles the Functions app into dist/ for deployment.
//
// The Functions Node worker provides `@azure/functions-core` at run time, so it stays external.
// Output is ESM with code splitting, so SDK packages that runbooks import dynamically land in
// their own chunks and a function loads only the clients it uses.
//
// `node scripts/build.mjs [--outdir DIR]`; the default is dist/, which package.json `main` names.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const { values } = parseArgs({ options: { outdir: { type: 'string', default: resolve(root, 'dist') } } });
const outdir = resolve(values.outdir);

await rm(outdir, { recursive: true, force: true });

const result = await build({
  entryPoints: { 'functions/index': resolve(root, 'src/functions/index.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  metafile: true,
  external: ['@azure/functions-core'],
  // Bundled CommonJS dependencies call require() for Node built-ins; ESM has no require.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
const total = outputs.reduce((sum, [, meta]) => sum + meta.bytes, 0);
console.log(`built ${outputs.length} files, ${(total / 1024).toFixed(0)} KiB, entry ${resolve(outdir, 'functions/index.js')}`);
