import { FunctionRegistrationError } from './host-errors.ts';

/** A compiled HTTP route template (`items/{id:int}/{rest?}`, `files/{*path}`), matched like the host's ASP.NET routing. */
export interface RouteTemplate {
  readonly template: string;
  /** Route parameters when `path` (without the route prefix, no leading slash) matches, else `undefined`. */
  match(path: string): Record<string, string> | undefined;
  /** Literal segments count, used to prefer specific routes over parameterised ones. */
  readonly specificity: number;
}

interface Segment {
  readonly literal?: string;
  readonly param?: string;
  readonly optional: boolean;
  readonly catchAll: boolean;
  readonly constraint?: string;
}

const CONSTRAINTS: Readonly<Record<string, RegExp>> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  bool: /^(true|false)$/i,
  alpha: /^[a-z]+$/i,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  double: /^-?\d+(\.\d+)?$/,
};

/** Compiles a route template; throws for malformed parameters. */
export function compileRoute(template: string): RouteTemplate {
  const segments: Segment[] = template.split('/').filter((s) => s.length > 0).map((raw) => {
    const m = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(raw);
    if (!m) {
      if (raw.includes('{') || raw.includes('}')) {
        throw new FunctionRegistrationError(`route "${template}" has a malformed segment "${raw}"; expected {name}, {name?}, {name:constraint} or {*name}`, { route: template });
      }
      return { literal: raw.toLowerCase(), optional: false, catchAll: false };
    }
    return { param: m[2] ?? '', catchAll: m[1] === '*', constraint: m[3], optional: m[4] === '?' || m[1] === '*' };
  });
  return {
    template,
    specificity: segments.filter((s) => s.literal !== undefined).length,
    match(path: string): Record<string, string> | undefined {
      const parts = path.split('/').filter((p) => p.length > 0);
      const params: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i];
        if (!seg) return undefined;
        if (seg.catchAll) {
          const rest = parts.slice(i).map(decodeURIComponent).join('/');
          if (rest) params[seg.param ?? ''] = rest;
          return params;
        }
        const part = parts[i];
        if (part === undefined) {
          if (seg.optional) continue;
          return undefined;
        }
        const decoded = decodeURIComponent(part);
        if (seg.literal !== undefined) {
          if (decoded.toLowerCase() !== seg.literal) return undefined;
          continue;
        }
        const check = seg.constraint ? CONSTRAINTS[seg.constraint] : undefined;
        if (check && !check.test(decoded)) return undefined;
        params[seg.param ?? ''] = decoded;
      }
      return parts.length > segments.length ? undefined : params;
    },
  };
}
