/**
 * Microsoft.Insights: metric alert rules and action groups, the two resources the status page
 * reads to tell whether an estate's targets are watched and whether their alerts reach the app.
 *
 * Shapes follow the REST specs: `MetricAlerts_ListBySubscription`, `_ListByResourceGroup`,
 * `_Get` and `_Update` (api-version 2018-03-01, `MetricAlertResource` with
 * `Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria`), and `ActionGroups_*` reads
 * (api-version 2023-01-01, `ActionGroupResource` with `webhookReceivers`). `MetricAlerts_Update`
 * (PATCH) changes `enabled` and `description` only, synchronously, so a test can fix a planted
 * disabled rule as a person would in the portal.
 */
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, WorldFile, WorldResource } from '../contract.ts';
import { armId, baseOf, describeIssues, json, param, parseSpec, resourceNotFound, ResourceStore, trackedResourceReads, type ArmResourceBase } from './common.ts';

const METRIC_ALERTS = 'Microsoft.Insights/metricAlerts';
const ACTION_GROUPS = 'Microsoft.Insights/actionGroups';

/** A resource of the same world, by type and name (resource group defaults to the rule's). */
const worldRefSchema = z.object({ type: z.string().min(3), name: z.string().min(1), resourceGroup: z.string().optional() }).strict();

const metricAlertSpecSchema = z
  .object({
    description: z.string().default(''),
    severity: z.number().int().min(0).max(4).default(2),
    enabled: z.boolean().default(true),
    /** What the rule watches: full ARM ids, or resources of this world. */
    scopes: z.array(z.union([z.string().startsWith('/subscriptions/'), worldRefSchema])).min(1),
    criteria: z
      .array(
        z
          .object({
            name: z.string().min(1).optional(),
            metricNamespace: z.string().min(1),
            metricName: z.string().min(1),
            operator: z.enum(['GreaterThan', 'GreaterThanOrEqual', 'LessThan', 'LessThanOrEqual', 'Equals']).default('GreaterThan'),
            threshold: z.number(),
            timeAggregation: z.enum(['Average', 'Minimum', 'Maximum', 'Total', 'Count']).default('Average'),
          })
          .strict(),
      )
      .min(1),
    evaluationFrequency: z.string().default('PT5M'),
    windowSize: z.string().default('PT15M'),
    /** Action groups fired: names of this world's action groups (or full ids). */
    actionGroups: z.array(z.union([z.string().startsWith('/subscriptions/'), worldRefSchema.omit({ type: true })])).default([]),
    createdDaysAgo: z.number().min(0).default(30),
  })
  .strict();

const actionGroupSpecSchema = z
  .object({
    groupShortName: z.string().min(1).max(12).default('opsautopilot'),
    enabled: z.boolean().default(true),
    webhookReceivers: z
      .array(
        z
          .object({
            name: z.string().min(1),
            /** The URL without its key: a world file holds no secret; the key is added as `?code=` when served. */
            serviceUri: z.url(),
            useCommonAlertSchema: z.boolean().default(true),
            useAadAuth: z.boolean().default(false),
          })
          .strict(),
      )
      .default([]),
    emailReceivers: z.array(z.object({ name: z.string(), emailAddress: z.string() }).strict()).default([]),
  })
  .strict();

/** A metric alert rule. */
export interface MetricAlertState extends ArmResourceBase {
  description: string;
  severity: number;
  enabled: boolean;
  scopes: string[];
  criteria: z.output<typeof metricAlertSpecSchema>['criteria'];
  evaluationFrequency: string;
  windowSize: string;
  actionGroupIds: string[];
  lastUpdated: Date;
}

/** An action group. */
export interface ActionGroupState extends ArmResourceBase {
  groupShortName: string;
  enabled: boolean;
  webhookReceivers: z.output<typeof actionGroupSpecSchema>['webhookReceivers'];
  emailReceivers: z.output<typeof actionGroupSpecSchema>['emailReceivers'];
}

const updateBodySchema = z
  .object({
    tags: z.record(z.string(), z.string()).optional(),
    properties: z.object({ enabled: z.boolean().optional(), description: z.string().optional() }).loose().optional(),
  })
  .loose();

/** The Microsoft.Insights provider (metric alerts and action groups). */
export class MonitorProvider implements SandboxProvider {
  readonly name = 'Microsoft.Insights';
  readonly types = [METRIC_ALERTS, ACTION_GROUPS] as const;
  private readonly rules = new ResourceStore<MetricAlertState>();
  private readonly groups = new ResourceStore<ActionGroupState>();

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    const refId = (ref: string | { type?: string; name: string; resourceGroup?: string | undefined }, type: string, resourceGroup: string): string =>
      typeof ref === 'string' ? ref : armId(world.subscriptionId, ref.resourceGroup ?? resourceGroup, ref.type ?? type, ref.name);
    for (const resource of resources.filter((entry) => entry.type === ACTION_GROUPS)) {
      const spec = parseSpec(actionGroupSpecSchema, world, resource);
      this.groups.add({ ...baseOf(world, resource, ACTION_GROUPS), groupShortName: spec.groupShortName, enabled: spec.enabled, webhookReceivers: spec.webhookReceivers, emailReceivers: spec.emailReceivers });
    }
    for (const resource of resources.filter((entry) => entry.type === METRIC_ALERTS)) {
      const spec = parseSpec(metricAlertSpecSchema, world, resource);
      this.rules.add({
        ...baseOf(world, resource, METRIC_ALERTS),
        description: spec.description,
        severity: spec.severity,
        enabled: spec.enabled,
        scopes: spec.scopes.map((scope) => refId(scope, '', resource.resourceGroup)),
        criteria: spec.criteria,
        evaluationFrequency: spec.evaluationFrequency,
        windowSize: spec.windowSize,
        actionGroupIds: spec.actionGroups.map((group) => refId(group, ACTION_GROUPS, resource.resourceGroup)),
        lastUpdated: new Date(now.getTime() - spec.createdDaysAgo * 86_400_000),
      });
    }
  }

  /** A rule by ARM coordinates (tests). */
  getRule(subscriptionId: string, resourceGroup: string, name: string): MetricAlertState | undefined {
    return this.rules.get(subscriptionId, resourceGroup, METRIC_ALERTS, name);
  }

  routes(): readonly RouteDefinition[] {
    const rule = `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/${METRIC_ALERTS}/{name}`;
    return [
      ...trackedResourceReads(this.rules, METRIC_ALERTS, (found) => this.ruleJson(found)),
      ...trackedResourceReads(this.groups, ACTION_GROUPS, (found) => this.groupJson(found)),
      {
        host: 'arm',
        method: 'PATCH',
        pattern: rule,
        throttle: 'write',
        operationId: `${METRIC_ALERTS}.update`,
        handler: (request, context) => {
          const found = this.getRule(param(request, 'subscriptionId'), param(request, 'resourceGroup'), param(request, 'name'));
          return found === undefined ? resourceNotFound(context, METRIC_ALERTS, param(request, 'name'), param(request, 'resourceGroup')) : this.update(found, request, context);
        },
      },
    ];
  }

  /** `MetricAlerts_Update`: `enabled`, `description` and `tags`; synchronous 200 with the rule. */
  private update(found: MetricAlertState, request: SandboxRequest, context: ProviderContext): SandboxResponse {
    const parsed = updateBodySchema.safeParse(request.body);
    if (!parsed.success) return context.armError(400, 'InvalidRequestContent', `The request content was invalid: expected a MetricAlertResourcePatch body, found: ${describeIssues(parsed.error)}.`);
    const properties = parsed.data.properties;
    if (properties?.enabled !== undefined) found.enabled = properties.enabled;
    if (properties?.description !== undefined) found.description = properties.description;
    if (parsed.data.tags !== undefined) Object.assign(found, { tags: { ...parsed.data.tags } });
    found.lastUpdated = context.now();
    context.event('monitor.metricAlert.updated', { resourceId: found.id, enabled: found.enabled });
    return json(200, this.ruleJson(found));
  }

  private ruleJson(found: MetricAlertState): Record<string, unknown> {
    return {
      id: found.id,
      name: found.name,
      type: METRIC_ALERTS,
      location: 'global',
      tags: found.tags,
      properties: {
        description: found.description,
        severity: found.severity,
        enabled: found.enabled,
        scopes: found.scopes,
        evaluationFrequency: found.evaluationFrequency,
        windowSize: found.windowSize,
        criteria: {
          'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria',
          allOf: found.criteria.map((criterion, index) => ({
            criterionType: 'StaticThresholdCriterion',
            name: criterion.name ?? `Metric${String(index + 1)}`,
            metricNamespace: criterion.metricNamespace,
            metricName: criterion.metricName,
            operator: criterion.operator,
            threshold: criterion.threshold,
            timeAggregation: criterion.timeAggregation,
          })),
        },
        autoMitigate: true,
        actions: found.actionGroupIds.map((actionGroupId) => ({ actionGroupId, webHookProperties: {} })),
        lastUpdatedTime: found.lastUpdated.toISOString(),
        isMigrated: false,
      },
    };
  }

  private groupJson(found: ActionGroupState): Record<string, unknown> {
    return {
      id: found.id,
      name: found.name,
      type: ACTION_GROUPS,
      location: 'Global',
      tags: found.tags,
      properties: {
        groupShortName: found.groupShortName,
        enabled: found.enabled,
        emailReceivers: found.emailReceivers.map((receiver) => ({ ...receiver, useCommonAlertSchema: true, status: 'Enabled' })),
        smsReceivers: [],
        // Azure returns the URI as configured, key included: clients must treat it as a secret.
        webhookReceivers: found.webhookReceivers.map((receiver) => ({
          name: receiver.name,
          serviceUri: `${receiver.serviceUri}${receiver.serviceUri.includes('?') ? '&' : '?'}code=sandbox-function-key-${found.name}`,
          useCommonAlertSchema: receiver.useCommonAlertSchema,
          useAadAuth: receiver.useAadAuth,
        })),
        itsmReceivers: [],
        azureAppPushReceivers: [],
        automationRunbookReceivers: [],
        voiceReceivers: [],
        logicAppReceivers: [],
        azureFunctionReceivers: [],
        armRoleReceivers: [],
        eventHubReceivers: [],
      },
    };
  }

  snapshot(): unknown {
    return {
      metricAlerts: this.rules.all().map((found) => ({ id: found.id, enabled: found.enabled, scopes: found.scopes, metrics: found.criteria.map((criterion) => criterion.metricName), actionGroups: found.actionGroupIds })),
      actionGroups: this.groups.all().map((found) => ({ id: found.id, enabled: found.enabled, webhooks: found.webhookReceivers.map((receiver) => receiver.serviceUri) })),
    };
  }
}
