/**
 * Health probes of a target: is the web app, slot, function app, container app or PostgreSQL
 * server serving right now? One probe is one look; `verifyHealth` (verify-health.ts) repeats it
 * on durable timers until enough consecutive looks pass or a deadline passes.
 *
 * What one probe reads, per kind:
 * - web app / function app / slot: the site's `state` in ARM (a `Stopped` site is unhealthy
 *   whatever its paths say), then a GET of every health path on its `defaultHostName`;
 * - container app: the ingress FQDN's health paths, and the running state of every revision
 *   that receives traffic (ARM's `runningState`, `healthState`, `provisioningState`), since a
 *   revision that is `Degraded` or failed to provision is not healthy even when another one
 *   answers the path;
 * - PostgreSQL flexible server: ARM's `state` (`Ready`), there is no HTTP path.
 *
 * Paths: the caller's (a rule's `verify.paths`), the target's configured `health.path` and
 * `health.readinessPath`, and the conventional `/healthz`, `/readyz` and `/health`. A path the
 * caller or the config names must pass. A conventional path the app does not serve (404) is
 * skipped, not failed; but at least one path must have answered, so an app with none fails
 * closed instead of passing on nothing.
 *
 * A path passes when its status is the configured `health.expectStatus` (any 2xx without one)
 * and a JSON body's `status` field, if any, says healthy (`{"status":"degraded"}` with 200 is a
 * failure: the body is read). Each GET has the target's `health.timeoutSeconds` (default 10 s)
 * for the whole exchange through the client layer's `httpsGet`, and at most 4 KiB of body is
 * read; what the result keeps of a body is a short excerpt with secret-looking values masked,
 * because results travel through durable history and run records.
 *
 * With the sandbox credential, only loopback app URLs are probed (`appHostUrlTemplate` must map
 * hosts to the sandbox); anything else is refused before a request is sent.
 *
 * Nothing here imports `@azure/functions` or `durable-functions`.
 */
import type { Revision } from '@azure/arm-appcontainers';
import { isLoopbackUrl } from '../azure/credential.ts';
import { callAzure } from '../azure/errors.ts';
import { parseResourceId, type ResourceKind } from '../azure/resource-id.ts';
import type { TargetConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { redactString } from '../runs/secret-guard.ts';

/** The conventional health paths probed besides the configured ones. */
export const WELL_KNOWN_HEALTH_PATHS = ['/healthz', '/readyz', '/health'] as const;

/** At most this many paths in one probe (configured and conventional together). */
export const MAX_PROBE_PATHS = 10;

/** How much of a body a result keeps (after masking). */
export const BODY_EXCERPT_CHARS = 300;

/** Default timeout of one GET when the target configures none. */
const DEFAULT_TIMEOUT_MS = 10_000;

/** JSON `status` values that mean healthy (compared case-insensitively). Anything else fails. */
const HEALTHY_STATUS_WORDS = new Set(['healthy', 'ok', 'up', 'pass', 'ready', 'running']);

/** Revision running states that serve (Azure's `RevisionRunningState`). */
const SERVING_RUNNING_STATES = new Set(['running', 'runningatmaxscale', 'scaledtozero']);

/** Options of {@link probeHealth}. */
export interface ProbeHealthOptions {
  /** Extra paths that must pass (e.g. a rule's `verify.paths`); each starts with `/`. */
  readonly paths?: readonly string[];
  /** A deployment slot of a web app: probe the slot's host instead of production. */
  readonly slot?: string;
}

/** One path's answer. */
export interface PathProbe {
  readonly path: string;
  /** `configured`: named by the caller or the target (must pass); `conventional`: may be absent. */
  readonly source: 'configured' | 'conventional';
  readonly verdict: 'pass' | 'fail' | 'not-served';
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** The start of the body, secrets masked. */
  readonly body: string;
  /** Why it passed or failed, in words. */
  readonly reason: string;
  readonly durationMs: number;
}

/** A revision that receives traffic, as ARM reports it. */
export interface RevisionProbe {
  readonly name: string;
  readonly trafficWeight: number;
  readonly active: boolean;
  readonly runningState: string;
  readonly healthState: string;
  readonly provisioningState: string;
  readonly replicas: number;
  readonly verdict: 'pass' | 'fail';
  readonly reason: string;
}

/** What one probe found. JSON-serialisable and free of secrets (it goes into durable history). */
export interface ProbeResult {
  readonly targetId: string;
  readonly kind: ResourceKind;
  readonly slot?: string;
  readonly healthy: boolean;
  /** One line: why healthy or not. */
  readonly reason: string;
  /** When the probe started (ISO, the context's clock). */
  readonly checkedAt: string;
  /** The host probed (`defaultHostName`, ingress FQDN), when there is one. */
  readonly host?: string;
  /** ARM's state of the site (`Running`, `Stopped`) or server (`Ready`, ...). */
  readonly state?: string;
  readonly paths: readonly PathProbe[];
  /** Container apps: the revisions that receive traffic. */
  readonly revisions?: readonly RevisionProbe[];
}

/** A probe that must not be sent (a non-loopback URL with the sandbox credential, a bad path, a kind without health). */
export class HealthProbeRefusedError extends OpsAutopilotError {
  override readonly name: string = 'HealthProbeRefusedError';
  readonly resourceId: string;

  constructor(resourceId: string, message: string, options: { expected: string; found: string }) {
    super(message, { context: { resourceId, expected: options.expected, found: options.found } });
    this.resourceId = resourceId;
  }
}

/** A body excerpt fit for history and records: masked, one line, short. */
function excerpt(body: string): string {
  const masked = redactString(body).replace(/\s+/g, ' ').trim();
  return masked.length > BODY_EXCERPT_CHARS ? `${masked.slice(0, BODY_EXCERPT_CHARS)}…` : masked;
}

/**
 * What a body says about health: `undefined` when it says nothing readable (not JSON, or JSON
 * without a string `status`), else the status word and whether it means healthy.
 */
export function bodyStatus(body: string): { readonly word: string; readonly healthy: boolean } | undefined {
  const text = body.trim();
  if (!text.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const value = record.status ?? record.Status;
  if (typeof value !== 'string') return undefined;
  return { word: value, healthy: HEALTHY_STATUS_WORDS.has(value.trim().toLowerCase()) };
}

/** The paths one probe asks, configured first, each once; throws on a malformed one. */
export function probePaths(target: TargetConfig, extra: readonly string[] = []): { path: string; source: PathProbe['source'] }[] {
  const configured = [...extra, ...(target.health === undefined ? [] : [target.health.path, ...(target.health.readinessPath === undefined ? [] : [target.health.readinessPath])])];
  const seen = new Set<string>();
  const paths: { path: string; source: PathProbe['source'] }[] = [];
  for (const path of configured) {
    if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(path)) {
      throw new HealthProbeRefusedError(target.id, `health probe of ${target.id}: expected a path such as /healthz, found "${path.slice(0, 100)}"`, {
        expected: 'an absolute path without query or spaces',
        found: path.slice(0, 100),
      });
    }
    if (!seen.has(path)) paths.push({ path, source: 'configured' });
    seen.add(path);
  }
  for (const path of WELL_KNOWN_HEALTH_PATHS) {
    if (!seen.has(path)) paths.push({ path, source: 'conventional' });
    seen.add(path);
  }
  if (paths.length > MAX_PROBE_PATHS) {
    throw new HealthProbeRefusedError(target.id, `health probe of ${target.id}: expected at most ${MAX_PROBE_PATHS} paths, found ${paths.length}`, {
      expected: `at most ${MAX_PROBE_PATHS} paths`,
      found: String(paths.length),
    });
  }
  return paths;
}

/** GETs one path and judges the answer. Never throws for the app's behaviour (timeouts included). */
async function probePath(
  ctx: RunbookContext,
  target: TargetConfig,
  host: string,
  entry: { path: string; source: PathProbe['source'] },
): Promise<PathProbe> {
  const url = ctx.clients.appUrl(host, entry.path);
  if ((ctx.config.azure.sandboxTokenEndpoint !== undefined || ctx.clients.settings.sandboxTokenEndpoint !== undefined) && !isLoopbackUrl(url)) {
    throw new HealthProbeRefusedError(target.id, `health probe of ${target.id}: expected a loopback app URL with the sandbox credential, found ${new URL(url).origin} (set azure.appHostUrlTemplate to the sandbox)`, {
      expected: 'a loopback https URL',
      found: new URL(url).origin,
    });
  }
  const timeoutMs = (target.health?.timeoutSeconds ?? DEFAULT_TIMEOUT_MS / 1000) * 1000;
  const started = Date.now();
  try {
    const response = await ctx.clients.httpsGet(url, { timeoutMs, ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) });
    const durationMs = Date.now() - started;
    const body = excerpt(response.body);
    const base = { path: entry.path, source: entry.source, status: response.status, body, durationMs };
    if (response.status === 404 && entry.source === 'conventional') return { ...base, verdict: 'not-served', reason: `${entry.path} is not served (404)` };
    const expected = target.health?.expectStatus;
    const statusOk = expected === undefined ? response.status >= 200 && response.status < 300 : response.status === expected;
    if (!statusOk) return { ...base, verdict: 'fail', reason: `${entry.path}: expected HTTP ${expected ?? '2xx'}, found ${response.status}` };
    const said = bodyStatus(response.body);
    if (said !== undefined && !said.healthy) return { ...base, verdict: 'fail', reason: `${entry.path}: HTTP ${response.status} but the body says status "${excerpt(said.word)}"` };
    return { ...base, verdict: 'pass', reason: `${entry.path}: HTTP ${response.status}${said === undefined ? '' : ` status "${excerpt(said.word)}"`}` };
  } catch (error) {
    return {
      path: entry.path,
      source: entry.source,
      verdict: 'fail',
      body: '',
      reason: `${entry.path}: ${redactString(errorMessage(error))}`,
      durationMs: Date.now() - started,
    };
  }
}

/** Judges the HTTP paths: every asked path passes, conventional ones may be absent, one must answer. */
function judgePaths(paths: readonly PathProbe[]): { healthy: boolean; reason: string } {
  const failed = paths.filter((path) => path.verdict === 'fail');
  if (failed.length > 0) return { healthy: false, reason: failed.map((path) => path.reason).join('; ') };
  const passed = paths.filter((path) => path.verdict === 'pass');
  if (passed.length === 0) {
    return { healthy: false, reason: `no health path answered (${paths.map((path) => path.path).join(', ')} not served); configure the target's health.path` };
  }
  return { healthy: true, reason: `${passed.map((path) => path.path).join(', ')} healthy` };
}

function judgeRevision(revision: Revision, weight: number): RevisionProbe {
  const runningState = revision.runningState ?? 'Unknown';
  const healthState = revision.healthState ?? 'None';
  const provisioningState = revision.provisioningState ?? 'Unknown';
  const base = {
    name: revision.name ?? '(unnamed)',
    trafficWeight: weight,
    active: revision.active === true,
    runningState,
    healthState,
    provisioningState,
    replicas: revision.replicas ?? 0,
  };
  if (revision.active !== true) return { ...base, verdict: 'fail', reason: `revision ${base.name} has ${weight} % of traffic but is inactive` };
  if (provisioningState.toLowerCase() === 'failed') return { ...base, verdict: 'fail', reason: `revision ${base.name} failed to provision` };
  if (!SERVING_RUNNING_STATES.has(runningState.toLowerCase())) return { ...base, verdict: 'fail', reason: `revision ${base.name}: expected running state Running, found ${runningState}` };
  if (healthState.toLowerCase() === 'unhealthy') return { ...base, verdict: 'fail', reason: `revision ${base.name}: expected health state Healthy, found Unhealthy` };
  return { ...base, verdict: 'pass', reason: `revision ${base.name} ${runningState} (${weight} %)` };
}

/**
 * Probes one target once. Reads ARM (the request budget applies) and GETs the health paths.
 *
 * @throws typed Azure errors when ARM cannot be read (the state that would prove health is
 * unknown: the caller counts that as not healthy), {@link HealthProbeRefusedError} for a probe
 * that must not be sent.
 */
export async function probeHealth(ctx: RunbookContext, target: TargetConfig, options: ProbeHealthOptions = {}): Promise<ProbeResult> {
  const id = parseResourceId(target.id);
  const checkedAt = ctx.now().toISOString();
  const kind = id.kind;
  if (kind === 'postgresFlexibleServer') {
    const client = await ctx.clients.postgresClient(id.subscriptionId);
    const server = await callAzure({ resourceId: id.id, operation: 'get PostgreSQL flexible server' }, () => client.servers.get(id.resourceGroup, id.name));
    const state = server.state ?? 'Unknown';
    const healthy = state === 'Ready';
    return { targetId: id.id, kind, healthy, reason: healthy ? 'server Ready' : `server: expected state Ready, found ${state}`, checkedAt, state, paths: [] };
  }
  if (kind === 'webSite') {
    const paths = probePaths(target, options.paths);
    const client = await ctx.clients.webClient(id.subscriptionId);
    const slot = options.slot;
    const resourceId = slot === undefined ? id.id : `${id.id}/slots/${slot}`;
    const site = await callAzure({ resourceId, operation: slot === undefined ? 'get web app' : 'get web app slot' }, () =>
      slot === undefined ? client.webApps.get(id.resourceGroup, id.name) : client.webApps.getSlot(id.resourceGroup, id.name, slot),
    );
    const host = site.defaultHostName;
    const state = site.state ?? 'Unknown';
    const base = { targetId: id.id, kind, ...(slot === undefined ? {} : { slot }), checkedAt, state };
    if (host === undefined || host === '') return { ...base, healthy: false, reason: `${resourceId}: ARM reports no defaultHostName`, paths: [] };
    const probes = await Promise.all(paths.map((entry) => probePath(ctx, target, host, entry)));
    const judged = judgePaths(probes);
    const running = state.toLowerCase() === 'running';
    return {
      ...base,
      host,
      healthy: running && judged.healthy,
      reason: running ? judged.reason : `site: expected state Running, found ${state}; ${judged.reason}`,
      paths: probes,
    };
  }
  if (kind === 'containerApp') {
    if (options.slot !== undefined) {
      throw new HealthProbeRefusedError(id.id, `health probe of ${id.id}: a container app has no slots, found slot "${options.slot}"`, { expected: 'no slot', found: options.slot });
    }
    const paths = probePaths(target, options.paths);
    const client = await ctx.clients.containerAppsClient(id.subscriptionId);
    const app = await callAzure({ resourceId: id.id, operation: 'get container app' }, () => client.containerApps.get(id.resourceGroup, id.name));
    const traffic = (app.configuration?.ingress?.traffic ?? []).filter((rule) => (rule.weight ?? 0) > 0);
    const weights = new Map<string, number>();
    for (const rule of traffic) {
      const name = rule.latestRevision === true ? app.latestReadyRevisionName : rule.revisionName;
      if (name !== undefined) weights.set(name, (weights.get(name) ?? 0) + (rule.weight ?? 0));
    }
    // Without ingress traffic rules (an app without ingress), the latest ready revision serves.
    if (weights.size === 0 && app.latestReadyRevisionName !== undefined) weights.set(app.latestReadyRevisionName, 100);
    const revisions = await Promise.all(
      [...weights].map(async ([name, weight]) =>
        judgeRevision(await callAzure({ resourceId: `${id.id}/revisions/${name}`, operation: 'get container app revision' }, () => client.containerAppsRevisions.getRevision(id.resourceGroup, id.name, name)), weight),
      ),
    );
    const host = app.configuration?.ingress?.fqdn;
    const probes = host === undefined || host === '' ? [] : await Promise.all(paths.map((entry) => probePath(ctx, target, host, entry)));
    const badRevisions = revisions.filter((revision) => revision.verdict === 'fail');
    const reasons: string[] = [];
    let healthy = true;
    if (revisions.length === 0) {
      healthy = false;
      reasons.push('no revision receives traffic');
    }
    if (badRevisions.length > 0) {
      healthy = false;
      reasons.push(...badRevisions.map((revision) => revision.reason));
    }
    if (host === undefined || host === '') {
      if (target.health !== undefined || (options.paths ?? []).length > 0) {
        healthy = false;
        reasons.push('health paths are configured but the app has no ingress FQDN');
      }
    } else {
      const judged = judgePaths(probes);
      healthy &&= judged.healthy;
      reasons.push(judged.reason);
    }
    if (healthy) reasons.push(...revisions.map((revision) => revision.reason));
    return {
      targetId: id.id,
      kind,
      checkedAt,
      ...(host === undefined || host === '' ? {} : { host }),
      ...(app.runningStatus === undefined ? {} : { state: app.runningStatus }),
      healthy,
      reason: reasons.join('; '),
      paths: probes,
      revisions,
    };
  }
  throw new HealthProbeRefusedError(id.id, `health probe of ${id.id}: expected a web app, container app or PostgreSQL server, found ${id.type}`, {
    expected: 'Microsoft.Web/sites, Microsoft.App/containerApps or Microsoft.DBforPostgreSQL/flexibleServers',
    found: id.type,
  });
}
