/**
 * azure-pipelines.yml against the official Azure Pipelines YAML schema, used as Microsoft
 * publishes it: service-schema.json of microsoft/azure-pipelines-vscode (the schema the Azure
 * Pipelines editor and the VS Code extension validate with). It is not on any package registry
 * this project reaches, so it is read from the steering repository's shared/ folder
 * (shared/azure-pipelines/service-schema.json, beside the checkout) or from the file that
 * AZURE_PIPELINES_SCHEMA names. A missing schema fails the test; it never skips.
 *
 * The schema is a superset of JSON Schema draft-07: it has a `deprecationMessage` keyword and
 * patterns with escapes that are invalid under the `u` flag, so ajv runs non-strict and without
 * unicode regular expressions. Nothing in the schema is changed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

/** Where the schema is: AZURE_PIPELINES_SCHEMA, else shared/azure-pipelines/ in an ancestor directory. */
function schemaPath(): string {
  const fromEnv = process.env.AZURE_PIPELINES_SCHEMA;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const tried: string[] = [];
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'shared', 'azure-pipelines', 'service-schema.json');
    tried.push(candidate);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`expected the Azure Pipelines schema (service-schema.json of microsoft/azure-pipelines-vscode) at AZURE_PIPELINES_SCHEMA or one of ${tried.join(', ')}, found none`);
}

const schema = JSON.parse(readFileSync(schemaPath(), 'utf8').replace(/^\uFEFF/, '')) as Record<string, unknown>;
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
