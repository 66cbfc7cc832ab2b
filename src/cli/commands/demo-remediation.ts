/**
 * The alert remediation part of `npm run demo`: for a seed estate whose config has a ladder that
 * ends in a rollback (xshopai: service down → restart the revision → roll back), the app on the
 * local host (the product's entry point, so its production remediation binding) receives an Azure
 * Monitor Resource Health alert on `POST /api/alerts` with its function key, exactly as an action
 * group sends it. The sandbox makes the serving image bad wherever it runs, so the restart does
 * not help and the rollback to the previous revision does. Then a storm: 100 alerts with
 * different ids for another app within a minute, of which at most one may act.
 *
 * Development tooling: the sandbox and the local host are not part of an installed CLI.
 */
import { fileURLToPath } from 'node:url';
import type { SandboxHandle } from '../../../sandbox/index.ts';
import type { EstateConfig, TargetConfig } from '../../config/schema.ts';
import type { CliIo } from '../output.ts';

/** A target with a remediation rule whose ladder has `action`, and that rule's name. */
function targetWith(config: EstateConfig, action: string, except?: string): { target: TargetConfig; rule: string } | undefined {
  for (const target of config.targets) {
    if (target.id === except || target.remediation === undefined || target.remediation === 'off') continue;
    const rule = target.remediation.rules.find((candidate) => candidate.match.monitoringService !== undefined && candidate.ladder.some((rung) => rung.action === action));
    if (rule !== undefined) return { target, rule: rule.name };
  }
  return undefined;
}

/** Whether the estate has what the remediation demo shows (a Resource Health rule that rolls back, and another app to storm). */
export function remediationDemoTargets(config: EstateConfig): { rollback: TargetConfig; storm: TargetConfig } | undefined {
  const rollback = targetWith(config, 'rollback');
  if (rollback === undefined) return undefined;
  const storm = targetWith(config, 'restart', rollback.target.id);
  return storm === undefined ? undefined : { rollback: rollback.target, storm: storm.target };
}

async function sandboxPost(sandbox: SandboxHandle, path: string, body: unknown): Promise<void> {
  // Imported when used: an installed CLI has no sandbox.
  const { controlRequest } = await import('../../../sandbox/index.ts');
  await controlRequest({ baseUrl: sandbox.baseUrl, caPem: sandbox.caPem, method: 'POST', path, body });
}

let alertCount = 0;

/** A common-schema Resource Health alert (`Unavailable`) for `target`, as an action group posts it. */
function resourceHealthAlert(target: TargetConfig, now: Date): Record<string, unknown> {
  alertCount += 1;
  const subscription = target.id.split('/')[2] ?? '';
  const name = target.id.split('/').pop() ?? target.id;
  const suffix = `${String(now.getTime()).slice(-8)}${String(alertCount).padStart(4, '0')}`;
  return {
    schemaId: 'azureMonitorCommonAlertSchema',
    data: {
      essentials: {
        alertId: `/subscriptions/${subscription}/providers/Microsoft.AlertsManagement/alerts/00000000-0000-4000-8000-${suffix}`,
        alertRule: `${name}-resource-health`,
        severity: 'Sev1',
        signalType: 'Activity Log',
        monitorCondition: 'Fired',
        monitoringService: 'Resource Health',
        alertTargetIDs: [target.id.toLowerCase()],
        configurationItems: [name],
        originAlertId: `demo-${suffix}`,
        firedDateTime: now.toISOString(),
        essentialsVersion: '1.0',
        alertContextVersion: '1.0',
      },
      alertContext: {
        channels: 'Admin, Operation',
        correlationId: `demo-correlation-${suffix}`,
        eventDataId: `demo-event-${suffix}`,
        operationId: `demo-operation-${suffix}`,
        submissionTimestamp: now.toISOString(),
        eventSource: 'ResourceHealth',
        eventTimestamp: now.toISOString(),
        level: 'Critical',
        operationName: 'Microsoft.Resourcehealth/healthevent/Activated/action',
        properties: { title: 'Service unavailable', currentHealthStatus: 'Unavailable', previousHealthStatus: 'Available', type: 'Downtime', cause: 'PlatformInitiated' },
        status: 'Active',
      },
    },
  };
}

interface Step {
  readonly action: string;
  readonly result?: { readonly outcome: string; readonly message: string };
  readonly verify?: { readonly healthy: boolean; readonly reason: string };
  readonly undo?: { readonly outcome: string };
  readonly error?: string;
}

/**
 * Remediates one alert end to end and suppresses a storm, through the app. Returns false when
 * the remediation did not end as `remediated` by a later rung, or the storm acted more than once.
 */
export async function demoRemediation(sandbox: SandboxHandle, configFile: string, config: EstateConfig, io: CliIo): Promise<boolean> {
  const targets = remediationDemoTargets(config);
  if (targets === undefined) return true;
  const { startAppDriver } = await import('../../../local-host/app-driver.ts');
  const name = (target: TargetConfig): string => target.id.split('/').pop() ?? target.id;
  io.stdout(`\nAlert remediation on ${config.estate}, through the app's POST /api/alerts on the local host:\n`);
  const driver = await startAppDriver({ sandbox, configFile, entryPoint: fileURLToPath(new URL('../../functions/index.ts', import.meta.url)) });
  try {
    // The serving revision's image goes bad (a bad deploy): wherever it runs it fails its health checks.
    const apps = await import('../../azure/clients.ts');
    const clients = apps.createAzureClients(config.azure);
    let image: string | undefined;
    try {
      const id = targets.rollback.id.split('/');
      const client = await clients.containerAppsClient(id[2] ?? '');
      const app = await client.containerApps.get(id[4] ?? '', id[8] ?? '');
      image = app.template?.containers?.[0]?.image;
    } finally {
      await clients.close();
    }
    if (image === undefined) {
      io.stdout(`    ${name(targets.rollback)} has no image to break; skipped\n`);
      return false;
    }
    await sandboxPost(sandbox, '/_sandbox/health', { image, healthy: false });
    io.stdout(`    ${name(targets.rollback)}: its serving image ${image} is bad (as after a bad deploy); Resource Health says Unavailable\n`);
    const accepted = await driver.api('POST', 'alerts', resourceHealthAlert(targets.rollback, driver.clock.now()));
    if (accepted.status !== 202) {
      io.stdout(`    the app refused the alert (${String(accepted.status)}): ${JSON.stringify(accepted.json)}\n`);
      return false;
    }
    const id = String(accepted.json.id);
    io.stdout(`    202 Accepted: remediation ${id} (${String(accepted.json.statusUrl)})\n`);
    await driver.drive(id, undefined, { stepMs: 20_000, maxSteps: 200 });
    const view = (await driver.api('GET', `remediations/${id}`)).json as { outcome?: string; reason?: string; rule?: string; steps?: Step[] };
    for (const step of view.steps ?? []) {
      const verdict = step.verify === undefined ? (step.error ?? step.result?.message ?? '') : step.verify.healthy ? 'healthy' : 'still unhealthy';
      io.stdout(`    ${step.action}: ${step.result?.outcome ?? 'not applied'}${step.result === undefined ? '' : ` (${step.result.message.slice(0, 140)})`} -> ${verdict}${step.undo === undefined ? '' : `, undone: ${step.undo.outcome}`}\n`);
    }
    io.stdout(`    => ${view.outcome ?? '?'}: ${view.reason ?? ''}\n`);
    const steps = view.steps ?? [];
    const ok = view.outcome === 'remediated' && steps.length >= 2 && steps[0]?.verify?.healthy === false;

    // The storm: 100 alerts with different ids for one app within a minute.
    await sandboxPost(sandbox, '/_sandbox/health', { target: targets.storm.id, script: { mode: 'until-restart' } });
    await sandbox.clearRequests();
    io.stdout(`\nA restart storm: 100 alerts with different ids for ${name(targets.storm)} within a minute:\n`);
    const ids: string[] = [];
    const refused = new Map<number, number>();
    // One after another, well within the minute: concurrent deliveries are the guardrail tests'
    // subject (remediation-guardrails.test.ts); here the point is the count of actions.
    for (let alert = 0; alert < 100; alert++) {
      for (const answer of [await driver.api('POST', 'alerts', resourceHealthAlert(targets.storm, driver.clock.now()))]) {
        // Only an accepted alert has an instance to follow; anything else is counted as the app answered it.
        if (answer.status === 202 && typeof answer.json.id === 'string') ids.push(answer.json.id);
        else refused.set(answer.status, (refused.get(answer.status) ?? 0) + 1);
      }
    }
    for (const stormId of new Set(ids)) await driver.drive(stormId, undefined, { stepMs: 20_000, maxSteps: 200 });
    const outcomes = new Map<string, number>();
    for (const [status, count] of refused) outcomes.set(`answered ${String(status)}`, count);
    const reasons = new Map<string, number>();
    for (const stormId of ids) {
      const output = driver.host.durable.getStatus(stormId)?.output as { outcome?: string; reason?: string } | undefined;
      const outcome = output?.outcome ?? '?';
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome === 'suppressed') {
        const guardrail = /suppressed: ([a-z-]+)/.exec(output?.reason ?? '')?.[1] ?? 'other';
        reasons.set(guardrail, (reasons.get(guardrail) ?? 0) + 1);
      }
    }
    const actions = (await sandbox.requests()).filter((entry) => entry.method === 'POST' && /\/restart$/i.test(entry.path.replace(/\?.*$/, '')));
    io.stdout(`    outcomes: ${[...outcomes].map(([outcome, count]) => `${outcome} ${String(count)}`).join(', ')}; suppressed by ${[...reasons].map(([guardrail, count]) => `${guardrail} ${String(count)}`).join(', ') || 'nothing'}\n`);
    io.stdout(`    => ${String(actions.length)} restart(s) reached Azure (the guardrails allow at most one)\n`);
    return ok && actions.length <= 1;
  } finally {
    await driver.stop();
  }
}
