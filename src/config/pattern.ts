/**
 * The one way a user-supplied pattern in the estate configuration is compiled and matched:
 * `image-purge.repositories` and `tagFilter` today, and every name pattern a later field adds
 * (scopes, exclusions). `config validate` and the runbooks call the same {@link compileNamePattern},
 * so a pattern that validates is exactly a pattern that runs.
 *
 * Why RE2 (the `re2js` package, a pure-JavaScript port) instead of `RegExp`: V8's backtracking
 * engine takes exponential time on patterns such as `^(a+)+$` over a 40-character name, and a
 * match is synchronous, so one such pattern stops every function on the worker. RE2 matches in
 * time linear in the name (times the size of the pattern) whatever the pattern; it has no
 * backreferences or lookahead, which are exactly the features that need backtracking.
 *
 * The work is bounded as well, so that even a linear match cannot be made slow:
 * - a pattern is at most {@link MAX_PATTERN_LENGTH} characters and compiles to at most
 *   {@link MAX_PATTERN_INSTRUCTIONS} RE2 instructions (RE2 itself refuses repeat counts above
 *   1000; `(?:[a-z]{1,50}){1,20}` is refused here);
 * - a name matched is at most {@link MAX_NAME_LENGTH} characters. A longer name is refused with
 *   a {@link PatternError} rather than treated as "no match", because for an exclusion "no
 *   match" would be the unsafe answer. Registry names are far shorter (tags at most 128);
 * - one compiled pattern spends at most {@link MAX_MATCH_MS} milliseconds matching in all (a
 *   runbook compiles its patterns once per plan); past that it throws a {@link PatternError}.
 *   Measured on the CI machine: ordinary patterns match 100,000 tag names in 10-100 ms; the worst
 *   pattern within the limits costs about 7 ms per 1,024-character name.
 */
import { RE2JS, RE2JSException } from 're2js';
import { OpsAutopilotError } from '../errors.ts';

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 512;

/** Largest compiled pattern accepted, in RE2 program instructions (`^[0-9a-f]{7,40}$` is 77). */
export const MAX_PATTERN_INSTRUCTIONS = 1000;

/** Longest name a pattern is matched against, in characters. */
export const MAX_NAME_LENGTH = 1024;

/** Most time one compiled pattern may spend matching, in milliseconds, summed over its matches. */
export const MAX_MATCH_MS = 2000;

/** A pattern that cannot be compiled, or a name too long to match. */
export class PatternError extends OpsAutopilotError {
  override readonly name: string = 'PatternError';
}

/** A compiled name pattern: matches whole names only (anchored at both ends). */
export interface NamePattern {
  /** The pattern as written in the configuration. */
  readonly source: string;
  /**
   * True when the whole of `name` matches.
   *
   * @throws {@link PatternError} when `name` is longer than {@link MAX_NAME_LENGTH}.
   */
  matches(name: string): boolean;
}

/**
 * Why `source` is not a usable pattern, phrased as the configuration's "expected ..." message,
 * or undefined when it is one. The same check {@link compileNamePattern} makes.
 */
export function patternProblem(source: string): string | undefined {
  try {
    compileNamePattern(source);
    return undefined;
  } catch (error) {
    if (error instanceof PatternError) return error.message;
    throw error;
  }
}

/**
 * Compiles a name pattern (RE2 syntax, case-sensitive, matched against the whole name, so
 * `user-service` does not also match `user-service-legacy`).
 *
 * @param options.maxMatchMs matching time this pattern may spend in all (default
 *   {@link MAX_MATCH_MS}); tests lower it.
 *
 * @throws {@link PatternError} when the pattern is empty, too long or not valid RE2 syntax
 *   (e.g. a lookahead `(?=` or a backreference `\1`), with the reason.
 */
export function compileNamePattern(source: string, options: { readonly maxMatchMs?: number } = {}): NamePattern {
  const maxMatchMs = options.maxMatchMs ?? MAX_MATCH_MS;
  if (source.length === 0) throw new PatternError('expected a regular expression, found an empty string', { context: { pattern: source } });
  if (source.length > MAX_PATTERN_LENGTH) {
    throw new PatternError(`expected a regular expression of at most ${String(MAX_PATTERN_LENGTH)} characters, found ${String(source.length)}`, {
      context: { pattern: source.slice(0, 80) },
    });
  }
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(source);
  } catch (error) {
    if (!(error instanceof RE2JSException)) throw error;
    // "error parsing regexp: missing closing ): `^v(\d+`" → the reason after the prefix.
    const reason = error.message.replace(/^error parsing regexp:\s*/, '');
    throw new PatternError(`expected a valid RE2 regular expression (${reason})`, {
      context: { pattern: source },
      cause: error,
    });
  }
  const instructions = Number(compiled.re2Input.numberOfInstructions());
  if (instructions > MAX_PATTERN_INSTRUCTIONS) {
    throw new PatternError(
      `expected a regular expression that compiles to at most ${String(MAX_PATTERN_INSTRUCTIONS)} RE2 instructions, found ${String(instructions)} (lower its repeat counts)`,
      { context: { pattern: source.slice(0, 80), instructions } },
    );
  }
  let spentMs = 0;
  let matched = 0;
  return {
    source,
    matches(name: string): boolean {
      if (name.length > MAX_NAME_LENGTH) {
        throw new PatternError(
          `pattern "${source}": expected a name of at most ${String(MAX_NAME_LENGTH)} characters to match, found ${String(name.length)} ("${name.slice(0, 40)}…")`,
          { context: { pattern: source, nameLength: name.length } },
        );
      }
      if (spentMs > maxMatchMs) {
        throw new PatternError(
          `pattern "${source}": expected matching to take at most ${String(maxMatchMs)} ms, found ${spentMs.toFixed(0)} ms spent on ${String(matched)} names (simplify the pattern)`,
          { context: { pattern: source, spentMs: Math.round(spentMs), matched } },
        );
      }
      const started = performance.now();
      const result = compiled.testExact(name);
      spentMs += performance.now() - started;
      matched += 1;
      return result;
    },
  };
}
