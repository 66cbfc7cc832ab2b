/**
 * Runtime and dev dependencies stay honest: the npm packages the product (the Functions app and
 * the CLI, everything under src/) imports, statically or dynamically, are exactly package.json
 * `dependencies`. A package only the sandbox, the local host, tests or scripts use is a dev
 * dependency, and a runtime dependency nothing imports is a mistake. esbuild resolves the
 * imports, so a dynamic `await import('@azure/...')` counts as it does at run time.
 */
import { build, type Plugin } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** The package name of a bare import specifier (`@scope/name/sub` → `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/** The sandbox is not product code; the CLI's imports of it are left out, as scripts/build.mjs does. */
const sandboxOutside: Plugin = {
  name: 'sandbox-outside',
  setup(builder) {
    builder.onResolve({ filter: /sandbox\// }, (args) => {
      const target = path.resolve(args.resolveDir, args.path);
      return target.startsWith(path.join(REPO, 'sandbox') + path.sep) ? { path: target, external: true } : undefined;
    });
  },
};

describe('package.json dependencies', () => {
  it('are exactly the npm packages the product imports', async () => {
    const result = await build({
      entryPoints: [path.join(REPO, 'src/functions/index.ts'), path.join(REPO, 'src/cli/main.ts')],
      bundle: true,
      write: false,
      splitting: true,
      format: 'esm',
      platform: 'node',
      outdir: path.join(REPO, '.sandbox', 'dependencies-check'),
      packages: 'external',
      metafile: true,
      plugins: [sandboxOutside],
      logLevel: 'silent',
    });
    const imported = new Set<string>();
    for (const input of Object.values(result.metafile.inputs)) {
      for (const entry of input.imports) {
        if (entry.external !== true || entry.path.startsWith('node:') || builtinModules.includes(entry.path) || path.isAbsolute(entry.path)) continue;
        imported.add(packageOf(entry.path));
      }
    }
    // Provided by the Functions Node worker at run time, never installed.
    imported.delete('@azure/functions-core');
    const manifest = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect([...imported].sort()).toEqual(Object.keys(manifest.dependencies).sort());
  });
});
