/**
 * The common alert schema parser: every published alert type from Microsoft's samples
 * (test/fixtures/alerts), and a corpus of bad payloads (not JSON, too large, another schema,
 * missing essentials, a malformed context) that each fail with what was expected and what was
 * found. ARM ids compare case-insensitively; the idempotency key is alertId + monitorCondition.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alertIdempotencyKey, MAX_ALERT_BODY_BYTES, parseAlertBody, parseCommonAlert, type ParsedAlert } from '../../../src/alerts/common-alert-schema.ts';
import { sameResourceId } from '../../../src/azure/resource-id.ts';
import { payloadErrorOf } from '../../support/payload.ts';

const FIXTURES = new URL('../../fixtures/alerts/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const json = (name: string): Record<string, unknown> => JSON.parse(fixture(name)) as Record<string, unknown>;


/** A deep copy of a fixture with one change applied. */
function variant(name: string, change: (payload: { data: { essentials: Record<string, unknown>; alertContext: Record<string, unknown> } }) => void): unknown {
  const payload = json(name) as { data: { essentials: Record<string, unknown>; alertContext: Record<string, unknown> } };
  change(payload);
  return payload;
}

describe('every published alert type parses', () => {
  const expectations: Record<string, { kind: ParsedAlert['kind']; signalType: string | undefined }> = {
    'metric-static.json': { kind: 'metric-static', signalType: 'Metric' },
    'metric-static-resolved.json': { kind: 'metric-static', signalType: 'Metric' },
    'metric-dynamic.json': { kind: 'metric-dynamic', signalType: 'Metric' },
    'metric-availability.json': { kind: 'metric-availability', signalType: 'Metric' },
    'log-search-v2.json': { kind: 'log-search-v2', signalType: 'Log' },
    'log-search-simple.json': { kind: 'log-search-simple', signalType: 'Log' },
    'log-search-v1-log-analytics.json': { kind: 'log-search-v1', signalType: 'Log' },
    'log-search-v1-application-insights.json': { kind: 'log-search-v1', signalType: 'Log' },
    'activity-log-administrative.json': { kind: 'activity-log', signalType: 'Activity Log' },
    'activity-log-policy.json': { kind: 'activity-log', signalType: 'Activity Log' },
    'activity-log-autoscale.json': { kind: 'activity-log', signalType: 'Activity Log' },
    'activity-log-security.json': { kind: 'activity-log', signalType: 'Activity Log' },
    'service-health.json': { kind: 'service-health', signalType: 'Activity Log' },
    'service-health-maintenance.json': { kind: 'service-health', signalType: 'Activity Log' },
    'resource-health.json': { kind: 'resource-health', signalType: 'Activity Log' },
    'smart-detection.json': { kind: 'smart-detection', signalType: 'Log' },
    'prometheus.json': { kind: 'prometheus', signalType: 'Metric' },
    'budget.json': { kind: 'budget', signalType: undefined },
  };

  it('covers every fixture', () => {
    expect(readdirSync(FIXTURES).filter((file) => file.endsWith('.json')).sort()).toEqual(Object.keys(expectations).sort());
  });

  for (const [file, expected] of Object.entries(expectations)) {
    it(`${file}: ${expected.kind}`, () => {
      const alert = parseAlertBody(fixture(file), { contentType: 'application/json; charset=utf-8' });
      expect(alert.kind).toBe(expected.kind);
      expect(alert.signalType).toBe(expected.signalType);
      expect(alert.idempotencyKey).toBe(alertIdempotencyKey(alert.alertId, alert.monitorCondition));
      expect(alert.firedAt.getTime()).not.toBeNaN();
    });
  }

  it('reads a static metric alert: target, rule, severity, metric and custom properties', () => {
    const alert = parseAlertBody(fixture('metric-static.json'));
    expect(alert).toMatchObject({
      kind: 'metric-static',
      monitorCondition: 'Fired',
      alertRule: 'test-metricAlertRule',
      severity: 'Sev4',
      monitoringService: 'Platform',
      resolvedAt: undefined,
      customProperties: { customKey1: 'value1', customKey2: 'value2' },
    });
    expect(alert.metrics).toEqual([
      { name: 'Transactions', namespace: 'Microsoft.Storage/storageAccounts', operator: 'GreaterThan', threshold: '0', value: 100, timeAggregation: 'Total', dimensions: [{ name: 'ApiName', value: 'GetBlob' }] },
    ]);
    expect(alert.firedAt.toISOString()).toBe('2025-04-15T18:17:12.851Z');
  });

  it('reads a resolved alert with seven fractional digits and the rule id', () => {
    const alert = parseAlertBody(fixture('metric-static-resolved.json'));
    expect(alert.monitorCondition).toBe('Resolved');
    expect(alert.resolvedAt?.toISOString()).toBe('2019-03-22T14:03:16.224Z');
    expect(alert.alertRuleId).toMatch(/metricAlerts\/WCUS-R2-Gen2$/);
    expect(alert.metrics[0]).toMatchObject({ name: 'Percentage CPU', threshold: '25', value: 7.727 });
  });

  it('reads dynamic thresholds, log search v2, resource health and service health details', () => {
    const dynamic = parseAlertBody(fixture('metric-dynamic.json'));
    if (dynamic.kind !== 'metric-dynamic') throw new Error(`expected metric-dynamic, found ${dynamic.kind}`);
    expect(dynamic.context.condition.allOf[0]).toMatchObject({ alertSensitivity: 'Low', failingPeriods: { numberOfEvaluationPeriods: 3, minFailingPeriodsToAlert: 3 } });
    const log = parseAlertBody(fixture('log-search-v2.json'));
    if (log.kind !== 'log-search-v2') throw new Error(`expected log-search-v2, found ${log.kind}`);
    expect(log.context.condition.allOf[0]?.searchQuery).toBe('Heartbeat');
    expect(log.metrics).toEqual([]);
    const health = parseAlertBody(fixture('resource-health.json'));
    if (health.kind !== 'resource-health') throw new Error(`expected resource-health, found ${health.kind}`);
    expect(health.health).toMatchObject({ currentHealthStatus: 'Unavailable', previousHealthStatus: 'Available', cause: 'UserInitiated' });
    const service = parseAlertBody(fixture('service-health-maintenance.json'));
    if (service.kind !== 'service-health') throw new Error(`expected service-health, found ${service.kind}`);
    expect(service.incident).toMatchObject({ incidentType: 'Maintenance', service: 'Azure Synapse Analytics', stage: 'Planned' });
    const activity = parseAlertBody(fixture('activity-log-autoscale.json'));
    expect(activity.kind === 'activity-log' ? activity.category : undefined).toBe('Autoscale');
  });

  it('accepts an alert type it does not know as kind unknown, and a budget alert without targets', () => {
    const unknown = parseCommonAlert(variant('metric-static.json', (payload) => {
      payload.data.essentials.monitoringService = 'Some Future Service';
      payload.data.alertContext = { anything: true };
    }));
    expect(unknown).toMatchObject({ kind: 'unknown', context: { anything: true } });
    const budget = parseAlertBody(fixture('budget.json'));
    expect(budget).toMatchObject({ kind: 'budget', targets: [], alertRule: undefined, severity: undefined });
  });
});

describe('ARM ids and the idempotency key', () => {
  it('normalises alertTargetIDs as ARM compares them, dropping duplicates', () => {
    const alert = parseCommonAlert(
      variant('metric-static.json', (payload) => {
        payload.data.essentials.alertTargetIDs = [
          '/subscriptions/AAAA0A0A-BB1B-CC2C-DD3D-EEEEEE4E4E4E/resourceGroups/Test-RG/providers/Microsoft.Storage/storageAccounts/Test-StorageAccount/',
          '/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.storage/storageaccounts/test-storageaccount',
        ];
      }),
    );
    expect(alert.targets).toEqual(['/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.storage/storageaccounts/test-storageaccount']);
    expect(alert.targetIds).toHaveLength(2);
    expect(sameResourceId(alert.targets[0] ?? '', '/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount')).toBe(true);
  });

  it('keys by alertId and monitor condition: retries share a key, Fired and Resolved do not, case does not matter', () => {
    const fired = parseAlertBody(fixture('metric-static.json'));
    const again = parseAlertBody(fixture('metric-static.json'));
    const resolved = parseCommonAlert(variant('metric-static.json', (payload) => {
      payload.data.essentials.monitorCondition = 'Resolved';
    }));
    const upper = parseCommonAlert(variant('metric-static.json', (payload) => {
      payload.data.essentials.alertId = String(payload.data.essentials.alertId).toUpperCase();
    }));
    expect(again.idempotencyKey).toBe(fired.idempotencyKey);
    expect(resolved.idempotencyKey).not.toBe(fired.idempotencyKey);
    expect(upper.idempotencyKey).toBe(fired.idempotencyKey);
    expect(fired.idempotencyKey).toBe('/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/microsoft.alertsmanagement/alerts/eeeeeeee-4444-5555-6666-ffffffffffff|Fired');
  });
});

describe('bad payloads fail with what was expected and what was found', () => {
  const cases: { name: string; body: () => string | Uint8Array | undefined; contentType?: string; path: string; expected: RegExp; found: RegExp }[] = [
    { name: 'no body', body: () => undefined, path: '', expected: /expected a JSON body/, found: /no body/ },
    { name: 'an empty body', body: () => '', path: '', expected: /expected a JSON body/, found: /empty/ },
    { name: 'not JSON', body: () => '<html>hello</html>', path: '', expected: /expected a JSON body/, found: /not JSON.*"<html>hello<\/html>"/ },
    { name: 'truncated JSON', body: () => fixture('metric-static.json').slice(0, 200), path: '', expected: /expected a JSON body/, found: /not JSON/ },
    { name: 'not UTF-8', body: () => Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]), path: '', expected: /UTF-8/, found: /not UTF-8/ },
    { name: 'a form post', body: () => 'a=1', contentType: 'application/x-www-form-urlencoded', path: '', expected: /content-type application\/json/, found: /x-www-form-urlencoded/ },
    { name: 'too large', body: () => JSON.stringify({ ...json('metric-static.json'), padding: 'x'.repeat(MAX_ALERT_BODY_BYTES) }), path: '', expected: /at most 524288 bytes/, found: /\d+ bytes/ },
    { name: 'a JSON list', body: () => '[1,2]', path: '', expected: /JSON object with schemaId/, found: /a list/ },
    { name: 'the legacy metric alert schema', body: () => JSON.stringify({ schemaId: 'AzureMonitorMetricAlert', data: {} }), path: 'schemaId', expected: /useCommonAlertSchema/, found: /"AzureMonitorMetricAlert"/ },
    { name: 'no schemaId', body: () => JSON.stringify({ data: json('metric-static.json').data }), path: 'schemaId', expected: /azureMonitorCommonAlertSchema/, found: /nothing/ },
    {
      name: 'missing essentials',
      body: () => JSON.stringify({ schemaId: 'azureMonitorCommonAlertSchema', data: { alertContext: {} } }),
      path: 'data.essentials',
      expected: /expected a mapping/,
      found: /nothing/,
    },
    {
      name: 'no alertId',
      body: () => JSON.stringify(variant('metric-static.json', (payload) => { delete payload.data.essentials.alertId; })),
      path: 'data.essentials.alertId',
      expected: /expected a string/,
      found: /nothing/,
    },
    {
      name: 'an unknown monitor condition',
      body: () => JSON.stringify(variant('metric-static.json', (payload) => { payload.data.essentials.monitorCondition = 'Open'; })),
      path: 'data.essentials.monitorCondition',
      expected: /"Fired", "Resolved"/,
      found: /"Open"/,
    },
    {
      name: 'a target that is not an ARM id',
      body: () => JSON.stringify(variant('metric-static.json', (payload) => { payload.data.essentials.alertTargetIDs = ['storage-account-1']; })),
      path: 'data.essentials.alertTargetIDs[0]',
      expected: /ARM resource ID/,
      found: /"storage-account-1"/,
    },
    {
      name: 'a fired time that is not a time',
      body: () => JSON.stringify(variant('metric-static.json', (payload) => { payload.data.essentials.firedDateTime = 'yesterday'; })),
      path: 'data.essentials.firedDateTime',
      expected: /datetime/,
      found: /"yesterday"/,
    },
    {
      name: 'a metric alert without criteria',
      body: () => JSON.stringify(variant('metric-static.json', (payload) => { payload.data.alertContext.condition = { windowSize: 'PT5M', allOf: [] }; })),
      path: 'data.alertContext.condition.allOf',
      expected: /at least 1 item.*"Platform" alert/,
      found: /a list of 0 items/,
    },
    {
      name: 'a metric name that is a number',
      body: () =>
        JSON.stringify(variant('metric-static.json', (payload) => {
          (payload.data.alertContext as { condition: { allOf: Record<string, unknown>[] } }).condition.allOf[0]!.metricName = 42;
        })),
      path: 'data.alertContext.condition.allOf[0].metricName',
      expected: /expected a string/,
      found: /42/,
    },
    {
      name: 'a resource health alert without its health change',
      body: () => JSON.stringify(variant('resource-health.json', (payload) => { payload.data.alertContext.properties = { title: 'x' }; })),
      path: 'data.alertContext.properties.currentHealthStatus',
      expected: /"Resource Health" alert/,
      found: /nothing/,
    },
  ];

  for (const entry of cases) {
    it(entry.name, () => {
      const error = payloadErrorOf(() => parseAlertBody(entry.body(), entry.contentType === undefined ? {} : { contentType: entry.contentType }));
      const [issue] = error.issues;
      expect(issue?.path).toBe(entry.path);
      expect(issue?.expected).toMatch(entry.expected);
      expect(issue?.found).toMatch(entry.found);
      expect(error.message).toMatch(/^invalid alert: /);
      expect(error.toResponseBody('InvalidAlertPayload').error).toMatchObject({ code: 'InvalidAlertPayload', issues: error.issues });
    });
  }

  it('reports every bad essential at once', () => {
    const error = payloadErrorOf(() =>
      parseCommonAlert(variant('metric-static.json', (payload) => {
        payload.data.essentials.monitorCondition = 'Open';
        payload.data.essentials.severity = 'Critical';
        delete payload.data.essentials.firedDateTime;
      })),
    );
    expect(error.issues.map((issue) => issue.path).sort()).toEqual(['data.essentials.firedDateTime', 'data.essentials.monitorCondition', 'data.essentials.severity']);
    expect(error.message).toContain('(and 2 more)');
  });

  it('does not echo secret-looking values it found', () => {
    const error = payloadErrorOf(() =>
      parseCommonAlert(variant('metric-static.json', (payload) => {
        payload.data.essentials.alertRule = { password: 'hunter2-canary' };
        payload.data.essentials.alertTargetIDs = ['AccountKey=c2VjcmV0LWNhbmFyeS12YWx1ZQ=='];
      })),
    );
    expect(JSON.stringify(error.issues)).not.toContain('hunter2-canary');
    expect(JSON.stringify(error.issues)).not.toContain('c2VjcmV0LWNhbmFyeS12YWx1ZQ');
  });
});
