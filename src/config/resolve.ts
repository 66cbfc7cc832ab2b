/**
 * Target resolution: from an estate configuration (explicit `targets`, `scopes`, `defaults`,
 * `exclusions`) to the list of resources Ops Autopilot looks after, each with its policies and
 * where they came from. {@link resolveTargets} is the one function that does it and
 * {@link TargetResolution} its one result: every consumer (the runbook executor and its timers,
 * manual runs over HTTP, inventory, `--target`, the remediation allow-list, restores, the
 * deployment parameters) reads the resolved targets, never `config.targets` alone, so a resource
 * a scope selects is looked after (and one an exclusion names is left alone) everywhere alike.
 *
 * Policy levels, lowest first, merged field by field per runbook on what was written (the
 * built-in defaults are filled once, after merging):
 *
 *   defaults.runbooks[R]  <  defaults.kinds[kind]  <  the scope that selected it  <  targets[i]
 *
 * A runbook applies to a target when a level above `defaults.runbooks` names it.
 *
 * Safety, all fail closed:
 * - a scope searches only its own subscription (one the file names, checked by the loader), and
 *   a listing that returns a resource outside what was asked for makes the whole scope unusable;
 * - the tag `ops-autopilot: ignore` on a resource whose tags are known (every scope match, and
 *   an explicit target a scope also lists) leaves it out, whatever else the file says;
 * - a resource two scopes select with different policies is an error naming both;
 * - a scope whose discovery fails (ARM refuses, throttles past the retries, or the caller has no
 *   Azure access) selects nothing and is reported in {@link TargetResolution.unavailable}; the
 *   executor then does nothing for the runbooks and resources that scope could reach, and says
 *   why ({@link unavailableScopesFor}).
 */
import { parseResourceId, RESOURCE_TYPES, type ResourceKind } from '../azure/resource-id.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import type { RemediationLayer } from './remediation-schema.ts';
import { compileNamePattern, type NamePattern } from './pattern.ts';
import {
  IGNORE_TAG,
  RUNBOOK_KINDS,
  scopeKinds,
  targetSchema,
  type EstateConfig,
  type RunbookName,
  type ScopeConfig,
  type TargetConfig,
  type WrittenPolicy,
} from './schema.ts';

/** Most resolved targets one configuration may have; beyond it a run's blast radius is too large to review. */
export const MAX_RESOLVED_TARGETS = 500;

/** One resource as an ARM list operation reports it. */
export interface DiscoveredResource {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** What one scope asks ARM for: one subscription, optionally one resource group, some types. */
export interface DiscoveryQuery {
  readonly subscriptionId: string;
  readonly resourceGroup: string | undefined;
  readonly types: readonly string[];
}

/** Lists resources for scopes; `src/azure/discovery.ts` does it with ARM's list operations. */
export interface ScopeDiscovery {
  /** Every resource of the query, all pages read. Throws when ARM cannot be read. */
  list(query: DiscoveryQuery, signal?: AbortSignal): Promise<readonly DiscoveredResource[]>;
}

/** Which level set one runbook's policy of a target. */
export interface PolicyWinner {
  readonly runbook: RunbookName;
  /** The level that won: `targets[2]`, `scope services (scopes[0])`, `defaults.kinds.containerApp`. */
  readonly source: string;
  /** Lower levels that also set fields of it (`defaults.runbooks.revision-cleanup`, ...). */
  readonly over: readonly string[];
}

/** Where a resolved target came from. */
export interface TargetProvenance {
  /** The entry that selected it: `targets[2]` or `scope services (scopes[0])`. */
  readonly selectedBy: string;
  /** Other entries that selected it too (an explicit target a scope also matches, two scopes with the same policy). */
  readonly alsoSelectedBy: readonly string[];
  /** Per runbook that applies, the level that won. */
  readonly policies: readonly PolicyWinner[];
}

/** How one target came to be looked after, for inventory and plans. */
export interface TargetSelection extends TargetProvenance {
  readonly targetId: string;
}

/** The selection of each target, in order; a target built in code (no provenance) reads as selected by `targets`. */
export function selectionOf(targets: readonly TargetConfig[]): TargetSelection[] {
  return targets.map((target): TargetSelection => {
    const provenance = (target as Partial<ResolvedTarget>).provenance;
    return { targetId: target.id, ...(provenance ?? { selectedBy: 'targets', alsoSelectedBy: [], policies: [] }) };
  });
}

/** One line per target for plans: `selected by scope services (scopes[0]); revision-cleanup policy from …`. */
export function selectionLine(selection: TargetSelection, runbook?: RunbookName): string {
  const by = [selection.selectedBy, ...selection.alsoSelectedBy].join(' and ');
  const policies = selection.policies.filter((policy) => runbook === undefined || policy.runbook === runbook);
  const won = policies.map((policy) => `${policy.runbook} policy from ${policy.source}${policy.over.length === 0 ? '' : ` (over ${policy.over.join(', ')})`}`);
  return `selected by ${by}${won.length === 0 ? '' : `; ${won.join('; ')}`}`;
}

/** A target as every consumer sees it: the target entry shape plus where it came from. */
export type ResolvedTarget = TargetConfig & {
  readonly provenance: TargetProvenance;
  /** The remediation levels of this target below the top-level `remediation`, lowest first. */
  readonly remediationLayers: readonly RemediationLayer[];
};

/** A scope whose resources could not be listed: it selected nothing, and its runbooks do nothing in its reach. */
export interface UnavailableScope {
  /** `scope services (scopes[0])`. */
  readonly scope: string;
  readonly index: number;
  readonly reason: string;
}

/** A resource left out, and by what. */
export interface ExcludedResource {
  readonly id: string;
  /** `tag ops-autopilot: ignore`, `exclusions[1] (name ca-legacy)`. */
  readonly by: string;
  readonly reason: string | undefined;
}

/** The result of {@link resolveTargets}. */
export interface TargetResolution {
  /** Explicit targets in file order, then scope matches by scope and ID. */
  readonly targets: readonly ResolvedTarget[];
  /** E.g. a scope that matched nothing. */
  readonly warnings: readonly string[];
  readonly unavailable: readonly UnavailableScope[];
  readonly excluded: readonly ExcludedResource[];
}

/** The configuration cannot be resolved into targets safely (two scopes disagree, a merged policy is invalid). */
export class TargetResolutionError extends OpsAutopilotError {
  override readonly name: string = 'TargetResolutionError';
  readonly problems: readonly string[];

  constructor(estate: string, problems: readonly string[]) {
    super(`estate ${estate}: the targets cannot be resolved: ${problems.join('; ')}`, { context: { estate, problems: problems.length } });
    this.problems = problems;
  }
}

/** Options of {@link resolveTargets}. */
export interface ResolveOptions {
  /** How scopes list resources; without it every scope is unavailable (fail closed). */
  readonly discovery?: ScopeDiscovery;
  readonly signal?: AbortSignal;
}

const idKey = (id: string): string => id.toLowerCase().replace(/\/+$/, '');

/** `scope services (scopes[0])`. */
export const scopeLabel = (scope: Pick<ScopeConfig, 'name'>, index: number): string => `scope ${scope.name} (scopes[${String(index)}])`;

/** The value of tag `name` (tag names compare case-insensitively, as ARM's do). */
function tagValue(tags: Readonly<Record<string, string>>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(tags)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/** True when every tag of `wanted` is on `tags` with that value (`*`: any). */
function hasAllTags(tags: Readonly<Record<string, string>>, wanted: Readonly<Record<string, string>>): boolean {
  return Object.entries(wanted).every(([name, value]) => {
    const found = tagValue(tags, name);
    return found !== undefined && (value === '*' || found === value);
  });
}

/** The first tag of `wanted` that is on `tags` with that value (`*`: any), as `name: value`. */
function anyTag(tags: Readonly<Record<string, string>>, wanted: Readonly<Record<string, string>>): string | undefined {
  for (const [name, value] of Object.entries(wanted)) {
    const found = tagValue(tags, name);
    if (found !== undefined && (value === '*' || found === value)) return `${name}: ${found}`;
  }
  return undefined;
}

/** True when the built-in ignore tag is on a resource (value compared case-insensitively: "Ignore" means it too). */
export function hasIgnoreTag(tags: Readonly<Record<string, string>>): boolean {
  return tagValue(tags, IGNORE_TAG.name)?.toLowerCase() === IGNORE_TAG.value;
}

/** True when a resource with this ID is one `scope` could select (subscription, group and type; tags and name unknown). */
export function scopeReaches(scope: Pick<ScopeConfig, 'subscription' | 'resourceGroups' | 'types'>, id: string): boolean {
  let parsed: ReturnType<typeof parseResourceId>;
  try {
    parsed = parseResourceId(id);
  } catch {
    return false;
  }
  if (parsed.subscriptionId.toLowerCase() !== scope.subscription.toLowerCase()) return false;
  if (scope.resourceGroups !== undefined && !scope.resourceGroups.some((group) => group.toLowerCase() === parsed.resourceGroup.toLowerCase())) return false;
  return parsed.kind !== undefined && scopeKinds(scope).includes(parsed.kind);
}

/**
 * The unavailable scopes that concern `runbook` on a target with this ID: the scope could have
 * selected the target and the runbook is one the scope (or a kind default of its kinds) opts into.
 * The executor does nothing for such a target, rather than act on it without the scope's policy.
 */
export function unavailableScopesFor(config: Pick<EstateConfig, 'scopes' | 'defaults'>, resolution: Pick<TargetResolution, 'unavailable'>, runbook: RunbookName): UnavailableScope[] {
  return resolution.unavailable.filter((entry) => {
    const scope = config.scopes[entry.index];
    if (scope === undefined) return true;
    if (scope.runbooks?.[runbook] !== undefined) return true;
    return scopeKinds(scope).some((kind) => config.defaults?.kinds?.[kind]?.runbooks?.[runbook] !== undefined && (RUNBOOK_KINDS[runbook] as readonly ResourceKind[]).includes(kind));
  });
}

/** The part of a scope's policy that applies to a resource of `kind`, for comparing two scopes and for layering. */
function policyForKind(policy: WrittenPolicy, kind: ResourceKind): WrittenPolicy {
  const runbooks: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(policy.runbooks ?? {})) {
    if ((RUNBOOK_KINDS[name as RunbookName] as readonly ResourceKind[]).includes(kind)) runbooks[name] = value;
  }
  return {
    runbooks,
    ...(policy.health !== undefined && (kind === 'webSite' || kind === 'containerApp') ? { health: policy.health } : {}),
    ...(policy.restore !== undefined && kind === 'postgresFlexibleServer' ? { restore: policy.restore } : {}),
    ...(policy.remediation !== undefined ? { remediation: policy.remediation } : {}),
  };
}

/** JSON with sorted keys, so two policies compare by content. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The written policy of an explicit target: what the file said (a target built in code has only its filled-in runbooks). */
function writtenOf(target: TargetConfig): WrittenPolicy {
  return (
    target.written ?? {
      runbooks: target.runbooks,
      ...(target.health === undefined ? {} : { health: target.health }),
      ...(target.remediation === undefined ? {} : { remediation: target.remediation }),
      ...(target.restore === undefined ? {} : { restore: target.restore }),
    }
  );
}

interface Exclusion {
  readonly by: string;
  readonly reason: string | undefined;
  matches(resource: { id: string; name: string; tags: Readonly<Record<string, string>> | undefined }): boolean;
}

function compileExclusions(config: Pick<EstateConfig, 'exclusions'>): Exclusion[] {
  return config.exclusions.map((entry, index): Exclusion => {
    const at = `exclusions[${String(index)}]`;
    if (entry.id !== undefined) {
      const key = idKey(entry.id);
      return { by: `${at} (id)`, reason: entry.reason, matches: (resource) => idKey(resource.id) === key };
    }
    if (entry.name !== undefined) {
      const name = entry.name.toLowerCase();
      return { by: `${at} (name ${entry.name})`, reason: entry.reason, matches: (resource) => resource.name.toLowerCase() === name };
    }
    if (entry.namePattern !== undefined) {
      const pattern: NamePattern = compileNamePattern(entry.namePattern);
      return { by: `${at} (name pattern ${entry.namePattern})`, reason: entry.reason, matches: (resource) => pattern.matches(resource.name) };
    }
    const tags = entry.tags ?? {};
    return { by: `${at} (tags)`, reason: entry.reason, matches: (resource) => resource.tags !== undefined && anyTag(resource.tags, tags) !== undefined };
  });
}

interface Candidate {
  readonly id: string;
  readonly name: string;
  readonly kind: ResourceKind;
  /** Known when a scope listed it. */
  tags: Readonly<Record<string, string>> | undefined;
  explicit: number | undefined;
  readonly scopes: number[];
}

/**
 * Resolves the configuration's targets: lists each scope's resources through `options.discovery`
 * (ARM list operations, paged, through the request budget), applies the exclusions and merges
 * the policy levels. A configuration without scopes, defaults and exclusions resolves to its
 * explicit targets unchanged, without any request.
 *
 * @throws {@link TargetResolutionError} when two scopes select one resource with different
 *   policies, a merged policy is invalid, or there are more than {@link MAX_RESOLVED_TARGETS}.
 */
export async function resolveTargets(config: EstateConfig, options: ResolveOptions = {}): Promise<TargetResolution> {
  const scopes = config.scopes;
  const exclusions = compileExclusions(config);
  const warnings: string[] = [];
  const unavailable: UnavailableScope[] = [];
  const excluded: ExcludedResource[] = [];
  const candidates = new Map<string, Candidate>();

  config.targets.forEach((target, index) => {
    const parsed = parseResourceId(target.id);
    if (parsed.kind === undefined) return;
    candidates.set(idKey(parsed.id), { id: parsed.id, name: parsed.name, kind: parsed.kind, tags: undefined, explicit: index, scopes: [] });
  });

  const listed = await Promise.all(scopes.map(async (scope, index) => ({ index, found: await discoverScope(scope, index, options) })));
  for (const { index, found } of listed) {
    const scope = scopes[index];
    if (scope === undefined) continue;
    if ('reason' in found) {
      unavailable.push({ scope: scopeLabel(scope, index), index, reason: found.reason });
      continue;
    }
    let matched = 0;
    for (const resource of found.resources) {
      const parsed = parseResourceId(resource.id);
      if (parsed.kind === undefined) continue;
      const key = idKey(parsed.id);
      const existing = candidates.get(key);
      if (existing !== undefined) {
        existing.tags = resource.tags;
        existing.scopes.push(index);
      } else {
        candidates.set(key, { id: parsed.id, name: parsed.name, kind: parsed.kind, tags: resource.tags, explicit: undefined, scopes: [index] });
      }
      matched += 1;
    }
    if (matched === 0) {
      warnings.push(
        `${scopeLabel(scope, index)} matches no resource (subscription ${scope.subscription}${scope.resourceGroups === undefined ? '' : `, resource groups ${scope.resourceGroups.join(', ')}`}${scope.types === undefined ? '' : `, types ${scope.types.join(', ')}`}${scope.tags === undefined ? '' : `, tags ${Object.entries(scope.tags).map(([k, v]) => `${k}: ${v}`).join(', ')}`}${scope.namePattern === undefined ? '' : `, names ${scope.namePattern}`}); check its selectors`,
      );
    }
  }

  const problems: string[] = [];
  const kept: Candidate[] = [];
  for (const candidate of candidates.values()) {
    if (candidate.tags !== undefined && hasIgnoreTag(candidate.tags)) {
      excluded.push({ id: candidate.id, by: `tag ${IGNORE_TAG.name}: ${IGNORE_TAG.value}`, reason: 'the resource is tagged to be left alone' });
      continue;
    }
    const exclusion = exclusions.find((entry) => entry.matches(candidate));
    if (exclusion !== undefined) {
      excluded.push({ id: candidate.id, by: exclusion.by, reason: exclusion.reason });
      continue;
    }
    if (candidate.scopes.length > 1) {
      const [first, ...others] = candidate.scopes;
      const firstScope = first === undefined ? undefined : scopes[first];
      if (first !== undefined && firstScope !== undefined) {
        const shape = canonical(policyForKind(firstScope, candidate.kind));
        for (const other of others) {
          const otherScope = scopes[other];
          if (otherScope !== undefined && canonical(policyForKind(otherScope, candidate.kind)) !== shape) {
            problems.push(`${candidate.id} is selected by ${scopeLabel(firstScope, first)} and by ${scopeLabel(otherScope, other)} with different policies (narrow one of them, exclude the resource from one with excludeTags, or give it an explicit target entry in one place only)`);
          }
        }
      }
    }
    kept.push(candidate);
  }
  // Explicit targets in file order, then scope matches by scope and ID: ARM's listing order is not a contract.
  kept.sort((a, b) => {
    if (a.explicit !== undefined || b.explicit !== undefined) return (a.explicit ?? Number.MAX_SAFE_INTEGER) - (b.explicit ?? Number.MAX_SAFE_INTEGER);
    return (a.scopes[0] ?? 0) - (b.scopes[0] ?? 0) || (idKey(a.id) < idKey(b.id) ? -1 : idKey(a.id) > idKey(b.id) ? 1 : 0);
  });

  const targets: ResolvedTarget[] = [];
  for (const candidate of kept) {
    const built = buildTarget(config, candidate);
    if (typeof built === 'string') problems.push(built);
    else targets.push(built);
  }
  if (targets.length > MAX_RESOLVED_TARGETS) problems.push(`expected at most ${String(MAX_RESOLVED_TARGETS)} targets (split the estate or narrow the scopes), found ${String(targets.length)}`);
  if (problems.length > 0) throw new TargetResolutionError(config.estate, problems);
  return { targets, warnings, unavailable, excluded };
}

type Discovered = { readonly resources: readonly DiscoveredResource[] } | { readonly reason: string };

/** Lists one scope's matches, or says why it cannot (fail closed). */
async function discoverScope(scope: ScopeConfig, index: number, options: ResolveOptions): Promise<Discovered> {
  const label = scopeLabel(scope, index);
  if (options.discovery === undefined) return { reason: `${label}: no Azure access to list its resources here, so it selects nothing` };
  const types = scope.types ?? Object.values(RESOURCE_TYPES);
  const wantedTypes = new Set(types.map((type) => type.toLowerCase()));
  const groups = scope.resourceGroups ?? [undefined];
  let pattern: NamePattern | undefined;
  try {
    pattern = scope.namePattern === undefined ? undefined : compileNamePattern(scope.namePattern);
  } catch (error) {
    return { reason: `${label}: ${errorMessage(error)}` };
  }
  const resources: DiscoveredResource[] = [];
  try {
    for (const resourceGroup of groups) {
      const listed = await options.discovery.list({ subscriptionId: scope.subscription, resourceGroup, types }, options.signal);
      for (const resource of listed) {
        let parsed: ReturnType<typeof parseResourceId>;
        try {
          parsed = parseResourceId(resource.id);
        } catch (error) {
          return { reason: `${label}: ARM listed a resource with an ID that does not parse (${errorMessage(error)}); nothing of this scope is used` };
        }
        // What ARM returns must be what was asked for: a resource of another subscription, group
        // or type would reach beyond what the file names.
        const outside =
          parsed.subscriptionId.toLowerCase() !== scope.subscription.toLowerCase()
            ? 'subscription'
            : resourceGroup !== undefined && parsed.resourceGroup.toLowerCase() !== resourceGroup.toLowerCase()
              ? 'resource group'
              : !wantedTypes.has(parsed.type.toLowerCase())
                ? 'type'
                : undefined;
        if (outside !== undefined) {
          return { reason: `${label}: expected ARM to list only resources of subscription ${scope.subscription}${resourceGroup === undefined ? '' : `, resource group ${resourceGroup}`} and types ${types.join(', ')}, found ${parsed.id} (another ${outside}); nothing of this scope is used` };
        }
        const tags = resource.tags;
        if (scope.tags !== undefined && !hasAllTags(tags, scope.tags)) continue;
        if (scope.excludeTags !== undefined && anyTag(tags, scope.excludeTags) !== undefined) continue;
        if (pattern !== undefined && !pattern.matches(parsed.name)) continue;
        resources.push({ ...resource, id: parsed.id, name: parsed.name });
      }
    }
  } catch (error) {
    return { reason: `${label}: its resources could not be listed (${errorMessage(error)}), so it selects nothing and its runbooks do nothing in its reach` };
  }
  return { resources };
}

/** One level of a target's policy, lowest first. */
interface Level {
  readonly source: string;
  readonly policy: WrittenPolicy;
}

/** Merges the levels of one candidate into a target entry and parses it (defaults, kind checks). */
function buildTarget(config: EstateConfig, candidate: Candidate): ResolvedTarget | string {
  const explicit = candidate.explicit === undefined ? undefined : config.targets[candidate.explicit];
  const scopeIndex = candidate.scopes[0];
  const scope = scopeIndex === undefined ? undefined : config.scopes[scopeIndex];
  const scopeLabels = candidate.scopes.flatMap((index) => {
    const entry = config.scopes[index];
    return entry === undefined ? [] : [scopeLabel(entry, index)];
  });
  const selectedBy = explicit !== undefined ? `targets[${String(candidate.explicit)}]` : (scopeLabels[0] ?? 'unknown');
  const alsoSelectedBy = explicit !== undefined ? scopeLabels : scopeLabels.slice(1);

  const levels: Level[] = [];
  const kindDefault = config.defaults?.kinds?.[candidate.kind];
  if (kindDefault !== undefined) levels.push({ source: `defaults.kinds.${candidate.kind}`, policy: policyForKind(kindDefault, candidate.kind) });
  if (scope !== undefined && scopeIndex !== undefined) levels.push({ source: scopeLabel(scope, scopeIndex), policy: policyForKind(scope, candidate.kind) });
  if (explicit !== undefined) levels.push({ source: selectedBy, policy: writtenOf(explicit) });

  // Fast path: an explicit target with no other level is exactly what the file says.
  if (explicit !== undefined && levels.length === 1 && config.defaults?.runbooks === undefined) {
    return {
      ...explicit,
      provenance: {
        selectedBy,
        alsoSelectedBy,
        policies: (Object.keys(RUNBOOK_KINDS) as RunbookName[]).filter((runbook) => explicit.runbooks[runbook] !== undefined).map((runbook) => ({ runbook, source: selectedBy, over: [] })),
      },
      remediationLayers: explicit.remediation === undefined ? [] : [{ source: selectedBy, value: explicit.remediation }],
    };
  }

  const runbooks: Record<string, Record<string, unknown>> = {};
  const policies: PolicyWinner[] = [];
  for (const runbook of Object.keys(RUNBOOK_KINDS) as RunbookName[]) {
    const setting = levels.filter((level) => level.policy.runbooks?.[runbook] !== undefined);
    const winner = setting.at(-1);
    if (winner === undefined) continue;
    const base = config.defaults?.runbooks?.[runbook];
    const merged: Record<string, unknown> = { ...(base ?? {}) };
    for (const level of setting) Object.assign(merged, level.policy.runbooks?.[runbook]);
    runbooks[runbook] = merged;
    const over = [...(base === undefined ? [] : [`defaults.runbooks.${runbook}`]), ...setting.slice(0, -1).map((level) => level.source)].reverse();
    policies.push({ runbook, source: winner.source, over });
  }
  const closest = <K extends 'health' | 'restore' | 'remediation'>(field: K): WrittenPolicy[K] => levels.findLast((level) => level.policy[field] !== undefined)?.policy[field];
  const health = closest('health');
  const restore = closest('restore');
  const remediation = closest('remediation');
  const entry = {
    id: explicit?.id ?? candidate.id,
    ...(explicit?.displayName === undefined ? {} : { displayName: explicit.displayName }),
    ...(health === undefined ? {} : { health }),
    runbooks,
    ...(remediation === undefined ? {} : { remediation }),
    ...(restore === undefined ? {} : { restore }),
  };
  const parsed = targetSchema.safeParse(entry);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'entry'}: ${issue.message}`).join(', ');
    return `${candidate.id} (selected by ${selectedBy}${levels.length > 1 ? `, policies from ${levels.map((level) => level.source).join(' < ')}` : ''}): expected the merged policy to be valid, found ${issues}`;
  }
  return {
    ...parsed.data,
    provenance: { selectedBy, alsoSelectedBy, policies },
    remediationLayers: levels.flatMap((level) => (level.policy.remediation === undefined ? [] : [{ source: level.source, value: level.policy.remediation }])),
  };
}
