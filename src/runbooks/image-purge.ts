/**
 * The `image-purge` runbook: deletes old container image tags (and optionally whole images)
 * from an Azure Container Registry through its data plane, never an image that is in use.
 *
 * What "purge old images" means here, per repository whose name fully matches one of
 * `policy.repositories`:
 * - Candidates are the tags whose name fully matches `policy.tagFilter`. Both are RE2 regular
 *   expressions matched against the WHOLE name, so `user-service` does not also match
 *   `user-service-legacy`; tags outside the filter are never touched and do not count.
 * - The newest `policy.keep` candidates of the repository are kept, newest by the tag's
 *   `lastUpdatedOn` (when it was last pushed or moved), then `createdOn` — truly the newest N,
 *   unlike `acr purge --keep`, which counts before filtering by age.
 * - Of the rest, tags last updated more than `policy.olderThanDays` ago are deleted (the tag
 *   only: the manifest stays while another tag or nothing references it, as `acr purge` does).
 * - With `policy.deleteUntaggedManifests`, a manifest that is untagged now, or whose every tag
 *   this plan deletes, is deleted as a whole instead (one `delete-manifest` action; deleting a
 *   manifest removes its tags). So a re-plan after a partial run finds exactly what is left,
 *   and an interrupted run ends in the same state as an uninterrupted one. Manifests referenced
 *   by a kept manifest list (multi-arch index) are never deleted.
 * - Never deleted, whatever the policy: a tag or manifest whose digest is in use. Who counts as a
 *   user is `shared/images-in-use.ts`: by default every Container App (template, active
 *   revisions, the newest `policy.keepInactiveRevisions` inactive ones), Container Apps job
 *   (template, unfinished executions) and web app or function app (site and slots:
 *   `DOCKER|`/`COMPOSE|`/`KUBE|` configurations, sitecontainers) the identity can read in the
 *   registry's subscriptions; only the configured ones with `policy.inUseDiscovery: listed`.
 *   Image references are read by one parser (`shared/image-reference.ts`: registry ports, case,
 *   `tag@digest`, default `latest`). Tags are resolved to digests, so a tag pointing at an
 *   in-use digest survives, and an app pinned by digest protects every tag of that digest. In a
 *   multi-arch index, an index in use keeps its platform manifests, and a platform manifest in
 *   use keeps its index, the index's tags and its sibling platform manifests. If the images in
 *   use cannot be read for any consumer (or a listing fails), the plan fails.
 * - Locked tags and manifests (`canDelete` or `canWrite` false) are kept unless
 *   `policy.includeLocked`, in which case apply unlocks them first.
 *
 * Apply re-checks every deletion, since the plan may be minutes old, against readings taken
 * afresh after the plan and reused for at most {@link IN_USE_RECHECK_TTL_MS} within the run: the
 * repository's tags (a tag moved since the plan → {@link ImageChangedSincePlanError}), its
 * manifests (a tag added to a whole image since the plan → the same error), and the images in
 * use of the registry (a digest now in use → {@link ImageInUseError}; apps that cannot be read →
 * `InUseResolutionError`, fail closed). A refused action deletes nothing; the others go on.
 *
 * Plans that delete more than `policy.maxDeletionsPerRun` tags and manifests together (a
 * `delete-manifest` counts the manifest and each of its tags) are refused unless forced. Requests go through the
 * client layer's per-registry ACR budget; planning reads repositories with bounded concurrency,
 * and {@link imagePurgeRunbook.applyConcurrency} tells the executor how many deletions of one
 * registry may be in flight. A deletion whose tag or manifest is already gone is `skipped`, so
 * an interrupted run continues cleanly.
 */
import type { ContainerRegistryClient } from '@azure/container-registry';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceNotFoundError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { TargetConfig } from '../config/schema.ts';
import type { imagePurgePolicySchema } from '../config/schema.ts';
import { compileNamePattern, type NamePattern } from '../config/pattern.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { collect } from '../util/collect.ts';
import { mapLimited } from '../util/concurrency.ts';
import type { z } from 'zod';
import { readRegistryResource } from './shared/target-resource.ts';
import { inUseScopeOf, protectedDigests, readImagesInUse, usesInRegistry, type InUseScope, type ProtectedDigest, type RegistryImageUse } from './shared/images-in-use.ts';
import type { ApplyResult, Check, KeptItem, PlannedAction, Runbook, RunbookContext, TargetPlan } from './runbook.ts';

/** The `image-purge` policy of a registry target, defaults applied. */
export type ImagePurgePolicy = z.output<typeof imagePurgePolicySchema>;

const DAY_MS = 86_400_000;

/** Stable check codes of this runbook. */
export const IMAGE_PURGE_CODES = {
  inUseResolved: 'acr.purge.inUse',
  inUseMissing: 'acr.purge.inUse.missing',
  summary: 'acr.purge.summary',
} as const;

/** A policy that cannot be applied as written (e.g. an invalid regular expression). */
export class ImagePurgePolicyError extends OpsAutopilotError {
  override readonly name: string = 'ImagePurgePolicyError';
}

/** An action of this runbook that does not match what apply knows how to do. */
export class ImagePurgeActionError extends OpsAutopilotError {
  override readonly name: string = 'ImagePurgeActionError';
}

/**
 * Apply refused an action because what it would delete changed since the plan: a tag now
 * points at another digest, or a manifest carries a tag the plan did not see. Nothing is deleted.
 */
export class ImageChangedSincePlanError extends OpsAutopilotError {
  override readonly name: string = 'ImageChangedSincePlanError';
}

/**
 * Apply refused an action because the image became in use after the plan (e.g. deployed while
 * an interactive run waited for confirmation). Nothing is deleted.
 */
export class ImageInUseError extends OpsAutopilotError {
  override readonly name: string = 'ImageInUseError';
  /** The tag or manifest the action would have deleted, e.g. `crxshopaiprod/user-service:v1.0.1`. */
  readonly image: string;
  /** Apps (with revision or slot) that use its digest now. */
  readonly usedBy: readonly string[];

  constructor(image: string, digest: string, usedBy: readonly string[], options: { actionId: string; targetId: string }) {
    super(`refusing to delete ${image}: expected its digest ${digest} to be unused as when planned, found it in use by ${usedBy.join('; ')}`, {
      context: { image, digest, usedBy: usedBy.join('; '), actionId: options.actionId, targetId: options.targetId },
    });
    this.image = image;
    this.usedBy = usedBy;
  }
}

/** How long apply trusts one reading of a registry's images in use, in milliseconds. */
export const IN_USE_RECHECK_TTL_MS = 30_000;

/** True when the error is the registry answering 404 (the tag or manifest does not exist). */
/**
 * Reads the images of a registry that are in use right now, as planning does: every consumer in
 * scope read afresh (ARM only; tags are resolved per repository against the re-check's own
 * manifest listing).
 *
 * @throws InUseResolutionError when a consumer in scope cannot be read (never an incomplete answer).
 */
async function readInUse(context: RunbookContext, target: TargetConfig, policy: ImagePurgePolicy): Promise<RegistryImageUse[]> {
  const { registryId, registryName } = registryOf(target);
  const uses = await readImagesInUse(context.clients, inUseScopeOf(context.config, registryId, policy, context.resolution?.targets), {
    concurrency: Math.min(4, registryConcurrency(context)),
    registry: registryId,
    ...(context.signal === undefined ? {} : { signal: context.signal }),
  });
  return usesInRegistry(uses, registryName, context.config.azure.cloud, { registry: registryId });
}

/** The users of a protected digest, each naming the image, and how it is protected when not used directly. */
function usersOf(entry: ProtectedDigest): string[] {
  return entry.relation === undefined ? [...entry.users] : entry.users.map((user) => `${user}, as the ${entry.relation ?? ''}`);
}

interface Reading {
  /** `performance.now()` when the reading started. */
  readonly at: number;
  readonly value: Promise<unknown>;
}

/**
 * Apply's readings, per run: the images in use per registry, and the tags and manifests per
 * repository.
 *
 * Why a WeakMap keyed by the run's context: every run (CLI, timer, demo) builds its own
 * RunbookContext and passes that same object to plan and every apply of the run, and the
 * Runbook interface has no other per-run state. Keying by it scopes each reading to one run
 * (a later run never sees it) and lets it be collected with the run, where a plain module-level
 * map would leak readings across runs. Plan never fills it, so the first deletion always reads
 * afresh after the plan-to-apply gap (e.g. an interactive prompt), which is what this closes.
 *
 * Why a TTL: a fresh reading per deletion would re-read every app in scope for each of
 * thousands of deletions. And per-deletion tag reads cost more than their own request: the
 * SDK's registry client caches one ACR access token, a read needs the `metadata_read` scope and
 * a delete the `delete` scope, so alternating them adds a 401 challenge and a token exchange to
 * nearly every request (measured: about 4× slower). One reading per registry (in use) and per
 * repository (tags, manifests) per {@link IN_USE_RECHECK_TTL_MS} keeps the window in which a
 * change goes unseen short, while deletions of one repository run back to back on one token.
 * A failed reading is kept for the TTL too, so one unreadable app fails that window's
 * deletions closed without re-reading the scope for each of them.
 */
const runReadings = new WeakMap<RunbookContext, Map<string, Reading>>();

/** A reading of `key` for this run, taken afresh when none is younger than the TTL. */
function cachedReading<T>(context: RunbookContext, key: string, read: () => Promise<T>): Promise<T> {
  let readings = runReadings.get(context);
  if (readings === undefined) {
    readings = new Map();
    runReadings.set(context, readings);
  }
  const now = performance.now();
  const cached = readings.get(key);
  // Each key always holds a Promise<T> made by the same `read`, so the cast is sound.
  if (cached !== undefined && now - cached.at < IN_USE_RECHECK_TTL_MS) return cached.value as Promise<T>;
  const value = read();
  // Every waiter gets the rejection; this keeps an unawaited copy from being reported as unhandled.
  value.catch(() => undefined);
  readings.set(key, { at: now, value });
  return value;
}

/** The images in use of the target's registry, read at most once per TTL per run (see {@link runReadings}). */
function inUseFor(context: RunbookContext, target: TargetConfig, policy: ImagePurgePolicy): Promise<RegistryImageUse[]> {
  return cachedReading(context, `in-use\u0000${target.id.toLowerCase()}`, () => readInUse(context, target, policy));
}

/** Tag → digest of a repository now, read at most once per TTL per run. */
function currentTags(context: RunbookContext, client: ContainerRegistryClient, registryId: string, repository: string, anyDigest: string): Promise<ReadonlyMap<string, string>> {
  const signal = context.signal;
  return cachedReading(context, `tags\u0000${registryId.toLowerCase()}\u0000${repository}`, async () => {
    // Listing through any artifact lists the repository's tags (see readRepository).
    const tags = await callAzure({ resourceId: `${registryId}/repositories/${repository}`, operation: 'list tags (re-check before delete)' }, () =>
      collect(client.getArtifact(repository, anyDigest).listTagProperties(signal === undefined ? {} : { abortSignal: signal }), signal),
    );
    return new Map(tags.map((tag) => [tag.name, tag.digest.toLowerCase()]));
  });
}

/** A repository's manifest as the re-check reads it: its tags and, for an index, its platform manifests. */
interface CurrentManifest {
  readonly tags: readonly string[];
  readonly related: readonly string[];
}

/** Digest → tags and platform manifests of a repository's manifests now, read at most once per TTL per run. */
function currentManifests(context: RunbookContext, client: ContainerRegistryClient, registryId: string, repository: string): Promise<ReadonlyMap<string, CurrentManifest>> {
  const signal = context.signal;
  return cachedReading(context, `manifests\u0000${registryId.toLowerCase()}\u0000${repository}`, async () => {
    const manifests = await callAzure({ resourceId: `${registryId}/repositories/${repository}`, operation: 'list manifests (re-check before delete)' }, () =>
      collect(client.getRepository(repository).listManifestProperties(signal === undefined ? {} : { abortSignal: signal }), signal),
    );
    return new Map(
      manifests.map((manifest) => [manifest.digest.toLowerCase(), { tags: manifest.tags, related: manifest.relatedArtifacts.map((artifact) => artifact.digest.toLowerCase()) }]),
    );
  });
}

/** A tag as planning sees it. */
interface TagInfo {
  readonly name: string;
  readonly digest: string;
  readonly updated: Date;
  readonly locked: boolean;
}

/** A manifest as planning sees it. */
interface ManifestInfo {
  readonly digest: string;
  readonly updated: Date;
  readonly tags: readonly string[];
  readonly locked: boolean;
  /** Digests of the platform manifests of a manifest list. */
  readonly related: readonly string[];
}

/**
 * Compiles the policy's patterns with the configuration's one pattern compiler (RE2: linear
 * time, whole-name matches, bounded work; see `config/pattern.ts`), so the runbook runs exactly
 * what `config validate` accepted.
 */
function compilePolicy(targetId: string, policy: ImagePurgePolicy): { repositories: NamePattern[]; tagFilter: NamePattern } {
  const compile = (field: string, source: string): NamePattern => {
    try {
      return compileNamePattern(source);
    } catch (error) {
      throw new ImagePurgePolicyError(`image-purge policy of ${targetId}: ${field} ${errorMessage(error)}, found "${source}"`, {
        context: { targetId, field },
        cause: error,
      });
    }
  };
  return {
    repositories: policy.repositories.map((source, index) => compile(`repositories[${String(index)}]`, source)),
    tagFilter: compile('tagFilter', policy.tagFilter),
  };
}

function ageDays(now: Date, then: Date): number {
  return Math.round(((now.getTime() - then.getTime()) / DAY_MS) * 10) / 10;
}

/** Reads tags and manifests of one repository. */
async function readRepository(
  client: ContainerRegistryClient,
  registryId: string,
  name: string,
  signal: AbortSignal | undefined,
): Promise<{ tags: TagInfo[]; manifests: ManifestInfo[] }> {
  const repository = client.getRepository(name);
  const resourceId = `${registryId}/repositories/${name}`;
  const manifests = await callAzure({ resourceId, operation: 'list manifests' }, () =>
    collect(repository.listManifestProperties({ ...(signal === undefined ? {} : { abortSignal: signal }) }), signal),
  );
  // Tags carry their own timestamps and locks, which the manifest listing does not show. The
  // SDK lists tags per artifact but sends no digest filter, so this is the repository's list;
  // should a later SDK filter it, the tags it leaves out are fetched one by one below.
  const first = manifests.find((manifest) => manifest.tags.length > 0);
  const tags =
    first === undefined
      ? []
      : await callAzure({ resourceId, operation: 'list tags' }, () =>
          collect(client.getArtifact(name, first.digest).listTagProperties({ ...(signal === undefined ? {} : { abortSignal: signal }) }), signal),
        );
  const listed = new Set(tags.map((tag) => tag.name));
  for (const manifest of manifests) {
    for (const tag of manifest.tags) {
      if (listed.has(tag)) continue;
      const properties = await callAzure({ resourceId: `${resourceId}/tags/${tag}`, operation: 'get tag properties' }, () =>
        client.getArtifact(name, manifest.digest).getTagProperties(tag, { ...(signal === undefined ? {} : { abortSignal: signal }) }),
      );
      tags.push(properties);
      listed.add(tag);
    }
  }
  return {
    tags: tags.map((tag) => ({
      name: tag.name,
      digest: tag.digest.toLowerCase(),
      updated: tag.lastUpdatedOn,
      locked: tag.canDelete === false || tag.canWrite === false,
    })),
    manifests: manifests.map((manifest) => ({
      digest: manifest.digest.toLowerCase(),
      updated: manifest.lastUpdatedOn,
      tags: manifest.tags,
      locked: manifest.canDelete === false || manifest.canWrite === false,
      related: manifest.relatedArtifacts.map((artifact) => artifact.digest.toLowerCase()),
    })),
  };
}

interface RepositoryPlan {
  readonly actions: PlannedAction[];
  readonly kept: KeptItem[];
  readonly checks: Check[];
  readonly tagCount: number;
  readonly manifestCount: number;
}

/** Plans one repository: pure, over what was read. */
export function planRepository(input: {
  readonly registryName: string;
  readonly registryId: string;
  readonly loginServer: string;
  readonly repository: string;
  readonly tags: readonly { name: string; digest: string; updated: Date; locked: boolean }[];
  readonly manifests: readonly { digest: string; updated: Date; tags: readonly string[]; locked: boolean; related: readonly string[] }[];
  readonly inUse: readonly RegistryImageUse[];
  readonly policy: ImagePurgePolicy;
  readonly tagFilter: NamePattern;
  readonly now: Date;
}): RepositoryPlan {
  const { registryName, loginServer, repository, policy, now } = input;
  const actions: PlannedAction[] = [];
  const kept: KeptItem[] = [];
  const checks: Check[] = [];
  const cutoff = now.getTime() - policy.olderThanDays * DAY_MS;
  const digestOfTag = new Map(input.tags.map((tag) => [tag.name, tag.digest]));
  const manifests = new Map(input.manifests.map((manifest) => [manifest.digest, manifest]));

  // Digests of this repository that stay for its images in use (tags resolved, multi-arch
  // indexes and their platform manifests together).
  const { protected: inUse, missing } = protectedDigests(
    input.inUse.filter((use) => use.repository === repository),
    digestOfTag,
    input.manifests,
  );
  for (const use of missing) {
    checks.push({
      status: 'warn',
      code: IMAGE_PURGE_CODES.inUseMissing,
      message: `${use.image} is in use by ${use.usedBy.join(', ')} but ${registryName} no longer holds it; a restart or scale-out would fail to pull it`,
      expected: `${use.image} present in ${loginServer}`,
      found: 'not in the registry',
      resource: use.image,
    });
  }
  const inUseReason = (digest: string): string | undefined => {
    const entry = inUse.get(digest);
    if (entry === undefined) return undefined;
    return entry.relation === undefined
      ? `in use (digest ${digest}) by ${entry.users.join('; ')}`
      : `${entry.relation} (digest ${digest}), used by ${entry.users.join('; ')}`;
  };
  // Platform manifests of a multi-arch index that stays for another reason (tagged, locked, young).
  const protectedChildren = new Set<string>();
  const digestProtected = (digest: string): boolean => inUse.has(digest) || protectedChildren.has(digest);

  const candidates = input.tags
    .filter((tag) => input.tagFilter.matches(tag.name))
    .sort((a, b) => b.updated.getTime() - a.updated.getTime() || b.name.localeCompare(a.name));
  const newest = candidates.slice(0, policy.keep);
  if (newest.length > 0) {
    kept.push({
      resource: `${registryName}/${repository}`,
      reason: `newest ${String(newest.length)} matching tag(s) kept (keep ${String(policy.keep)}): ${newest.map((tag) => tag.name).join(', ')}`,
    });
  }
  const deleteTags: TagInfo[] = [];
  let young = 0;
  for (const tag of candidates.slice(policy.keep)) {
    if (tag.updated.getTime() > cutoff) {
      young += 1;
      continue;
    }
    const inUseBecause = inUseReason(tag.digest);
    if (inUseBecause !== undefined) {
      kept.push({ resource: `${registryName}/${repository}:${tag.name}`, reason: inUseBecause });
      continue;
    }
    const manifestLocked = manifests.get(tag.digest)?.locked === true;
    if ((tag.locked || manifestLocked) && !policy.includeLocked) {
      kept.push({
        resource: `${registryName}/${repository}:${tag.name}`,
        reason: `locked (${tag.locked ? 'tag' : 'manifest'} has deleteEnabled or writeEnabled false; includeLocked is off)`,
      });
      continue;
    }
    deleteTags.push(tag);
  }
  if (young > 0) {
    kept.push({ resource: `${registryName}/${repository}`, reason: `${String(young)} older matching tag(s) kept: updated within ${String(policy.olderThanDays)} days` });
  }

  const deletedTagNames = new Set(deleteTags.map((tag) => tag.name));
  const wholeManifests = new Set<string>();
  if (policy.deleteUntaggedManifests) {
    type Decision = { readonly delete: true; readonly untaggedNow: boolean } | { readonly delete: false; readonly kept?: string };
    const decide = (manifest: ManifestInfo): Decision => {
      const untaggedNow = manifest.tags.length === 0;
      const untaggedByPlan = !untaggedNow && manifest.tags.every((tag) => deletedTagNames.has(tag));
      if (!untaggedNow && !untaggedByPlan) return { delete: false };
      if (untaggedNow) {
        if (digestProtected(manifest.digest)) {
          return { delete: false, kept: inUseReason(manifest.digest) ?? 'platform image of a kept multi-arch image' };
        }
        if (manifest.updated.getTime() > cutoff) return { delete: false };
        if (manifest.locked && !policy.includeLocked) return { delete: false, kept: 'locked untagged manifest (includeLocked is off)' };
      } else if (digestProtected(manifest.digest)) {
        return { delete: false };
      }
      return { delete: true, untaggedNow };
    };
    // A manifest list that stays (tagged, in use, locked or young) keeps its platform manifests
    // alive; protecting them can make another list stay, so repeat until nothing changes.
    let decisions = new Map<string, Decision>();
    for (let changed = true; changed; ) {
      changed = false;
      decisions = new Map(input.manifests.map((manifest) => [manifest.digest, decide(manifest)]));
      for (const manifest of input.manifests) {
        if (decisions.get(manifest.digest)?.delete === true) continue;
        for (const child of manifest.related) {
          if (!protectedChildren.has(child)) {
            protectedChildren.add(child);
            changed = true;
          }
        }
      }
    }
    for (const manifest of input.manifests) {
      const decision = decisions.get(manifest.digest);
      if (decision === undefined) continue;
      if (!decision.delete) {
        if (decision.kept !== undefined) kept.push({ resource: `${registryName}/${repository}@${manifest.digest}`, reason: decision.kept });
        continue;
      }
      const { untaggedNow } = decision;
      wholeManifests.add(manifest.digest);
      const tags = untaggedNow ? [] : [...manifest.tags].sort();
      actions.push({
        id: `delete-manifest:${repository}@${manifest.digest}`,
        kind: 'delete-manifest',
        resource: `${registryName}/${repository}@${manifest.digest}`,
        description: untaggedNow
          ? `delete untagged manifest ${repository}@${manifest.digest} (updated ${String(ageDays(now, manifest.updated))} days ago)`
          : `delete image ${repository}@${manifest.digest} with its tag(s) ${tags.join(', ')} (none kept, updated ${String(ageDays(now, manifest.updated))} days ago)`,
        destructive: true,
        details: {
          registry: registryName,
          repository,
          digest: manifest.digest,
          tags: tags.join(','),
          unlockFirst: manifest.locked || deleteTags.some((tag) => tag.digest === manifest.digest && tag.locked),
        },
      });
    }
  }
  for (const tag of deleteTags) {
    if (wholeManifests.has(tag.digest)) continue;
    actions.push({
      id: `delete-tag:${repository}:${tag.name}`,
      kind: 'delete-tag',
      resource: `${registryName}/${repository}:${tag.name}`,
      description: `delete tag ${repository}:${tag.name} (updated ${String(ageDays(now, tag.updated))} days ago, beyond the newest ${String(policy.keep)})`,
      destructive: true,
      details: { registry: registryName, repository, tag: tag.name, digest: tag.digest, unlockFirst: tag.locked },
    });
  }
  // Oldest first, so a run cut short by the cap or an interruption removes the oldest images.
  return { actions, kept, checks, tagCount: input.tags.length, manifestCount: input.manifests.length };
}

/** Who was read for images in use, in words, for the plan's check. */
function describeScope(scope: InUseScope): string {
  const listed = `${String(scope.resources.length)} listed resource(s)`;
  const inactive = `the newest ${String(scope.inactiveRevisions)} inactive revision(s) per Container App`;
  return scope.subscriptions.length === 0
    ? `inUseDiscovery listed: only ${listed}; ${inactive}`
    : `every Container App, job and web app in subscription(s) ${scope.subscriptions.join(', ')}, and ${listed}; ${inactive}`;
}

function registryOf(target: TargetConfig): { registryId: string; registryName: string } {
  const id = parseResourceId(target.id);
  return { registryId: id.id, registryName: id.name };
}

/** Concurrency for planning and applying on one registry: the ACR budget's cap on requests in flight. */
function registryConcurrency(context: RunbookContext): number {
  return Math.max(1, context.config.azure.requestBudget.maxConcurrency);
}

function stringDetail(action: PlannedAction, key: string): string {
  const value = action.details[key];
  if (typeof value !== 'string' || value === '') {
    throw new ImagePurgeActionError(`action ${action.id}: expected details.${key} to be a non-empty string, found ${JSON.stringify(value)}`, {
      context: { actionId: action.id, key },
    });
  }
  return value;
}

async function plan(context: RunbookContext, target: TargetConfig, policy: ImagePurgePolicy): Promise<TargetPlan> {
  const { registryId, registryName } = registryOf(target);
  const { tagFilter, repositories: repositoryFilters } = compilePolicy(target.id, policy);
  const signal = context.signal;
  const now = context.now();
  // The registry from ARM at the configured ID first: the data plane is reached by name only,
  // so an ID with a wrong subscription or resource group must not purge a registry elsewhere.
  const { loginServer } = await readRegistryResource(context.clients, registryId, context.config.azure.cloud);
  const concurrency = registryConcurrency(context);

  // In use first: without complete knowledge there is no plan (InUseResolutionError).
  const scope = inUseScopeOf(context.config, registryId, policy, context.resolution?.targets);
  const uses = await readImagesInUse(context.clients, scope, { concurrency: Math.min(4, concurrency), registry: registryId, ...(signal === undefined ? {} : { signal }) });
  const inUse = usesInRegistry(uses, registryName, context.config.azure.cloud, { registry: registryId });
  const consumers = new Set(uses.map((use) => use.resourceId.toLowerCase())).size;

  const client = await context.clients.registryClient(registryName, { loginServer });
  const names = await callAzure({ resourceId: registryId, operation: 'list repositories' }, () =>
    collect(client.listRepositoryNames({ ...(signal === undefined ? {} : { abortSignal: signal }) }), signal),
  );
  const selected = names.filter((name) => repositoryFilters.some((filter) => filter.matches(name))).sort();
  let done = 0;
  const perRepository = await mapLimited(selected, concurrency, async (name) => {
    const read = await readRepository(client, registryId, name, signal);
    done += 1;
    context.progress?.({ phase: 'plan', targetId: target.id, done, total: selected.length });
    return planRepository({ registryName, registryId, loginServer, repository: name, ...read, inUse, policy, tagFilter, now });
  });

  const actions = perRepository.flatMap((repository) => repository.actions);
  const tagCount = perRepository.reduce((sum, repository) => sum + repository.tagCount, 0);
  const tagDeletions = actions.filter((action) => action.kind === 'delete-tag').length;
  const manifestDeletions = actions.length - tagDeletions;
  const checks: Check[] = [
    {
      status: 'ok',
      code: IMAGE_PURGE_CODES.inUseResolved,
      message: `${String(inUse.length)} image reference(s) of ${loginServer} in use, among the images of ${String(consumers)} app(s), job(s) and site(s) or slot(s) read (${describeScope(scope)}); their digests are protected`,
      expected: 'the images in use by every app, job and web app in scope',
      found: inUse.length === 0 ? 'none in this registry' : inUse.map((use) => `${use.image} (${use.usedBy.join(', ')})`).join('; '),
    },
    ...perRepository.flatMap((repository) => repository.checks),
    {
      status: 'ok',
      code: IMAGE_PURGE_CODES.summary,
      message: `${registryName}: ${String(tagDeletions)} tag(s) and ${String(manifestDeletions)} manifest(s) to delete in ${String(selected.length)} of ${String(names.length)} repositories`,
      expected: `at most the newest ${String(policy.keep)} matching tags per repository, or younger than ${String(policy.olderThanDays)} days, plus images in use and locked ones`,
      found: `${String(tagCount)} tags in the selected repositories`,
    },
  ];
  return {
    targetId: target.id,
    kind: 'containerRegistry',
    actions,
    checks,
    kept: perRepository.flatMap((repository) => repository.kept),
  };
}

async function apply(context: RunbookContext, target: TargetConfig, policy: ImagePurgePolicy, action: PlannedAction): Promise<ApplyResult> {
  const { registryId, registryName } = registryOf(target);
  const repository = stringDetail(action, 'repository');
  const unlockFirst = action.details.unlockFirst === true;
  if (unlockFirst && !policy.includeLocked) {
    throw new ImagePurgeActionError(`action ${action.id}: expected includeLocked to be on to delete a locked item, found it off`, {
      context: { actionId: action.id, targetId: target.id },
    });
  }
  const client = await context.clients.registryClient(registryName);
  const signal = context.signal;
  // The last HTTP status seen; an object so the callback's writes stay visible to the checks.
  const last = { status: 0 };
  const options = {
    ...(signal === undefined ? {} : { abortSignal: signal }),
    onResponse: (response: { status: number }): void => {
      last.status = response.status;
    },
  };
  const refuseIfInUse = async (image: string, digest: string): Promise<void> => {
    const uses = (await inUseFor(context, target, policy)).filter((use) => use.repository === repository);
    // Nothing of this repository in use: no manifest listing needed.
    if (uses.length === 0) return;
    const manifests = await currentManifests(context, client, registryId, repository);
    const digestOfTag = new Map([...manifests].flatMap(([manifestDigest, manifest]) => manifest.tags.map((tag) => [tag, manifestDigest] as const)));
    const entry = protectedDigests(uses, digestOfTag, [...manifests].map(([manifestDigest, manifest]) => ({ digest: manifestDigest, related: manifest.related }))).protected.get(
      digest.toLowerCase(),
    );
    if (entry !== undefined) throw new ImageInUseError(image, digest, usersOf(entry), { actionId: action.id, targetId: target.id });
  };
  // Re-checks before each deletion: the plan may be minutes old (an interactive prompt, a
  // long run). ACR has no conditional delete, so a change between this check and the delete
  // stays possible; the check narrows that window from the whole plan-to-apply gap to the TTL.
  switch (action.kind) {
    case 'delete-tag': {
      const tag = stringDetail(action, 'tag');
      const planned = stringDetail(action, 'digest').toLowerCase();
      const resourceId = `${registryId}/repositories/${repository}/tags/${tag}`;
      const image = `${registryName}/${repository}:${tag}`;
      const artifact = client.getArtifact(repository, tag);
      const current = (await currentTags(context, client, registryId, repository, planned)).get(tag);
      if (current === undefined) return { outcome: 'skipped', message: `tag ${repository}:${tag} was already deleted` };
      if (current !== planned) {
        throw new ImageChangedSincePlanError(`refusing to delete ${image}: expected it to point at ${planned} as when planned, found ${current} (the tag moved since the plan; re-plan)`, {
          context: { image, expected: planned, found: current, actionId: action.id, targetId: target.id },
        });
      }
      await refuseIfInUse(image, current);
      if (unlockFirst) {
        const unlocked = await unlock(resourceId, () => artifact.updateTagProperties(tag, { ...options, canDelete: true, canWrite: true }));
        if (!unlocked) return { outcome: 'skipped', message: `tag ${repository}:${tag} no longer exists` };
      }
      // The SDK treats 404 as success for deletes; the status tells a deletion from a no-op.
      await callAzure({ resourceId, operation: 'delete tag' }, () => artifact.deleteTag(tag, options));
      return last.status === 404
        ? { outcome: 'skipped', message: `tag ${repository}:${tag} was already deleted` }
        : { outcome: 'applied', message: `deleted tag ${repository}:${tag}` };
    }
    case 'delete-manifest': {
      const digest = stringDetail(action, 'digest');
      const resourceId = `${registryId}/repositories/${repository}/manifests/${digest}`;
      const image = `${registryName}/${repository}@${digest}`;
      const artifact = client.getArtifact(repository, digest);
      const currentTags = (await currentManifests(context, client, registryId, repository)).get(digest.toLowerCase())?.tags;
      if (currentTags === undefined) return { outcome: 'skipped', message: `manifest ${repository}@${digest} was already deleted` };
      // Deleting a manifest deletes its tags: a tag pushed onto it since the plan must not go with it.
      const plannedTags = new Set(typeof action.details.tags === 'string' && action.details.tags !== '' ? action.details.tags.split(',') : []);
      const added = currentTags.filter((tag) => !plannedTags.has(tag));
      if (added.length > 0) {
        throw new ImageChangedSincePlanError(
          `refusing to delete ${image}: expected tags [${[...plannedTags].sort().join(', ')}] as when planned, found [${[...currentTags].sort().join(', ')}] (${added.join(', ')} added since the plan; re-plan)`,
          { context: { image, expected: [...plannedTags].sort().join(','), found: [...currentTags].sort().join(','), actionId: action.id, targetId: target.id } },
        );
      }
      await refuseIfInUse(image, digest);
      if (unlockFirst) {
        const unlocked = await unlock(resourceId, () => artifact.updateManifestProperties({ ...options, canDelete: true, canWrite: true }));
        if (!unlocked) return { outcome: 'skipped', message: `manifest ${repository}@${digest} no longer exists` };
        const tags = typeof action.details.tags === 'string' && action.details.tags !== '' ? action.details.tags.split(',') : [];
        for (const tag of tags) {
          await unlock(`${registryId}/repositories/${repository}/tags/${tag}`, () => artifact.updateTagProperties(tag, { ...options, canDelete: true, canWrite: true }));
        }
      }
      await callAzure({ resourceId, operation: 'delete manifest' }, () => artifact.delete(options));
      return last.status === 404
        ? { outcome: 'skipped', message: `manifest ${repository}@${digest} was already deleted` }
        : { outcome: 'applied', message: `deleted manifest ${repository}@${digest}${typeof action.details.tags === 'string' && action.details.tags !== '' ? ` and its tag(s) ${action.details.tags}` : ''}` };
    }
    default:
      throw new ImagePurgeActionError(`action ${action.id}: expected kind delete-tag or delete-manifest, found ${action.kind}`, {
        context: { actionId: action.id, targetId: target.id },
      });
  }
}

/** Unlocks a tag or manifest; false when it no longer exists (a re-run after the deletion). */
async function unlock(resourceId: string, update: () => Promise<unknown>): Promise<boolean> {
  try {
    await callAzure({ resourceId, operation: 'unlock (canDelete, canWrite)' }, update);
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundError) return false;
    throw error;
  }
}

/** What one planned action deletes: its tags, and the manifest itself for `delete-manifest`. */
export function deletionsOf(action: PlannedAction): { readonly tags: number; readonly manifests: number } {
  const tags = action.details.tags;
  switch (action.kind) {
    case 'delete-tag':
      return { tags: 1, manifests: 0 };
    case 'delete-manifest':
      // Deleting a manifest deletes every tag on it (ACR), so each of them counts.
      return { tags: typeof tags === 'string' && tags !== '' ? tags.split(',').length : 0, manifests: 1 };
    default:
      return { tags: 0, manifests: action.destructive ? 1 : 0 };
  }
}

const plural = (count: number, word: string): string => `${String(count)} ${word}${count === 1 ? '' : 's'}`;

/**
 * The deletion cap: a reason to refuse when any registry's plan deletes more than its policy
 * allows. It counts what is deleted, tags and manifests (one image with 21 tags is 22
 * deletions), and the reason names the counts and the largest deletions.
 */
function refuse(context: RunbookContext, plans: readonly TargetPlan[], options: { readonly force: boolean }): string | undefined {
  if (options.force) return undefined;
  const over: string[] = [];
  for (const plan of plans) {
    // The resolved targets: a registry a scope selected has its cap there, not in config.targets.
    const target = (context.resolution?.targets ?? context.config.targets).find((candidate) => candidate.id.toLowerCase() === plan.targetId.toLowerCase());
    const policy = target?.runbooks['image-purge'];
    if (policy === undefined) continue;
    const counted = plan.actions.filter((action) => action.destructive).map((action) => ({ action, ...deletionsOf(action) }));
    const tags = counted.reduce((sum, entry) => sum + entry.tags, 0);
    const manifests = counted.reduce((sum, entry) => sum + entry.manifests, 0);
    const deletions = tags + manifests;
    if (deletions > policy.maxDeletionsPerRun) {
      const largest = [...counted]
        .sort((a, b) => b.tags + b.manifests - (a.tags + a.manifests))
        .slice(0, 3)
        .map((entry) => `${entry.action.resource} (${entry.manifests > 0 ? `manifest and ${plural(entry.tags, 'tag')}` : 'tag'})`);
      over.push(
        `${plan.targetId} plans ${String(deletions)} deletions (${plural(tags, 'tag')} and ${plural(manifests, 'manifest')} in ${plural(counted.length, 'action')}; largest: ${largest.join(', ')}), above its cap maxDeletionsPerRun ${String(policy.maxDeletionsPerRun)}`,
      );
    }
  }
  if (over.length === 0) return undefined;
  return `image-purge refused: ${over.join('; ')}. Review the plan, then raise runbooks.image-purge.maxDeletionsPerRun for the target or force this run (--force).`;
}

/** The `image-purge` runbook (ACR data plane). */
export const imagePurgeRunbook: Runbook<ImagePurgePolicy> = {
  name: 'image-purge',
  description: 'Deletes old container image tags per repository (keep the newest N, older than D days), never an image in use, with a deletion cap',
  policyOf(target) {
    return parseResourceId(target.id).kind === 'containerRegistry' ? target.runbooks['image-purge'] : undefined;
  },
  plan,
  apply,
  refuse,
  applyConcurrency(context) {
    return registryConcurrency(context);
  },
};

/** For tests and benchmarks: the registry clients this runbook uses. */
export type ImagePurgeClients = Pick<AzureClients, 'registryClient' | 'containerRegistryManagementClient' | 'containerAppsClient' | 'webClient'>;
