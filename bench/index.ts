/**
 * `npm run bench [-- <name>] [options]`: runs one benchmark. `image-purge` (the default) or
 * `alerts` or `restore`; each prints its figures (docs/benchmarks.md keeps them).
 */
const BENCHES = { 'image-purge': './image-purge.bench.ts', alerts: './alerts.bench.ts', restore: './restore.bench.ts' } as const;
const name = process.argv.slice(2).find((arg) => !arg.startsWith('-') && arg in BENCHES) ?? 'image-purge';
if (process.argv.includes('--help')) {
  console.log(`usage: npm run bench -- [${Object.keys(BENCHES).join('|')}] [options]`);
  process.exit(0);
}
await import(BENCHES[name as keyof typeof BENCHES]);
