/**
 * Scriptable health of the emulated apps (web apps, slots, container apps and their revisions),
 * shared by the Microsoft.Web and Microsoft.App providers and answered by the apphost provider.
 *
 * Two things decide whether an app instance is healthy:
 *
 * - **Its artifact**: the image it runs (a container app revision's image, a container web
 *   app's `DOCKER|` image) or, for code deployments, the package deployed to that site or slot.
 *   A bad artifact is bad wherever it runs: a new revision of a bad image, or a slot swapped into
 *   production, inherits it. World files mark artifacts bad with `healthy: false`; the control
 *   endpoint marks any image.
 * - **Its health script** (per site, slot, container app or revision), which models the
 *   incidents the runbooks handle: unhealthy until restarted, unhealthy whatever is done,
 *   healthy after N seconds of the sandbox clock, memory pressure relieved by scaling out, or
 *   "the deploy that the next swap brings in is bad" (unhealthy after a swap until swapped back).
 *
 * Health scripts follow the sandbox clock (`context.now()`), so tests may shift it.
 */
import { z } from 'zod';

/** How an unhealthy app answers its health paths: status and body (default 503 `{"status":"unhealthy"}`). */
const failureResponseSchema = z
  .object({
    status: z.number().int().min(200).max(599).default(503),
    body: z.unknown().optional(),
  })
  .strict();

const common = {
  /** How the failure answers; e.g. `{ status: 200, body: { status: 'degraded' } }` to test body checks. */
  response: failureResponseSchema.optional(),
  /** Only these health paths fail (e.g. `/readyz` while `/healthz` still answers); default: every health path and `/`. */
  paths: z.array(z.string().startsWith('/')).min(1).optional(),
};

/** A health script, as world files and `POST /_sandbox/health` write it. */
export const healthScriptSchema = z.discriminatedUnion('mode', [
  /** Healthy (unless its artifact is bad). */
  z.object({ mode: z.literal('healthy') }).strict(),
  /** Unhealthy whatever is done: restarts, swaps, scaling and new revisions do not help (e.g. a dependency is down). */
  z.object({ mode: z.literal('unhealthy'), ...common }).strict(),
  /** Unhealthy until the app (site, slot or revision; for a container app each revision) restarts after the script is set. A swap restarts both slots. */
  z.object({ mode: z.literal('until-restart'), ...common }).strict(),
  /** Unhealthy until `seconds` of sandbox time have passed since the script was set. */
  z.object({ mode: z.literal('healthy-after'), seconds: z.number().positive(), ...common }).strict(),
  /**
   * Memory pressure: unhealthy until scaled out to `workers` (the App Service plan's capacity)
   * or `replicas` (a revision's minimum replicas), or scaled up to one of `skus` (plan SKU names).
   */
  z
    .object({
      mode: z.literal('memory-pressure'),
      workers: z.number().int().positive().optional(),
      replicas: z.number().int().positive().optional(),
      skus: z.array(z.string().min(1)).min(1).optional(),
      ...common,
    })
    .strict()
    .refine((script) => script.workers !== undefined || script.replicas !== undefined || script.skus !== undefined, {
      message: 'expected workers, replicas or skus: what relieves the memory pressure',
    }),
  /**
   * The next swap into this site or slot brings a bad deploy: the artifact that arrives turns bad
   * (everywhere), so the app is unhealthy after the swap until it is swapped back. Fires once.
   */
  z.object({ mode: z.literal('unhealthy-after-swap') }).strict(),
]);

/** A health script (see {@link healthScriptSchema}). */
export type HealthScript = z.infer<typeof healthScriptSchema>;

/** A script as set on a target, with the sandbox time it was set. */
export interface ScriptState {
  readonly script: HealthScript;
  readonly since: Date;
}

/** An artifact's verdict. */
interface ArtifactVerdict {
  readonly healthy: boolean;
  readonly reason: string;
  /** A bad image whose replicas also fail their startup probes: new revisions of it never become ready. */
  readonly failsProvisioning: boolean;
}

/** What the providers know about one app instance when its health is asked. */
export interface HealthInput {
  /** The instance's script targets, most specific first (e.g. the revision, then its container app). */
  readonly targets: readonly string[];
  /** The artifact it runs (image reference or package key). */
  readonly artifact: string;
  /** When it last (re)started: a restart, a swap, or its creation. */
  readonly startedAt: Date;
  /** What it is scaled to, for memory-pressure scripts. */
  readonly scale: { readonly workers?: number; readonly replicas?: number; readonly sku?: string };
  readonly now: Date;
}

/** The health of one app instance. */
export type HealthVerdict =
  | { readonly healthy: true }
  | {
      readonly healthy: false;
      /** Why, for `/_sandbox/health` and the sandbox event log. */
      readonly reason: string;
      readonly status: number;
      readonly body: unknown;
      /** Paths that fail; undefined: every health path and `/`. */
      readonly paths: readonly string[] | undefined;
    };

const DEFAULT_FAILURE = { status: 503, body: { status: 'unhealthy' } } as const;

const key = (value: string): string => value.toLowerCase();

/** The image an App Service `linuxFxVersion`/`windowsFxVersion` runs, or undefined for code deployments. */
export function imageOfFxVersion(fxVersion: string): string | undefined {
  const match = /^DOCKER\|(.+)$/i.exec(fxVersion.trim());
  return match?.[1];
}

/** Scripts and artifact verdicts of one sandbox. */
export class AppHealth {
  private readonly artifacts = new Map<string, ArtifactVerdict & { readonly artifact: string }>();
  private readonly scripts = new Map<string, ScriptState & { readonly target: string }>();
  private readonly targets = new Map<string, string>();
  /** What the world files set, restored by {@link reset}. */
  private readonly seeded: { artifacts: (() => void)[]; scripts: (() => void)[] } = { artifacts: [], scripts: [] };

  /** Declares a target (site, slot, container app or revision ARM id) that scripts may name. */
  registerTarget(id: string, kind: string): void {
    this.targets.set(key(id), kind);
  }

  /** The kind of a registered target, or undefined. */
  targetKind(id: string): string | undefined {
    return this.targets.get(key(id));
  }

  /** Sets (or with `undefined` clears) a target's script; `now` starts its clock. */
  setScript(target: string, script: HealthScript | undefined, now: Date): void {
    if (script === undefined || script.mode === 'healthy') this.scripts.delete(key(target));
    else this.scripts.set(key(target), { target, script, since: now });
  }

  /** The script on a target, if any. */
  script(target: string): ScriptState | undefined {
    return this.scripts.get(key(target));
  }

  /** Marks an artifact (image reference or package key) good or bad. */
  markArtifact(artifact: string, healthy: boolean, reason: string, failsProvisioning = false): void {
    if (healthy && !failsProvisioning) this.artifacts.delete(key(artifact));
    else this.artifacts.set(key(artifact), { artifact, healthy, reason, failsProvisioning });
  }

  /** Whether new revisions of this image fail their startup probes (never become ready). */
  failsProvisioning(artifact: string): boolean {
    return this.artifacts.get(key(artifact))?.failsProvisioning === true;
  }

  /** A script a world file declares: set now and again by {@link reset}. */
  seedScript(target: string, script: HealthScript, now: Date): void {
    const apply = (): void => {
      this.setScript(target, script, now);
    };
    this.seeded.scripts.push(apply);
    apply();
  }

  /** A bad artifact a world file declares (`healthy: false`): marked now and again by {@link reset}. */
  seedBadArtifact(artifact: string, reason: string): void {
    const apply = (): void => {
      this.markArtifact(artifact, false, reason);
    };
    this.seeded.artifacts.push(apply);
    apply();
  }

  /** Back to what the worlds declared (scripts keep the time they were seeded at). */
  reset(): void {
    this.artifacts.clear();
    this.scripts.clear();
    for (const apply of [...this.seeded.artifacts, ...this.seeded.scripts]) apply();
  }

  /**
   * A swap (or another deploy) brought `artifact` into `target`: an `unhealthy-after-swap`
   * script on the target fires, turning the artifact bad, and is used up.
   *
   * @returns true when a script fired.
   */
  swappedInto(target: string, artifact: string): boolean {
    const state = this.scripts.get(key(target));
    if (state?.script.mode !== 'unhealthy-after-swap') return false;
    this.scripts.delete(key(target));
    this.markArtifact(artifact, false, `${artifact} is bad: it went bad when a swap brought it into ${target} (health script unhealthy-after-swap)`);
    return true;
  }

  /** Decides the health of one app instance. */
  verdict(input: HealthInput): HealthVerdict {
    const artifact = this.artifacts.get(key(input.artifact));
    if (artifact !== undefined && !artifact.healthy) {
      return { healthy: false, reason: artifact.reason, ...DEFAULT_FAILURE, paths: undefined };
    }
    for (const target of input.targets) {
      const state = this.scripts.get(key(target));
      if (state === undefined) continue;
      const failing = this.failing(state, input);
      if (failing !== undefined) {
        const { script } = state;
        const response = 'response' in script ? script.response : undefined;
        return {
          healthy: false,
          reason: `${failing} (health script ${script.mode} on ${state.target})`,
          status: response?.status ?? DEFAULT_FAILURE.status,
          body: response?.body ?? DEFAULT_FAILURE.body,
          paths: 'paths' in script ? script.paths : undefined,
        };
      }
    }
    return { healthy: true };
  }

  /** Why a script still fails the instance, or undefined when it no longer does. */
  private failing(state: ScriptState, input: HealthInput): string | undefined {
    const { script, since } = state;
    switch (script.mode) {
      case 'healthy':
      case 'unhealthy-after-swap':
        return undefined;
      case 'unhealthy':
        return 'unhealthy whatever is done';
      case 'until-restart':
        // Strictly after: an app created in the same instant as the script (a world's seeding) still needs its restart.
        return input.startedAt.getTime() > since.getTime() ? undefined : `not restarted since ${since.toISOString()}`;
      case 'healthy-after': {
        const healthyAt = since.getTime() + script.seconds * 1000;
        return input.now.getTime() >= healthyAt ? undefined : `healthy only from ${new Date(healthyAt).toISOString()} (sandbox clock)`;
      }
      case 'memory-pressure': {
        const { workers, replicas, sku } = input.scale;
        if (script.workers !== undefined && workers !== undefined && workers >= script.workers) return undefined;
        if (script.replicas !== undefined && replicas !== undefined && replicas >= script.replicas) return undefined;
        if (script.skus !== undefined && sku !== undefined && script.skus.some((candidate) => key(candidate) === key(sku))) return undefined;
        const wanted = [
          ...(script.workers === undefined ? [] : [`${String(script.workers)} workers`]),
          ...(script.replicas === undefined ? [] : [`${String(script.replicas)} replicas`]),
          ...(script.skus === undefined ? [] : [`SKU ${script.skus.join(' or ')}`]),
        ];
        const found = [
          ...(workers === undefined ? [] : [`${String(workers)} workers`]),
          ...(replicas === undefined ? [] : [`${String(replicas)} replicas`]),
          ...(sku === undefined ? [] : [`SKU ${sku}`]),
        ];
        return `memory pressure: relieved at ${wanted.join(', or ')}; found ${found.join(', ') || 'no scale information'}`;
      }
    }
  }

  /** Scripts and bad artifacts, for `GET /_sandbox/health`. */
  snapshot(): { scripts: unknown[]; artifacts: unknown[] } {
    return {
      scripts: [...this.scripts.values()].map((state) => ({ target: state.target, script: state.script, since: state.since.toISOString() })),
      artifacts: [...this.artifacts.values()].map((verdict) => ({ ...verdict })),
    };
  }
}
