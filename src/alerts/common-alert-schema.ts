/**
 * The Azure Monitor common alert schema (`schemaId: azureMonitorCommonAlertSchema`), as action
 * groups post it to a webhook: zod schemas of the envelope, the essentials and the alert context
 * of every published alert type, and one parser that turns a request body into a typed
 * {@link ParsedAlert} or a {@link PayloadError} saying, per field, what was expected and what was
 * found. Pure: no `@azure/functions`, no I/O.
 *
 * Field names and shapes follow Microsoft's "Common alert schema" and "Sample alert payloads"
 * pages (the samples are in `test/fixtures/alerts/`). Azure adds fields over time, so objects
 * accept unknown keys; what the autopilot reads is checked strictly.
 *
 * Alert types, by `monitoringService` (and `conditionType` for metric alerts):
 *
 * | kind | monitoringService | context |
 * |---|---|---|
 * | `metric-static` | `Platform` | `SingleResourceMultipleMetricCriteria` / `MultipleResourceMultipleMetricCriteria` |
 * | `metric-dynamic` | `Platform` | `DynamicThresholdCriteria` |
 * | `metric-availability` | `Platform` | `WebtestLocationAvailabilityCriteria` |
 * | `log-search-v2` | `Log Alerts V2` | `LogQueryCriteria` (scheduled query rules 2020-05-01 and later) |
 * | `log-search-simple` | `Simple Log Alert` | `LogQueryCriteria` |
 * | `log-search-v1` | `Log Analytics`, `Application Insights` | `SearchQuery`, `SearchResults`, ... |
 * | `activity-log` | `Activity Log - Administrative`, `- Policy`, `- Autoscale`, `- Security`, ... | activity log event |
 * | `service-health` | `ServiceHealth` | activity log event with the incident in `properties` |
 * | `resource-health` | `Resource Health` | activity log event with the health change in `properties` |
 * | `smart-detection` | `SmartDetector` | `SmartDetectorId`, `DetectionSummary`, ... |
 * | `prometheus` | `Prometheus` | `expression`, `labels`, `ruleGroup`, ... |
 * | `budget` | `CostAlerts` | `AlertCategory`, `AlertData` |
 * | `unknown` | anything else | not read |
 */
import { z } from 'zod';
import { resourceIdKey } from '../azure/resource-id.ts';
import { payloadIssues, PayloadError, readJsonBody, type PayloadIssue } from '../intake/payload.ts';

/** The `schemaId` of the common alert schema. */
export const COMMON_ALERT_SCHEMA_ID = 'azureMonitorCommonAlertSchema';

/**
 * Largest alert body accepted: twice the documented 256 KB upper limit of a common-schema alert
 * (log search alerts drop their embedded results to stay under it).
 */
export const MAX_ALERT_BODY_BYTES = 512 * 1024;

/** What names the alert in errors. */
const WHAT = 'alert';

/** The `schemaId` of the older, per-type webhook payloads, so the error can say what to change. */
const LEGACY_SCHEMAS: Readonly<Record<string, string>> = {
  azuremonitormetricalert: 'the metric alert webhook schema',
  'microsoft.insights/activitylogs': 'the activity log alert webhook schema',
  'microsoft.insights/logalert': 'the log search alert webhook schema',
};

const SEVERITIES = ['Sev0', 'Sev1', 'Sev2', 'Sev3', 'Sev4'] as const;
/** Alert severity, Sev0 (critical) to Sev4 (verbose). */
export type AlertSeverity = (typeof SEVERITIES)[number];

const armIdString = z.string().regex(/^\/subscriptions\/[^/\s]+(\/[^/\s]+)*\/?$/i, 'expected an ARM resource ID (/subscriptions/...)');
/** Azure writes times with up to seven fractional digits and either `Z` or an offset. */
const isoTime = z.iso.datetime({ offset: true });
const nullableString = z.string().nullable().optional();

/** The essentials section: the same for every alert type. */
export const essentialsSchema = z
  .object({
    alertId: z.string().min(1),
    alertRule: nullableString,
    /** Not in every payload (older API versions and some alert types leave it out). */
    alertRuleID: nullableString,
    alertRuleId: nullableString,
    severity: z.enum(SEVERITIES).nullable().optional(),
    /** `Metric`, `Log`, `Activity Log` (also written `ActivityLog`); null for budget alerts. */
    signalType: nullableString,
    monitorCondition: z.enum(['Fired', 'Resolved']),
    monitoringService: z.string().min(1),
    alertTargetIDs: z.array(armIdString).nullable().optional(),
    configurationItems: z.array(z.string()).nullable().optional(),
    originAlertId: nullableString,
    firedDateTime: isoTime,
    resolvedDateTime: isoTime.nullable().optional(),
    description: nullableString,
    essentialsVersion: z.string().min(1),
    alertContextVersion: z.string().min(1),
    investigationLink: nullableString,
    targetResourceGroup: nullableString,
    targetResourceType: nullableString,
  })
  .loose();

const envelopeSchema = z
  .object({
    schemaId: z.literal(COMMON_ALERT_SCHEMA_ID),
    data: z
      .object({
        essentials: essentialsSchema,
        alertContext: z.record(z.string(), z.unknown()).nullable().optional(),
        customProperties: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).nullable().optional(),
      })
      .loose(),
  })
  .loose();

const dimensionSchema = z.object({ name: z.string(), value: z.string() }).loose();
const failingPeriodsSchema = z.object({ numberOfEvaluationPeriods: z.number(), minFailingPeriodsToAlert: z.number() }).loose();
/** Thresholds arrive as strings (`"25"`) in metric alerts and as numbers in log alerts. */
const thresholdSchema = z.union([z.string(), z.number()]).nullable().optional();

/** One criterion of a metric alert (static, dynamic or availability). */
export const metricCriterionSchema = z
  .object({
    metricName: z.string().min(1),
    metricNamespace: z.string().nullable().optional(),
    operator: z.string().min(1),
    threshold: thresholdSchema,
    timeAggregation: z.string().min(1),
    dimensions: z.array(dimensionSchema).nullable().optional(),
    metricValue: z.number().nullable().optional(),
    webTestName: z.string().nullable().optional(),
    alertSensitivity: z.string().nullable().optional(),
    failingPeriods: failingPeriodsSchema.nullable().optional(),
    ignoreDataBefore: z.string().nullable().optional(),
  })
  .loose();

/** The alert context of a metric alert. */
export const metricContextSchema = z
  .object({
    properties: z.record(z.string(), z.unknown()).nullable().optional(),
    conditionType: z.string().min(1),
    condition: z
      .object({
        windowSize: z.string().nullable().optional(),
        allOf: z.array(metricCriterionSchema).min(1),
        windowStartTime: z.string().nullable().optional(),
        windowEndTime: z.string().nullable().optional(),
      })
      .loose(),
  })
  .loose();

/** One criterion of a log search alert (v2 and simple log alerts). */
export const logQueryCriterionSchema = z
  .object({
    searchQuery: z.string().min(1),
    metricMeasureColumn: z.string().nullable().optional(),
    targetResourceTypes: z.string().nullable().optional(),
    operator: z.string().nullable().optional(),
    threshold: thresholdSchema,
    timeAggregation: z.string().nullable().optional(),
    dimensions: z.array(dimensionSchema).nullable().optional(),
    metricValue: z.number().nullable().optional(),
    failingPeriods: failingPeriodsSchema.nullable().optional(),
    linkToSearchResultsUI: z.string().nullable().optional(),
    linkToFilteredSearchResultsUI: z.string().nullable().optional(),
    linkToSearchResultsAPI: z.string().nullable().optional(),
    linkToFilteredSearchResultsAPI: z.string().nullable().optional(),
  })
  .loose();

/** The alert context of a log search alert v2 (and a simple log alert). */
export const logQueryContextSchema = z
  .object({
    properties: z.record(z.string(), z.unknown()).nullable().optional(),
    conditionType: z.literal('LogQueryCriteria'),
    condition: z
      .object({
        windowSize: z.string().nullable().optional(),
        allOf: z.array(logQueryCriterionSchema).min(1),
        windowStartTime: z.string().nullable().optional(),
        windowEndTime: z.string().nullable().optional(),
      })
      .loose(),
  })
  .loose();

/** The alert context of a log search alert v1 (Log Analytics or Application Insights). */
export const logSearchV1ContextSchema = z
  .object({
    SearchQuery: z.string().min(1),
    SearchIntervalStartTimeUtc: z.string().optional(),
    SearchIntervalEndtimeUtc: z.string().optional(),
    ResultCount: z.number(),
    AlertType: z.string().optional(),
    Threshold: z.number().optional(),
    Operator: z.string().optional(),
    Dimensions: z.array(dimensionSchema).nullable().optional(),
    WorkspaceId: z.string().optional(),
    ApplicationId: z.string().optional(),
    LinkToSearchResults: z.string().optional(),
    IncludedSearchResults: z.string().optional(),
  })
  .loose();

/** An activity log event as an activity log, service health or resource health alert carries it. */
export const activityLogContextSchema = z
  .object({
    authorization: z.object({ action: z.string(), scope: z.string() }).loose().nullable().optional(),
    /** A string (`Operation`, `Admin, Operation`) or, in service health alerts, a number. */
    channels: z.union([z.string(), z.number()]).nullable().optional(),
    claims: z.string().nullable().optional(),
    caller: z.string().nullable().optional(),
    correlationId: z.string().min(1),
    /** A string (`Administrative`, `ResourceHealth`) or, in service health alerts, a number. */
    eventSource: z.union([z.string(), z.number()]),
    eventTimestamp: z.string().min(1),
    eventDataId: z.string().optional(),
    level: z.union([z.string(), z.number()]).optional(),
    operationName: z.string().min(1),
    operationId: z.string().optional(),
    properties: z.record(z.string(), z.unknown()).nullable().optional(),
    status: z.string().min(1),
    subStatus: z.string().nullable().optional(),
    submissionTimestamp: z.string().optional(),
  })
  .loose();

/** The health change a resource health alert reports. */
export const resourceHealthPropertiesSchema = z
  .object({
    title: z.string(),
    details: z.string().nullable().optional(),
    currentHealthStatus: z.string().min(1),
    previousHealthStatus: z.string().nullable().optional(),
    type: z.string().optional(),
    cause: z.string().nullable().optional(),
  })
  .loose();

/** The incident a service health alert reports; `impactedServices` is a JSON string or an array. */
export const serviceHealthPropertiesSchema = z
  .object({
    title: z.string(),
    service: z.string(),
    region: z.string().optional(),
    communication: z.string().optional(),
    incidentType: z.string().min(1),
    trackingId: z.string().min(1),
    impactStartTime: z.string().optional(),
    impactMitigationTime: z.string().optional(),
    impactedServices: z.union([z.string(), z.array(z.unknown())]).optional(),
    stage: z.string().optional(),
  })
  .loose();

/** The alert context of an Application Insights smart detection alert. */
export const smartDetectionContextSchema = z
  .object({
    DetectionSummary: z.string(),
    FormattedOccurrenceTime: z.string().optional(),
    DetectedValue: z.string().optional(),
    NormalValue: z.string().optional(),
    PresentationInsightEventRequest: z.string().optional(),
    SmartDetectorId: z.string().min(1),
    SmartDetectorName: z.string().optional(),
    AnalysisTimestamp: z.string().optional(),
  })
  .loose();

/** The alert context of a Prometheus rule group alert. */
export const prometheusContextSchema = z
  .object({
    interval: z.string().optional(),
    expression: z.string().min(1),
    expressionValue: z.string().optional(),
    for: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    ruleGroup: z.string().min(1),
  })
  .loose();

/** The alert context of a cost management budget alert. */
export const budgetContextSchema = z
  .object({
    AlertCategory: z.string(),
    AlertData: z.record(z.string(), z.unknown()),
  })
  .loose();

/** The alert types the autopilot tells apart (see the module comment). */
export type AlertKind =
  | 'metric-static'
  | 'metric-dynamic'
  | 'metric-availability'
  | 'log-search-v2'
  | 'log-search-simple'
  | 'log-search-v1'
  | 'activity-log'
  | 'service-health'
  | 'resource-health'
  | 'smart-detection'
  | 'prometheus'
  | 'budget'
  | 'unknown';

/** The alert context, typed by kind. */
export type AlertContext =
  | { readonly kind: 'metric-static' | 'metric-dynamic' | 'metric-availability'; readonly context: z.infer<typeof metricContextSchema> }
  | { readonly kind: 'log-search-v2' | 'log-search-simple'; readonly context: z.infer<typeof logQueryContextSchema> }
  | { readonly kind: 'log-search-v1'; readonly context: z.infer<typeof logSearchV1ContextSchema> }
  | { readonly kind: 'activity-log'; readonly context: z.infer<typeof activityLogContextSchema>; readonly category: string }
  | { readonly kind: 'service-health'; readonly context: z.infer<typeof activityLogContextSchema>; readonly incident: z.infer<typeof serviceHealthPropertiesSchema> }
  | { readonly kind: 'resource-health'; readonly context: z.infer<typeof activityLogContextSchema>; readonly health: z.infer<typeof resourceHealthPropertiesSchema> }
  | { readonly kind: 'smart-detection'; readonly context: z.infer<typeof smartDetectionContextSchema> }
  | { readonly kind: 'prometheus'; readonly context: z.infer<typeof prometheusContextSchema> }
  | { readonly kind: 'budget'; readonly context: z.infer<typeof budgetContextSchema> }
  | { readonly kind: 'unknown'; readonly context: Readonly<Record<string, unknown>> | null };

/** A metric (or log metric-measurement) condition of the alert, for rules that match by metric. */
export interface AlertMetric {
  readonly name: string;
  readonly namespace: string | undefined;
  readonly operator: string | undefined;
  readonly threshold: string | undefined;
  readonly value: number | undefined;
  readonly timeAggregation: string | undefined;
  readonly dimensions: readonly { readonly name: string; readonly value: string }[];
}

/** An alert as the autopilot reads it. */
export type ParsedAlert = AlertContext & {
  /**
   * The idempotency key: the alert id and the monitor condition. Action groups retry a
   * delivery, so the same key means the same notification; `Fired` and `Resolved` of one alert
   * are two keys.
   */
  readonly idempotencyKey: string;
  /** `essentials.alertId` as sent (the alert instance's ARM id). */
  readonly alertId: string;
  readonly monitorCondition: 'Fired' | 'Resolved';
  readonly alertRule: string | undefined;
  readonly alertRuleId: string | undefined;
  readonly severity: AlertSeverity | undefined;
  /** `Metric`, `Log` or `Activity Log` (`ActivityLog` is read as `Activity Log`); undefined when null. */
  readonly signalType: string | undefined;
  readonly monitoringService: string;
  readonly firedAt: Date;
  readonly resolvedAt: Date | undefined;
  readonly description: string | undefined;
  /** `alertTargetIDs` as ARM compares them (trimmed, no trailing slash, lower case), duplicates dropped. */
  readonly targets: readonly string[];
  /** `alertTargetIDs` as sent, for display. */
  readonly targetIds: readonly string[];
  readonly configurationItems: readonly string[];
  /** The metric conditions of a metric or log search alert (empty for other kinds). */
  readonly metrics: readonly AlertMetric[];
  readonly customProperties: Readonly<Record<string, string | number | boolean | null>>;
  /** The validated essentials, unknown fields included. */
  readonly essentials: z.infer<typeof essentialsSchema>;
};

/** The idempotency key of an alert notification: `alertId` (compared case-insensitively, as ARM ids are) and monitor condition. */
export function alertIdempotencyKey(alertId: string, monitorCondition: 'Fired' | 'Resolved'): string {
  return `${resourceIdKey(alertId)}|${monitorCondition}`;
}

/**
 * Reads and parses an alert webhook body.
 *
 * @param body the raw request body
 * @param options `contentType` of the request when known; `maxBytes` (default {@link MAX_ALERT_BODY_BYTES})
 * @throws {@link PayloadError} for a body that is too large, not JSON, not the common alert schema, or misses essentials
 */
export function parseAlertBody(body: string | Uint8Array | undefined, options: { contentType?: string | undefined; maxBytes?: number } = {}): ParsedAlert {
  return parseCommonAlert(readJsonBody(body, { what: WHAT, maxBytes: options.maxBytes ?? MAX_ALERT_BODY_BYTES, contentType: options.contentType }));
}

/**
 * Parses an already-decoded alert payload.
 *
 * @throws {@link PayloadError} naming each field that is not as the common alert schema says
 */
export function parseCommonAlert(payload: unknown): ParsedAlert {
  rejectOtherSchemas(payload);
  const envelope = envelopeSchema.safeParse(payload);
  if (!envelope.success) throw new PayloadError(WHAT, payloadIssues(envelope.error, payload));
  const { essentials, alertContext, customProperties } = envelope.data.data;
  const typed = typedContext(essentials.monitoringService, alertContext ?? null);
  const targetIds = (essentials.alertTargetIDs ?? []).map((id) => id.trim());
  return {
    ...typed,
    idempotencyKey: alertIdempotencyKey(essentials.alertId, essentials.monitorCondition),
    alertId: essentials.alertId,
    monitorCondition: essentials.monitorCondition,
    alertRule: essentials.alertRule ?? undefined,
    alertRuleId: essentials.alertRuleID ?? essentials.alertRuleId ?? undefined,
    severity: essentials.severity ?? undefined,
    signalType: normaliseSignalType(essentials.signalType),
    monitoringService: essentials.monitoringService,
    firedAt: new Date(essentials.firedDateTime),
    resolvedAt: essentials.resolvedDateTime == null ? undefined : new Date(essentials.resolvedDateTime),
    description: essentials.description ?? undefined,
    targets: [...new Set(targetIds.map(resourceIdKey))],
    targetIds,
    configurationItems: essentials.configurationItems ?? [],
    metrics: metricsOf(typed),
    customProperties: customProperties ?? {},
    essentials,
  };
}

/** Recognises the per-type webhook schemas and a missing `schemaId`, with advice in the error. */
function rejectOtherSchemas(payload: unknown): void {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new PayloadError(WHAT, [{ path: '', expected: `expected a JSON object with schemaId "${COMMON_ALERT_SCHEMA_ID}"`, found: Array.isArray(payload) ? 'a list' : JSON.stringify(payload) }]);
  }
  const schemaId = (payload as Record<string, unknown>).schemaId;
  if (typeof schemaId === 'string' && schemaId !== COMMON_ALERT_SCHEMA_ID) {
    const legacy = LEGACY_SCHEMAS[schemaId.toLowerCase()];
    throw new PayloadError(WHAT, [
      {
        path: 'schemaId',
        expected: `expected "${COMMON_ALERT_SCHEMA_ID}"${legacy === undefined ? '' : ` (this is ${legacy}: enable the common alert schema on the action group's webhook action, useCommonAlertSchema: true)`}`,
        found: JSON.stringify(schemaId.slice(0, 80)),
      },
    ]);
  }
}

/** How monitoring services are compared: case and spaces do not matter (`ResourceHealth` = `Resource Health`). */
const serviceKey = (service: string): string => service.toLowerCase().replace(/[\s_-]+/g, '');

function typedContext(monitoringService: string, context: Record<string, unknown> | null): AlertContext {
  const prefix = ['data', 'alertContext'];
  const read = <T>(schema: z.ZodType<T>, value: unknown = context, at: readonly PropertyKey[] = prefix): T => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new PayloadError(WHAT, contextIssues(parsed.error, value, at, monitoringService));
    return parsed.data;
  };
  const service = serviceKey(monitoringService);
  if (service === 'platform') {
    const metric = read(metricContextSchema);
    const kind = metric.conditionType === 'DynamicThresholdCriteria' ? 'metric-dynamic' : metric.conditionType === 'WebtestLocationAvailabilityCriteria' ? 'metric-availability' : 'metric-static';
    return { kind, context: metric };
  }
  if (service === 'logalertsv2') return { kind: 'log-search-v2', context: read(logQueryContextSchema) };
  if (service === 'simplelogalert') return { kind: 'log-search-simple', context: read(logQueryContextSchema) };
  if (service === 'loganalytics' || service === 'applicationinsights') return { kind: 'log-search-v1', context: read(logSearchV1ContextSchema) };
  if (service.startsWith('activitylog')) {
    const category = /^activity\s*log\s*-\s*(.+)$/i.exec(monitoringService.trim())?.[1]?.trim() ?? 'Administrative';
    return { kind: 'activity-log', context: read(activityLogContextSchema), category };
  }
  if (service === 'servicehealth') {
    const event = read(activityLogContextSchema);
    return { kind: 'service-health', context: event, incident: read(serviceHealthPropertiesSchema, event.properties, [...prefix, 'properties']) };
  }
  if (service === 'resourcehealth') {
    const event = read(activityLogContextSchema);
    return { kind: 'resource-health', context: event, health: read(resourceHealthPropertiesSchema, event.properties, [...prefix, 'properties']) };
  }
  if (service === 'smartdetector') return { kind: 'smart-detection', context: read(smartDetectionContextSchema) };
  if (service === 'prometheus') return { kind: 'prometheus', context: read(prometheusContextSchema) };
  if (service === 'costalerts') return { kind: 'budget', context: read(budgetContextSchema) };
  return { kind: 'unknown', context };
}

/** Context issues, each saying which alert type's context was expected. */
function contextIssues(error: z.ZodError, value: unknown, at: readonly PropertyKey[], monitoringService: string): PayloadIssue[] {
  return payloadIssues(error, value, at).map((issue) => ({ ...issue, expected: `${issue.expected} (the alert context of a "${monitoringService}" alert)` }));
}

function normaliseSignalType(signalType: string | null | undefined): string | undefined {
  if (signalType == null || signalType === '') return undefined;
  return signalType.replace(/\s+/g, '').toLowerCase() === 'activitylog' ? 'Activity Log' : signalType;
}

function metricsOf(typed: AlertContext): AlertMetric[] {
  const dimensions = (list: readonly { name: string; value: string }[] | null | undefined): { name: string; value: string }[] =>
    (list ?? []).map((dimension) => ({ name: dimension.name, value: dimension.value }));
  const threshold = (value: string | number | null | undefined): string | undefined => (value == null ? undefined : String(value));
  switch (typed.kind) {
    case 'metric-static':
    case 'metric-dynamic':
    case 'metric-availability':
      return typed.context.condition.allOf.map((criterion) => ({
        name: criterion.metricName,
        namespace: criterion.metricNamespace ?? undefined,
        operator: criterion.operator,
        threshold: threshold(criterion.threshold),
        value: criterion.metricValue ?? undefined,
        timeAggregation: criterion.timeAggregation,
        dimensions: dimensions(criterion.dimensions),
      }));
    case 'log-search-v2':
    case 'log-search-simple':
      return typed.context.condition.allOf.flatMap((criterion) =>
        criterion.metricMeasureColumn == null
          ? []
          : [
              {
                name: criterion.metricMeasureColumn,
                namespace: undefined,
                operator: criterion.operator ?? undefined,
                threshold: threshold(criterion.threshold),
                value: criterion.metricValue ?? undefined,
                timeAggregation: criterion.timeAggregation ?? undefined,
                dimensions: dimensions(criterion.dimensions),
              },
            ],
      );
    default:
      return [];
  }
}
