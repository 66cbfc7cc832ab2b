/**
 * Reads of Azure Monitor's metric alert rules and action groups (`Microsoft.Insights`), for the
 * status page: which targets are watched, by enabled rules, routed to an action group that calls
 * this app. There is no SDK package for them in this app, so they go through
 * {@link AzureClients.armGet} (same credential, CA, retries and subscription budget).
 *
 * An action group's webhook URI carries the function key as `?code=`: it is a secret, so only
 * the origin and path of a receiver ever leave this module.
 */
import type { AzureClients } from './clients.ts';
import { callAzure } from './errors.ts';
import { parseResourceId } from './resource-id.ts';

/** api-version of `Microsoft.Insights/metricAlerts` (the stable 2018-03-01 spec). */
export const METRIC_ALERTS_API_VERSION = '2018-03-01';
/** api-version of `Microsoft.Insights/actionGroups`. */
export const ACTION_GROUPS_API_VERSION = '2023-01-01';
/** List pages followed at most (ARM pages are 100 rules in Azure, 10 in the sandbox). */
const MAX_PAGES = 50;

/** A metric alert rule, reduced to what the status page judges. */
export interface MetricAlertRule {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly description: string;
  /** Resource ids the rule watches. */
  readonly scopes: readonly string[];
  /** `metricName` of each criterion. */
  readonly metrics: readonly string[];
  readonly actionGroupIds: readonly string[];
}

/** An action group's webhook receiver, without its query string (the key). */
export interface ActionGroupWebhook {
  readonly name: string;
  /** `https://host/path`, no query. */
  readonly endpoint: string;
  readonly useCommonAlertSchema: boolean;
}

/** An action group, reduced to what the status page judges. */
export interface ActionGroupView {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly webhooks: readonly ActionGroupWebhook[];
}

interface RawList {
  readonly value?: readonly unknown[];
  readonly nextLink?: string;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : [];
}

/** Parses one `MetricAlertResource`. */
export function parseMetricAlert(raw: unknown): MetricAlertRule {
  const resource = record(raw);
  const properties = record(resource.properties);
  const criteria = record(properties.criteria);
  const allOf = Array.isArray(criteria.allOf) ? criteria.allOf : [];
  const actions = Array.isArray(properties.actions) ? properties.actions : [];
  return {
    id: typeof resource.id === 'string' ? resource.id : '',
    name: typeof resource.name === 'string' ? resource.name : '',
    // A rule that does not say it is enabled is not counted as enabled (fail closed).
    enabled: properties.enabled === true,
    description: typeof properties.description === 'string' ? properties.description.slice(0, 300) : '',
    scopes: strings(properties.scopes),
    metrics: allOf.map((criterion) => record(criterion).metricName).filter((name): name is string => typeof name === 'string'),
    actionGroupIds: actions.map((action) => record(action).actionGroupId).filter((id): id is string => typeof id === 'string'),
  };
}

/** The origin and path of a URI, never its query (an action group's key is there). */
export function endpointOf(uri: string): string {
  try {
    const url = new URL(uri);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** Parses one `ActionGroupResource`. */
export function parseActionGroup(raw: unknown): ActionGroupView {
  const resource = record(raw);
  const properties = record(resource.properties);
  const receivers = Array.isArray(properties.webhookReceivers) ? properties.webhookReceivers : [];
  return {
    id: typeof resource.id === 'string' ? resource.id : '',
    name: typeof resource.name === 'string' ? resource.name : '',
    enabled: properties.enabled === true,
    webhooks: receivers.map((receiver) => {
      const entry = record(receiver);
      return {
        name: typeof entry.name === 'string' ? entry.name : '',
        endpoint: typeof entry.serviceUri === 'string' ? endpointOf(entry.serviceUri) : '(none)',
        useCommonAlertSchema: entry.useCommonAlertSchema === true,
      };
    }),
  };
}

/** Every metric alert rule of a subscription (`MetricAlerts_ListBySubscription`, all pages up to a bound). */
export async function listMetricAlerts(clients: Pick<AzureClients, 'armGet'>, subscriptionId: string): Promise<{ rules: MetricAlertRule[]; truncated: boolean }> {
  const rules: MetricAlertRule[] = [];
  let next: string | undefined = `/subscriptions/${subscriptionId}/providers/Microsoft.Insights/metricAlerts`;
  let pages = 0;
  while (next !== undefined && pages < MAX_PAGES) {
    const page: string = next;
    const body = record(
      await callAzure({ resourceId: `/subscriptions/${subscriptionId}`, operation: 'list metric alert rules', expected: 'the subscription to be readable' }, () => clients.armGet(subscriptionId, page, METRIC_ALERTS_API_VERSION)),
    ) as RawList;
    for (const entry of body.value ?? []) rules.push(parseMetricAlert(entry));
    next = typeof body.nextLink === 'string' && body.nextLink !== '' ? body.nextLink : undefined;
    pages += 1;
  }
  return { rules, truncated: next !== undefined };
}

/** One action group by id (`ActionGroups_Get`). */
export async function getActionGroup(clients: Pick<AzureClients, 'armGet'>, actionGroupId: string): Promise<ActionGroupView> {
  const id = parseResourceId(actionGroupId);
  const body = await callAzure({ resourceId: actionGroupId, operation: 'get action group', expected: 'the action group to exist' }, () => clients.armGet(id.subscriptionId, actionGroupId, ACTION_GROUPS_API_VERSION));
  return parseActionGroup(body);
}
