/**
 * Picking targets the way an operator names them: `--target ca-user-service` (the resource
 * name), `--target rg-xshopai-prod/providers/Microsoft.App/containerApps/ca-user-service` (any
 * unique path suffix of the id) or the full ARM id. One resolver for every command and trigger
 * that takes targets, so a name means the same thing everywhere.
 *
 * Matching is case-insensitive (ARM ids are) and whole path segments only: `user-service` does
 * not match `ca-user-service`. A selector that matches nothing, or more than one target, is an
 * error naming the candidates: guessing which of two resources an operator meant is not safe.
 */
import { OpsAutopilotError } from '../errors.ts';

/** Why one selector could not be resolved. */
export interface TargetSelectorProblem {
  readonly selector: string;
  readonly problem: 'unknown' | 'ambiguous';
  /** For `ambiguous`: the ids it matched. */
  readonly matches: readonly string[];
}

/** A selector matched no target or several; lists every such selector. */
export class TargetSelectorError extends OpsAutopilotError {
  override readonly name: string = 'TargetSelectorError';
  readonly problems: readonly TargetSelectorProblem[];

  constructor(message: string, problems: readonly TargetSelectorProblem[], context: Record<string, string> = {}) {
    super(message, { context: { ...context, selectors: problems.map((problem) => problem.selector) } });
    this.problems = problems;
  }
}

const normalise = (text: string): string => text.trim().toLowerCase().replace(/^\/+|\/+$/g, '');

/** The last path segment of an id: the resource name. */
export const resourceNameOf = (id: string): string => id.split('/').filter((part) => part !== '').at(-1) ?? id;

/** True when `selector` names `id`: the whole id, or a suffix of whole path segments. */
export function selectorMatches(selector: string, id: string): boolean {
  const wanted = normalise(selector);
  const full = normalise(id);
  return wanted !== '' && (full === wanted || full.endsWith(`/${wanted}`));
}

/**
 * The candidates named by `selectors`, in the candidates' order, each once.
 *
 * @param what describes the candidates for the message, e.g. `targets of image-purge on estate xshopai`.
 * @throws {@link TargetSelectorError} naming every selector that matched none or several.
 */
export function selectTargetsBy<T extends { readonly id: string }>(candidates: readonly T[], selectors: readonly string[], what: string): T[] {
  const chosen = new Set<T>();
  const problems: TargetSelectorProblem[] = [];
  for (const selector of selectors) {
    const exact = candidates.filter((candidate) => normalise(candidate.id) === normalise(selector));
    const matches = exact.length > 0 ? exact : candidates.filter((candidate) => selectorMatches(selector, candidate.id));
    const first = matches[0];
    if (matches.length === 1 && first !== undefined) chosen.add(first);
    else problems.push({ selector, problem: matches.length === 0 ? 'unknown' : 'ambiguous', matches: matches.map((match) => match.id) });
  }
  if (problems.length > 0) {
    const names = candidates.map((candidate) => resourceNameOf(candidate.id));
    const shown = names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} and ${String(names.length - 10)} more`;
    const lines = problems.map((problem) =>
      problem.problem === 'unknown'
        ? `"${problem.selector}" matches none`
        : `"${problem.selector}" matches ${String(problem.matches.length)} (${problem.matches.join(', ')}); give more of the id, e.g. its resource group`,
    );
    throw new TargetSelectorError(`expected each --target to name one of the ${what} (by name, a unique end of its id, or the full id: ${shown || 'none'}), found ${lines.join('; ')}`, problems, { what });
  }
  return candidates.filter((candidate) => chosen.has(candidate));
}
