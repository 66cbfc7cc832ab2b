/**
 * Collects the go/no-go status of an estate: reads run records, the drill history, the
 * guardrail state, metric alert rules and action groups, and runs the read-only plans of
 * `backup-verify` and `secret-expiry`; then applies the verdict rules (src/status/rules.ts).
 *
 * Reads only: no run record, no lock, no notification, no state table created (the state is
 * opened read-only), no Azure write. Every Azure read goes through the client layer and its
 * request budgets. What cannot be read fails its item and is listed in `problems`.
 *
 * One implementation for `GET /api/status`, the page and `ops-autopilot status`, so they cannot
 * disagree.
 */
import type { AzureClients } from '../azure/clients.ts';
import { callAzure } from '../azure/errors.ts';
import { getActionGroup, listMetricAlerts, type ActionGroupView, type MetricAlertRule } from '../azure/monitor.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import { parseNcrontab } from '../config/ncrontab.ts';
import { targetKind, type EstateConfig, type TargetConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { RUNBOOK_TIMERS, resolveSchedule } from '../functions/runbook-schedules.ts';
import { guardrailStatus, openGuardrailStore, type TargetGuardrailStatus } from '../remediation/guardrails.ts';
import { drillHistory, type DrillHistoryEntry } from '../restore/drills.ts';
import { RUNBOOKS } from '../runbooks/registry.ts';
import type { Check, RunbookContext } from '../runbooks/runbook.ts';
import { listRuns, parseSince, type RunSummaryView } from '../runs/run-history.ts';
import { createRunRecordStore, type RunRecordStore } from '../runs/run-record-store.ts';
import { createStateTables, hasStateStore, STATE_TABLES } from '../state/tables.ts';
import { decide, GO_NO_GO_RULE, type BackupAgePoint, type CleanupDay, type EstateStatus, type OpenRemediation, type RemediationDay, type RunFilters, type StatusItem } from './model.ts';
import { alertsItem, backupsItem, cleanupsItem, drillItem, remediationsItem, secretsItem, type RequiredAlert, type RunEvidence } from './rules.ts';

/** Options of {@link collectStatus}. */
export interface CollectOptions {
  readonly config: EstateConfig;
  readonly clients: AzureClients;
  readonly now?: Date;
  /** App settings (timer schedules, the kill switch, `OPS_AUTOPILOT_APP_HOSTNAME` / `WEBSITE_HOSTNAME`). Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Prefix of run-record links; default `/api/runs/` (the app's `GET /api/runs/{runId}`). */
  readonly linkBase?: string;
  /** Filters of the recent-runs list. */
  readonly filters?: Partial<RunFilters>;
}

/** App setting naming the host action groups must call (default: `WEBSITE_HOSTNAME`, set by App Service). */
export const APP_HOSTNAME_SETTING = 'OPS_AUTOPILOT_APP_HOSTNAME';

/** How far back the history and the item checks look. */
const LOOK_BACK_DAYS = 30;
/** backup-verify runs looked at for the backup-age chart (each is downloaded). */
const BACKUP_HISTORY_RUNS = 30;
/** The metrics every watched target needs a rule for (infra/modules/*-alerts.bicep). */
const REQUIRED_METRICS = ['CpuPercentage', 'MemoryPercentage'] as const;
/** The drill window: seed 003's drill is weekly. */
const DRILL_WINDOW_DAYS = 7;
/** A backup-verify run may start this long after its occurrence and still be on time. */
const BACKUP_GRACE_MINUTES = 60;
/** Cleanup runbooks reported on the page. */
const CLEANUP_RUNBOOKS = ['revision-cleanup', 'image-purge', 'keyvault-backup'] as const;

function day(iso: string): string {
  return iso.slice(0, 10);
}

/** The run filters from query parameters or flags, bounded. */
export function runFilters(input: Partial<RunFilters> = {}): RunFilters {
  const limit = Math.max(1, Math.min(Number.isInteger(input.limit) ? (input.limit ?? 20) : 20, 200));
  return {
    ...(input.runbook === undefined || input.runbook === '' ? {} : { runbook: input.runbook.slice(0, 64) }),
    ...(input.outcome === undefined || input.outcome === '' ? {} : { outcome: input.outcome.slice(0, 20) }),
    since: input.since === undefined || input.since === '' ? '7d' : input.since.slice(0, 10),
    limit,
  };
}

async function newestRun(store: RunRecordStore, runbook: string, now: Date, link: (runId: string) => string): Promise<RunEvidence | undefined> {
  const page = await listRuns(store, { runbook, since: new Date(now.getTime() - LOOK_BACK_DAYS * 86_400_000), limit: 1 }, now);
  const view = page.runs[0];
  if (view === undefined) return undefined;
  return { record: await store.read(view.blobName), link: link(view.runId) };
}

/** The rules a target needs, or why they cannot be worked out. */
async function requiredAlerts(ctx: RunbookContext, target: TargetConfig): Promise<RequiredAlert[] | { reason: string } | undefined> {
  const kind = targetKind(target);
  if (kind === 'containerApp') return REQUIRED_METRICS.map((metric) => ({ targetId: target.id, scopeId: target.id, metric }));
  if (kind !== 'webSite') return undefined;
  const rules = target.remediation === undefined || target.remediation === 'off' ? [] : target.remediation.rules;
  // As infra-params: web apps with a health check or rules get the plan's alert rules.
  if (target.health === undefined && rules.length === 0) return undefined;
  const id = parseResourceId(target.id);
  try {
    const client = await ctx.clients.webClient(id.subscriptionId);
    const site = await callAzure({ resourceId: target.id, operation: 'get web app', expected: 'the site to exist' }, () => client.webApps.get(id.resourceGroup, id.name));
    const plan = site.serverFarmId;
    if (plan === undefined || plan === '') return { reason: 'the site reports no App Service plan, so its plan alerts cannot be checked' };
    return REQUIRED_METRICS.map((metric) => ({ targetId: target.id, scopeId: plan, metric }));
  } catch (error) {
    return { reason: `the site could not be read to find its plan: ${errorMessage(error)}` };
  }
}

async function alertsEvidence(ctx: RunbookContext, env: Readonly<Record<string, string | undefined>>, now: Date): Promise<StatusItem> {
  const required: RequiredAlert[] = [];
  const unresolved: { targetId: string; reason: string }[] = [];
  for (const target of ctx.config.targets) {
    const found = await requiredAlerts(ctx, target);
    if (found === undefined) continue;
    if ('reason' in found) unresolved.push({ targetId: target.id, reason: found.reason });
    else required.push(...found);
  }
  const rules: MetricAlertRule[] = [];
  const listErrors: string[] = [];
  const subscriptions = [...new Set(required.map((entry) => parseResourceId(entry.scopeId).subscriptionId.toLowerCase()))];
  for (const subscription of subscriptions) {
    try {
      const listed = await listMetricAlerts(ctx.clients, subscription);
      rules.push(...listed.rules);
      if (listed.truncated) listErrors.push(`subscription ${subscription}: more rules than the pages read`);
    } catch (error) {
      listErrors.push(`subscription ${subscription}: ${errorMessage(error)}`);
    }
  }
  const actionGroups = new Map<string, ActionGroupView | { error: string }>();
  const scopes = new Set(required.map((entry) => entry.scopeId.toLowerCase()));
  const groupIds = new Set(rules.filter((rule) => rule.scopes.some((scope) => scopes.has(scope.toLowerCase()))).flatMap((rule) => rule.actionGroupIds.map((id) => id.toLowerCase())));
  for (const groupId of groupIds) {
    try {
      actionGroups.set(groupId, await getActionGroup(ctx.clients, groupId));
    } catch (error) {
      actionGroups.set(groupId, { error: errorMessage(error) });
    }
  }
  // The host action groups must call: the setting when the app is known by another name than
  // its default host (a front door, a custom domain), else the host App Service sets.
  const appHost = (env[APP_HOSTNAME_SETTING] ?? env.WEBSITE_HOSTNAME)?.trim();
  return alertsItem({ now, required, unresolved, rules, actionGroups, ...(appHost === undefined || appHost === '' ? {} : { appHost }), listErrors });
}

async function planChecks(ctx: RunbookContext, runbook: 'backup-verify' | 'secret-expiry', target: TargetConfig): Promise<{ checks: readonly Check[] } | { error: string } | undefined> {
  const definition = RUNBOOKS[runbook];
  const policy = definition.policyOf(target);
  if (policy === undefined) return undefined;
  try {
    const plan = await definition.plan(ctx, target, policy);
    return { checks: plan.checks };
  } catch (error) {
    return { error: errorMessage(error) };
  }
}

/**
 * The status of an estate, as of `now`.
 *
 * Never throws for an unreadable source: the item it feeds fails, and `problems` says why.
 */
export async function collectStatus(options: CollectOptions): Promise<EstateStatus> {
  const { config, clients } = options;
  const now = options.now ?? new Date();
  const env = options.env ?? process.env;
  const linkBase = options.linkBase ?? '/api/runs/';
  const link = (runId: string): string => `${linkBase}${encodeURIComponent(runId)}`;
  const ctx: RunbookContext = { config, clients, now: () => now, logger: { log: () => undefined } };
  const problems: string[] = [];
  const filters = runFilters(options.filters);
  const since = (days: number): Date => new Date(now.getTime() - days * 86_400_000);

  let store: RunRecordStore | undefined;
  try {
    store = await createRunRecordStore(config, clients);
  } catch (error) {
    problems.push(`run records: ${errorMessage(error)}`);
  }
  const guarded = async <T>(label: string, read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (error) {
      problems.push(`${label}: ${errorMessage(error)}`);
      return undefined;
    }
  };

  // Backups.
  const servers = config.targets.filter((target) => targetKind(target) === 'postgresFlexibleServer');
  const backupServers = servers.flatMap((target) => {
    const policy = RUNBOOKS['backup-verify'].policyOf(target) as { maxBackupAgeHours?: number; minRetentionDays?: number } | undefined;
    return policy === undefined ? [] : [{ id: target.id, maxBackupAgeHours: policy.maxBackupAgeHours ?? 26, minRetentionDays: policy.minRetentionDays ?? 7 }];
  });
  const backupTimer = RUNBOOK_TIMERS.find((timer) => timer.runbook === 'backup-verify');
  const schedule = parseNcrontab(backupTimer === undefined ? '0 0 6 * * *' : resolveSchedule(backupTimer, env));
  const latestBackup = store === undefined ? undefined : await guarded('backup-verify runs', () => newestRun(store, 'backup-verify', now, link));
  const live = new Map<string, { checks: readonly Check[] } | { error: string }>();
  for (const server of servers) {
    const result = await planChecks(ctx, 'backup-verify', server);
    if (result !== undefined) live.set(server.id.toLowerCase(), result);
  }
  const items: StatusItem[] = [];
  const backups = backupsItem({ now, schedule, graceMinutes: BACKUP_GRACE_MINUTES, servers: backupServers, latestRun: latestBackup, lookBackDays: LOOK_BACK_DAYS, live });
  items.push(store === undefined ? { ...backups, verdict: 'fail', summary: 'the run records could not be read', reasons: ['the run records could not be read', ...backups.reasons] } : backups);

  // Restore drill.
  let drills: DrillHistoryEntry[] = [];
  let drillsRead = true;
  if (hasStateStore(config)) {
    const found = await guarded('drill history', () => drillHistory(ctx, { limit: 200, readOnly: true }));
    if (found === undefined) drillsRead = false;
    else drills = found.drills;
  }
  const drillServers = servers.map((target) => ({ id: target.id, ...(target.restore?.drill === undefined ? {} : { drill: target.restore.drill }) }));
  const drill = drillItem({ now, windowDays: DRILL_WINDOW_DAYS, servers: drillServers, drills, link });
  items.push(drillsRead ? drill : { ...drill, verdict: 'fail', summary: 'the drill history could not be read', reasons: ['the drill history could not be read', ...drill.reasons] });

  // Alerts.
  items.push(await alertsEvidence(ctx, env, now));

  // Secrets.
  const vaults = [];
  for (const target of config.targets.filter((candidate) => targetKind(candidate) === 'keyVault')) {
    const result = await planChecks(ctx, 'secret-expiry', target);
    vaults.push({ id: target.id, ...(result === undefined ? {} : { result }) });
  }
  const latestSecrets = store === undefined ? undefined : await guarded('secret-expiry runs', () => newestRun(store, 'secret-expiry', now, link));
  items.push(secretsItem({ now, vaults, latestRun: latestSecrets }));

  // Cleanups, and the cleaned-per-day history.
  const cleanupRuns = new Map<string, readonly RunSummaryView[]>();
  const configured = CLEANUP_RUNBOOKS.filter((runbook) => config.targets.some((target) => target.runbooks[runbook] !== undefined));
  for (const runbook of configured) {
    const page = store === undefined ? undefined : await guarded(`${runbook} runs`, () => listRuns(store, { runbook, since: since(LOOK_BACK_DAYS), limit: 200 }, now));
    cleanupRuns.set(runbook, page?.runs ?? []);
  }
  items.push(
    cleanupsItem({
      runbooks: configured.map((runbook) => {
        const runs = cleanupRuns.get(runbook) ?? [];
        return { runbook, latest: runs[0], failedRecently: runs.filter((run) => run.outcome === 'failed').length };
      }),
      lookBackDays: LOOK_BACK_DAYS,
      link,
    }),
  );

  // Remediations and guardrails.
  const remediationRuns = store === undefined ? [] : ((await guarded('remediation runs', () => listRuns(store, { runbook: 'remediation', since: since(LOOK_BACK_DAYS), limit: 200 }, now)))?.runs ?? []);
  let guardrails: { targets: TargetGuardrailStatus[]; killSwitch: string } | { error: string } | undefined;
  if (hasStateStore(config)) {
    try {
      const table = createStateTables(config, clients, { readOnly: true }).table(STATE_TABLES.guardrails);
      const guardStore = openGuardrailStore(config, clients, { readOnly: true, table, env });
      const status = await guardrailStatus(guardStore, undefined, { now });
      const targets: TargetGuardrailStatus[] = [];
      // Per target, for its recent triggers (the suppressed storms); bounded by the targets with state.
      for (const target of status.targets.slice(0, 50)) {
        const one = await guardrailStatus(guardStore, target.targetId, { now });
        targets.push(one.targets[0] ?? target);
      }
      guardrails = { targets, killSwitch: `${status.killSwitch.verdict}: ${status.killSwitch.reason}` };
    } catch (error) {
      guardrails = { error: errorMessage(error) };
      problems.push(`guardrail state: ${errorMessage(error)}`);
    }
  }
  items.push(remediationsItem({ now, runs: remediationRuns, lookBackDays: LOOK_BACK_DAYS, guardrails, link }));

  // History.
  const backupAge: BackupAgePoint[] = [];
  if (store !== undefined) {
    const page = await guarded('backup-verify history', () => listRuns(store, { runbook: 'backup-verify', since: since(LOOK_BACK_DAYS), limit: BACKUP_HISTORY_RUNS }, now));
    for (const view of page?.runs ?? []) {
      const record = await guarded(`run record ${view.runId}`, () => store.read(view.blobName));
      for (const target of record?.targets ?? []) {
        const finding = target.findings.find((entry) => entry.code === 'postgres.backup.newest-age');
        // The check's found text starts with the age: "4.0 h (completed …)".
        const match = /^(\d+(?:\.\d+)?) h\b/.exec(String(finding?.details?.found ?? ''));
        if (finding === undefined || match === null) continue;
        const limit = /≤ (\d+(?:\.\d+)?) h/.exec(String(finding.details?.expected ?? ''));
        backupAge.push({ at: view.startedAt, server: parseResourceId(target.targetId).name, ageHours: Number(match[1]), limitHours: limit === null ? null : Number(limit[1]), runId: view.runId });
      }
    }
  }
  backupAge.sort((a, b) => a.at.localeCompare(b.at));
  const remediationDays = new Map<string, RemediationDay>();
  for (const run of remediationRuns) {
    const key = day(run.startedAt);
    const entry = remediationDays.get(key) ?? { day: key, ok: 0, failed: 0, other: 0 };
    remediationDays.set(key, run.outcome === 'ok' ? { ...entry, ok: entry.ok + 1 } : run.outcome === 'failed' ? { ...entry, failed: entry.failed + 1 } : { ...entry, other: entry.other + 1 });
  }
  const cleanedDays = new Map<string, CleanupDay>();
  for (const [runbook, runs] of cleanupRuns) {
    if (runbook === 'keyvault-backup') continue;
    for (const run of runs) {
      const key = day(run.startedAt);
      const entry = cleanedDays.get(key) ?? { day: key, revisions: 0, tags: 0 };
      cleanedDays.set(key, runbook === 'revision-cleanup' ? { ...entry, revisions: entry.revisions + run.counts.applied } : { ...entry, tags: entry.tags + run.counts.applied });
    }
  }

  // Recent runs with filters.
  let recentRuns: EstateStatus['recentRuns'] = [];
  if (store !== undefined) {
    let sinceDate: Date;
    try {
      sinceDate = parseSince(filters.since, now);
    } catch (error) {
      problems.push(`runs filter: ${errorMessage(error)}`);
      sinceDate = since(7);
    }
    const page = await guarded('recent runs', () => listRuns(store, { ...(filters.runbook === undefined ? {} : { runbook: filters.runbook }), since: sinceDate, limit: 200 }, now));
    recentRuns = (page?.runs ?? [])
      .filter((run) => filters.outcome === undefined || run.outcome === filters.outcome)
      .slice(0, filters.limit)
      .map((run) => ({ ...run, link: link(run.runId) }));
  }

  // Open remediations: targets whose running-trigger claim is live, with their ladders.
  const openRemediations: OpenRemediation[] = [];
  if (guardrails !== undefined && !('error' in guardrails)) {
    for (const target of guardrails.targets) {
      if (target.inProgress === undefined) continue;
      const configTarget = config.targets.find((candidate) => candidate.id.toLowerCase() === target.targetId.toLowerCase());
      const rules = configTarget?.remediation === undefined || configTarget.remediation === 'off' ? [] : configTarget.remediation.rules;
      openRemediations.push({ targetId: target.targetId, trigger: target.inProgress.trigger, until: target.inProgress.until, ladders: rules.map((rule) => ({ rule: rule.name, rungs: rule.ladder.map((rung) => rung.action) })) });
    }
  }

  const { decision, blocking } = decide(items);
  return {
    estate: config.estate,
    generatedAt: now.toISOString(),
    decision,
    rule: GO_NO_GO_RULE,
    blocking,
    items,
    history: {
      drills: [...drills]
        .sort((a, b) => a.startedAt.localeCompare(b.startedAt))
        .map((row) => ({
          at: row.startedAt,
          server: row.serverId === '' ? '' : parseResourceId(row.serverId).name,
          verdict: row.verdict,
          rtoSeconds: row.rtoSeconds ?? null,
          rpoSeconds: row.rpoSeconds ?? null,
          rtoTargetSeconds: row.rtoTargetSeconds,
          rpoTargetSeconds: row.rpoTargetSeconds,
          runId: row.runId,
        })),
      backupAge,
      remediationsPerDay: [...remediationDays.values()].sort((a, b) => a.day.localeCompare(b.day)),
      cleanedPerDay: [...cleanedDays.values()].sort((a, b) => a.day.localeCompare(b.day)),
    },
    recentRuns,
    runFilters: filters,
    openRemediations,
    problems,
  };
}
