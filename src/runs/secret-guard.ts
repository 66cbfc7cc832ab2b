/**
 * Detection and redaction of secrets in anything the autopilot writes down: run records, log
 * lines, configuration error messages.
 *
 * Two rules: a field whose *name* says it holds a secret (password, secret, token, key,
 * connection string, ...) never keeps its value, and a *value* that looks like a secret (a JWT,
 * a connection string, a SAS signature, a private key, credentials in a URL) is masked wherever
 * it appears.
 */
import { OpsAutopilotError } from '../errors.ts';

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Field names that hold secrets. Matched against the last word of a camelCase, snake_case or
 * kebab-case name, so `storageAccountKey` and `db_password` match but `keep`, `keyVaultUrl`
 * and `secretCount` do not.
 */
const SECRET_NAME =
  /(?:^|[^a-z])(?:password|passwd|pwd|secret|secretvalue|token|accesstoken|refreshtoken|key|apikey|accountkey|accesskey|sharedaccesskey|privatekey|connectionstring|connstr|credential|credentials|sas|sastoken|signature|sig|clientsecret|authorization|cookie)$/i;

/** Splits camelCase so `storageAccountKey` → `storage_account_key`, then tests the last word. */
export function isSecretFieldName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word !== '');
  const last = words.at(-1);
  if (last === undefined) return false;
  // "connection_string", "api_key", "account_key", "client_secret": join the last two words too.
  const lastTwo = words.slice(-2).join('');
  return SECRET_NAME.test(last) || SECRET_NAME.test(lastTwo);
}

interface ValuePattern {
  readonly reason: string;
  readonly pattern: RegExp;
  /** How to mask a match, keeping the non-secret part readable. */
  readonly mask: (match: string, ...groups: string[]) => string;
}

// Patterns that keep a readable prefix skip values already masked, so redaction is idempotent.
const VALUE_PATTERNS: readonly ValuePattern[] = [
  {
    reason: 'a JSON Web Token',
    pattern: /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
    mask: () => REDACTED,
  },
  {
    reason: 'a private key',
    pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
    mask: () => REDACTED,
  },
  {
    reason: 'a connection string secret',
    pattern:
      /\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|ClientSecret|AccessKey)\s*=\s*(?!\[redacted\])("[^"]*"|[^;\s"']+)/gi,
    mask: (_match, name = '') => `${name}=${REDACTED}`,
  },
  {
    reason: 'a signed URL query parameter',
    pattern: /([?&](?:sig|code|token|access_token|api[-_]?key|key|secret|password|signature|client_secret)=)(?!\[redacted\])[^&#\s"']+/gi,
    mask: (_match, prefix = '') => `${prefix}${REDACTED}`,
  },
  {
    reason: 'credentials in a URL',
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:"']+:[^\s/@"']+@/gi,
    mask: (_match, scheme = '') => `${scheme}${REDACTED}@`,
  },
  {
    reason: 'a bearer token',
    pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{16,}/g,
    mask: (_match, scheme = '') => `${scheme} ${REDACTED}`,
  },
];

/** Returns why a string looks secret, or undefined when it does not. */
export function secretReason(value: string): string | undefined {
  for (const { pattern, reason } of VALUE_PATTERNS) {
    pattern.lastIndex = 0;
    const found = pattern.test(value);
    pattern.lastIndex = 0;
    if (found) return reason;
  }
  return undefined;
}

/** Masks every secret-looking part of a string, keeping the rest readable. */
export function redactString(value: string): string {
  let result = value;
  for (const { pattern, mask } of VALUE_PATTERNS) {
    pattern.lastIndex = 0;
    result = result.replace(pattern, (match: string, ...rest: unknown[]) =>
      mask(match, ...rest.filter((part): part is string => typeof part === 'string')),
    );
  }
  return result;
}

/** One secret-looking thing found in a structure. */
export interface SecretFinding {
  /** Dotted path of the field, e.g. `targets[0].actions[1].details.password`. */
  readonly path: string;
  readonly reason: string;
}

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/**
 * Lists every secret-looking field or value in a JSON-like structure. Field names are judged
 * by {@link isSecretFieldName}; a field so named is a finding unless its value is empty,
 * boolean or already redacted.
 */
export function findSecrets(value: unknown, path = ''): SecretFinding[] {
  const findings: SecretFinding[] = [];
  const visit = (node: unknown, at: string, depth: number): void => {
    if (depth > 64) {
      findings.push({ path: at, reason: 'nesting deeper than 64 levels' });
      return;
    }
    if (typeof node === 'string') {
      const reason = secretReason(node);
      if (reason !== undefined) findings.push({ path: at, reason: `looks like ${reason}` });
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item, index) => {
        visit(item, childPath(at, index), depth + 1);
      });
      return;
    }
    if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        const here = childPath(at, key);
        if (isSecretFieldName(key) && holdsValue(child)) {
          findings.push({ path: here, reason: `field name "${key}" denotes a secret` });
          continue;
        }
        visit(child, here, depth + 1);
      }
    }
  };
  visit(value, path, 0);
  return findings;
}

function holdsValue(value: unknown): boolean {
  if (value === undefined || value === null || typeof value === 'boolean') return false;
  if (typeof value === 'string') return value !== '' && value !== REDACTED;
  return true;
}

/**
 * Returns a deep copy with secret-named fields replaced by {@link REDACTED} and secret-looking
 * substrings masked. Plain data only: functions and symbols are dropped, Dates become ISO text.
 */
export function redactSecrets<T>(value: T): T {
  const copy = (node: unknown, depth: number): unknown => {
    if (depth > 64) return REDACTED;
    if (typeof node === 'string') return redactString(node);
    if (node instanceof Date) return node.toISOString();
    if (Array.isArray(node)) return node.map((item) => copy(item, depth + 1));
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(node)) {
        out[key] = isSecretFieldName(key) && holdsValue(child) ? REDACTED : copy(child, depth + 1);
      }
      return out;
    }
    if (typeof node === 'function' || typeof node === 'symbol') return undefined;
    return node;
  };
  return copy(value, 0) as T;
}

/** Thrown when something about to be written or logged still holds a secret. */
export class SecretLeakError extends OpsAutopilotError {
  override readonly name: string = 'SecretLeakError';
  readonly findings: readonly SecretFinding[];

  constructor(what: string, findings: readonly SecretFinding[]) {
    super(
      `refusing to write ${what}: expected no secrets, found ${findings.length} (${findings
        .map((finding) => `${finding.path === '' ? '(value)' : finding.path}: ${finding.reason}`)
        .join('; ')})`,
      { context: { what, paths: findings.map((finding) => finding.path) } },
    );
    this.findings = findings;
  }
}

/**
 * Throws {@link SecretLeakError} when `value` holds anything secret-looking. The error names
 * the paths, never the values.
 */
export function assertNoSecrets(value: unknown, what: string): void {
  const findings = findSecrets(value);
  if (findings.length > 0) throw new SecretLeakError(what, findings);
}
