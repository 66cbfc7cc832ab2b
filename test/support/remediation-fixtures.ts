/**
 * Test helpers for remediation rules and guardrails: alert payloads in the common alert schema
 * aimed at a chosen resource, and a small estate with remediation rules.
 */
import { readFileSync } from 'node:fs';
import { parseCommonAlert, type ParsedAlert } from '../../src/alerts/common-alert-schema.ts';
import { parse } from 'yaml';
import { RUN_RECORDS_ACCOUNT } from '../../sandbox/engine/estate-config.ts';
import type { SandboxHandle } from '../../sandbox/index.ts';
import { parseConfigText, validateConfig } from '../../src/config/load.ts';
import type { EstateConfig } from '../../src/config/schema.ts';

export const SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
export const SITE = `/subscriptions/${SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/sites/app-kilometers-api-k7x2`;
export const PG = `/subscriptions/${SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-kilometers-prod-k7x2`;
export const APP = `/subscriptions/${SUB}/resourceGroups/rg-kilometers-prod/providers/Microsoft.App/containerApps/ca-kilometers-worker`;
export const FOREIGN = `/subscriptions/${SUB}/resourceGroups/rg-other/providers/Microsoft.Web/sites/app-someone-else`;

/** A metric alert (common alert schema, as an action group posts it) as raw JSON. */
export function alertPayload(options: { id?: string; targets?: readonly string[]; rule?: string; metric?: string; severity?: string; condition?: 'Fired' | 'Resolved' } = {}): Record<string, unknown> {
  const payload = JSON.parse(readFileSync('test/fixtures/alerts/metric-static.json', 'utf8')) as { data: { essentials: Record<string, unknown>; alertContext: { condition: { allOf: Record<string, unknown>[] } } } };
  const essentials = payload.data.essentials;
  essentials.alertId = `/subscriptions/${SUB}/providers/Microsoft.AlertsManagement/alerts/${options.id ?? '00000000-0000-4000-8000-000000000001'}`;
  essentials.alertTargetIDs = [...(options.targets ?? [SITE])];
  essentials.alertRule = options.rule ?? 'Kilometers API down';
  essentials.severity = options.severity ?? 'Sev1';
  essentials.monitorCondition = options.condition ?? 'Fired';
  if (options.condition === 'Resolved') essentials.resolvedDateTime = '2026-12-02T01:10:00Z';
  const first = payload.data.alertContext.condition.allOf[0];
  if (first !== undefined) first.metricName = options.metric ?? 'HealthCheckStatus';
  return payload;
}

/** {@link alertPayload}, parsed. */
export function alert(options: Parameters<typeof alertPayload>[0] = {}): ParsedAlert {
  return parseCommonAlert(alertPayload(options));
}

/** The remediation part of the Kilometers example, in a config of its own. */
export const REMEDIATION_ESTATE_YAML = `version: 1
estate: kilometers
dryRun: false
state:
  tableServiceUrl: https://127.0.0.1:10002/devstoreaccount1
notifications:
  webhooks:
    - name: oncall
      url: https://127.0.0.1:9/oncall
remediation:
  breaker: { failures: 2, coolOffMinutes: 60 }
  caps: { perTargetActionPerHour: 1, perTargetActionPerDay: 3, perEstatePerDay: 5 }
  escalate: { notify: [oncall] }
targets:
  - id: ${SITE}
    health: { path: /health }
    remediation:
      cooldown: { minutes: 10, maxMinutes: 80, resetAfterHealthyMinutes: 60 }
      rules:
        - name: api-down
          match: { alertRule: Kilometers API down }
          ladder:
            - action: restart
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
            - action: swap-back
              params: { withinMinutes: 120 }
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
        - name: high-memory
          match: { metricName: MemoryPercentage }
          ladder:
            - action: scale-out
              params: { maxWorkers: 2 }
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
            - action: scale-up
              params: { skus: [P1V2] }
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
        - name: bad-swap
          match: { eventType: Microsoft.Web.SlotSwapCompleted }
          watch: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 600 }
          ladder:
            - action: swap-back
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
  - id: ${PG}
    remediation: off
  - id: ${APP}
`;

/** {@link REMEDIATION_ESTATE_YAML} parsed, with `change` applied to the text first. */
export function remediationEstate(change: (text: string) => string = (text) => text): EstateConfig {
  return parseConfigText(change(REMEDIATION_ESTATE_YAML), { source: 'remediation-estate.yaml' });
}

/** The same estate pointed at a running sandbox (its credential, CA and Azurite tables). */
export function sandboxRemediationEstate(sandbox: SandboxHandle, change: (text: string) => string = (text) => text): EstateConfig {
  const data = parse(change(REMEDIATION_ESTATE_YAML)) as Record<string, unknown>;
  const tables = sandbox.azurite?.tableEndpoint;
  if (tables === undefined) throw new Error('the sandbox runs without Azurite');
  data.azure = sandbox.azureSettings();
  data.state = { tableServiceUrl: `${tables}/${RUN_RECORDS_ACCOUNT}` };
  return validateConfig(data, 'remediation-estate.yaml');
}
