/**
 * The shapes of the go/no-go status (issue 12): what `GET /api/status`, the page and
 * `ops-autopilot status --json` all serve, built once by `collectStatus` (src/status/collect.ts)
 * from the verdict rules of src/status/rules.ts.
 */
import type { RunSummaryView } from '../runs/run-history.ts';

/** An item's result: `pass` = Done Yes in seed 003's checklist, `fail` = Done No. */
export type Verdict = 'pass' | 'fail';

/** The items, in the order the page shows them. */
export const STATUS_ITEM_IDS = ['backups', 'restore-drill', 'alerts', 'secrets', 'cleanups', 'remediations'] as const;
/** An item's id. */
export type StatusItemId = (typeof STATUS_ITEM_IDS)[number];

/** One piece of evidence: what was checked, when, by which run, and where its record is. */
export interface Evidence {
  /** What was checked, in words (`backup-verify on psql-lms-prod`, `metric alert opsap-…-cpu`). */
  readonly what: string;
  /** pass, fail, or info when the entry only reports (a count, a measurement). */
  readonly result: Verdict | 'info';
  /** What was found, in words. */
  readonly detail: string;
  /** The run that produced it, when a run did (run record id). */
  readonly runId?: string;
  /** When it was found or run (ISO). */
  readonly at?: string;
  /** Link to the run record (`GET /api/runs/{runId}` of the app), when there is a run. */
  readonly link?: string;
  /** The resource it concerns (ARM id or `<vault>/secrets/<name>`). */
  readonly resource?: string;
}

/** One checklist item. */
export interface StatusItem {
  readonly id: StatusItemId;
  readonly title: string;
  /** The seed 003 checklist line it answers, or why it is not a go-live item. */
  readonly checklist: string;
  /** Critical items block the release when they fail (seed 003's rule). */
  readonly critical: boolean;
  readonly verdict: Verdict;
  /** One line: what passed, or the first reason it fails. */
  readonly summary: string;
  /** Why it fails (empty when it passes). */
  readonly reasons: readonly string[];
  readonly evidence: readonly Evidence[];
}

/** A drill of the history, for the RTO/RPO chart. */
export interface DrillPoint {
  readonly at: string;
  readonly server: string;
  readonly verdict: 'passed' | 'failed';
  readonly rtoSeconds: number | null;
  readonly rpoSeconds: number | null;
  readonly rtoTargetSeconds: number;
  readonly rpoTargetSeconds: number;
  readonly runId: string;
}

/** A backup-verify run's measurement of one server's newest backup. */
export interface BackupAgePoint {
  readonly at: string;
  readonly server: string;
  readonly ageHours: number;
  readonly limitHours: number | null;
  readonly runId: string;
}

/** Remediations of one UTC day by outcome. */
export interface RemediationDay {
  readonly day: string;
  readonly ok: number;
  readonly failed: number;
  readonly other: number;
}

/** What the cleanups applied on one UTC day. */
export interface CleanupDay {
  readonly day: string;
  /** Revisions deactivated (`revision-cleanup` applied actions). */
  readonly revisions: number;
  /** Tags and manifests deleted (`image-purge` applied actions). */
  readonly tags: number;
}

/** The history behind the charts. */
export interface StatusHistory {
  readonly drills: readonly DrillPoint[];
  readonly backupAge: readonly BackupAgePoint[];
  readonly remediationsPerDay: readonly RemediationDay[];
  readonly cleanedPerDay: readonly CleanupDay[];
}

/** A remediation whose ladder is running (the guardrails' running-trigger claim on a target). */
export interface OpenRemediation {
  readonly targetId: string;
  readonly trigger: string;
  readonly until: string;
  /** The target's rules and their ladders (rung actions in order). */
  readonly ladders: readonly { readonly rule: string; readonly rungs: readonly string[] }[];
}

/** A run in the recent-runs list, with its link. */
export interface RecentRun extends RunSummaryView {
  readonly link: string;
}

/** The filters of the recent-runs list. */
export interface RunFilters {
  readonly runbook?: string;
  readonly outcome?: string;
  /** Look-back, e.g. `7d` (run-history's `since`). */
  readonly since: string;
  readonly limit: number;
}

/** The status of one estate. */
export interface EstateStatus {
  readonly estate: string;
  readonly generatedAt: string;
  readonly decision: 'go' | 'no-go';
  /** Seed 003's rule, as applied. */
  readonly rule: string;
  /** The critical items that block, by id. */
  readonly blocking: readonly StatusItemId[];
  readonly items: readonly StatusItem[];
  readonly history: StatusHistory;
  readonly recentRuns: readonly RecentRun[];
  readonly runFilters: RunFilters;
  readonly openRemediations: readonly OpenRemediation[];
  /** Reads that could not be made, in words (each also fails its item). */
  readonly problems: readonly string[];
}

/** Seed 003's go/no-go rule. */
export const GO_NO_GO_RULE = 'Launch only when all critical items are Done = Yes; if any critical item is No, release is blocked (seed 003, Go/No-Go Rule).';

/** The decision from the items: go only when every critical item passes. */
export function decide(items: readonly StatusItem[]): { decision: 'go' | 'no-go'; blocking: StatusItemId[] } {
  const blocking = items.filter((item) => item.critical && item.verdict !== 'pass').map((item) => item.id);
  // No critical item at all is not a go: nothing would have been proven.
  const anyCritical = items.some((item) => item.critical);
  return { decision: anyCritical && blocking.length === 0 ? 'go' : 'no-go', blocking };
}
