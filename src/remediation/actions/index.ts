/**
 * The registry of remediation actions: one implementation per resource kind and action name.
 *
 * | kind | actions |
 * |---|---|
 * | `webSite` (web app, function app, slot) | `restart`, `swap-back`, `scale-out`, `scale-up` |
 * | `containerApp` | `restart`, `scale-out`, `rollback` |
 * | `postgresFlexibleServer` | `restart`, `scale-up` |
 *
 * Callers (the remediation orchestration's activities, `explain-*`) look actions up with
 * {@link getRemediationAction} and always `plan` before `apply`; see `types.ts`.
 */
import { containerAppRestart, containerAppRollback, containerAppScaleOut } from './container-app.ts';
import { postgresRestart, postgresScaleUp } from './postgres.ts';
import { REMEDIATION_ACTION_NAMES, UnknownRemediationActionError, type RemediationAction, type RemediationActionName } from './types.ts';
import { webRestart, webScaleOut, webScaleUp, webSwapBack } from './web.ts';

export * from './types.ts';
export { actionParamsSchema } from '../../config/remediation-schema.ts';
export { OperationDeadlineError } from './long-running.ts';

/** Every action, per kind. */
export const remediationActions: readonly RemediationAction[] = [
  webRestart,
  webSwapBack,
  webScaleOut,
  webScaleUp,
  containerAppRestart,
  containerAppScaleOut,
  containerAppRollback,
  postgresRestart,
  postgresScaleUp,
];

/** The names of the actions a kind has. */
export function remediationActionNames(kind: string): RemediationActionName[] {
  return remediationActions.filter((action) => (action.kinds as readonly string[]).includes(kind)).map((action) => action.name);
}

/** True when `name` is an action name of some kind. */
export function isRemediationActionName(name: string): name is RemediationActionName {
  return (REMEDIATION_ACTION_NAMES as readonly string[]).includes(name);
}

/**
 * The action `name` for resources of `kind`.
 *
 * @throws {@link UnknownRemediationActionError} naming the actions the kind has.
 */
export function getRemediationAction(kind: string, name: string): RemediationAction {
  const action = remediationActions.find((candidate) => candidate.name === name && (candidate.kinds as readonly string[]).includes(kind));
  if (action === undefined) {
    const names = remediationActionNames(kind);
    throw new UnknownRemediationActionError(`expected a remediation action of ${kind} (${names.length === 0 ? 'none: remediation acts on web apps, container apps and PostgreSQL servers' : names.join(', ')}), found "${name}"`, {
      context: { kind, action: name },
    });
  }
  return action;
}
