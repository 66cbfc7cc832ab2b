/**
 * The estate configuration's `remediation` blocks (issue 9): which alerts and events a target
 * answers with which ladder of actions, and the guardrails around them (mode, maintenance
 * windows, circuit breaker, caps, cooldown, dedupe window, escalation).
 *
 * Where they are written, closest wins field by field for the settings and the rules add up:
 *
 *   remediation (top level, the estate's defaults)  <  scopes[i].remediation  <  targets[i].remediation
 *
 * This file is also the one home of every action's parameters (scale bounds, SKU ladders, the
 * swap window): `src/remediation/actions` parses a rung's params with {@link actionParamsSchema}
 * and never declares its own.
 *
 * The schema refuses what cannot be made safe: a scale action without a maximum, a scale-up
 * without an explicit SKU ladder, a rung without verification (or a verification that can never
 * pass before its deadline), a restart without a cooldown at any level, an action the target's
 * kind does not have. {@link remediationIssues} runs the checks that span levels on the raw file,
 * so the loader reports them with every other issue, each with its path and line.
 */
import { z } from 'zod';
import type { ResourceKind } from '../azure/resource-id.ts';

// ---------------------------------------------------------------------------------------------
// Actions and their parameters
// ---------------------------------------------------------------------------------------------

/** Every remediation action and the resource kinds that have it (`webSite` covers function apps). */
export const REMEDIATION_ACTIONS = {
  restart: ['webSite', 'containerApp', 'postgresFlexibleServer'],
  'swap-back': ['webSite'],
  'scale-out': ['webSite', 'containerApp'],
  'scale-up': ['webSite', 'postgresFlexibleServer'],
  rollback: ['containerApp'],
} as const satisfies Record<string, readonly ResourceKind[]>;

/** A remediation action's name. */
export type RemediationActionName = keyof typeof REMEDIATION_ACTIONS;

/** The action names, in the table's order. */
export const REMEDIATION_ACTION_NAMES = Object.keys(REMEDIATION_ACTIONS) as RemediationActionName[];

/** The kinds a remediation can act on at all. */
export const REMEDIATION_KINDS: readonly ResourceKind[] = ['webSite', 'containerApp', 'postgresFlexibleServer'];

/** Actions that take a target down for a moment: each needs a cooldown written somewhere. */
export const DISRUPTIVE_ACTIONS: readonly RemediationActionName[] = ['restart'];

/** Web app, slot or function app restart (`POST .../restart`). */
export const webRestartParamsSchema = z
  .object({
    softRestart: z.boolean().default(false).describe('Restart the app\'s processes without recycling the workers (ARM softRestart).'),
    slot: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,58}$/, 'expected a slot name').optional().describe('Restart this deployment slot instead of production.'),
  })
  .strict();

/** Container app restart: each active revision (or only the latest) is restarted. */
export const containerRestartParamsSchema = z
  .object({
    revisions: z.enum(['active', 'latest']).default('active').describe('Which revisions to restart: every active revision (default) or only the latest.'),
  })
  .strict();

/** PostgreSQL flexible server restart. */
export const postgresRestartParamsSchema = z
  .object({
    failover: z.boolean().default(false).describe('Restart with a planned failover to the standby (zone-redundant HA servers only).'),
  })
  .strict();

/** Swap the production slot back with the slot it was swapped with, if that swap is recent. */
export const swapBackParamsSchema = z
  .object({
    slot: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,58}$/, 'expected a slot name').default('staging').describe('The slot the bad build came from and goes back to.'),
    withinMinutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(60)
      .describe('Only swap back when the last swap completed at most this long ago; an older swap is not this incident\'s cause.'),
  })
  .strict();

/** Scale an App Service plan out by workers, never past `maxWorkers`. */
export const webScaleOutParamsSchema = z
  .object({
    step: z.number().int().min(1).max(10).default(1).describe('Workers added per action.'),
    maxWorkers: z.number().int().min(1).max(100).describe('Required: the plan never goes past this many workers (App Service allows up to 30 on Premium, 100 on Isolated).'),
  })
  .strict();

/**
 * Scale a container app out: raise `minReplicas` by `step`, never past `maxReplicas` (and
 * `maxReplicas` with it when needed). A scale change is a template change: it creates a revision.
 */
export const containerScaleOutParamsSchema = z
  .object({
    step: z.number().int().min(1).max(50).default(1).describe('Replicas added to minReplicas per action.'),
    maxReplicas: z.number().int().min(1).max(1000).describe('Required: neither minReplicas nor maxReplicas is ever set above this.'),
  })
  .strict();

const planSkuName = z.string().regex(/^[A-Za-z0-9]{1,16}$/, 'expected an App Service plan SKU name such as P1V2');

/** Scale an App Service plan up to the next SKU of an explicit ladder. */
export const webScaleUpParamsSchema = z
  .object({
    skus: z
      .array(planSkuName)
      .min(1)
      .max(10)
      .refine((skus) => new Set(skus.map((sku) => sku.toUpperCase())).size === skus.length, { message: 'expected each SKU once' })
      .describe('Required: the SKU ladder, smallest first (e.g. [P1V2, P2V2]); the action moves to the next one above the current SKU and never past the last.'),
  })
  .strict();

/** A PostgreSQL flexible server SKU: name and tier, as ARM takes them. */
export const postgresSkuSchema = z
  .object({
    name: z.string().regex(/^Standard_[A-Za-z0-9_]{1,40}$/, 'expected a compute SKU name such as Standard_D2ds_v4').describe('Compute SKU name, e.g. Standard_D2ds_v4.'),
    tier: z.enum(['Burstable', 'GeneralPurpose', 'MemoryOptimized']).describe('Compute tier of that SKU.'),
  })
  .strict();

/** Scale a PostgreSQL flexible server up to the next SKU of an explicit ladder. */
export const postgresScaleUpParamsSchema = z
  .object({
    skus: z
      .array(postgresSkuSchema)
      .min(1)
      .max(10)
      .refine((skus) => new Set(skus.map((sku) => sku.name.toLowerCase())).size === skus.length, { message: 'expected each SKU once' })
      .describe('Required: the SKU ladder, smallest first; the action moves to the next one above the current SKU and never past the last.'),
  })
  .strict();

/** Container app rollback: activate the previous healthy revision, 100 % traffic to it, keep the bad one. */
export const rollbackParamsSchema = z
  .object({
    maxRevisionAgeDays: z.number().int().min(1).max(365).default(30).describe('Only revisions created within this many days count as a rollback candidate.'),
  })
  .strict();

/** Parameters of one action on one kind, with defaults filled in. */
export type WebRestartParams = z.output<typeof webRestartParamsSchema>;
export type ContainerRestartParams = z.output<typeof containerRestartParamsSchema>;
export type PostgresRestartParams = z.output<typeof postgresRestartParamsSchema>;
export type SwapBackParams = z.output<typeof swapBackParamsSchema>;
export type WebScaleOutParams = z.output<typeof webScaleOutParamsSchema>;
export type ContainerScaleOutParams = z.output<typeof containerScaleOutParamsSchema>;
export type WebScaleUpParams = z.output<typeof webScaleUpParamsSchema>;
export type PostgresScaleUpParams = z.output<typeof postgresScaleUpParamsSchema>;
export type RollbackParams = z.output<typeof rollbackParamsSchema>;

const PARAMS: Record<RemediationActionName, Partial<Record<ResourceKind, z.ZodType>>> = {
  restart: { webSite: webRestartParamsSchema, containerApp: containerRestartParamsSchema, postgresFlexibleServer: postgresRestartParamsSchema },
  'swap-back': { webSite: swapBackParamsSchema },
  'scale-out': { webSite: webScaleOutParamsSchema, containerApp: containerScaleOutParamsSchema },
  'scale-up': { webSite: webScaleUpParamsSchema, postgresFlexibleServer: postgresScaleUpParamsSchema },
  rollback: { containerApp: rollbackParamsSchema },
};

/**
 * The params schema of `action` on a target of `kind` (it fills the defaults), or undefined
 * when that kind does not have the action.
 */
export function actionParamsSchema(action: RemediationActionName, kind: ResourceKind): z.ZodType | undefined {
  return PARAMS[action][kind];
}

/** True when `name` is a remediation action. */
export function isRemediationAction(name: string): name is RemediationActionName {
  return Object.prototype.hasOwnProperty.call(REMEDIATION_ACTIONS, name);
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/** Health verification after an action: N consecutive good probes before the deadline. */
export const verifySchema = z
  .object({
    paths: z
      .array(z.string().regex(/^\/[^\s?#]*$/, 'expected a path starting with / (no query)'))
      .min(1)
      .max(10)
      .optional()
      .describe('Health paths to probe; default the target\'s health.path and readinessPath, else /healthz, /readyz and /health.'),
    consecutive: z.number().int().min(1).max(20).default(3).describe('Consecutive successful probes (status and body) that count as healthy.'),
    intervalSeconds: z.number().int().min(5).max(300).default(15).describe('Seconds between probes (durable timers).'),
    deadlineSeconds: z.number().int().min(30).max(3600).default(300).describe('Give up and judge the action failed after this many seconds.'),
  })
  .strict()
  .superRefine((verify, ctx) => {
    if (verify.consecutive * verify.intervalSeconds > verify.deadlineSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['deadlineSeconds'],
        message: `expected a deadline of at least consecutive × intervalSeconds (${String(verify.consecutive * verify.intervalSeconds)} s) so verification can pass, found ${String(verify.deadlineSeconds)}`,
      });
    }
  });

/** Cooldown of an action on a target, with CrashLoopBackOff-style exponential back-off. */
export const cooldownSchema = z
  .object({
    minutes: z.number().int().min(1).max(24 * 60).describe('Cooldown after the action, before the same action may run on the same target again.'),
    maxMinutes: z.number().int().min(1).max(7 * 24 * 60).optional().describe('Back-off cap: each repeat doubles the cooldown up to this (default 16 × minutes, at most 7 days).'),
    resetAfterHealthyMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(60)
      .describe('After this long without the action being needed, the back-off starts again from minutes.'),
  })
  .strict()
  .superRefine((cooldown, ctx) => {
    if (cooldown.maxMinutes !== undefined && cooldown.maxMinutes < cooldown.minutes) {
      ctx.addIssue({ code: 'custom', path: ['maxMinutes'], message: `expected maxMinutes >= minutes (${String(cooldown.minutes)}), found ${String(cooldown.maxMinutes)}` });
    }
  });

/** One rung of a ladder: an action, its params, and how to tell whether it helped. */
export const ladderRungSchema = z
  .object({
    action: z.enum(REMEDIATION_ACTION_NAMES as [RemediationActionName, ...RemediationActionName[]]).describe('The action: restart, swap-back, scale-out, scale-up or rollback (which kinds have which: docs/remediation.md).'),
    params: z.record(z.string(), z.unknown()).default({}).describe('The action\'s parameters for the target\'s kind (scale bounds, SKU ladder, swap window); checked against the target\'s kind.'),
    verify: verifySchema.describe('Required: health verification after the action; when it fails, a reversible action is undone and the next rung runs.'),
    cooldown: cooldownSchema.optional().describe('Cooldown of this action on the target; default the remediation settings\' cooldown.'),
  })
  .strict();

const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1).max(50)]);
const matchText = z.string().min(1).max(260);
const SEVERITY_VALUES = ['Sev0', 'Sev1', 'Sev2', 'Sev3', 'Sev4'] as const;
const SIGNAL_TYPES = ['Metric', 'Log', 'Activity Log'] as const;

/** What a rule answers: alert fields (all given ones must match) or an Event Grid event type. */
export const ruleMatchSchema = z
  .object({
    alertRule: oneOrMany(matchText).optional().describe('Alert rule name(s), compared case-insensitively (essentials.alertRule).'),
    signalType: oneOrMany(z.enum(SIGNAL_TYPES)).optional().describe('Signal type(s): Metric, Log or Activity Log.'),
    monitoringService: oneOrMany(matchText).optional().describe('Monitoring service(s), e.g. Platform, Log Alerts V2, Resource Health (case and spaces ignored).'),
    severity: oneOrMany(z.enum(SEVERITY_VALUES)).optional().describe('Severity or severities, Sev0 to Sev4.'),
    metricName: oneOrMany(matchText).optional().describe('Metric name(s) of the alert\'s conditions, e.g. MemoryPercentage (case-insensitive).'),
    eventType: oneOrMany(matchText).optional().describe('Event Grid event type(s), e.g. Microsoft.Web.SlotSwapCompleted; a rule matches alerts or events, not both.'),
  })
  .strict()
  .superRefine((match, ctx) => {
    const alertFields = (['alertRule', 'signalType', 'monitoringService', 'severity', 'metricName'] as const).filter((field) => match[field] !== undefined);
    if (match.eventType !== undefined && alertFields.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['eventType'], message: `expected either eventType or alert fields, found both (eventType and ${alertFields.join(', ')})` });
    }
    if (match.eventType === undefined && alertFields.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'expected at least one of alertRule, signalType, monitoringService, severity, metricName, eventType (a rule that matches everything is refused)' });
    }
  });

/** Who hears an escalation: names of notification entries (webhooks, PagerDuty). */
export const escalateSchema = z
  .object({
    notify: z.array(z.string().min(1)).min(1).max(20).describe('Names of notifications entries (webhooks, PagerDuty services) that get the escalation.'),
  })
  .strict();

/** One remediation rule. */
export const remediationRuleSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lower-case letters, digits and dashes').describe('Unique name of the rule on its target (records, explain-alert and the status page show it).'),
    match: ruleMatchSchema.describe('The alerts or events the rule answers.'),
    watch: verifySchema
      .optional()
      .describe('Events only: watch the target\'s health this way first and run the ladder only when it fails (e.g. after a slot swap).'),
    ladder: z.array(ladderRungSchema).min(1).max(5).describe('The actions in order; each is verified, undone when reversible and it did not help, then the next runs; after the last, escalate.'),
    escalate: escalateSchema.optional().describe('Who hears it when the ladder is exhausted; default the remediation settings\' escalate.'),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.watch !== undefined && rule.match.eventType === undefined) {
      ctx.addIssue({ code: 'custom', path: ['watch'], message: 'expected watch only on a rule that matches an eventType (an alert already says the target is unhealthy)' });
    }
  });

/** A rule as written (params not yet checked against a kind). */
export type RemediationRule = z.output<typeof remediationRuleSchema>;
/** One rung as written. */
export type LadderRung = z.output<typeof ladderRungSchema>;
/** Verification settings. */
export type VerifySettings = z.output<typeof verifySchema>;
/** Cooldown settings. */
export type CooldownSettings = z.output<typeof cooldownSchema>;
/** A rule's match. */
export type RuleMatch = z.output<typeof ruleMatchSchema>;

// ---------------------------------------------------------------------------------------------
// Settings: mode, maintenance windows, breaker, caps
// ---------------------------------------------------------------------------------------------

const isoWithOffset = z.iso.datetime({ offset: true });
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time HH:MM (UTC)');
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** A declared maintenance window: one-off (start, end) or weekly (days, from, to in UTC). */
export const maintenanceWindowSchema = z
  .object({
    name: z.string().min(1).max(100).describe('What the window is for, e.g. "release train"; shown as the reason nothing ran.'),
    start: isoWithOffset.optional().describe('One-off window: start, ISO 8601 with an offset.'),
    end: isoWithOffset.optional().describe('One-off window: end, ISO 8601 with an offset; at most 7 days after start.'),
    weekly: z
      .object({
        days: z.array(z.enum(WEEKDAYS)).min(1).max(7).describe('Days the window opens on (UTC): mon … sun.'),
        from: hhmm.describe('Opens at this UTC time.'),
        to: hhmm.describe('Closes at this UTC time; earlier than from means the next day.'),
      })
      .strict()
      .optional()
      .describe('Weekly window, in UTC.'),
  })
  .strict()
  .superRefine((window, ctx) => {
    const oneOff = window.start !== undefined || window.end !== undefined;
    if (oneOff && window.weekly !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['weekly'], message: 'expected either start/end or weekly, found both' });
      return;
    }
    if (!oneOff && window.weekly === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected start and end, or weekly, found neither' });
      return;
    }
    if (oneOff) {
      if (window.start === undefined || window.end === undefined) {
        ctx.addIssue({ code: 'custom', path: [window.start === undefined ? 'start' : 'end'], message: 'expected both start and end of a one-off window' });
        return;
      }
      const length = Date.parse(window.end) - Date.parse(window.start);
      if (!(length > 0)) ctx.addIssue({ code: 'custom', path: ['end'], message: `expected end after start (${window.start}), found ${window.end}` });
      else if (length > 7 * 24 * 3600_000) ctx.addIssue({ code: 'custom', path: ['end'], message: 'expected a window of at most 7 days (a longer one is remediation: off)' });
    } else if (window.weekly !== undefined && window.weekly.from === window.weekly.to) {
      ctx.addIssue({ code: 'custom', path: ['weekly', 'to'], message: `expected to different from from (${window.weekly.from})` });
    }
  });

/** A maintenance window. */
export type MaintenanceWindow = z.output<typeof maintenanceWindowSchema>;

/** Circuit breaker per target. */
export const breakerSchema = z
  .object({
    failures: z.number().int().min(1).max(20).default(3).describe('Failed remediations in a row (verification failed on every rung) that open the breaker.'),
    coolOffMinutes: z
      .union([z.number().int().min(5).max(30 * 24 * 60), z.literal('manual')])
      .default(240)
      .describe('An open breaker closes by itself after this many minutes; "manual": only guardrails reset closes it.'),
  })
  .strict();

/** Caps on how often actions run. */
export const capsSchema = z
  .object({
    perTargetActionPerHour: z.number().int().min(1).max(20).default(1).describe('Most runs of one action on one target in any 60 minutes (App Service health check: 1 an hour).'),
    perTargetActionPerDay: z.number().int().min(1).max(50).default(3).describe('Most runs of one action on one target in any 24 hours (App Service health check: 3 a day).'),
    perEstatePerDay: z.number().int().min(1).max(1000).default(20).describe('Most actions on the whole estate in any 24 hours.'),
  })
  .strict()
  .superRefine((caps, ctx) => {
    if (caps.perTargetActionPerDay < caps.perTargetActionPerHour) {
      ctx.addIssue({ code: 'custom', path: ['perTargetActionPerDay'], message: `expected at least perTargetActionPerHour (${String(caps.perTargetActionPerHour)}), found ${String(caps.perTargetActionPerDay)}` });
    }
  });

/** The remediation settings every level may set (all optional: closest level wins per field). */
const settingsFields = {
  mode: z
    .enum(['on', 'off', 'dry-run'])
    .optional()
    .describe('on: act (the global dryRun still applies); dry-run: plan and record the ladder, change nothing; off: ignore every alert for it. Default on.'),
  maintenanceWindows: z
    .array(maintenanceWindowSchema)
    .max(50)
    .optional()
    .describe('No action while one of these is open (e.g. a deploy); windows of every level apply.'),
  breaker: breakerSchema.optional().describe('Circuit breaker per target (default 3 failures, 240 min cool-off).'),
  caps: capsSchema.optional().describe('Caps per target and action and per estate (default 1 an hour, 3 a day, 20 a day for the estate).'),
  cooldown: cooldownSchema.optional().describe('Default cooldown of every action; a restart needs one here or on its rung.'),
  dedupeHours: z.number().int().min(1).max(7 * 24).optional().describe('How long an alert or event id is remembered as seen (default 24).'),
  escalate: escalateSchema.optional().describe('Default escalation of every rule.'),
};

/** `targets[i].remediation` and `scopes[i].remediation`: settings and rules, or `off`. */
export const targetRemediationSchema = z
  .union([
    z.literal('off').describe('Shorthand of { mode: off }: no alert or event ever acts on this target.'),
    z
      .object({
        ...settingsFields,
        rules: z.array(remediationRuleSchema).max(50).default([]).describe('The rules of this target (or of every target the scope selects).'),
      })
      .strict(),
  ])
  .describe('Alert and Event Grid remediation of this target: rules with their ladders, and guardrail settings that win over the estate\'s.');

/** The top-level `remediation`: the estate's defaults. */
export const estateRemediationSchema = z
  .object({
    ...settingsFields,
  })
  .strict()
  .describe('The estate\'s remediation defaults: mode, maintenance windows, breaker, caps, cooldown, dedupe window, escalation. OPS_AUTOPILOT_KILL_SWITCH=on stops everything whatever is written here.');

/** `targets[i].remediation` as written. */
export type TargetRemediationInput = z.output<typeof targetRemediationSchema>;
/** The top-level `remediation` as written. */
export type EstateRemediationInput = z.output<typeof estateRemediationSchema>;

// ---------------------------------------------------------------------------------------------
// Effective settings of one target
// ---------------------------------------------------------------------------------------------

/** Built-in defaults. */
export const REMEDIATION_DEFAULTS = {
  mode: 'on',
  breaker: breakerSchema.parse({}),
  caps: capsSchema.parse({}),
  dedupeHours: 24,
  /** For actions other than restart when no level sets a cooldown. */
  cooldown: { minutes: 15, maxMinutes: 240, resetAfterHealthyMinutes: 60 },
} as const;

/** Where a layer of remediation settings came from, lowest precedence first. */
export interface RemediationLayer {
  /** Where it is written: `` (the top level), `scopes[0]`, `targets[2]`. */
  readonly source: string;
  readonly value: TargetRemediationInput | EstateRemediationInput | undefined;
}

/** A rule with where it was written. */
export interface SourcedRule {
  readonly rule: RemediationRule;
  /** e.g. `targets[2].remediation.rules[0]`, `scopes[0].remediation.rules[1]`. */
  readonly path: string;
}

/** The effective remediation of one target. */
export interface EffectiveRemediation {
  readonly mode: 'on' | 'off' | 'dry-run';
  /** The level that set mode, e.g. `targets[2]` or `built-in default`. */
  readonly modeSource: string;
  readonly rules: readonly SourcedRule[];
  /** Windows of every level, each with its source. */
  readonly maintenanceWindows: readonly (MaintenanceWindow & { readonly source: string })[];
  readonly breaker: z.output<typeof breakerSchema>;
  readonly caps: z.output<typeof capsSchema>;
  /** Default cooldown (undefined: none written at any level). */
  readonly cooldown: CooldownSettings | undefined;
  readonly dedupeHours: number;
  readonly escalate: z.output<typeof escalateSchema> | undefined;
}

function asSettings(value: TargetRemediationInput | EstateRemediationInput | undefined): (EstateRemediationInput & { rules?: RemediationRule[] }) | undefined {
  if (value === undefined) return undefined;
  if (value === 'off') return { mode: 'off' };
  return value;
}

/**
 * Puts a target's remediation together from its layers (lowest precedence first, e.g. the top
 * level, the scope that selected it, its own entry): closest layer wins per setting, rules add
 * up (the target's first), maintenance windows of every layer apply.
 */
export function mergeRemediation(layers: readonly RemediationLayer[]): EffectiveRemediation {
  let mode: 'on' | 'off' | 'dry-run' = REMEDIATION_DEFAULTS.mode;
  let modeSource = 'built-in default';
  let breaker: z.output<typeof breakerSchema> = REMEDIATION_DEFAULTS.breaker;
  let caps: z.output<typeof capsSchema> = REMEDIATION_DEFAULTS.caps;
  let cooldown: CooldownSettings | undefined;
  let dedupeHours: number = REMEDIATION_DEFAULTS.dedupeHours;
  let escalate: z.output<typeof escalateSchema> | undefined;
  const windows: (MaintenanceWindow & { source: string })[] = [];
  const rules: SourcedRule[] = [];
  layers.forEach((layer) => {
    const settings = asSettings(layer.value);
    if (settings === undefined) return;
    if (settings.mode !== undefined) {
      mode = settings.mode;
      modeSource = layer.source;
    }
    if (settings.breaker !== undefined) breaker = settings.breaker;
    if (settings.caps !== undefined) caps = settings.caps;
    if (settings.cooldown !== undefined) cooldown = settings.cooldown;
    if (settings.dedupeHours !== undefined) dedupeHours = settings.dedupeHours;
    if (settings.escalate !== undefined) escalate = settings.escalate;
    for (const window of settings.maintenanceWindows ?? []) windows.push({ ...window, source: layer.source });
  });
  // Rules add up, closest layer first (a target's own rules before its scope's), each in file order.
  for (let index = layers.length - 1; index >= 0; index -= 1) {
    const layer = layers[index];
    const settings = asSettings(layer?.value);
    if (layer === undefined || settings === undefined) continue;
    const base = `${layer.source}.remediation`;
    (settings.rules ?? []).forEach((rule, r) => {
      rules.push({ rule, path: `${base}.rules[${String(r)}]` });
    });
  }
  return { mode, modeSource, rules, maintenanceWindows: windows, breaker, caps, cooldown, dedupeHours, escalate };
}

/** The cooldown that applies to a rung: its own, else the effective default, else built-in (not for restart). */
export function rungCooldown(rung: Pick<LadderRung, 'action' | 'cooldown'>, effective: Pick<EffectiveRemediation, 'cooldown'>): CooldownSettings | undefined {
  const written = rung.cooldown ?? effective.cooldown;
  if (written !== undefined) return written;
  return DISRUPTIVE_ACTIONS.includes(rung.action) ? undefined : REMEDIATION_DEFAULTS.cooldown;
}

/** The back-off cap of a cooldown, in minutes. */
export function cooldownCapMinutes(cooldown: CooldownSettings): number {
  return cooldown.maxMinutes ?? Math.min(cooldown.minutes * 16, 7 * 24 * 60);
}

// ---------------------------------------------------------------------------------------------
// Checks that span levels (run on the raw file, so they are reported with every other issue)
// ---------------------------------------------------------------------------------------------

type Path = (string | number)[];

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

/** Names of every named entry under `notifications` (webhooks, PagerDuty services, ...). */
function notificationNames(root: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const entries of Object.values(record(root.notifications) ?? {})) {
    for (const entry of list(entries)) {
      const name = record(entry)?.name;
      if (typeof name === 'string') names.add(name);
    }
  }
  return names;
}

/**
 * Issues of the remediation blocks that need more than one field: the action exists for the
 * kind(s) the block applies to and its params fit that kind (scale maximum, SKU ladder), every
 * restart has a cooldown at some level, rule names are unique per block, escalations name
 * notification entries that exist. Reads the raw input defensively.
 *
 * @param kindsOf the resource kinds a `targets[i]` or `scopes[i]` entry can be, from the raw entry
 */
export function remediationIssues(input: unknown, kindsOf: (section: 'targets' | 'scopes', entry: Record<string, unknown>) => readonly ResourceKind[]): { path: Path; message: string }[] {
  const root = record(input);
  if (root === undefined) return [];
  const issues: { path: Path; message: string }[] = [];
  const top = record(root.remediation);
  const topCooldown = top?.cooldown !== undefined;
  const names = notificationNames(root);
  const checkEscalate = (escalate: unknown, path: Path): void => {
    list(record(escalate)?.notify).forEach((name, index) => {
      if (typeof name === 'string' && !names.has(name)) {
        issues.push({ path: [...path, 'notify', index], message: `expected the name of a notifications entry (${[...names].join(', ') || 'none defined'}), found "${name}"` });
      }
    });
  };
  if (top !== undefined) checkEscalate(top.escalate, ['remediation', 'escalate']);
  for (const section of ['targets', 'scopes'] as const) {
    list(root[section]).forEach((entryValue, index) => {
      const entry = record(entryValue);
      const block = record(entry?.remediation);
      if (entry === undefined || block === undefined) return;
      const at: Path = [section, index, 'remediation'];
      const kinds = kindsOf(section, entry);
      const remediable = kinds.filter((kind) => REMEDIATION_KINDS.includes(kind));
      const rules = list(block.rules);
      if (rules.length > 0 && kinds.length > 0 && remediable.length === 0) {
        issues.push({ path: [...at, 'rules'], message: `expected a web app, container app or PostgreSQL server for remediation rules, found ${kinds.join(', ')}` });
        return;
      }
      checkEscalate(block.escalate, [...at, 'escalate']);
      const blockCooldown = block.cooldown !== undefined;
      const ruleNames = new Map<string, number>();
      rules.forEach((ruleValue, r) => {
        const rule = record(ruleValue);
        if (rule === undefined) return;
        const rulePath: Path = [...at, 'rules', r];
        if (typeof rule.name === 'string') {
          const first = ruleNames.get(rule.name);
          if (first !== undefined) issues.push({ path: [...rulePath, 'name'], message: `expected a unique rule name, found a duplicate of rules[${String(first)}]` });
          else ruleNames.set(rule.name, r);
        }
        checkEscalate(rule.escalate, [...rulePath, 'escalate']);
        list(rule.ladder).forEach((rungValue, s) => {
          const rung = record(rungValue);
          if (rung === undefined || typeof rung.action !== 'string' || !isRemediationAction(rung.action)) return;
          const action = rung.action;
          const rungPath: Path = [...rulePath, 'ladder', s];
          if (DISRUPTIVE_ACTIONS.includes(action) && rung.cooldown === undefined && !blockCooldown && !topCooldown) {
            issues.push({
              path: [...rungPath, 'cooldown'],
              message: `expected a cooldown for ${action} (on the rung, the ${section === 'targets' ? 'target' : 'scope'}'s remediation or the top-level remediation), found none: a ${action} without one can loop`,
            });
          }
          const supported = REMEDIATION_ACTIONS[action] as readonly ResourceKind[];
          const applicable = remediable.filter((kind) => supported.includes(kind));
          if (remediable.length > 0 && (section === 'targets' ? applicable.length === 0 : applicable.length !== remediable.length)) {
            issues.push({
              path: [...rungPath, 'action'],
              message: `expected an action that ${remediable.join(' and ')} ${remediable.length === 1 ? 'has' : 'have'} (${action} is for ${supported.join(', ')})${section === 'scopes' ? '; narrow the scope with types' : ''}`,
            });
            return;
          }
          const params = rung.params === undefined ? {} : rung.params;
          for (const kind of applicable) {
            const schema = actionParamsSchema(action, kind);
            const result = schema?.safeParse(params);
            if (result === undefined || result.success) continue;
            for (const issue of result.error.issues) {
              const missing = issue.code === 'invalid_type' && issue.input === undefined;
              const field = issue.path.map(String).join('.');
              issues.push({
                path: [...rungPath, 'params', ...(issue.path as Path)],
                message: missing
                  ? `expected ${field} for ${action} on a ${kind} (${describeRequired(action, field)}), found none`
                  : `${issue.code === 'unrecognized_keys' ? `unknown field for ${action} on a ${kind}: ${issue.keys.join(', ')}` : issue.message}${remediable.length > 1 ? ` (on a ${kind})` : ''}`,
              });
            }
          }
        });
      });
    });
  }
  return issues;
}

function describeRequired(action: RemediationActionName, field: string): string {
  if (field === 'maxWorkers' || field === 'maxReplicas') return 'a scale action needs a maximum';
  if (field === 'skus') return 'scale-up moves along an explicit SKU ladder';
  return `required by ${action}`;
}
