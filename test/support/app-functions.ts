/**
 * The functions the production app registers, as the local host's inventory shows them. One
 * list for the source entry point and the built bundle, so the two cannot drift apart.
 */
import type { FunctionInfo } from '../../local-host/function-registry.ts';

/** Name, trigger, HTTP route and resolved timer schedule of every production function. */
export const PRODUCTION_FUNCTIONS = [
  { name: 'alerts', trigger: 'http', http: { route: 'alerts', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'backupVerifyTimer', trigger: 'timer', http: undefined, schedule: '0 0 6 * * *' },
  { name: 'drillHeartbeatActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'drillMeasureRpoActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'drillRecordActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'drillScratchActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'drillsGet', trigger: 'http', http: { route: 'drills/{id}', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'drillsHistory', trigger: 'http', http: { route: 'drills/history', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'drillsStart', trigger: 'http', http: { route: 'drills', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'drillSweeperTimer', trigger: 'timer', http: undefined, schedule: '0 0 * * * *' },
  { name: 'drillTargetsActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'drillTeardownActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'eventGrid', trigger: 'eventGrid', http: undefined, schedule: undefined },
  { name: 'guardrailsReset', trigger: 'http', http: { route: 'guardrails/{target}/reset', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'guardrailsStatus', trigger: 'http', http: { route: 'guardrails', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'health', trigger: 'http', http: { route: 'health', methods: ['GET'], authLevel: 'anonymous' }, schedule: undefined },
  { name: 'imagePurgeTimer', trigger: 'timer', http: undefined, schedule: '0 0 4 * * 0' },
  { name: 'keyVaultBackupTimer', trigger: 'timer', http: undefined, schedule: '0 30 2 * * *' },
  { name: 'probeHealthActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'ready', trigger: 'http', http: { route: 'ready', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'remediationActActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationCheckResolvedActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationCommitActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationFinishActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationGuardrailsActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationLockActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationMatchActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'remediationOrchestrator', trigger: 'orchestration', http: undefined, schedule: undefined },
  { name: 'remediationsGet', trigger: 'http', http: { route: 'remediations/{id}', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'remediationUndoActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoreCreateServerActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoreCutoverActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoreDeleteServerActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoreDrillOrchestrator', trigger: 'orchestration', http: undefined, schedule: undefined },
  { name: 'restoreDrillServerOrchestrator', trigger: 'orchestration', http: undefined, schedule: undefined },
  { name: 'restoreDrillTimer', trigger: 'timer', http: undefined, schedule: '0 30 3 * * 0' },
  { name: 'restoreFinishActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoreOrchestrator', trigger: 'orchestration', http: undefined, schedule: undefined },
  { name: 'restoreRollbackActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoresApprove', trigger: 'http', http: { route: 'restores/{id}/approve', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'restoreServerStatusActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoresGet', trigger: 'http', http: { route: 'restores/{id}', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'restoresReject', trigger: 'http', http: { route: 'restores/{id}/reject', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'restoresStart', trigger: 'http', http: { route: 'restores', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'restoreValidateActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'restoreValidateDataActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'revisionCleanupTimer', trigger: 'timer', http: undefined, schedule: '0 0 3 * * *' },
  { name: 'runbookRunActivity', trigger: 'activity', http: undefined, schedule: undefined },
  { name: 'runbookRunOrchestrator', trigger: 'orchestration', http: undefined, schedule: undefined },
  { name: 'runsGet', trigger: 'http', http: { route: 'runs/{runId}', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'runsList', trigger: 'http', http: { route: 'runs', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'runsStart', trigger: 'http', http: { route: 'runs/{runbook}', methods: ['POST'], authLevel: 'function' }, schedule: undefined },
  { name: 'secretExpiryTimer', trigger: 'timer', http: undefined, schedule: '0 0 7 * * *' },
  { name: 'statusGet', trigger: 'http', http: { route: 'status', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'statusPage', trigger: 'http', http: { route: 'status/page', methods: ['GET'], authLevel: 'function' }, schedule: undefined },
  { name: 'verifyHealthOrchestrator', trigger: 'orchestration', http: undefined, schedule: undefined },
] as const;

/** The inventory reduced to what {@link PRODUCTION_FUNCTIONS} lists, sorted by name. */
export function summariseFunctions(functions: readonly FunctionInfo[]): unknown[] {
  return [...functions]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((f) => ({ name: f.name, trigger: f.triggerType, http: f.http, schedule: f.timer?.schedule }));
}
