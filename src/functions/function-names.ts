/**
 * The names and routes of the app's functions that other code refers to (tests, the CLI's app
 * client, the infrastructure template's tests, docs): one place, so they cannot drift apart.
 * design.md's table is the contract; add a function here when you add it to the app.
 */

/** Function names, as the host and Application Insights show them. */
export const FUNCTION_NAMES = {
  runsStart: 'runsStart',
  runsList: 'runsList',
  runsGet: 'runsGet',
  runbookRunOrchestrator: 'runbookRunOrchestrator',
  runbookRunActivity: 'runbookRunActivity',
} as const;

/** HTTP routes under the host's route prefix (`/api`). */
export const ROUTES = {
  /** `POST`: start a run (`{ mode: plan | apply, targets?, force?, runId? }`). */
  runsStart: 'runs/{runbook}',
  /** `GET`: past runs, newest first (`?runbook=&since=&limit=&cursor=`). */
  runsList: 'runs',
  /** `GET`: one run, running or finished. */
  runsGet: 'runs/{runId}',
} as const;

/** The path of a route with its parameters filled in (URL-encoded), e.g. `runs/4f0c…`. */
export function routePath(route: string, params: Readonly<Record<string, string>>): string {
  return route.replace(/\{([A-Za-z]+)\}/g, (_match, name: string) => {
    const value = params[name];
    if (value === undefined) throw new RangeError(`route ${route}: expected a value for {${name}}`);
    return encodeURIComponent(value);
  });
}

/** The functions of alert and event remediation (issue 9). */
export const REMEDIATION_FUNCTION_NAMES = {
  alerts: 'alerts',
  eventGrid: 'eventGrid',
  remediationsGet: 'remediationsGet',
  remediationOrchestrator: 'remediationOrchestrator',
  matchActivity: 'remediationMatchActivity',
  guardrailsActivity: 'remediationGuardrailsActivity',
  commitActivity: 'remediationCommitActivity',
  actActivity: 'remediationActActivity',
  undoActivity: 'remediationUndoActivity',
  lockActivity: 'remediationLockActivity',
  checkResolvedActivity: 'remediationCheckResolvedActivity',
  finishActivity: 'remediationFinishActivity',
} as const;

/** HTTP routes of alert remediation under the route prefix. */
export const REMEDIATION_ROUTES = {
  /** `POST`: an action group's webhook (common alert schema). */
  alerts: 'alerts',
  /** `GET`: one remediation: status, ladder position, evidence. */
  remediationsGet: 'remediations/{id}',
} as const;
