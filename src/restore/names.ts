/**
 * Names of the restore and drill functions, orchestrators, activities and external events
 * (design.md's table), in one place for the triggers, the orchestrators, the CLI and the tests.
 */

/** Orchestrators. */
export const RESTORE_ORCHESTRATOR = 'restoreOrchestrator';
export const RESTORE_DRILL_ORCHESTRATOR = 'restoreDrillOrchestrator';
/** One server's drill, a sub-orchestration of {@link RESTORE_DRILL_ORCHESTRATOR}. */
export const RESTORE_DRILL_SERVER_ORCHESTRATOR = 'restoreDrillServerOrchestrator';

/** Activities. */
export const RESTORE_ACTIVITIES = {
  validate: 'restoreValidateActivity',
  create: 'restoreCreateServerActivity',
  status: 'restoreServerStatusActivity',
  validateData: 'restoreValidateDataActivity',
  deleteServer: 'restoreDeleteServerActivity',
  cutover: 'restoreCutoverActivity',
  rollback: 'restoreRollbackActivity',
  finish: 'restoreFinishActivity',
  drillTargets: 'drillTargetsActivity',
  heartbeat: 'drillHeartbeatActivity',
  measureRpo: 'drillMeasureRpoActivity',
  recordDrill: 'drillRecordActivity',
  /** Records a drill's scratch server before it is created, and its teardown (the sweeper's recorded id). */
  scratch: 'drillScratchActivity',
  /** Deletes a drill's scratch server, or says it is busy (still being created) so the drill waits and tries again. */
  teardown: 'drillTeardownActivity',
} as const;

/** External events the approval gate waits for. */
export const APPROVAL_EVENTS = { approve: 'approve', reject: 'reject' } as const;

/** HTTP functions and their routes (under `/api`). */
export const RESTORE_FUNCTIONS = {
  restoresStart: { name: 'restoresStart', route: 'restores' },
  restoresGet: { name: 'restoresGet', route: 'restores/{id}' },
  restoresApprove: { name: 'restoresApprove', route: 'restores/{id}/approve' },
  restoresReject: { name: 'restoresReject', route: 'restores/{id}/reject' },
  drillsStart: { name: 'drillsStart', route: 'drills' },
  drillsGet: { name: 'drillsGet', route: 'drills/{id}' },
  drillsHistory: { name: 'drillsHistory', route: 'drills/history' },
} as const;

/** Timers and their schedule settings. */
export const RESTORE_TIMERS = {
  restoreDrillTimer: { name: 'restoreDrillTimer', setting: 'RESTORE_DRILL_SCHEDULE', default: '0 30 3 * * 0' },
  drillSweeperTimer: { name: 'drillSweeperTimer', setting: 'DRILL_SWEEPER_SCHEDULE', default: '0 0 * * * *' },
} as const;
