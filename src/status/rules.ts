/**
 * The verdict rules of the status page, one pure function per checklist item: each takes what
 * was read (run records, drill rows, ARM resources, read-only plans) and returns the item with
 * its verdict, its evidence and the reasons it fails. No I/O here, so every edge case (a late
 * backup run, a drill that passed but missed its RTO, a disabled alert rule) is a unit test.
 *
 * Every rule fails closed: what cannot be read, or is not there to prove the item, fails it.
 */
import type { CronSchedule } from '../config/ncrontab.ts';
import type { ActionGroupView, MetricAlertRule } from '../azure/monitor.ts';
import type { Check } from '../runbooks/runbook.ts';
import type { DrillHistoryEntry } from '../restore/drills.ts';
import type { TargetGuardrailStatus } from '../remediation/guardrails.ts';
import type { RunRecord } from '../runs/run-record.ts';
import type { RunSummaryView } from '../runs/run-history.ts';
import type { Evidence, StatusItem } from './model.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A run record reduced to what the rules need, with its link. */
export interface RunEvidence {
  readonly record: RunRecord;
  readonly link: string;
}

function item(base: Omit<StatusItem, 'verdict' | 'summary' | 'reasons'>, reasons: readonly string[], passSummary: string): StatusItem {
  return { ...base, verdict: reasons.length === 0 ? 'pass' : 'fail', summary: reasons[0] ?? passSummary, reasons };
}

function nameOf(id: string): string {
  return id.split('/').filter((segment) => segment !== '').at(-1) ?? id;
}

/**
 * The newest occurrence of `schedule` at or before `at`, or undefined when it has none in the
 * 32 days before (a schedule that rare is judged by its existence alone).
 */
export function previousOccurrence(schedule: CronSchedule, at: Date): Date | undefined {
  // Widening windows: a per-minute schedule must not walk a month of occurrences.
  for (const lookBackMs of [HOUR_MS, DAY_MS, 8 * DAY_MS, 32 * DAY_MS]) {
    let cursor = new Date(at.getTime() - lookBackMs);
    let last: Date | undefined;
    for (let steps = 0; steps < 10_000; steps += 1) {
      const next = schedule.nextAfter(cursor);
      if (next.getTime() > at.getTime()) break;
      last = next;
      cursor = next;
    }
    if (last !== undefined) return last;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Backups
// ---------------------------------------------------------------------------------------------

/** Inputs of {@link backupsItem}. */
export interface BackupsInput {
  readonly now: Date;
  /** The `backup-verify` timer's schedule. */
  readonly schedule: CronSchedule;
  /** How long after an occurrence its run may start and still count as on time. */
  readonly graceMinutes: number;
  /** PostgreSQL servers with a `backup-verify` policy. */
  readonly servers: readonly { readonly id: string; readonly maxBackupAgeHours: number; readonly minRetentionDays: number }[];
  /** The newest `backup-verify` run (any trigger), undefined when none was found. */
  readonly latestRun: RunEvidence | undefined;
  /** How far back runs were looked for, in days (for the message when there is none). */
  readonly lookBackDays: number;
  /** Live read-only `backup-verify` checks per server id (lower case), or the error that stopped the read. */
  readonly live: ReadonlyMap<string, { readonly checks: readonly Check[] } | { readonly error: string }>;
}

const LIVE_CODES = ['postgres.backup.newest-age', 'postgres.pitr.window', 'postgres.backup.retention'] as const;

/**
 * Backups: `backup-verify` ran within its schedule and passed for every server; the newest
 * backup's age and the PITR window against the promise, read now.
 */
export function backupsItem(input: BackupsInput): StatusItem {
  const reasons: string[] = [];
  const evidence: Evidence[] = [];
  const base = { id: 'backups' as const, title: 'Backups', checklist: 'Backup task running daily with successful latest run', critical: true };
  if (input.servers.length === 0) {
    reasons.push('no PostgreSQL server has a backup-verify policy: nothing proves that backups run');
    return item({ ...base, evidence }, reasons, '');
  }
  const run = input.latestRun;
  const due = previousOccurrence(input.schedule, new Date(input.now.getTime() - input.graceMinutes * 60_000));
  if (run === undefined) {
    reasons.push(`backup-verify has no run in the last ${String(input.lookBackDays)} days (schedule ${input.schedule.expression})`);
  } else {
    const { record } = run;
    const onTime = due === undefined || Date.parse(record.startedAt) >= due.getTime();
    evidence.push({
      what: `newest backup-verify run (${record.trigger})`,
      result: onTime ? 'pass' : 'fail',
      detail: onTime
        ? `started ${record.startedAt}, status ${record.status}${due === undefined ? '' : `; the schedule ${input.schedule.expression} was last due ${due.toISOString()}`}`
        : `started ${record.startedAt}, before the occurrence due ${due.toISOString()} (schedule ${input.schedule.expression}, ${String(input.graceMinutes)} min grace): the run is late`,
      runId: record.runId,
      at: record.startedAt,
      link: run.link,
    });
    if (!onTime) reasons.push(`backup-verify is late: its newest run started ${record.startedAt}, but the schedule ${input.schedule.expression} was due ${due.toISOString()}`);
    if (record.status === 'cancelled') reasons.push(`the newest backup-verify run ${record.runId} was cancelled`);
    for (const server of input.servers) {
      const target = record.targets.find((entry) => entry.targetId.toLowerCase() === server.id.toLowerCase());
      const name = nameOf(server.id);
      if (target === undefined) {
        reasons.push(`backup-verify run ${record.runId} did not check ${name}`);
        evidence.push({ what: `backup-verify on ${name}`, result: 'fail', detail: 'not in the newest run', runId: record.runId, at: record.startedAt, link: run.link, resource: server.id });
        continue;
      }
      const failed = target.findings.filter((finding) => finding.severity === 'fail');
      const ok = target.status === 'succeeded' && failed.length === 0;
      if (target.status !== 'succeeded') reasons.push(`backup-verify run ${record.runId} ${target.status === 'failed' ? 'failed' : 'skipped'} ${name}${target.error === undefined ? '' : `: ${target.error.message}`}`);
      for (const finding of failed) reasons.push(`backup-verify run ${record.runId}: ${finding.message}`);
      evidence.push({
        what: `backup-verify on ${name}`,
        result: ok ? 'pass' : 'fail',
        detail: ok ? `${String(target.findings.length)} check(s), none failed` : failed.map((finding) => finding.message).join('; ') || `target ${target.status}`,
        runId: record.runId,
        at: record.startedAt,
        link: run.link,
        resource: server.id,
      });
    }
  }
  for (const server of input.servers) {
    const name = nameOf(server.id);
    const live = input.live.get(server.id.toLowerCase());
    if (live === undefined || 'error' in live) {
      const why = live === undefined ? 'not read' : live.error;
      reasons.push(`${name}: the backups could not be read now (${why})`);
      evidence.push({ what: `live read of ${name}`, result: 'fail', detail: why, at: input.now.toISOString(), resource: server.id });
      continue;
    }
    for (const code of LIVE_CODES) {
      const check = live.checks.find((candidate) => candidate.code === code);
      const label = code === 'postgres.backup.newest-age' ? 'newest backup age' : code === 'postgres.pitr.window' ? 'PITR window against the promise' : 'backup retention against the promise';
      if (check === undefined) {
        reasons.push(`${name}: ${label} was not reported`);
        evidence.push({ what: `${label} of ${name} (now)`, result: 'fail', detail: 'not reported', at: input.now.toISOString(), resource: server.id });
        continue;
      }
      if (check.status === 'fail') reasons.push(`${name}: ${check.message} (expected ${check.expected}, found ${check.found})`);
      evidence.push({ what: `${label} of ${name} (now)`, result: check.status === 'fail' ? 'fail' : 'pass', detail: `${check.message}; expected ${check.expected}, found ${check.found}`, at: input.now.toISOString(), resource: server.id });
    }
  }
  return item({ ...base, evidence }, reasons, `backup-verify ran on time and passed for ${String(input.servers.length)} server(s); backups are fresh and the PITR window meets the promise`);
}

// ---------------------------------------------------------------------------------------------
// Restore drill
// ---------------------------------------------------------------------------------------------

/** Inputs of {@link drillItem}. */
export interface DrillInput {
  readonly now: Date;
  /** Days a passed drill counts for (seed 003: weekly). */
  readonly windowDays: number;
  /** Every PostgreSQL server of the estate, with its drill targets when it has a drill policy. */
  readonly servers: readonly { readonly id: string; readonly drill?: { readonly rtoTargetMinutes: number; readonly rpoTargetMinutes: number } }[];
  /** Drill history rows, any order. */
  readonly drills: readonly DrillHistoryEntry[];
  /** Link of a run id. */
  readonly link: (runId: string) => string;
}

/**
 * Restore drill: for every PostgreSQL server, the newest drill of the last `windowDays` passed
 * and measured an RTO and RPO within the server's targets (rechecked here, so a row that says
 * passed but missed its RTO fails). A newer failed drill supersedes an older pass.
 */
export function drillItem(input: DrillInput): StatusItem {
  const reasons: string[] = [];
  const evidence: Evidence[] = [];
  const base = { id: 'restore-drill' as const, title: 'Restore drill', checklist: 'Restore drill executed and validated', critical: true };
  if (input.servers.length === 0) {
    return item({ ...base, evidence: [{ what: 'PostgreSQL servers', result: 'info', detail: 'the estate has no PostgreSQL flexible server to restore' }] }, [], 'no PostgreSQL server: no restore drill is needed');
  }
  const since = input.now.getTime() - input.windowDays * DAY_MS;
  for (const server of input.servers) {
    const name = nameOf(server.id);
    if (server.drill === undefined) {
      reasons.push(`${name} has no restore drill policy (restore.drill): no drill proves it can be restored`);
      evidence.push({ what: `restore drill of ${name}`, result: 'fail', detail: 'no restore.drill in the estate config', resource: server.id });
      continue;
    }
    const rtoTarget = server.drill.rtoTargetMinutes * 60;
    const rpoTarget = server.drill.rpoTargetMinutes * 60;
    const rows = input.drills
      .filter((row) => row.serverId.toLowerCase() === server.id.toLowerCase() && Date.parse(row.startedAt) >= since && Date.parse(row.startedAt) <= input.now.getTime())
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    const newest = rows[0];
    if (newest === undefined) {
      reasons.push(`${name}: no restore drill in the last ${String(input.windowDays)} days`);
      evidence.push({ what: `restore drill of ${name}`, result: 'fail', detail: `none since ${new Date(since).toISOString()}`, resource: server.id });
      continue;
    }
    const problems: string[] = [];
    if (newest.verdict !== 'passed') problems.push(`the drill of ${newest.startedAt} failed: ${newest.reason}`);
    if (newest.rtoSeconds === undefined) problems.push('no RTO was measured');
    else if (newest.rtoSeconds > rtoTarget) problems.push(`RTO ${formatSeconds(newest.rtoSeconds)} exceeds the ${formatSeconds(rtoTarget)} target`);
    if (newest.rpoSeconds === undefined) problems.push('no RPO was measured');
    else if (newest.rpoSeconds > rpoTarget) problems.push(`RPO ${formatSeconds(newest.rpoSeconds)} exceeds the ${formatSeconds(rpoTarget)} target`);
    for (const problem of problems) reasons.push(`${name}: ${problem}`);
    const link = newest.runId === '' ? undefined : input.link(newest.runId);
    evidence.push({
      what: `newest restore drill of ${name}`,
      result: problems.length === 0 ? 'pass' : 'fail',
      detail: `${newest.verdict}; RTO ${newest.rtoSeconds === undefined ? 'not measured' : formatSeconds(newest.rtoSeconds)} (target ${formatSeconds(rtoTarget)}), RPO ${newest.rpoSeconds === undefined ? 'not measured' : formatSeconds(newest.rpoSeconds)} (target ${formatSeconds(rpoTarget)})${problems.length === 0 ? '' : `: ${problems.join('; ')}`}`,
      ...(newest.runId === '' ? {} : { runId: newest.runId }),
      at: newest.startedAt,
      ...(link === undefined ? {} : { link }),
      resource: server.id,
    });
  }
  return item({ ...base, evidence }, reasons, `every server passed a restore drill in the last ${String(input.windowDays)} days within its RTO and RPO targets`);
}

/** Seconds in words: `42 s`, `12.5 min`, `1.5 h`. */
export function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${String(Math.round(seconds))} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

/** One alert rule the estate needs: a metric on a scope, for a target. */
export interface RequiredAlert {
  readonly targetId: string;
  /** The resource the rule must watch (the target, or a web app's plan). */
  readonly scopeId: string;
  readonly metric: string;
}

/** Inputs of {@link alertsItem}. */
export interface AlertsInput {
  readonly now: Date;
  readonly required: readonly RequiredAlert[];
  /** Targets whose required rules could not be worked out (e.g. the site could not be read), with the reason. */
  readonly unresolved: readonly { readonly targetId: string; readonly reason: string }[];
  readonly rules: readonly MetricAlertRule[];
  /** Action groups by lower-cased id, or the reason one could not be read. */
  readonly actionGroups: ReadonlyMap<string, ActionGroupView | { readonly error: string }>;
  /** This app's host name when known (in Azure: WEBSITE_HOSTNAME); any host otherwise. */
  readonly appHost?: string;
  /** Subscriptions whose rules could not be listed, with the reason. */
  readonly listErrors: readonly string[];
}

/** The route action groups call (src/functions/alerts.ts). */
const ALERTS_PATH = '/api/alerts';

/** Whether an action group reaches this app: enabled, with a common-schema webhook to `/api/alerts` (of `appHost` when known). */
export function reachesApp(group: ActionGroupView, appHost: string | undefined): { ok: boolean; detail: string } {
  if (!group.enabled) return { ok: false, detail: `action group ${group.name} is disabled` };
  const hook = group.webhooks.find((webhook) => {
    try {
      const url = new URL(webhook.endpoint);
      return url.pathname.toLowerCase() === ALERTS_PATH && (appHost === undefined || url.host.toLowerCase() === appHost.toLowerCase());
    } catch {
      return false;
    }
  });
  if (hook === undefined) return { ok: false, detail: `action group ${group.name} has no webhook to ${appHost === undefined ? '' : `https://${appHost}`}${ALERTS_PATH} (found ${group.webhooks.map((webhook) => webhook.endpoint).join(', ') || 'no webhook'})` };
  if (!hook.useCommonAlertSchema) return { ok: false, detail: `action group ${group.name}'s webhook ${hook.name} does not use the common alert schema, which POST /api/alerts requires` };
  return { ok: true, detail: `action group ${group.name} calls ${hook.endpoint} with the common alert schema` };
}

/**
 * Alerts: for every target the estate watches, a metric alert rule per required metric exists,
 * is enabled and fires an action group that reaches this app.
 */
export function alertsItem(input: AlertsInput): StatusItem {
  const reasons: string[] = [];
  const evidence: Evidence[] = [];
  const base = { id: 'alerts' as const, title: 'Alerts', checklist: 'Observability live with active alerts', critical: true };
  for (const error of input.listErrors) reasons.push(`the alert rules could not be listed: ${error}`);
  for (const entry of input.unresolved) {
    reasons.push(`${nameOf(entry.targetId)}: ${entry.reason}`);
    evidence.push({ what: `alert rules of ${nameOf(entry.targetId)}`, result: 'fail', detail: entry.reason, resource: entry.targetId });
  }
  if (input.required.length === 0 && input.unresolved.length === 0 && input.listErrors.length === 0) {
    return item({ ...base, evidence: [{ what: 'watched targets', result: 'info', detail: 'no web app with a health check and no container app: the estate has no metric alert rules to expect' }] }, [], 'no target needs metric alert rules');
  }
  for (const required of input.required) {
    const candidates = input.rules.filter(
      (rule) => rule.scopes.some((scope) => scope.toLowerCase() === required.scopeId.toLowerCase()) && rule.metrics.some((metric) => metric.toLowerCase() === required.metric.toLowerCase()),
    );
    const what = `${required.metric} alert on ${nameOf(required.scopeId)}${required.scopeId.toLowerCase() === required.targetId.toLowerCase() ? '' : ` (plan of ${nameOf(required.targetId)})`}`;
    if (candidates.length === 0) {
      reasons.push(`no metric alert rule watches ${required.metric} of ${nameOf(required.scopeId)}`);
      evidence.push({ what, result: 'fail', detail: 'no rule found', at: input.now.toISOString(), resource: required.scopeId });
      continue;
    }
    const enabled = candidates.filter((rule) => rule.enabled);
    if (enabled.length === 0) {
      reasons.push(`metric alert rule ${candidates.map((rule) => rule.name).join(', ')} for ${required.metric} of ${nameOf(required.scopeId)} exists but is disabled`);
      evidence.push({ what, result: 'fail', detail: `${candidates.map((rule) => rule.name).join(', ')}: disabled`, at: input.now.toISOString(), resource: candidates[0]?.id ?? required.scopeId });
      continue;
    }
    let routed: { rule: MetricAlertRule; detail: string } | undefined;
    const misses: string[] = [];
    for (const rule of enabled) {
      if (rule.actionGroupIds.length === 0) misses.push(`${rule.name} fires no action group`);
      for (const groupId of rule.actionGroupIds) {
        const group = input.actionGroups.get(groupId.toLowerCase());
        if (group === undefined) misses.push(`${rule.name}: action group ${nameOf(groupId)} not read`);
        else if ('error' in group) misses.push(`${rule.name}: action group ${nameOf(groupId)} could not be read (${group.error})`);
        else {
          const reach = reachesApp(group, input.appHost);
          if (reach.ok) routed ??= { rule, detail: reach.detail };
          else misses.push(`${rule.name}: ${reach.detail}`);
        }
      }
    }
    if (routed === undefined) {
      reasons.push(`the ${required.metric} alert of ${nameOf(required.scopeId)} does not reach this app: ${misses.join('; ')}`);
      evidence.push({ what, result: 'fail', detail: misses.join('; '), at: input.now.toISOString(), resource: enabled[0]?.id ?? required.scopeId });
    } else {
      evidence.push({ what, result: 'pass', detail: `${routed.rule.name} enabled; ${routed.detail}`, at: input.now.toISOString(), resource: routed.rule.id });
    }
  }
  return item({ ...base, evidence }, reasons, `${String(input.required.length)} metric alert rule(s) exist, are enabled and reach this app${input.appHost === undefined ? '' : ` (${input.appHost})`}`);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/** Inputs of {@link secretsItem}. */
export interface SecretsInput {
  readonly now: Date;
  /** Key Vault targets; `checks` from a read-only `secret-expiry` plan (undefined: the vault has no secret-expiry policy). */
  readonly vaults: readonly { readonly id: string; readonly warnWithinDays?: number; readonly result?: { readonly checks: readonly Check[] } | { readonly error: string } }[];
  /** The newest `secret-expiry` run, for its link. */
  readonly latestRun: RunEvidence | undefined;
}

/**
 * Secrets: no secret of any vault has expired, none expires inside its warning window, and none
 * lacks an expiry its policy requires (the read-only `secret-expiry` checks, read now). A vault
 * without a `secret-expiry` policy fails: nothing watches its secrets.
 */
export function secretsItem(input: SecretsInput): StatusItem {
  const reasons: string[] = [];
  const evidence: Evidence[] = [];
  const base = { id: 'secrets' as const, title: 'Secrets', checklist: 'Security hardening sign-off (secrets policy): none expired, none in the warning window', critical: true };
  if (input.vaults.length === 0) {
    return item({ ...base, evidence: [{ what: 'Key Vaults', result: 'info', detail: 'the estate names no Key Vault' }] }, [], 'no Key Vault in the estate');
  }
  for (const vault of input.vaults) {
    const name = nameOf(vault.id);
    if (vault.result === undefined) {
      reasons.push(`${name} has no secret-expiry policy: nothing watches its secrets`);
      evidence.push({ what: `secrets of ${name}`, result: 'fail', detail: 'no runbooks.secret-expiry policy', resource: vault.id });
      continue;
    }
    if ('error' in vault.result) {
      reasons.push(`${name}: the secrets could not be read now (${vault.result.error})`);
      evidence.push({ what: `secrets of ${name}`, result: 'fail', detail: vault.result.error, at: input.now.toISOString(), resource: vault.id });
      continue;
    }
    const bad = vault.result.checks.filter((check) => check.status !== 'ok');
    for (const check of bad) reasons.push(`${check.message} (${check.status === 'fail' ? 'expired' : 'warning'}: expected ${check.expected}, found ${check.found})`);
    for (const check of vault.result.checks) {
      evidence.push({ what: `secret ${nameOf(check.resource ?? name)} in ${name}`, result: check.status === 'ok' ? 'pass' : 'fail', detail: `${check.message}; expected ${check.expected}, found ${check.found}`, at: input.now.toISOString(), resource: check.resource ?? vault.id });
    }
    if (vault.result.checks.length === 0) evidence.push({ what: `secrets of ${name}`, result: 'info', detail: 'no enabled secret', at: input.now.toISOString(), resource: vault.id });
  }
  if (input.latestRun !== undefined) {
    const { record } = input.latestRun;
    evidence.push({ what: 'newest secret-expiry run', result: 'info', detail: `${record.status}, ${String(record.summary.findings.fail)} fail / ${String(record.summary.findings.warn)} warn finding(s) then`, runId: record.runId, at: record.startedAt, link: input.latestRun.link });
  }
  return item({ ...base, evidence }, reasons, 'no secret has expired or expires inside its warning window');
}

// ---------------------------------------------------------------------------------------------
// Cleanups and remediations (reported, not go-live items of seed 003)
// ---------------------------------------------------------------------------------------------

/** Inputs of {@link cleanupsItem}. */
export interface CleanupsInput {
  /** The cleanup runbooks some target opts into, with their newest run (undefined: none found). */
  readonly runbooks: readonly { readonly runbook: string; readonly latest: RunSummaryView | undefined; readonly failedRecently: number }[];
  readonly lookBackDays: number;
  readonly link: (runId: string) => string;
}

/** Cleanups: the newest run of each configured cleanup runbook did not fail. Not critical. */
export function cleanupsItem(input: CleanupsInput): StatusItem {
  const reasons: string[] = [];
  const evidence: Evidence[] = [];
  const base = { id: 'cleanups' as const, title: 'Cleanups', checklist: 'not a seed 003 go-live item: reported, never blocking', critical: false };
  for (const entry of input.runbooks) {
    const latest = entry.latest;
    if (latest === undefined) {
      reasons.push(`${entry.runbook} has no run in the last ${String(input.lookBackDays)} days`);
      evidence.push({ what: `newest ${entry.runbook} run`, result: 'fail', detail: 'none found' });
      continue;
    }
    const bad = latest.outcome === 'failed' || latest.outcome === 'refused';
    if (bad) reasons.push(`the newest ${entry.runbook} run ${latest.runId} ${latest.outcome === 'failed' ? 'failed' : 'was refused'}`);
    evidence.push({
      what: `newest ${entry.runbook} run`,
      result: bad ? 'fail' : 'pass',
      detail: `${latest.outcome}${latest.dryRun ? ' (dry run)' : ''}: ${String(latest.counts.applied)} applied, ${String(latest.counts.planned)} planned, ${String(latest.counts.failed)} failed; ${String(entry.failedRecently)} failed run(s) in ${String(input.lookBackDays)} days`,
      runId: latest.runId,
      at: latest.startedAt,
      link: input.link(latest.runId),
    });
  }
  if (input.runbooks.length === 0) evidence.push({ what: 'cleanup runbooks', result: 'info', detail: 'no target opts into revision-cleanup, image-purge or keyvault-backup' });
  return item({ ...base, evidence }, reasons, input.runbooks.length === 0 ? 'no cleanup configured' : 'the newest run of every cleanup did not fail');
}

/** Inputs of {@link remediationsItem}. */
export interface RemediationsInput {
  readonly now: Date;
  /** Remediation runs of the look-back, newest first. */
  readonly runs: readonly RunSummaryView[];
  readonly lookBackDays: number;
  /** Guardrail state of the targets that have some, or the reason it could not be read. */
  readonly guardrails: { readonly targets: readonly TargetGuardrailStatus[]; readonly killSwitch: string } | { readonly error: string } | undefined;
  readonly link: (runId: string) => string;
}

/** Remediations: no circuit breaker is open; failures and suppressed storms are reported. Not critical. */
export function remediationsItem(input: RemediationsInput): StatusItem {
  const reasons: string[] = [];
  const evidence: Evidence[] = [];
  const base = { id: 'remediations' as const, title: 'Remediations', checklist: 'not a seed 003 go-live item: reported, never blocking', critical: false };
  const failed = input.runs.filter((run) => run.outcome === 'failed');
  const newest = input.runs[0];
  if (newest !== undefined) {
    evidence.push({ what: 'newest remediation', result: newest.outcome === 'failed' ? 'fail' : 'pass', detail: `${newest.outcome}${newest.dryRun ? ' (dry run)' : ''}`, runId: newest.runId, at: newest.startedAt, link: input.link(newest.runId) });
  }
  evidence.push({ what: `remediations in ${String(input.lookBackDays)} days`, result: failed.length === 0 ? 'pass' : 'fail', detail: `${String(input.runs.length)} run(s), ${String(failed.length)} failed` });
  for (const run of failed.slice(0, 5)) evidence.push({ what: 'failed remediation', result: 'fail', detail: run.outcome, runId: run.runId, at: run.startedAt, link: input.link(run.runId) });
  const guardrails = input.guardrails;
  if (guardrails === undefined) {
    evidence.push({ what: 'guardrail state', result: 'info', detail: 'no state store configured' });
  } else if ('error' in guardrails) {
    reasons.push(`the guardrail state could not be read: ${guardrails.error}`);
    evidence.push({ what: 'guardrail state', result: 'fail', detail: guardrails.error });
  } else {
    evidence.push({ what: 'kill switch', result: 'info', detail: guardrails.killSwitch });
    for (const target of guardrails.targets) {
      const name = nameOf(target.targetId);
      if (target.breaker.state === 'open') {
        reasons.push(`the circuit breaker of ${name} is open (${String(target.breaker.failures)} failed remediations${target.breaker.closesAt === undefined ? ', closed only by a person' : `, closes ${target.breaker.closesAt}`})`);
        evidence.push({ what: `circuit breaker of ${name}`, result: 'fail', detail: `open since ${target.breaker.openedAt ?? 'unknown'}`, resource: target.targetId });
      }
      const suppressed = (target.recent ?? []).filter((trigger) => trigger.suppressed && Date.parse(trigger.firstSeen) >= input.now.getTime() - input.lookBackDays * DAY_MS);
      if (suppressed.length > 0) {
        evidence.push({ what: `suppressed alerts on ${name}`, result: 'info', detail: `${String(suppressed.length)} suppressed in ${String(input.lookBackDays)} days (storm guard); newest: ${suppressed[0]?.reason ?? ''}`, resource: target.targetId });
      }
    }
  }
  return item({ ...base, evidence }, reasons, failed.length === 0 ? 'no circuit breaker is open and no remediation failed' : `no circuit breaker is open; ${String(failed.length)} remediation(s) failed`);
}
