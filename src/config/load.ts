/**
 * Loading and validating the estate configuration.
 *
 * A configuration comes from a YAML or JSON file shipped with the app, or from an app setting:
 * `OPS_AUTOPILOT_CONFIG` holds the YAML/JSON text itself, `OPS_AUTOPILOT_CONFIG_FILE` a path.
 * Validation reports every bad field at once, each with its path, what was expected and what
 * was found (and the YAML line when known), so an operator can fix a file in one pass.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { parseResourceId, type ResourceKind } from '../azure/resource-id.ts';
import { ConfigError, errorCode, errorMessage, type ConfigIssue } from '../errors.ts';
import { isSecretFieldName, REDACTED, redactString } from '../runs/secret-guard.ts';
import { remediationIssues } from './remediation-schema.ts';
import {
  entryKinds,
  estateConfigSchema,
  keyVaultProtectionPolicySchema,
  postgresBackupPolicySchema,
  sandboxUrlIssues,
  scopeIssues,
  storageProtectionPolicySchema,
  targetSchema,
  type EstateConfig,
} from './schema.ts';
import { duplicateTargets } from './target-identity.ts';

/** App setting that holds the configuration text (YAML or JSON). */
export const CONFIG_TEXT_SETTING = 'OPS_AUTOPILOT_CONFIG';
/** App setting that holds the path of a configuration file shipped with the app. */
export const CONFIG_FILE_SETTING = 'OPS_AUTOPILOT_CONFIG_FILE';

/** Largest configuration accepted; a bigger one is a mistake, not an estate. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Most targets one configuration may hold; beyond it a run's blast radius is too large to review. */
export const MAX_TARGETS = 500;

type PathSegment = string | number;

/** Formats a path as `targets[2].runbooks.revision-cleanup.keep`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** The value at a path of a parsed document, and whether it is there at all. */
export function valueAt(root: unknown, path: readonly PropertyKey[]): { present: boolean; value: unknown } {
  let node: unknown = root;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return { present: false, value: undefined };
    const record = node as Record<PropertyKey, unknown>;
    if (!Object.prototype.hasOwnProperty.call(record, segment)) return { present: false, value: undefined };
    node = record[segment];
  }
  return { present: true, value: node };
}

/**
 * Renders a found value for an error message. Scalars are shown (strings quoted and cut at 80
 * characters); secret-named fields and secret-looking values are redacted; webhook URLs are
 * reduced to their origin because Slack and Teams put the credential in the path.
 */
export function describeFound(value: unknown, path: readonly PropertyKey[], present = true): string {
  if (!present || value === undefined) return 'nothing';
  if (value === null) return 'null';
  const last = path.at(-1);
  if (typeof last === 'string' && isSecretFieldName(last)) return `a value (${REDACTED})`;
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    return Number.isFinite(value) ? String(value) : value > 0 ? 'infinity' : '-infinity';
  }
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string') {
    let shown = redactString(value);
    if (path.includes('webhooks') && last === 'url') {
      try {
        const url = new URL(value);
        shown = url.pathname === '/' && url.search === '' ? url.origin : `${url.origin}/…`;
      } catch {
        // Not a URL at all: nothing to hide beyond the redaction above.
      }
    }
    if (shown.length > 80) shown = `${shown.slice(0, 77)}...`;
    return JSON.stringify(shown);
  }
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

const TYPE_WORDS: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  literal: 'a fixed value',
};

function bound(issue: { minimum?: unknown; maximum?: unknown; inclusive?: boolean }, side: 'min' | 'max'): string {
  const value = side === 'min' ? issue.minimum : issue.maximum;
  const op = side === 'min' ? (issue.inclusive === false ? '>' : '>=') : issue.inclusive === false ? '<' : '<=';
  return `${op} ${String(value)}`;
}

/** Turns one zod issue into the project's expected/found wording (also used for alert and event payloads). */
export function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case 'too_small':
      if (issue.origin === 'array' || issue.origin === 'set')
        return `expected at least ${String(issue.minimum)} item${issue.minimum === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return `expected at least ${String(issue.minimum)} character(s)`;
      return `expected a number ${bound(issue, 'min')}`;
    case 'too_big':
      if (issue.origin === 'array' || issue.origin === 'set') return `expected at most ${String(issue.maximum)} items`;
      if (issue.origin === 'string') return `expected at most ${String(issue.maximum)} characters`;
      return `expected a number ${bound(issue, 'max')}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${JSON.stringify(issue.values[0])}`
        : `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_format':
      if (issue.message.startsWith('expected')) return issue.message;
      if (issue.format === 'starts_with' && 'prefix' in issue) return `expected a string starting with ${JSON.stringify(issue.prefix)}`;
      if (issue.format === 'url') return 'expected an absolute URL';
      if (issue.format === 'uuid') return 'expected a GUID';
      return `expected a valid ${issue.format}`;
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}`;
    default:
      // Custom checks already phrase their message as expected-vs-found.
      return issue.message;
  }
}

const BACKUP_VERIFY_SCHEMAS: Partial<Record<ResourceKind, z.ZodType>> = {
  postgresFlexibleServer: postgresBackupPolicySchema,
  storageAccount: storageProtectionPolicySchema,
  keyVault: keyVaultProtectionPolicySchema,
};

/** Edit distance, for "did you mean" hints on unknown fields. */
export function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] ?? 0;
}

/** The field names a zod object schema at `path` declares, for suggestions. */
function knownKeys(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  let node: unknown = schema;
  const unwrap = (value: unknown): unknown => {
    let current = value;
    for (let guard = 0; guard < 16; guard++) {
      const def = (current as { _zod?: { def?: { type?: string; innerType?: unknown; in?: unknown; element?: unknown; options?: unknown[] } } })._zod?.def;
      if (def === undefined) return current;
      if (def.innerType !== undefined) current = def.innerType;
      else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
      else return current;
    }
    return current;
  };
  for (const segment of path) {
    node = unwrap(node);
    const def = (node as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } } })._zod?.def;
    if (def === undefined) return [];
    if (typeof segment === 'number') {
      if (def.type !== 'array') return [];
      node = def.element;
    } else {
      const child = def.shape?.[segment];
      if (child === undefined) return [];
      node = child;
    }
  }
  node = unwrap(node);
  const shape = (node as { _zod?: { def?: { shape?: Record<string, unknown> } } })._zod?.def?.shape;
  return shape === undefined ? [] : Object.keys(shape);
}

/** How many expected field names an unknown-field line lists before it abbreviates. */
const MAX_LISTED_FIELDS = 8;

/**
 * The message for an unknown field: which fields the object takes (at most
 * {@link MAX_LISTED_FIELDS}, so a line stays readable) and the nearest one when it is close.
 */
function unknownFieldMessage(key: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return 'unknown field';
  const listed = candidates.slice(0, MAX_LISTED_FIELDS).join(', ');
  const more = candidates.length > MAX_LISTED_FIELDS ? `, … ${candidates.length - MAX_LISTED_FIELDS} more` : '';
  const near = nearest(key, candidates);
  return `unknown field (expected one of ${listed}${more}${near === undefined ? '' : `; did you mean "${near}"?`})`;
}

/** The candidate closest to `key`, when it is close enough to be a typo. */
function nearest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** The kind of the target that holds `path`, read from the raw input's `targets[i].id`. */
function targetKindAt(input: unknown, path: readonly PropertyKey[]): ResourceKind | undefined {
  if (path[0] !== 'targets' || typeof path[1] !== 'number') return undefined;
  const id = valueAt(input, ['targets', path[1], 'id']).value;
  if (typeof id !== 'string') return undefined;
  try {
    return parseResourceId(id).kind;
  } catch {
    return undefined;
  }
}

/** Converts zod issues to config issues, resolving unions and unknown keys into precise lines. */
function toConfigIssues(issues: readonly z.core.$ZodIssue[], input: unknown, prefix: readonly PathSegment[] = []): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...(issue.path as PathSegment[])];
    if (issue.code === 'unrecognized_keys') {
      const candidates = knownKeys(estateConfigSchema, path);
      for (const key of issue.keys) {
        out.push({ path: formatPath([...path, key]), message: unknownFieldMessage(key, candidates) });
      }
      continue;
    }
    if (issue.code === 'invalid_union') {
      const value = valueAt(input, path).value;
      // backup-verify takes a different policy per resource kind; judge it by the target's kind.
      const kind = path.at(-1) === 'backup-verify' ? targetKindAt(input, path) : undefined;
      const specific = kind === undefined ? undefined : BACKUP_VERIFY_SCHEMAS[kind];
      if (specific !== undefined) {
        const result = specific.safeParse(value);
        if (!result.success) {
          out.push(...toConfigIssues(result.error.issues, input, path).map((found) => withBackupKeyHint(found, specific)));
          continue;
        }
      }
      // Otherwise report the branch that came closest.
      // A branch that failed only because the value is of another shape altogether (a mapping
      // where the branch takes the word `off`) says less than one that looked inside it.
      const shapeOnly = (branch: readonly z.core.$ZodIssue[]): number =>
        branch.length > 0 && branch.every((found) => found.path.length === 0 && (found.code === 'invalid_type' || found.code === 'invalid_value')) ? 1 : 0;
      const branches = [...issue.errors].sort((a, b) => shapeOnly(a) - shapeOnly(b) || a.length - b.length);
      const closest = branches[0];
      if (closest !== undefined && closest.length > 0) {
        out.push(...toConfigIssues(closest, input, path));
        continue;
      }
    }
    const { present, value } = valueAt(input, path);
    out.push({ path: formatPath(path), message: expectation(issue), found: describeFound(value, path, present) });
  }
  return out;
}

function withBackupKeyHint(issue: ConfigIssue, schema: z.ZodType): ConfigIssue {
  if (!issue.message.startsWith('unknown field')) return issue;
  const key = issue.path.split('.').at(-1) ?? '';
  return { ...issue, message: unknownFieldMessage(key, knownKeys(schema, [])) };
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * Re-checks each target with its runbook policies reduced to defaults. When a policy is
 * invalid, zod skips the target-level checks (runbook applies to this kind? health check on a
 * web app?); this pass makes sure those are reported in the same run too.
 */
function targetLevelIssues(input: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  asArray(asRecord(input)?.targets).forEach((target, index) => {
    const raw = asRecord(target);
    if (raw === undefined) return;
    const runbooks: Record<string, unknown> = {};
    for (const [name, policy] of Object.entries(asRecord(raw.runbooks) ?? {})) {
      const storageAccountId = asRecord(policy)?.storageAccountId;
      runbooks[name] =
        name === 'keyvault-backup'
          ? { storageAccountId: typeof storageAccountId === 'string' ? storageAccountId : PLACEHOLDER_STORAGE_ID }
          : {};
    }
    const probe = { id: raw.id, ...(raw.health === undefined ? {} : { health: {} }), runbooks };
    const result = targetSchema.safeParse(probe);
    if (result.success) return;
    // Only judgements about the target as a whole; deeper paths concern the placeholders.
    const shallow = result.error.issues.filter((issue) => issue.path.length <= 2);
    issues.push(...toConfigIssues(shallow, input, ['targets', index]));
  });
  return issues;
}

const PLACEHOLDER_STORAGE_ID =
  '/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/placeholder/providers/Microsoft.Storage/storageAccounts/placeholder';

/** An issue as the loader collects it: `related` names another field whose line the message gets. */
type LoaderIssue = ConfigIssue & { readonly related?: string };

/**
 * Checks an SRE would insist on that the schema's shape alone cannot express. They read the
 * raw input defensively, so they are reported together with the schema's own issues.
 */
function safetyIssues(input: unknown): LoaderIssue[] {
  const issues: LoaderIssue[] = [];
  const root = asRecord(input);
  if (root === undefined) return issues;
  const targets = asArray(root.targets);
  if (targets.length > MAX_TARGETS) {
    issues.push({
      path: 'targets',
      message: `expected at most ${MAX_TARGETS} targets (split the estate)`,
      found: String(targets.length),
    });
  }
  const webhookNames = new Map<string, number>();
  asArray(asRecord(root.notifications)?.webhooks).forEach((webhook, index) => {
    const name = asRecord(webhook)?.name;
    if (typeof name !== 'string') return;
    const first = webhookNames.get(name);
    if (first !== undefined) {
      issues.push({
        path: `notifications.webhooks[${index}].name`,
        message: `expected a unique webhook name, found a duplicate of notifications.webhooks[${first}]`,
      });
    } else webhookNames.set(name, index);
  });
  // The schema checks this too, but zod skips whole-file refinements once any field is
  // invalid; checking the raw input reports a duplicate in the same pass as everything else.
  for (const duplicate of duplicateTargets(targets, asRecord(root.azure)?.cloud)) {
    issues.push({ path: `targets[${duplicate.index}].id`, message: duplicate.message, related: `targets[${duplicate.first}].id` });
  }
  // Scopes and defaults: unique names, subscriptions the file names, policies that fit the kinds.
  for (const issue of scopeIssues(input)) issues.push({ path: formatPath(issue.path), message: issue.message });
  // Also a whole-file refinement of the schema (for code that parses with it directly).
  for (const issue of sandboxUrlIssues(input)) issues.push({ path: formatPath(issue.path), message: issue.message });
  // Remediation checks across levels (kind vs action, params, restart cooldown, escalation names).
  for (const issue of remediationIssues(input, entryKinds)) issues.push({ path: formatPath(issue.path), message: issue.message });
  const storageId = asRecord(root.runRecords)?.storageAccountId;
  if (typeof storageId === 'string') {
    issues.push(...idOfKind(storageId, 'storageAccount', 'runRecords.storageAccountId'));
  }
  const stateStorageId = asRecord(root.state)?.storageAccountId;
  if (typeof stateStorageId === 'string') {
    issues.push(...idOfKind(stateStorageId, 'storageAccount', 'state.storageAccountId'));
  }
  targets.forEach((target, index) => {
    const purge = asRecord(asRecord(asRecord(target)?.runbooks)?.['image-purge']);
    if (purge === undefined) return;
    const at = `targets[${index}].runbooks.image-purge`;
    asArray(purge.inUseScope).forEach((id, s) => {
      // Container Apps jobs are consumers of images, never targets, so they have no kind.
      if (typeof id === 'string') issues.push(...idOfKind(id, ['containerApp', 'webSite'], `${at}.inUseScope[${s}]`, ['Microsoft.App/jobs']));
    });
  });
  return issues;
}

function idOfKind(id: string, kinds: ResourceKind | readonly ResourceKind[], path: string, otherTypes: readonly string[] = []): ConfigIssue[] {
  const wanted = typeof kinds === 'string' ? [kinds] : kinds;
  try {
    const parsed = parseResourceId(id);
    if (parsed.kind !== undefined && wanted.includes(parsed.kind)) return [];
    if (otherTypes.some((type) => type.toLowerCase() === parsed.type.toLowerCase())) return [];
    return [{ path, message: `expected the ID of a ${[...wanted, ...otherTypes].join(' or ')}, found type "${parsed.type}"` }];
  } catch (error) {
    return [{ path, message: errorMessage(error) }];
  }
}

/** Where a YAML node starts, as 1-based line and column, or undefined when unknown. */
function lineOf(doc: Document | undefined, counter: LineCounter | undefined, path: string): number | undefined {
  if (doc === undefined || counter === undefined) return undefined;
  const segments: PathSegment[] = [];
  for (const match of path.matchAll(/([^.[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g)) {
    if (match[2] !== undefined) segments.push(Number(match[2]));
    else if (match[3] !== undefined) segments.push(JSON.parse(`"${match[3]}"`) as string);
    else if (match[1] !== undefined) segments.push(match[1]);
  }
  // Walk down as far as the document goes, so a missing field points at its parent.
  let node: unknown = doc.contents;
  let range: [number, number, number] | undefined;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((item) => {
        const key: unknown = item.key;
        return (key !== null && typeof key === 'object' && 'value' in key ? key.value : key) === segment;
      });
      if (pair === undefined) break;
      const key: unknown = pair.key;
      node = pair.value ?? key;
      const r = (node as { range?: [number, number, number] } | null)?.range ?? (key as { range?: [number, number, number] } | null)?.range;
      if (r !== undefined) range = r;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      const r = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (r === undefined) break;
      range = r;
    } else break;
  }
  if (range === undefined) return undefined;
  return counter.linePos(range[0]).line;
}

/** Options for {@link parseConfigText}. */
export interface ParseOptions {
  /** Where the text came from, for messages: a file path or `app setting OPS_AUTOPILOT_CONFIG`. */
  source: string;
  /** `json` parses strictly as JSON; `yaml` (the default) also accepts JSON, a subset of YAML. */
  format?: 'yaml' | 'json';
}

/**
 * Parses and validates configuration text.
 *
 * @throws {@link ConfigError} listing every syntax error, or every invalid field.
 */
export function parseConfigText(text: string, options: ParseOptions): EstateConfig {
  const { source } = options;
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
    throw new ConfigError(source, [{ path: '', message: `expected at most ${MAX_CONFIG_BYTES} bytes of configuration`, found: `${Buffer.byteLength(text, 'utf8')} bytes` }]);
  }
  if (text.trim() === '') {
    throw new ConfigError(source, [{ path: '', message: 'expected an estate configuration', found: 'an empty document' }]);
  }
  const counter = new LineCounter();
  let doc: Document | undefined;
  let data: unknown;
  if (options.format === 'json') {
    try {
      data = JSON.parse(text);
    } catch (error) {
      const message = errorMessage(error);
      const position = /position (\d+)/.exec(message);
      let where = '';
      if (position?.[1] !== undefined) {
        const before = text.slice(0, Number(position[1]));
        const line = before.split('\n').length;
        const column = before.length - before.lastIndexOf('\n');
        where = `line ${line}, column ${column}`;
      }
      throw new ConfigError(source, [{ path: where, message: `expected valid JSON: ${message}` }], { cause: error });
    }
  }
  // Parse as YAML in both cases: for JSON it only serves to map error paths to lines.
  doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true, schema: 'core', strict: true });
  if (options.format !== 'json') {
    if (doc.errors.length > 0) {
      throw new ConfigError(
        source,
        doc.errors.map((error) => {
          const pos = error.linePos?.[0];
          return {
            path: pos === undefined ? '' : `line ${pos.line}, column ${pos.col}`,
            message: `YAML syntax error: ${(error.message.split('\n')[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, '')}`,
          };
        }),
      );
    }
    data = doc.toJS({ maxAliasCount: 100 });
  } else if (doc.errors.length > 0) {
    doc = undefined;
  }
  return validateConfig(data, source, { doc, counter });
}

/**
 * Validates already-parsed configuration data.
 *
 * @throws {@link ConfigError} listing every invalid field with its path and expected vs found.
 */
export function validateConfig(
  data: unknown,
  source: string,
  locate: { doc: Document | undefined; counter: LineCounter | undefined } = { doc: undefined, counter: undefined },
): EstateConfig {
  const result = estateConfigSchema.safeParse(data);
  const issues = [...(result.success ? [] : toConfigIssues(result.error.issues, data)), ...(result.success ? [] : targetLevelIssues(data)), ...safetyIssues(data)];
  if (issues.length === 0 && result.success) return result.data;
  // Two checks can say the same thing (e.g. `positive` and `min(1)`); say it once.
  // The schema and the raw checks can both report one problem; only the raw one knows `related`.
  const related = new Map<string, string>();
  for (const issue of issues as LoaderIssue[]) if (issue.related !== undefined) related.set(`${issue.path}\u0000${issue.message}`, issue.related);
  const seen = new Set<string>();
  const unique = issues.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const located = unique.map((issue): ConfigIssue => {
    const line = lineOf(locate.doc, locate.counter, issue.path);
    const other = related.get(`${issue.path}\u0000${issue.message}`);
    const otherLine = other === undefined ? undefined : lineOf(locate.doc, locate.counter, other);
    const { related: _related, ...plain } = issue as LoaderIssue;
    const message = otherLine === undefined ? plain.message : `${plain.message} on line ${String(otherLine)}`;
    return line === undefined ? { ...plain, message } : { ...plain, message, line };
  });
  // Document order reads best; issues without a line keep their relative order at the end.
  located.sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
  throw new ConfigError(source, located);
}

/**
 * Loads and validates a configuration file (`.yaml`, `.yml` or `.json`).
 *
 * @throws {@link ConfigError} when the file is missing, unreadable, too large or invalid.
 */
export async function loadConfigFile(path: string): Promise<EstateConfig> {
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new ConfigError(path, [{ path: '', message: 'expected a configuration file', found: 'a directory or special file' }]);
    }
    if (info.size > MAX_CONFIG_BYTES) {
      throw new ConfigError(path, [{ path: '', message: `expected at most ${MAX_CONFIG_BYTES} bytes of configuration`, found: `${info.size} bytes` }]);
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = errorCode(error);
    throw new ConfigError(
      path,
      [{ path: '', message: code === 'ENOENT' ? 'expected a configuration file, found none at this path' : `expected a readable file (${code ?? errorMessage(error)})` }],
      { cause: error },
    );
  }
  return parseConfigText(text, { source: path, format: path.toLowerCase().endsWith('.json') ? 'json' : 'yaml' });
}

/** Options for {@link loadConfigFromSettings}. */
export interface SettingsLoadOptions {
  /** App settings; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Directory a relative `OPS_AUTOPILOT_CONFIG_FILE` is resolved against; defaults to the
   * working directory, which in Azure Functions is the app root (`/home/site/wwwroot`).
   */
  baseDir?: string;
}

/**
 * Loads the configuration from app settings: `OPS_AUTOPILOT_CONFIG` (the text, YAML or JSON;
 * a `base64:` prefix is accepted for portals that mangle newlines) or `OPS_AUTOPILOT_CONFIG_FILE`
 * (a path, relative to the app root). Setting both is refused as ambiguous.
 *
 * @throws {@link ConfigError} naming the setting when neither or both are set, or the content is invalid.
 */
export async function loadConfigFromSettings(options: SettingsLoadOptions = {}): Promise<EstateConfig> {
  const env = options.env ?? process.env;
  const text = env[CONFIG_TEXT_SETTING];
  const file = env[CONFIG_FILE_SETTING];
  const hasText = text !== undefined && text.trim() !== '';
  const hasFile = file !== undefined && file.trim() !== '';
  const source = 'app settings';
  if (hasText && hasFile) {
    throw new ConfigError(source, [
      { path: CONFIG_FILE_SETTING, message: `expected only one of ${CONFIG_TEXT_SETTING} and ${CONFIG_FILE_SETTING}, found both set` },
    ]);
  }
  if (hasText) {
    let body = text;
    const settingSource = `app setting ${CONFIG_TEXT_SETTING}`;
    if (body.startsWith('base64:')) body = Buffer.from(body.slice('base64:'.length), 'base64').toString('utf8');
    const trimmed = body.trimStart();
    return parseConfigText(body, { source: settingSource, format: trimmed.startsWith('{') ? 'json' : 'yaml' });
  }
  if (hasFile) {
    const path = isAbsolute(file) ? file : resolve(options.baseDir ?? process.cwd(), file);
    return loadConfigFile(path);
  }
  throw new ConfigError(source, [
    { path: CONFIG_TEXT_SETTING, message: `expected ${CONFIG_TEXT_SETTING} (configuration text) or ${CONFIG_FILE_SETTING} (a path) to be set, found neither` },
  ]);
}

/** Loads from `file` when given, otherwise from app settings. */
export async function loadConfig(options: { file?: string } & SettingsLoadOptions = {}): Promise<EstateConfig> {
  return options.file === undefined ? loadConfigFromSettings(options) : loadConfigFile(options.file);
}
