/**
 * The one pattern compiler (`src/config/pattern.ts`): linear-time matching of the patterns that
 * hang V8's backtracking engine, the same verdict for `config validate` and the runbook, and
 * bounds on pattern length, program size, name length and matching time.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { compileNamePattern, MAX_NAME_LENGTH, MAX_PATTERN_LENGTH, PatternError, patternProblem } from '../../../src/config/pattern.ts';
import { ConfigError } from '../../../src/errors.ts';

const REGISTRY = '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-x/providers/Microsoft.ContainerRegistry/registries/crx';

/** Milliseconds `work` takes. */
function timed(work: () => void): number {
  const started = performance.now();
  work();
  return performance.now() - started;
}

/** The config lines for an image-purge policy, or [] when it is valid. */
function linesFor(policy: string): string[] {
  try {
    parseConfigText(`version: 1\nestate: x\ntargets:\n  - id: ${REGISTRY}\n    runbooks:\n      image-purge:\n${policy}`, { source: 'inline.yaml' });
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines();
  }
}

describe('catastrophic backtracking', () => {
  // With RegExp these never return (2^40 ways to split the a's); they are not run that way here.
  const cases: [string, string, boolean][] = [
    ['^(a+)+$', `${'a'.repeat(40)}-`, false],
    ['(a+)+b', 'a'.repeat(40), false],
    ['(a|a)*b', 'a'.repeat(40), false],
    ['(.*a){20}', `${'a'.repeat(40)}-`, false],
    ['^(a+)+$', `${'a'.repeat(MAX_NAME_LENGTH - 1)}-`, false],
  ];

  it.each(cases)('%s over an adversarial name is valid config and matches within a second', (source, name, expected) => {
    expect(patternProblem(source)).toBeUndefined();
    expect(linesFor(`        tagFilter: '${source}'\n        repositories: ['${source}']\n`)).toEqual([]);
    const pattern = compileNamePattern(source);
    let result: boolean | undefined;
    expect(timed(() => (result = pattern.matches(name)))).toBeLessThan(1000);
    expect(result).toBe(expected);
  });

  it('still matches what it should', () => {
    expect(compileNamePattern('^(a+)+$').matches('aaaa')).toBe(true);
    expect(compileNamePattern('(a+)+b').matches('aaab')).toBe(true);
  });
});

describe('one compile for config validate and the runbook', () => {
  it('accepts v\\d\\-rc (RegExp with the u flag refuses "\\-") and matches v1-rc', () => {
    expect(linesFor("        tagFilter: 'v\\d\\-rc'\n")).toEqual([]);
    expect(() => new RegExp(String.raw`^(?:v\d\-rc)$`, 'u')).toThrow();
    const pattern = compileNamePattern(String.raw`v\d\-rc`);
    expect(pattern.matches('v1-rc')).toBe(true);
    expect(pattern.matches('v1-rc2')).toBe(false);
  });

  it('matches whole names only', () => {
    const pattern = compileNamePattern('user-service');
    expect(pattern.matches('user-service')).toBe(true);
    expect(pattern.matches('user-service-legacy')).toBe(false);
    expect(compileNamePattern('^[0-9a-f]{7,40}$').matches('e52a9c4')).toBe(true);
  });

  it('refuses what RE2 cannot run in linear time, with the reason and the field', () => {
    expect(linesFor("        tagFilter: '(?=v)v1'\n        repositories: ['(a)\\1']\n")).toEqual([
      'targets[0].runbooks.image-purge.repositories[0]: expected a valid RE2 regular expression (invalid escape sequence: `\\1`), found "(a)\\\\1" (line 8)',
      'targets[0].runbooks.image-purge.tagFilter: expected a valid RE2 regular expression (invalid or unsupported Perl syntax: `(?=`), found "(?=v)v1" (line 7)',
    ].sort((a, b) => Number(/line (\d+)/.exec(a)?.[1]) - Number(/line (\d+)/.exec(b)?.[1])));
  });
});

describe('bounded work', () => {
  it('refuses a pattern longer than the limit, and one whose program is too large', () => {
    expect(linesFor(`        tagFilter: '${'a'.repeat(MAX_PATTERN_LENGTH + 1)}'\n`)).toEqual([
      `targets[0].runbooks.image-purge.tagFilter: expected at most ${String(MAX_PATTERN_LENGTH)} characters, found "${'a'.repeat(77)}..." (line 7)`,
    ]);
    expect(patternProblem('(?:[a-z]{1,50}){1,20}')).toMatch(/^expected a regular expression that compiles to at most 1000 RE2 instructions, found \d+/);
    expect(patternProblem('a{1001}')).toMatch(/invalid repeat count/);
    expect(() => compileNamePattern('')).toThrow(PatternError);
  });

  it('refuses to match a name longer than the limit (no silent "no match")', () => {
    const pattern = compileNamePattern('.*');
    expect(pattern.matches('a'.repeat(MAX_NAME_LENGTH))).toBe(true);
    expect(() => pattern.matches('a'.repeat(MAX_NAME_LENGTH + 1))).toThrow(/expected a name of at most 1024 characters to match, found 1025/);
  });

  it('stops a pattern that has spent its matching time', () => {
    const pattern = compileNamePattern('(?:[a-z]{1,30}){1,10}', { maxMatchMs: 0 });
    pattern.matches('a'.repeat(200));
    expect(() => pattern.matches('abc')).toThrow(/expected matching to take at most 0 ms, found \d+ ms spent on 1 names/);
  });
});
