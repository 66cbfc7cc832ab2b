/**
 * Route matching for provider routes. Patterns are `/`-separated; a `{name}` segment matches one
 * path segment and a `{name*}` segment matches one or more (for ACR repository names with
 * slashes, or app paths). Literal segments match case-insensitively on the ARM and Key Vault
 * hosts, as those services do, and case-sensitively elsewhere.
 */
import type { RouteDefinition, RouteHost } from '../contract.ts';

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'rest'; name: string };

interface CompiledRoute {
  readonly route: RouteDefinition;
  readonly segments: readonly Segment[];
  /** Higher is more specific: literal segments count most, catch-alls least. */
  readonly score: number;
}

/** The result of a successful match. */
export interface RouteMatch {
  readonly route: RouteDefinition;
  readonly params: Readonly<Record<string, string>>;
}

/** Thrown when a provider registers a malformed pattern. */
export class InvalidRoutePatternError extends Error {
  override readonly name = 'InvalidRoutePatternError';
  constructor(
    readonly operationId: string,
    readonly pattern: string,
    reason: string,
  ) {
    super(`route ${operationId} has an invalid pattern "${pattern}": ${reason}`);
  }
}

/** Splits a path into decoded segments, ignoring empty ones (leading/trailing slashes). */
export function splitPath(path: string): string[] {
  return path
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    });
}

function compile(route: RouteDefinition): CompiledRoute {
  if (!route.pattern.startsWith('/')) throw new InvalidRoutePatternError(route.operationId, route.pattern, 'expected a leading "/"');
  const segments: Segment[] = route.pattern
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => {
      const param = /^\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}$/.exec(segment);
      if (param?.[1] !== undefined) return param[2] === '*' ? { kind: 'rest', name: param[1] } : { kind: 'param', name: param[1] };
      if (segment.includes('{') || segment.includes('}')) {
        throw new InvalidRoutePatternError(route.operationId, route.pattern, `segment "${segment}" mixes text and a parameter`);
      }
      return { kind: 'literal', value: segment };
    });
  const score = segments.reduce((total, segment) => total + (segment.kind === 'literal' ? 100 : segment.kind === 'param' ? 10 : 1), 0);
  return { route, segments, score };
}

function matchSegments(
  pattern: readonly Segment[],
  path: readonly string[],
  caseInsensitive: boolean,
  params: Record<string, string>,
): boolean {
  const [head, ...rest] = pattern;
  if (head === undefined) return path.length === 0;
  if (head.kind === 'rest') {
    // Greedy with backtracking, so `/{repo*}/manifests/{ref}` works.
    for (let take = path.length - rest.length; take >= 1; take--) {
      const attempt: Record<string, string> = {};
      if (matchSegments(rest, path.slice(take), caseInsensitive, attempt)) {
        Object.assign(params, attempt, { [head.name]: path.slice(0, take).join('/') });
        return true;
      }
    }
    return false;
  }
  const [first, ...remaining] = path;
  if (first === undefined) return false;
  if (head.kind === 'literal') {
    const equal = caseInsensitive ? head.value.toLowerCase() === first.toLowerCase() : head.value === first;
    return equal && matchSegments(rest, remaining, caseInsensitive, params);
  }
  const attempt: Record<string, string> = { [head.name]: first };
  if (!matchSegments(rest, remaining, caseInsensitive, attempt)) return false;
  Object.assign(params, attempt);
  return true;
}

/** Indexes provider routes by host and finds the best match for a request. */
export class Router {
  private readonly byHost = new Map<RouteHost, CompiledRoute[]>();

  constructor(routes: readonly RouteDefinition[]) {
    for (const route of routes) {
      const compiled = compile(route);
      const list = this.byHost.get(route.host) ?? [];
      list.push(compiled);
      this.byHost.set(route.host, list);
    }
    for (const list of this.byHost.values()) list.sort((a, b) => b.score - a.score);
  }

  /**
   * Finds the route for a method and path (the path after any host prefix). HEAD falls back to
   * GET. `methodMismatch` is true when some route matches the path but not the method.
   */
  match(host: RouteHost, method: string, path: string): { match: RouteMatch | undefined; methodMismatch: boolean } {
    const segments = splitPath(path);
    const caseInsensitive = host === 'arm' || host === 'keyvault';
    const candidates = this.byHost.get(host) ?? [];
    let methodMismatch = false;
    let headFallback: RouteMatch | undefined;
    for (const compiled of candidates) {
      const params: Record<string, string> = {};
      if (!matchSegments(compiled.segments, segments, caseInsensitive, params)) continue;
      if (compiled.route.method === method) return { match: { route: compiled.route, params }, methodMismatch: false };
      if (method === 'HEAD' && compiled.route.method === 'GET') headFallback ??= { route: compiled.route, params };
      else methodMismatch = true;
    }
    if (headFallback !== undefined) return { match: headFallback, methodMismatch: false };
    return { match: undefined, methodMismatch };
  }

  /** Whether any ARM route serves the given provider namespace and resource type. */
  servesArmType(namespace: string, type: string): boolean {
    const wanted = `/providers/${namespace}/${type}`.toLowerCase();
    return (this.byHost.get('arm') ?? []).some((compiled) => compiled.route.pattern.toLowerCase().includes(wanted));
  }
}
