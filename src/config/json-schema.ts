/**
 * The JSON Schema of the estate configuration, generated from the zod schema so that editors
 * (yaml-language-server, VS Code) can complete and check the YAML. `schema/estate.schema.json`
 * is this output, committed; a test fails when it is stale and `npm run schema` rewrites it.
 */
import { z } from 'zod';
import { estateConfigSchema } from './schema.ts';

/** Repository-relative path of the committed JSON Schema. */
export const ESTATE_SCHEMA_PATH = 'schema/estate.schema.json';

/** Stable `$id` of the schema, matching where it is published in the repository. */
export const ESTATE_SCHEMA_ID = 'https://ops-autopilot.local/schema/estate.schema.json';

/**
 * Builds the JSON Schema (draft 2020-12) of an estate file as written, i.e. the *input* side:
 * fields with defaults are optional. Refinements that only code can check (resource ID grammar,
 * runbook-to-kind rules, loopback-only sandbox settings) are not expressible here and stay in
 * the loader.
 */
export function estateJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(estateConfigSchema, {
    io: 'input',
    target: 'draft-2020-12',
    // A field zod cannot express in JSON Schema fails the build of the schema instead of turning
    // into `{}` ("anything goes"), which editors would show as accepting any value.
    unrepresentable: 'throw',
  }) as Record<string, unknown>;
  return {
    $schema: generated.$schema,
    $id: ESTATE_SCHEMA_ID,
    title: 'Ops Autopilot estate configuration',
    description:
      'Targets (by full ARM resource ID), the runbooks that apply to each and their policy, plus global settings. Validate with `ops-autopilot config validate <file>`.',
    ...Object.fromEntries(Object.entries(generated).filter(([key]) => key !== '$schema')),
  };
}

/** The committed file's exact text: two-space JSON with a trailing newline. */
export function estateJsonSchemaText(): string {
  return `${JSON.stringify(estateJsonSchema(), null, 2)}\n`;
}
