/**
 * Writes `schema/estate.schema.json` from the zod schema. Run with `npm run schema`
 * (`tsx scripts/emit-schema.ts`); `--check` exits 1 instead of writing when the committed file is stale.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESTATE_SCHEMA_PATH, estateJsonSchemaText } from '../src/config/json-schema.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(root, ESTATE_SCHEMA_PATH);
const text = estateJsonSchemaText();
const current = await readFile(target, 'utf8').catch((error: unknown) => {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw error;
});

if (process.argv.includes('--check')) {
  if (current !== text) {
    process.stderr.write(`${ESTATE_SCHEMA_PATH} is stale: run npm run schema\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`${ESTATE_SCHEMA_PATH} is current\n`);
  }
} else if (current === text) {
  process.stdout.write(`${ESTATE_SCHEMA_PATH} unchanged\n`);
} else {
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, text);
  process.stdout.write(`wrote ${ESTATE_SCHEMA_PATH}\n`);
}
