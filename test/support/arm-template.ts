/**
 * Reading the compiled ARM template (infra/main.json) in tests: every resource, including those
 * of nested deployments (modules), with the template that declares it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** An ARM resource as the compiled template holds it (expressions are strings). */
export interface ArmResource {
  readonly type: string;
  readonly name: string;
  readonly apiVersion?: string;
  readonly scope?: string;
  readonly condition?: unknown;
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
  readonly location?: string;
  readonly properties?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

/** A template or nested template. */
export interface ArmTemplate {
  readonly parameters?: Record<string, { defaultValue?: unknown; type?: string }>;
  readonly variables?: Record<string, unknown>;
  readonly resources: Record<string, ArmResource> | ArmResource[];
  readonly [key: string]: unknown;
}

/** One resource found by {@link walkResources}. */
export interface FoundResource {
  /** Symbolic names from main.json down to the resource, e.g. `estateRoles/onSite`. */
  readonly path: string;
  readonly resource: ArmResource;
  /** The template that declares the resource. */
  readonly template: ArmTemplate;
}

/** The committed compiled template. */
export function loadMainTemplate(): ArmTemplate {
  return JSON.parse(readFileSync(path.resolve('infra/main.json'), 'utf8')) as ArmTemplate;
}

function entries(template: ArmTemplate): [string, ArmResource][] {
  return Array.isArray(template.resources) ? template.resources.map((r, i) => [String(i), r]) : Object.entries(template.resources);
}

/** Every resource of the template and of its nested deployments, depth first. */
export function walkResources(template: ArmTemplate, prefix = ''): FoundResource[] {
  return entries(template).flatMap(([name, resource]) => {
    const here = `${prefix}${name}`;
    const found: FoundResource[] = [{ path: here, resource, template }];
    const nested = (resource.properties as { template?: ArmTemplate } | undefined)?.template;
    if (resource.type === 'Microsoft.Resources/deployments' && nested !== undefined) found.push(...walkResources(nested, `${here}/`));
    return found;
  });
}

/** Resources of one type (case-insensitive). */
export function resourcesOfType(template: ArmTemplate, type: string): FoundResource[] {
  return walkResources(template).filter((found) => found.resource.type.toLowerCase() === type.toLowerCase());
}

/** The resource at a symbolic path, e.g. `app` or `webAppAlerts/health`. */
export function resourceAt(template: ArmTemplate, at: string): ArmResource {
  const found = walkResources(template).find((f) => f.path === at);
  if (found === undefined) throw new Error(`main.json has no resource ${at}`);
  return found.resource;
}

/** The nested template of a module (a deployment resource). */
export function moduleTemplate(template: ArmTemplate, symbolicName: string): ArmTemplate {
  const nested = (resourceAt(template, symbolicName).properties as { template?: ArmTemplate } | undefined)?.template;
  if (nested === undefined) throw new Error(`${symbolicName} is not a module`);
  return nested;
}

/**
 * True when an expression is computed from the template's parameters: it calls `parameters()`
 * itself or reads a variable that does (variables are expanded until none is left).
 */
export function derivesFromParameters(expression: string, template: ArmTemplate, seen = new Set<string>()): boolean {
  if (expression.includes('parameters(')) return true;
  for (const match of expression.matchAll(/variables\('([^']+)'\)/g)) {
    const name = match[1]!;
    if (seen.has(name)) continue;
    seen.add(name);
    const definition = template.variables?.[name];
    if (definition !== undefined && derivesFromParameters(JSON.stringify(definition), template, seen)) return true;
  }
  return false;
}

/** The top-level arguments of the first call of `fn` in an ARM expression. */
export function callArguments(expression: string, fn: string): string[] {
  const start = expression.indexOf(`${fn}(`);
  if (start < 0) return [];
  const args: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const char of expression.slice(start + fn.length + 1)) {
    if (char === "'") quoted = !quoted;
    if (!quoted && char === '(') depth += 1;
    if (!quoted && char === ')') {
      if (depth === 0) break;
      depth -= 1;
    }
    if (!quoted && depth === 0 && char === ',') {
      args.push(current.trim());
      current = '';
      continue;
    }
    current += char;
  }
  args.push(current.trim());
  return args;
}

/**
 * An ARM expression with every `variables('x')` whose value is itself an expression or a
 * literal replaced by that value, so that tests can read what a name or a list really is.
 */
export function expandVariables(expression: string, template: ArmTemplate, depth = 0): string {
  if (depth > 10) return expression;
  const expanded = expression.replace(/variables\('([^']+)'\)/g, (whole, name: string) => {
    const value = template.variables?.[name];
    if (typeof value === 'string') return value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : `'${value}'`;
    if (value !== undefined) return JSON.stringify(value);
    return whole;
  });
  return expanded === expression ? expression : expandVariables(expanded, template, depth + 1);
}
