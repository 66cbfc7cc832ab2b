/**
 * The compiled deployment template, infra/main.json, as committed. `npm run infra:build`
 * regenerates it with the real Bicep CLI (and `.ci/run` fails when it is stale); these tests
 * need only Node, so they read the committed file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  callArguments,
  derivesFromParameters,
  expandVariables,
  loadMainTemplate,
  moduleTemplate,
  resourceAt,
  resourcesOfType,
  walkResources,
  type ArmTemplate,
} from '../../support/arm-template.ts';

const main = loadMainTemplate();

/** Built-in roles the app must never hold: they let it change access or anything at all. */
const FORBIDDEN_ROLES = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  'User Access Administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  'Role Based Access Control Administrator': 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
};

const props = (at: string): Record<string, unknown> => resourceAt(main, at).properties ?? {};

describe('role assignments', () => {
  const assignments = resourcesOfType(main, 'Microsoft.Authorization/roleAssignments');

  it('never name Owner, Contributor, User Access Administrator or RBAC Administrator anywhere in the template', () => {
    const text = JSON.stringify(main).toLowerCase();
    for (const [role, id] of Object.entries(FORBIDDEN_ROLES)) expect(text.includes(id), role).toBe(false);
  });

  it('exist, each named guid(scope, principal, role) with an explicit principalType', () => {
    expect(assignments.length).toBeGreaterThanOrEqual(12);
    for (const { path: at, resource, template } of assignments) {
      // A module names its assignment once, in a variable.
      const name = /^\[variables\('[^']+'\)\]$/.test(resource.name) ? expandVariables(resource.name, template) : resource.name;
      expect(name, at).toMatch(/^\[guid\(/);
      const args = callArguments(name, 'guid');
      expect(args, `${at}: ${name}`).toHaveLength(3);
      // The principal is the identity (its resource id, known before deployment), the role the
      // role definition the assignment grants.
      expect(args[1], at).toMatch(/principalResourceId|userAssignedIdentities/);
      expect(args[2], at).toMatch(/roleDefinitionGuid|builtInRoles/);
      const properties = (typeof resource.properties === 'string' ? template.variables?.[/variables\('([^']+)'\)/.exec(resource.properties)![1]!] : resource.properties) as Record<string, unknown>;
      expect(properties.principalType, at).toBe('ServicePrincipal');
      expect(expandVariables(String(properties.roleDefinitionId), template), at).toMatch(/subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions'/);
    }
  });

  it('on the estate: scope and name come from the template parameters, never from a literal', () => {
    const estate = assignments.filter((a) => a.path.includes('/'));
    expect(estate.length).toBeGreaterThan(8);
    for (const { path: at, resource, template } of estate) {
      expect(derivesFromParameters(resource.name, template), at).toBe(true);
      // A nested template written as language version 1.0 names the scope by resource id, a
      // 2.0 one by the symbolic name of an `existing` resource.
      expect(resource.scope, `${at} has a scope or is the resource group itself`).toSatisfy(
        (scope: string | undefined) => scope === undefined || derivesFromParameters(scope, template) || derivesFromParameters(resourceAt(template, scope).name, template),
      );
    }
  });

  it('deploy their modules only to subscriptions and resource groups the parameters name', () => {
    for (const { path: at, resource, template } of resourcesOfType(main, 'Microsoft.Resources/deployments')) {
      for (const field of ['subscriptionId', 'resourceGroup'] as const) {
        const value = resource[field];
        if (value === undefined || value === '[subscription().subscriptionId]') continue;
        expect(typeof value === 'string' && derivesFromParameters(value, template), `${at}.${field} = ${value}`).toBe(true);
      }
    }
  });

  it('give the custom PostgreSQL drill role, the only one with a delete right, to the drill resource group alone', () => {
    const roles = moduleTemplate(main, 'postgresRoles');
    const definitions = resourcesOfType(roles, 'Microsoft.Authorization/roleDefinitions');
    expect(definitions).toHaveLength(2);
    const actions = (d: (typeof definitions)[number]): string[] =>
      [...expandVariables(JSON.stringify(d.resource.properties?.permissions), roles).matchAll(/Microsoft\.[A-Za-z./*]+/g)].map((m) => m[0]);
    const withDelete = definitions.filter((d) => actions(d).some((a) => /delete$|\/\*$/i.test(a)));
    expect(withDelete.map((d) => d.path)).toEqual(['drill']);
    expect(withDelete[0]!.resource.properties?.assignableScopes).toEqual(["[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('drillResourceGroupName'))]"]);
    const operator = definitions.find((d) => d.path === 'operator')!;
    expect(actions(operator)).toEqual(expect.arrayContaining(['Microsoft.DBforPostgreSQL/flexibleServers/restart/action', 'Microsoft.DBforPostgreSQL/flexibleServers/write']));
    expect(actions(operator).some((a) => a.endsWith('/*') || a.endsWith('/delete'))).toBe(false);
    expect(actions(withDelete[0]!)).toContain('Microsoft.DBforPostgreSQL/flexibleServers/delete');
    // The drill role is assigned on the drill group, never on a scope from the estate.
    expect((resourceAt(main, 'drillRole').properties?.parameters as Record<string, { value: string }>).roleDefinitionGuid!.value).toBe("[variables('postgresDrillRole')]");
  });

  it('name each role by a role definition id kept in one table, with no wildcard roles', () => {
    const roles = main.variables?.builtInRoles as Record<string, string>;
    expect(Object.keys(roles)).toContain('WebsiteContributor');
    for (const id of Object.values(roles)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const types = readFileSync('infra/types.bicep', 'utf8');
    for (const role of Object.keys(roles).filter((r) => !/^Storage(BlobDataOwner|QueueDataContributor)$|^MonitoringMetricsPublisher$/.test(r))) {
      expect(types, `roleName in types.bicep lists ${role}`).toContain(`'${role}'`);
    }
  });
});

describe('the Function App', () => {
  const app = props('app');
  const siteConfig = app.siteConfig as Record<string, unknown>;
  const functionAppConfig = app.functionAppConfig as { runtime: unknown; deployment: { storage: { authentication: { type: string } } } };

  it('runs on Flex Consumption, Linux, Node 22, with a user-assigned identity only', () => {
    expect(resourceAt(main, 'plan').sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
    expect(resourceAt(main, 'app').kind).toBe('functionapp,linux');
    expect(functionAppConfig.runtime).toEqual({ name: 'node', version: '22' });
    expect((resourceAt(main, 'app').identity as { type: string }).type).toBe('UserAssigned');
    expect(functionAppConfig.deployment.storage.authentication.type).toBe('UserAssignedIdentity');
  });

  it('answers only HTTPS, TLS 1.2 and up, with FTP and basic publishing credentials off', () => {
    expect(app.httpsOnly).toBe(true);
    expect(siteConfig.minTlsVersion).toBe('1.2');
    expect(siteConfig.scmMinTlsVersion).toBe('1.2');
    expect(siteConfig.ftpsState).toBe('Disabled');
    expect(siteConfig.cors).toBeUndefined();
    expect(props('ftpCredentials')).toEqual({ allow: false });
    expect(props('scmCredentials')).toEqual({ allow: false });
  });

  it('reaches its storage with its identity: no shared keys, no connection string, no public blobs', () => {
    const storage = props('storage');
    expect(storage).toMatchObject({
      allowSharedKeyAccess: false,
      allowBlobPublicAccess: false,
      minimumTlsVersion: 'TLS1_2',
      supportsHttpsTrafficOnly: true,
      defaultToOAuthAuthentication: true,
    });
    const settings = Object.fromEntries((siteConfig.appSettings as { name: string; value: string }[]).map((s) => [s.name, s.value]));
    expect(settings.AzureWebJobsStorage__credential).toBe('managedidentity');
    expect(settings.AzureWebJobsStorage).toBeUndefined();
    expect(JSON.stringify(main)).not.toMatch(/listKeys\([^)]*storageAccounts|AccountKey=/);
    // Flex Consumption sets the runtime in functionAppConfig and refuses these settings.
    for (const refused of ['FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_EXTENSION_VERSION', 'WEBSITE_RUN_FROM_PACKAGE', 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING']) {
      expect(settings[refused], refused).toBeUndefined();
    }
  });

  it('sends telemetry to Application Insights with local authentication disabled, as its identity', () => {
    expect(props('appInsights').DisableLocalAuth).toBe(true);
    expect((props('workspace').features as { disableLocalAuth: boolean }).disableLocalAuth).toBe(true);
    const settings = (siteConfig.appSettings as { name: string; value: string }[]).map((s) => s.name);
    expect(settings).toEqual(expect.arrayContaining(['APPLICATIONINSIGHTS_CONNECTION_STRING', 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING']));
  });

  it('has the blob containers and tables the app uses', () => {
    expect(main.variables?.tables).toEqual(['guardrails', 'drillhistory', 'rotations']);
    for (const name of ['runRecordsContainer', 'keyVaultBackupsContainer', 'deadLetterContainer']) expect(main.variables?.[name]).toBeTypeOf('string');
    expect([main.variables?.runRecordsContainer, main.variables?.keyVaultBackupsContainer, main.variables?.deadLetterContainer]).toEqual([
      'autopilot-runs',
      'keyvault-backups',
      'eventgrid-deadletter',
    ]);
  });
});

describe('alert rules', () => {
  const web = moduleTemplate(main, 'webAppAlerts');
  const container = moduleTemplate(main, 'containerAppAlerts');
  const defaults = (t: ArmTemplate): unknown => t.parameters?.defaults?.defaultValue;

  it('default to the thresholds of the seeds: 004 and 000 for web apps, 001 for container apps', () => {
    expect(defaults(web)).toEqual({ healthFailingMinutes: 2, http5xxPercent: 5, p95Milliseconds: 1000, cpuPercent: 80, memoryPercent: 80 });
    expect(defaults(container)).toEqual({ http5xxPercent: 1, p95Milliseconds: 2000, restartsIn10Minutes: 2, cpuPercent: 80, memoryPercent: 80 });
  });

  it('measure what the seed says over the window it says', () => {
    const rule = (t: ArmTemplate, name: string): Record<string, unknown> => resourceAt(t, name).properties ?? {};
    const criterion = (r: Record<string, unknown>): Record<string, unknown> => (r.criteria as { allOf: Record<string, unknown>[] }).allOf[0]!;
    expect(rule(web, 'errors').windowSize).toBe('PT5M');
    expect(criterion(rule(web, 'errors')).query).toMatch(/ScStatus >= 500/);
    expect(criterion(rule(web, 'errors')).threshold).toBe("[variables('thresholds').http5xxPercent]");
    expect(criterion(rule(web, 'latency')).query).toMatch(/percentile\(TimeTaken, 95\)/);
    expect(rule(web, 'latency').windowSize).toBe('PT5M');
    // Failing for more than N minutes: N+1 consecutive one-minute windows.
    expect(rule(web, 'health').windowSize).toBe('PT1M');
    expect(criterion(rule(web, 'health')).failingPeriods).toEqual({
      numberOfEvaluationPeriods: "[add(variables('thresholds').healthFailingMinutes, 1)]",
      minFailingPeriodsToAlert: "[add(variables('thresholds').healthFailingMinutes, 1)]",
    });
    expect(rule(container, 'restarts').windowSize).toBe('PT10M');
    expect(criterion(rule(container, 'errors')).query).toMatch(/toint\(resultCode\) >= 500/);
    expect(criterion(rule(container, 'latency')).query).toMatch(/percentile\(duration, 95\)/);
    for (const [t, name, metric] of [
      [web, 'cpu', 'CpuPercentage'],
      [web, 'memory', 'MemoryPercentage'],
      [container, 'cpu', 'CpuPercentage'],
      [container, 'memory', 'MemoryPercentage'],
    ] as const) {
      const c = criterion(rule(t, name));
      expect(c.metricName).toBe(metric);
      expect(c.operator).toBe('GreaterThan');
      expect(rule(t, name).windowSize).toBe('PT15M');
    }
  });

  it('all fire the one action group, which calls POST /api/alerts with a function key and the common alert schema', () => {
    for (const t of [web, container]) {
      for (const { path: at, resource } of walkResources(t)) {
        const groups = JSON.stringify((resource.properties as { actions?: unknown }).actions);
        expect(groups, at).toMatch(/actionGroupId/);
      }
    }
    const receivers = props('actionGroup').webhookReceivers as { serviceUri: string; useCommonAlertSchema: boolean }[];
    expect(receivers).toHaveLength(1);
    expect(receivers[0]!.useCommonAlertSchema).toBe(true);
    expect(receivers[0]!.serviceUri).toMatch(/^\[format\('https:\/\/\{0\}\/api\/alerts\?code=\{1\}'/);
    expect(receivers[0]!.serviceUri).toContain("listKeys('alertsFunction'");
  });
});

describe('Event Grid', () => {
  const source = moduleTemplate(main, 'keyVaultEvents');
  const subscription = resourceAt(source, 'subscription').properties ?? {};

  it('delivers to the Event Grid trigger with retries and dead-lettering to the app\'s container', () => {
    expect((subscription.destination as { endpointType: string }).endpointType).toBe('AzureFunction');
    expect(subscription.retryPolicy).toEqual({ maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 });
    expect(JSON.stringify(subscription.deadLetterWithResourceIdentity)).toMatch(/StorageBlob/);
    expect(((resourceAt(source, 'topic').identity as { type: string }).type)).toBe('UserAssigned');
  });

  it('subscribes each kind of source to the events the issue names', () => {
    const events = (at: string): unknown => (resourceAt(main, at).properties?.parameters as Record<string, { value: unknown }>).includedEventTypes!.value;
    expect(events('keyVaultEvents')).toEqual(['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired']);
    expect(events('webAppEvents')).toEqual(['Microsoft.Web.SlotSwapCompleted', 'Microsoft.Web.SlotSwapFailed']);
    expect(events('containerAppEvents')).toEqual(['Microsoft.Resources.ResourceWriteSuccess']);
    const filters = resourceAt(main, 'containerAppEvents').properties?.parameters as Record<string, { value: unknown }>;
    expect(filters.operationNames!.value).toEqual(['Microsoft.App/containerApps/write']);
  });
});

describe('Bicep sources', () => {
  const sources = ['infra/main.bicep', 'infra/types.bicep', ...readdirSync('infra/modules').map((f) => path.join('infra/modules', f))];

  it('suppress a linter rule only with a reason on the line above or after it', () => {
    for (const file of sources) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!line.includes('#disable-next-line')) return;
        const reasoned = /\/\/ \S/.test(line) || /^\s*\/\/ \S/.test(lines[i - 1] ?? '');
        expect(reasoned, `${file}:${i + 1}: ${line.trim()}`).toBe(true);
      });
    }
  });

  it('make every linter rule an error in bicepconfig.json', () => {
    const config = JSON.parse(readFileSync('infra/bicepconfig.json', 'utf8')) as { analyzers: { core: { enabled: boolean; rules: Record<string, { level: string }> } } };
    expect(config.analyzers.core.enabled).toBe(true);
    const levels = new Set(Object.values(config.analyzers.core.rules).map((r) => r.level));
    expect([...levels]).toEqual(['error']);
    expect(Object.keys(config.analyzers.core.rules).length).toBeGreaterThan(30);
  });
});
